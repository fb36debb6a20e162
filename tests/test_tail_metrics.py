"""Tail metrics of the Evaluator (relevant set = the user's tail items) against a user-by-user loop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from rankguard.recsys.data import Interactions, Split
from rankguard.recsys.evaluator import Evaluator
from rankguard.recsys.splits import ratio_split
from reference_topk import tail_items_by_popularity, user_metrics

KS = (1, 3, 5)


def _split(seed, n_users=40, n_items=90):
    rng = np.random.default_rng(seed)
    density = rng.uniform(0.02, 0.5, size=(n_users, 1)) * (1.0 + np.arange(n_items)[None, ::-1] / n_items)
    dense = rng.random((n_users, n_items)) < np.clip(density, 0, 0.95)   # popularity falls with the index
    dense[2:4] = rng.random((2, n_items)) < 0.9
    dense[0] = False
    return ratio_split(Interactions(sp.csr_matrix(dense.astype(np.float32))), (3, 1, 1), seed=seed), rng


def _rows(csr):
    return [set(csr.indices[csr.indptr[u]:csr.indptr[u + 1]].tolist()) for u in range(csr.shape[0])]


def reference_tail(split, scores, stage, protocol, ks, tail):
    """Loop reference: per user with >= 1 tail item in the stage, the metrics with only those relevant."""
    train, val, test = _rows(split.train), _rows(split.val), _rows(split.test)
    target = test if stage == "test" else val
    sums, n = {}, 0
    for u in range(split.n_users):
        tail_rel = {i for i in target[u] if tail[i]}
        if not tail_rel:
            continue
        exclude = train[u] | val[u] if (protocol == "standard" and stage == "test") else train[u]
        m = user_metrics(scores[u].tolist(), tail_rel, exclude, sorted(set(ks) | {20}))
        n += 1
        for key, value in m.items():
            sums[key] = sums.get(key, 0.0) + value
    return {f"tail_{k}": v / n for k, v in sums.items()}, n


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("protocol", ["standard", "authors"])
@pytest.mark.parametrize("stage", ["test", "val"])
@pytest.mark.parametrize("tail_fraction", [0.8, 0.5, 1.0])
def test_tail_metrics_match_the_loop_reference(seed, protocol, stage, tail_fraction):
    split, rng = _split(seed)
    scores = rng.integers(0, 5, size=(split.n_users, split.n_items)).astype(np.float64)   # many ties
    tail = tail_items_by_popularity(split.train, tail_fraction)
    ref, n_ref = reference_tail(split, scores, stage, protocol, KS, tail)
    assert n_ref > 0
    for block_size in (1, 9, 1000):
        ev = Evaluator(split, protocol=protocol, ks=KS, block_size=block_size, tail_fraction=tail_fraction)
        np.testing.assert_array_equal(ev.tail_items, tail)
        out = ev.evaluate_scores(scores, stage)
        assert out["n_users_tail"] == n_ref
        for k in KS:
            for m in ("P", "R", "NDCG"):
                key = f"tail_{m}@{k}"
                assert out[key] == pytest.approx(ref[key], rel=1e-12, abs=1e-15), (key, block_size)
        for key in ("tail_R@20", "tail_NDCG@20"):
            assert out[key] == pytest.approx(ref[key], rel=1e-12, abs=1e-15), key


def test_a_relevant_head_item_is_a_miss_for_the_tail_only():
    # user 0: train {1}; test {0 (head), 4 (tail)}; user 1 makes item 0 popular. Ranking: 0, 4, ...
    train = sp.csr_matrix(np.array([[0, 1, 0, 0, 0], [1, 0, 0, 0, 0], [1, 1, 0, 0, 0]], dtype=np.float32))
    test = sp.csr_matrix(np.array([[1, 0, 0, 0, 1], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]], dtype=np.float32))
    split = Split(train=train, val=sp.csr_matrix((3, 5), dtype=np.float32), test=test)
    ev = Evaluator(split, ks=(1, 2), tail_fraction=0.6)     # head = 2 most popular = items 0, 1
    assert ev.tail_items.tolist() == [False, False, True, True, True]
    scores = np.array([[5.0, 0.0, 1.0, 2.0, 3.0], [0.0, 0.0, 4.0, 1.0, 2.0], [0.0] * 5])
    out = ev.evaluate_scores(scores, "test")
    # overall, user 0: P@1 = 1 (item 0), P@2 = 1; user 1: P@1 = 1 (item 2)
    assert out["P@1"] == 1.0 and out["P@2"] == 0.75
    # tail, user 0: relevant {4} only, item 0 (head) is ranked first -> P@1 = 0, P@2 = 1/2, R@2 = 1
    # tail, user 1: relevant {2} ranked first -> P@1 = 1, P@2 = 1/2, R@2 = 1; NDCG@1: 0 and 1
    assert (out["tail_P@1"], out["tail_P@2"], out["tail_R@1"], out["tail_R@2"]) == (0.5, 0.5, 0.5, 1.0)
    assert out["tail_NDCG@2"] == pytest.approx(((1 / math.log2(3)) + 1.0) / 2)
    assert out["n_users_tail"] == 2


def test_existing_keys_and_values_do_not_depend_on_the_tail():
    split, rng = _split(7)
    scores = torch.from_numpy(rng.normal(size=(split.n_users, split.n_items)))
    outs = [Evaluator(split, protocol="authors", tail_fraction=f).evaluate_scores(scores, "test") for f in (0.8, 0.3)]
    overall = [k for k in outs[0] if not k.startswith("tail_") and k != "n_users_tail"]
    assert {"P@3", "R@3", "NDCG@3", "MAP", "MRR", "AUC", "Recall@20", "NDCG@20", "n_users@3"} <= set(overall)
    for key in overall:
        assert outs[0][key] == outs[1][key] or (math.isnan(outs[0][key]) and math.isnan(outs[1][key])), key
    new = {f"tail_{m}@{k}" for m in ("P", "R", "NDCG") for k in (3, 5, 10, 20)}
    assert set(outs[0]) == set(overall) | new | {"n_users_tail"}
