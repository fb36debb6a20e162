"""``AUCLoss``: the exact all-pairs AUC surrogate as an ``nn.Module`` (defaults and label handling).

The formula lives in :func:`rankguard.functional.pairwise.pairwise_loss`; this module only splits
a labelled batch into positives and negatives.
"""

from __future__ import annotations

import torch
from torch import nn

from rankguard._validation import binary_labels_tensor, check_scores_tensor
from rankguard.functional.pairwise import REDUCTIONS, SURROGATES, _check_choice, _check_margin, pairwise_loss


class AUCLoss(nn.Module):
    """Exact all-pairs AUC surrogate over a batch.

    ``L = (1/(n⁺n⁻)) Σ_{i: y_i=1} Σ_{j: y_j=0} ℓ(margin − (s_i − s_j))`` (``reduction="mean"``; the
    plain double sum for ``"sum"``), with ``ℓ`` as in :func:`~rankguard.functional.pairwise_loss`,
    computed in O(N log N) without the pair matrix.

    Defaults: ``surrogate="squared_hinge"``, ``margin=1.0``. LibAUC's AUCMLoss uses the *squared*
    loss with margin 1.0; the squared hinge keeps that margin but stops penalising pairs already
    ranked by more than the margin, so well-separated pairs do not pull scores apart.

    Args:
        surrogate: "squared", "squared_hinge" or "hinge".
        margin: finite real margin.
        reduction: "mean" or "sum".

    Shapes:
        forward(scores [N] float, labels [N] in {0,1}, {−1,1} or bool) -> scalar.

    Example:
        >>> AUCLoss(surrogate="hinge")(torch.tensor([2.0, 0.5, 2.0]), torch.tensor([1, 0, 0]))
        tensor(0.5000)
    """

    def __init__(self, surrogate: str = "squared_hinge", margin: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        _check_choice(surrogate, SURROGATES, "surrogate")
        _check_choice(reduction, REDUCTIONS, "reduction")
        self.surrogate = surrogate
        self.margin = _check_margin(margin)
        self.reduction = reduction

    def forward(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_scores_tensor(scores, "scores")
        is_pos = binary_labels_tensor(labels, "labels", length=scores.shape[0]).to(scores.device)
        n_pos = int(is_pos.sum())
        if n_pos == 0 or n_pos == scores.shape[0]:
            missing = "positive" if n_pos == 0 else "negative"
            raise ValueError(f"`labels` has no {missing} in this batch of {scores.shape[0]}: the AUC loss "
                             "needs at least one positive and one negative (use a class-balanced sampler)")
        return pairwise_loss(scores[is_pos], scores[~is_pos], self.surrogate, self.margin,
                             reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"surrogate={self.surrogate!r}, margin={self.margin}, reduction={self.reduction!r}"
