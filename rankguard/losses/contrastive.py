"""Module forms of the contrastive CF losses; formulas live in :mod:`rankguard.functional.contrastive`.

Defaults cite LehengTHU/AdvInfoNCE @e7c0416 (parse.py, and its Coat script): ``k_neg = 64``;
temperature τ = 0.75 on Coat (their parse.py default is 0.1; the Coat script sets 0.75).
"""

from __future__ import annotations

import torch
from torch import nn

from rankguard._validation import check_margin, check_reduction
from rankguard.functional.contrastive import adv_info_nce_loss, info_nce_loss


class InfoNCELoss(nn.Module):
    """Sampled InfoNCE over ``(s⁺ [B], s⁻ [B, N])`` at temperature ``τ``; ``reduction`` none|mean|sum.

    Takes (and ignores) the ``embeddings`` argument the sampled-pair objective passes every loss.

    >>> round(float(InfoNCELoss(1.0)(torch.tensor([0.0]), torch.tensor([[0.0]]))), 4)   # log 2
    0.6931
    """

    def __init__(self, temperature: float = 0.75, reduction: str = "mean"):
        super().__init__()
        self.temperature = check_margin(temperature, "temperature", positive=True)
        self.reduction = check_reduction(reduction)

    def forward(self, pos_scores: torch.Tensor, neg_scores: torch.Tensor,
                embeddings: torch.Tensor | None = None) -> torch.Tensor:
        return info_nce_loss(pos_scores, neg_scores, self.temperature, self.reduction)


class AdvInfoNCELoss(nn.Module):
    """AdvInfoNCE over ``(s⁺ [B], s⁻ [B, N], hardness logits [B, N])``; ``reduction`` none|mean|sum.

    Holds τ and the negative-mass factor ``k_neg``; the hardness model that produces the logits
    (and its adversarial schedule) belongs to the objective,
    :class:`rankguard.recsys.contrastive.AdversarialPairObjective`.

    >>> loss = AdvInfoNCELoss(temperature=1.0, k_neg=1.0)
    >>> round(float(loss(torch.tensor([0.0]), torch.tensor([[0.0]]), torch.zeros(1, 1))), 4)   # = InfoNCE
    0.6931
    """

    def __init__(self, temperature: float = 0.75, k_neg: float = 64.0, reduction: str = "mean"):
        super().__init__()
        self.temperature = check_margin(temperature, "temperature", positive=True)
        self.k_neg = check_margin(k_neg, "k_neg", positive=True)
        self.reduction = check_reduction(reduction)

    def forward(self, pos_scores: torch.Tensor, neg_scores: torch.Tensor, hardness: torch.Tensor) -> torch.Tensor:
        return adv_info_nce_loss(pos_scores, neg_scores, hardness, self.temperature, self.k_neg, self.reduction)
