"""SOAP average-precision surrogate (Qi et al., NeurIPS 2021) as a pure function, O(B log B) per batch.

AP over a dataset is approximated (REFERENCES.md §2) by

    AP ≈ (1/n⁺) Σ_{i∈P} [Σ_s y_s ℓ_is] / [Σ_s ℓ_is],   ℓ_is = ℓ(m − (h(x_i) − h(x_s))),

with ℓ a pair surrogate (``"squared_hinge"`` max(0,t)², ``"hinge"`` max(0,t), ``"squared"`` t²) and
h the scores after ``score_transform`` (sigmoid by default, as in the SOAP paper, LibAUC's ``APLoss``
and the Adversarial-AP code; ``None`` uses the raw scores). SOAP keeps, per positive i of the
dataset, moving averages of the two sums; :func:`soap_loss` takes the batch's positives' current
averages and returns the new ones, so the state lives with the caller
(:class:`rankguard.losses.APLoss` keeps it in buffers, keyed by dataset index).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rankguard._validation import (
    binary_labels_tensor,
    check_choice,
    check_finite_result,
    check_margin,
    check_reduction,
    check_scores_tensor,
)
from rankguard.functional.pairwise import SURROGATES, _grouped_row_sums
from rankguard.functional.reduction import reduce_loss

__all__ = ["SCORE_TRANSFORMS", "SOAP_GAMMA", "SOAP_MARGIN", "check_soap_batch", "check_soap_options", "soap_loss"]

SCORE_TRANSFORMS = ("sigmoid", None)
# Defaults of the Adversarial-AP code (Li, Tong, Yang, NeurIPS 2023; GangLii/Adversarial-AP @1bf27c4),
# which trains SOAP on sigmoid scores (REFERENCES.md §2): margin 0.6, γ = 0.1 (weight of the new batch).
SOAP_MARGIN = 0.6
SOAP_GAMMA = 0.1

_OVERFLOW_HINT = "use score_transform='sigmoid'"


def check_soap_options(margin: Any, gamma: Any, surrogate: Any, score_transform: Any) -> tuple[float, float]:
    """The option checks of :func:`soap_loss`; returns ``(margin, gamma)`` as floats.

    ``margin`` must be finite and > 0 (the diagonal pair s = i then gives ℓ(m) > 0, which keeps
    ``u_all`` > 0 and the weights finite); ``gamma`` ∈ (0, 1]; ``surrogate`` one of
    :data:`~rankguard.functional.SURROGATES`; ``score_transform`` ``"sigmoid"`` or ``None``.

    >>> check_soap_options(0.6, 0.1, "squared_hinge", "sigmoid")
    (0.6, 0.1)
    """
    check_choice(surrogate, SURROGATES, "surrogate")
    check_choice(score_transform, SCORE_TRANSFORMS, "score_transform")
    m = check_margin(margin, positive=True, why="it keeps u_all > 0")
    if isinstance(gamma, (bool, np.bool_)) or not (isinstance(gamma, (int, float, np.floating)) and 0 < gamma <= 1):
        raise ValueError(f"`gamma` must lie in (0, 1], got {gamma!r}")
    return m, float(gamma)


def check_soap_batch(scores: Any, labels: Any) -> torch.Tensor:
    """Check a SOAP batch (finite 1-D float ``scores``, binary ``labels`` of the same length, ≥ 1 positive);
    return the labels as a bool tensor on the scores' device.

    >>> check_soap_batch(torch.tensor([0.3, -1.0]), [1, 0])
    tensor([ True, False])
    """
    check_scores_tensor(scores, "scores")
    if scores.shape[0] == 0:
        raise ValueError("`scores` is empty; a batch needs at least one positive")
    is_pos = binary_labels_tensor(labels, "labels", length=scores.shape[0]).to(scores.device)
    if not bool(is_pos.any()):
        raise ValueError("`labels` has no positive in this batch; SOAP needs at least one positive per batch")
    return is_pos


def soap_loss(scores: torch.Tensor, labels: Any, u_all: torch.Tensor, u_pos: torch.Tensor, *,
              margin: float = SOAP_MARGIN, gamma: float = SOAP_GAMMA, surrogate: str = "squared_hinge",
              score_transform: str | None = "sigmoid",
              reduction: str = "mean") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""One SOAP step: the loss and the updated moving averages of the batch's positives.

    For the B⁺ positives i of the batch (in batch order) and every sample s of the batch (i itself
    included: the diagonal pair contributes ℓ(m) > 0, exactly as the formula reads and as LibAUC does)::

        u_all'[i] = (1−γ)·u_all[i] + γ·(1/B) Σ_s ℓ_is
        u_pos'[i] = (1−γ)·u_pos[i] + γ·(1/B) Σ_s y_s·ℓ_is
        w_is      = (u_pos'[i] − u_all'[i]·y_s) / u_all'[i]²        (detached)
        L_i       = (1/B) Σ_s w_is·ℓ_is

    ``reduction="mean"`` returns ``(1/B⁺) Σ_i L_i`` (the mean over all (i, s) pairs), ``"sum"`` the
    double sum ``Σ_i Σ_s w_is ℓ_is`` and ``"none"`` the vector ``L`` [B⁺]. The weights use the
    *updated* averages (as LibAUC does) and are constants, so the gradient is the SOAP stochastic
    gradient of −AP. Because the weights factor per row, Σ_s w_is ℓ_is =
    (u_pos'/u_all'²)·Σ_s ℓ_is − (1/u_all')·Σ_s y_s ℓ_is: both sums come from one sort of the batch
    (:func:`~rankguard.functional.pairwise_row_sums_grouped`'s engine), O(B log B) time, O(B) memory.

    Pure: no input is modified, the new averages are new tensors; storing them is the caller's choice.

    Args:
        scores: [B] finite floating raw model outputs, B ≥ 1 (differentiable).
        labels: [B] in {0,1}, {−1,1} or bool, at least one positive.
        u_all, u_pos: [B⁺] finite, non-negative moving averages of the batch's positives, in the
            order the positives appear in the batch (0 for a positive never seen); one dtype and
            device, not necessarily the scores'. Treated as constants.
        margin: m > 0. gamma: γ ∈ (0, 1], the weight of the new batch.
        surrogate: "squared_hinge" (the paper's), "hinge" or "squared".
        score_transform: "sigmoid" or None (raw scores).
        reduction: "mean", "sum" or "none".

    Returns:
        ``(loss, new_u_all, new_u_pos)``: the loss in the scores' (compute) dtype, scalar or [B⁺];
        the new averages [B⁺] in ``u_all``'s dtype and device, detached.

    Raises:
        ValueError naming the argument for a bad batch or state; ``ScoreOverflowError`` (a ValueError)
        naming ``scores`` when finite scores make the loss or the new averages non-finite (e.g. raw
        float32 scores ~1e19 with ``score_transform=None``) — before anything is returned, so a caller
        that writes the state back only after this call keeps its state.

    Example (one positive, one negative; raw scores, m = 0.6, γ = 0.1, state threaded by hand):
        >>> u = torch.zeros(1, dtype=torch.float64)
        >>> s = torch.tensor([1.0, 0.5], dtype=torch.float64)
        >>> loss, u_all, u_pos = soap_loss(s, [1, 0], u, u, score_transform=None)
        >>> round(u_all.item(), 6), round(u_pos.item(), 6)   # γ·(ℓ(.6) + ℓ(.1))/2, γ·ℓ(.6)/2
        (0.0185, 0.018)
        >>> s = torch.tensor([1.0, 0.8], dtype=torch.float64)
        >>> loss, u_all, u_pos = soap_loss(s, [1, 0], u_all, u_pos, score_transform=None)
        >>> round(loss.item(), 4)   # ½(Σ_s ℓ·u_pos' − Σ_s y_s ℓ·u_all')/u_all'² = ½(.52·.0342 − .36·.04265)/.04265²
        0.6679
    """
    m, g = check_soap_options(margin, gamma, surrogate, score_transform)
    check_reduction(reduction)
    is_pos = check_soap_batch(scores, labels)
    pos_at = is_pos.nonzero().squeeze(1)
    n_pos, batch = pos_at.shape[0], scores.shape[0]
    for name, u in (("u_all", u_all), ("u_pos", u_pos)):
        check_scores_tensor(u, name)
        if u.shape[0] != n_pos:
            raise ValueError(f"`{name}` must hold one moving average per positive of the batch ({n_pos}), "
                             f"got shape {tuple(u.shape)}")
        if bool((u < 0).any()):
            raise ValueError(f"`{name}` holds negative values; moving averages of the surrogate are >= 0")
    if (u_pos.dtype, u_pos.device) != (u_all.dtype, u_all.device):
        raise ValueError(f"`u_pos` ({u_pos.dtype}, {u_pos.device}) must have the dtype and device of `u_all` "
                         f"({u_all.dtype}, {u_all.device})")

    h = torch.sigmoid(scores) if score_transform == "sigmoid" else scores
    y = is_pos.to(torch.float64)
    # per positive i, from one sort: Σ_s ℓ_is over the whole batch (weight 1) and over its positives (y_s)
    rows = _grouped_row_sums(h.index_select(0, pos_at), h, torch.stack((torch.ones_like(y), y)), surrogate, m,
                             names=("scores", "scores"), hint=_OVERFLOW_HINT)
    with torch.no_grad():
        means = rows.detach().to(u_all.device, u_all.dtype) / batch
        new_u_all = torch.add(u_all.detach() * (1 - g), means[0], alpha=g)
        new_u_pos = torch.add(u_pos.detach() * (1 - g), means[1], alpha=g)
        # Σ_s w_is ℓ_is = (u_pos'/u_all'²)·Σ_s ℓ_is − (1/u_all')·Σ_s y_s ℓ_is; dividing twice by u_all'
        # stays finite where u_all'² alone would overflow (float32 from u_all' ~ 1.8e19 on)
        coef = torch.stack((new_u_pos / new_u_all / new_u_all, -1.0 / new_u_all)).to(h.device, h.dtype)
    loss = reduce_loss((coef * rows).sum(dim=0), reduction, terms=batch)
    check_finite_result((loss, new_u_all, new_u_pos), (("scores", scores),), _OVERFLOW_HINT)
    return loss, new_u_all, new_u_pos
