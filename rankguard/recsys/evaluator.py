"""Full-ranking evaluation of a recommender: blocks of users x all items, one sort per block.

Two protocols (see ``/work/shared/REFERENCES.md`` §3 and §10):

``"standard"`` (RecBole-style)
    candidates = all items except the user's training items, and at test time also except the
    validation items; every user with >= 1 relevant item in the stage enters every average.
``"authors"`` (LibCML / DPCML)
    candidates = all items except the user's *training* items (at test time validation items stay
    and count as negatives; at validation time test items stay); P/R/NDCG@k average over users
    with >= k relevant items in the stage, MAP/MRR/AUC over users with >= 3.

Stages: ``"val"``, ``"test"`` and, for a split with an in-distribution test set beside a shifted
``test`` (:attr:`~rankguard.recsys.data.Split.iid_test`), ``"iid_test"``. The items excluded from
a user's candidates, per stage (``T``, ``V``, ``S``, ``I`` = the user's train, val, test, iid_test):

=========  ============  ===============  ===============
protocol   ``val``       ``test``         ``iid_test``
=========  ============  ===============  ===============
standard   T             T ∪ V ∪ I        T ∪ V ∪ S
authors    T             T                T
=========  ============  ===============  ===============

(``I`` is empty without ``iid_test``, so ``test`` is then exactly as above.) Under ``standard``
each test set is thus ranked among items outside every other split, as the AdvInfoNCE
evaluation masks "other splits' items" (REFERENCES §8).

Per-user definitions (one stable ranking by score desc, item index asc; AUC with average ranks
for ties) are those of :mod:`rankguard.metrics.topk`. Averages are plain means over users.

Example
-------
>>> import numpy as np, scipy.sparse as sp, torch
>>> from rankguard.recsys.data import Split
>>> eye = sp.eye(4, format="csr", dtype=np.float32)
>>> split = Split(train=eye, val=sp.csr_matrix((4, 4), dtype=np.float32), test=sp.csr_matrix(np.roll(np.eye(4), 1, 1)))
>>> ev = Evaluator(split, ks=(1,))
>>> out = ev.evaluate_scores(np.roll(np.eye(4), 1, 1) * 2.0, "test")
>>> out["P@1"], out["tail_P@1"], out["n_users_tail"]   # tail = items 1, 2, 3 (equal popularity: by index)
(1.0, 1.0, 3)
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from rankguard._validation import check_scores_tensor
from rankguard.metrics.topk import check_ks, metrics_from_positions, relevant_positions
from rankguard.progress import progress
from rankguard.recsys.data import Split, binary_union, pair_overlaps

ScoreFn = Callable[[torch.Tensor], torch.Tensor]

PROTOCOLS = ("standard", "authors")
STAGES = ("val", "test", "iid_test")
AUTHORS_MIN_FULL = 3  # LibCML/DPCML: MAP, MRR, AUC over users with >= 3 test items
ALIAS_K = 20


def _check_finite(scores: torch.Tensor) -> None:
    if not scores.is_floating_point():
        raise TypeError(f"`score_fn` must return floating-point scores, got dtype {scores.dtype}")
    x = scores.detach()
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    finite = np.isfinite(x.numpy()).all() if x.device.type == "cpu" else bool(torch.isfinite(x).all())
    if not finite:
        check_scores_tensor(scores, "score_fn(user_ids)", ndim=2)  # raises, saying where


def _entries(block: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) of the stored entries of a csr block, row-major, as int64 tensors."""
    block.sum_duplicates()
    rows = np.repeat(np.arange(block.shape[0], dtype=np.int64), np.diff(block.indptr))
    return torch.from_numpy(rows), torch.from_numpy(block.indices.astype(np.int64))


