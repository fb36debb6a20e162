"""PR and ROC curves: the points (numpy) and multi-panel figures (matplotlib, Agg, no pyplot).

Figures are built with matplotlib's object API on an Agg canvas, so plotting never needs a
display and never touches pyplot's global state (safe in CI, threads and notebooks alike).

Layout of the figure helpers: one panel per key of ``panels`` (e.g. a dataset), one line per
key of the inner mapping (e.g. a loss), each line a ``(scores, labels)`` pair.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from rankguard._validation import binary_labels_np
from rankguard.metrics.auc import threshold_counts
from rankguard.runs import atomic_write

Curves = Mapping[str, Mapping[str, tuple[Any, Any]]]


def pr_points(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Precision-recall points ``(recall, precision)`` over all distinct thresholds.

    For threshold t (each distinct score, descending): ``precision = TP(t)/(TP(t)+FP(t))``,
    ``recall = TP(t)/n_pos`` with ``TP(t) = #{i: y_i = 1, s_i >= t}``. A first point
    ``(0, precision at the top threshold)`` is prepended so a step plot starts on the y-axis.
    Points end at the first threshold reaching recall 1 (lower thresholds add no area).
    Plot with ``step(recall, precision, where="pre")``: the area under that staircase is
    ``sum_k (R_k - R_{k-1}) P_k``, the usual average precision.
    Shapes: ``scores``, ``labels`` ``[N]``; outputs ``[K+1]`` for the K distinct scores down
    to the lowest-scored positive.

    >>> r, p = pr_points([0.9, 0.8, 0.1], [1, 0, 1])
    >>> r.tolist(), p.round(3).tolist()
    ([0.0, 0.5, 0.5, 1.0], [1.0, 1.0, 0.5, 0.667])
    """
    tp, fp, n_pos, _ = threshold_counts(scores, labels)
    # thresholds below the one that first reaches full recall add no area; drop them so the
    # curve ends at recall 1 instead of falling straight down to the positive rate
    stop = int(np.argmax(tp == n_pos)) + 1
    tp, fp = tp[:stop], fp[:stop]
    precision = tp / (tp + fp)
    recall = tp / n_pos
    return np.r_[0.0, recall], np.r_[precision[0], precision]


