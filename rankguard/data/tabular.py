"""Feature-matrix datasets: features ``x`` and integer labels ``y``.

The scikit-learn datasets ship with scikit-learn and load offline; the registry
(:mod:`rankguard.data.datasets`) names them ``breast_cancer``, ``digits`` and ``digits_imbalanced``.

>>> d = load_breast_cancer(); d.x.shape, d.x.dtype, d.y.dtype, int(d.y.sum())
((569, 30), dtype('float64'), dtype('int64'), 212)
>>> load_digits_imbalanced(rng=0).y.mean().round(3)
np.float64(0.05)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class TabularData:
    """Features and labels of one dataset.

    Attributes
    ----------
    x : ndarray, float64 [n, d]
    y : ndarray, int64 [n]
        Class labels; for a binary task 1 is the class of interest (the positive class).
    description : str
        One human sentence (what the rows are, what is positive).
    """

    x: np.ndarray
    y: np.ndarray
    description: str

    def __post_init__(self) -> None:
        if self.x.ndim != 2 or self.y.ndim != 1 or self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"`x` must be [n, d] and `y` [n], got {self.x.shape} and {self.y.shape}")


def load_breast_cancer() -> TabularData:
    """Wisconsin breast cancer (569 x 30); ``y = 1`` for malignant (scikit-learn codes it 0)."""
    from sklearn.datasets import load_breast_cancer as sk_load

    data = sk_load()
    return TabularData(np.asarray(data.data, dtype=np.float64), (data.target == 0).astype(np.int64),
                       "Wisconsin breast cancer, malignant (positive) vs benign")


def load_digits() -> TabularData:
    """The 8x8 handwritten digits (1797 x 64, pixel values 0..16); ``y`` is the digit 0..9."""
    from sklearn.datasets import load_digits as sk_load

    data = sk_load()
    return TabularData(np.asarray(data.data, dtype=np.float64), data.target.astype(np.int64),
                       "8x8 handwritten digits, labels 0-9")


def load_digits_imbalanced(positive_class: int = 8, positive_rate: float = 0.05,
                           rng: np.random.Generator | int = 0) -> TabularData:
    """Digit ``positive_class`` (``y = 1``) vs the rest, positives subsampled to ``positive_rate``.

    Every negative is kept; ``round(rate / (1 - rate) * n_negatives)`` positives are drawn without
    replacement with ``rng.choice`` (capped at the positives there are); rows stay in file order.
    Passing the same Generator state gives the same rows as ``rankguard demo``'s digits task.
    """
    if not 0 < positive_rate < 1:
        raise ValueError(f"`positive_rate` must lie in (0, 1), got {positive_rate}")
    if positive_class not in range(10):
        raise ValueError(f"`positive_class` must be a digit 0..9, got {positive_class}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    digits = load_digits()
    y = digits.y == positive_class
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    keep_pos = min(pos.size, round(positive_rate / (1 - positive_rate) * neg.size))
    keep = np.sort(np.r_[rng.choice(pos, size=keep_pos, replace=False), neg])
    return TabularData(digits.x[keep], y[keep].astype(np.int64),
                       f"8x8 digits, digit {positive_class} vs rest, positives subsampled to "
                       f"{keep_pos}/{keep.size} ({keep_pos / keep.size:.1%})")


def load_letter_npz(folder: Path) -> TabularData:
    """UCI letter recognition as the LDR-loss authors committed it: ``letter_test.npz`` with
    ``arr_0`` features [2000, 16] and ``arr_1`` one-hot labels [2000, 26]; ``y`` is 0..25 (A..Z)."""
    path = Path(folder) / "letter_test.npz"
    with np.load(path, allow_pickle=False) as z:
        if {"arr_0", "arr_1"} - set(z.files):
            raise ValueError(f"{path}: expected arrays arr_0 and arr_1, found {z.files}")
        x, onehot = z["arr_0"], z["arr_1"]
    if onehot.ndim != 2 or onehot.shape[0] != x.shape[0] or not np.all(onehot.sum(axis=1) == 1):
        raise ValueError(f"{path}: arr_1 must be one-hot [n, classes] with n = {x.shape[0]}, got {onehot.shape}")
    return TabularData(np.asarray(x, dtype=np.float64), onehot.argmax(axis=1).astype(np.int64),
                       "UCI letter recognition, 26 classes (A-Z = 0-25)")
