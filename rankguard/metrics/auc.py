"""Area under the ROC curve: full AUC and one-way / two-way partial AUC.

All functions take 1-D ``scores`` (higher = more positive) and binary ``labels`` as numpy
arrays, torch tensors or lists, validate them once, and return a Python ``float``. Torch tensors
are computed on their device (CPU or CUDA); everything goes through the one core of
:mod:`rankguard.metrics.core` (one sort into tie groups, cumulative counts at the group ends).
They are evaluation metrics, not losses: torch inputs are detached and no gradient flows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from rankguard.metrics.core import (Array, as_float64, binary_inputs, cumsum, cumulative_counts,
                                    difference_from_zero, tie_groups)

__all__ = ["roc_auc", "partial_auc", "threshold_counts"]

_PAUC_MODES = ("pairs", "roc")


def threshold_counts(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Cumulative ``(tp, fp)`` at each distinct score threshold, highest first, and ``(n⁺, n⁻)``.

    The shared core of the binary metrics and curves (scikit-learn's ``_binary_clf_curve`` idea),
    as numpy arrays for plotting: :func:`rankguard.metrics.core.tie_groups` then
    :func:`~rankguard.metrics.core.cumulative_counts`. A threshold admits a whole tie group at
    once, so AP, the PR/ROC curves and AUC agree on ties.

    >>> tp, fp, n_pos, n_neg = threshold_counts([0.9, 0.5, 0.5], [0, 1, 0])
    >>> tp.tolist(), fp.tolist(), n_pos, n_neg
    ([0, 1], [1, 2], 1, 2)
    """
    s, y, _ = binary_inputs(scores, labels)
    tp, fp = (np.asarray(c.cpu()) if isinstance(c, torch.Tensor) else c for c in cumulative_counts(tie_groups(s, y)))
    n_pos = int(tp[-1])
    return tp, fp, n_pos, s.shape[0] - n_pos


def _twice_trapezoid(tp: Array, fp: Array) -> float:
    """``sum_k (fp_k - fp_{k-1}) (tp_k + tp_{k-1})`` from the origin: twice the area under the ROC
    polyline in count units (exact for int64 counts), i.e. twice the number of correctly ordered
    (positive, negative) pairs with a tied pair counting 1/2."""
    tp_sum = tp * 2 - difference_from_zero(tp)  # tp_k + tp_{k-1}
    return float((difference_from_zero(fp) * tp_sum).sum())


def roc_auc(scores: Any, labels: Any, sample_weight: Any = None) -> float:
    r"""Area under the ROC curve (the Wilcoxon-Mann-Whitney statistic).

    .. math::

        \mathrm{AUC} = \frac{1}{W^+ W^-} \sum_{i \in P} \sum_{j \in N} w_i w_j
            \Big[\mathbb{1}(s_i > s_j) + \tfrac12 \mathbb{1}(s_i = s_j)\Big]

    with :math:`W^\pm` the total weight of each class (all :math:`w = 1` without ``sample_weight``:
    :math:`W^+ W^- = n^+ n^-`).

    **Tie rule (scikit-learn's tie groups):** a tied (positive, negative) pair counts one half,
    which equals the trapezoidal area under the empirical ROC curve, a tie group being one
    diagonal segment (scikit-learn's ``roc_auc_score``); the input order never matters. The
    per-user :func:`rankguard.metrics.topk.auc_per_user` uses the same rule (average ranks), so
    ``roc_auc([0.9, 0.5, 0.5], [0, 1, 0])`` = ``auc_per_user`` on that row = 0.25.

    Cost: one sort of the scores (values only for unweighted float32; see
    :mod:`rankguard.metrics.core`) and a few passes; tensors stay on their device.

    Args:
        scores: shape ``(n,)``, finite real scores, higher means "more positive".
        labels: shape ``(n,)``, binary in {0, 1}, {-1, 1} (-1 negative) or bool.
        sample_weight: optional shape ``(n,)``, finite weights >= 0 (as scikit-learn's).

    Returns:
        AUC in [0, 1] as a Python float.

    Raises:
        ValueError: non-finite ``scores``; ``labels`` not binary, without a positive or without a
            negative; length mismatch; negative ``sample_weight`` or a class of zero total weight.

    Example:
        >>> roc_auc([0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0])   # pairs: 1, 1, 1/2, 1
        0.875
        >>> roc_auc([0.9, 0.5, 0.5], [0, 1, 0])           # pairs: 0, 1/2
        0.25
        >>> roc_auc([0.9, 0.5, 0.5], [0, 1, 0], sample_weight=[1.0, 1.0, 3.0])   # (0 + 3/2) / 4
        0.375
    """
    s, y, w = binary_inputs(scores, labels, sample_weight)
    tp, fp = cumulative_counts(tie_groups(s, y, w))
    return _twice_trapezoid(tp, fp) / (2.0 * float(tp[-1]) * float(fp[-1]))


