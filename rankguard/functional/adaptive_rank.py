"""The adaptive rank loss (target–decoy rescoring): the current batch against the previous epoch's memory.

For a batch of scores ``s_i`` (sigmoid outputs, labels 1 = target, 0 = decoy) and a memory of the previous
epoch's scores ``s_j^prev`` with their labels, T/D the targets/decoys of the batch (``curr``) or memory
(``prev``), and a margin ξ ≥ 0::

    L₁ = (1/N_pd) Σ_{i∈T_curr} Σ_{j∈D_prev} α_i · max(0, s_j^prev − s_i + ξ)²,   N_pd = |T_curr|·|D_prev|
    L₂ = (1/N_pt) Σ_{i∈D_curr} Σ_{j∈T_prev} max(0, s_i − s_j^prev + ξ)²,        N_pt = |D_curr|·|T_prev|
    L  = L₁ + L₂
    α_i = exp(−max(0, s_i − max_{j∈D_prev} s_j^prev))       (a constant in the gradient)

(the seed note, 2025; REFERENCES §9b). The normalisers count all pairs, active or not; an empty side
(no targets in the batch, no decoys in the memory, …) makes its term 0. The closed-form gradients::

    ∂L/∂s_i = −(2/N_pd) α_i Σ_{j∈D_prev} max(0, s_j^prev − s_i + ξ)      i ∈ T_curr
    ∂L/∂s_i = +(2/N_pt)     Σ_{j∈T_prev} max(0, s_i − s_j^prev + ξ)      i ∈ D_curr
    ∂L/∂ξ   = (2/N_pd) Σ α_i Σ max(0, ·) + (2/N_pt) Σ Σ max(0, ·)  ≥ 0

so the projected rule ξ ← max(0, ξ − η ∂L/∂ξ) can only shrink ξ (see :class:`rankguard.losses.AdaptiveRankLoss`
for a floor and a fixed ξ).

Each row sum is the all-pairs squared-hinge row sum of :mod:`rankguard.functional.pairwise` (REFERENCES §1)
with the memory side constant: for a target, ``a_i = s_i − ξ`` against the memory decoys; for a decoy,
``a_i = −s_i − ξ`` against the negated memory targets (``t = s_i + ξ − s_j``); pair (i, j) is active iff
``n_j > a_i``. The memory is constant for a whole epoch, so it is sorted once (:func:`sort_memory`, at the
epoch-end refresh) with suffix sums of 1, n, n² (float64, centred); a batch then costs one binary search
per row, ``R_i = S2 − 2 a_i S1 + a_i² C`` over the active suffix — O(B log M) per step instead of the
engine's O((B + M) log(B + M)) re-sort. ξ and s_i enter through ``a_i``, so autograd gives ∂L/∂s_i and
∂L/∂ξ exactly (the suffix sums are constants); a tie ``n_j = a_i`` has value and gradient 0, as in the
engine. Memory O(B + M): the B×M matrix is never built.

The origin code (Dwzie/AdaptiveRankLoss @a6311ff) differs: ``normalizer=1e4`` (a constant instead of the
pair counts) and ``detach_alpha=False`` reproduce its two differences in the formula; its per-batch
memory subsampling lives in the Module.
"""

from __future__ import annotations

from typing import Any

import torch

from rankguard._validation import binary_labels_tensor, check_reduction, check_scores_tensor

__all__ = ["adaptive_rank_loss", "adaptive_rank_alpha", "sort_memory", "SortedMemory"]

#: the constant both sums are divided by in the origin code (instead of the pair counts)
ORIGIN_CODE_NORMALIZER = 1e4


def _check_xi(xi: Any) -> torch.Tensor:
    if isinstance(xi, torch.Tensor):
        if xi.dim() != 0 or not xi.is_floating_point():
            raise ValueError(f"`xi` must be a 0-d floating tensor or a float, got shape {tuple(xi.shape)} "
                             f"dtype {xi.dtype}")
        value = float(xi.detach())
    else:
        try:
            value = float(xi)
        except (TypeError, ValueError):
            raise TypeError(f"`xi` must be a float or a 0-d tensor, got {type(xi).__name__}") from None
        xi = torch.tensor(value, dtype=torch.float64)
    if not (value >= 0.0) or value == float("inf"):
        raise ValueError(f"`xi` must be finite and >= 0 (the margin of the adaptive rank loss), got {value}")
    return xi


