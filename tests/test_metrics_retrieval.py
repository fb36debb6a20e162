"""Grouped retrieval metrics and the class forms: a Python-loop reference and ir_measures on untied
inputs, the documented tie rule, streaming = one call, empty_target_action, bad input."""

from __future__ import annotations

import math

import ir_measures
import numpy as np
import pytest
import torch

from rankguard.metrics import (AUROC, AveragePrecision, PartialAUC, RetrievalAUC, RetrievalMAP, RetrievalMRR,
                               RetrievalNDCG, RetrievalPrecision, RetrievalRecall, average_precision,
                               partial_auc, retrieval_metrics, retrieval_ndcg, retrieval_precision, roc_auc)


def problem(seed: int, n_queries: int = 30, ties: bool = False, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, 25, (n_queries,), generator=g)
    ids = torch.randperm(1000, generator=g)[:n_queries] * 7 - 300  # arbitrary ids, negative too
    indexes = ids.repeat_interleave(sizes)
    n = indexes.numel()
    perm = torch.randperm(n, generator=g)  # documents of a query not contiguous
    indexes = indexes[perm]
    preds = (torch.randint(0, 4, (n,), generator=g).to(dtype) if ties
             else torch.randperm(n, generator=g).to(dtype) / n)
    target = torch.rand(n, generator=g) < 0.3
    return preds, target, indexes


def loop_reference(preds, target, indexes, k):
    """Per query with Python's sorted() on (-score, input position); mean over queries with a hit."""
    out = {m: [] for m in ("P", "R", "NDCG", "MAP", "MRR", "AUC")}
    for q in sorted(set(indexes.tolist())):
        docs = [i for i in range(len(indexes)) if indexes[i] == q]
        ranked = sorted(docs, key=lambda i: (-float(preds[i]), i))
        rel = [bool(target[i]) for i in ranked]
        n_rel = sum(rel)
        if n_rel == 0:
            continue
        hits = [p + 1 for p, r in enumerate(rel) if r]
        top = sum(rel[:k])
        out["P"].append(top / k)
        out["R"].append(top / n_rel)
        dcg = sum(1 / math.log2(p + 1) for p in hits if p <= k)
        out["NDCG"].append(dcg / sum(1 / math.log2(p + 1) for p in range(1, min(n_rel, k) + 1)))
        out["MAP"].append(sum((j + 1) / p for j, p in enumerate(hits)) / n_rel)
        out["MRR"].append(1 / hits[0])
        if n_rel < len(docs):
            out["AUC"].append(roc_auc(preds[docs], target[docs]))
    return {m: float(np.mean(v)) for m, v in out.items()}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("ties", [False, True])
def test_matches_python_loop_reference(dtype, ties):
    for seed in range(4):
        preds, target, indexes = problem(seed, ties=ties, dtype=dtype)
        got = retrieval_metrics(preds, target, indexes, ks=[5], empty_target_action="skip")
        want = loop_reference(preds, target, indexes, 5)
        for m in ("P", "R", "NDCG"):
            assert abs(got[f"{m}@5"].item() - want[m]) < 1e-12, m
        for m in ("MAP", "MRR", "AUC"):
            assert abs(got[m].item() - want[m]) < 1e-12, m


def test_matches_ir_measures_without_ties():
    preds, target, indexes = problem(11)
    qrels = [ir_measures.Qrel(str(q), str(d), 1) for d, (q, t) in enumerate(zip(indexes.tolist(), target.tolist())) if t]
    run = [ir_measures.ScoredDoc(str(q), str(d), float(s)) for d, (q, s) in enumerate(zip(indexes.tolist(), preds.tolist()))]
    measures = [ir_measures.nDCG @ 5, ir_measures.AP, ir_measures.RR, ir_measures.P @ 5, ir_measures.R @ 5]
    theirs = ir_measures.calc_aggregate(measures, qrels, run)
    ours = retrieval_metrics(preds, target, indexes, ks=[5], empty_target_action="skip")
    # only relevant documents are judged: ir_measures averages over the queries with one, like "skip"
    pairs = {"NDCG@5": ir_measures.nDCG @ 5, "MAP": ir_measures.AP, "MRR": ir_measures.RR,
             "P@5": ir_measures.P @ 5, "R@5": ir_measures.R @ 5}
    for name, measure in pairs.items():
        assert abs(ours[name].item() - theirs[measure]) < 1e-9, name


