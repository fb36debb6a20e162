"""``AUCLoss``: the exact all-pairs AUC surrogate as an ``nn.Module`` (defaults only).

The formula lives in :func:`rankguard.functional.auc_loss` (built on
:func:`rankguard.functional.pairwise_loss`); this module only holds the options.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rankguard._validation import check_choice, check_margin, check_reduction
from rankguard.functional import SURROGATES, auc_loss


class AUCLoss(nn.Module):
    """Exact all-pairs AUC surrogate over a batch (see :func:`~rankguard.functional.auc_loss`).

    ``L = (1/(n⁺n⁻)) Σ_{i: y_i=1} Σ_{j: y_j=0} ℓ(margin − (s_i − s_j))`` (``reduction="mean"``; the
    plain double sum for ``"sum"``; per-positive means [n⁺] for ``"none"``), with ``ℓ`` as in
    :func:`~rankguard.functional.pairwise_loss`, computed in O(N log N) without the pair matrix.

    Defaults: ``surrogate="squared_hinge"``, ``margin=1.0``. LibAUC's AUCMLoss uses the *squared*
    loss with margin 1.0; the squared hinge keeps that margin but stops penalising pairs already
    ranked by more than the margin, so well-separated pairs do not pull scores apart.

    Args:
        surrogate: "squared", "squared_hinge" or "hinge".
        margin: finite real margin.
        reduction: "mean", "sum" or "none".

    Shapes:
        forward(scores [N] float, labels [N] in {0,1}, {−1,1} or bool) -> scalar ([n⁺] for "none").

    Example:
        >>> AUCLoss(surrogate="hinge")(torch.tensor([2.0, 0.5, 2.0]), torch.tensor([1, 0, 0]))
        tensor(0.5000)
    """

    def __init__(self, surrogate: str = "squared_hinge", margin: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        self.surrogate = check_choice(surrogate, SURROGATES, "surrogate")
        self.margin = check_margin(margin)
        self.reduction = check_reduction(reduction)

    def forward(self, scores: torch.Tensor, labels: Any) -> torch.Tensor:
        return auc_loss(scores, labels, self.surrogate, self.margin, self.reduction)

    def extra_repr(self) -> str:
        return f"surrogate={self.surrogate!r}, margin={self.margin}, reduction={self.reduction!r}"
