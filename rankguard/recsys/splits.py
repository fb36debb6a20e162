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


ROUNDINGS = ("floor", "systematic")


def _ratio_sizes(counts: np.ndarray, ratios: Sequence[float],
                 offsets: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-user (train, val) sizes.

    Without ``offsets``: ``floor(n * r_train)``, ``floor(n * r_val)`` in exact arithmetic. With one
    uniform ``offsets[u]`` in [0, 1) per user (systematic rounding): cut points
    ``c1 = floor(n r_train + U)``, ``c2 = floor(n (r_train + r_val) + U)``, sizes ``c1`` and
    ``c2 - c1``; then ``0 <= c1 <= c2 <= n`` and every expected size is exactly ``n * r``.
    """
    r_train, r_val, _ = _check_ratios(ratios)
    if offsets is None:
        return (counts * r_train.numerator // r_train.denominator,
                counts * r_val.numerator // r_val.denominator)
    c1 = np.floor(counts * float(r_train) + offsets).astype(np.int64)
    c2 = np.minimum(np.floor(counts * float(r_train + r_val) + offsets).astype(np.int64), counts)
    c1 = np.minimum(c1, c2)
    return c1, c2 - c1


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


def ratio_split(inter: Interactions, ratios: Sequence[float] = (3, 1, 1), seed: int = 1234,
                rounding: str = "floor") -> Split:
    """Shuffle each user's positives (seeded numpy Generator) and cut them by ``ratios``.

    ``rounding="floor"`` (default) follows the LibCML authors' split (inferred from their
    published ML-100K split, which it reproduces user by user: 938 users, 32,844 / 10,696 /
    11,821 pairs): a user with ``n`` positives gets ``floor(n * r_train)`` training pairs,
    ``floor(n * r_val)`` validation pairs and the rest for test, with ``r`` the ratios normalised
    to sum 1 (exact fractions). E.g. n = 19 at 3:1:1 -> 11 / 3 / 5. The shuffle itself is ours
    (``numpy.random.default_rng``), so *which* items land in each part differs from the authors' files.

    ``rounding="systematic"``: one uniform offset ``U_u`` per user (drawn after the shuffle keys,
    so the shuffle is the same as with ``"floor"``), cut points ``floor(n r_train + U_u)`` and
    ``floor(n (r_train + r_val) + U_u)``: expected sizes are exactly ``n * r`` per user, so users
    with few positives still land in validation with probability ``n * r_val`` (floor gives them
    none below ``1 / r_val`` positives).

    >>> import scipy.sparse as sp
    >>> inter = Interactions(sp.csr_matrix(np.ones((1000, 5), dtype=np.float32)))
    >>> ratio_split(inter, (7, 1, 2), seed=0).val.nnz                          # floor(0.5) = 0 per user
    0
    >>> abs(ratio_split(inter, (7, 1, 2), seed=0, rounding="systematic").val.nnz - 500) < 60
    True
    """
    if rounding not in ROUNDINGS:
        raise ValueError(f"`rounding` must be one of {ROUNDINGS}, got {rounding!r}")
    rng = np.random.default_rng(seed)
    m = inter.matrix
    counts = np.diff(m.indptr).astype(np.int64)
    rows = np.repeat(np.arange(m.shape[0]), counts)
    order = np.lexsort((rng.random(m.nnz), rows))
    offsets = rng.random(counts.size) if rounding == "systematic" else None
    n_train, n_val = _ratio_sizes(counts, ratios, offsets)
    how = f"{rounding} rounding, " if rounding != "floor" else ""
    return _cut(m, order, n_train, n_val, inter,
                f"split each user's positives {_ratios_text(ratios)} in a random order ({how}seed {seed})")


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


# --------------------------------------------------------------------------------------------
# distribution-shifted splits: a shifted test beside an in-distribution (iid) test


def item_popularity(matrix: sp.spmatrix) -> np.ndarray:
    """Number of positives of every item (column counts), int64 [n_items].

    >>> item_popularity(sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0]]))).tolist()
    [2, 1, 0]
    """
    m = sp.csr_matrix(matrix)
    return np.bincount(m.indices, minlength=m.shape[1]).astype(np.int64)


def mean_item_popularity(matrix: sp.spmatrix, popularity: np.ndarray) -> float:
    """Mean of ``popularity[item]`` over the stored (user, item) pairs of ``matrix``; NaN when empty.

    >>> mean_item_popularity(sp.csr_matrix(np.array([[1, 0], [1, 1]])), np.array([10, 2]))
    7.333333333333333
    """
    m = sp.csr_matrix(matrix)
    return float(np.asarray(popularity, dtype=np.float64)[m.indices].mean()) if m.nnz else float("nan")


def shifted_split(inter: Interactions, shifted_test: sp.spmatrix, ratios: Sequence[float] = (7, 1, 2),
                  seed: int = 1234, shifted_what: str = "the shifted test",
                  popularity: np.ndarray | None = None) -> Split:
    """In-distribution positives split per user into train / val / ``iid_test``, beside a shifted ``test``.

    ``inter`` (the in-distribution positives, [n_users, n_items]) goes through
    :func:`ratio_split` (``ratios`` train : validation : iid test, ``seed``, systematic rounding);
    ``test = shifted_test - (shifted_test ∘ inter)``: pairs of ``shifted_test`` that are also
    in-distribution positives are dropped (they would be in train / val / iid_test), and the
    number dropped is stated in ``notes``. ``popularity`` [n_items] (default: item counts over
    ``inter`` ∪ ``shifted_test``) gives the mean item popularity of each test set in ``notes``.

    >>> iid = sp.csr_matrix(np.kron(np.ones((2, 1)), [1, 1, 1, 1, 0, 0]), dtype=np.float32)
    >>> shifted = sp.csr_matrix(([1.0, 1.0], ([0, 1], [0, 5])), shape=(2, 6))   # (0, 0) is also iid
    >>> s = shifted_split(Interactions(iid), shifted, seed=0)
    >>> s.test.nnz, s.train.nnz + s.val.nnz + s.iid_test.nnz
    (1, 8)
    """
    m = inter.matrix
    shifted = sp.csr_matrix(shifted_test, dtype=np.float32)
    if shifted.shape != m.shape:
        raise ValueError(f"`shifted_test` has shape {shifted.shape}, `inter` {m.shape}")
    shifted.data[:] = 1.0
    overlap = shifted.multiply(m)
    test = sp.csr_matrix(shifted - overlap, dtype=np.float32)
    test.eliminate_zeros()
    test.sort_indices()
    base = ratio_split(inter, ratios, seed=seed, rounding="systematic")
    if popularity is None:
        popularity = item_popularity(m) + item_popularity(shifted)
    no_train = int(((np.diff(base.train.indptr) == 0) & (np.diff(m.indptr) + np.diff(test.indptr) > 0)).sum())
    note = (f"shifted split (seed {seed}): each user's in-distribution positives split "
            f"{_ratios_text(ratios)} in a random order (systematic rounding) into {base.train.nnz} / "
            f"{base.val.nnz} / {base.test.nnz} train / validation / in-distribution test pairs; shifted test = "
            f"{shifted_what}: {test.nnz} pairs"
            + (f" ({overlap.nnz} pairs also in-distribution positives dropped)" if overlap.nnz else "")
            + f"; mean item popularity {mean_item_popularity(test, popularity):.1f} (shifted test) vs "
              f"{mean_item_popularity(base.test, popularity):.1f} (in-distribution test)"
            + (f"; {no_train} users with positives have no training pair" if no_train else ""))
    return Split(base.train, base.val, test, name=inter.name, notes=[*inter.notes, note], iid_test=base.test)


def weighted_sample_without_replacement(weights: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``size`` entries drawn without replacement, successively with probability ∝ ``weights``.

    Efraimidis & Spirakis (2006): key ``k_j = log(U_j) / w_j`` (``U_j`` uniform on (0, 1]), keep
    the ``size`` largest keys — the same distribution as drawing one entry at a time with
    probability ``w_j / Σ_remaining w``, in one vectorised pass (O(n) plus a partition). Entries with
    weight 0 are never drawn. ``weights``: float [n], finite, >= 0, with at least ``size`` positive.
    Returns sorted int64 indices [size].

    >>> weighted_sample_without_replacement(np.array([0.0, 1.0, 5.0, 1.0]), 1, np.random.default_rng(0)).shape
    (1,)
    >>> weighted_sample_without_replacement(np.array([0.0, 1.0, 5.0]), 2, np.random.default_rng(0)).tolist()
    [1, 2]
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("`weights` must be a 1-D array of finite non-negative numbers")
    n_positive = int((w > 0).sum())
    if not 0 <= int(size) <= n_positive:
        raise ValueError(f"`size` must be in [0, {n_positive}] (entries with positive weight), got {size}")
    keys = np.full(w.size, -np.inf)
    positive = w > 0
    keys[positive] = np.log1p(-rng.random(w.size)[positive]) / w[positive]  # log(1 - u), u in [0, 1)
    if size == 0:
        return np.zeros(0, dtype=np.int64)
    chosen = np.argpartition(-keys, int(size) - 1)[:int(size)]
    return np.sort(chosen).astype(np.int64)


POPSHIFT_TEST_FRACTION = 0.2
POPSHIFT_BETA = 1.0
POPSHIFT_RATIOS: tuple[int, int, int] = (7, 1, 2)


def popularity_split(inter: Interactions, test_fraction: float = POPSHIFT_TEST_FRACTION,
                     beta: float = POPSHIFT_BETA, ratios: Sequence[float] = POPSHIFT_RATIOS,
                     seed: int = 1234) -> Split:
    """A popularity-shifted test set beside a random in-distribution one.

    With ``pop(i)`` the number of positives of item ``i`` (over all of ``inter``),
    ``round(test_fraction * nnz)`` positive pairs are drawn without replacement, each draw with
    probability ∝ ``pop(i) ** -beta`` (:func:`weighted_sample_without_replacement`): this is
    ``test``, shifted towards unpopular items. The remaining positives are split per user at
    random by ``ratios`` into train / val / ``iid_test`` (:func:`shifted_split`).

    Defaults (our choice): ``test_fraction = 0.2``, the usual test share; ``beta = 1``: an item's
    total weight ``pop(i) * pop(i)^-1 = 1`` is the same for every item, so every item has about the
    same expected number of shifted-test pairs (rare items saturate: at most ``pop(i)``) and the
    shifted test is flat in items where the iid test follows the popularity; ``beta = 0`` is a
    uniform random test. ``ratios = 7:1:2`` for the rest: 56 / 8 / 16 % of all positives.
    The sampling draws from ``default_rng((seed, 1))``, the per-user split from ``default_rng(seed)``
    (independent streams). Shapes: every part is ``inter.matrix.shape``.

    >>> rng = np.random.default_rng(0)
    >>> m = sp.csr_matrix((rng.random((50, 40)) < np.linspace(0.9, 0.05, 40)).astype(np.float32))
    >>> s = popularity_split(Interactions(m), seed=0)
    >>> pop = item_popularity(m)
    >>> mean_item_popularity(s.test, pop) < mean_item_popularity(s.iid_test, pop)
    True
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"`test_fraction` must be in (0, 1), got {test_fraction!r}")
    if not np.isfinite(beta):
        raise ValueError(f"`beta` must be a finite number, got {beta!r}")
    m = inter.matrix
    popularity = item_popularity(m)
    n_test = int(round(float(test_fraction) * m.nnz))
    weights = popularity[m.indices].astype(np.float64) ** -float(beta)
    chosen = weighted_sample_without_replacement(weights, n_test, np.random.default_rng((seed, 1)))
    in_test = np.zeros(m.nnz, dtype=bool)
    in_test[chosen] = True
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))

    def part(sel: np.ndarray) -> sp.csr_matrix:
        out = sp.csr_matrix((np.ones(int(sel.sum()), dtype=np.float32), (rows[sel], m.indices[sel])), shape=m.shape)
        out.sort_indices()
        return out

    rest = Interactions(part(~in_test), name=inter.name, notes=list(inter.notes))
    what = (f"a share {float(test_fraction):g} of the {m.nnz} positives drawn without replacement with "
            f"probability ∝ popularity^-{float(beta):g} (popularity over all positives)")
    return shifted_split(rest, part(in_test), ratios=ratios, seed=seed, shifted_what=what, popularity=popularity)
