"""The exact all-pairs AUC surrogate on a labelled batch (the pure form behind :class:`rankguard.losses.AUCLoss`)."""

from __future__ import annotations

from typing import Any

import torch

from rankguard._validation import binary_labels_tensor, check_choice, check_margin, check_reduction, check_scores_tensor
from rankguard.functional.pairwise import SURROGATES, _compute_dtype, _pairwise_loss

__all__ = ["auc_loss"]


def auc_loss(scores: torch.Tensor, labels: Any, surrogate: str = "squared_hinge", margin: float = 1.0,
             reduction: str = "mean") -> torch.Tensor:
    """All-pairs AUC surrogate over a batch, without the pair matrix.

    ``L = (1/(n⁺n⁻)) Σ_{i: y_i=1} Σ_{j: y_j=0} ℓ(margin − (s_i − s_j))`` for ``reduction="mean"``,
    the plain double sum for ``"sum"``, and for ``"none"`` the per-positive means
    ``L_i = (1/n⁻) Σ_j ℓ(…)`` ([n⁺], positives in batch order); ``ℓ`` as in
    :func:`~rankguard.functional.pairwise_loss`, which this splits the batch for. O(N log N).

    Args:
        scores: [N] finite floating scores.
        labels: [N] in {0,1}, {−1,1} or bool, with at least one positive and one negative.
        surrogate: "squared", "squared_hinge" or "hinge".
        margin: finite real margin.
        reduction: "mean", "sum" or "none".

    Errors name ``scores`` or ``labels``, including a loss that overflows (``ScoreOverflowError``).

    Example (t = 1 − (2 − 0.5) = −0.5 → 0 and 1 − (2 − 2) = 1 → 1):
        >>> auc_loss(torch.tensor([2.0, 0.5, 2.0]), torch.tensor([1, 0, 0]), "hinge")
        tensor(0.5000)
    """
    check_choice(surrogate, SURROGATES, "surrogate")
    check_reduction(reduction)
    m = check_margin(margin)
    check_scores_tensor(scores, "scores")
    is_pos = binary_labels_tensor(labels, "labels", length=scores.shape[0]).to(scores.device)
    n_pos = int(is_pos.sum())
    if n_pos == 0 or n_pos == scores.shape[0]:
        missing = "positive" if n_pos == 0 else "negative"
        raise ValueError(f"`labels` has no {missing} in this batch of {scores.shape[0]}: the AUC loss "
                         "needs at least one positive and one negative (use a class-balanced sampler)")
    s = scores.to(_compute_dtype(scores.dtype))
    return _pairwise_loss(s[is_pos], s[~is_pos], surrogate, m, None, reduction, names=("scores", "scores"))