def _count_from_fraction(fraction: float, n: int) -> int:
    """``max(1, floor(fraction * n))``, robust to binary round-off (0.29 * 100 -> 29, not 28)."""
    x = fraction * n
    nearest = round(x)
    k = nearest if abs(x - nearest) <= 1e-9 * max(1.0, x) else math.floor(x)
    return max(1, min(n, int(k)))


def _check_fraction(value: Any, name: str, low_open: bool, high_open: bool) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a real number, got {type(value).__name__}") from None
    lo_ok = v > 0.0 if low_open else v >= 0.0
    hi_ok = v < 1.0 if high_open else v <= 1.0
    if not (math.isfinite(v) and lo_ok and hi_ok):
        interval = ("(" if low_open else "[") + "0, 1" + (")" if high_open else "]")
        raise ValueError(f"`{name}` must lie in {interval}, got {value!r}")
    return v


def _roc_area_above(tp: Array, fp: Array, budget_neg: float, floor_pos: float) -> float:
    """Exact area ``int_0^B max(Y(x) - A, 0) dx`` under the empirical ROC curve, in count units.

    ``x = fp`` counts negatives and ``Y = tp`` positives ranked at or above each tie-group end; the
    curve joins consecutive vertices (from the origin) by straight lines (a tie group of a
    positives and b negatives is one diagonal segment). ``B = budget_neg`` (negatives),
    ``A = floor_pos`` (positives).
    """
    xp = np if isinstance(tp, np.ndarray) else torch
    x1, y1 = as_float64(fp), as_float64(tp)
    x0, y0 = x1 - difference_from_zero(x1), y1 - difference_from_zero(y1)
    # Clip each segment to [0, B]; vertical segments (no negative in the group) have width 0.
    width = xp.clip(xp.clip(x1, None, budget_neg) - x0, 0.0, None)
    run = x1 - x0 + (x1 <= x0)  # 1 for vertical segments (their width is 0)
    ya = y0 - floor_pos
    yb = y0 + (y1 - y0) * width / run - floor_pos
    # Integral of max(g, 0) for g linear from ya to yb over `width`.
    both_up = (ya >= 0) & (yb >= 0)
    crossing = (ya >= 0) != (yb >= 0)
    hi = xp.maximum(ya, yb)
    slope_span = abs(yb - ya) * crossing + ~crossing
    area = width * (ya + yb) / 2.0 * both_up + width * hi * hi / (2.0 * slope_span) * crossing
    return float(area.sum())


