"""Grouped retrieval metrics: many queries in flat tensors, one segmented sort, no loop over queries.

Inputs (torchmetrics' convention): ``preds`` ``[n]`` finite scores, ``target`` ``[n]`` binary
relevance, ``indexes`` ``[n]`` integer query ids (any integers, in any order; the documents of a
query need not be contiguous). A score matrix ``preds`` ``[Q, D]`` with ``target`` ``[Q, D]`` and
``indexes=None`` is the same thing with query ``q`` = row ``q``.

**Definitions** are those of :mod:`rankguard.metrics.topk` — one implementation: the documents of a
query are ranked, the position of each relevant document found, and
:func:`rankguard.metrics.topk.metrics_from_positions` turns positions into P@k, R@k, NDCG@k (binary
gains), AP, RR and AUC per query; the result is their mean over queries.

**Tie rule (ours): score descending, then original position** (the index of the document in the
flat input — for a matrix, the column), the deterministic order of :mod:`rankguard.metrics.topk`;
AUC alone counts a tied (relevant, non-relevant) pair as 1/2. Others differ on ties only:
torchmetrics ranks with an unstable ``argsort`` (ties in no documented order) and its NDCG
averages the gains of a tie group; ir_measures (trec_eval) breaks ties by document id, descending.
Without ties all three agree.

**The sort.** One sort of a composite integer key ``(query, -score)``: for float32 scores the query
id and the 32-bit score key share one int64 (``query * 2**32 + key``), sorted stably (torch's radix
sort on CPU), so equal keys keep their input position; float64 scores take two stable sorts (score,
then query), the lexsort of the same key.

**Queries without a relevant document** (AUC: also without a non-relevant one) follow
``empty_target_action`` as in torchmetrics: ``"neg"`` scores them 0, ``"pos"`` 1, ``"skip"`` leaves
them out of the mean (0.0 when every query is skipped, as torchmetrics), ``"error"`` raises naming
the query. Relevance is binary; graded relevance is not supported.

>>> preds = torch.tensor([0.9, 0.1, 0.5, 0.8, 0.3, 0.7])
>>> target = torch.tensor([0, 1, 1, 1, 0, 0])
>>> indexes = torch.tensor([0, 0, 0, 1, 1, 1])
>>> retrieval_mrr(preds, target, indexes).item()   # query 0: first hit at 2; query 1: at 1
0.75
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

import numpy as np

from rankguard.metrics.core import array_of, as_binary_labels, as_scores, cumsum, sort_descending_stable, sortable_keys
from rankguard.metrics.topk import check_ks, metrics_from_positions

__all__ = ["EMPTY_TARGET_ACTIONS", "retrieval_metrics", "retrieval_precision", "retrieval_recall",
           "retrieval_ndcg", "retrieval_map", "retrieval_mrr", "retrieval_auc", "as_retrieval_inputs"]

EMPTY_TARGET_ACTIONS = ("neg", "pos", "skip", "error")


def as_retrieval_inputs(preds: Any, target: Any, indexes: Any = None
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate once: ``(preds [n] float32/64, target [n] bool, indexes [n] int64)`` on one device.

    A ``[Q, D]`` matrix ``preds`` without ``indexes`` is flattened, row ``q`` becoming query ``q``.
    """
    if indexes is None:
        p = preds if isinstance(preds, torch.Tensor) else torch.as_tensor(preds)
        if p.dim() != 2:
            raise ValueError(f"`indexes` is required unless `preds` is a [queries, documents] matrix; "
                             f"got `preds` of shape {tuple(p.shape)}")
        t = target if isinstance(target, torch.Tensor) else torch.as_tensor(target)
        if tuple(t.shape) != tuple(p.shape):
            raise ValueError(f"`target` must have the shape of `preds` {tuple(p.shape)}, got {tuple(t.shape)}")
        indexes = torch.arange(p.shape[0], device=p.device).repeat_interleave(p.shape[1])
        preds, target = p.reshape(-1), t.reshape(-1)
    s = as_scores(preds, "preds")
    y = as_binary_labels(target, "target", s.shape[0], s.device, length_of="preds")
    idx = indexes if isinstance(indexes, torch.Tensor) else torch.as_tensor(indexes)
    if idx.dtype.is_floating_point or idx.dtype.is_complex or idx.dtype == torch.bool:
        raise TypeError(f"`indexes` must be an integer tensor of query ids, got dtype {idx.dtype}")
    if idx.dim() != 1 or idx.shape[0] != s.shape[0]:
        raise ValueError(f"`indexes` must be 1-D with the length of `preds` ({s.shape[0]}), got shape "
                         f"{tuple(idx.shape)}")
    return s, y, idx.to(device=s.device, dtype=torch.int64)


