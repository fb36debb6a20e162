"""Warm / cold-user / cold-item evaluation, and the two baselines that need no cold interaction.

Each cold group is ranked by the shared :class:`~rankguard.recsys.evaluator.Evaluator` (same
metrics, protocol and tie rule as warm runs) over a :class:`Split` whose ``test`` holds the
group's targets (:meth:`ColdSplit.targets`) and whose ``train`` holds the pairs kept out of the
candidates: every other known positive of the user (warm train / validation / test, the other
cold group), so a known positive never counts as a negative. ``candidates``:

* ``"all"`` (default, the realistic case): warm and cold items ranked together;
* ``"cold"``: cold-item groups are ranked among that group's items only. Cold users are always
  ranked over every item (with a users-only split there is no cold item).

Metric keys are :data:`~rankguard.recsys.recipes.METRIC_KEYS`, as fractions; objects are named
``cold_item`` and ``cold_user``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch

from rankguard.recsys.coldstart.splits import ColdSplit
from rankguard.recsys.data import Split
from rankguard.recsys.evaluator import Evaluator
from rankguard.recsys.recipes import METRIC_KEYS

CANDIDATES = ("all", "cold")
#: metrics.json object name of each cold kind
OBJECT = {"items": "cold_item", "users": "cold_user"}


def cold_evaluator(split: ColdSplit, kind: str, stage: str, protocol: str = "authors", candidates: str = "all",
                   block_size: int = 1024) -> Evaluator:
    """An :class:`Evaluator` whose ``test`` stage ranks the ``kind`` group of ``stage`` (module docstring)."""
    if candidates not in CANDIDATES:
        raise ValueError(f"--cold-candidates must be one of {', '.join(CANDIDATES)}, got {candidates!r}")
    target = split.targets(kind, stage)
    known = sp.csr_matrix(split.positives, dtype=np.float32)
    exclude = sp.csr_matrix(known - known.multiply(target), dtype=np.float32)
    if kind == "items" and candidates == "cold":
        outside = np.ones(split.n_items, dtype=np.float32)
        outside[split.cold_items[stage]] = 0.0
        rows = (np.diff(target.indptr) > 0).astype(np.float32)
        exclude = exclude + sp.csr_matrix(rows[:, None] * outside[None, :])
    exclude.data[:] = 1.0
    exclude.eliminate_zeros()
    empty = sp.csr_matrix(target.shape, dtype=np.float32)
    return Evaluator(Split(exclude, empty, target), protocol=protocol, block_size=block_size)


def evaluate_cold(split: ColdSplit, score_fn: Callable[[torch.Tensor], torch.Tensor], stage: str = "test",
                  protocol: str = "authors", candidates: str = "all") -> dict[str, dict[str, float]]:
    """``{"cold_item": {P@3: …}, "cold_user": {…}}`` for the kinds ``split`` holds out."""
    out = {}
    for kind in split.kinds:
        metrics = cold_evaluator(split, kind, stage, protocol, candidates).evaluate(score_fn, stage="test")
        out[OBJECT[kind]] = {k: float(metrics[k]) for k in METRIC_KEYS if k in metrics}
    return out


def feature_popularity_scores(split: ColdSplit) -> torch.Tensor:
    """The feature-popularity baseline, one score row for every user ``[n_users, n_items]``.

    Warm items: their training popularity (positives in ``train``). Cold items: the mean, over
    their genre flags (item features named ``genre_*``; all features if none is), of the mean
    training popularity of the warm items with that flag. Every user (cold users included) gets
    the same row: for cold users that is the global popularity ranking.
    """
    train = sp.csr_matrix(split.train)
    pop = np.bincount(train.indices, minlength=split.n_items).astype(np.float64)
    cold = split.cold_mask("items")
    scores = pop.copy()
    if cold.any() and split.item_features is not None:
        names = split.item_feature_names
        cols = [k for k, n in enumerate(names) if n.startswith("genre_")] or list(range(split.item_features.shape[1]))
        f = split.item_features[:, cols].astype(np.float64)
        warm = split.warm_mask("items")
        per_flag = (f[warm].T @ pop[warm]) / np.maximum(f[warm].sum(0), 1.0)
        n_flags = f[cold].sum(1)
        scores[cold] = np.where(n_flags > 0, (f[cold] @ per_flag) / np.maximum(n_flags, 1.0), pop[warm].mean())
    elif cold.any():
        scores[cold] = 0.0
    return torch.from_numpy(np.broadcast_to(scores, (split.n_users, split.n_items)).astype(np.float32).copy())
