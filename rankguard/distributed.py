"""Helpers for several processes (``torch.distributed``): gathering tensors of uneven sizes.

:func:`gather_uneven` is what the metric class forms (:mod:`rankguard.metrics.classes`) use in
``compute()``: every rank contributes its state (scores, labels, query ids), sizes may differ
(a rank may even hold nothing), and every rank receives the concatenation in rank order, with no
sample repeated (unlike a ``DistributedSampler`` that pads by repeating samples) — so a metric is
computed once on the union, never as an average of per-process values (which is wrong for AUC,
AP and every ranking metric).

Protocol: one ``all_gather_object`` of (size, dtype) per rank; the common dtype is the widest
(``torch.promote_types``: exact for the float32 -> float64 case); each rank pads to the largest
size, one ``all_gather`` of the padded tensors, and the padding is trimmed. Bool tensors travel as
uint8 (not every backend supports bool). Outside an initialised process group (or with one
process) the local tensor is returned as is.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["is_distributed", "gather_uneven"]


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_uneven(tensor: torch.Tensor | None, like: torch.Tensor | None = None, group=None) -> torch.Tensor:
    """Concatenate the 1-D (or ``[n, ...]``) ``tensor`` of every rank along dim 0, in rank order.

    ``tensor=None`` means "this rank has nothing"; ``like`` then gives its dtype and trailing shape
    (an empty tensor). Every rank must call it (a collective).

    >>> gather_uneven(torch.tensor([1, 2]))   # no process group: the tensor itself
    tensor([1, 2])
    """
    local = tensor if tensor is not None else (like if like is not None else torch.empty(0))
    if not is_distributed():
        return local
    world = dist.get_world_size(group)
    meta = [None] * world
    dist.all_gather_object(meta, (int(local.shape[0]), str(local.dtype).replace("torch.", ""),
                                  tuple(local.shape[1:]), local.numel() > 0), group=group)
    dtypes = [getattr(torch, d) for _, d, _, filled in meta if filled] or [local.dtype]
    common = dtypes[0]
    for d in dtypes[1:]:
        common = torch.promote_types(common, d)
    trailing = next((t for _, _, t, filled in meta if filled), tuple(local.shape[1:]))
    sizes = [m[0] for m in meta]
    biggest = max(sizes)
    wire = torch.uint8 if common == torch.bool else common
    device = local.device
    if dist.get_backend(group) == "nccl" and device.type != "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    padded = torch.zeros((biggest, *trailing), dtype=wire, device=device)
    if local.shape[0]:
        padded[: local.shape[0]] = local.to(device=device, dtype=wire)
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded, group=group)
    out = torch.cat([p[:n] for p, n in zip(parts, sizes)])
    return out.to(dtype=common, device=local.device)
