"""Confusion-matrix figure of a classification run (matplotlib object API on Agg, atomic write)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rankguard.plots import save_figure


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``[K, K]``: row = true class, column = predicted class.

    >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 0, 1]), 2).tolist()
    [[1, 0], [1, 1]]
    """
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (labels, predicted), 1)
    return m


def plot_confusion_matrix(matrix: np.ndarray, path: str | os.PathLike, title: str = "Confusion matrix",
                          class_names: list[str] | None = None) -> Path:
    """Save a PNG of ``matrix`` normalised per row (the share of each true class predicted as each class);
    counts are written in the cells when K ≤ 12.

    >>> import tempfile
    >>> plot_confusion_matrix(np.eye(3, dtype=int), os.path.join(tempfile.mkdtemp(), "cm.png")).name
    'cm.png'
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    k = matrix.shape[0]
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = 4.5 + 0.18 * k
    fig = Figure(figsize=(size, size), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    names = class_names or [str(i) for i in range(k)]
    ax.set_xticks(range(k), names, fontsize="small" if k > 12 else None)
    ax.set_yticks(range(k), names, fontsize="small" if k > 12 else None)
    ax.set(xlabel="predicted class", ylabel="true class (clean test label)", title=title)
    if k <= 12:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize="small",
                        color="white" if share[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the true class")
    return save_figure(fig, path)