class _SortedSide:
    """One class of the memory, ascending, with suffix sums of 1, (n − c), (n − c)² from each position."""

    def __init__(self, values: torch.Tensor):
        v = values.detach().to(torch.float64)
        self.n = int(v.shape[0])
        self.centre = float(v.mean()) if self.n else 0.0
        self.sorted, _ = torch.sort(v - self.centre)
        self.top = float(v.max()) if self.n else float("-inf")
        rev = torch.flip(self.sorted, [0])
        zero = torch.zeros(1, dtype=torch.float64, device=v.device)
        self.s1 = torch.flip(torch.cat([zero, torch.cumsum(rev, 0)]), [0])          # Σ_{j ≥ k} n_j
        self.s2 = torch.flip(torch.cat([zero, torch.cumsum(rev * rev, 0)]), [0])    # Σ_{j ≥ k} n_j²

    def row_sums(self, a: torch.Tensor) -> torch.Tensor:
        """R_i = Σ_{j: n_j > a_i} (n_j − a_i)², differentiable in ``a`` (float64)."""
        ac = a.to(torch.float64) - self.centre
        k = torch.searchsorted(self.sorted, ac.detach(), right=True)
        count = (self.n - k).to(torch.float64)
        return (self.s2[k] - 2.0 * ac * self.s1[k] + ac * ac * count).clamp(min=0.0)


class SortedMemory:
    """The memory sorted once per class (see the module docstring); pass it as ``sorted_memory``.

    >>> m = sort_memory(torch.tensor([0.5, 0.4]), torch.tensor([1, 0]))
    >>> m.targets.n, m.decoys.n
    (1, 1)
    """

    def __init__(self, memory_scores: torch.Tensor, memory_labels: Any):
        check_scores_tensor(memory_scores, "memory_scores")
        y = binary_labels_tensor(memory_labels, "memory_labels", length=memory_scores.shape[0]).to(memory_scores.device)
        mem = memory_scores.detach()
        # the decoy side is compared with s_i − ξ directly, the target side with the negated scores
        self.decoys = _SortedSide(mem[~y])
        self.targets = _SortedSide(-mem[y])
        self.device = mem.device


def sort_memory(memory_scores: torch.Tensor, memory_labels: Any) -> SortedMemory:
    """Sort a memory once (O(M log M)) for many calls of :func:`adaptive_rank_loss`."""
    return SortedMemory(memory_scores, memory_labels)


def adaptive_rank_alpha(target_scores: torch.Tensor, memory_decoy_scores: torch.Tensor) -> torch.Tensor:
    """α_i = exp(−max(0, s_i − max_j s_j^prev)) per target; 1 for every target when the memory has no decoys.

    >>> adaptive_rank_alpha(torch.tensor([0.2, 0.9]), torch.tensor([0.1, 0.5]))
    tensor([1.0000, 0.6703])
    """
    if memory_decoy_scores.shape[0] == 0:
        return torch.ones_like(target_scores)
    top = memory_decoy_scores.max()
    return torch.exp(-torch.clamp(target_scores - top, min=0.0))


