"""Target-decoy q-values and the number of targets accepted at an FDR threshold."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rankguard._validation import as_numpy_1d, binary_labels_np, check_finite_np, check_same_length
from rankguard.metrics.auc import _descending_tie_groups

__all__ = ["qvalues", "accepted_at"]


def qvalues(scores: Any, is_target: Any) -> np.ndarray:
    r"""Target-decoy q-values (decoys + 1 estimator, as in mokapot / Percolator).

    For a score threshold :math:`t`, let :math:`T(t)` and :math:`D(t)` count the targets and
    decoys with score :math:`\ge t`. The estimated false discovery rate and the q-value are

    .. math::

        \mathrm{FDR}(t) = \min\Big(1, \frac{D(t) + 1}{T(t)}\Big) \quad (=1 \text{ if } T(t)=0),
        \qquad q_i = \min_{t \le s_i} \mathrm{FDR}(t),

    the minimum running over the observed score values at or below :math:`s_i` (a running
    minimum from the bottom of the descending list). A threshold always takes a whole tie group,
    so equal scores get equal q-values. q-values are given to decoys as well as targets.
    Target-decoy competition (best PSM per spectrum) is the caller's job.

    Args:
        scores: shape ``(n,)``, finite; higher means a more confident match.
        is_target: shape ``(n,)``, bool, {0, 1} or PIN-style {-1, 1} (1 = target).

    Returns:
        float64 array of shape ``(n,)`` in the input order, values in (0, 1].
        An empty input gives an empty array.

    Example:
        >>> qvalues([5.0, 4.0, 3.0, 2.0], [1, 1, 0, 1]).tolist()
        [0.5, 0.5, 0.6666666666666666, 0.6666666666666666]
    """
    s = as_numpy_1d(scores, "scores")
    check_finite_np(s, "scores")
    target = binary_labels_np(is_target, "is_target")
    check_same_length(s, target, "scores", "is_target")
    if s.size == 0:
        return np.empty(0, dtype=np.float64)
    order, is_group_end = _descending_tie_groups(s)
    group_end = np.flatnonzero(is_group_end)
    n_target = np.cumsum(target[order])[group_end]
    n_decoy = (group_end + 1) - n_target
    with np.errstate(divide="ignore"):
        fdr = np.minimum(1.0, (n_decoy + 1) / n_target)  # (d + 1) / 0 = inf -> capped at 1
    q_group = np.minimum.accumulate(fdr[::-1])[::-1]
    # Each sorted position belongs to the group whose end is at or after it.
    group_of_position = np.cumsum(np.r_[False, is_group_end[:-1]])
    q = np.empty_like(s)
    q[order] = q_group[group_of_position]
    return q


def accepted_at(scores: Any, is_target: Any, threshold: float = 0.01, inclusive: bool = True) -> int:
    r"""Number of targets accepted at q-value ``threshold``.

    Counts targets with :math:`q \le` ``threshold`` when ``inclusive=True`` (mokapot's
    convention) or :math:`q <` ``threshold`` when ``inclusive=False`` (Percolator's), with q from
    :func:`qvalues`.

    Args:
        scores: shape ``(n,)``, finite.
        is_target: shape ``(n,)``, bool, {0, 1} or {-1, 1} (1 = target).
        threshold: FDR level, a finite number >= 0 (commonly 0.01).
        inclusive: ``True`` for ``q <= threshold``, ``False`` for ``q < threshold``.

    Returns:
        The number of accepted targets (decoys are never counted).

    Example:
        >>> s, t = [5.0, 4.0, 3.0, 2.0], [1, 1, 0, 1]   # q = 0.5, 0.5, 2/3, 2/3
        >>> accepted_at(s, t, threshold=0.5), accepted_at(s, t, threshold=0.5, inclusive=False)
        (2, 0)
    """
    try:
        level = float(threshold)
    except (TypeError, ValueError):
        raise TypeError(f"`threshold` must be a real number, got {type(threshold).__name__}") from None
    if not (math.isfinite(level) and level >= 0.0):
        raise ValueError(f"`threshold` must be a finite number >= 0, got {threshold!r}")
    q = qvalues(scores, is_target)
    target = binary_labels_np(is_target, "is_target")
    passed = q <= level if inclusive else q < level
    return int(np.count_nonzero(passed & target))
