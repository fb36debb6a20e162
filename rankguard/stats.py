"""Summary statistics with one convention for the whole project.

"mean ± std" everywhere in rankguard (tables, reports, benchmark JSON) is the mean and the
**sample** standard deviation (``ddof = 1``, Bessel's correction) over seeds or repeats; with a
single value the std is undefined and reported as ``None`` (never a fake ``± 0``).

>>> mean_std([1.0, 2.0, 3.0])
(2.0, 1.0)
>>> mean_std([0.5])
(0.5, None)
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

#: degrees of freedom used for every "± std" in rankguard (sample standard deviation)
STD_DDOF = 1


def mean_std(values: Iterable[float]) -> tuple[float | None, float | None]:
    """``(mean, sample std)`` of ``values``; ``(None, None)`` when empty, std ``None`` for one value.

    Non-finite values are kept (a NaN in gives a NaN out: nothing is dropped silently).
    """
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        return None, None
    mean = float(arr.mean())
    std = float(arr.std(ddof=STD_DDOF)) if arr.size > STD_DDOF else None
    return mean, std


def format_mean_std(values: Iterable[float], digits: int = 4, scale: float = 1.0) -> str:
    """``"m ± s"`` (or ``"m"`` for one value, ``"n/a"`` for none), after multiplying by ``scale``.

    >>> format_mean_std([0.1, 0.2], digits=2, scale=100)
    '15.00 ± 7.07'
    """
    mean, std = mean_std(values)
    if mean is None:
        return "n/a"
    text = f"{scale * mean:.{digits}f}"
    return text if std is None else f"{text} ± {scale * std:.{digits}f}"
