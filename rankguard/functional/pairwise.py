"""Exact all-pairs ranking surrogates in O(n log n) time and O(n) memory.

For positives ``p_i`` (i = 1..n⁺), negatives ``n_j`` (j = 1..n⁻), a margin ``m`` and the pair
argument ``t_ij = m − (p_i − n_j)``, the losses here are sums of ``ℓ(t_ij)`` over *all* pairs:

    squared         ℓ(t) = t²
    squared_hinge   ℓ(t) = max(0, t)²
    hinge           ℓ(t) = max(0, t)

The n⁺×n⁻ matrix is never built. Writing ``a_i = p_i − m``, pair (i, j) is active (ℓ > 0 for the
hinges) iff ``n_j > a_i``. One sort of all keys (``a_i`` and ``n_j`` together, descending) puts,
for every positive, its active negatives before it, so prefix sums of ``1, n_j, n_j²`` over the
negatives give the row sums::

    hinge          R_i = S1_i − a_i·C_i
    squared_hinge  R_i = S2_i − 2·a_i·S1_i + a_i²·C_i

with ``C_i, S1_i, S2_i`` the count, sum and sum of squares of the active negatives. Gradients
follow the same way: ``∂R_i/∂p_i`` is ``−C_i`` (hinge) or ``−2(S1_i − a_i C_i)``; for a negative,
``Σ_i g_i ∂R_i/∂n_j`` runs over the positives *below* it, read from suffix sums of ``g_i`` and
``g_i a_i`` in the same sorted order (no second sort). The squared loss needs no sort: its row
sums are moments, ``R_i = Σ_j n_j² − 2 a_i Σ_j n_j + n⁻ a_i²``.

Ties follow the dense convention exactly: a pair with ``t_ij == 0`` has value 0 and gradient 0
(``torch.relu``'s gradient at 0), so a positive and a negative with equal keys are inactive.
Sums are accumulated in float64 on centred keys whatever the input dtype; the result is cast back.
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

from rankguard._validation import check_scores_tensor

SURROGATES = ("squared", "squared_hinge", "hinge")
REDUCTIONS = ("mean", "sum")
MASKED_REDUCTIONS = ("mean", "sum", "none")

__all__ = ["SURROGATES", "pairwise_loss", "pairwise_row_sums", "pairwise_loss_masked"]


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------

def _check_choice(value: str, valid: tuple[str, ...], name: str) -> None:
    if value not in valid:
        raise ValueError(f"`{name}` must be one of {', '.join(repr(v) for v in valid)}; got {value!r}")


def _check_margin(margin: float) -> float:
    try:
        m = float(margin)
    except (TypeError, ValueError):
        raise TypeError(f"`margin` must be a real number, got {type(margin).__name__}") from None
    if not math.isfinite(m):
        raise ValueError(f"`margin` must be finite, got {margin}")
    return m


def _check_nonempty(t: torch.Tensor, name: str) -> None:
    if t.shape[0] == 0:
        raise ValueError(f"`{name}` is empty: the all-pairs loss needs at least one element on each side")


def _common_dtype(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if a.device != b.device:
        raise ValueError(f"`pos_scores` is on {a.device} but `neg_scores` is on {b.device}")
    dtype = torch.promote_types(a.dtype, b.dtype)
    return a.to(dtype), b.to(dtype)


# --------------------------------------------------------------------------------------------
# the engine: row sums on a batch of rows [B, K], each entry a positive, a negative or neither
# --------------------------------------------------------------------------------------------

def _group_start(sorted_keys: torch.Tensor) -> torch.Tensor:
    """Index of the first entry of each entry's tie group along dim 1 of a sorted [B, K] tensor."""
    K = sorted_keys.shape[1]
    idx = torch.arange(K, device=sorted_keys.device).expand_as(sorted_keys)
    is_start = torch.ones_like(sorted_keys, dtype=torch.bool)
    is_start[:, 1:] = sorted_keys[:, 1:] != sorted_keys[:, :-1]
    return torch.cummax(torch.where(is_start, idx, 0), dim=1).values