def roc_points(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """ROC points ``(fpr, tpr)`` over all distinct thresholds, starting at ``(0, 0)``.

    Join them with straight lines: a group of tied scores moves diagonally, and the area under
    the polyline is the AUC with ties counted one half.

    ``fpr = FP(t)/n_neg``, ``tpr = TP(t)/n_pos`` for each distinct score t, descending.

    >>> f, t = roc_points([0.9, 0.8, 0.1], [1, 0, 1])
    >>> f.tolist(), t.tolist()
    ([0.0, 0.0, 1.0, 1.0], [0.0, 0.5, 0.5, 1.0])
    """
    tp, fp, n_pos, n_neg = threshold_counts(scores, labels)
    return np.r_[0.0, fp / n_neg], np.r_[0.0, tp / n_pos]


def _figure(n_panels: int, panel_size: float = 4.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = min(n_panels, 3)
    rows = -(-n_panels // cols)
    fig = Figure(figsize=(panel_size * cols, panel_size * rows + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def save_figure(fig: Any, path: str | os.PathLike) -> Path:
    """Save a matplotlib figure atomically; the format follows the suffix (PNG by default)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    return atomic_write(path, lambda fh: fig.savefig(fh, dpi=110, format=fmt))


def plot_pr_curves(panels: Curves, path: str | os.PathLike, title: str = "Precision-recall curves",
                   metric_labels: Mapping[str, Mapping[str, str]] | None = None) -> Path:
    """Save a PNG with one PR panel per key of ``panels``, one step line per ``(scores, labels)``.

    ``metric_labels[panel][line]``, if given, is appended to the legend entry (e.g. ``"AP 0.91"``).
    A dashed line marks the positive rate: the precision of a random ranking.

    >>> import tempfile, os
    >>> p = plot_pr_curves({"toy": {"model": ([0.9, 0.2, 0.4], [1, 0, 1])}},
    ...                    os.path.join(tempfile.mkdtemp(), "pr.png"))
    >>> p.stat().st_size > 0
    True
    """
    fig, axes = _figure(len(panels))
    for ax, (panel, lines) in zip(axes, panels.items()):
        rate = None
        for name, (scores, labels) in lines.items():
            recall, precision = pr_points(scores, labels)
            extra = (metric_labels or {}).get(panel, {}).get(name)
            ax.step(recall, precision, where="pre", label=f"{name} ({extra})" if extra else name)
            rate = float(np.mean(binary_labels_np(labels, "labels")))
        if rate is not None:
            ax.axhline(rate, color="grey", linestyle="--", linewidth=1, label=f"random ({rate:.2f})")
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision", title=panel)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize="small")
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_roc_curves(panels: Curves, path: str | os.PathLike, title: str = "ROC curves",
                    metric_labels: Mapping[str, Mapping[str, str]] | None = None) -> Path:
    """Save a PNG with one ROC panel per key of ``panels``; the diagonal is a random ranking.

    >>> import tempfile, os
    >>> p = plot_roc_curves({"toy": {"model": ([0.9, 0.2, 0.4], [1, 0, 1])}},
    ...                     os.path.join(tempfile.mkdtemp(), "roc.png"))
    >>> p.name
    'roc.png'
    """
    fig, axes = _figure(len(panels))
    for ax, (panel, lines) in zip(axes, panels.items()):
        for name, (scores, labels) in lines.items():
            fpr, tpr = roc_points(scores, labels)
            extra = (metric_labels or {}).get(panel, {}).get(name)
            ax.plot(fpr, tpr, label=f"{name} ({extra})" if extra else name)
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="random")
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="false positive rate", ylabel="true positive rate",
               title=panel)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_training_curves(history: list[Mapping[str, Any]] | Mapping[str, list[Mapping[str, Any]]],
                         path: str | os.PathLike, metric: str | None = None, title: str = "Training curves") -> Path:
    """Save ``curves.png``: training loss per epoch (left) and validation ``metric`` per evaluation (right).

    ``history`` is :func:`rankguard.training.fit`'s (one record per epoch with ``epoch``, ``loss``
    and, on evaluated epochs, ``val``: a metric dict), or a mapping ``name -> history`` drawn as
    one line each (several runs side by side). The best evaluation of each line is marked.

    >>> import tempfile, os
    >>> h = [{"epoch": 1, "loss": 1.0, "val": {"AUC": 0.6}}, {"epoch": 2, "loss": 0.5, "val": {"AUC": 0.7}}]
    >>> plot_training_curves(h, os.path.join(tempfile.mkdtemp(), "curves.png"), "AUC").name
    'curves.png'
    >>> plot_training_curves({"a": h, "b": h}, os.path.join(tempfile.mkdtemp(), "curves.png"), "AUC").name
    'curves.png'
    """
    lines = dict(history) if isinstance(history, Mapping) else {"": history}
    fig, (ax_loss, ax_val) = _figure(2)
    any_val = False
    for i, (name, hist) in enumerate(lines.items()):
        epochs = [r["epoch"] for r in hist]
        ax_loss.plot(epochs, [r["loss"] for r in hist], color=f"C{i % 10}", label=name or None,
                     marker="." if len(epochs) < 40 else None)
        evaluated = [(r["epoch"], r["val"][metric]) for r in hist if metric and metric in r.get("val", {})]
        if not evaluated:
            continue
        any_val = True
        xs, ys = zip(*evaluated)
        ax_val.plot(xs, ys, color=f"C{i % 10}", marker="o" if len(xs) < 40 else None,
                    label=name or f"validation {metric}")
        finite = [(x, y) for x, y in evaluated if np.isfinite(y)]
        if finite:
            bx, by = max(finite, key=lambda t: t[1])
            ax_val.scatter([bx], [by], color=f"C{i % 10}", edgecolor="black", zorder=3,
                           label=f"best {by:.4f} (epoch {bx})" if len(lines) == 1 else None)
    ax_loss.set(xlabel="epoch", ylabel="mean training loss", title="training loss")
    ax_loss.grid(alpha=0.3)
    if len(lines) > 1:
        ax_loss.legend(loc="upper right", fontsize="small")
    if any_val:
        ax_val.legend(loc="lower right", fontsize="small")
    else:
        ax_val.text(0.5, 0.5, "no validation metric", ha="center", va="center", transform=ax_val.transAxes)
    ax_val.set(xlabel="epoch", ylabel=metric or "", title=f"validation {metric or ''}".strip())
    ax_val.grid(alpha=0.3)
    fig.suptitle(title)
    return save_figure(fig, path)
