"""Contrastive losses for recommendation: sampled InfoNCE and adversarial InfoNCE (AdvInfoNCE).

For a user ``u`` with positive score ``s⁺`` and ``N`` sampled negative scores ``s_1 … s_N``
(cosine or dot scores of the backbone), temperature ``τ``:

* **InfoNCE** (sampled softmax, van den Oord et al. 2018; as used for CF by the AdvInfoNCE
  paper's baseline)::

      ℓ = −log  e^{s⁺/τ} / (e^{s⁺/τ} + Σ_j e^{s_j/τ})

* **AdvInfoNCE** (Zhang et al., NeurIPS 2023, eq. 9 as coded in LehengTHU/AdvInfoNCE @e7c0416):
  each negative gets a hardness weight ``p_j = softmax_j(h_j)`` from a separate *hardness model*
  (logits ``h [B, N]``), and the negative mass is scaled by ``k·N``::

      ℓ = −log  e^{s⁺/τ} / (e^{s⁺/τ} + k·N·Σ_j p_j e^{s_j/τ})

  With uniform hardness (``p_j = 1/N``) and ``k = 1`` this is exactly InfoNCE. The recommender
  minimises ``ℓ``; the hardness model maximises it (distributionally robust over ``p`` within a KL
  ball around uniform, whose radius the number of adversarial passes bounds); :func:`kl_to_uniform`
  measures how far ``p`` moved.

Both are computed in log space (``logaddexp`` / ``logsumexp`` with max subtraction): no overflow for
large ``s/τ``, no ``log 0`` for vanishing ``p``. ``reduction`` in ``none | mean | sum`` (``none``:
``[B]``).
"""

from __future__ import annotations

import math

import torch

from rankguard._validation import check_margin, check_scores_tensor
from rankguard.functional.reduction import reduce_loss

__all__ = ["adv_info_nce_loss", "info_nce_loss", "kl_to_uniform"]


def _check(pos_scores: torch.Tensor, neg_scores: torch.Tensor, temperature: float) -> float:
    check_scores_tensor(pos_scores, "pos_scores", ndim=1)
    check_scores_tensor(neg_scores, "neg_scores", ndim=2)
    if neg_scores.shape[0] != pos_scores.shape[0] or neg_scores.shape[1] < 1:
        raise ValueError(f"`neg_scores` must be [B, N] with B = len(pos_scores) = {pos_scores.shape[0]} and N >= 1, "
                         f"got {tuple(neg_scores.shape)}")
    return check_margin(temperature, "temperature", positive=True)


def info_nce_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor, temperature: float = 1.0,
                  reduction: str = "mean") -> torch.Tensor:
    """Sampled InfoNCE ``ℓ_b = −s⁺_b/τ + log(e^{s⁺_b/τ} + Σ_j e^{s_bj/τ})``.

    Shapes: ``pos_scores [B]``, ``neg_scores [B, N]`` -> scalar (``[B]`` with ``reduction="none"``).

    >>> round(float(info_nce_loss(torch.tensor([0.0]), torch.tensor([[0.0, 0.0, 0.0]]))), 4)   # log 4
    1.3863
    """
    tau = _check(pos_scores, neg_scores, temperature)
    logits = torch.cat([pos_scores[:, None], neg_scores], dim=1) / tau
    return reduce_loss(torch.logsumexp(logits, dim=1) - logits[:, 0], reduction)


def adv_info_nce_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor, hardness: torch.Tensor,
                      temperature: float = 1.0, k_neg: float = 64.0, reduction: str = "mean") -> torch.Tensor:
    """AdvInfoNCE ``ℓ_b = −s⁺_b/τ + log(e^{s⁺_b/τ} + k·N·Σ_j p_bj e^{s_bj/τ})``, ``p_b = softmax(hardness_b)``.

    Shapes: ``pos_scores [B]``, ``neg_scores [B, N]``, ``hardness [B, N]`` (logits of the hardness
    model) -> scalar (``[B]`` with ``reduction="none"``). ``k_neg > 0`` (the authors' default 64).

    >>> pos, neg = torch.tensor([0.5]), torch.tensor([[0.1, 0.3]])
    >>> bool(torch.isclose(adv_info_nce_loss(pos, neg, torch.zeros(1, 2), 1.0, 1.0), info_nce_loss(pos, neg)))
    True
    """
    tau = _check(pos_scores, neg_scores, temperature)
    check_scores_tensor(hardness, "hardness", ndim=2)
    if hardness.shape != neg_scores.shape:
        raise ValueError(f"`hardness` must have the shape of `neg_scores` {tuple(neg_scores.shape)}, "
                         f"got {tuple(hardness.shape)}")
    k = check_margin(k_neg, "k_neg", positive=True)
    n = neg_scores.shape[1]
    log_p = torch.log_softmax(hardness, dim=1)
    pos = pos_scores / tau
    neg_mass = math.log(k * n) + torch.logsumexp(log_p + neg_scores / tau, dim=1)
    return reduce_loss(torch.logaddexp(pos, neg_mass) - pos, reduction)


def kl_to_uniform(hardness: torch.Tensor) -> torch.Tensor:
    """``KL(p_b ‖ uniform) = Σ_j p_bj log(N p_bj)`` per row of ``p = softmax(hardness)``: ``[B, N] -> [B]``.

    0 for uniform hardness, at most ``log N``.

    >>> kl_to_uniform(torch.zeros(2, 4))
    tensor([0., 0.])
    """
    check_scores_tensor(hardness, "hardness", ndim=2)
    log_p = torch.log_softmax(hardness, dim=1)
    return (log_p.exp() * (log_p + math.log(hardness.shape[1]))).sum(dim=1)
