"""SOAP average-precision loss (Qi et al., NeurIPS 2021) in O(B log B) per batch.

The module only adds state (two moving averages per positive dataset index) and defaults; the
all-pairs sums come from :mod:`rankguard.functional.pairwise`, so no B⁺×B matrix is ever built.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from rankguard._validation import binary_labels_tensor, check_scores_tensor
from rankguard.functional.pairwise import SURROGATES, _check_choice, _check_margin, _grouped_row_sums

_TRANSFORMS = ("sigmoid", None)


class APLoss(nn.Module):
    r"""SOAP surrogate of average precision with per-sample moving averages.

    AP over a dataset is approximated (REFERENCES.md §2) by

        AP ≈ (1/n⁺) Σ_{i∈P} [Σ_s y_s ℓ_is] / [Σ_s ℓ_is],   ℓ_is = ℓ(m − (h(x_i) − h(x_s))),

    with ℓ the ``surrogate`` (``"squared_hinge"`` max(0,t)², ``"hinge"`` max(0,t), ``"squared"`` t²)
    and h the scores after ``score_transform`` (sigmoid by default, as in the SOAP paper, LibAUC's
    ``APLoss`` and the Adversarial-AP code; ``None`` uses the raw scores).

    Each call, for every positive i of the batch (dataset index ``index[i]``):

        u_all[i] ← (1−γ)·u_all[i] + γ·(1/B) Σ_s ℓ_is
        u_pos[i] ← (1−γ)·u_pos[i] + γ·(1/B) Σ_s y_s·ℓ_is
        loss     = 1/(B⁺·B) Σ_{i∈P} Σ_s w_is·ℓ_is,   w_is = (u_pos[i] − u_all[i]·y_s) / u_all[i]²

    The moving averages are updated *before* the weights are formed (as LibAUC does) and the
    weights are detached, so the gradient is the SOAP stochastic gradient of −AP. The sum over s
    runs over **every** sample of the batch, the positive i itself included (the diagonal pair
    contributes ℓ(m) > 0), exactly as the formula reads and as LibAUC does. Because the weights
    factor per row, Σ_s w_is ℓ_is = (u_pos[i]/u_all[i]²)·Σ_s ℓ_is − (1/u_all[i])·Σ_{s∈P} ℓ_is: one
    call of :func:`~rankguard.functional.pairwise.pairwise_row_sums_grouped` (positives vs the batch
    under the weightings 1 and y_s, one sort), O(B log B) time and O(B) memory.

    Args:
        num_samples: size of the dataset; ``index`` values must lie in ``[0, num_samples)``.
        margin: m > 0. It keeps u_all > 0 after every update (the diagonal term is ℓ(m) > 0),
            so the weights never divide by zero; ``margin <= 0`` is rejected.
        gamma: γ ∈ (0, 1], the weight of the new batch in the moving averages.
        surrogate: ``"squared_hinge"`` (default, the paper's), ``"hinge"`` or ``"squared"``.
        score_transform: ``"sigmoid"`` (default) or ``None``.

    Defaults m = 0.6, γ = 0.1 follow the Adversarial-AP code (Li, Tong, Yang, NeurIPS 2023),
    which trains SOAP on sigmoid scores (REFERENCES.md §2).

    State: buffers ``u_all`` and ``u_pos`` of shape ``[num_samples]`` (start at 0) — saved in
    ``state_dict`` and moved by ``.to()``.

    Shapes: ``scores`` [B] float (raw model outputs), ``labels`` [B] in {0,1}, {−1,1} or bool,
    ``index`` [B] integer dataset indices, all distinct within a batch (a repeated index would make
    two updates of one moving average in one step; it raises ``ValueError``). A batch needs at least
    one positive (SOAP has no term otherwise; ``ValueError`` naming ``labels``). Returns a scalar.

    >>> loss_fn = APLoss(num_samples=10)
    >>> scores = torch.tensor([2.0, -1.0, 0.5, 0.0], requires_grad=True)
    >>> loss = loss_fn(scores, torch.tensor([1, 0, 1, 0]), torch.tensor([0, 3, 7, 9]))
    >>> loss.backward(); loss.shape, scores.grad.shape
    (torch.Size([]), torch.Size([4]))
    """

    u_all: torch.Tensor
    u_pos: torch.Tensor

    def __init__(self, num_samples: int, margin: float = 0.6, gamma: float = 0.1,
                 surrogate: str = "squared_hinge", score_transform: str | None = "sigmoid"):
        super().__init__()
        if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
            raise ValueError(f"`num_samples` must be a positive integer, got {num_samples!r}")
        _check_choice(surrogate, SURROGATES, "surrogate")
        if isinstance(margin, bool) or _check_margin(margin) <= 0:
            raise ValueError(f"`margin` must be a finite number > 0 (it keeps u_all > 0), got {margin!r}")
        if isinstance(gamma, bool) or not (isinstance(gamma, (int, float, np.floating)) and 0 < gamma <= 1):
            raise ValueError(f"`gamma` must lie in (0, 1], got {gamma!r}")
        if score_transform not in _TRANSFORMS:
            raise ValueError(f"`score_transform` must be 'sigmoid' or None, got {score_transform!r}")
        self.num_samples = int(num_samples)
        self.margin = float(margin)
        self.gamma = float(gamma)
        self.surrogate = surrogate
        self.score_transform = score_transform
        self.register_buffer("u_all", torch.zeros(self.num_samples))
        self.register_buffer("u_pos", torch.zeros(self.num_samples))

    def extra_repr(self) -> str:
        return (f"num_samples={self.num_samples}, margin={self.margin}, gamma={self.gamma}, "
                f"surrogate={self.surrogate!r}, score_transform={self.score_transform!r}")

    def reset_state(self) -> None:
        """Set both moving averages back to 0 (e.g. between independent training runs)."""
        self.u_all.zero_()
        self.u_pos.zero_()

    def _check_index(self, index: Any, length: int) -> torch.Tensor:
        if not isinstance(index, torch.Tensor):
            index = torch.as_tensor(np.asarray(index))
        if index.dtype == torch.bool or index.is_floating_point() or index.is_complex():
            raise TypeError(f"`index` must be an integer tensor of dataset indices, got dtype {index.dtype}")
        if index.dim() != 1:
            raise ValueError(f"`index` must be 1-D, got shape {tuple(index.shape)}")
        if index.shape[0] != length:
            raise ValueError(f"`index` has length {index.shape[0]} but the scores have length {length}")
        index = index.to(device=self.u_all.device, dtype=torch.long)
        lo, hi = (int(v) for v in torch.aminmax(index))
        if lo < 0 or hi >= self.num_samples:
            bad = lo if lo < 0 else hi
            raise IndexError(f"`index` holds {bad}, outside [0, num_samples={self.num_samples})")
        # distinct <=> no two equal neighbours once sorted; int32 keys (when they fit) take torch's radix sort
        keys = index.to(torch.int32) if self.num_samples <= torch.iinfo(torch.int32).max else index
        ordered = torch.sort(keys).values
        if bool((ordered[1:] == ordered[:-1]).any()):
            raise ValueError("`index` repeats a dataset index within the batch; each sample may appear once")
        return index

    def forward(self, scores: torch.Tensor, labels: Any, index: Any) -> torch.Tensor:
        check_scores_tensor(scores, "scores")
        batch = scores.shape[0]
        if batch == 0:
            raise ValueError("`scores` is empty; a batch needs at least one positive")
        is_pos = binary_labels_tensor(labels, "labels", length=batch).to(scores.device)
        index = self._check_index(index, batch)
        pos_at = is_pos.nonzero().squeeze(1)
        n_pos = pos_at.shape[0]
        if n_pos == 0:
            raise ValueError("`labels` has no positive in this batch; SOAP needs at least one positive per batch")

        h = torch.sigmoid(scores) if self.score_transform == "sigmoid" else scores
        # per positive i, from one sort (the batch with the positives' keys): Σ_s ℓ_is over the whole batch
        # (weight 1) and over its positives (weight y_s). Inputs are checked above; the engine is called directly.
        y = is_pos.to(torch.float64)
        rows = _grouped_row_sums(h.index_select(0, pos_at), h, torch.stack((torch.ones_like(y), y)),
                                 self.surrogate, self.margin)

        idx_pos = index.index_select(0, pos_at.to(index.device))
        with torch.no_grad():
            g = self.gamma
            means = rows.detach().to(self.u_all.device, self.u_all.dtype) / batch
            u_all = self.u_all.index_select(0, idx_pos).mul_(1 - g).add_(means[0], alpha=g)
            u_pos = self.u_pos.index_select(0, idx_pos).mul_(1 - g).add_(means[1], alpha=g)
            self.u_all.index_copy_(0, idx_pos, u_all)
            self.u_pos.index_copy_(0, idx_pos, u_pos)
            # Σ_s w_is ℓ_is = (u_pos/u_all²)·Σ_s ℓ_is − (1/u_all)·Σ_s y_s ℓ_is
            coef = torch.stack((u_pos / u_all ** 2, -1.0 / u_all)).to(h.device, h.dtype)
        return (coef * rows).sum() / (n_pos * batch)
