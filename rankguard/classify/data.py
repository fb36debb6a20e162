"""Classification splits through the dataset registry: test fold, noisy train/validation pool.

Order of operations (so the test labels are never corrupted and selection sees only noisy labels):

1. the test set — ``digits`` and ``letter`` (no fixed split): fold ``fold`` of a stratified
   ``folds``-fold partition (scikit-learn ``StratifiedKFold``, shuffled with ``split_seed``), so the
   runs ``fold = 0 .. folds-1`` together are a stratified k-fold cross-validation; ``mnist`` and
   ``cifar10``: the official 10,000-image test set (training pool: the 5,000- / 10,000-image subset);
1b. with ``max_train``, a stratified subsample of that many pool rows (from ``split_seed``), for
   quick runs;
2. noise (:mod:`rankguard.classify.noise`) on the remaining pool's labels, from ``noise_seed``;
3. a stratified (by the *noisy* labels, the only ones a user has) validation split of
   ``val_fraction`` of the pool, from ``split_seed``; the rest is the training set;
4. features standardised with the training set's mean and std (``mnist``: pixels in [0, 1], kept;
   ``cifar10``: already normalised per channel by :func:`rankguard.data.images.load_cifar10`).

Registered here: :data:`CLASSIFY_DATASETS` (name -> pool/test loader) and :data:`INPUT_SHAPES`
(image datasets' ``(C, H, W)``). Features are always flat rows ``[n, d]`` (what the engine's
:class:`~rankguard.training.ScorerObjective` takes): CIFAR-10's ``NCHW`` images are flattened to
3,072 values and the ``cnn`` model views them as ``[3, 32, 32]`` again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from rankguard.classify.noise import NoisyLabels, inject_noise, parse_noise
from rankguard.registry import Registry


@dataclass
class ClassificationSplit:
    """Arrays of one run (float32 features, int64 labels) and where they came from.

    ``y_train`` / ``y_val`` are the (noisy) labels trained and selected on; ``y_train_clean`` /
    ``y_val_clean`` the originals; ``y_test`` is clean. ``train_rows`` / ``val_rows`` / ``test_rows``
    are row numbers in the dataset's own order; ``train_flipped`` positions in the training set whose
    label was changed.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    y_train_clean: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    y_val_clean: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    train_rows: np.ndarray
    val_rows: np.ndarray
    test_rows: np.ndarray
    noise: NoisyLabels
    notes: list[str] = field(default_factory=list)

    @property
    def train_flipped(self) -> np.ndarray:
        return np.flatnonzero(self.y_train != self.y_train_clean)


# name -> loader returning (x, y, test_rows or None, description); test_rows None = use a CV fold
CLASSIFY_DATASETS: Registry[Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray | None, str, bool]]] = \
    Registry("classification dataset")


def _tabular(name: str) -> Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray | None, str, bool]]:
    def load_it() -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str, bool]:
        from rankguard.data import load

        d = load(name)
        return d.x, d.y, None, d.description, True
    return load_it


def _fixed_split(name: str) -> Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray | None, str, bool]]:
    """An image dataset with a fixed train/test split: its rows flattened, the test rows after the training ones."""
    def load_it() -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str, bool]:
        from rankguard.data import load

        d = load(name)
        y = np.concatenate([d.y_train, d.y_test])
        x = np.concatenate([d.x_train, d.x_test]).reshape(y.size, -1)
        return x, y, np.arange(d.y_train.size, y.size), d.description, False
    return load_it


CLASSIFY_DATASETS.register("digits", _tabular("digits"))
CLASSIFY_DATASETS.register("letter", _tabular("letter"))
CLASSIFY_DATASETS.register("mnist", _fixed_split("mnist"))
CLASSIFY_DATASETS.register("cifar10", _fixed_split("cifar10"))

#: image datasets: name -> (C, H, W) of one flat row (the model and --augment need it)
INPUT_SHAPES: dict[str, tuple[int, int, int]] = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32)}


