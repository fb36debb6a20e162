"""The grouped retrieval fast path (packed sort, chunked CPU passes, tie re-ranking) against the
Python-loop reference, its torch (non-CPU) branches, chunk boundaries, and the per-metric selection
of metrics_from_positions (values identical to computing everything)."""

from __future__ import annotations

import pytest
import torch

from rankguard.metrics import retrieval, retrieval_map, retrieval_metrics, retrieval_mrr, retrieval_ndcg
from rankguard.metrics.topk import metrics_from_positions, relevant_positions
from test_metrics_retrieval import loop_reference, problem

NAMES = ("P@5", "R@5", "NDCG@5", "MAP", "MRR", "AUC")


def all_values(preds, target, indexes, action="skip"):
    out = retrieval_metrics(preds, target, indexes, ks=[5], empty_target_action=action)
    single = {"MAP": retrieval_map(preds, target, indexes, empty_target_action=action),
              "MRR": retrieval_mrr(preds, target, indexes, empty_target_action=action),
              "NDCG@5": retrieval_ndcg(preds, target, indexes, k=5, empty_target_action=action)}
    for name, v in single.items():
        assert v.item() == out[name].item(), name  # one metric alone = the same metric among all
    return {name: out[name].item() for name in NAMES}


@pytest.mark.parametrize("ties", [False, True])
def test_packed_path_matches_loop_reference(ties):
    for seed in range(3):
        preds, target, indexes = problem(seed, n_queries=40, ties=ties)
        got = all_values(preds, target, indexes)
        want = loop_reference(preds, target, indexes, 5)
        for name in NAMES:
            assert abs(got[name] - want[name.split("@")[0]]) < 1e-12, name


@pytest.mark.parametrize("ties", [False, True])
def test_torch_branches_and_chunk_boundaries_give_the_same_values(monkeypatch, ties):
    cases = [problem(seed, n_queries=40, ties=ties) for seed in range(3)]
    cases[0][0][:5] = -0.0  # -0.0 ties with +0.0
    cases[0][0][5:10] = 0.0
    want = [all_values(*c) for c in cases]
    monkeypatch.setattr(retrieval, "_CHUNK", 7)  # every chunk boundary inside a query or a tie
    assert [all_values(*c) for c in cases] == want
    monkeypatch.setattr(retrieval, "_numpy_path", lambda t: False)  # the CUDA branches, run on CPU
    assert [all_values(*c) for c in cases] == want


def test_member_lookup_table_equals_isin():
    indexes = torch.tensor([5, 9, 5, 40, 12, 9, 41, 5])
    ids = torch.tensor([9, 40])
    assert torch.equal(retrieval._members(indexes, ids, 5), torch.isin(indexes, ids))
    far = torch.tensor([5, 9, 10 ** 6])  # span > 8 bytes a document: torch.isin
    assert torch.equal(retrieval._members(far, torch.tensor([10 ** 6]), 5), torch.tensor([False, False, True]))


def test_metric_selection_equals_everything():
    g = torch.Generator().manual_seed(2)
    scores = torch.round(torch.randn(30, 50, generator=g) * 4) / 4  # ties
    rel = torch.rand(30, 50, generator=g) < 0.2
    rel[3] = False
    ru, ri = rel.nonzero(as_tuple=True)
    entries = relevant_positions(scores, ru, ri)
    everything = metrics_from_positions(entries, 30, ks=[3], full=True)
    for name in ("MAP", "MRR", "AUC"):
        alone = metrics_from_positions(entries, 30, full=(name,))
        assert set(alone) == {"n_relevant", "n_candidates", name}
        assert torch.equal(alone[name].nan_to_num(-1), everything[name].nan_to_num(-1)), name
    assert set(metrics_from_positions(entries, 30, ks=[3], full=False)) == {"n_relevant", "n_candidates", "P@3",
                                                                             "R@3", "NDCG@3"}
    with pytest.raises(ValueError, match="`full`"):
        metrics_from_positions(entries, 30, full=("MAPP",))
