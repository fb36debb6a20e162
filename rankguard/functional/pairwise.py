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
``g_i a_i`` (row total minus prefix) in the same sorted order (no second sort). The squared loss needs no sort: its row
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
# Layout: the row is sorted once (descending); ``inv[b, k]`` is the sorted column of original entry
# k. Prefix sums live in the sorted layout; every per-entry quantity is read back in the original
# layout with one gather at ``inv`` (or at a tie group's boundary), so nothing is compacted.

def _padded_cumsum(values: torch.Tensor) -> torch.Tensor:
    """[B, K+1] float64 exclusive prefix sums along dim 1: out[b, k] = Σ_{k' < k} values[b, k']."""
    B, K = values.shape
    out = torch.empty(B, K + 1, dtype=torch.float64, device=values.device)
    out[:, 0] = 0.0
    torch.cumsum(values, dim=1, dtype=torch.float64, out=out[:, 1:])
    return out


def _tie_group_starts(sorted_keys: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """First column of each entry's tie group in a row-sorted [B, K] tensor.

    ``same[b, k]`` says sorted_keys[b, k+1] == sorted_keys[b, k].
    """
    col = torch.arange(sorted_keys.shape[1], device=sorted_keys.device).expand_as(sorted_keys)
    col = col.masked_fill(torch.nn.functional.pad(same, (1, 0)), 0)
    return torch.cummax(col, dim=1).values


class _HingeRowSums(torch.autograd.Function):
    """Row sums R_i = Σ_j ℓ(n_j − a_i) of the hinge surrogates, a_i = p_i − m, ℓ = relu or relu².

    Two layouts share the code. Pairs: ``first`` = pos [n⁺], ``neg`` = neg [n⁻]; one row of
    n⁺ + n⁻ keys; returns R [n⁺]. Masked: ``first`` = scores [B, M], ``neg`` None, bool masks
    ``is_pos``/``is_neg`` [B, M] (entries in neither are ignored); returns R [B, M], 0 off the
    positives.
    """

    @staticmethod
    def forward(ctx, first, neg, is_pos, is_neg, margin, squared, need_pos_grad, need_neg_grad):
        masked = neg is None
        if masked:
            keys = torch.where(is_pos, first - margin, first)
            sort_keys = torch.where(is_pos | is_neg, keys, float("-inf"))
            n_pos = None
        else:
            n_pos = first.shape[0]
            keys = torch.empty(1, n_pos + neg.shape[0], dtype=first.dtype, device=first.device)
            torch.sub(first, margin, out=keys[0, :n_pos])
            keys[0, n_pos:] = neg
            sort_keys = keys
        B, K = keys.shape
        sorted_keys, order = torch.sort(sort_keys, dim=1, descending=True)
        inv = torch.empty_like(order).scatter_(1, order, torch.arange(K, device=keys.device).expand(B, K))
        neg_s = is_neg.gather(1, order) if masked else order >= n_pos
        pos_cols = inv if masked else inv[:, :n_pos]

        # Centre each row at its largest key: the moment sums then see the spread, not the offset.
        centre = sorted_keys[:, :1].to(torch.float64)
        x = sorted_keys - centre  # float64 by type promotion; a new tensor
        if masked:  # -inf fillers (and rows with nothing valid) must not reach the sums
            x.masked_fill_(sorted_keys == float("-inf"), 0.0)
        nx = x.masked_fill(~neg_s, 0.0)

        # Negatives strictly above positive i are those before its tie group's first column.
        # Only ties between a positive and a negative matter; skip the group logic without them.
        same = sorted_keys[:, 1:] == sorted_keys[:, :-1]
        mixed_ties = bool((same & (neg_s[:, 1:] != neg_s[:, :-1])).any())
        at = _tie_group_starts(sorted_keys, same).gather(1, pos_cols) if mixed_ties else pos_cols
        count = _padded_cumsum(neg_s).gather(1, at)
        s1 = _padded_cumsum(nx).gather(1, at)
        xa = (keys if masked else keys[:, :n_pos]) - centre
        lin = s1.sub_(xa * count)  # Σ_active (n_j − a_i); s1 is not needed on its own below
        if squared:
            rows = _padded_cumsum(nx.mul_(nx)).gather(1, at)
            rows.sub_(xa * (2.0 * lin + xa * count))
            d_key = lin.mul_(-2.0)
        else:
            rows = lin
            d_key = count.neg_()
        if masked:
            rows = rows.masked_fill_(~is_pos, 0.0)
        else:
            rows = rows[0]

        ctx.squared, ctx.n_pos, ctx.mixed_ties, ctx.dtype = squared, n_pos, mixed_ties, keys.dtype
        ctx.need_pos_grad, ctx.need_neg_grad = need_pos_grad, need_neg_grad
        ctx.save_for_backward(keys, is_pos, is_neg, sorted_keys, order, inv, x, centre, d_key)
        return rows.to(keys.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_rows):
        keys, is_pos, is_neg, sorted_keys, order, inv, x, centre, d_key = ctx.saved_tensors
        masked, n_pos = ctx.n_pos is None, ctx.n_pos
        B, K = keys.shape
        g = grad_rows.to(torch.float64).reshape(B, -1)
        if masked:
            g = g.masked_fill(~is_pos, 0.0)
        grad_pos = grad_neg = None
        if ctx.need_pos_grad:
            grad_pos = g * d_key
        if ctx.need_neg_grad:
            # Positives strictly below negative j: the row total minus the prefix up to the end of
            # j's tie group (found as a group start in the reversed row).
            g_full = g if masked else torch.nn.functional.pad(g, (0, K - n_pos))
            g_sorted = g_full.gather(1, order)
            neg_cols = inv if masked else inv[:, n_pos:]
            if ctx.mixed_ties:
                rev = sorted_keys.flip(1)
                starts_rev = _tie_group_starts(rev, rev[:, 1:] == rev[:, :-1])
                after = starts_rev.flip(1).gather(1, neg_cols).neg_().add_(K)
            else:
                after = neg_cols + 1

            def below(values_sorted: torch.Tensor) -> torch.Tensor:
                prefix = _padded_cumsum(values_sorted)
                return prefix.gather(1, after).neg_().add_(prefix[:, K:])

            grad_neg = below(g_sorted)  # Σ g_i over positives below
            if ctx.squared:
                xn = (keys if masked else keys[:, n_pos:]) - centre
                grad_neg = xn.mul_(grad_neg).sub_(below(g_sorted.mul_(x))).mul_(2.0)
        if masked:
            grad = torch.zeros(B, K, dtype=torch.float64, device=keys.device)
            if grad_pos is not None:
                grad = torch.where(is_pos, grad_pos, grad)
            if grad_neg is not None:
                grad = torch.where(is_neg, grad_neg, grad)
            return grad.to(ctx.dtype), None, None, None, None, None, None, None
        grad_p = grad_pos[0].to(ctx.dtype) if grad_pos is not None else None
        grad_n = grad_neg[0].to(ctx.dtype) if grad_neg is not None else None
        return grad_p, grad_n, None, None, None, None, None, None


def _squared_row_sums(a: torch.Tensor, neg: torch.Tensor, neg_mask: torch.Tensor | None = None) -> torch.Tensor:
    """R[b, i] = Σ_j (n_bj − a_bi)² from moments of the row's negatives; O(B·(P+Q)), autograd.

    ``a`` [B, P] keys (p − m), ``neg`` [B, Q] with an optional bool ``neg_mask`` [B, Q].
    """
    n64 = neg.to(torch.float64)
    if neg_mask is None:
        q0 = torch.full((n64.shape[0], 1), float(n64.shape[1]), dtype=torch.float64, device=n64.device)
    else:
        n64 = torch.where(neg_mask, n64, 0.0)
        q0 = neg_mask.sum(dim=1, keepdim=True).to(torch.float64)
    centre = n64.detach().sum(dim=1, keepdim=True) / q0.clamp_min(1.0)  # cancels exactly in R
    nc = n64 - centre
    if neg_mask is not None:
        nc = torch.where(neg_mask, nc, 0.0)
    q1 = nc.sum(dim=1, keepdim=True)
    q2 = (nc * nc).sum(dim=1, keepdim=True)
    ac = a.to(torch.float64) - centre
    return (q2 - ac * (2.0 * q1 - ac * q0)).to(a.dtype)


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
    if surrogate == "squared":
        return _squared_row_sums((pos - m).unsqueeze(0), neg.unsqueeze(0))[0]
    return _HingeRowSums.apply(pos, neg, None, None, m, surrogate == "squared_hinge",
                               pos.requires_grad, neg.requires_grad)


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
    if surrogate == "squared":
        rows = torch.where(pos_mask, _squared_row_sums(scores - m, scores, neg_mask), 0.0)
    else:
        rows = _HingeRowSums.apply(scores, None, pos_mask, neg_mask, m, surrogate == "squared_hinge",
                                   scores.requires_grad, scores.requires_grad)
    n_pairs = pos_mask.sum(dim=1) * neg_mask.sum(dim=1)
    has_pairs = n_pairs > 0
    per_row = rows.sum(dim=1) / n_pairs.clamp_min(1).to(rows.dtype)  # rows without pairs sum to 0
    if reduction == "none":
        return per_row
    if reduction == "sum":
        return per_row.sum()
    return per_row.sum() / has_pairs.sum().clamp_min(1).to(rows.dtype)
