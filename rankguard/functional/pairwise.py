"""Exact all-pairs ranking surrogates in O(n log n) time and O(n) memory.

For positives ``p_i`` (i = 1..n⁺), negatives ``n_j`` (j = 1..n⁻), a margin ``m`` and the pair
argument ``t_ij = m − (p_i − n_j)``, the losses here are sums of ``ℓ(t_ij)`` over *all* pairs:

    squared         ℓ(t) = t²
    squared_hinge   ℓ(t) = max(0, t)²
    hinge           ℓ(t) = max(0, t)

The n⁺×n⁻ matrix is never built. Writing ``a_i = p_i − m``, pair (i, j) is active (ℓ > 0 for the
hinges) iff ``n_j > a_i``. One stable descending sort of all keys (the ``a_i`` first, then the
``n_j``) puts, for every positive, exactly its active negatives before it — a negative equal to
``a_i`` comes after it, being later in the input — so prefix sums of ``v_gj, v_gj n_j, v_gj n_j²``
over the negatives (one row per weighting ``v_g``; all ones for plain row sums) give the row sums::

    hinge          R_gi = S1_gi − a_i·C_gi
    squared_hinge  R_gi = S2_gi − 2·a_i·S1_gi + a_i²·C_gi

with ``C_gi, S1_gi, S2_gi`` the weighted count, sum and sum of squares of the active negatives.
Gradients follow the same way: ``∂R_gi/∂p_i`` is ``−C_gi`` (hinge) or ``−2(S1_gi − a_i C_gi)``; for
a negative, ``Σ_gi G_gi ∂R_gi/∂n_j`` runs over the positives *after* it (strictly below; an equal
``a_i`` sorts before it), read from suffix sums of ``G_gi`` and ``G_gi a_i`` in the same sorted
order (no second sort). The squared loss needs no sort: its row sums are weighted moments,
``R_gi = Σ_j v_gj n_j² − 2 a_i Σ_j v_gj n_j + a_i² Σ_j v_gj``.

The sort itself runs on integers: a float32/float64 key's bit pattern, with the magnitude bits of
negative numbers flipped, orders like the float, and torch sorts 1-D integers with a radix sort,
about ten times faster than a float sort.

Ties follow the dense convention exactly: a pair with ``t_ij == 0`` has value 0 and gradient 0
(``torch.relu``'s gradient at 0), so a positive and a negative with equal keys are inactive.
Sums are accumulated in float64 on centred keys whatever the input dtype; the result is cast back to
the input dtype, except that float16/bfloat16 inputs are computed and returned in float32 (a sum over
many pairs would overflow float16). Finite scores whose loss still overflows the result dtype (float32
squares pass its range at |score| ~ 1.8e19) raise :class:`~rankguard._validation.ScoreOverflowError`
(a ``ValueError`` and an ``OverflowError``) naming the argument; the check reads only the reduced
result (row sums, the loss), and scans the inputs only to name the culprit once something overflowed.

``reduction`` is ``'none'``, ``'mean'`` or ``'sum'`` (:func:`~rankguard.functional.reduction.reduce_loss`).
Over all pairs, ``'none'`` cannot return the n⁺×n⁻ matrix; it returns one value per positive, the
mean over its pairs, so that ``'mean'`` is the mean of the ``'none'`` vector.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from rankguard._validation import (
    REDUCTIONS,
    check_choice,
    check_finite_result,
    check_margin,
    check_reduction,
    check_scores_tensor,
    raise_score_overflow,
)
from rankguard.functional.reduction import reduce_loss

SURROGATES = ("squared", "squared_hinge", "hinge")

__all__ = ["REDUCTIONS", "SURROGATES", "pairwise_loss", "pairwise_row_sums", "pairwise_row_sums_grouped",
           "pairwise_loss_masked"]


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------

# Old private names, kept importable for callers elsewhere in the package until they move to the public
# ones: ``rankguard._validation.check_choice`` / ``check_margin``.
_check_choice = check_choice
_check_margin = check_margin


def _check_nonempty(t: torch.Tensor, name: str) -> None:
    if t.shape[0] == 0:
        raise ValueError(f"`{name}` is empty: the all-pairs loss needs at least one element on each side")


_HALF = (torch.float16, torch.bfloat16)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Half-precision inputs are computed (and returned) in float32: a row sum over many pairs easily
    passes float16's 65504 and would come back as inf (e.g. under autocast)."""
    return torch.float32 if dtype in _HALF else dtype


