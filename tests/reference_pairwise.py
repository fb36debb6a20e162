"""Dense O(n⁺·n⁻) references for the all-pairs engine: the formulas written out with the full matrix.

Plain torch autograd on the matrix gives the reference gradients (``torch.relu`` convention:
gradient 0 at t = 0).
"""

from __future__ import annotations

import torch


def surrogate_dense(t: torch.Tensor, surrogate: str) -> torch.Tensor:
    """ℓ(t) elementwise: t², relu(t)², relu(t)."""
    if surrogate == "squared":
        return t * t
    if surrogate == "squared_hinge":
        return torch.relu(t) ** 2
    if surrogate == "hinge":
        return torch.relu(t)
    raise ValueError(surrogate)


def row_sums_dense(pos, neg, surrogate, margin):
    """R_i = Σ_j ℓ(m − (p_i − n_j)) via the n⁺×n⁻ matrix."""
    t = margin - (pos[:, None] - neg[None, :])
    return surrogate_dense(t, surrogate).sum(dim=1)


def pairwise_loss_dense(pos, neg, surrogate, margin, pos_weights=None, reduction="mean"):
    """Σ_ij w_i ℓ(t_ij), divided by n⁺n⁻ for "mean"; "none": the matrix's row means times w_i."""
    if reduction == "none":
        ell = surrogate_dense(margin - (pos[:, None] - neg[None, :]), surrogate)
        w = torch.ones_like(pos) if pos_weights is None else pos_weights
        return ell.mean(dim=1) * w
    rows = row_sums_dense(pos, neg, surrogate, margin)
    if pos_weights is not None:
        rows = rows * pos_weights
    total = rows.sum()
    return total / (pos.shape[0] * neg.shape[0]) if reduction == "mean" else total


def pairwise_loss_masked_loop(scores, pos_mask, neg_mask, surrogate, margin, reduction="mean"):
    """Python loop over rows; each row is the dense mean over its (pos, neg) pairs."""
    per_row = []
    valid = []
    for b in range(scores.shape[0]):
        p = scores[b][pos_mask[b]]
        n = scores[b][neg_mask[b]]
        if p.numel() == 0 or n.numel() == 0:
            per_row.append(scores[b].sum() * 0.0)
            continue
        per_row.append(pairwise_loss_dense(p, n, surrogate, margin))
        valid.append(b)
    per_row = torch.stack(per_row)
    if reduction == "none":
        return per_row
    if reduction == "sum":
        return per_row.sum()
    if not valid:
        return per_row.sum() * 0.0
    return per_row[valid].mean()