def _segmented_order(preds: torch.Tensor, indexes: torch.Tensor) -> torch.Tensor:
    """The permutation sorting by (query id, score descending, input position)."""
    n = preds.shape[0]
    lo = indexes.min()
    query = indexes - lo
    span = int(query.max())
    if preds.dtype == torch.float32 and span < 2 ** 31:
        # one int64 key: query in the high 32 bits, the descending float key (made unsigned) below
        key = (sortable_keys(preds, descending=True).to(torch.int64) + 2 ** 31).add_(query << 32)
        return torch.sort(key, stable=True).indices
    if span >= 2 ** 62:
        query = torch.unique(indexes, return_inverse=True)[1]
    by_score = sort_descending_stable(preds)[1]
    by_query = torch.sort(query[by_score], stable=True).indices
    return by_score[by_query] if n else by_score


def _flatnonzero(x: Any) -> Any:
    return np.flatnonzero(x) if isinstance(x, np.ndarray) else torch.nonzero(x).flatten()


def _positions_packed(preds: torch.Tensor, target: torch.Tensor, indexes: torch.Tensor
                      ) -> tuple[dict[str, torch.Tensor], int, torch.Tensor]:
    """:func:`_positions` for float32 scores and query ids spanning < 2**30, without a permutation.

    One int64 per document, ``query * 2**33 + (descending score key) * 2 + relevant``, sorted by
    value only (numpy's SIMD sort on CPU). A relevant document that ties with no other document of
    its query then has position ``above + 1``; the few queries where a relevant document ties are
    ranked again by :func:`_positions_sorted` (input position breaks their ties).
    """
    n = preds.shape[0]
    device = preds.device
    lo = indexes.min()
    cpu = device.type == "cpu"
    keys = array_of(sortable_keys(preds, descending=True))
    packed = keys.astype(np.int64) if cpu else keys.to(torch.int64)
    packed += 2 ** 31
    packed <<= 1
    packed |= array_of(target)
    packed |= array_of(indexes - lo) << 33
    packed = np.sort(packed) if cpu else torch.sort(packed).values
    # keys are >= 0, so the xor of neighbours exceeds 1 (2**33 - 1) where the (query, score) pair (the query) changes
    changed = packed[1:] ^ packed[:-1]
    zero = changed[:1] * 0
    join = np.concatenate if cpu else torch.cat
    tie_starts = join([zero, _flatnonzero(changed > 1) + 1])
    q_starts = join([zero, _flatnonzero(changed >= 2 ** 33) + 1])
    rel = _flatnonzero(packed & 1)
    search = np.searchsorted if cpu else torch.searchsorted
    tie_of = search(tie_starts, rel, side="right") - 1
    query_of = search(q_starts, rel, side="right") - 1
    first = q_starts[query_of]
    above = tie_starts[tie_of] - first
    tie_stop = join([tie_starts[1:], zero + n])
    upto = tie_stop[tie_of] - first
    sizes = join([q_starts[1:], zero + n]) - q_starts
    query_ids = packed[q_starts] >> 33
    to_t = (lambda a: torch.from_numpy(np.ascontiguousarray(a))) if cpu else (lambda a: a)
    entries = {"user": to_t(query_of), "pos": to_t(above + 1), "above": to_t(above), "upto": to_t(upto),
               "n_candidates": to_t(sizes)}
    query_ids = to_t(query_ids) + lo
    tied = entries["upto"] - entries["above"] > 1
    if bool(tied.any()):  # rank the queries with a tied relevant document again, stably
        redo = torch.unique(entries["user"][tied])
        members = torch.isin(indexes, query_ids[redo])
        sub, _, _ = _positions_sorted(preds[members], target[members], indexes[members])
        keep = ~torch.isin(entries["user"], redo)
        sub["user"] = redo[sub["user"]]
        for name in ("user", "pos", "above", "upto"):
            entries[name] = torch.cat([entries[name][keep], sub[name]])
    return entries, q_starts.shape[0], query_ids