def _exclusive_at(cum: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """Given inclusive cumsums ``cum`` [B, K], return Σ over positions < start (per entry)."""
    padded = torch.nn.functional.pad(cum, (1, 0))
    return padded.gather(1, start)


def _row_centre(keys: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-row mean of the valid keys in float64, [B, 1]; centring only improves the moment sums."""
    k64 = torch.where(valid, keys.detach().to(torch.float64), 0.0)
    count = valid.sum(dim=1, keepdim=True).clamp_min(1)
    return k64.sum(dim=1, keepdim=True) / count


class _HingeRowSums(torch.autograd.Function):
    """R[b, k] = Σ_{j neg in row b} ℓ(n_bj − key_bk) for positive entries k, 0 elsewhere.

    ``keys`` holds ``a = p − m`` at positive entries and ``n`` at negative entries.
    """

    @staticmethod
    def forward(ctx, keys, is_pos, is_neg, squared, need_pos_grad, need_neg_grad):
        valid = is_pos | is_neg
        sort_keys = torch.where(valid, keys, float("-inf"))
        sorted_keys, order = torch.sort(sort_keys, dim=1, descending=True)
        pos_s = is_pos.gather(1, order)
        neg_s = is_neg.gather(1, order)
        x = torch.where(pos_s | neg_s, sorted_keys.to(torch.float64) - _row_centre(keys, valid), 0.0)

        # Negatives strictly above each entry: prefix sums read at the start of its tie group.
        start = _group_start(sorted_keys)
        nx = torch.where(neg_s, x, 0.0)
        count = _exclusive_at(neg_s.to(torch.float64).cumsum(1), start)
        s1 = _exclusive_at(nx.cumsum(1), start)
        lin = s1 - x * count  # Σ_active (n_j − a_i)
        if squared:
            s2 = _exclusive_at((nx * nx).cumsum(1), start)
            rows = s2 - 2.0 * x * s1 + x * x * count
            d_key = -2.0 * lin
        else:
            rows = lin
            d_key = -count
        rows = torch.where(pos_s, rows, 0.0)
        out = torch.zeros_like(rows).scatter_(1, order, rows)

        ctx.squared = squared
        ctx.need_pos_grad = need_pos_grad
        ctx.need_neg_grad = need_neg_grad
        ctx.out_dtype = keys.dtype
        d_key = torch.where(pos_s, d_key, 0.0)
        ctx.save_for_backward(order, sorted_keys, pos_s, neg_s, x, d_key)
        return out.to(keys.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_rows):
        order, sorted_keys, pos_s, neg_s, x, d_key = ctx.saved_tensors
        g = grad_rows.to(torch.float64).gather(1, order)
        grad_sorted = torch.zeros_like(x)
        if ctx.need_pos_grad:
            grad_sorted = g * d_key  # d_key is 0 off the positives
        if ctx.need_neg_grad:
            # Positives strictly below each negative: in the flipped order they come before its
            # tie group, so the same exclusive-prefix trick applies.
            gp = torch.where(pos_s, g, 0.0).flip(1)
            start_f = _group_start(sorted_keys.flip(1))
            g0 = _exclusive_at(gp.cumsum(1), start_f).flip(1)  # Σ g_i over i below
            if ctx.squared:
                g1 = _exclusive_at((gp * x.flip(1)).cumsum(1), start_f).flip(1)  # Σ g_i a_i
                d_neg = 2.0 * (x * g0 - g1)
            else:
                d_neg = g0
            grad_sorted = grad_sorted + torch.where(neg_s, d_neg, 0.0)
        grad_keys = torch.zeros_like(grad_sorted).scatter_(1, order, grad_sorted)
        return grad_keys.to(ctx.out_dtype), None, None, None, None, None


def _squared_row_sums(keys: torch.Tensor, is_pos: torch.Tensor, is_neg: torch.Tensor) -> torch.Tensor:
    """Moments form of Σ_j (n_j − a_i)², O(B·K), differentiated by autograd."""
    valid = is_pos | is_neg
    x = keys.to(torch.float64) - _row_centre(keys, valid)
    nx = torch.where(is_neg, x, 0.0)
    q0 = is_neg.sum(dim=1, keepdim=True).to(torch.float64)
    q1 = nx.sum(dim=1, keepdim=True)
    q2 = (nx * nx).sum(dim=1, keepdim=True)
    ax = torch.where(is_pos, x, 0.0)
    rows = q2 - 2.0 * ax * q1 + ax * ax * q0
    return torch.where(is_pos, rows, 0.0).to(keys.dtype)


def _row_sums_2d(keys: torch.Tensor, is_pos: torch.Tensor, is_neg: torch.Tensor, surrogate: str,
                 need_pos_grad: bool, need_neg_grad: bool) -> torch.Tensor:
    """Dispatch to the surrogate's engine; keys [B, K] with a = p − m at positives, n at negatives."""
    if surrogate == "squared":
        return _squared_row_sums(keys, is_pos, is_neg)
    return _HingeRowSums.apply(keys, is_pos, is_neg, surrogate == "squared_hinge",
                               need_pos_grad, need_neg_grad)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------

def pairwise_row_sums(pos_scores: torch.Tensor, neg_scores: torch.Tensor,
                      surrogate: str = "squared_hinge", margin: float = 1.0) -> torch.Tensor:
    """Per-positive sums of the pair surrogate over all negatives.

    ``R_i = Σ_j ℓ(margin − (pos_i − neg_j))`` with ``ℓ`` one of ``t²`` ("squared"),
    ``max(0,t)²`` ("squared_hinge"), ``max(0,t)`` ("hinge"); exact, O((n⁺+n⁻) log(n⁺+n⁻)) time,
    O(n⁺+n⁻) memory. Differentiable in both inputs; no gradient work is done for an input that
    does not require grad (e.g. a fixed memory bank of negatives).

    Args:
        pos_scores: [n⁺] floating tensor, n⁺ ≥ 1.
        neg_scores: [n⁻] floating tensor, n⁻ ≥ 1 (promoted to a common dtype with pos_scores).
        surrogate: "squared", "squared_hinge" or "hinge".
        margin: finite real ``m``.

    Returns:
        [n⁺] tensor of row sums.

    Example:
        >>> pairwise_row_sums(torch.tensor([1.0, 2.0]), torch.tensor([0.5, 2.0]), "hinge", 1.0)
        tensor([2.5000, 1.0000])
    """
    _check_choice(surrogate, SURROGATES, "surrogate")
    m = _check_margin(margin)
    check_scores_tensor(pos_scores, "pos_scores")
    check_scores_tensor(neg_scores, "neg_scores")
    _check_nonempty(pos_scores, "pos_scores")
    _check_nonempty(neg_scores, "neg_scores")
    pos, neg = _common_dtype(pos_scores, neg_scores)
    n_pos, n_total = pos.shape[0], pos.shape[0] + neg.shape[0]
    keys = torch.cat([pos - m, neg]).unsqueeze(0)
    is_pos = (torch.arange(n_total, device=keys.device) < n_pos).unsqueeze(0)
    rows = _row_sums_2d(keys, is_pos, ~is_pos, surrogate, pos.requires_grad, neg.requires_grad)
    return rows[0, :n_pos]


def pairwise_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor, surrogate: str = "squared_hinge",
                  margin: float = 1.0, pos_weights: torch.Tensor | None = None,
                  reduction: str = "mean") -> torch.Tensor:
    """Exact all-pairs ranking surrogate without the n⁺×n⁻ matrix.

    ``L = Σ_i Σ_j w_i · ℓ(margin − (pos_i − neg_j))``, divided by ``n⁺·n⁻`` for
    ``reduction="mean"``, with ``ℓ(t)`` = ``t²`` ("squared"), ``max(0,t)²`` ("squared_hinge") or
    ``max(0,t)`` ("hinge") and ``w_i = 1`` when ``pos_weights`` is None. The weighted mean divides
    by the pair count ``n⁺·n⁻``, not by ``n⁻·Σw``. At ``t = 0`` the hinge gradient is 0, as
    ``torch.relu``'s. O((n⁺+n⁻) log(n⁺+n⁻)) time and O(n⁺+n⁻) memory.

    Args:
        pos_scores: [n⁺] scores of positives, n⁺ ≥ 1.
        neg_scores: [n⁻] scores of negatives, n⁻ ≥ 1; may be a constant memory bank.
        surrogate: "squared", "squared_hinge" or "hinge".
        margin: finite real ``m``.
        pos_weights: optional [n⁺] finite per-positive weights (differentiable).
        reduction: "mean" or "sum".

    Returns:
        Scalar tensor, differentiable in pos_scores, neg_scores and pos_weights.

    Example (t = 1 − (2 − 0.5) = −0.5 and 1 − (2 − 2) = 1):
        >>> pairwise_loss(torch.tensor([2.0]), torch.tensor([0.5, 2.0]), "squared", 1.0)
        tensor(0.6250)
    """
    _check_choice(reduction, REDUCTIONS, "reduction")
    rows = pairwise_row_sums(pos_scores, neg_scores, surrogate, margin)
    if pos_weights is not None:
        check_scores_tensor(pos_weights, "pos_weights")
        if pos_weights.shape != rows.shape:
            raise ValueError(f"`pos_weights` must have shape {tuple(rows.shape)} (one weight per positive), "
                             f"got {tuple(pos_weights.shape)}")
        rows = rows * pos_weights.to(rows.dtype)
    total = rows.sum()
    if reduction == "mean":
        total = total / (pos_scores.shape[0] * neg_scores.shape[0])
    return total


def pairwise_loss_masked(scores: torch.Tensor, pos_mask: torch.Tensor, neg_mask: torch.Tensor,
                         surrogate: str = "squared_hinge", margin: float = 1.0,
                         reduction: str = "mean") -> torch.Tensor:
    """Row-wise all-pairs surrogate, e.g. users × items in recommendation.

    For each row b with positives P_b = {k : pos_mask[b,k]} and negatives N_b = {k : neg_mask[b,k]}:
    ``L_b = (1 / (|P_b|·|N_b|)) Σ_{p∈P_b} Σ_{n∈N_b} ℓ(margin − (s_bp − s_bn))``, ℓ as in
    :func:`pairwise_loss`. Entries in neither mask are ignored. Rows without a positive or without a
    negative have no pairs: they give ``L_b = 0`` and are left out of the mean.

    Vectorised over rows (one batched sort); O(B·M log M) time, O(B·M) memory.

    Args:
        scores: [B, M] floating scores.
        pos_mask: [B, M] bool, True at positives.
        neg_mask: [B, M] bool, True at negatives; must not overlap pos_mask.
        surrogate: "squared", "squared_hinge" or "hinge".
        margin: finite real.
        reduction: "mean" (over rows with pairs; 0 if there are none), "sum" (of L_b) or
            "none" ([B] vector of L_b, 0 for rows without pairs).

    Example:
        >>> s = torch.tensor([[2.0, 0.5, 2.0], [1.0, 0.0, 3.0]])
        >>> pos = torch.tensor([[True, False, False], [False, False, False]])
        >>> neg = torch.tensor([[False, True, True], [True, True, True]])
        >>> pairwise_loss_masked(s, pos, neg, "squared", 1.0, reduction="none")
        tensor([0.6250, 0.0000])
    """
    _check_choice(surrogate, SURROGATES, "surrogate")
    _check_choice(reduction, MASKED_REDUCTIONS, "reduction")
    m = _check_margin(margin)
    check_scores_tensor(scores, "scores", ndim=2)
    for name, mask in (("pos_mask", pos_mask), ("neg_mask", neg_mask)):
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise TypeError(f"`{name}` must be a bool tensor, got "
                            f"{getattr(mask, 'dtype', type(mask).__name__)}")
        if mask.shape != scores.shape:
            raise ValueError(f"`{name}` must have the shape of `scores` {tuple(scores.shape)}, "
                             f"got {tuple(mask.shape)}")
    if bool((pos_mask & neg_mask).any()):
        raise ValueError("`pos_mask` and `neg_mask` overlap: an entry cannot be both positive and negative")
    keys = torch.where(pos_mask, scores - m, scores)
    rows = _row_sums_2d(keys, pos_mask, neg_mask, surrogate, scores.requires_grad, scores.requires_grad)
    n_pairs = pos_mask.sum(dim=1) * neg_mask.sum(dim=1)
    has_pairs = n_pairs > 0
    per_row = rows.sum(dim=1) / n_pairs.clamp_min(1).to(rows.dtype)  # rows without pairs sum to 0
    if reduction == "none":
        return per_row
    if reduction == "sum":
        return per_row.sum()
    return per_row.sum() / has_pairs.sum().clamp_min(1).to(rows.dtype)