def test_tie_rule_is_score_then_position():
    # one query, docs 0 and 1 tie; doc 1 relevant -> position 2 (doc 0 comes first)
    preds, indexes = torch.tensor([0.5, 0.5, 0.1]), torch.zeros(3, dtype=torch.int64)
    assert retrieval_metrics(preds, torch.tensor([0, 1, 0]), indexes, ks=[1])["MRR"].item() == 0.5
    assert retrieval_metrics(preds, torch.tensor([1, 0, 0]), indexes, ks=[1])["MRR"].item() == 1.0
    # the score matrix form and the flat form agree
    s = torch.rand(6, 9, generator=torch.Generator().manual_seed(0))
    t = torch.rand(6, 9, generator=torch.Generator().manual_seed(1)) < 0.4
    flat = retrieval_ndcg(s.flatten(), t.flatten(), torch.arange(6).repeat_interleave(9), k=3)
    assert flat.item() == retrieval_ndcg(s, t, k=3).item()


def test_empty_target_action():
    preds = torch.tensor([0.9, 0.1, 0.5, 0.8])
    target = torch.tensor([1, 0, 0, 0])
    indexes = torch.tensor([0, 0, 7, 7])  # query 7 has no relevant document
    assert retrieval_precision(preds, target, indexes, k=1, empty_target_action="neg").item() == 0.5
    assert retrieval_precision(preds, target, indexes, k=1, empty_target_action="pos").item() == 1.0
    assert retrieval_precision(preds, target, indexes, k=1, empty_target_action="skip").item() == 1.0
    with pytest.raises(ValueError, match="query 7 has no relevant document"):
        retrieval_precision(preds, target, indexes, k=1, empty_target_action="error")
    with pytest.raises(ValueError, match="empty_target_action"):
        retrieval_precision(preds, target, indexes, empty_target_action="ignore")


@pytest.mark.parametrize("call, match", [
    (lambda: retrieval_ndcg(torch.tensor([0.1, float("nan")]), torch.tensor([1, 0]), torch.tensor([0, 0])), "`preds`"),
    (lambda: retrieval_ndcg(torch.tensor([0.1, 0.2]), torch.tensor([1, 0]), torch.tensor([0, 0, 1])), "`indexes`"),
    (lambda: retrieval_ndcg(torch.tensor([0.1, 0.2]), torch.tensor([1, 2]), torch.tensor([0, 0])), "`target`"),
    (lambda: retrieval_ndcg(torch.tensor([0.1, 0.2]), torch.tensor([1, 0]), torch.tensor([0.0, 1.0])), "`indexes`"),
    (lambda: retrieval_ndcg(torch.tensor([0.1, 0.2]), torch.tensor([1, 0]), torch.tensor([0, 0]), k=0), "`k`"),
    (lambda: RetrievalNDCG().update(torch.tensor([0.1]), torch.tensor([1])), "indexes"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


RETRIEVAL_CLASSES = [(RetrievalPrecision, "P@4"), (RetrievalRecall, "R@4"), (RetrievalNDCG, "NDCG@4"),
                     (RetrievalMAP, "MAP"), (RetrievalMRR, "MRR"), (RetrievalAUC, "AUC")]


@pytest.mark.parametrize("cls, name", RETRIEVAL_CLASSES)
def test_retrieval_streaming_equals_one_call(cls, name):
    preds, target, indexes = problem(3, ties=True)
    m = cls(4) if "@" in name else cls()
    for lo in range(0, preds.numel(), 17):
        m.update(preds[lo:lo + 17], target[lo:lo + 17], indexes[lo:lo + 17])
    want = retrieval_metrics(preds, target, indexes, ks=[4])[name].item()
    assert m.compute() == want
    clone = cls(4) if "@" in name else cls()
    clone.load_state_dict(m.state_dict())
    assert clone.compute() == want
    m.reset()
    with pytest.raises(ValueError, match="before any update"):
        m.compute()


@pytest.mark.parametrize("cls, fn", [(AUROC, roc_auc), (AveragePrecision, average_precision),
                                     (lambda: PartialAUC(max_fpr=0.3, min_tpr=0.1),
                                      lambda s, y: partial_auc(s, y, 0.3, 0.1))])
def test_binary_streaming_equals_one_call(cls, fn):
    preds, target, _ = problem(5, ties=True)
    m = cls()
    for lo in range(0, preds.numel(), 23):
        m.update(preds[lo:lo + 23], target[lo:lo + 23])
    assert m.compute() == fn(preds, target)
    bad = cls()
    with pytest.raises(ValueError, match="preds"):
        bad.update(torch.tensor([float("nan")]), torch.tensor([1]))
    assert bad.state_dict() == {}  # a rejected batch changes no state
