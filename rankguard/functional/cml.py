"""Stateless objectives for collaborative ranking: CML triplet hinge, BPR, covariance regulariser, SFCML.

All take plain score tensors (higher score = closer / more relevant), never a model. With CML's
score ``s = −d²`` the triplet hinge ``max(0, λ + d²(u,i) − d²(u,j))`` is ``max(0, λ − (s_i − s_j))``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rankguard._validation import check_scores_tensor
from rankguard.functional.pairwise import pairwise_loss_masked
from rankguard.functional.reduction import reduce_loss


def _pos_neg(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    check_scores_tensor(pos_scores, "pos_scores", ndim=1)
    check_scores_tensor(neg_scores, "neg_scores", ndim=2)
    if neg_scores.shape[0] != pos_scores.shape[0]:
        raise ValueError(f"`neg_scores` must be [B, S] with B = len(pos_scores) = {pos_scores.shape[0]}, "
                         f"got {tuple(neg_scores.shape)}")
    return pos_scores[:, None] - neg_scores


def triplet_hinge_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor, margin: float = 1.0,
                       reduction: str = "mean") -> torch.Tensor:
    """CML triplet hinge ``ℓ_bs = max(0, λ − (s⁺_b − s⁻_bs))``, each ``(b, s)`` its own triplet.

    Shapes: ``pos_scores [B]``, ``neg_scores [B, S]`` -> scalar (or ``[B, S]`` with ``reduction="none"``).

    >>> triplet_hinge_loss(torch.tensor([0.0]), torch.tensor([[-2.0, 0.5]]), margin=1.0)
    tensor(0.7500)
    """
    return reduce_loss(torch.relu(margin - _pos_neg(pos_scores, neg_scores)), reduction)


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """BPR (Rendle et al. 2009): ``ℓ_bs = −log σ(s⁺_b − s⁻_bs) = softplus(−(s⁺_b − s⁻_bs))``.

    Shapes: ``pos_scores [B]``, ``neg_scores [B, S]``.

    >>> round(float(bpr_loss(torch.tensor([0.0]), torch.tensor([[0.0]]))), 4)
    0.6931
    """
    return reduce_loss(F.softplus(-_pos_neg(pos_scores, neg_scores)), reduction)


def covariance_regularizer(embeddings: torch.Tensor) -> torch.Tensor:
    """Hsieh et al.'s covariance loss ``(‖C‖_F − ‖diag C‖₂²) / N`` that de-correlates dimensions.

    ``C_ij = (1/N) Σ_n (y_ni − μ_i)(y_nj − μ_j)`` over the ``N`` rows of ``embeddings [N, d]``.

    >>> float(covariance_regularizer(torch.eye(2)))   # C = [[.25,-.25],[-.25,.25]]: 0.5 − 0.125, / 2
    0.1875
    """
    check_scores_tensor(embeddings, "embeddings", ndim=2)
    n = embeddings.shape[0]
    centred = embeddings - embeddings.mean(dim=0, keepdim=True)
    cov = centred.T @ centred / n
    return (torch.linalg.matrix_norm(cov) - (torch.diagonal(cov) ** 2).sum()) / n


def sfcml_loss(scores: torch.Tensor, pos_mask: torch.Tensor, margin: float = 1.0, surrogate: str = "squared",
               neg_mask: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """Sampling-free CML loss (Bao et al., TPAMI 2023) over ALL (positive, unobserved) pairs of each user.

    For user row ``b`` with positives ``P_b`` and negatives ``N_b`` (default: every other item)::

        L_b = 1/(|P_b||N_b|) Σ_{i∈P_b} Σ_{j∈N_b} ℓ(λ − (s_bi − s_bj))

    ``surrogate="squared"`` (ℓ(t) = t², the authors' code), ``"hinge"`` (max(0, t), the CML hinge
    computed exactly over all pairs) or ``"squared_hinge"``. Computed by the all-pairs engine
    (:func:`rankguard.functional.pairwise.pairwise_loss_masked`) in O(M log M) per row, not O(|P||N|).
    ``"mean"`` averages ``L_b`` over rows with at least one positive and one negative.

    LibCML's ``model/SFCML.py`` writes the squared case per user as
    ``mean_P(d²) + mean_N(d²) − 2·mean_P(d)·mean_N(d)`` with ``d = s − λ·y`` (``y`` = the user's
    *training* row, so validation/test items are negatives) and averages it over the batch's users:
    algebraically the same ``L_b`` and reduction as here (default ``neg_mask = ~pos_mask``, never
    materialised: the squared case takes the negatives' moments as the row's minus the positives').

    Shapes: ``scores [B, M]``, ``pos_mask [B, M]`` bool -> scalar (``[B]`` with ``reduction="none"``).

    >>> s = torch.tensor([[2.0, 0.0, 1.0]]); p = torch.tensor([[True, False, False]])
    >>> float(sfcml_loss(s, p, margin=1.0))     # pairs (2,0) and (2,1): ((1-2)² + (1-1)²)/2
    0.5
    """
    if not isinstance(pos_mask, torch.Tensor) or pos_mask.dtype != torch.bool:
        raise TypeError("`pos_mask` must be a boolean tensor")
    return pairwise_loss_masked(scores, pos_mask, neg_mask, surrogate=surrogate, margin=margin, reduction=reduction)
