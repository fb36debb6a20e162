"""Side features of users and items: ML-100K's ``u.item`` / ``u.user`` and a generic CSV/TSV reader.

Every reader returns :class:`SideFeatures`: a dense ``float32`` matrix ``[n_entities, n_features]``,
the raw id of every row (``ids``) and one name per column. Rows follow the file's id order;
:meth:`SideFeatures.align` reorders them to the rows of an interaction matrix (a missing id gets
an all-zero row and is counted).

ML-100K encodings (our choices; the DropoutNet paper used other data, so no source fixes them):

* items (``u.item``, latin-1): the 19 genre flags of ``u.genre`` as given, plus the release year
  one-hot in :data:`YEAR_BINS` (``<1950``, ``1950-69``, ``1970-79``, ``1980-89``, ``1990-94``,
  ``1995``, ``1996``, ``>=1997``) and a ``year_unknown`` flag for the one item without a date;
* users (``u.user``): age one-hot in :data:`AGE_BINS` (MovieLens-1M's groups: ``<18``, ``18-24``,
  ``25-34``, ``35-44``, ``45-49``, ``50-55``, ``56+``), gender (``gender_F``, ``gender_M``) and the
  occupation one-hot over the 21 names of ``u.occupation``; the zip code is not used.

>>> f = SideFeatures(np.eye(2, dtype=np.float32), np.array([10, 20]), ["a", "b"])
>>> f.align(np.array([20, 10, 30])).tolist()
[[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]]
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

#: release-year bin edges: bin k holds years in [edge[k-1], edge[k]); below the first edge is bin 0
YEAR_BINS = (1950, 1970, 1980, 1990, 1995, 1996, 1997)
#: age bin edges (MovieLens-1M's age groups: <18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+)
AGE_BINS = (18, 25, 35, 45, 50, 56)


@dataclass
class SideFeatures:
    """Dense side features: ``values [n, f]`` float32, raw ``ids [n]``, column ``names [f]``."""

    values: np.ndarray
    ids: np.ndarray
    names: list[str]
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float32)
        self.ids = np.asarray(self.ids)
        if self.values.ndim != 2 or self.values.shape[0] != self.ids.shape[0] or self.values.shape[1] != len(self.names):
            raise ValueError(f"`values` must be [len(ids) = {self.ids.shape[0]}, len(names) = {len(self.names)}], "
                             f"got {self.values.shape}")
        if np.unique(self.ids).size != self.ids.size:
            raise ValueError(f"{self.source or 'features'}: ids repeat; each entity needs one row")

    @property
    def n_features(self) -> int:
        return int(self.values.shape[1])

    def align(self, ids: Sequence) -> np.ndarray:
        """Rows for ``ids`` (raw ids, in that order) -> ``[len(ids), f]``; unknown ids get zeros.

        How many were unknown is appended to ``notes``.
        """
        ids = np.asarray(ids)
        lookup = {k: i for i, k in enumerate(self.ids.tolist())}
        pos = np.array([lookup.get(k, -1) for k in ids.tolist()], dtype=np.int64)
        out = np.zeros((ids.size, self.n_features), dtype=np.float32)
        known = pos >= 0
        out[known] = self.values[pos[known]]
        if not known.all():
            self.notes.append(f"{int((~known).sum())} of {ids.size} ids have no row in {self.source or 'the features'}: "
                              f"zero features")
        return out


def _one_hot(codes: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((codes.size, n), dtype=np.float32)
    out[np.arange(codes.size), codes] = 1.0
    return out


def _bin_names(edges: Sequence[int], unit: str) -> list[str]:
    names = [f"{unit}<{edges[0]}"]
    names += [f"{unit}{a}-{b - 1}" if b - a > 1 else f"{unit}{a}" for a, b in zip(edges[:-1], edges[1:])]
    return names + [f"{unit}>={edges[-1]}"]


def _lines(path: Path, encoding: str) -> list[str]:
    return [ln for ln in path.read_text(encoding=encoding).splitlines() if ln.strip()]


def read_ml100k_items(folder: str | os.PathLike) -> SideFeatures:
    """ML-100K item features from ``u.item`` and ``u.genre``: 19 genre flags + binned release year.

    ``u.item`` is latin-1 (titles with accents); only the id, date and genre fields are read.
    """
    folder = Path(folder)
    genres = [ln.split("|")[0] for ln in _lines(folder / "u.genre", "latin-1")]
    ids, years, flags = [], [], []
    for lineno, line in enumerate(_lines(folder / "u.item", "latin-1"), 1):
        parts = line.split("|")
        if len(parts) != 5 + len(genres):
            raise ValueError(f"{folder / 'u.item'} line {lineno}: expected {5 + len(genres)} '|' fields, got {len(parts)}")
        ids.append(int(parts[0]))
        date = parts[2].strip()
        years.append(int(date[-4:]) if len(date) >= 4 and date[-4:].isdigit() else -1)
        flags.append([float(x) for x in parts[5:]])
    years_a = np.array(years)
    year_bins = _one_hot(np.searchsorted(np.array(YEAR_BINS), np.maximum(years_a, 0), side="right"), len(YEAR_BINS) + 1)
    year_bins[years_a < 0] = 0.0
    values = np.hstack([np.array(flags, dtype=np.float32), year_bins, (years_a < 0)[:, None].astype(np.float32)])
    names = [f"genre_{g}" for g in genres] + _bin_names(YEAR_BINS, "year") + ["year_unknown"]
    return SideFeatures(values, np.array(ids), names, source=str(folder / "u.item"))


def read_ml100k_users(folder: str | os.PathLike) -> SideFeatures:
    """ML-100K user features from ``u.user`` and ``u.occupation``: age bins, gender, occupation one-hot."""
    folder = Path(folder)
    occupations = [ln.strip() for ln in _lines(folder / "u.occupation", "latin-1")]
    index = {o: k for k, o in enumerate(occupations)}
    ids, ages, genders, occ = [], [], [], []
    for lineno, line in enumerate(_lines(folder / "u.user", "latin-1"), 1):
        parts = line.split("|")
        if len(parts) != 5 or parts[2] not in ("M", "F") or parts[3] not in index:
            raise ValueError(f"{folder / 'u.user'} line {lineno}: expected 'id|age|M or F|occupation|zip' with an "
                             f"occupation of u.occupation, got {line!r}")
        ids.append(int(parts[0]))
        ages.append(int(parts[1]))
        genders.append(0 if parts[2] == "F" else 1)
        occ.append(index[parts[3]])
    age = _one_hot(np.searchsorted(np.array(AGE_BINS), np.array(ages), side="right"), len(AGE_BINS) + 1)
    values = np.hstack([age, _one_hot(np.array(genders), 2), _one_hot(np.array(occ), len(occupations))])
    names = _bin_names(AGE_BINS, "age") + ["gender_F", "gender_M"] + [f"occupation_{o}" for o in occupations]
    return SideFeatures(values, np.array(ids), names, source=str(folder / "u.user"))


def read_feature_table(path: str | os.PathLike, id_col: str = "id", delimiter: str | None = None,
                       columns: Sequence[str] | None = None) -> SideFeatures:
    """A CSV/TSV feature table with a header and an id column -> :class:`SideFeatures`.

    ``delimiter`` defaults to a tab for ``.tsv``/``.tab`` files and a comma otherwise. Every other
    column (or only ``columns``) becomes features: a column whose every value parses as a number
    is used as is (empty cells = 0), any other column is one-hot encoded over its sorted distinct
    values (``col=value``). Ids are kept as integers when all parse as integers, else as strings.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "items.csv"; _ = p.write_text("id,year,kind\\n1,1990,a\\n2,,b\\n")
    >>> f = read_feature_table(p); f.names, f.values.tolist()
    (['year', 'kind=a', 'kind=b'], [[1990.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    """
    path = Path(path)
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc})") from None
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{path}: empty file; expected a header with an {id_col!r} column")
    header = [h.strip() for h in rows[0]]
    if id_col not in header:
        raise ValueError(f"{path}: no id column {id_col!r} in the header {header}; pass id_col=")
    wanted = [h for h in header if h != id_col] if columns is None else list(columns)
    missing = [c for c in wanted if c not in header]
    if missing:
        raise ValueError(f"{path}: columns {missing} not in the header {header}")
    body = rows[1:]
    for lineno, r in enumerate(body, 2):
        if len(r) != len(header):
            raise ValueError(f"{path} line {lineno}: {len(r)} fields, the header has {len(header)}")
    raw_ids = [r[header.index(id_col)].strip() for r in body]
    ids = np.array([int(x) for x in raw_ids]) if all(x.lstrip("-").isdigit() for x in raw_ids) else np.array(raw_ids)
    blocks, names = [], []
    for col in wanted:
        cells = [r[header.index(col)].strip() for r in body]
        try:
            blocks.append(np.array([float(c) if c else 0.0 for c in cells], dtype=np.float32)[:, None])
            names.append(col)
        except ValueError:
            levels = sorted(set(cells))
            codes = np.array([levels.index(c) for c in cells])
            blocks.append(_one_hot(codes, len(levels)))
            names += [f"{col}={v}" for v in levels]
    values = np.hstack(blocks) if blocks else np.zeros((len(body), 0), dtype=np.float32)
    if not np.isfinite(values).all():
        raise ValueError(f"{path}: non-finite feature values")
    return SideFeatures(values, ids, names, source=str(path))
