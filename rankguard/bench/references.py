"""Dense reference implementations the benchmarks time the engine against ("what one writes
without the engine"). One copy each, here; the tests keep their own independent references in
``tests/reference*.py``.

* :func:`dense_squared_hinge_mean` — the full n⁺×n⁻ squared-hinge pair matrix;
* :func:`dense_soap_step` — one LibAUC-style dense SOAP (AP) step, forward and backward;
* :func:`dense_adaptive_rank_step` — one adaptive-rank step through the dense B×M pair matrix, in chunks
  of memory columns;
* :func:`naive_triplet_loss` — the SFCML loss as a mean over an explicit list of every
  (user, positive, negative) triplet.
"""

from __future__ import annotations

import torch


def dense_squared_hinge_mean(pos: torch.Tensor, neg: torch.Tensor, margin: float) -> torch.Tensor:
    """mean_ij max(0, m − (p_i − n_j))² through the full n⁺×n⁻ matrix.

    ``pos`` ``[n⁺]``, ``neg`` ``[n⁻]`` -> scalar.

    >>> float(dense_squared_hinge_mean(torch.tensor([1.0]), torch.tensor([0.5, 2.0]), 1.0))  # (0.5² + 2²) / 2
    2.125
    """
    return torch.clamp(margin - (pos[:, None] - neg[None, :]), min=0).pow(2).mean()


def dense_soap_step(scores: torch.Tensor, labels: torch.Tensor, index: torch.Tensor, u_all: torch.Tensor,
                    u_pos: torch.Tensor, margin: float, gamma: float, block_rows: int,
                    max_blocks: int | None = None) -> torch.Tensor:
    """One LibAUC-style dense SOAP step (squared hinge, sigmoid scores), forward AND backward.

    ``scores`` ``[B]`` (requires grad), ``labels`` ``[B]`` bool, ``index`` ``[B]`` dataset indices into
    the moving averages ``u_all``, ``u_pos`` ``[n_data]``. With h = sigmoid(scores) and
    ℓ_ij = max(0, m − (h_i − h_j))² for positive rows i and all columns j:
    u_all[i] ← (1 − γ) u_all[i] + γ mean_j ℓ_ij, u_pos[i] ← (1 − γ) u_pos[i] + γ mean_j y_j ℓ_ij, and the
    loss is Σ_ij w_ij ℓ_ij / (n⁺ B) with w_ij = (u_pos[i] − u_all[i] y_j) / u_all[i]² held constant.

    Builds every B⁺×B entry — block of ``block_rows`` positive rows by block, so memory stays
    bounded. Accumulates ``scores.grad``; updates ``u_all``/``u_pos`` in place; returns the loss value.
    ``max_blocks`` stops after that many blocks (for timing a known fraction of the work only).

    >>> s = torch.tensor([0.0, 1.0], requires_grad=True); u = torch.ones(2); v = torch.ones(2)
    >>> loss = dense_soap_step(s, torch.tensor([False, True]), torch.arange(2), u, v, 0.6, 0.1, 1)
    >>> s.grad is not None
    True
    """
    h_full = torch.sigmoid(scores)
    h = h_full.detach().requires_grad_(True)
    y = labels.to(h.dtype)
    pos_rows = torch.nonzero(labels).flatten()
    n_pos, batch = pos_rows.numel(), h.numel()
    total = torch.zeros((), dtype=h.dtype)
    starts = range(0, n_pos, block_rows)
    for start in starts if max_blocks is None else starts[:max_blocks]:
        rows = pos_rows[start:start + block_rows]
        ell = torch.clamp(margin - (h[rows][:, None] - h[None, :]), min=0).pow(2)
        with torch.no_grad():
            idx = index[rows]
            u_all[idx] = (1 - gamma) * u_all[idx] + gamma * ell.mean(dim=1)
            u_pos[idx] = (1 - gamma) * u_pos[idx] + gamma * (ell * y[None, :]).mean(dim=1)
            weight = (u_pos[idx][:, None] - u_all[idx][:, None] * y[None, :]) / u_all[idx][:, None] ** 2
        part = (weight * ell).sum() / (n_pos * batch)
        part.backward()
        total += part.detach()
    h_full.backward(h.grad)
    return total


