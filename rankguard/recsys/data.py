"""Implicit-feedback interaction data: readers, k-core filtering and loading by name or path.

Every reader returns :class:`Interactions`: a users x items ``scipy.sparse.csr_matrix`` of
``float32`` ones (one entry per positive pair, duplicates merged), optionally the time of each
pair (``timestamps``, same sparsity pattern) and the raw id of every row and column.

Readers **keep the id space of the file**: a user whose ratings all fall below ``threshold`` is an
empty row, not a missing one, so row ``k`` of a MovieLens ``u.data`` is always user ``k + 1``.
:func:`load_dataset` then drops users with fewer than ``min_interactions`` positives (at least
one), logging how many went, through :func:`filter_min_interactions`.

The one exception is a **sparse id space**: when the largest integer id exceeds
``SPARSE_ID_FACTOR`` x (number of distinct ids) + ``SPARSE_ID_SLACK`` (e.g. one item id of
2·10⁹ among a few thousand), keeping it would allocate a matrix dimension of that size, so the
ids are remapped to dense indices in increasing id order and the raw ids kept in
``item_ids`` / ``user_ids``. Real files (MovieLens, CiteULike) are far below the bound and keep
their id space.

What the readers, filters and splits did to the data is written, one human sentence each, into
``notes`` (on :class:`Interactions` and :class:`Split`): merged duplicate pairs, remapped ids,
dropped users, the split made. Runs copy them into their log and report.

Files must be UTF-8 text; a binary or otherwise undecodable file raises ``ValueError`` naming the
file and the line of the first bad byte.

Example
-------
>>> import numpy as np, scipy.sparse as sp
>>> inter = Interactions(sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 0]], dtype=np.float32)))
>>> inter.n_users, inter.n_items, inter.matrix.nnz
(2, 3, 2)
>>> filter_min_interactions(inter, min_user=1).n_users
1
"""

from __future__ import annotations

import csv
import io
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from rankguard.data import DATASETS, describe_data_dir
from rankguard.data import load as load_registered

log = logging.getLogger(__name__)

PathLike = str | os.PathLike

# an integer id space is "sparse" (and remapped) when max id + 1 > FACTOR * distinct ids + SLACK
SPARSE_ID_FACTOR = 10
SPARSE_ID_SLACK = 1000


@dataclass
class Interactions:
    """Binary implicit feedback.

    Attributes
    ----------
    matrix : csr_matrix, shape [n_users, n_items]
        ``float32`` 1.0 at every positive (user, item) pair; no duplicates, sorted indices.
    name : str
        Where the data came from (dataset name or file).
    timestamps : csr_matrix or None
        Same sparsity pattern as ``matrix`` (same ``indptr``/``indices``), ``float64`` times;
        present when the source file has them (``u.data``, ``.inter``, a CSV with a time column).
    user_ids, item_ids : ndarray or None
        Raw id (or token) of every row / column, when the reader remapped or filtering dropped some.
    notes : list of str
        What readers and filters did, one human sentence each (e.g. "dropped 5 of 943 users with
        fewer than 5 positives"); for a run's log and report.
    """

    matrix: sp.csr_matrix
    name: str = ""
    timestamps: sp.csr_matrix | None = None
    user_ids: np.ndarray | None = field(default=None, repr=False)
    item_ids: np.ndarray | None = field(default=None, repr=False)
    notes: list[str] = field(default_factory=list)

    @property
    def n_users(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.matrix.shape[1])


