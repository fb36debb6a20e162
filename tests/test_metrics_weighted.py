"""The torch fast path of the binary metrics: weighted AUC / AP against scikit-learn (float32 and
float64, numpy and torch, heavy ties), the one core's sort helpers, and dtype / device behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from rankguard.metrics import average_precision, partial_auc, qvalues, roc_auc
from rankguard.metrics.core import sort_descending_stable, sortable_keys

TOL = 1e-12


def weighted_problem(seed: int, decimals: int = 1):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 300))
    scores = np.round(rng.normal(size=n), decimals)
    labels = (rng.random(n) < rng.uniform(0.1, 0.9)).astype(np.int64)
    labels[0], labels[1] = 1, 0
    weights = rng.exponential(size=n) * (rng.random(n) < 0.9)  # some zero weights
    weights[0] = weights[1] = 1.0
    return scores, labels, weights


@pytest.mark.parametrize("kind", ["numpy64", "numpy32", "torch64", "torch32"])
@pytest.mark.parametrize("decimals", [0, 1, 3])
def test_weighted_auc_and_ap_match_sklearn(kind, decimals):
    for seed in range(25):
        scores, labels, weights = weighted_problem(seed, decimals)
        dtype = np.float32 if kind.endswith("32") else np.float64
        s = scores.astype(dtype)
        s_in, y_in, w_in = (torch.from_numpy(s), torch.from_numpy(labels), torch.from_numpy(weights)) \
            if kind.startswith("torch") else (s, labels, weights)
        s64 = s.astype(np.float64)
        assert abs(roc_auc(s_in, y_in, sample_weight=w_in)
                   - roc_auc_score(labels, s64, sample_weight=weights)) <= TOL
        assert abs(average_precision(s_in, y_in, sample_weight=w_in)
                   - average_precision_score(labels, s64, sample_weight=weights)) <= TOL


def test_unit_weights_equal_unweighted_and_integer_weights_equal_repeats():
    scores, labels, _ = weighted_problem(3, decimals=1)
    assert abs(roc_auc(scores, labels, sample_weight=np.ones(scores.size)) - roc_auc(scores, labels)) <= TOL
    reps = np.random.default_rng(0).integers(1, 4, scores.size)
    rep_s, rep_y = np.repeat(scores, reps), np.repeat(labels, reps)
    assert abs(roc_auc(scores, labels, sample_weight=reps) - roc_auc(rep_s, rep_y)) <= TOL
    assert abs(average_precision(scores, labels, sample_weight=reps) - average_precision(rep_s, rep_y)) <= TOL


@pytest.mark.parametrize("weights, match", [
    ([1.0, -1.0, 1.0, 1.0], "sample_weight"),
    ([1.0, np.nan, 1.0, 1.0], "sample_weight"),
    ([1.0, 1.0], "sample_weight"),
    ([0.0, 0.0, 1.0, 1.0], "negative sample"),
])
def test_bad_weights_are_named(weights, match):
    with pytest.raises(ValueError, match=match):
        roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], sample_weight=weights)


def test_large_tied_float32_tensors_match_sklearn():
    """Big enough for the radix paths; scores with only 50 distinct values (heavy ties)."""
    g = torch.Generator().manual_seed(0)
    n = 70_000
    y = torch.rand(n, generator=g) < 0.1
    s = (torch.randint(0, 50, (n,), generator=g) + 3 * y).to(torch.float32) - 20.0
    w = torch.rand(n, generator=g, dtype=torch.float64)
    yn, sn = y.numpy(), s.double().numpy()
    assert abs(roc_auc(s, y) - roc_auc_score(yn, sn)) <= TOL
    assert abs(average_precision(s, y) - average_precision_score(yn, sn)) <= TOL
    assert abs(roc_auc(s.double(), y, sample_weight=w) - roc_auc_score(yn, sn, sample_weight=w.numpy())) <= TOL
    assert abs(partial_auc(s, y, max_fpr=1.0) - roc_auc(s, y)) <= TOL
    assert partial_auc(s, y, max_fpr=0.2, min_tpr=0.3) == partial_auc(sn, yn, max_fpr=0.2, min_tpr=0.3)
    q = qvalues(s, ~y)
    assert isinstance(q, torch.Tensor) and q.dtype == torch.float64
    np.testing.assert_array_equal(q.numpy(), qvalues(sn, ~yn))


def test_sortable_keys_order_like_floats():
    x = torch.tensor([3.0, -0.0, 0.0, -1e-30, 1e-30, -np.inf, np.inf, -2.5, 7.0], dtype=torch.float64)
    for dtype in (torch.float32, torch.float64):
        v = x.to(dtype)
        k = sortable_keys(v)
        assert torch.equal(torch.argsort(k, stable=True), torch.argsort(v, stable=True))
        assert k[1] == k[2]  # -0.0 == +0.0
    v, order = sort_descending_stable(torch.tensor([1.0, 2.0, 1.0, 2.0]))
    assert order.tolist() == [1, 3, 0, 2] and v.tolist() == [2.0, 2.0, 1.0, 1.0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensors_give_the_cpu_values():
    scores, labels, weights = weighted_problem(5, decimals=1)
    for dtype in (torch.float32, torch.float64):
        s = torch.tensor(scores, dtype=dtype)
        y, w = torch.tensor(labels), torch.tensor(weights)
        for fn in (roc_auc, average_precision):
            assert fn(s.cuda(), y.cuda()) == fn(s, y)
            assert abs(fn(s.cuda(), y.cuda(), sample_weight=w.cuda()) - fn(s, y, sample_weight=w)) <= TOL
        assert partial_auc(s.cuda(), y.cuda(), 0.3, 0.2) == partial_auc(s, y, 0.3, 0.2)
        assert abs(partial_auc(s.cuda(), y.cuda(), 0.3, mode="roc") - partial_auc(s, y, 0.3, mode="roc")) <= TOL
        assert torch.equal(qvalues(s.cuda(), y.cuda()).cpu(), qvalues(s, y))