def _positions(preds: torch.Tensor, target: torch.Tensor, indexes: torch.Tensor
               ) -> tuple[dict[str, torch.Tensor], int, torch.Tensor]:
    """``(entries for metrics_from_positions, number of queries, query id of each query)``."""
    if preds.dtype == torch.float32 and int(indexes.max() - indexes.min()) < 2 ** 30:
        return _positions_packed(preds, target, indexes)
    return _positions_sorted(preds, target, indexes)


def _positions_sorted(preds: torch.Tensor, target: torch.Tensor, indexes: torch.Tensor
                      ) -> tuple[dict[str, torch.Tensor], int, torch.Tensor]:
    """:func:`_positions` through the permutation of :func:`_segmented_order` (any dtype and ids)."""
    n = preds.shape[0]
    device = preds.device
    order = _segmented_order(preds, indexes)
    q_sorted = indexes[order]
    key_sorted = sortable_keys(preds)[order]
    at = torch.arange(n, device=device)
    new_query = torch.ones(n, dtype=torch.bool, device=device)
    torch.ne(q_sorted[1:], q_sorted[:-1], out=new_query[1:])
    new_tie = new_query.clone()
    new_tie[1:] |= key_sorted[1:] != key_sorted[:-1]
    query = torch.cumsum(new_query, 0) - 1  # dense query number 0..Q-1, in id order
    starts = torch.nonzero(new_query).flatten()
    n_queries = starts.shape[0]
    sizes = torch.diff(starts, append=starts.new_full((1,), n))
    tie_start = torch.cummax(torch.where(new_tie, at, 0), 0).values
    tie_last = torch.ones(n, dtype=torch.bool, device=device)
    tie_last[:-1] = new_tie[1:]
    tie_end = torch.cummin(torch.where(tie_last, at, n).flip(0), 0).values.flip(0)
    rel = torch.nonzero(target[order]).flatten()
    first = starts[query[rel]]
    entries = {"user": query[rel], "pos": rel - first + 1, "above": tie_start[rel] - first,
               "upto": tie_end[rel] - first + 1, "n_candidates": sizes}
    return entries, n_queries, q_sorted[starts]


def _reduce(values: torch.Tensor, query_ids: torch.Tensor, empty_target_action: str, what: str) -> torch.Tensor:
    empty = torch.isnan(values)
    if not bool(empty.any()):
        return values.mean()
    if empty_target_action == "error":
        first = int(query_ids[torch.nonzero(empty)[0, 0]])
        raise ValueError(f"`target`: query {first} has no {what} ({int(empty.sum())} such queries); pass "
                         "empty_target_action='neg', 'pos' or 'skip' to score them 0, 1 or leave them out")
    if empty_target_action == "skip":
        kept = values[~empty]
        return kept.mean() if kept.numel() else values.new_zeros(())
    return torch.where(empty, 1.0 if empty_target_action == "pos" else 0.0, values).mean()


_UNDEFINED = {"AUC": "relevant or no non-relevant document"}


def retrieval_metrics(preds: Any, target: Any, indexes: Any = None, ks: Sequence[int] = (10,),
                      empty_target_action: str = "neg") -> dict[str, torch.Tensor]:
    """Every grouped metric from one segmented sort: ``P@k``, ``R@k``, ``NDCG@k`` for ``k`` in
    ``ks``, and ``MAP``, ``MRR``, ``AUC``; each a float64 0-d tensor (mean over queries, queries
    without a relevant document handled by ``empty_target_action``).

    Shapes: ``preds``, ``target``, ``indexes`` ``[n]`` (or ``[Q, D]`` matrices, ``indexes=None``).

    >>> out = retrieval_metrics(torch.tensor([0.2, 0.9, 0.4]), torch.tensor([1, 0, 1]),
    ...                         torch.tensor([5, 5, 5]), ks=[1])
    >>> round(out["MAP"].item(), 4), out["P@1"].item()   # hits at positions 2 and 3: (1/2 + 2/3) / 2
    (0.5833, 0.0)
    """
    if empty_target_action not in EMPTY_TARGET_ACTIONS:
        raise ValueError(f"`empty_target_action` must be one of {EMPTY_TARGET_ACTIONS}, got {empty_target_action!r}")
    ks = check_ks(ks)
    s, y, idx = as_retrieval_inputs(preds, target, indexes)
    if s.shape[0] == 0:
        raise ValueError("`preds` is empty: no query to average over")
    entries, n_queries, query_ids = _positions(s, y, idx)
    per_query = metrics_from_positions(entries, n_queries, ks=ks, full=True)
    return {name: _reduce(v, query_ids, empty_target_action, _UNDEFINED.get(name, "relevant document"))
            for name, v in per_query.items() if name not in ("n_relevant", "n_candidates")}