def naive_triplet_loss(scores: torch.Tensor, pos_mask: torch.Tensor, margin: float, chunk: int) -> torch.Tensor:
    """Mean over users of the mean over an explicit list of every (positive, negative) triplet.

    ``scores`` ``[U, I]``, ``pos_mask`` ``[U, I]`` bool; per user (m − (s_ui − s_uj))² over every
    positive i and negative j, averaged, then averaged over users with ≥ 1 positive and ≥ 1 negative.
    The triplets are materialised per ``chunk`` of users (``repeat_interleave``) and reduced with
    ``index_add``: the time is the real time for all triplets, not a scaled subset.

    >>> s = torch.tensor([[2.0, 0.0, 1.0]]); m = torch.tensor([[True, False, False]])
    >>> float(naive_triplet_loss(s, m, 1.0, chunk=1))   # ((1 − 2)² + (1 − 1)²) / 2
    0.5
    """
    n_pos, n_neg = pos_mask.sum(1), (~pos_mask).sum(1)
    valid = (n_pos > 0) & (n_neg > 0)
    total = scores.new_zeros(())
    for start in range(0, scores.shape[0], chunk):
        s, pm = scores[start:start + chunk], pos_mask[start:start + chunk]
        pu, pi = pm.nonzero(as_tuple=True)                    # every positive (row, item)
        _, nj = (~pm).nonzero(as_tuple=True)                  # every negative, grouped by row
        nneg = (~pm).sum(1)
        nptr = torch.cumsum(nneg, 0) - nneg
        rep = nneg[pu]                                        # each positive pairs with all its row's negatives
        t_u = torch.repeat_interleave(pu, rep)
        t_i = torch.repeat_interleave(pi, rep)
        within = torch.arange(int(rep.sum())) - torch.repeat_interleave(torch.cumsum(rep, 0) - rep, rep)
        t_j = nj[torch.repeat_interleave(nptr[pu], rep) + within]
        loss_t = (margin - (s[t_u, t_i] - s[t_u, t_j])) ** 2
        per_row = s.new_zeros(s.shape[0]).index_add(0, t_u, loss_t)
        denom = (n_pos[start:start + chunk] * n_neg[start:start + chunk]).clamp(min=1).to(s.dtype)
        total = total + (per_row / denom)[valid[start:start + chunk]].sum()
    return total / valid.sum()


def dense_adaptive_rank_step(scores: torch.Tensor, labels: torch.Tensor, memory_scores: torch.Tensor,
                             memory_labels: torch.Tensor, xi: torch.Tensor, chunk: int,
                             max_chunks: int | None = None) -> torch.Tensor:
    """One adaptive-rank step (the note's form: pair normalisers, α_i detached), forward AND backward,
    through the dense B×M pair matrix built ``chunk`` memory columns at a time (never all of it).

    ``scores`` ``[B]`` and ``xi`` (0-d) require grad; ``labels`` ``[B]`` / ``memory_labels`` ``[M]`` bool.
    L₁ = Σ_{i∈T, j∈D_prev} α_i max(0, m_j − s_i + ξ)² / (|T|·|D_prev|), L₂ = Σ_{i∈D, j∈T_prev}
    max(0, s_i − m_j + ξ)² / (|D|·|T_prev|), α_i = exp(−max(0, s_i − max D_prev)). Every chunk is a masked
    B×chunk matrix (identical work per chunk); each chunk's part is back-propagated at once, so
    ``scores.grad``/``xi.grad`` accumulate. ``max_chunks`` stops after that many chunks (timing a known
    fraction of the work). Returns the loss value (of the chunks done).

    >>> s = torch.tensor([0.6, 0.3], dtype=torch.float64, requires_grad=True)
    >>> xi = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    >>> m = torch.tensor([0.5, 0.4], dtype=torch.float64); ym = torch.tensor([True, False])
    >>> round(float(dense_adaptive_rank_step(s, torch.tensor([True, False]), m, ym, xi, 1)), 6)
    0.018187
    """
    y = labels.bool()
    ym = memory_labels.bool()
    n_t, n_d = int(y.sum()), int((~y).sum())
    n_pt, n_pd = int(ym.sum()), int((~ym).sum())
    top = memory_scores[~ym].max() if n_pd else torch.tensor(float("inf"), dtype=memory_scores.dtype)
    alpha = torch.exp(-torch.clamp(scores.detach() - top, min=0.0))
    w1 = torch.where(y, alpha, torch.zeros_like(alpha))[:, None] / max(n_t * n_pd, 1)
    w2 = (~y).to(scores.dtype)[:, None] / max(n_d * n_pt, 1)
    total = torch.zeros((), dtype=scores.dtype)
    starts = range(0, memory_scores.shape[0], chunk)
    for start in starts if max_chunks is None else starts[:max_chunks]:
        m = memory_scores[start:start + chunk].detach()[None, :]
        dec = (~ym[start:start + chunk]).to(scores.dtype)[None, :]
        s = scores[:, None]
        part = ((w1 * dec) * torch.clamp(m - s + xi, min=0).pow(2)).sum() \
            + ((w2 * (1.0 - dec)) * torch.clamp(s - m + xi, min=0).pow(2)).sum()
        part.backward()
        total += part.detach()
    return total
