"""Grouped retrieval metrics equal torchmetrics' on untied inputs (their ties differ: torchmetrics uses
an unstable argsort and tie-averaged NDCG; ours is score descending, then input position)."""

from __future__ import annotations

import pytest
import torch

from rankguard.metrics.retrieval import (retrieval_map, retrieval_mrr, retrieval_ndcg, retrieval_precision,
                                         retrieval_recall)

tm = pytest.importorskip("torchmetrics.functional.retrieval", reason="torchmetrics (the bench extra) not installed")


def _queries(seed: int, n_queries: int = 60, docs: int = 25):
    g = torch.Generator().manual_seed(seed)
    preds = torch.randperm(n_queries * docs, generator=g).double() / (n_queries * docs)   # no ties at all
    target = torch.rand(n_queries * docs, generator=g) < 0.2
    indexes = torch.arange(n_queries).repeat_interleave(docs)[torch.randperm(n_queries * docs, generator=g)]
    for q in range(n_queries):   # every query has a relevant document (torchmetrics' "neg" then agrees)
        rows = (indexes == q).nonzero().flatten()
        target[rows[0]] = True
    return preds, target, indexes


def _torchmetrics_mean(fn, preds, target, indexes, **kw):
    values = [fn(preds[indexes == q], target[indexes == q], **kw) for q in torch.unique(indexes)]
    return float(torch.stack(values).double().mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grouped_retrieval_equals_torchmetrics_on_untied_inputs(seed):
    preds, target, indexes = _queries(seed)
    cases = [(retrieval_ndcg, tm.retrieval_normalized_dcg, {"k": 10}, {"top_k": 10}),
             (retrieval_precision, tm.retrieval_precision, {"k": 5}, {"top_k": 5}),
             (retrieval_recall, tm.retrieval_recall, {"k": 5}, {"top_k": 5}),
             (retrieval_map, tm.retrieval_average_precision, {}, {}),
             (retrieval_mrr, tm.retrieval_reciprocal_rank, {}, {})]
    for ours, theirs, kw_ours, kw_theirs in cases:
        got = float(ours(preds, target, indexes, **kw_ours))
        want = _torchmetrics_mean(theirs, preds, target, indexes, **kw_theirs)
        assert got == pytest.approx(want, rel=1e-6, abs=1e-7), ours.__name__