def _one(name: str, preds: Any, target: Any, indexes: Any, k: int | None, empty_target_action: str) -> torch.Tensor:
    if empty_target_action not in EMPTY_TARGET_ACTIONS:
        raise ValueError(f"`empty_target_action` must be one of {EMPTY_TARGET_ACTIONS}, got {empty_target_action!r}")
    s, y, idx = as_retrieval_inputs(preds, target, indexes)
    if s.shape[0] == 0:
        raise ValueError("`preds` is empty: no query to average over")
    entries, n_queries, query_ids = _positions(s, y, idx)
    ks = check_ks([k]) if k is not None else ()
    key = name if k is None else f"{name}@{k}"
    values = metrics_from_positions(entries, n_queries, ks=ks, full=k is None)[key]
    return _reduce(values, query_ids, empty_target_action, _UNDEFINED.get(name, "relevant document"))


def retrieval_precision(preds: Any, target: Any, indexes: Any = None, k: int = 10,
                        empty_target_action: str = "neg") -> torch.Tensor:
    """Mean over queries of ``hits@k / k`` (``k`` even for queries with fewer documents).

    >>> retrieval_precision(torch.tensor([[0.9, 0.1, 0.5]]), torch.tensor([[0, 1, 1]]), k=2).item()
    0.5
    """
    return _one("P", preds, target, indexes, k, empty_target_action)


def retrieval_recall(preds: Any, target: Any, indexes: Any = None, k: int = 10,
                     empty_target_action: str = "neg") -> torch.Tensor:
    """Mean over queries of ``hits@k / #relevant``.

    >>> retrieval_recall(torch.tensor([[0.9, 0.1, 0.5]]), torch.tensor([[0, 1, 1]]), k=2).item()
    0.5
    """
    return _one("R", preds, target, indexes, k, empty_target_action)


def retrieval_ndcg(preds: Any, target: Any, indexes: Any = None, k: int = 10,
                   empty_target_action: str = "neg") -> torch.Tensor:
    """Mean over queries of NDCG@k with binary gains and discount ``1/log2(p + 1)``.

    >>> round(retrieval_ndcg(torch.tensor([[0.9, 0.1, 0.5]]), torch.tensor([[0, 1, 1]]), k=2).item(), 4)
    0.3869
    """
    return _one("NDCG", preds, target, indexes, k, empty_target_action)


def retrieval_map(preds: Any, target: Any, indexes: Any = None, empty_target_action: str = "neg") -> torch.Tensor:
    """Mean over queries of average precision over the full ranking of the query's documents.

    >>> round(retrieval_map(torch.tensor([[0.9, 0.1, 0.5]]), torch.tensor([[0, 1, 1]])).item(), 4)
    0.5833
    """
    return _one("MAP", preds, target, indexes, None, empty_target_action)


def retrieval_mrr(preds: Any, target: Any, indexes: Any = None, empty_target_action: str = "neg") -> torch.Tensor:
    """Mean over queries of ``1 / position of the first relevant document``.

    >>> retrieval_mrr(torch.tensor([[0.9, 0.1, 0.5]]), torch.tensor([[0, 1, 1]])).item()
    0.5
    """
    return _one("MRR", preds, target, indexes, None, empty_target_action)


def retrieval_auc(preds: Any, target: Any, indexes: Any = None, empty_target_action: str = "neg") -> torch.Tensor:
    """Mean over queries of the per-query ROC AUC (a tied pair counts 1/2); queries without a relevant
    or without a non-relevant document follow ``empty_target_action``.

    >>> retrieval_auc(torch.tensor([[0.9, 0.1, 0.5]]), torch.tensor([[1, 0, 1]])).item()
    1.0
    """
    return _one("AUC", preds, target, indexes, None, empty_target_action)

