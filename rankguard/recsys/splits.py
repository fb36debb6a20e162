"""Per-user train / validation / test splits of implicit feedback.

All three splitters share one vectorised core: give every positive pair a sort key, order each
user's pairs by it, and cut each user's list by position. No Python loop over users.

Every split carries the ``notes`` of its interactions (what the reader and filters did) and adds
one sentence saying how it split and how many pairs each part got.

Example
-------
>>> import numpy as np, scipy.sparse as sp
>>> from rankguard.recsys.data import Interactions
>>> inter = Interactions(sp.csr_matrix(np.ones((2, 10), dtype=np.float32)))
>>> s = ratio_split(inter, (3, 1, 1), seed=0)
>>> s.train.nnz, s.val.nnz, s.test.nnz
(12, 4, 4)
"""

from __future__ import annotations

from fractions import Fraction
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from rankguard.recsys.data import Interactions, Split


def _check_ratios(ratios: Sequence[float]) -> tuple[Fraction, Fraction, Fraction]:
    if len(ratios) != 3:
        raise ValueError(f"`ratios` must hold 3 numbers (train, val, test), got {tuple(ratios)}")
    fr = [Fraction(r).limit_denominator(10**6) for r in ratios]
    if any(r < 0 for r in fr) or sum(fr) <= 0:
        raise ValueError(f"`ratios` must be non-negative with a positive sum, got {tuple(ratios)}")
    total = sum(fr)
    return fr[0] / total, fr[1] / total, fr[2] / total


