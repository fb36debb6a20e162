"""``AdaptiveRankLoss``: the adaptive rank loss with its memory of the previous epoch and a learnable ξ.

The formula lives in :func:`rankguard.functional.adaptive_rank_loss`; this Module holds the state:

* ``memory_scores`` / ``memory_labels`` (buffers): the previous epoch's scores. They are refreshed at
  epoch end, never inside an epoch: either :meth:`set_memory` with the end-of-epoch model's scores of the
  training rows (what :class:`rankguard.rescoring.pipeline` does), or :meth:`end_epoch`, which swaps in the
  detached *online* batch scores seen during the epoch (the origin code's memory).
* ``xi`` (a parameter, ξ₀ = 0.2 as in the origin code): trained by its own optimizer group, then projected
  by :meth:`project_` to ``max(xi_floor, ξ)`` after every step — the note's rule ξ ← max(0, ξ − η∂L/∂ξ) when
  ``xi_floor = 0``. Because ∂L/∂ξ ≥ 0 that rule can only shrink ξ; ``xi_floor > 0`` keeps a margin, and
  ``learn_xi=False`` fixes ξ at ``xi``.
* Initial memory: empty until the first :meth:`set_memory`/:meth:`end_epoch`; an empty memory side makes
  its term 0. The pipeline fills it with the untrained model's scores before the first epoch (the same
  distribution the batch is compared against; no extra constant). ``initial_memory_uniform(labels, gen)``
  gives the origin's U(0, 0.5) scores instead.

``memory_subsample`` (the origin code: 10⁴ per class, redrawn every batch) compares each batch with a random
subset of the memory; ``None`` (default) uses the whole memory — exact and O((B + M) log(B + M)) anyway. A
class with at most that many rows is kept whole (no draw, no per-batch re-sort). With
``normalizer=1e4, detach_alpha=False, memory_subsample=10_000`` (:meth:`origin_code_form`) the Module computes
the origin code's form; the defaults compute the note's.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rankguard._validation import binary_labels_tensor, check_reduction, check_scores_tensor
from rankguard.functional.adaptive_rank import ORIGIN_CODE_NORMALIZER, SortedMemory, adaptive_rank_loss

__all__ = ["AdaptiveRankLoss", "initial_memory_uniform"]


def initial_memory_uniform(labels: Any, generator: torch.Generator, high: float = 0.5) -> torch.Tensor:
    """The origin code's memory before the first epoch: U(0, ``high``) scores, one per label.

    >>> initial_memory_uniform(torch.tensor([1, 0, 1]), torch.Generator().manual_seed(0)).shape
    torch.Size([3])
    """
    n = binary_labels_tensor(labels, "labels").shape[0]
    return torch.rand(n, generator=generator, dtype=torch.float64) * high


class AdaptiveRankLoss(nn.Module):
    """Adaptive rank loss against the previous epoch's memory (see the module docstring).

    Args:
        xi: initial (or fixed) margin ξ ≥ 0; 0.2 in the origin code.
        learn_xi: train ξ (its own optimizer group: :meth:`parameter_group`) or keep it fixed.
        xi_floor: ξ is projected to ``max(xi_floor, ξ)`` after each step (0 = the note's rule).
        normalizer: ``"pairs"`` (the note) or a constant (1e4 in the origin code).
        detach_alpha: α_i a constant in the gradient (the note) or not (the origin code).
        memory_subsample: compare each batch with at most this many memory rows per class, redrawn per
            batch from ``generator`` (the origin code: 10⁴); ``None`` = the whole memory.
        generator: the source of the subsample draws.
        reduction: as :func:`~rankguard.functional.adaptive_rank_loss`.

    Shapes:
        forward(scores [B], labels [B], index=None) -> scalar.

    Example:
        >>> loss = AdaptiveRankLoss(xi=0.3)
        >>> loss.set_memory(torch.tensor([0.5, 0.4]), torch.tensor([1, 0]))
        >>> round(float(loss(torch.tensor([0.6, 0.3]), torch.tensor([1, 0])).detach()), 6)
        0.018187
    """

    def __init__(self, xi: float = 0.2, *, learn_xi: bool = True, xi_floor: float = 0.0,
                 normalizer: str | float = "pairs", detach_alpha: bool = True,
                 memory_subsample: int | None = None, generator: torch.Generator | None = None,
                 reduction: str = "mean"):
        super().__init__()
        if not (float(xi) >= 0.0 and float(xi) < float("inf")):
            raise ValueError(f"`xi` must be finite and >= 0, got {xi}")
        if not (float(xi_floor) >= 0.0 and float(xi_floor) <= float(xi)):
            raise ValueError(f"`xi_floor` must be in [0, xi] = [0, {xi}], got {xi_floor}")
        if memory_subsample is not None and int(memory_subsample) < 1:
            raise ValueError(f"`memory_subsample` must be None or >= 1, got {memory_subsample}")
        self.reduction = check_reduction(reduction)
        self.normalizer, self.detach_alpha = normalizer, bool(detach_alpha)
        self.xi_floor, self.memory_subsample = float(xi_floor), memory_subsample
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.xi = nn.Parameter(torch.tensor(float(xi), dtype=torch.float64), requires_grad=bool(learn_xi))
        self.register_buffer("memory_scores", torch.zeros(0, dtype=torch.float64))
        self.register_buffer("memory_labels", torch.zeros(0, dtype=torch.bool))
        self._online_scores: list[torch.Tensor] = []
        self._online_labels: list[torch.Tensor] = []

    @classmethod
    def origin_code_form(cls, xi: float = 0.2, generator: torch.Generator | None = None) -> "AdaptiveRankLoss":
        """The form the origin code computes: constant 1e4 normaliser, α_i not detached, memory subsampled
        to ≤ 10⁴ per class every batch (use with :meth:`end_epoch`, its online-score memory)."""
        return cls(xi, normalizer=ORIGIN_CODE_NORMALIZER, detach_alpha=False, memory_subsample=10_000,
                   generator=generator)

    # -- memory ----------------------------------------------------------------------------
    def set_memory(self, scores: torch.Tensor, labels: Any) -> None:
        """Replace the memory (call at epoch end with the model's scores of the training rows)."""
        check_scores_tensor(scores, "scores")
        y = binary_labels_tensor(labels, "labels", length=scores.shape[0])
        self.memory_scores = scores.detach().to(torch.float64, copy=True)
        self.memory_labels = y.to(self.memory_scores.device).clone()
        self._online_scores, self._online_labels = [], []
        self._sorted: SortedMemory | None = None      # sorted lazily once per memory (not per batch)

    def end_epoch(self) -> None:
        """Swap in the online batch scores recorded during the epoch (keeps the old memory if none)."""
        if self._online_scores:
            self.set_memory(torch.cat(self._online_scores), torch.cat(self._online_labels))

    def project_(self) -> None:
        """ξ ← max(xi_floor, ξ): the projection after each optimizer step."""
        with torch.no_grad():
            self.xi.clamp_(min=self.xi_floor)

    def parameter_group(self) -> list[nn.Parameter]:
        """The parameters of ξ's own optimizer group (empty when ξ is fixed)."""
        return [self.xi] if self.xi.requires_grad else []

    def _subsample_binds(self) -> bool:
        """Whether ``memory_subsample`` drops rows: some memory class has more than that many (else the whole
        memory is used, sorted once per refresh, as without subsampling)."""
        k = self.memory_subsample
        if k is None:
            return False
        n_t = int(self.memory_labels.sum())
        return max(n_t, int(self.memory_labels.shape[0]) - n_t) > k

    def _memory_view(self) -> tuple[torch.Tensor, torch.Tensor]:
        mem, lab = self.memory_scores, self.memory_labels
        k = self.memory_subsample
        if k is None or mem.shape[0] == 0:
            return mem, lab
        parts = []
        for cls_mask in (lab, ~lab):
            idx = cls_mask.nonzero()[:, 0]
            if idx.shape[0] > k:
                pick = torch.randperm(idx.shape[0], generator=self.generator)[:k].to(idx.device)
                idx = idx[pick]
            parts.append(idx)
        idx = torch.cat(parts)
        return mem[idx], lab[idx]

    def forward(self, scores: torch.Tensor, labels: Any, index: Any = None) -> torch.Tensor:
        y = binary_labels_tensor(labels, "labels", length=scores.shape[0])
        if not self._subsample_binds():
            if getattr(self, "_sorted", None) is None or self._sorted.device != scores.device:
                self._sorted = SortedMemory(self.memory_scores.to(scores.device), self.memory_labels.to(scores.device))
            sorted_memory = self._sorted
        else:
            mem, lab = self._memory_view()
            sorted_memory = SortedMemory(mem.to(scores.device), lab.to(scores.device))
        loss = adaptive_rank_loss(scores, y, xi=self.xi, normalizer=self.normalizer,
                                  detach_alpha=self.detach_alpha, reduction=self.reduction,
                                  sorted_memory=sorted_memory)
        if self.training:
            self._online_scores.append(scores.detach().to(torch.float64).cpu())
            self._online_labels.append(y.cpu())
        return loss

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the memory's length changes from epoch to epoch: resize the buffers before the copy
        for name in ("memory_scores", "memory_labels"):
            key = prefix + name
            if key in state_dict:
                setattr(self, name, torch.empty_like(state_dict[key]))
        self._sorted = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (f"xi={float(self.xi):.4g}, learn_xi={self.xi.requires_grad}, xi_floor={self.xi_floor}, "
                f"normalizer={self.normalizer!r}, detach_alpha={self.detach_alpha}, "
                f"memory_subsample={self.memory_subsample}, memory={self.memory_scores.shape[0]}")
