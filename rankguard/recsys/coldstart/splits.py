"""Cold-start splits: hold out a seeded share of items and/or users; split the rest as usual.

:func:`cold_split` draws ``round(fraction · n)`` of the entities that have at least one positive
(numpy ``Generator`` seeded with ``seed``), puts the first half (rounded up) into the
**cold-validation** group and the rest into the **cold-test** group, and removes *every*
interaction of a cold entity from the matrix the warm split is cut from (the 3:1:1 per-user
:func:`~rankguard.recsys.splits.ratio_split`, same seed). So no interaction of a cold entity
reaches the warm train / validation / test matrices, the base model, or DropoutNet's training
pairs (those are drawn from warm entities of ``train`` only; ``tests/test_coldstart.py`` checks
both).

Cold targets (:meth:`ColdSplit.targets`): for cold items, the interactions of *warm* users with
the group's items; for cold users, the group's interactions with *warm* items. Interactions
between a cold user and a cold item belong to neither and are dropped (counted in ``notes``).

>>> import numpy as np, scipy.sparse as sp
>>> from rankguard.recsys.data import Interactions
>>> m = sp.csr_matrix((np.random.default_rng(0).random((30, 40)) < 0.3).astype(np.float32))
>>> s = cold_split(Interactions(m), items=0.2, seed=0)
>>> len(s.cold_items["val"]), len(s.cold_items["test"]), s.train[:, s.cold_items["test"]].nnz
(4, 4, 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from rankguard.recsys.data import Interactions, Split
from rankguard.recsys.splits import ratio_split

KINDS = ("items", "users")
STAGES = ("val", "test")


def parse_cold_start(text: str) -> dict[str, float]:
    """``"items:0.2"``, ``"users:0.2"`` or ``"items:0.2,users:0.1"`` -> ``{"items": 0.2, ...}``.

    >>> parse_cold_start("items:0.2,users:0.1")
    {'items': 0.2, 'users': 0.1}
    """
    out: dict[str, float] = {}
    for part in str(text).split(","):
        kind, _, frac = part.strip().partition(":")
        try:
            value = float(frac)
        except ValueError:
            value = float("nan")
        if kind not in KINDS or not 0.0 < value < 1.0 or kind in out:
            raise ValueError(f"--cold-start must be KIND:FRACTION[,KIND:FRACTION] with KIND in {', '.join(KINDS)} "
                             f"and 0 < FRACTION < 1 (e.g. items:0.2), got {text!r}")
        out[kind] = value
    return out


def _empty(shape: tuple[int, int]) -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass
class ColdSplit(Split):
    """A warm :class:`Split` (``train``/``val``/``test``) plus held-out cold entities and side features.

    ``cold_items`` / ``cold_users``: ``{"val": ids, "test": ids}`` (column / row indices);
    ``positives``: every positive pair of the data (cold ones included) — the source of the cold
    targets and of the pairs kept out of the candidates; ``item_features`` ``[n_items, f_i]`` and
    ``user_features`` ``[n_users, f_u]`` float32 (``None`` when absent).
    """

    positives: sp.csr_matrix | None = None
    cold_items: dict[str, np.ndarray] = field(default_factory=lambda: {s: _empty((0, 0)) for s in STAGES})
    cold_users: dict[str, np.ndarray] = field(default_factory=lambda: {s: _empty((0, 0)) for s in STAGES})
    item_features: np.ndarray | None = None
    user_features: np.ndarray | None = None
    item_feature_names: list[str] = field(default_factory=list)
    user_feature_names: list[str] = field(default_factory=list)

    def cold_mask(self, kind: str) -> np.ndarray:
        """Bool mask over items (``kind="items"``) or users of every cold entity (both groups)."""
        n = self.n_items if kind == "items" else self.n_users
        groups = self.cold_items if kind == "items" else self.cold_users
        mask = np.zeros(n, dtype=bool)
        for ids in groups.values():
            mask[ids] = True
        return mask

    @property
    def kinds(self) -> tuple[str, ...]:
        """The cold kinds this split holds out (``"items"``, ``"users"``)."""
        return tuple(k for k in KINDS if self.cold_mask(k).any())

    def targets(self, kind: str, stage: str) -> sp.csr_matrix:
        """Relevant pairs of a cold group: ``[n_users, n_items]`` csr (see the module docstring)."""
        if kind not in KINDS or stage not in STAGES:
            raise ValueError(f"`kind` must be one of {KINDS} and `stage` one of {STAGES}, got {kind!r}, {stage!r}")
        pos = sp.csr_matrix(self.positives)
        if kind == "items":
            rows, cols = ~self.cold_mask("users"), np.zeros(self.n_items, dtype=bool)
            cols[self.cold_items[stage]] = True
        else:
            rows, cols = np.zeros(self.n_users, dtype=bool), ~self.cold_mask("items")
            rows[self.cold_users[stage]] = True
        out = sp.diags(rows.astype(np.float32)) @ pos @ sp.diags(cols.astype(np.float32))
        out = sp.csr_matrix(out, dtype=np.float32)
        out.eliminate_zeros()
        out.sort_indices()
        return out

    def warm_mask(self, kind: str) -> np.ndarray:
        """Bool mask of warm entities with at least one training positive (DropoutNet trains on these)."""
        train = sp.csr_matrix(self.train)
        counts = np.diff(train.indptr) if kind == "users" else np.bincount(train.indices, minlength=self.n_items)
        return (counts > 0) & ~self.cold_mask(kind)


def _draw(active: np.ndarray, fraction: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    pool = np.flatnonzero(active)
    n = int(round(fraction * pool.size))
    chosen = rng.permutation(pool)[:n]
    n_val = (n + 1) // 2
    return {"val": np.sort(chosen[:n_val]), "test": np.sort(chosen[n_val:])}


def cold_split(inter: Interactions, items: float = 0.0, users: float = 0.0, seed: int = 1234,
               item_features: np.ndarray | None = None, user_features: np.ndarray | None = None,
               item_feature_names: list[str] | None = None, user_feature_names: list[str] | None = None) -> ColdSplit:
    """Hold out ``items`` / ``users`` (fractions in [0, 1)) of the entities as cold; split the rest 3:1:1.

    Draws use one ``numpy.random.default_rng(seed)``: items first, then users.
    """
    for name, frac in (("items", items), ("users", users)):
        if not 0.0 <= float(frac) < 1.0:
            raise ValueError(f"`{name}` must be a fraction in [0, 1), got {frac!r}")
    m = sp.csr_matrix(inter.matrix, dtype=np.float32)
    rng = np.random.default_rng(seed)
    empty = {s: np.zeros(0, dtype=np.int64) for s in STAGES}
    cold_i = _draw(np.bincount(m.indices, minlength=m.shape[1]) > 0, items, rng) if items else dict(empty)
    cold_u = _draw(np.diff(m.indptr) > 0, users, rng) if users else dict(empty)
    keep_rows = np.ones(m.shape[0], dtype=bool)
    keep_cols = np.ones(m.shape[1], dtype=bool)
    for ids in cold_u.values():
        keep_rows[ids] = False
    for ids in cold_i.values():
        keep_cols[ids] = False
    warm = sp.csr_matrix(sp.diags(keep_rows.astype(np.float32)) @ m @ sp.diags(keep_cols.astype(np.float32)),
                         dtype=np.float32)
    warm.eliminate_zeros()
    warm.sort_indices()
    base = ratio_split(Interactions(warm, name=inter.name, notes=list(inter.notes)), seed=seed)
    both = int(m[~keep_rows][:, ~keep_cols].nnz)
    note = (f"cold start (seed {seed}): {len(cold_i['val'])} / {len(cold_i['test'])} cold-validation / cold-test "
            f"items, {len(cold_u['val'])} / {len(cold_u['test'])} users; their {m.nnz - warm.nnz} interactions "
            f"are out of the warm split")
    if both:
        note += f" ({both} between a cold user and a cold item are in no target)"
    return ColdSplit(base.train, base.val, base.test, name=inter.name, notes=[*base.notes, note], positives=m,
                     cold_items=cold_i, cold_users=cold_u, item_features=item_features, user_features=user_features,
                     item_feature_names=list(item_feature_names or []), user_feature_names=list(user_feature_names or []))


#: registered interaction datasets -> (item feature dataset, user feature dataset); raw id = index + 1
FEATURE_DATASETS = {"ml-100k": ("ml-100k-items", "ml-100k-users")}


def load_cold_split(dataset: str, cold_start: str | dict[str, float], seed: int = 1234) -> ColdSplit:
    """Load ``dataset``, its registered side features (:data:`FEATURE_DATASETS`), and cut a cold split.

    The interaction readers keep the file's id space (row k of ML-100K's ``u.data`` = user k + 1;
    ``user_ids`` give the surviving row indices after filtering), so features are aligned on
    ``index + 1``.
    """
    from rankguard.data import load as load_registered
    from rankguard.recsys.data import load_dataset

    fractions = parse_cold_start(cold_start) if isinstance(cold_start, str) else dict(cold_start)
    if dataset not in FEATURE_DATASETS:
        raise ValueError(f"--cold-start needs side features; registered for: {', '.join(FEATURE_DATASETS)} "
                         f"(got {dataset!r})")
    inter = load_dataset(dataset)
    if isinstance(inter, Split):
        raise ValueError(f"{dataset!r} comes with a fixed split; a cold split needs the raw interactions")
    item_name, user_name = FEATURE_DATASETS[dataset]
    items_f, users_f = load_registered(item_name), load_registered(user_name)
    rows = inter.user_ids if inter.user_ids is not None else np.arange(inter.n_users)
    cols = inter.item_ids if inter.item_ids is not None else np.arange(inter.n_items)
    return cold_split(inter, items=fractions.get("items", 0.0), users=fractions.get("users", 0.0), seed=seed,
                      item_features=items_f.align(np.asarray(cols) + 1), user_features=users_f.align(np.asarray(rows) + 1),
                      item_feature_names=items_f.names, user_feature_names=users_f.names)
