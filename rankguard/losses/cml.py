"""Module forms of the CML-family objectives: defaults only; formulas live in :mod:`rankguard.functional.cml`.

Defaults follow the authors' public configs: margin λ = 1.0 (LibCML default; their ML-100K SFCML
script uses 2.0), squared surrogate for SFCML (the only form in their code).
"""

from __future__ import annotations

import torch
from torch import nn

from rankguard._validation import check_choice, check_margin, check_reduction
from rankguard.functional import SURROGATES, bpr_loss, covariance_regularizer, sfcml_loss, triplet_hinge_loss


class CMLLoss(nn.Module):
    """Triplet hinge on sampled negatives, plus ``cov_weight`` × covariance regulariser (Hsieh et al.).

    No ``reduction``: the regulariser is one scalar for the whole batch, so per-triplet values
    (``"none"``) would have to share it out arbitrarily; use
    :func:`~rankguard.functional.triplet_hinge_loss` for per-triplet losses.

    >>> CMLLoss(margin=1.0)(torch.tensor([0.0]), torch.tensor([[-2.0, 0.5]]))
    tensor(0.7500)
    """

    def __init__(self, margin: float = 1.0, cov_weight: float = 0.0):
        super().__init__()
        self.margin, self.cov_weight = check_margin(margin), check_margin(cov_weight, "cov_weight")

    def forward(self, pos_scores: torch.Tensor, neg_scores: torch.Tensor,
                embeddings: torch.Tensor | None = None) -> torch.Tensor:
        loss = triplet_hinge_loss(pos_scores, neg_scores, self.margin)
        if self.cov_weight and embeddings is not None:
            loss = loss + self.cov_weight * covariance_regularizer(embeddings)
        return loss


class BPRLoss(nn.Module):
    """BPR on sampled negatives (see :func:`rankguard.functional.bpr_loss`); ``reduction`` none|mean|sum.

    >>> round(float(BPRLoss()(torch.tensor([0.0]), torch.tensor([[0.0]]))), 4)
    0.6931
    """

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, pos_scores: torch.Tensor, neg_scores: torch.Tensor,
                embeddings: torch.Tensor | None = None) -> torch.Tensor:
        return bpr_loss(pos_scores, neg_scores, self.reduction)


class SFCMLLoss(nn.Module):
    """Sampling-free CML loss over all (positive, unobserved) pairs of each user in the batch
    (see :func:`rankguard.functional.sfcml_loss`); ``reduction`` none ([B] per user) | mean | sum.

    >>> SFCMLLoss()(torch.tensor([[2.0, 0.0, 1.0]]), torch.tensor([[True, False, False]]))
    tensor(0.5000)
    """

    def __init__(self, margin: float = 1.0, surrogate: str = "squared", reduction: str = "mean"):
        super().__init__()
        self.margin = check_margin(margin)
        self.surrogate = check_choice(surrogate, SURROGATES, "surrogate")
        self.reduction = check_reduction(reduction)

    def forward(self, scores: torch.Tensor, pos_mask: torch.Tensor) -> torch.Tensor:
        return sfcml_loss(scores, pos_mask, self.margin, self.surrogate, reduction=self.reduction)
