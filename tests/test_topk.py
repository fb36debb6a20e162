"""Per-user top-K / full-ranking metrics against loop references and ir_measures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rankguard.metrics.topk import (auc_per_user, map_score, mrr, ndcg_at_k, precision_at_k, ranking_metrics,
                                    recall_at_k)
from reference_topk import user_metrics

KS = (1, 3, 5, 20)


def _random_block(rng, n_users=12, n_items=30, levels=4, p_rel=0.2, p_excl=0.2):
    scores = rng.integers(0, levels, size=(n_users, n_items)).astype(np.float64)  # many ties
    relevant = rng.random((n_users, n_items)) < p_rel
    exclude = (rng.random((n_users, n_items)) < p_excl) & ~relevant
    relevant[0] = False  # a user with no positives
    relevant[1] = False
    relevant[1, 3] = True  # one positive
    exclude[2] = True
    exclude[2, :2] = False
    relevant[2, :2] = [True, False]  # one candidate negative
    exclude[3] = False
    relevant[3] = True  # no negatives
    return scores, relevant, exclude


def _reference(scores, relevant, exclude):
    rows = []
    for u in range(scores.shape[0]):
        rows.append(user_metrics(scores[u].tolist(), set(np.flatnonzero(relevant[u]).tolist()),
                                 set(np.flatnonzero(exclude[u]).tolist()), KS))
    return rows


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("levels", [3, 1000])
def test_ranking_metrics_match_loop_reference(seed, levels):
    rng = np.random.default_rng(seed)
    scores, relevant, exclude = _random_block(rng, levels=levels)
    ref = _reference(scores, relevant, exclude)
    for dtype in (torch.float64, torch.float32):
        out = ranking_metrics(torch.tensor(scores, dtype=dtype), torch.tensor(relevant), ks=KS,
                              exclude=torch.tensor(exclude))
        for name in [f"{m}@{k}" for m in ("P", "R", "NDCG") for k in KS] + ["MAP", "MRR", "AUC"]:
            got = out[name].numpy()
            want = np.array([math.nan if r is None else r[name] for r in ref])
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, equal_nan=True, err_msg=name)


def test_single_metric_functions_agree_and_keep_input_kind():
    rng = np.random.default_rng(7)
    scores, relevant, exclude = _random_block(rng)
    ref = _reference(scores, relevant, exclude)
    pairs = [(precision_at_k, "P@3", {"k": 3}), (recall_at_k, "R@5", {"k": 5}), (ndcg_at_k, "NDCG@20", {"k": 20}),
             (map_score, "MAP", {}), (mrr, "MRR", {}), (auc_per_user, "AUC", {})]
    for fn, name, kw in pairs:
        got_np = fn(scores, relevant, exclude=exclude, **kw)
        assert isinstance(got_np, np.ndarray)
        got_t = fn(torch.tensor(scores), torch.tensor(relevant), exclude=torch.tensor(exclude), **kw)
        assert isinstance(got_t, torch.Tensor)
        want = np.array([math.nan if r is None else r[name] for r in ref])
        np.testing.assert_allclose(got_np, want, rtol=1e-12, equal_nan=True, err_msg=name)
        np.testing.assert_allclose(got_t.numpy(), want, rtol=1e-12, equal_nan=True, err_msg=name)


def test_edge_cases_by_definition():
    # no relevant -> NaN everywhere; all relevant -> AUC NaN (no negative); k beyond the item count
    s = torch.tensor([[0.3, 0.2, 0.1], [0.3, 0.2, 0.1]])
    rel = torch.tensor([[False, False, False], [True, True, True]])
    out = ranking_metrics(s, rel, ks=[5])
    assert torch.isnan(out["P@5"][0]) and torch.isnan(out["AUC"][0]) and torch.isnan(out["MAP"][0])
    assert out["P@5"][1].item() == pytest.approx(3 / 5) and out["R@5"][1].item() == 1.0
    assert out["NDCG@5"][1].item() == pytest.approx(1.0) and out["MAP"][1].item() == 1.0
    assert torch.isnan(out["AUC"][1])
    # all scores tied: AUC is exactly 1/2, ranking falls back to item index
    s = torch.zeros(1, 6)
    rel = torch.tensor([[False, True, False, False, False, True]])
    out = ranking_metrics(s, rel, ks=[2])
    assert out["AUC"].item() == 0.5
    assert out["MRR"].item() == 0.5 and out["P@2"].item() == 0.5
    # an excluded relevant item is not counted at all
    out = ranking_metrics(torch.tensor([[3.0, 2.0, 1.0]]), torch.tensor([[1, 0, 1]]), ks=[1],
                          exclude=torch.tensor([[1, 0, 0]]))
    assert out["n_relevant"].item() == 1 and out["n_candidates"].item() == 2
    assert out["P@1"].item() == 0.0 and out["AUC"].item() == 0.0


def test_results_do_not_depend_on_block_partition():
    rng = np.random.default_rng(3)
    scores, relevant, exclude = _random_block(rng, n_users=20, levels=5)
    whole = ranking_metrics(torch.tensor(scores), torch.tensor(relevant), ks=KS, exclude=torch.tensor(exclude))
    parts = [ranking_metrics(torch.tensor(scores[a:b]), torch.tensor(relevant[a:b]), ks=KS,
                             exclude=torch.tensor(exclude[a:b])) for a, b in ((0, 7), (7, 8), (8, 20))]
    for name in ("P@3", "NDCG@20", "MAP", "MRR", "AUC"):
        joined = torch.cat([p[name] for p in parts])
        assert torch.equal(torch.isnan(joined), torch.isnan(whole[name]))
        assert torch.equal(joined.nan_to_num(-1.0), whole[name].nan_to_num(-1.0)), name


def test_bad_inputs_name_the_argument():
    s = torch.rand(2, 4)
    with pytest.raises(ValueError, match="`relevant`"):
        ranking_metrics(s, torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="`exclude`"):
        ranking_metrics(s, torch.zeros(2, 4, dtype=torch.bool), exclude=torch.zeros(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="`scores`"):
        ranking_metrics(torch.tensor([[0.0, math.nan]]), torch.tensor([[1, 0]]))
    with pytest.raises(ValueError, match="`relevant`"):
        ranking_metrics(s, torch.full((2, 4), 2))
    with pytest.raises(ValueError, match="`k`"):
        precision_at_k(s, torch.zeros(2, 4, dtype=torch.bool), 0)


def test_cross_check_with_ir_measures():
    ir_measures = pytest.importorskip("ir_measures")
    rng = np.random.default_rng(11)
    n_users, n_items = 8, 25
    scores = rng.permutation(n_users * n_items).reshape(n_users, n_items).astype(np.float64)  # no ties
    relevant = rng.random((n_users, n_items)) < 0.25
    relevant[:, 0] = True  # every user has a relevant item
    qrels = [ir_measures.Qrel(str(u), str(i), int(relevant[u, i])) for u in range(n_users) for i in range(n_items)]
    run = [ir_measures.ScoredDoc(str(u), str(i), float(scores[u, i])) for u in range(n_users) for i in range(n_items)]
    from ir_measures import AP, P, RR, R, nDCG
    measures = [P @ 3, P @ 10, R @ 3, R @ 10, nDCG @ 3, nDCG @ 10, AP, RR]
    per_query = {}
    for m in ir_measures.iter_calc(measures, qrels, run):
        per_query[(str(m.measure), m.query_id)] = m.value
    ours = ranking_metrics(torch.tensor(scores), torch.tensor(relevant), ks=[3, 10])
    names = {"P@3": "P@3", "P@10": "P@10", "R@3": "R@3", "R@10": "R@10", "nDCG@3": "NDCG@3",
             "nDCG@10": "NDCG@10", "AP": "MAP", "RR": "MRR"}
    for theirs, mine in names.items():
        want = np.array([per_query[(theirs, str(u))] for u in range(n_users)])
        np.testing.assert_allclose(ours[mine].numpy(), want, rtol=1e-9, err_msg=theirs)


def _metric_names(ks=KS):
    return [f"{m}@{k}" for m in ("P", "R", "NDCG") for k in ks] + ["MAP", "MRR", "AUC"]


def _assert_matches_reference(scores, relevant, exclude, dtype=torch.float64):
    ref = _reference(scores, relevant, exclude)
    out = ranking_metrics(torch.tensor(scores, dtype=dtype), torch.tensor(relevant), ks=KS,
                          exclude=torch.tensor(exclude))
    for name in _metric_names():
        want = np.array([math.nan if r is None else r[name] for r in ref])
        np.testing.assert_allclose(out[name].numpy(), want, rtol=1e-12, atol=0, equal_nan=True, err_msg=name)


def _awkward_scores(rng, shape):
    """Ties, signed zeros, subnormals and values near the float64 limits, mixed in one row."""
    pool = np.array([0.0, -0.0, 5e-324, -5e-324, 1e-310, 1e308, -1e308, 1.7e308, -1.7e308, 1.0,
                     1.0 + 2.0 ** -52, -1.0, 3.5, 3.5, 1e-300])
    scores = rng.choice(pool, size=shape)
    smooth = rng.random(shape) < 0.3
    scores[smooth] = rng.normal(size=int(smooth.sum())) * 10.0 ** rng.integers(-5, 5, size=int(smooth.sum()))
    return scores


@pytest.mark.parametrize("path", ["bins", "sort"])
@pytest.mark.parametrize("seed", range(4))
def test_each_ranking_path_matches_loop_reference(monkeypatch, path, seed):
    """The binning path (forced even when bins are crowded) and the sort fallback, separately."""
    from rankguard.metrics import topk

    bins = topk._positions_by_bins
    if path == "bins":
        monkeypatch.setattr(topk, "_positions_by_bins",
                            lambda *a: bins(*a, max_pairs=1 << 40))
    else:
        monkeypatch.setattr(topk, "_positions_by_bins", lambda *a: None)
    rng = np.random.default_rng(100 + seed)
    for levels in (2, 7, 10 ** 6):
        scores, relevant, exclude = _random_block(rng, n_users=15, n_items=40, levels=levels)
        scores = scores - levels / 2  # negative, zero and positive scores
        for dtype in (torch.float64, torch.float32):
            _assert_matches_reference(scores, relevant, exclude, dtype)
    scores, relevant, exclude = _random_block(rng, n_users=15, n_items=40)
    _assert_matches_reference(_awkward_scores(rng, scores.shape), relevant, exclude)
    relevant[:] = False  # one relevant item per user: the bins' width comes from a single score
    relevant[np.arange(15), rng.integers(0, 40, size=15)] = True
    _assert_matches_reference(_awkward_scores(rng, scores.shape), relevant, exclude & ~relevant)


def test_binning_path_is_taken_on_continuous_scores_and_agrees_with_sort(monkeypatch):
    """Distinct continuous scores (the common case) use the binning path; many rows span several
    row chunks. Positions, ``above`` and ``upto`` equal those of the sort path exactly."""
    from rankguard.metrics import topk

    rng = np.random.default_rng(5)
    n_users, n_items = 700, 3000  # > one row chunk
    scores = torch.tensor(rng.normal(size=(n_users, n_items)))
    scores[7, :50] = scores[7, 60]  # a tie group holding a relevant item
    relevant = torch.tensor(rng.random((n_users, n_items)) < 0.01)
    relevant[7, 60] = relevant[7, 10] = True
    exclude = torch.tensor(rng.random((n_users, n_items)) < 0.1) & ~relevant
    rel_user, rel_item = relevant.nonzero(as_tuple=True)
    excl_user, excl_item = exclude.nonzero(as_tuple=True)
    calls = []
    bins = topk._positions_by_bins

    def spy(*args):
        found = bins(*args)
        calls.append(found is not None)
        return found

    monkeypatch.setattr(topk, "_positions_by_bins", spy)
    fast = topk.relevant_positions(scores, rel_user, rel_item, excl_user, excl_item)
    assert len(calls) > 1 and all(calls)
    monkeypatch.setattr(topk, "_positions_by_bins", lambda *a: None)
    slow = topk.relevant_positions(scores, rel_user, rel_item, excl_user, excl_item)
    for key in ("pos", "above", "upto", "n_candidates"):
        assert torch.equal(fast[key], slow[key]), key
    # brute force for the tied user: position = 1 + #higher + #equal with a lower index
    cand = ~exclude[7]
    for item in (60, 10):
        s = scores[7, item]
        want = int(((scores[7] > s) & cand).sum() + ((scores[7] == s) & cand)[:item].sum()) + 1
        assert int(fast["pos"][(rel_user == 7) & (rel_item == item)]) == want
