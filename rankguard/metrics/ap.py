"""Average precision (area under the precision-recall step curve)."""

from __future__ import annotations

from typing import Any

import numpy as np

from rankguard.metrics.core import as_float64, binary_inputs, cumulative_counts, difference_from_zero, tie_groups

__all__ = ["average_precision"]


def average_precision(scores: Any, labels: Any, sample_weight: Any = None) -> float:
    r"""Average precision with tied scores forming one threshold (scikit-learn's definition).

    Let :math:`t_1 > t_2 > \dots > t_m` be the distinct score values. At threshold
    :math:`t_k` everything with :math:`s \ge t_k` is predicted positive, giving precision
    :math:`P_k = \mathrm{TP}_k / (\mathrm{TP}_k + \mathrm{FP}_k)` and recall
    :math:`R_k = \mathrm{TP}_k / n^+` (with :math:`R_0 = 0`). Then

    .. math::

        \mathrm{AP} = \sum_{k=1}^{m} (R_k - R_{k-1})\, P_k .

    With ``sample_weight``, TP and FP are sums of weights (scikit-learn's weighted AP; a threshold
    whose TP + FP weight is 0 has precision 0 and adds nothing).

    Without ties this is the mean, over positives, of the precision at that positive's rank.
    **Tie rule (scikit-learn's tie groups):** tied scores form one threshold, so a tie group's
    positives all receive the precision at the *end* of the group (no interpolation), exactly as
    ``sklearn.metrics.average_precision_score``; the result does not depend on the input order.
    The per-user :func:`rankguard.metrics.topk.map_score` instead ranks ties by item index (a
    stable order): on ``[0.9, 0.5, 0.5]`` with labels ``[0, 1, 0]`` AP is 1/3 (the positive shares
    its threshold with a negative: precision 1/3) while ``map_score`` is 1/2 (the positive, item 1,
    comes before item 2: position 2). Without ties the two agree.

    Args:
        scores: shape ``(n,)``, finite real scores, higher means "more positive".
        labels: shape ``(n,)``, binary in {0, 1}, {-1, 1} (-1 negative) or bool.
        sample_weight: optional shape ``(n,)``, finite weights >= 0.

    Returns:
        AP in (0, 1] as a Python float.

    Raises:
        ValueError: non-finite ``scores``; ``labels`` not binary, without a positive or without a
            negative; length mismatch.

    Example:
        >>> average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0])   # (1/1 + 2/3) / 2
        0.8333333333333333
        >>> average_precision([0.9, 0.5, 0.5], [0, 1, 0])          # tie group: 1 of 3
        0.3333333333333333
        >>> from rankguard.metrics.topk import map_score
        >>> map_score(np.array([[0.9, 0.5, 0.5]]), np.array([[0, 1, 0]])).tolist()   # stable order
        [0.5]
    """
    s, y, w = binary_inputs(scores, labels, sample_weight)
    tp, fp = cumulative_counts(tie_groups(s, y, w))
    tp, fp = as_float64(tp), as_float64(fp)
    predicted = tp + fp
    precision = tp / (predicted + (predicted == 0))  # 0 where nothing is predicted (then tp = 0 too)
    return float((difference_from_zero(tp) * precision).sum() / tp[-1])