class Evaluator:
    """Evaluate ``score_fn`` on every user of a :class:`~rankguard.recsys.data.Split`.

    Parameters
    ----------
    split : Split
        train / val / test csr matrices [n_users, n_items].
    protocol : {"standard", "authors"}
        Candidate masking and which users enter which average (module docstring).
    ks : sequence of int
        Cut-offs for ``P@k``, ``R@k``, ``NDCG@k``; k = 20 is always computed too (aliases).
    block_size : int
        Users per ``score_fn`` call; results do not depend on it. Memory ~ ``block_size * n_items``
        x (score + 8-byte index + a few bytes).
    tail_fraction : float in (0, 1]
        Share of the catalogue that is the *tail*: the ``round(tail_fraction * n_items)`` least
        popular items by training count (ties in popularity broken by item index, lower index =
        more popular). The default 0.8 makes the tail every item outside the 20% most popular
        (the usual 80/20 head/tail split of long-tail evaluation; our choice of cut). Not RecBole's
        ``TailPercentage``, which is the share of *recommended* items that are tail items.

    Tail metrics (``tail_P@k``, ``tail_R@k``, ``tail_NDCG@k`` per k, and ``tail_R@20``,
    ``tail_NDCG@20``): the same per-user definitions with the relevant set restricted to the
    user's tail items in the stage; the ranking and the candidates are unchanged (head items stay
    candidates and count as non-relevant), so ``tail_P@k = |top-k ∩ tail relevant| / k`` and the
    ideal DCG runs over ``min(k, #tail relevant)`` positions. Users with no relevant tail item are
    left out of every tail average, in both protocols (no ``>= k`` rule: a user with one tail item
    counts); their number is ``n_users_tail``.

    Output of :meth:`evaluate` (values are fractions in [0, 1]; NaN if no user qualifies):
    ``P@k``, ``R@k``, ``NDCG@k`` per k, ``MAP``, ``MRR``, ``AUC``, aliases ``Recall@20`` and
    ``NDCG@20``, the tail metrics above; and user counts (ints): ``n_users@k`` (users in the @k
    averages), ``n_users_full`` (MAP/MRR/AUC; AUC also needs one negative candidate, its count is
    ``n_users_auc``), ``n_users_tail``.
    """

    def __init__(self, split: Split, protocol: str = "standard", ks: Sequence[int] = (3, 5, 10, 20),
                 block_size: int = 1024, tail_fraction: float = 0.8) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"`protocol` must be one of {PROTOCOLS}, got {protocol!r}")
        if not isinstance(block_size, (int, np.integer)) or block_size < 1:
            raise ValueError(f"`block_size` must be a positive integer, got {block_size!r}")
        if not 0.0 < float(tail_fraction) <= 1.0:
            raise ValueError(f"`tail_fraction` must be in (0, 1], got {tail_fraction!r}")
        self.split = split
        self.protocol = protocol
        self.ks = tuple(check_ks(ks))
        self.all_ks = tuple(sorted(set(self.ks) | {ALIAS_K}))
        self.block_size = int(block_size)
        self.tail_fraction = float(tail_fraction)
        self._train = sp.csr_matrix(split.train, dtype=np.float32)
        for a, b, shared in pair_overlaps(split.parts()):
            raise ValueError(f"`split`: {a} and {b} share {shared} (user, item) pairs; they must be disjoint")
        self._excluded: dict[str, sp.csr_matrix] = {}  # stage -> masked items, built on first use
        popularity = np.bincount(self._train.indices, minlength=split.n_items)
        by_popularity = np.lexsort((np.arange(split.n_items), -popularity))  # most popular first
        n_tail = int(round(self.tail_fraction * split.n_items))
        self.tail_items = np.zeros(split.n_items, dtype=bool)
        self.tail_items[by_popularity[split.n_items - n_tail:]] = True

    def _stage(self, stage: str) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """(relevant items, excluded items) of ``stage``; the table in the module docstring."""
        if stage not in STAGES:
            raise ValueError(f"`stage` must be one of {STAGES}, got {stage!r}")
        parts = self.split.parts()
        if stage not in parts:
            raise ValueError(f"`stage` 'iid_test' needs a split with an in-distribution test set; "
                             f"split {self.split.name or '(unnamed)'} has iid_test=None")
        if stage not in self._excluded:
            masked = ["train"]
            if self.protocol == "standard" and stage != "val":
                masked += [p for p in ("val", "test", "iid_test") if p in parts and p != stage]
            self._excluded[stage] = (self._train if masked == ["train"]
                                     else binary_union([parts[p] for p in masked]))
        return sp.csr_matrix(parts[stage]), self._excluded[stage]

    def evaluate(self, score_fn: ScoreFn, stage: str = "test") -> dict[str, float]:
        """Average metrics over the users of ``stage``: ``"val"``, ``"test"`` or ``"iid_test"`` (module docstring).

        ``score_fn(user_ids)`` gets a ``torch.LongTensor`` [B] of row indices (B <= ``block_size``;
        only users with >= 1 relevant item in the stage are asked) and must return a finite float
        tensor [B, n_items], higher = more relevant; it runs under ``torch.no_grad``. Metrics are
        computed on the device of the returned scores.
        """
        target, exclude = self._stage(stage)
        n_rel_all = np.diff(target.indptr)
        users = np.flatnonzero(n_rel_all > 0)
        tail = torch.from_numpy(self.tail_items)
        min_full = AUTHORS_MIN_FULL if self.protocol == "authors" else 1
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}

        def add(name: str, values: torch.Tensor, keep: torch.Tensor) -> None:
            keep = keep & ~torch.isnan(values)
            sums[name] = sums.get(name, 0.0) + float(values[keep].sum())
            counts[name] = counts.get(name, 0) + int(keep.sum())

        starts = range(0, users.size, self.block_size)
        with torch.no_grad():
            for start in progress(starts, desc=f"evaluate {stage}", total=len(starts)):
                block = users[start:start + self.block_size]
                scores = score_fn(torch.from_numpy(block).long())
                if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != (block.size, self.split.n_items):
                    got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
                    raise ValueError(f"`score_fn` must return a tensor of shape {(block.size, self.split.n_items)}, "
                                     f"got {got}")
                _check_finite(scores)
                device = scores.device
                rel_user, rel_item = _entries(target[block])
                excl_user, excl_item = _entries(exclude[block])
                entries = relevant_positions(scores.detach(), rel_user, rel_item, excl_user, excl_item)
                stats = metrics_from_positions(entries, block.size, ks=self.all_ks, full=True)
                n_rel = stats["n_relevant"]
                for k in self.all_ks:
                    keep = n_rel >= (k if self.protocol == "authors" else 1)
                    for m in ("P", "R", "NDCG"):
                        add(f"{m}@{k}", stats[f"{m}@{k}"], keep)
                keep_full = n_rel >= min_full
                for m in ("MAP", "MRR", "AUC"):
                    add(m, stats[m], keep_full)
                # tail metrics: same ranking, only tail items count as relevant
                tail_stats = metrics_from_positions(entries, block.size, ks=self.all_ks, full=False,
                                                    keep=tail.to(device)[entries["item"]])
                keep_tail = tail_stats["n_relevant"] >= 1
                for k in self.all_ks:
                    for m in ("P", "R", "NDCG"):
                        add(f"tail_{m}@{k}", tail_stats[f"{m}@{k}"], keep_tail)
        return self._summarise(sums, counts)

    def _summarise(self, sums: dict[str, float], counts: dict[str, int]) -> dict[str, float]:
        def mean(name: str) -> float:
            c = counts.get(name, 0)
            return sums[name] / c if c else math.nan

        out: dict[str, float] = {}
        for k in self.ks:
            for m in ("P", "R", "NDCG"):
                out[f"{m}@{k}"] = mean(f"{m}@{k}")
        for m in ("MAP", "MRR", "AUC"):
            out[m] = mean(m)
        out[f"Recall@{ALIAS_K}"] = mean(f"R@{ALIAS_K}")
        out[f"NDCG@{ALIAS_K}"] = mean(f"NDCG@{ALIAS_K}")
        for k in self.ks:
            for m in ("P", "R", "NDCG"):
                out[f"tail_{m}@{k}"] = mean(f"tail_{m}@{k}")
        out[f"tail_R@{ALIAS_K}"] = mean(f"tail_R@{ALIAS_K}")
        out[f"tail_NDCG@{ALIAS_K}"] = mean(f"tail_NDCG@{ALIAS_K}")
        for k in self.all_ks:
            out[f"n_users@{k}"] = counts.get(f"P@{k}", 0)
        out["n_users_full"] = counts.get("MAP", 0)
        out["n_users_auc"] = counts.get("AUC", 0)
        out["n_users_tail"] = counts.get(f"tail_R@{ALIAS_K}", 0)
        return out

    def evaluate_scores(self, scores: np.ndarray | torch.Tensor, stage: str = "test") -> dict[str, float]:
        """:meth:`evaluate` for a precomputed score matrix [n_users, n_items]."""
        table = scores if isinstance(scores, torch.Tensor) else torch.as_tensor(np.asarray(scores))
        if tuple(table.shape) != (self.split.n_users, self.split.n_items):
            raise ValueError(f"`scores` must have shape {(self.split.n_users, self.split.n_items)}, "
                             f"got {tuple(table.shape)}")

        def rows(user_ids: torch.Tensor) -> torch.Tensor:
            first, n = int(user_ids[0]), user_ids.numel()
            if int(user_ids[-1]) - first + 1 == n:  # ids are increasing: a contiguous range, no copy
                return table[first:first + n]
            return table.index_select(0, user_ids.to(table.device))

        return self.evaluate(rows, stage)
