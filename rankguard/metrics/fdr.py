"""Target-decoy q-values and the number of targets accepted at an FDR threshold."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from rankguard.metrics.core import array_of, as_float64, binary_inputs, cumsum, reverse_cummin, tie_groups

__all__ = ["qvalues", "accepted_at"]


def qvalues(scores: Any, is_target: Any) -> np.ndarray | torch.Tensor:
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
        float64 values of shape ``(n,)`` in the input order, in (0, 1]: a torch tensor on the device
        of ``scores`` when ``scores`` is a tensor, else a numpy array. An empty input gives an
        empty result. No ``sample_weight``: the estimator counts matches.

    Example:
        >>> qvalues([5.0, 4.0, 3.0, 2.0], [1, 1, 0, 1]).tolist()
        [0.5, 0.5, 0.6666666666666666, 0.6666666666666666]
    """
    s, target, _ = binary_inputs(scores, is_target, labels_name="is_target", require_both=False)
    if s.shape[0] == 0:
        q = torch.empty(0, dtype=torch.float64, device=s.device)
    else:
        groups = tie_groups(s, target, need_order=True)
        n_target = as_float64(cumsum(groups.pos, "int64")[groups.ends])
        n_decoy = (groups.ends + 1) - n_target
        # (d + 1) / 0 = inf -> capped at 1
        fdr = (n_decoy + 1) / (n_target + (n_target == 0))
        fdr[n_target == 0] = 1.0
        fdr[fdr > 1.0] = 1.0
        q_group = reverse_cummin(fdr)
        # Each sorted position belongs to the group whose end is at or after it.
        is_end = groups.pos * 0
        is_end[groups.ends] = 1
        group_of_position = cumsum(is_end, "int64") - is_end
        q = torch.empty(s.shape[0], dtype=torch.float64, device=s.device)
        array_of(q)[groups.order] = q_group[group_of_position]
    return q if isinstance(scores, torch.Tensor) else q.numpy()


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
    q = torch.as_tensor(qvalues(scores, is_target))
    _, target, _ = binary_inputs(scores, is_target, labels_name="is_target", require_both=False)
    passed = q <= level if inclusive else q < level
    return int((passed & target).sum())