def _common_dtype(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if a.device != b.device:
        raise ValueError(f"`pos_scores` is on {a.device} but `neg_scores` is on {b.device}")
    dtype = _compute_dtype(torch.promote_types(a.dtype, b.dtype))
    return a.to(dtype), b.to(dtype)


def _check_pairs(pos_scores: torch.Tensor, neg_scores: torch.Tensor, surrogate: str,
                 margin: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Checks shared by the pairs-layout entry points; returns (pos, neg) in a common dtype and the margin."""
    check_choice(surrogate, SURROGATES, "surrogate")
    m = check_margin(margin)
    check_scores_tensor(pos_scores, "pos_scores")
    check_scores_tensor(neg_scores, "neg_scores")
    _check_nonempty(pos_scores, "pos_scores")
    _check_nonempty(neg_scores, "neg_scores")
    pos, neg = _common_dtype(pos_scores, neg_scores)
    return pos, neg, m


# --------------------------------------------------------------------------------------------
# shared pieces
# --------------------------------------------------------------------------------------------

def _padded_cumsum(values: torch.Tensor) -> torch.Tensor:
    """[B, K+1] float64 exclusive prefix sums along dim 1: out[b, k] = Σ_{k' < k} values[b, k']."""
    B, K = values.shape
    out = torch.empty(B, K + 1, dtype=torch.float64, device=values.device)
    out[:, 0] = 0.0
    torch.cumsum(values, dim=1, dtype=torch.float64, out=out[:, 1:])
    return out


# float dtype -> (integer dtype of the same width, index of its sign bit)
_SORTABLE_INT = {torch.float32: (torch.int32, 31), torch.float64: (torch.int64, 63)}
# torch 2.x sorts integer tensors of >= 2**15 elements by radix sort; measured here (2 cores), a stable
# sort of 20,000 int32 keys takes ~950 µs, of 32,768 keys ~230 µs
_RADIX_MIN = 2 ** 15
_RADIX_PAD_FROM = 4096


def _sort_descending_stable(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sorted values, order) of 1-D float ``keys`` in descending order; equal keys keep their input order.

    float32/float64 keys are sorted as integers (torch radix-sorts 1-D integer tensors, ~10× faster than
    its float sort): the IEEE bit pattern orders like a sign-magnitude integer, so flipping the magnitude
    bits of negative numbers makes the two's-complement order the float order, and ``~`` reverses it.
    −0.0 is first turned into +0.0, which would otherwise sort as the smaller of two equal keys.
    """
    spec = _SORTABLE_INT.get(keys.dtype)
    if spec is None or keys.device.type != "cpu":
        return torch.sort(keys, descending=True, stable=True)
    int_dtype, sign_bit = spec
    magnitude = torch.iinfo(int_dtype).max
    bits = (keys + 0.0).view(int_dtype)
    desc = bits.bitwise_xor((bits >> sign_bit).bitwise_and_(magnitude)).bitwise_not_()
    n = desc.shape[0]
    if _RADIX_PAD_FROM < n < _RADIX_MIN:
        # torch radix-sorts integers only from 2**15 elements on; below that its stable sort is ~4x
        # slower than padding up to 2**15 with sentinels that sort last (no finite key maps to the
        # integer maximum: that pattern is a NaN) and slicing them off
        pad = desc.new_full((_RADIX_MIN - n,), torch.iinfo(int_dtype).max)
        sorted_desc, order = torch.sort(torch.cat([desc, pad]), stable=True)
        sorted_desc, order = sorted_desc[:n], order[:n]
    else:
        sorted_desc, order = torch.sort(desc, stable=True)
    undo = sorted_desc.bitwise_not_()  # the flip is its own inverse (it keeps the sign bit)
    undo.bitwise_xor_((undo >> sign_bit).bitwise_and_(magnitude))
    return undo.view(keys.dtype), order


# --------------------------------------------------------------------------------------------
# the engine, pairs layout: positives [n⁺] against negatives [n⁻], one or more weightings
# --------------------------------------------------------------------------------------------
# Layout: one row of K = n⁺ + n⁻ keys (positives' a_i first, then the negatives), sorted once;
# ``inv[k]`` is the sorted column of key k. Prefix sums live in the sorted layout and are read
# back with one gather at ``inv``.

class _GroupedHingeRowSums(torch.autograd.Function):
    """R[g, i] = Σ_j v_gj ℓ(n_j − a_i), a_i = p_i − m, ℓ = relu or relu².

    ``weights`` is a constant float64 [G, n⁻] tensor, or None for v = 1 (G = 1); returns R [G, n⁺].
    """

    @staticmethod
    def forward(ctx, pos, neg, weights, margin, squared, need_pos_grad, need_neg_grad):
        n_pos = pos.shape[0]
        K = n_pos + neg.shape[0]
        keys = torch.empty(K, dtype=pos.dtype, device=pos.device)
        torch.sub(pos, margin, out=keys[:n_pos])
        keys[n_pos:] = neg
        sorted_keys, order = _sort_descending_stable(keys)
        inv = torch.empty_like(order).scatter_(0, order, torch.arange(K, device=keys.device))
        at = inv[:n_pos]  # sorted column of each positive

        # Centre at the largest key: the moment sums then see the spread, not the offset.
        centre = sorted_keys[:1].to(torch.float64)
        x = sorted_keys - centre  # float64 by type promotion; a new tensor
        if weights is None:
            w = (order >= n_pos).to(torch.float64).unsqueeze(0)
        else:  # zero weight at the positives' columns
            w = torch.nn.functional.pad(weights, (n_pos, 0))
            w = w.gather(1, order.expand_as(w))  # (gather beats index_select along dim 1)
        G = w.shape[0]
        moments = torch.empty((3 if squared else 2) * G, K, dtype=torch.float64, device=keys.device)
        moments[:G] = w
        torch.mul(w, x, out=moments[G:2 * G])
        if squared:
            torch.mul(moments[G:2 * G], x, out=moments[2 * G:])
        sums = _padded_cumsum(moments).gather(1, at.expand(moments.shape[0], n_pos))  # negatives before each positive
        xa = x.index_select(0, at)
        count = sums[:G]
        lin = sums[G:2 * G].sub_(xa * count)  # Σ_active v (n_j − a_i)
        if squared:
            rows = sums[2 * G:].sub_(xa * (2.0 * lin + xa * count))
            d_key = lin.mul_(-2.0)
        else:
            rows = lin  # a view of its own rows of ``sums``, apart from ``count``
            d_key = count.neg_()

        ctx.squared, ctx.n_pos, ctx.dtype = squared, n_pos, keys.dtype
        ctx.need_pos_grad, ctx.need_neg_grad = need_pos_grad, need_neg_grad
        ctx.save_for_backward(inv, x, w, d_key if need_pos_grad else None)
        return rows.to(keys.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_rows):
        inv, x, w, d_key = ctx.saved_tensors
        n_pos, (G, K) = ctx.n_pos, w.shape
        at = inv[:n_pos]
        g = grad_rows.to(torch.float64)
        grad_pos = grad_neg = None
        if ctx.need_pos_grad:
            grad_pos = (g * d_key).sum(dim=0).to(ctx.dtype)
        if ctx.need_neg_grad:
            # Σ over the positives after (strictly below) each column: row total minus inclusive prefix.
            placed = torch.zeros((2 if ctx.squared else 1) * G, K, dtype=torch.float64, device=g.device)
            cols = at.expand(G, n_pos)
            placed[:G].scatter_(1, cols, g)
            if ctx.squared:
                placed[G:].scatter_(1, cols, g * x.index_select(0, at))
            prefix = _padded_cumsum(placed)
            below = torch.sub(prefix[:, K:], prefix[:, 1:])
            if ctx.squared:  # 2 Σ_g v_gj Σ_below G_gi (n_j − a_i)
                per_col = below[:G].mul_(x).sub_(below[G:]).mul_(w).sum(dim=0).mul_(2.0)
            else:
                per_col = below.mul_(w).sum(dim=0)
            grad_neg = per_col.index_select(0, inv[n_pos:]).to(ctx.dtype)
        return grad_pos, grad_neg, None, None, None, None, None


# --------------------------------------------------------------------------------------------
# the engine, masked layout: rows [B, M], each entry a positive, a negative or neither
# --------------------------------------------------------------------------------------------
# Layout: each row is sorted once (descending); ``inv[b, k]`` is the sorted column of entry k.
# Per-entry quantities are read back with one gather at ``inv`` (or at a tie group's boundary),
# so nothing is compacted.

def _tie_group_starts(sorted_keys: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """First column of each entry's tie group in a row-sorted [B, K] tensor.

    ``same[b, k]`` says sorted_keys[b, k+1] == sorted_keys[b, k].
    """
    col = torch.arange(sorted_keys.shape[1], device=sorted_keys.device).expand_as(sorted_keys)
    col = col.masked_fill(torch.nn.functional.pad(same, (1, 0)), 0)
    return torch.cummax(col, dim=1).values


class _MaskedHingeRowSums(torch.autograd.Function):
    """Row sums R[b, k] = Σ_{j ∈ N_b} ℓ(s_bj − a_bk) at the positives k ∈ P_b (0 elsewhere).

    ℓ = relu or relu²; a_bk = s_bk − m.
    ``scores`` [B, M] with bool masks ``is_pos``/``is_neg`` [B, M] (entries in neither are ignored).
    """

    @staticmethod
    def forward(ctx, scores, is_pos, is_neg, margin, squared):
        keys = torch.where(is_pos, scores - margin, scores)
        sort_keys = torch.where(is_pos | is_neg, keys, float("-inf"))
        B, K = keys.shape
        sorted_keys, order = torch.sort(sort_keys, dim=1, descending=True)
        inv = torch.empty_like(order).scatter_(1, order, torch.arange(K, device=keys.device).expand(B, K))
        neg_s = is_neg.gather(1, order)

        centre = sorted_keys[:, :1].to(torch.float64)
        x = sorted_keys - centre  # float64 by type promotion; a new tensor
        x.masked_fill_(sorted_keys == float("-inf"), 0.0)  # fillers (and empty rows) stay out of the sums
        nx = x.masked_fill(~neg_s, 0.0)

        # Negatives strictly above positive k are those before its tie group's first column.
        # Only ties between a positive and a negative matter; skip the group logic without them.
        same = sorted_keys[:, 1:] == sorted_keys[:, :-1]
        mixed_ties = bool((same & (neg_s[:, 1:] != neg_s[:, :-1])).any())
        at = _tie_group_starts(sorted_keys, same).gather(1, inv) if mixed_ties else inv
        count = _padded_cumsum(neg_s).gather(1, at)
        s1 = _padded_cumsum(nx).gather(1, at)
        xa = keys - centre
        lin = s1.sub_(xa * count)  # Σ_active (n_j − a_k); s1 is not needed on its own below
        if squared:
            rows = _padded_cumsum(nx.mul_(nx)).gather(1, at)
            rows.sub_(xa * (2.0 * lin + xa * count))
            d_key = lin.mul_(-2.0)
        else:
            rows = lin
            d_key = count.neg_()
        rows = rows.masked_fill_(~is_pos, 0.0)

        ctx.squared, ctx.mixed_ties, ctx.dtype = squared, mixed_ties, keys.dtype
        ctx.save_for_backward(keys, is_pos, is_neg, sorted_keys, order, inv, x, centre, d_key)
        return rows.to(keys.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_rows):
        keys, is_pos, is_neg, sorted_keys, order, inv, x, centre, d_key = ctx.saved_tensors
        B, K = keys.shape
        g = grad_rows.to(torch.float64).masked_fill(~is_pos, 0.0)
        grad_pos = g * d_key
        # Positives strictly below negative j: the row total minus the prefix up to the end of
        # j's tie group (found as a group start in the reversed row).
        g_sorted = g.gather(1, order)
        if ctx.mixed_ties:
            rev = sorted_keys.flip(1)
            starts_rev = _tie_group_starts(rev, rev[:, 1:] == rev[:, :-1])
            after = starts_rev.flip(1).gather(1, inv).neg_().add_(K)
        else:
            after = inv + 1

        def below(values_sorted: torch.Tensor) -> torch.Tensor:
            prefix = _padded_cumsum(values_sorted)
            return prefix.gather(1, after).neg_().add_(prefix[:, K:])

        grad_neg = below(g_sorted)  # Σ g_k over positives below
        if ctx.squared:
            grad_neg = (keys - centre).mul_(grad_neg).sub_(below(g_sorted.mul_(x))).mul_(2.0)
        grad = torch.where(is_pos, grad_pos, torch.where(is_neg, grad_neg, 0.0))
        return grad.to(ctx.dtype), None, None, None, None


def _squared_row_sums(a: torch.Tensor, neg: torch.Tensor, neg_weights: torch.Tensor | None = None) -> torch.Tensor:
    """R[r, i] = Σ_j v_rj (n_rj − a_ri)² from weighted moments of the negatives; O(R·(P+Q)), autograd.

    ``a`` [R or 1, P] keys (p − m), ``neg`` [R or 1, Q], constant weights ``neg_weights`` [R, Q] (bool mask
    or float; None: all ones). Broadcasting lets one row of keys meet R weightings.
    """
    n64 = neg.to(torch.float64)
    if neg_weights is None:
        v = None
        centre = n64.detach().mean(dim=1, keepdim=True)
    else:
        v = neg_weights.to(torch.float64)
        mass = v.abs().sum(dim=1, keepdim=True)
        centre = (v.abs() * n64.detach()).sum(dim=1, keepdim=True) / mass.clamp_min(torch.finfo(torch.float64).tiny)
    nc = n64 - centre  # any constant centre cancels exactly in R; the weighted mean keeps the sums small
    if v is None:
        q0 = torch.full_like(centre, float(n64.shape[1]))
        q1 = nc.sum(dim=1, keepdim=True)
        q2 = (nc * nc).sum(dim=1, keepdim=True)
    else:
        q0 = v.sum(dim=1, keepdim=True)
        vnc = v * nc
        q1 = vnc.sum(dim=1, keepdim=True)
        q2 = (vnc * nc).sum(dim=1, keepdim=True)
    ac = a.to(torch.float64) - centre
    return (q2 - ac * (2.0 * q1 - ac * q0)).to(a.dtype)


def _flat_nonzero(mask: torch.Tensor) -> torch.Tensor:
    """Flat indices of the True entries of a bool tensor (numpy's scan is ~2x torch's on CPU)."""
    if mask.device.type == "cpu":
        return torch.from_numpy(np.flatnonzero(mask.numpy()))
    return mask.reshape(-1).nonzero().squeeze(1)


def _masked_neg_stats(d: torch.Tensor, neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(count, mean, centred sum of squares) of the rows of ``d`` [R, M] over ``neg``; two-pass."""
    count = neg.sum(dim=1).to(torch.float64)
    mean = torch.where(neg, d, 0.0).sum(dim=1) / count.clamp_min(1.0)
    dev = torch.where(neg, d - mean[:, None], 0.0)
    return count, mean, torch.linalg.vecdot(dev, dev)


# below this fraction of the row's total sum of squares, the negatives' sum of squares found as
# (row total − positives') has lost too many digits and is recomputed by a masked two-pass
_COMPLEMENT_RTOL = 1e-3
# a row whose raw Σ s² exceeds this many times its centred sum of squares (|mean| ≳ 30 std) loses
# digits in Σ s² − M·mean² and in the backward's affine pass; such rows are centred explicitly
_OFFSET_RATIO = 1e3


class _SquaredPairMeans(torch.autograd.Function):
    """L_b = mean over P_b × N_b of (s_bn − a_bp)², a = s − m, in closed form.

    Returns ([B] float64 L_b, [B] bool "row has pairs").

    ``L_b = var(a) + var(n) + (mean n − mean a)²`` (population variances) from moments about the row
    mean ``c_b``: the row's ``Σ s`` and ``Σ s²`` (rows with a large offset are centred explicitly),
    the positives' gathered by index and centred two-pass, the negatives' as the difference when
    ``neg_mask`` is None (the complement of ``pos_mask``). Backward: one affine pass
    ``2g/|N_b| · (s − mean a)`` and a scatter at the positives ``2g/|P_b| · (a_p − mean n)``.
    Rows without pairs get 0 and a zero gradient.
    """

    @staticmethod
    def forward(ctx, scores, pos_mask, neg_mask, margin):
        B, M = scores.shape
        x = scores.to(torch.float64).contiguous()  # the backward's affine pass keeps x's layout
        row_sum = x.sum(dim=1)
        sumsq = torch.linalg.vector_norm(x, dim=1).square_()  # no [B, M] temporary, unlike vecdot
        if not bool(torch.isfinite(row_sum).all() & torch.isfinite(sumsq).all()):
            check_scores_tensor(scores, "scores", ndim=2)  # names the argument on NaN/inf
            raise_score_overflow("scores", scores, torch.float64)
        centre = row_sum / M
        ss_all = sumsq - row_sum * centre
        resid = torch.zeros_like(centre)  # Σ (s − c): 0 up to the rounding of c, kept for offset rows
        offset = (sumsq > _OFFSET_RATIO * ss_all).nonzero().squeeze(1)
        if offset.numel():
            d = x[offset] - centre[offset, None]
            ss_all[offset] = torch.linalg.vecdot(d, d)
            resid[offset] = d.sum(dim=1)

        flat = _flat_nonzero(pos_mask).to(x.device)
        rows = torch.div(flat, M, rounding_mode="floor")
        dp = x.reshape(-1).take(flat) - centre[rows]
        n_pos = torch.bincount(rows, minlength=B).to(torch.float64)
        mean_p = torch.bincount(rows, weights=dp, minlength=B) / n_pos.clamp_min(1.0)
        dev_p = dp - mean_p[rows]
        ss_p = torch.bincount(rows, weights=dev_p * dev_p, minlength=B)

        if neg_mask is None:
            n_neg = M - n_pos
            mean_n = (resid - n_pos * mean_p) / n_neg.clamp_min(1.0)
            ss_n = ss_all - ss_p - n_pos * mean_p.square() - n_neg * mean_n.square()
            lost = ((ss_n < _COMPLEMENT_RTOL * ss_all) & (n_pos > 0) & (n_neg > 0)).nonzero().squeeze(1)
            if lost.numel():
                _, mean_n[lost], ss_n[lost] = _masked_neg_stats(x[lost] - centre[lost, None], ~pos_mask[lost])
        else:
            n_neg, mean_n, ss_n = _masked_neg_stats(x - centre[:, None], neg_mask)

        has_pairs = (n_pos > 0) & (n_neg > 0)
        gap = mean_n - mean_p + margin  # mean n − mean a, both about the same centre
        per_row = ss_p / n_pos.clamp_min(1.0) + ss_n.clamp_min(0.0) / n_neg.clamp_min(1.0) + gap.square()
        per_row = per_row.masked_fill_(~has_pairs, 0.0)

        ctx.margin, ctx.dtype = margin, scores.dtype
        ctx.save_for_backward(x, centre, offset, flat, rows, dp, n_pos, n_neg, mean_p, mean_n, has_pairs, neg_mask)
        ctx.mark_non_differentiable(has_pairs)
        return per_row, has_pairs

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_rows, _grad_has_pairs):
        x, centre, offset, flat, rows, dp, n_pos, n_neg, mean_p, mean_n, has_pairs, neg_mask = ctx.saved_tensors
        g = grad_rows.to(torch.float64).masked_fill(~has_pairs, 0.0).mul_(2.0)
        alpha_n = g / n_neg.clamp_min(1.0)
        mean_a = mean_p - ctx.margin  # about the centre
        # negatives: 2g/|N| · (s − c − mean a), one affine pass over the block
        grad = torch.addcmul((-alpha_n * (centre + mean_a))[:, None], x, alpha_n[:, None])
        if offset.numel():  # there s·α − c·α would cancel: centre first
            grad[offset] = (x[offset] - centre[offset, None]).sub_(mean_a[offset, None]).mul_(alpha_n[offset, None])
        if neg_mask is not None:
            grad = grad.masked_fill_(~neg_mask, 0.0)
        alpha_p = g / n_pos.clamp_min(1.0)
        at_pos = (dp - ctx.margin - mean_n[rows]).mul_(alpha_p[rows])  # 2g/|P| · (a_p − mean n)
        grad.view(-1).index_copy_(0, flat, at_pos)
        return grad.to(ctx.dtype), None, None, None


_PAIR_NAMES = ("pos_scores", "neg_scores")


def _grouped_row_sums(pos: torch.Tensor, neg: torch.Tensor, weights: torch.Tensor | None, surrogate: str,
                      margin: float, names: tuple[str, str] = _PAIR_NAMES, hint: str = "") -> torch.Tensor:
    """[G, n⁺] weighted row sums of checked inputs (common dtype; ``weights`` None or float64 [G, n⁻]).

    Rows that overflow the dtype raise ``ScoreOverflowError`` naming the larger of ``pos`` / ``neg``
    by ``names`` (callers whose positives and negatives are one argument pass its name twice), with
    ``hint`` as an extra remedy.
    """
    if surrogate == "squared":
        rows = _squared_row_sums((pos - margin).unsqueeze(0), neg.unsqueeze(0), weights)
    else:
        rows = _GroupedHingeRowSums.apply(pos, neg, weights, margin, surrogate == "squared_hinge",
                                          pos.requires_grad, neg.requires_grad)
    check_finite_result((rows,), ((names[0], pos), (names[1], neg)), hint)
    return rows


def _pairwise_loss(pos: torch.Tensor, neg: torch.Tensor, surrogate: str, margin: float,
                   pos_weights: torch.Tensor | None, reduction: str,
                   names: tuple[str, str] = _PAIR_NAMES) -> torch.Tensor:
    """:func:`pairwise_loss` on checked inputs (see :func:`_grouped_row_sums` for ``names``)."""
    rows = _grouped_row_sums(pos, neg, None, surrogate, margin, names)[0]
    if pos_weights is not None:
        rows = rows * pos_weights.to(rows.dtype)
    loss = reduce_loss(rows, reduction, terms=neg.shape[0])
    inputs = ((names[0], pos), (names[1], neg)) + ((("pos_weights", pos_weights),) if pos_weights is not None else ())
    check_finite_result((loss,), inputs)  # a float32 total can overflow where every row does not
    return loss

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
    pos, neg, m = _check_pairs(pos_scores, neg_scores, surrogate, margin)
    return _grouped_row_sums(pos, neg, None, surrogate, m)[0]


def pairwise_row_sums_grouped(pos_scores: torch.Tensor, neg_scores: torch.Tensor, neg_weights: torch.Tensor,
                              surrogate: str = "squared_hinge", margin: float = 1.0) -> torch.Tensor:
    """Per-positive sums of the pair surrogate under several weightings of the negatives at once.

    ``R[g, i] = Σ_j v[g, j] · ℓ(margin − (pos_i − neg_j))`` with ``ℓ`` as in :func:`pairwise_row_sums`
    and ``v = neg_weights``. All G weightings share one sort: O((n⁺+n⁻) log(n⁺+n⁻) + G·(n⁺+n⁻)) time,
    O(G·(n⁺+n⁻)) memory. For example SOAP (average precision) needs, per positive, the sum over the
    whole batch (v = 1) and over the batch's positives (v = y): pass the batch as ``neg_scores``
    and ``neg_weights = torch.stack([torch.ones_like(y), y])``.

    Args:
        pos_scores: [n⁺] floating tensor, n⁺ ≥ 1.
        neg_scores: [n⁻] floating tensor, n⁻ ≥ 1 (promoted to a common dtype with pos_scores).
        neg_weights: [G, n⁻] finite floating weights, G ≥ 1, any sign. They are constants: a tensor that
            requires grad is rejected (detach it). Sums are accumulated in float64.
        surrogate: "squared", "squared_hinge" or "hinge".
        margin: finite real ``m``.

    Returns:
        [G, n⁺] tensor of row sums in the scores' common dtype, differentiable in pos_scores and neg_scores.

    Example (the hinge rows of :func:`pairwise_row_sums`'s example are [0.5 + 2, 0 + 1]):
        >>> v = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
        >>> pairwise_row_sums_grouped(torch.tensor([1.0, 2.0]), torch.tensor([0.5, 2.0]), v, "hinge", 1.0)
        tensor([[2.5000, 1.0000],
                [0.5000, 0.0000]])
    """
    pos, neg, m = _check_pairs(pos_scores, neg_scores, surrogate, margin)
    check_scores_tensor(neg_weights, "neg_weights", ndim=2)
    if neg_weights.shape[0] == 0 or neg_weights.shape[1] != neg_scores.shape[0]:
        raise ValueError(f"`neg_weights` must have shape [G, {neg_scores.shape[0]}] with G >= 1 (one row per "
                         f"weighting of the negatives), got {tuple(neg_weights.shape)}")
    if neg_weights.requires_grad:
        raise ValueError("`neg_weights` requires grad, but the weights are treated as constants; pass "
                         "`neg_weights.detach()`")
    if neg_weights.device != neg_scores.device:
        raise ValueError(f"`neg_weights` is on {neg_weights.device} but `neg_scores` is on {neg_scores.device}")
    return _grouped_row_sums(pos, neg, neg_weights.to(torch.float64), surrogate, m)


def pairwise_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor, surrogate: str = "squared_hinge",
                  margin: float = 1.0, pos_weights: torch.Tensor | None = None,
                  reduction: str = "mean") -> torch.Tensor:
    """Exact all-pairs ranking surrogate without the n⁺×n⁻ matrix.

    ``L = Σ_i Σ_j w_i · ℓ(margin − (pos_i − neg_j))`` for ``reduction="sum"``, divided by ``n⁺·n⁻``
    for ``"mean"``; ``"none"`` gives the per-positive means ``L_i = (w_i/n⁻) Σ_j ℓ(…)`` ([n⁺], so
    ``"mean"`` is their mean and ``"sum"`` is ``n⁻`` times their sum). ``ℓ(t)`` = ``t²`` ("squared"),
    ``max(0,t)²`` ("squared_hinge") or ``max(0,t)`` ("hinge"); ``w_i = 1`` when ``pos_weights`` is
    None. The weighted mean divides by the pair count ``n⁺·n⁻``, not by ``n⁻·Σw``. At ``t = 0`` the
    hinge gradient is 0, as ``torch.relu``'s. O((n⁺+n⁻) log(n⁺+n⁻)) time and O(n⁺+n⁻) memory.

    Args:
        pos_scores: [n⁺] scores of positives, n⁺ ≥ 1.
        neg_scores: [n⁻] scores of negatives, n⁻ ≥ 1; may be a constant memory bank.
        surrogate: "squared", "squared_hinge" or "hinge".
        margin: finite real ``m``.
        pos_weights: optional [n⁺] finite per-positive weights (differentiable).
        reduction: "mean", "sum" or "none" (per-positive means, [n⁺]).

    Returns:
        Scalar tensor ([n⁺] for "none"), differentiable in pos_scores, neg_scores and pos_weights.

    Raises:
        ScoreOverflowError (a ValueError): finite scores whose loss overflows the dtype, e.g. float32
            squares at |score| ≳ 1.8e19; the message names the larger argument.

    Example (t = 1 − (2 − 0.5) = −0.5 and 1 − (2 − 2) = 1; the second positive's t = 0, 1.5):
        >>> pairwise_loss(torch.tensor([2.0]), torch.tensor([0.5, 2.0]), "squared", 1.0)
        tensor(0.6250)
        >>> pairwise_loss(torch.tensor([2.0, 1.0]), torch.tensor([0.5, 2.0]), "hinge", 1.0, reduction="none")
        tensor([0.5000, 1.2500])
    """
    check_reduction(reduction)
    pos, neg, m = _check_pairs(pos_scores, neg_scores, surrogate, margin)
    if pos_weights is not None:
        check_scores_tensor(pos_weights, "pos_weights")
        if pos_weights.shape != pos_scores.shape:
            raise ValueError(f"`pos_weights` must have shape {tuple(pos_scores.shape)} (one weight per positive), "
                             f"got {tuple(pos_weights.shape)}")
    return _pairwise_loss(pos, neg, surrogate, m, pos_weights, reduction)


def pairwise_loss_masked(scores: torch.Tensor, pos_mask: torch.Tensor, neg_mask: torch.Tensor | None = None,
                         surrogate: str = "squared_hinge", margin: float = 1.0,
                         reduction: str = "mean") -> torch.Tensor:
    """Row-wise all-pairs surrogate, e.g. users × items in recommendation.

    For each row b with positives P_b = {k : pos_mask[b,k]} and negatives N_b = {k : neg_mask[b,k]}:
    ``L_b = (1 / (|P_b|·|N_b|)) Σ_{p∈P_b} Σ_{n∈N_b} ℓ(margin − (s_bp − s_bn))``, ℓ as in
    :func:`pairwise_loss`. Entries in neither mask are ignored. Rows without a positive or without a
    negative have no pairs: they give ``L_b = 0`` and are left out of the mean.

    The hinges use one batched sort, O(B·M log M) time, O(B·M) memory. "squared" has the closed form
    ``L_b = var(a) + var(n) + (mean n − mean a)²`` over ``a = s_P − margin`` and ``n = s_N``
    (population variances), a few passes over the block; with ``neg_mask=None`` the negatives'
    moments are the row's minus the (gathered) positives'.

    Args:
        scores: [B, M] floating scores.
        pos_mask: [B, M] bool, True at positives.
        neg_mask: [B, M] bool, True at negatives; must not overlap pos_mask. None: every entry that is
            not a positive (``~pos_mask``, the cheapest case).
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
    check_choice(surrogate, SURROGATES, "surrogate")
    check_reduction(reduction)
    m = check_margin(margin)
    if not isinstance(scores, torch.Tensor) or not scores.is_floating_point() or scores.dim() != 2:
        check_scores_tensor(scores, "scores", ndim=2)  # raises with the precise complaint
    masks = (("pos_mask", pos_mask),) if neg_mask is None else (("pos_mask", pos_mask), ("neg_mask", neg_mask))
    for name, mask in masks:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise TypeError(f"`{name}` must be a bool tensor, got "
                            f"{getattr(mask, 'dtype', type(mask).__name__)}")
        if mask.shape != scores.shape:
            raise ValueError(f"`{name}` must have the shape of `scores` {tuple(scores.shape)}, "
                             f"got {tuple(mask.shape)}")
    if neg_mask is not None and bool((pos_mask & neg_mask).any()):
        raise ValueError("`pos_mask` and `neg_mask` overlap: an entry cannot be both positive and negative")
    scores = scores.to(_compute_dtype(scores.dtype))
    if surrogate == "squared":
        # the closed form checks finiteness from its own row sums (NaN/inf error names `scores`)
        per_row, has_pairs = _SquaredPairMeans.apply(scores, pos_mask, neg_mask, m)
        per_row = per_row.to(scores.dtype)
    else:
        check_scores_tensor(scores, "scores", ndim=2)
        if neg_mask is None:
            neg_mask = ~pos_mask
        rows = _MaskedHingeRowSums.apply(scores, pos_mask, neg_mask, m, surrogate == "squared_hinge")
        n_pairs = pos_mask.sum(dim=1) * neg_mask.sum(dim=1)
        has_pairs = n_pairs > 0
        per_row = rows.sum(dim=1) / n_pairs.clamp_min(1).to(rows.dtype)  # rows without pairs sum to 0
    check_finite_result((per_row,), (("scores", scores),))  # e.g. float32 squares at |score| ≳ 1.8e19
    return reduce_loss(per_row, reduction, count=has_pairs.sum())
