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

from rankguard.metrics.core import as_binary_labels, as_scores, sort_descending_stable, sortable_keys
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


_CHUNK = 1 << 16  # elements per chunk of the CPU passes over the packed keys (small, reused buffers)
_SIGN_FREE = 0x7FFFFFFF


def _numpy_path(t: torch.Tensor) -> bool:
    """CPU tensors take the chunked numpy passes; others (CUDA) whole-tensor torch operations."""
    return t.device.type == "cpu"


def _pack_sorted(preds: torch.Tensor, target: torch.Tensor, indexes: torch.Tensor, lo: int) -> torch.Tensor:
    """``sort(query * 2**33 + (descending score key) * 2 + relevant)``, one int64 per document.

    ``query = indexes - lo`` lies in ``[0, 2**30)``; the descending key is the float32 bit pattern made an
    unsigned order key (``-0.0`` equal to ``+0.0``). On CPU the key is built chunk by chunk into the
    one int64 array with small reused buffers (no full-size temporaries), then sorted in place by
    value (numpy's SIMD sort); elsewhere with whole-tensor torch operations and ``torch.sort``.
    """
    if not _numpy_path(preds):
        packed = sortable_keys(preds, descending=True).to(torch.int64) + 2 ** 31
        packed <<= 1
        packed |= target.to(torch.int64)
        packed |= (indexes - lo) << 33
        return torch.sort(packed).values
    n = preds.shape[0]
    f, y, q = preds.numpy(), target.numpy(), indexes.numpy()
    packed = np.empty(n, dtype=np.int64)
    m = min(_CHUNK, n)
    fb, kb, qb = np.empty(m, np.float32), np.empty(m, np.int32), np.empty(m, np.int64)
    for s in range(0, n, m):
        e = min(s + m, n)
        c = e - s
        bits = np.add(f[s:e], np.float32(0.0), out=fb[:c]).view(np.int32)  # -0.0 -> +0.0
        key = np.right_shift(bits, 31, out=kb[:c])
        np.invert(key, out=key)
        np.bitwise_and(key, _SIGN_FREE, out=key)
        np.bitwise_xor(key, bits, out=key)  # = sortable_keys(descending=True) + 2**31, as uint32
        out = packed[s:e]
        np.left_shift(key.view(np.uint32), np.int64(1), out=out)
        np.bitwise_or(out, y[s:e], out=out)
        query = np.subtract(q[s:e], lo, out=qb[:c])
        np.bitwise_or(out, np.left_shift(query, 33, out=query), out=out)
    packed.sort()
    return torch.from_numpy(packed)