@dataclass
class Split:
    """Train / validation / test interactions: same shape, pairwise disjoint csr matrices.

    ``iid_test`` (optional) is an *in-distribution* test set kept beside a distribution-shifted
    ``test``: e.g. Coat's held-out self-selected ratings beside its uniformly random ones, or the
    random part of a popularity-shifted split (:func:`~rankguard.recsys.splits.popularity_split`).
    ``None`` for ordinary splits. ``notes`` carries the notes of the interactions it was cut from,
    then one sentence for the split.

    >>> eye = sp.eye(2, format="csr", dtype=np.float32)
    >>> empty = sp.csr_matrix((2, 2), dtype=np.float32)
    >>> sorted(Split(eye, empty, empty, iid_test=empty).parts())
    ['iid_test', 'test', 'train', 'val']
    """

    train: sp.csr_matrix
    val: sp.csr_matrix
    test: sp.csr_matrix
    name: str = ""
    notes: list[str] = field(default_factory=list)
    iid_test: sp.csr_matrix | None = None

    def __post_init__(self) -> None:
        shapes = {part: m.shape for part, m in self.parts().items()}
        if len(set(shapes.values())) != 1:
            raise ValueError(f"Split matrices must share one shape, got {shapes}")

    def parts(self) -> dict[str, sp.csr_matrix]:
        """``{"train", "val", "test"[, "iid_test"]} -> matrix``: the parts present, in that order."""
        out = {"train": self.train, "val": self.val, "test": self.test}
        if self.iid_test is not None:
            out["iid_test"] = self.iid_test
        return out

    @property
    def n_users(self) -> int:
        return int(self.train.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.train.shape[1])


# --------------------------------------------------------------------------------------------
# building blocks


