"""Dense SOAP reference: the B⁺×B matrix written out plainly, for checking :class:`APLoss`.

Deliberately naive (one matrix, no sorting, no prefix sums) so that it is easy to verify by eye
against the formulas in REFERENCES.md §2:

    ℓ_is   = surrogate(m − (h(x_i) − h(x_s)))          for every positive i and every sample s
    u_all[i] ← (1−γ)·u_all[i] + γ·mean_s ℓ_is
    u_pos[i] ← (1−γ)·u_pos[i] + γ·mean_s y_s·ℓ_is
    w_is   = (u_pos[i] − u_all[i]·y_s) / u_all[i]²     (detached)
    loss   = mean_{i∈P, s∈batch} w_is·ℓ_is     ("sum": the double sum; "none": the row means over s)
"""

from __future__ import annotations

import torch

from reference_pairwise import surrogate_dense


class DenseSOAP:
    """State (u_all, u_pos) as plain tensors and a ``step`` that builds the full B⁺×B matrix."""

    def __init__(self, num_samples: int, margin: float, gamma: float, surrogate: str,
                 score_transform: str | None = "sigmoid", dtype: torch.dtype = torch.float64):
        self.u_all = torch.zeros(num_samples, dtype=dtype)
        self.u_pos = torch.zeros(num_samples, dtype=dtype)
        self.margin, self.gamma, self.surrogate = margin, gamma, surrogate
        self.score_transform = score_transform

    def step(self, scores: torch.Tensor, labels: torch.Tensor, index: torch.Tensor,
             reduction: str = "mean") -> torch.Tensor:
        y = labels.bool()
        h = torch.sigmoid(scores) if self.score_transform == "sigmoid" else scores
        pos_rows = torch.nonzero(y).flatten()
        # B⁺ × B: row = positive i, column = every sample s of the batch (i itself included)
        t = self.margin - (h[pos_rows][:, None] - h[None, :])
        ell = surrogate_dense(t, self.surrogate)
        y_s = y.to(ell.dtype)[None, :]
        idx = index[pos_rows]
        g = self.gamma
        self.u_all[idx] = (1 - g) * self.u_all[idx] + g * ell.detach().mean(dim=1)
        self.u_pos[idx] = (1 - g) * self.u_pos[idx] + g * (ell.detach() * y_s).mean(dim=1)
        ua = self.u_all[idx][:, None]
        up = self.u_pos[idx][:, None]
        w = (up - ua * y_s) / ua ** 2
        self.last_terms = (w * ell).detach()  # the w_is·ℓ_is, for tolerances scaled to the terms' size
        if reduction == "none":
            return (w * ell).mean(dim=1)
        if reduction == "sum":
            return (w * ell).sum()
        return (w * ell).mean()
