"""Evaluator averages against a user-by-user loop reference, both protocols, several block sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from rankguard.recsys.data import Interactions, Split
from rankguard.recsys.evaluator import Evaluator
from rankguard.recsys.splits import ratio_split
from reference_topk import evaluate as reference_evaluate
from reference_topk import tail_items_by_popularity

KS = (1, 3, 5)


def _close(got, want):
    if math.isnan(want):
        return math.isnan(got)
    return got == pytest.approx(want, rel=1e-12)


def _split(seed, n_users=40, n_items=120):
    rng = np.random.default_rng(seed)
    density = rng.uniform(0.02, 0.5, size=(n_users, 1))
    density[2:5] = 0.95  # some users with >= 20 items in test
    dense = rng.random((n_users, n_items)) < density
    dense[0] = False  # a user without interactions
    dense[1, :] = False
    dense[1, 4] = True  # one interaction: lands in train only
    inter = Interactions(sp.csr_matrix(dense.astype(np.float32)))
    return ratio_split(inter, (3, 1, 1), seed=seed), rng


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("protocol", ["standard", "authors"])
@pytest.mark.parametrize("stage", ["test", "val"])
def test_evaluator_matches_loop_reference(seed, protocol, stage):
    split, rng = _split(seed)
    scores = rng.integers(0, 4, size=(split.n_users, split.n_items)).astype(np.float32)  # many ties
    ref = reference_evaluate(split, scores.astype(np.float64), stage, protocol, KS,
                             tail_items=tail_items_by_popularity(split.train, 0.8))
    results = []
    for block_size in (1, 7, 1000):
        ev = Evaluator(split, protocol=protocol, ks=KS, block_size=block_size, tail_fraction=0.8)
        calls = []

        def score_fn(user_ids):
            assert user_ids.dtype == torch.int64 and len(user_ids) <= block_size
            assert not torch.is_grad_enabled()
            calls.append(len(user_ids))
            return torch.from_numpy(scores[user_ids.numpy()])

        out = ev.evaluate(score_fn, stage)
        results.append(out)
        pairs = {f"{m}@{k}": f"{m}@{k}" for m in ("P", "R", "NDCG") for k in KS}
        pairs.update({"MAP": "MAP", "MRR": "MRR", "AUC": "AUC", "Recall@20": "R@20", "NDCG@20": "NDCG@20",
                      "tail_R@20": "tail_R@20", "tail_NDCG@20": "tail_NDCG@20"})
        for mine, theirs in pairs.items():
            assert _close(out[mine], ref.get(theirs, math.nan)), (mine, out[mine], ref.get(theirs))
        counts = ref["counts"]
        for k in KS + (20,):
            assert out[f"n_users@{k}"] == counts.get(f"P@{k}", 0)
        assert out["n_users_full"] == counts.get("MAP", 0)
        assert out["n_users_tail"] == counts.get("tail_R@20", 0)
        for key, value in out.items():
            if not key.startswith("n_users") and not math.isnan(value):
                assert 0.0 <= value <= 1.0, key
    assert out["n_users@20"] > 0 and out["n_users_tail"] > 0  # the data exercise every average
    # block size only changes summation order
    for key in results[0]:
        assert _close(results[1][key], results[0][key]) and _close(results[2][key], results[0][key]), key


def test_protocols_differ_as_specified():
    # user 0: train {0}, val {1}, test {2, 3, 4}; user 1: test {2} only. Scores put item 1 first.
    train = sp.csr_matrix(np.array([[1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=np.float32))
    val = sp.csr_matrix(np.array([[0, 1, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0]], dtype=np.float32))
    test = sp.csr_matrix(np.array([[0, 0, 1, 1, 1, 0], [0, 0, 1, 0, 0, 0]], dtype=np.float32))
    split = Split(train, val, test)
    scores = np.array([[9.0, 8.0, 7.0, 6.0, 5.0, 0.0]] * 2)
    std = Evaluator(split, "standard", ks=(1, 3)).evaluate_scores(scores, "test")
    auth = Evaluator(split, "authors", ks=(1, 3)).evaluate_scores(scores, "test")
    # standard: validation item removed, both users count everywhere
    assert std["P@1"] == 1.0 and std["MRR"] == 1.0 and std["AUC"] == 1.0 and std["n_users@3"] == 2
    assert std["P@3"] == pytest.approx((1.0 + 1 / 3) / 2)
    # authors: validation item stays as a negative; only user 0 (3 test items) enters @3 and MAP/MRR/AUC
    assert auth["n_users@1"] == 2 and auth["n_users@3"] == 1 and auth["n_users_full"] == 1
    assert auth["P@1"] == 0.0 and auth["P@3"] == pytest.approx(2 / 3) and auth["MRR"] == 0.5
    assert auth["AUC"] == pytest.approx(3 / 6)  # each test item beats item 5 only, loses to item 1
    assert auth["MAP"] == pytest.approx((1 / 2 + 2 / 3 + 3 / 4) / 3)


def test_evaluate_scores_and_input_errors():
    split, rng = _split(0)
    scores = torch.rand(split.n_users, split.n_items, generator=torch.Generator().manual_seed(0))
    ev = Evaluator(split, ks=(3,))
    direct = ev.evaluate(lambda u: scores[u], "test")
    assert ev.evaluate_scores(scores.numpy(), "test") == direct
    with pytest.raises(ValueError, match="shape"):
        ev.evaluate(lambda u: scores[u][:, :-1], "test")
    with pytest.raises(ValueError, match="non-finite"):
        ev.evaluate(lambda u: torch.full((len(u), split.n_items), math.nan), "test")
    with pytest.raises(ValueError, match="stage"):
        ev.evaluate(lambda u: scores[u], "train")
    with pytest.raises(ValueError, match="protocol"):
        Evaluator(split, protocol="paper")
    with pytest.raises(ValueError, match="disjoint"):
        Evaluator(Split(split.train, split.train, split.test))
    # half precision scores are accepted: the upcast to float32 is exact, so a bfloat16 run equals,
    # metric by metric and exactly, the float32 run of the same (bfloat16-rounded) values
    half = ev.evaluate(lambda u: scores[u].to(torch.bfloat16), "test")
    assert half == ev.evaluate(lambda u: scores[u].to(torch.bfloat16).to(torch.float32), "test")
    # against the unrounded float32 scores: rounding to nearest never reverses a pair, it can only
    # merge two scores closer than one bfloat16 step (<= 2^-8 on [0, 1)) into a tie worth 1/2; about
    # 2 * 2^-8 of the pairs are that close, so AUC moves by about 2^-8 at most (measured here: 2e-4)
    assert abs(half["AUC"] - direct["AUC"]) <= 2.0 ** -8


@pytest.mark.parametrize("protocol", ["standard", "authors"])
def test_evaluate_scores_row_slices_and_gathers_agree_with_score_fn(protocol):
    """Blocks of contiguous user ids are served as row slices, gapped ones by index_select; both
    equal evaluating a copying score_fn (users 0, 1 have no test items; a gap is made at 9)."""
    split, _ = _split(1)
    test = split.test.tolil()
    test[9, :] = 0
    split = Split(split.train, split.val, sp.csr_matrix(test))
    scores = torch.randn(split.n_users, split.n_items, generator=torch.Generator().manual_seed(1),
                         dtype=torch.float64)
    for block_size in (1, 5, 64):
        ev = Evaluator(split, protocol=protocol, ks=KS, block_size=block_size)
        want = ev.evaluate(lambda u: scores[u].clone(), "test")
        got = ev.evaluate_scores(scores, "test")
        assert got.keys() == want.keys()
        assert all(_close(got[k], want[k]) for k in want)
