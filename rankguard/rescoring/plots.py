"""The q-value curve of a rescoring run: accepted targets against the q-value threshold (matplotlib object
API on Agg, atomic write). Used by ``rankguard rescore`` (``qvalues.png``) and ``rankguard bench rescoring``
(``results/rescoring_qvalues.png``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from rankguard.plots import save_figure

__all__ = ["QVALUE_GRID", "accepted_curve", "plot_qvalue_curves"]

#: the q thresholds the curves are drawn at: 0 to 0.1 in steps of 5e-4
QVALUE_GRID = np.linspace(0.0, 0.1, 201)


def accepted_curve(q: Any, is_target: Any, grid: np.ndarray = QVALUE_GRID) -> np.ndarray:
    """Accepted targets at each threshold of ``grid``: ``#{i: is_target_i, q_i ≤ t}`` (mokapot's q ≤ rule).

    Shapes: ``q``, ``is_target`` ``[N]`` (the winners after competition); output ``[len(grid)]`` integers.

    >>> accepted_curve(np.array([0.0, 0.02, 0.5]), np.array([True, True, False]), np.array([0.01, 0.05])).tolist()
    [1, 2]
    """
    q = np.asarray(q, dtype=np.float64)
    t = np.asarray(is_target, dtype=bool)
    if q.shape != t.shape:
        raise ValueError(f"`q` and `is_target` must have the same shape, got {q.shape} and {t.shape}")
    return np.searchsorted(np.sort(q[t]), np.asarray(grid), side="right")


def plot_qvalue_curves(curves: Mapping[str, np.ndarray], path: str | os.PathLike, unit: str = "PSMs",
                       grid: np.ndarray = QVALUE_GRID, threshold: float = 0.01, title: str | None = None) -> Path:
    """Save a PNG with one line per entry of ``curves`` (name → :func:`accepted_curve` counts on ``grid``)
    and a dashed line at ``threshold``.

    >>> import tempfile
    >>> c = {"a": accepted_curve(np.array([0.0, 0.02]), np.array([True, True]))}
    >>> plot_qvalue_curves(c, os.path.join(tempfile.mkdtemp(), "q.png")).name
    'q.png'
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.6, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for name, counts in curves.items():
        ax.plot(grid, counts, label=name)
    ax.axvline(threshold, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("q-value")
    ax.set_ylabel(f"accepted target {unit}")
    if title:
        ax.set_title(title, fontsize="medium")
    ax.legend()
    return save_figure(fig, path)