def partial_auc(
    scores: Any,
    labels: Any,
    max_fpr: float,
    min_tpr: float | None = None,
    mode: str = "pairs",
) -> float:
    r"""Normalised one-way (FPR <= beta) or two-way (TPR >= alpha, FPR <= beta) partial AUC.

    With ``beta = max_fpr``, ``alpha = min_tpr`` (``None`` means one-way, i.e. alpha = 0),
    ``mode="pairs"`` (default) is the exact empirical pair-counting form used in the pAUC
    literature (Yang et al., ICML 2021, "When all we need is a piece of the pie"):

    .. math::

        \mathrm{pAUC} = \frac{1}{k^+ k^-} \sum_{i \in P^{\downarrow}_{k^+}}
            \sum_{j \in N^{\uparrow}_{k^-}}
            \Big[\mathbb{1}(s_i > s_j) + \tfrac12 \mathbb{1}(s_i = s_j)\Big]

    where :math:`N^{\uparrow}_{k^-}` are the :math:`k^- = \max(1, \lfloor \beta n^- \rfloor)`
    highest-scored negatives and :math:`P^{\downarrow}_{k^+}` the
    :math:`k^+ = \max(1, \lfloor (1-\alpha) n^+ \rfloor)` lowest-scored positives (all positives
    for one-way). Which members of a tie group fill the last slots does not matter: only their
    common score enters. The floor treats ``beta * n`` within 1e-9 of an integer as that integer.

    **Tie rule (scikit-learn's tie groups):** as in :func:`roc_auc`, a tied (positive, negative)
    pair counts one half in ``"pairs"`` mode, and a tie group is one diagonal segment of the ROC
    curve in ``"roc"`` mode; the input order never matters (tied example below).

    ``mode="roc"`` is the exact area under the piecewise-linear empirical ROC curve (ties as
    diagonal segments), linearly interpolated at FPR = beta:

    .. math::

        \mathrm{pAUC}_{roc} = \frac{1}{(1-\alpha)\,\beta}
            \int_0^{\beta} \max\big(\mathrm{TPR}(f) - \alpha,\ 0\big)\, df .

    The two modes agree when ``beta * n-`` and ``alpha * n+`` are integers and no tie group
    straddles a boundary; ``max_fpr=1`` (with ``min_tpr`` None or 0) gives :func:`roc_auc` in both.

    Not scikit-learn's ``roc_auc_score(max_fpr=beta)``: that returns the McClish-standardised
    value ``(1 + (A - beta**2/2) / (beta - beta**2/2)) / 2`` of the unnormalised area A, whereas
    here A is divided by ``beta`` (one-way) or ``(1-alpha)*beta`` (two-way).

    No ``sample_weight``: the pairs form selects hard examples by count (``k^+``, ``k^-``), which has
    no single weighted analogue; weight by repeating samples if needed.

    Args:
        scores: shape ``(n,)``, finite real scores.
        labels: shape ``(n,)``, binary in {0, 1}, {-1, 1} or bool.
        max_fpr: beta in (0, 1].
        min_tpr: alpha in [0, 1), or ``None`` for one-way pAUC.
        mode: ``"pairs"`` (floor counts) or ``"roc"`` (interpolated ROC area).

    Returns:
        Normalised partial AUC in [0, 1] as a Python float.

    Example:
        >>> s, y = [0.9, 0.8, 0.7, 0.6, 0.3], [1, 0, 1, 0, 0]
        >>> partial_auc(s, y, max_fpr=1/3)        # top negative 0.8: beaten by 0.9 only
        0.5
        >>> partial_auc(s, y, max_fpr=2/3, min_tpr=0.5)   # positive 0.7 vs negatives 0.8, 0.6
        0.5
        >>> t, z = [0.9, 0.5, 0.5, 0.1], [0, 1, 0, 0]     # tie: positive 0.5 vs negatives 0.9, 0.5
        >>> partial_auc(t, z, max_fpr=2/3), partial_auc(t, z, max_fpr=2/3, mode="roc")   # (0 + 1/2) / 2
        (0.25, 0.25)
    """
    s, y, _ = binary_inputs(scores, labels)
    beta = _check_fraction(max_fpr, "max_fpr", low_open=True, high_open=False)
    alpha = 0.0 if min_tpr is None else _check_fraction(min_tpr, "min_tpr", low_open=False, high_open=True)
    if mode not in _PAUC_MODES:
        raise ValueError(f"`mode` must be one of {_PAUC_MODES}, got {mode!r}")
    groups = tie_groups(s, y)
    n_pos = int(y.sum())
    n_neg = y.shape[0] - n_pos
    if mode == "roc":
        tp, fp = cumulative_counts(groups)
        area = _roc_area_above(tp, fp, budget_neg=beta * n_neg, floor_pos=alpha * n_pos)
        return area / ((1.0 - alpha) * n_pos * beta * n_neg)
    k_neg = _count_from_fraction(beta, n_neg)
    k_pos = _count_from_fraction(1.0 - alpha, n_pos)
    # in descending order: the first k- negatives (hardest) and the last k+ positives (lowest)
    neg = groups.neg
    keep = neg * (cumsum(neg, "int64") <= k_neg) + groups.pos * (cumsum(groups.pos, "int64") > n_pos - k_pos)
    tp, fp = cumulative_counts(groups, keep)
    return _twice_trapezoid(tp, fp) / (2.0 * k_pos * k_neg)
