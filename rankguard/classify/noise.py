"""Label-noise injection for the training labels: ``uniform:η`` and ``pairflip:η`` (REFERENCES.md §7).

- ``uniform:η`` — each label is, with probability η, replaced by one of the *other* K − 1 classes
  drawn uniformly; so the expected realised flip rate is η itself (not η·(K − 1)/K, as when the
  replacement may equal the true class).
- ``pairflip:η`` — each label y is, with probability η, replaced by (y + 1) mod K (class-dependent
  noise; the paper's fixed flip maps are dataset-specific and not used here).
- ``none`` — labels unchanged.

Draws come from the ``numpy.random.Generator`` passed in (seeded by the run's ``noise_seed``);
only the labels handed in are touched, so a recipe passes its training (and validation) pool and
never the test labels. :class:`NoisyLabels` records what happened: the realised noise matrix
``counts[true, given]`` and the flipped positions.

>>> y = np.repeat(np.arange(4), 50)
>>> out = inject_noise(y, 4, parse_noise("pairflip:0.5"), np.random.default_rng(0))
>>> bool(np.all(out.labels[out.flipped] == (y[out.flipped] + 1) % 4)), int(out.matrix.sum())
(True, 200)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

NOISE_KINDS = ("none", "uniform", "pairflip")


@dataclass(frozen=True)
class NoiseSpec:
    """``kind`` in :data:`NOISE_KINDS` and the rate η ∈ [0, 1) (0 for ``none``)."""

    kind: str
    rate: float

    def __str__(self) -> str:
        return "none" if self.kind == "none" else f"{self.kind}:{self.rate:g}"


def parse_noise(text: str) -> NoiseSpec:
    """``"none"``, ``"uniform:0.4"`` or ``"pairflip:0.2"`` -> :class:`NoiseSpec` (errors name ``--noise``).

    >>> parse_noise("uniform:0.4"), str(parse_noise("none"))
    (NoiseSpec(kind='uniform', rate=0.4), 'none')
    """
    text = str(text).strip().lower()
    if text in ("none", "clean", ""):
        return NoiseSpec("none", 0.0)
    kind, _, rate = text.partition(":")
    if kind not in NOISE_KINDS[1:] or not rate:
        raise ValueError(f"--noise must be none, uniform:RATE or pairflip:RATE (e.g. uniform:0.4), got {text!r}")
    try:
        eta = float(rate)
    except ValueError:
        eta = float("nan")
    if not 0 <= eta < 1:
        raise ValueError(f"--noise {text}: the rate must be a number in [0, 1), got {rate!r}")
    return NoiseSpec(kind, eta)


@dataclass
class NoisyLabels:
    """Result of :func:`inject_noise`.

    Attributes: ``labels`` [n] the noisy labels; ``clean`` [n] the labels given in; ``flipped`` sorted
    positions where they differ; ``matrix`` [K, K] counts, row = clean class, column = given class.
    """

    labels: np.ndarray
    clean: np.ndarray
    flipped: np.ndarray
    matrix: np.ndarray
    spec: NoiseSpec

    @property
    def rate(self) -> float:
        """The realised flip rate ``len(flipped) / n``."""
        return float(self.flipped.size / max(self.labels.size, 1))

    def to_dict(self) -> dict[str, Any]:
        return {"noise": str(self.spec), "kind": self.spec.kind, "rate": self.spec.rate,
                "realised_rate": self.rate, "n": int(self.labels.size), "n_flipped": int(self.flipped.size),
                "matrix_rows_clean_cols_given": self.matrix.tolist(), "flipped": self.flipped.tolist()}


def noise_matrix(clean: np.ndarray, given: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``[K, K]``: row = clean class, column = given class."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (clean, given), 1)
    return m


def inject_noise(labels: np.ndarray, n_classes: int, spec: NoiseSpec, rng: np.random.Generator) -> NoisyLabels:
    """Corrupt ``labels`` (int [n] in [0, K)) as ``spec`` says, drawing from ``rng``; see the module docstring."""
    y = np.asarray(labels, dtype=np.int64)
    if y.ndim != 1 or (y.size and (y.min() < 0 or y.max() >= n_classes)):
        raise ValueError(f"`labels` must be 1-D integers in [0, {n_classes}), got shape {y.shape}")
    noisy = y.copy()
    if spec.kind != "none" and spec.rate > 0:
        hit = rng.random(y.size) < spec.rate
        if spec.kind == "uniform":
            # an offset in 1..K-1 picks one of the other classes uniformly
            offset = rng.integers(1, n_classes, size=y.size)
            noisy[hit] = (y[hit] + offset[hit]) % n_classes
        else:
            noisy[hit] = (y[hit] + 1) % n_classes
    flipped = np.flatnonzero(noisy != y)
    return NoisyLabels(noisy, y, flipped, noise_matrix(y, noisy, n_classes), spec)