def adaptive_rank_loss(scores: torch.Tensor, labels: Any, memory_scores: torch.Tensor | None = None,
                       memory_labels: Any = None, xi: float | torch.Tensor = 0.2, *,
                       normalizer: str | float = "pairs", detach_alpha: bool = True, reduction: str = "mean",
                       sorted_memory: SortedMemory | None = None) -> torch.Tensor:
    """The adaptive rank loss ``L = L₁ + L₂`` of the module docstring.

    Args:
        scores: [B] floating scores of the batch (sigmoid outputs in the note; any finite values work).
        labels: [B] 1 = target, 0 = decoy (also {−1, 1} or bool).
        memory_scores: [M] previous epoch's scores; treated as constants (detached here).
        memory_labels: [M] their labels, same encodings.
        xi: margin ξ ≥ 0, a float or a 0-d tensor (a learnable parameter gets its exact gradient).
        normalizer: ``"pairs"`` (N_pd, N_pt, the note) or a positive constant dividing both sums
            (:data:`ORIGIN_CODE_NORMALIZER` = 1e4 in the origin code).
        detach_alpha: True (the note) treats α_i as a constant; False lets the gradient flow through it
            (the origin code).
        sorted_memory: the memory already sorted by :func:`sort_memory` (then ``memory_scores`` and
            ``memory_labels`` are not given): the per-step cost drops to O(B log M).
        reduction: ``"mean"`` = L (normalised as ``normalizer`` says); ``"sum"`` = the two plain double sums
            added (no normaliser); ``"none"`` = [B] per-row contributions (α_i R_i / N_pd for a target,
            R_i / N_pt for a decoy), whose sum is the ``"mean"`` value.

    Returns:
        A scalar (or [B] for ``"none"``) in the scores' dtype (float32 for half inputs).

    Example:
        >>> s = torch.tensor([0.6, 0.3]); y = torch.tensor([1, 0])
        >>> adaptive_rank_loss(s, y, torch.tensor([0.5, 0.4]), torch.tensor([1, 0]), xi=0.3)
        tensor(0.0182)
    """
    check_reduction(reduction)
    check_scores_tensor(scores, "scores")
    y = binary_labels_tensor(labels, "labels", length=scores.shape[0])
    if sorted_memory is None:
        if memory_scores is None or memory_labels is None:
            raise ValueError("pass `memory_scores` and `memory_labels`, or `sorted_memory`")
        sorted_memory = SortedMemory(memory_scores, memory_labels)
    elif memory_scores is not None:
        raise ValueError("pass either `memory_scores`/`memory_labels` or `sorted_memory`, not both")
    if sorted_memory.device != scores.device:
        raise ValueError(f"the memory is on {sorted_memory.device} but `scores` is on {scores.device}")
    if isinstance(normalizer, str):
        if normalizer != "pairs":
            raise ValueError(f"`normalizer` must be 'pairs' or a positive number, got {normalizer!r}")
    elif not (float(normalizer) > 0.0 and float(normalizer) < float("inf")):
        raise ValueError(f"`normalizer` must be 'pairs' or a positive finite number, got {normalizer!r}")
    xi_t = _check_xi(xi).to(scores.device)

    target = y.bool()
    side_d, side_t = sorted_memory.decoys, sorted_memory.targets
    s_t, s_d = scores[target], scores[~target]
    # the scores' dtype rules (a float64 ξ parameter does not promote float32 scores)
    out_dtype = scores.dtype
    if out_dtype in (torch.float16, torch.bfloat16):
        out_dtype = torch.float32
    contrib = torch.zeros(scores.shape[0], dtype=out_dtype, device=scores.device)
    xi_c = xi_t.to(out_dtype)

    def norm(n_rows: int, n_mem: int) -> float:
        if reduction == "sum":
            return 1.0
        return float(n_rows * n_mem) if normalizer == "pairs" else float(normalizer)

    has_l1, has_l2 = bool(s_t.shape[0] and side_d.n), bool(s_d.shape[0] and side_t.n)
    if has_l1:
        rows = side_d.row_sums(s_t - xi_c).to(out_dtype)
        alpha = torch.exp(-torch.clamp(s_t.to(out_dtype) - side_d.top, min=0.0))
        if detach_alpha:
            alpha = alpha.detach()
        contrib = contrib.index_put((target.nonzero()[:, 0],), alpha * rows / norm(s_t.shape[0], side_d.n))
    if has_l2:
        rows = side_t.row_sums(-s_d - xi_c).to(out_dtype)
        contrib = contrib.index_put(((~target).nonzero()[:, 0],), rows / norm(s_d.shape[0], side_t.n))
    if reduction == "none":
        return contrib
    total = contrib.sum()
    if not has_l1 and not has_l2:
        # keep the graph connected (a zero with gradients 0) so a step on a single-class batch is a no-op
        total = total + 0.0 * (scores.sum() + xi_c)
    return total