def build_interactions(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int], name: str = "",
                       times: np.ndarray | None = None, user_ids: np.ndarray | None = None,
                       item_ids: np.ndarray | None = None) -> Interactions:
    """Interactions from (row, col[, time]) pairs; duplicates merged, keeping the latest time.

    Merged duplicates are counted in ``notes``.

    >>> inter = build_interactions(np.array([0, 0, 1]), np.array([2, 2, 0]), (2, 3), name="toy")
    >>> inter.matrix.nnz, inter.notes
    (2, ['merged 1 duplicate (user, item) pairs in toy'])
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    n_users, n_items = int(shape[0]), int(shape[1])
    if rows.size and (rows.min() < 0 or rows.max() >= n_users or cols.min() < 0 or cols.max() >= n_items):
        raise ValueError(f"ids out of range for shape {shape}")
    key = rows * n_items + cols
    if times is None:
        order = np.argsort(key, kind="stable")
    else:
        times = np.asarray(times, dtype=np.float64)
        order = np.lexsort((-times, key))  # by pair, latest time first
    key = key[order]
    keep = np.ones(key.size, dtype=bool)
    keep[1:] = key[1:] != key[:-1]
    key = key[keep]
    r, c = key // n_items, key % n_items
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=n_users), out=indptr[1:])
    indices = c.astype(np.int32)
    matrix = sp.csr_matrix((np.ones(key.size, dtype=np.float32), indices, indptr), shape=(n_users, n_items))
    ts = None
    if times is not None:
        ts = sp.csr_matrix((times[order][keep], indices.copy(), indptr.copy()), shape=(n_users, n_items))
    n_merged = int(keep.size - key.size)
    notes = [f"merged {n_merged} duplicate (user, item) pairs in {name or 'the input'}"] if n_merged else []
    return Interactions(matrix, name=name, timestamps=ts, user_ids=user_ids, item_ids=item_ids, notes=notes)


def _read_text(path: PathLike) -> str:
    """The file as text; a binary or non-UTF-8 file raises ``ValueError`` naming file and line."""
    raw = Path(path).read_bytes()
    nul = raw.find(b"\0")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_at = exc.start if nul < 0 else min(exc.start, nul)
    else:
        if nul < 0:
            return text
        bad_at = nul
    lineno = raw.count(b"\n", 0, bad_at) + 1
    raise _bad(path, lineno, f"not a UTF-8 text file (byte 0x{raw[bad_at]:02x} at offset {bad_at}); "
                             "is it a binary file, e.g. an .npz or a compressed archive?")


def _lines(path: PathLike) -> list[str]:
    return _read_text(path).splitlines()


def _dense_ids(ids: np.ndarray, what: str, source: PathLike) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """``(indices, raw ids, note)``: ``ids`` themselves (``None``, ``None``) unless the id space is sparse.

    Sparse means ``max id + 1 > SPARSE_ID_FACTOR * distinct + SPARSE_ID_SLACK``; then the indices
    are ranks in increasing id order and ``raw ids`` maps index -> id.

    >>> _dense_ids(np.array([3, 2_000_000_000, 3]), "item", "f")[:2]
    (array([0, 1, 0]), array([         3, 2000000000]))
    """
    raw = np.unique(ids)
    if int(raw[-1]) + 1 <= SPARSE_ID_FACTOR * raw.size + SPARSE_ID_SLACK:
        return ids, None, None
    dense = np.searchsorted(raw, ids)
    note = (f"remapped {raw.size} distinct {what} ids (largest {int(raw[-1])}) to dense indices "
            f"0..{raw.size - 1} in {source}: the id space is sparse; raw ids are in {what}_ids")
    return dense, raw, note


def _bad(path: PathLike, lineno: int, what: str) -> ValueError:
    return ValueError(f"{path}, line {lineno}: {what}")


def _to_int(token: str, path: PathLike, lineno: int, what: str) -> int:
    try:
        return int(token)
    except ValueError:
        raise _bad(path, lineno, f"{what} must be an integer, got {token!r}") from None


def _to_float(token: str, path: PathLike, lineno: int, what: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise _bad(path, lineno, f"{what} must be a number, got {token!r}") from None


# --------------------------------------------------------------------------------------------
# readers


def read_movielens(path: PathLike, threshold: float = 4.0) -> Interactions:
    """Read a MovieLens ``u.data`` file: ``user item rating timestamp`` per line (tab separated).

    Ids are 1-based; row ``u - 1`` is user ``u`` and column ``i - 1`` item ``i``; the shape is
    (largest user id, largest item id) over *all* lines (unless an id space is sparse: then rows or
    columns are remapped and ``user_ids``/``item_ids`` hold the 1-based ids; see the module
    docstring). A rating ``>= threshold`` is a positive. Timestamps are kept.

    >>> # inter = read_movielens(dataset_path("ml-100k", "u.data")); inter.matrix.shape -> (943, 1682)
    """
    users, items, times, keep = [], [], [], []
    for lineno, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) != 4:
            raise _bad(path, lineno, f"expected 4 fields 'user item rating timestamp', got {len(parts)}")
        u = _to_int(parts[0], path, lineno, "user id")
        i = _to_int(parts[1], path, lineno, "item id")
        if u < 1 or i < 1:
            raise _bad(path, lineno, f"ids are 1-based, got user {u} item {i}")
        rating = _to_float(parts[2], path, lineno, "rating")
        users.append(u - 1)
        items.append(i - 1)
        times.append(_to_float(parts[3], path, lineno, "timestamp"))
        keep.append(rating >= threshold)
    if not users:
        raise ValueError(f"{path}: no ratings found")
    keep_a = np.array(keep, dtype=bool)
    users_a, user_raw, user_note = _dense_ids(np.array(users, dtype=np.int64), "user", path)
    items_a, item_raw, item_note = _dense_ids(np.array(items, dtype=np.int64), "item", path)
    shape = (int(users_a.max()) + 1, int(items_a.max()) + 1)
    inter = build_interactions(users_a[keep_a], items_a[keep_a], shape, name=str(path),
                               times=np.array(times)[keep_a],
                               user_ids=user_raw + 1 if user_raw is not None else None,
                               item_ids=item_raw + 1 if item_raw is not None else None)
    notes = [n for n in (user_note, item_note) if n]
    notes.append(f"kept {int(keep_a.sum())} of {keep_a.size} ratings with rating >= {threshold:g} as positives "
                 f"in {path}")
    inter.notes[:0] = notes
    return inter


def read_users_dat(path: PathLike, one_based_users: bool | None = None) -> Interactions:
    """Read a ``users.dat`` file: line ``k`` holds ``count item item ...`` for the k-th user.

    Item ids are used as column indices **as given** (``n_items = largest id + 1``, unless the
    id space is sparse: then they are remapped and ``item_ids`` holds them; see the module docstring): the
    MovieLens files of the LibCML/DPCML authors hold 1-based item ids, so column 0 is an
    item nobody has (exactly as in the authors' matrices, whose shape is (938, 1675) for
    ML-100K); CiteULike files are 0-based. ``one_based_users`` only labels the rows in
    ``user_ids`` (line k is user k + 1 when True, user k otherwise; ``None`` means False).
    A line with count 0 is an empty row; the count must equal the number of ids that follow.
    """
    rows, cols = [], []
    n_lines = 0
    for lineno, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue  # a trailing blank line; interior blank lines would shift users, so reject them below
        if n_lines != lineno - 1:
            raise _bad(path, lineno - 1, "blank line inside the file (line k must be user k)")
        tokens = line.split()
        count = _to_int(tokens[0], path, lineno, "count")
        ids = [_to_int(t, path, lineno, "item id") for t in tokens[1:]]
        if count != len(ids):
            raise _bad(path, lineno, f"count prefix says {count} items but {len(ids)} follow")
        if ids and min(ids) < 0:
            raise _bad(path, lineno, f"negative item id {min(ids)}")
        rows.extend([n_lines] * len(ids))
        cols.extend(ids)
        n_lines += 1
    if not cols:
        raise ValueError(f"{path}: no interactions found")
    cols_a, item_raw, note = _dense_ids(np.array(cols, dtype=np.int64), "item", path)
    offset = 1 if one_based_users else 0
    user_ids = np.arange(n_lines, dtype=np.int64) + offset
    inter = build_interactions(np.array(rows), cols_a, (n_lines, int(cols_a.max()) + 1), name=str(path),
                               user_ids=user_ids, item_ids=item_raw)
    if note:
        inter.notes.insert(0, note)
    return inter


def _from_tokens(path: PathLike, users: list[str], items: list[str], ratings: list[float] | None,
                 times: list[float] | None, threshold: float | None) -> Interactions:
    """Remap string tokens to contiguous ids (sorted token order) and keep rating >= threshold."""
    if not users:
        raise ValueError(f"{path}: no interactions found")
    user_ids, rows = np.unique(np.array(users), return_inverse=True)
    item_ids, cols = np.unique(np.array(items), return_inverse=True)
    keep = np.ones(len(users), dtype=bool)
    if threshold is not None:
        if ratings is None:
            raise ValueError(f"{path}: threshold={threshold} given but the file has no rating column")
        keep = np.array(ratings) >= threshold
    t = np.array(times)[keep] if times is not None else None
    return build_interactions(rows[keep], cols[keep], (user_ids.size, item_ids.size), name=str(path),
                              times=t, user_ids=user_ids, item_ids=item_ids)


def read_inter(path: PathLike, threshold: float | None = None) -> Interactions:
    """Read a RecBole atomic ``.inter`` file (tab separated, typed header).

    Header example: ``user_id:token  item_id:token  rating:float  timestamp:float``. User and
    item tokens are remapped to contiguous ids in sorted token order (``user_ids``/``item_ids``
    keep the tokens). With ``threshold``, only rows with ``rating >= threshold`` are positives;
    without it every row is. Users or items with no positive stay as empty rows/columns.
    """
    lines = _lines(path)
    if not lines:
        raise ValueError(f"{path}, line 1: empty file, expected a header")
    header = [h.split(":")[0] for h in lines[0].split("\t")]
    for col in ("user_id", "item_id"):
        if col not in header:
            raise _bad(path, 1, f"header has no {col!r} field (fields: {header})")
    ui, ii = header.index("user_id"), header.index("item_id")
    ri = header.index("rating") if "rating" in header else None
    ti = header.index("timestamp") if "timestamp" in header else None
    users, items = [], []
    ratings: list[float] | None = [] if ri is not None else None
    times: list[float] | None = [] if ti is not None else None
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != len(header):
            raise _bad(path, lineno, f"expected {len(header)} tab-separated fields, got {len(parts)}")
        users.append(parts[ui])
        items.append(parts[ii])
        if ratings is not None:
            ratings.append(_to_float(parts[ri], path, lineno, "rating"))
        if times is not None:
            times.append(_to_float(parts[ti], path, lineno, "timestamp"))
    return _from_tokens(path, users, items, ratings, times, threshold)


def read_csv(path: PathLike, user_col: str = "user", item_col: str = "item", rating_col: str | None = None,
             threshold: float | None = None, sep: str = ",", time_col: str | None = None) -> Interactions:
    """Read a delimited file with a header row; ids are tokens remapped as in :func:`read_inter`.

    ``rating_col`` with ``threshold`` keeps rows with ``rating >= threshold``; ``time_col`` (optional)
    keeps timestamps for :func:`~rankguard.recsys.splits.temporal_split`.
    """
    with io.StringIO(_read_text(path), newline="") as fh:
        reader = csv.reader(fh, delimiter=sep)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}, line 1: empty file, expected a header")
        wanted = {"user_col": user_col, "item_col": item_col, "rating_col": rating_col, "time_col": time_col}
        index = {}
        for arg, col in wanted.items():
            if col is None:
                continue
            if col not in header:
                raise _bad(path, 1, f"column {col!r} ({arg}) not in header {header}")
            index[arg] = header.index(col)
        users, items = [], []
        ratings: list[float] | None = [] if rating_col is not None else None
        times: list[float] | None = [] if time_col is not None else None
        for row in reader:
            lineno = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise _bad(path, lineno, f"expected {len(header)} fields, got {len(row)}")
            users.append(row[index["user_col"]].strip())
            items.append(row[index["item_col"]].strip())
            if ratings is not None:
                ratings.append(_to_float(row[index["rating_col"]], path, lineno, "rating"))
            if times is not None:
                times.append(_to_float(row[index["time_col"]], path, lineno, "timestamp"))
    return _from_tokens(path, users, items, ratings, times, threshold)


def read_dense_ratings(path: PathLike, threshold: float = 4.0) -> Interactions:
    """Read a dense rating matrix (one whitespace-separated row of numbers per user, 0 = unobserved).

    The Coat files (``train.ascii``, ``test.ascii``: 290 x 300 integers 1..5) have this layout.
    Entry ``(u, i)`` is a positive when ``r[u, i] != 0`` and ``r[u, i] >= threshold``; the shape is
    (number of rows, number of columns) of the file, every row must have the same length.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "r.ascii"; _ = f.write_text("0 5 3\\n4 0 1\\n")
    >>> read_dense_ratings(f).matrix.toarray().tolist()
    [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    """
    lines = [line for line in _read_text(path).splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{path}: no rating rows found")
    widths = np.fromiter(map(len, map(str.split, lines)), dtype=np.int64, count=len(lines))
    if (widths != widths[0]).any():
        bad = int(np.flatnonzero(widths != widths[0])[0])
        raise _bad(path, bad + 1, f"expected {widths[0]} ratings like line 1, got {widths[bad]}")
    try:
        ratings = np.array(" ".join(lines).split(), dtype=np.float64).reshape(len(lines), int(widths[0]))
    except ValueError:
        for lineno, line in enumerate(lines, start=1):  # error path only: find the offending line
            for token in line.split():
                _to_float(token, path, lineno, "rating")
        raise
    rows, cols = np.nonzero((ratings != 0) & (ratings >= threshold))
    inter = build_interactions(rows, cols, ratings.shape, name=str(path))
    inter.notes.append(f"kept {rows.size} of {int((ratings != 0).sum())} ratings with rating >= {threshold:g} "
                       f"as positives in {path}")
    return inter


COAT_RATIOS: tuple[int, int, int] = (7, 1, 2)


def load_coat(folder: PathLike, threshold: float = 4.0, seed: int = 1234,
              ratios: Sequence[float] = COAT_RATIOS) -> Split:
    """Coat (Schnabel et al., ICML'16) as a shifted :class:`Split`: self-selected train, random test.

    - ``train.ascii`` (ratings of items the users chose: MNAR) positives are split per user in a
      random order (``seed``) by ``ratios`` into ``train`` / ``val`` / ``iid_test`` (the
      in-distribution test set), with :func:`~rankguard.recsys.splits.ratio_split`'s core and
      unbiased (systematic) rounding: with ``n`` positives a user's expected part sizes are exactly
      ``n * r`` (floor rounding would leave the many users with < 10 positives no validation pair).
    - ``test`` = the ``test.ascii`` positives (ratings of 16 uniformly random items per user:
      MAR, the shifted test) minus any (user, item) pair already in train / val / iid_test
      (dropped; the number is in ``notes``).

    Positive = rating >= ``threshold`` (default 4, as in the AdvInfoNCE setting). ``ratios``
    default 7:1:2 (train : validation : in-distribution test; our choice: a validation share
    that still gives ~190 pairs, and an iid test about half the size of the shifted one).
    Shapes: every part is [290, 300].

    >>> # s = load_coat(dataset_path("coat")); s.train.shape, s.iid_test.nnz > 0 -> ((290, 300), True)
    """
    from rankguard.recsys.splits import shifted_split  # splits imports this module

    folder = Path(folder)
    mnar = read_dense_ratings(folder / "train.ascii", threshold)
    mar = read_dense_ratings(folder / "test.ascii", threshold)
    if mar.matrix.shape != mnar.matrix.shape:
        raise ValueError(f"{folder}: test.ascii has shape {mar.matrix.shape}, train.ascii {mnar.matrix.shape}")
    mnar.notes += mar.notes
    return shifted_split(mnar, mar.matrix, ratios=ratios, seed=seed,
                         shifted_what="test.ascii positives (uniformly random items, MAR)")


# --------------------------------------------------------------------------------------------
# filtering and loading


def _take_rows_cols(inter: Interactions, rows: np.ndarray | None, cols: np.ndarray | None) -> Interactions:
    m, ts = inter.matrix, inter.timestamps
    uid, iid = inter.user_ids, inter.item_ids
    if rows is not None:
        m = m[rows]
        ts = ts[rows] if ts is not None else None
        uid = (uid if uid is not None else np.arange(inter.n_users))[rows]
    if cols is not None:
        m = m[:, cols]
        ts = ts[:, cols] if ts is not None else None
        iid = (iid if iid is not None else np.arange(inter.n_items))[cols]
    m = sp.csr_matrix(m)
    m.sort_indices()
    if ts is not None:
        ts = sp.csr_matrix(ts)
        ts.sort_indices()
    return replace(inter, matrix=m, timestamps=ts, user_ids=uid, item_ids=iid)


def filter_min_interactions(inter: Interactions, min_user: int = 5, min_item: int = 0) -> Interactions:
    """Drop users with fewer than ``min_user`` and items with fewer than ``min_item`` positives.

    With both thresholds > 0 the two filters alternate until nothing changes (k-core). Row and
    column order is preserved; ``user_ids``/``item_ids`` record the surviving raw ids (row/column
    indices of the input when it had none). With
    ``min_item == 0`` columns are never touched (item ids stay column indices). Logs the counts
    and adds one sentence to ``notes`` for dropped users and one for dropped items (none when
    nothing was dropped); the input's ``notes`` are not modified.

    >>> import scipy.sparse as sp
    >>> m = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0]], dtype=np.float32))
    >>> filter_min_interactions(Interactions(m), min_user=2).matrix.shape
    (1, 3)
    """
    if min_user < 0 or min_item < 0:
        raise ValueError(f"`min_user` and `min_item` must be >= 0, got {min_user} and {min_item}")
    n_users0, n_items0 = inter.n_users, inter.n_items
    out = replace(inter,
                  user_ids=inter.user_ids if inter.user_ids is not None else np.arange(n_users0),
                  item_ids=inter.item_ids if inter.item_ids is not None else np.arange(n_items0),
                  notes=list(inter.notes))
    while True:
        changed = False
        user_counts = np.diff(out.matrix.indptr)
        if min_user > 0 and (user_counts < min_user).any():
            out = _take_rows_cols(out, np.flatnonzero(user_counts >= min_user), None)
            changed = True
        if min_item > 0:
            item_counts = np.bincount(out.matrix.indices, minlength=out.n_items)
            if (item_counts < min_item).any():
                out = _take_rows_cols(out, None, np.flatnonzero(item_counts >= min_item))
                changed = True
        if not changed or min_user == 0 or min_item == 0:
            break
    log.info("%s: kept %d of %d users (>= %d positives) and %d of %d items (>= %d positives)",
             inter.name or "interactions", out.n_users, n_users0, min_user, out.n_items, n_items0, min_item)
    for what, before, after, least in (("users", n_users0, out.n_users, min_user),
                                       ("items", n_items0, out.n_items, min_item)):
        if after < before:
            fewer = "no positives" if least == 1 else f"fewer than {least} positives"
            out.notes.append(f"dropped {before - after} of {before} {what} with {fewer}")
    if out.n_users == 0:
        raise ValueError(f"no user has >= {min_user} positives in {inter.name or 'the interactions'}")
    return out


def _coo_npz(path: Path) -> Interactions:
    with np.load(path, allow_pickle=False) as z:
        missing = {"row", "col", "shape"} - set(z.files)
        if missing:
            raise ValueError(f"{path}: not a scipy COO .npz, missing keys {sorted(missing)} (has {z.files})")
        shape = tuple(int(s) for s in z["shape"])
        rows, cols = z["row"].astype(np.int64), z["col"].astype(np.int64)
    return build_interactions(rows, cols, shape, name=str(path))


SPLIT_PARTS: tuple[str, ...] = ("train", "val", "test")
IID_TEST_FILE = "test_iid.npz"  # optional in-distribution test set of a fixed split -> Split.iid_test


def pair_overlaps(parts: Mapping[str, sp.spmatrix]) -> list[tuple[str, str, int]]:
    """``(a, b, n)`` for every pair of parts (in the mapping's order) that share ``n > 0`` (user, item) pairs.

    >>> eye = sp.eye(2, format="csr")
    >>> pair_overlaps({"train": eye, "val": sp.csr_matrix((2, 2)), "test": eye})
    [('train', 'test', 2)]
    """
    names = list(parts)
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = sp.csr_matrix(parts[a]).multiply(parts[b]).nnz
            if shared:
                out.append((a, b, int(shared)))
    return out


def _require_split_files(folder: Path) -> None:
    missing = [f"{p}.npz" for p in SPLIT_PARTS if not (folder / f"{p}.npz").exists()]
    if missing:
        present = [f for f in (*(f"{p}.npz" for p in SPLIT_PARTS), IID_TEST_FILE) if (folder / f).exists()]
        raise FileNotFoundError(
            f"fixed split in {folder}: {', '.join(missing)} is missing"
            + (f" (found {', '.join(present)})" if present else "")
            + "; a fixed split needs train.npz, val.npz and test.npz. Restore the missing file, or remove "
              "the others to have the folder's users.dat split afresh")


def load_fixed_split(folder: PathLike) -> Split:
    """Load ``train.npz``, ``val.npz``, ``test.npz`` (scipy COO: row, col, data, shape) as a Split.

    An optional ``test_iid.npz`` beside them becomes :attr:`Split.iid_test` (an in-distribution
    test set beside a shifted ``test``); without it ``iid_test`` is ``None``. Entries become
    ``float32`` ones; all parts must be disjoint. A missing train/val/test part raises
    ``FileNotFoundError`` naming it (never a fallback to a fresh random split).
    """
    folder = Path(folder)
    _require_split_files(folder)
    files = {part: f"{part}.npz" for part in SPLIT_PARTS}
    if (folder / IID_TEST_FILE).exists():
        files["iid_test"] = IID_TEST_FILE
    parts, notes = {}, []
    for part, fname in files.items():
        inter = _coo_npz(folder / fname)
        parts[part] = inter.matrix
        notes += inter.notes
    counts = " / ".join(str(m.nnz) for m in parts.values())
    what = " / ".join({"train": "train", "val": "validation", "test": "test",
                       "iid_test": "in-distribution test"}[p] for p in parts)
    notes.append(f"fixed split read from {folder}: {counts} {what} pairs")
    split = Split(parts["train"], parts["val"], parts["test"], name=str(folder), notes=notes,
                  iid_test=parts.get("iid_test"))
    for a, b, shared in pair_overlaps(parts):
        raise ValueError(f"fixed split in {folder}: {a} and {b} share {shared} pairs ({files[a]}, {files[b]})")
    return split


def recsys_datasets() -> tuple[str, ...]:
    """Registered datasets of kind ``interactions`` (what :func:`load_dataset` accepts by name)."""
    return tuple(n for n, info in DATASETS.items() if info.kind == "interactions")


RECSYS_DATASETS: tuple[str, ...] = recsys_datasets()  # at import; call recsys_datasets() for later additions


def _load_path(path: Path, threshold: float) -> Interactions | Split:
    if path.is_dir():
        if any((path / f).exists() for f in (*(f"{p}.npz" for p in SPLIT_PARTS), IID_TEST_FILE)):
            return load_fixed_split(path)  # refuses a partial split, naming the missing part
        for fname in ("users.dat", "u.data"):
            if (path / fname).exists():
                return _load_path(path / fname, threshold)
        raise ValueError(f"{path}: folder holds neither train/val/test.npz, users.dat nor u.data")
    if path.name == "users.dat" or path.suffix == ".dat":
        return read_users_dat(path)
    if path.name == "u.data" or path.suffix == ".data":
        return read_movielens(path, threshold)
    if path.suffix == ".inter":
        return read_inter(path, threshold)
    if path.suffix == ".csv":
        return read_csv(path)
    raise ValueError(f"{path}: unknown file type (expected users.dat, u.data, *.inter, *.csv or a folder)")


DEFAULT_SPLIT_SEED = 1234  # = TrainConfig.split_seed's default


def load_dataset(name_or_path: PathLike, threshold: float = 4.0,
                 min_interactions: int = 5, verify: bool = True,
                 split_seed: int | None = None) -> Interactions | Split:
    """Load interactions by registered name or by path, dropping users with < ``min_interactions``.

    Names: ``ml-100k`` (u.data, rating >= ``threshold``), ``ml-100k-libcml`` (the LibCML authors'
    fixed 3:1:1 split -> :class:`Split`, as they published it), ``ml-1m``, ``citeulike-a``,
    ``citeulike-t`` (``users.dat``; ``threshold`` does not apply: their files hold positives only);
    shifted splits (-> :class:`Split` with ``iid_test``): ``coat`` (:func:`load_coat`),
    ``ml-100k-popshift``, ``ml-1m-popshift``
    (:func:`~rankguard.recsys.splits.popularity_split` after the ``min_interactions`` filter).
    Paths: a ``users.dat``, a ``u.data``, a ``.inter`` or ``.csv`` file (``.csv`` needs columns
    ``user`` and ``item``; use :func:`read_csv` for others), or a folder laid out like
    ``ml-100k-libcml`` (train/val/test ``.npz``, optionally ``test_iid.npz``; -> :class:`Split`).
    Interactions (not Splits) are filtered with :func:`filter_min_interactions`
    (``min_user = max(1, min_interactions)``).

    ``split_seed`` seeds the datasets that split themselves (those whose registry ``options``
    list ``split_seed``: coat, ``*-popshift``); ``None`` means :data:`DEFAULT_SPLIT_SEED` (1234,
    as ``TrainConfig.split_seed``). It is ignored for fixed splits and for plain interactions,
    which the caller splits (e.g. ``ratio_split(data, seed=...)``).

    A registered name is loaded through the dataset registry (:func:`rankguard.data.load`), which
    first checks every file's sha256 (cached; ``verify=False`` skips it). ``notes`` on the result
    say what was merged, remapped and dropped.

    Raises ``KeyError`` listing the known names (and the data directory) for an unknown name,
    :class:`~rankguard.data.ChecksumMismatchError` for a file that differs from the registered one.
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    names = recsys_datasets()
    min_user = max(1, int(min_interactions))
    if text in DATASETS:
        info = DATASETS.get(text)
        if info.kind != "interactions":
            raise KeyError(f"dataset {text!r} is not interaction data ({info.kind}); recommendation datasets: "
                           f"{', '.join(names)}")
        options: dict[str, object] = {"threshold": threshold}
        if "split_seed" in info.options:
            options["split_seed"] = DEFAULT_SPLIT_SEED if split_seed is None else int(split_seed)
        if "min_interactions" in info.options:
            options["min_interactions"] = min_user
        data: Interactions | Split = load_registered(text, verify=verify, **options)
        data.name = text
    elif path.exists():
        data = _load_path(path, threshold)
    else:
        raise KeyError(f"unknown dataset {text!r}: not a file or folder, and not a recommendation dataset "
                       f"name ({', '.join(names)}, looked up under {describe_data_dir()})")
    if isinstance(data, Split):
        return data
    return filter_min_interactions(data, min_user=min_user, min_item=0)


def binary_union(mats: Sequence[sp.csr_matrix]) -> sp.csr_matrix:
    """Union of binary matrices of one shape as a ``float32`` csr matrix of ones (e.g. train + val).

    >>> binary_union([sp.eye(2, format='csr'), sp.eye(2, format='csr')]).nnz
    2
    """
    out = sp.csr_matrix(mats[0], dtype=np.float32, copy=True)
    for m in mats[1:]:
        out = out + m
    out.data[:] = 1.0
    out.sort_indices()
    return out