def _scan_packed(packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(relevant, query starts, tie ends)`` of sorted packed keys: the positions of the relevant
    documents, of the first document of each query, and each ``j`` where document ``j`` ties with
    document ``j - 1`` (same query and score: the keys differ in the relevance bit at most)."""
    n = packed.shape[0]
    if not _numpy_path(packed):
        changed = packed[1:] ^ packed[:-1]
        return (torch.nonzero(packed & 1).flatten(),
                torch.cat([changed.new_zeros(1), torch.nonzero(changed >= 2 ** 33).flatten() + 1]),
                torch.nonzero(changed <= 1).flatten() + 1)
    a = packed.numpy()
    m = min(_CHUNK, n)
    xb, flag = np.empty(m, np.int64), np.empty(m, np.bool_)
    rel, starts, ties = [], [np.zeros(1, np.int64)], []
    for s in range(0, n, m):
        e = min(s + m, n)
        c = e - s
        rel.append(np.flatnonzero(np.bitwise_and(a[s:e], 1, out=flag[:c], casting="unsafe")) + s)
        j = max(s, 1)  # pairs (j - 1, j), j in [max(s, 1), e)
        if j < e:
            x = np.bitwise_xor(a[j:e], a[j - 1:e - 1], out=xb[:e - j])
            starts.append(np.flatnonzero(np.greater_equal(x, 2 ** 33, out=flag[:e - j])) + j)
            ties.append(np.flatnonzero(np.less_equal(x, 1, out=flag[:e - j])) + j)
    return tuple(torch.from_numpy(np.concatenate(parts)) if parts else torch.zeros(0, dtype=torch.int64)
                 for parts in (rel, starts, ties))


def _members(indexes: torch.Tensor, ids: torch.Tensor, lo: int) -> torch.Tensor:
    """``torch.isin(indexes, ids)`` (``ids`` sorted, unique, ``>= lo``); on CPU, when the id span is
    at most 8 bytes a document, one chunked lookup in a table of the ids instead."""
    n = indexes.shape[0]
    span = int(ids[-1]) - lo + 1
    if not _numpy_path(indexes) or span > 8 * n:
        return torch.isin(indexes, ids)
    table = np.zeros(span + 1, dtype=np.bool_)  # offsets past the last id fall on table[span] (False)
    table[ids.numpy() - lo] = True
    q = indexes.numpy()
    out = np.empty(n, dtype=np.bool_)
    buf = np.empty(min(_CHUNK, n), dtype=np.int64)
    for s in range(0, n, _CHUNK):
        e = min(s + _CHUNK, n)
        offset = np.subtract(q[s:e], lo, out=buf[:e - s])
        np.take(table, np.minimum(offset, span, out=offset), out=out[s:e])
    return torch.from_numpy(out)


def _positions_packed(preds: torch.Tensor, target: torch.Tensor, indexes: torch.Tensor, lo: int
                      ) -> tuple[dict[str, torch.Tensor], int, torch.Tensor]:
    """:func:`_positions` for float32 scores and query ids spanning < 2**30, without a permutation.

    The documents sorted as packed keys (:func:`_pack_sorted`, values only) put each query's
    documents together, by score descending. A relevant document that ties with no other document of
    its query then sits at position ``index - query start + 1`` with ``above = position - 1`` and
    ``upto = position``: one pass over the sorted keys (:func:`_scan_packed`) and binary searches of
    the relevant documents, nothing per document beyond that. The few queries where a relevant
    document ties are ranked again by :func:`_positions_sorted` (input position breaks their ties)
    and their entries overwritten in place, so that the entries stay ordered by (query, position).
    """
    n = preds.shape[0]
    packed = _pack_sorted(preds, target, indexes, lo)
    rel, q_starts, tie_ends = _scan_packed(packed)
    query_of = torch.searchsorted(q_starts, rel, right=True) - 1
    pos = rel - q_starts[query_of] + 1
    entries = {"user": query_of, "pos": pos, "above": pos - 1, "upto": pos.clone(),
               "n_candidates": torch.diff(q_starts, append=q_starts.new_full((1,), n))}
    query_ids = (packed[q_starts] >> 33) + lo
    if tie_ends.numel():  # documents in a tie: rank the queries with a tied relevant document again, stably
        tied = torch.unique(torch.cat([tie_ends - 1, tie_ends]))
        tied = tied[(packed[tied] & 1).bool()]
        if tied.numel():
            redo = torch.unique(torch.searchsorted(q_starts, tied, right=True) - 1)
            members = _members(indexes, query_ids[redo], lo)
            sub, _, _ = _positions_sorted(preds[members], target[members], indexes[members])
            redone = torch.zeros(q_starts.shape[0], dtype=torch.bool, device=q_starts.device)
            redone[redo] = True
            # the same relevant documents, both ordered by query: overwrite their slots
            slots = torch.nonzero(redone[query_of]).flatten()
            for name in ("pos", "above", "upto"):
                entries[name][slots] = sub[name]
    return entries, q_starts.shape[0], query_ids


def _positions(preds: torch.Tensor, target: torch.Tensor, indexes: torch.Tensor
               ) -> tuple[dict[str, torch.Tensor], int, torch.Tensor]:
    """``(entries for metrics_from_positions, number of queries, query id of each query)``."""
    lo, hi = (int(v) for v in torch.aminmax(indexes))
    if preds.dtype == torch.float32 and hi - lo < 2 ** 30:
        return _positions_packed(preds, target, indexes, lo)
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
    values = metrics_from_positions(entries, n_queries, ks=ks, full=(name,) if k is None else False)[key]
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