def _ratio_sizes(counts: np.ndarray, ratios: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Per-user (train, val) sizes: ``floor(n * r_train)``, ``floor(n * r_val)`` in exact arithmetic."""
    r_train, r_val, _ = _check_ratios(ratios)
    return (counts * r_train.numerator // r_train.denominator,
            counts * r_val.numerator // r_val.denominator)


def _cut(matrix: sp.csr_matrix, order: np.ndarray, n_train: np.ndarray, n_val: np.ndarray,
         inter: Interactions, how: str) -> Split:
    """Assign each user's pairs, visited in ``order`` (grouped by row), to train/val/test by position.

    ``order`` permutes the csr entries so that entries of one row are contiguous and rows ascend.
    The split's notes are ``inter.notes`` plus one sentence starting with ``how``.
    """
    indptr = matrix.indptr.astype(np.int64)
    counts = np.diff(indptr)
    rows = np.repeat(np.arange(matrix.shape[0]), counts)[order]
    pos = np.arange(order.size) - indptr[rows]  # 0-based position within the user's ordered list
    cols = matrix.indices[order]
    part = np.where(pos < n_train[rows], 0, np.where(pos < n_train[rows] + n_val[rows], 1, 2))

    def make(p: int) -> sp.csr_matrix:
        sel = part == p
        m = sp.csr_matrix((np.ones(int(sel.sum()), dtype=np.float32), (rows[sel], cols[sel])), shape=matrix.shape)
        m.sort_indices()
        return m

    train, val, test = make(0), make(1), make(2)
    note = f"{how}: {train.nnz} / {val.nnz} / {test.nnz} train / validation / test pairs"
    no_test = int(((np.diff(test.indptr) == 0) & (counts > 0)).sum())
    if no_test:
        note += f"; {no_test} users with positives have no test pair"
    return Split(train, val, test, name=inter.name, notes=[*inter.notes, note])


def _ratios_text(ratios: Sequence[float]) -> str:
    return ":".join(f"{r:g}" for r in ratios)


def ratio_split(inter: Interactions, ratios: Sequence[float] = (3, 1, 1), seed: int = 1234) -> Split:
    """Shuffle each user's positives (seeded numpy Generator) and cut them by ``ratios``.

    Rounding follows the LibCML authors' split (inferred from their published ML-100K split,
    which it reproduces user by user: 938 users, 32,844 / 10,696 / 11,821 pairs): a user with
    ``n`` positives gets ``floor(n * r_train)`` training pairs, ``floor(n * r_val)`` validation
    pairs and the rest for test, with ``r`` the ratios normalised to sum 1 (exact fractions).
    E.g. n = 19 at 3:1:1 -> 11 / 3 / 5. The shuffle itself is ours (``numpy.random.default_rng``),
    so *which* items land in each part differs from the authors' files.
    """
    rng = np.random.default_rng(seed)
    m = inter.matrix
    counts = np.diff(m.indptr).astype(np.int64)
    n_train, n_val = _ratio_sizes(counts, ratios)
    rows = np.repeat(np.arange(m.shape[0]), counts)
    order = np.lexsort((rng.random(m.nnz), rows))
    return _cut(m, order, n_train, n_val, inter,
                f"split each user's positives {_ratios_text(ratios)} in a random order (seed {seed})")


def leave_one_out(inter: Interactions, seed: int = 1234, timestamps: sp.csr_matrix | None = None) -> Split:
    """Each user's last positive -> test, second last -> validation, the rest -> train.

    "Last" is by time when ``timestamps`` (or ``inter.timestamps``) is given, ties broken at random;
    otherwise a seeded random order. A user with one positive has it in test only; with two,
    one in validation and one in test (no training pairs: filter users first, e.g.
    :func:`~rankguard.recsys.data.filter_min_interactions` with ``min_user=3``).
    """
    ts = timestamps if timestamps is not None else inter.timestamps
    m = inter.matrix
    counts = np.diff(m.indptr).astype(np.int64)
    rows = np.repeat(np.arange(m.shape[0]), counts)
    rng = np.random.default_rng(seed)
    keys = [rng.random(m.nnz)]
    if ts is not None:
        keys.append(_aligned_times(m, ts, "timestamps"))
    order = np.lexsort((*keys, rows))
    n_val = np.minimum(counts, 2) - np.minimum(counts, 1)  # 1 when n >= 2
    n_train = counts - np.minimum(counts, 2)
    how = "by time, ties at random" if ts is not None else "in a random order"
    return _cut(m, order, n_train, n_val, inter, f"left each user's last positive out ({how}, seed {seed})")


def temporal_split(inter_with_timestamps: Interactions, ratios: Sequence[float] = (3, 1, 1)) -> Split:
    """Per user, the earliest pairs -> train, the next -> validation, the latest -> test.

    Same rounding as :func:`ratio_split`; ties in time are ordered by item index.
    Needs ``inter.timestamps`` (``read_movielens``, ``read_inter`` and ``read_csv(time_col=...)`` keep them).
    """
    inter = inter_with_timestamps
    if inter.timestamps is None:
        raise ValueError("`inter_with_timestamps` has no timestamps; read it with a reader that keeps them")
    m = inter.matrix
    counts = np.diff(m.indptr).astype(np.int64)
    n_train, n_val = _ratio_sizes(counts, ratios)
    rows = np.repeat(np.arange(m.shape[0]), counts)
    order = np.lexsort((m.indices, _aligned_times(m, inter.timestamps, "timestamps"), rows))
    return _cut(m, order, n_train, n_val, inter,
                f"split each user's positives {_ratios_text(ratios)} by time (earliest to train)")


def _aligned_times(matrix: sp.csr_matrix, ts: sp.csr_matrix, name: str) -> np.ndarray:
    """Timestamps in the entry order of ``matrix`` (which must share its sparsity pattern)."""
    if ts.shape != matrix.shape:
        raise ValueError(f"`{name}` has shape {ts.shape}, interactions {matrix.shape}")
    if np.array_equal(ts.indptr, matrix.indptr) and np.array_equal(ts.indices, matrix.indices):
        return np.asarray(ts.data, dtype=np.float64)
    # different storage order: look the times up per entry (an explicit 0 time would be lost here)
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    looked = np.asarray(ts[rows, matrix.indices]).ravel().astype(np.float64)
    return looked