def _stratified_holdout(y: np.ndarray, fraction: float | int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(y.size)
    counts = np.bincount(y)
    held = int(np.ceil(fraction * y.size)) if isinstance(fraction, float) else int(fraction)  # int: a count
    classes = int((counts > 0).sum())
    # a class of one row cannot be stratified, nor can a part smaller than the number of classes
    strat = y if counts[counts > 0].min() >= 2 and min(held, y.size - held) >= classes else None
    keep, hold = train_test_split(idx, test_size=fraction, random_state=seed, stratify=strat)
    return np.sort(keep), np.sort(hold)


def load_split(dataset: str, noise: str = "none", *, fold: int = 0, folds: int = 5, val_fraction: float = 0.2,
               split_seed: int = 0, noise_seed: int = 0, max_train: int | None = None) -> ClassificationSplit:
    """Build the split described in the module docstring.

    >>> s = load_split("digits", "uniform:0.4", fold=1)
    >>> s.n_classes, s.x_train.shape[1], abs(s.noise.rate - 0.4) < 0.05, s.y_test.size in (359, 360)
    (10, 64, True, True)
    """
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"--folds must be an integer >= 2, got {folds!r}")
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < folds:
        raise ValueError(f"--fold must be an integer in [0, --folds) = [0, {folds}), got {fold!r}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"--val-fraction must lie in (0, 1), got {val_fraction!r}")
    if max_train is not None and (isinstance(max_train, bool) or not isinstance(max_train, int) or max_train < 2):
        raise ValueError(f"--max-train must be an integer >= 2, got {max_train!r}")
    spec = parse_noise(noise)
    x, y, test_rows, description, standardise = CLASSIFY_DATASETS.get(dataset)()
    y = np.asarray(y, dtype=np.int64)
    n_classes = int(y.max() + 1)
    notes = [description]
    if test_rows is None:
        from sklearn.model_selection import StratifiedKFold

        parts = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=split_seed).split(x, y))
        pool_rows, test_rows = parts[fold]
        notes.append(f"test set: fold {fold} of a stratified {folds}-fold partition (seed {split_seed}); "
                     f"{test_rows.size} rows")
    else:
        pool_rows = np.setdiff1d(np.arange(y.size), test_rows)
        notes.append(f"test set: the dataset's fixed test split ({test_rows.size} rows; --fold ignored)")
    if max_train is not None and max_train < pool_rows.size:
        keep_rows, _ = _stratified_holdout(y[pool_rows], int(pool_rows.size - max_train), split_seed)
        notes.append(f"--max-train {max_train}: a stratified subsample of {keep_rows.size} of the "
                     f"{pool_rows.size} pool rows (seed {split_seed})")
        pool_rows = pool_rows[keep_rows]
    noisy = inject_noise(y[pool_rows], n_classes, spec, np.random.default_rng(noise_seed))
    keep, hold = _stratified_holdout(noisy.labels, val_fraction, split_seed)
    tr, va = pool_rows[keep], pool_rows[hold]
    x_tr, x_va, x_te = x[tr], x[va], x[test_rows]
    if standardise:
        mu, sd = x_tr.mean(axis=0), x_tr.std(axis=0)
        sd[sd == 0] = 1.0
        x_tr, x_va, x_te = ((a - mu) / sd for a in (x_tr, x_va, x_te))
    notes.append(f"noise {spec} on the {pool_rows.size}-row training pool (train + validation), realised rate "
                 f"{noisy.rate:.4f}; validation: {va.size} rows with noisy labels, stratified")
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    return ClassificationSplit(f32(x_tr), noisy.labels[keep], y[tr], f32(x_va), noisy.labels[hold], y[va],
                               f32(x_te), y[test_rows], n_classes, tr, va, np.asarray(test_rows), noisy, notes)


def split_summary(split: ClassificationSplit) -> dict[str, Any]:
    """Sizes and noise of a split (stored in config.json / metrics.json)."""
    return {"n_train": int(split.y_train.size), "n_val": int(split.y_val.size), "n_test": int(split.y_test.size),
            "n_classes": split.n_classes, "n_features": int(np.prod(split.x_train.shape[1:])),
            "train_noise_rate": float(split.train_flipped.size / max(split.y_train.size, 1)),
            "val_noise_rate": float(np.mean(split.y_val != split.y_val_clean)) if split.y_val.size else 0.0}
