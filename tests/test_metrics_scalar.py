"""Scalar ranking metrics: AUC, partial AUC, AP, target-decoy q-values.

Checked against scikit-learn (AUC, AP, one-way ROC area) and against the brute-force
definitions in tests/reference.py, on random data with heavy ties.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from rankguard.metrics import accepted_at, average_precision, partial_auc, qvalues, roc_auc
from reference import (
    average_precision_bruteforce,
    partial_auc_pairs_bruteforce,
    partial_auc_roc_bruteforce,
    qvalues_bruteforce,
    roc_auc_bruteforce,
)

TOL = 1e-12


def random_problem(seed: int, n_max: int = 80, decimals: int = 1):
    """Scores rounded to `decimals` (many ties) and {0,1} labels with both classes present."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, n_max))
    scores = np.round(rng.normal(size=n), decimals)
    labels = (rng.random(n) < rng.uniform(0.1, 0.9)).astype(np.int64)
    labels[0], labels[1] = 1, 0
    perm = rng.permutation(n)
    return scores[perm], labels[perm]


def as_kind(scores: np.ndarray, labels: np.ndarray, kind: str):
    """The same problem as numpy/torch, float32/float64, with varied label encodings."""
    if kind == "numpy64":
        return scores, labels
    if kind == "numpy32":
        return scores.astype(np.float32), labels.astype(bool)
    if kind == "torch64":
        return torch.tensor(scores, dtype=torch.float64), torch.tensor(2 * labels - 1)
    if kind == "torch32":
        return torch.tensor(scores, dtype=torch.float32), torch.tensor(labels, dtype=torch.float32)
    raise AssertionError(kind)


KINDS = ["numpy64", "numpy32", "torch64", "torch32"]


# --------------------------------------------------------------------------- AUC and AP parity


@pytest.mark.parametrize("kind", KINDS)
def test_auc_and_ap_match_sklearn_with_ties(kind):
    for seed in range(60):
        scores, labels = random_problem(seed)
        s, y = as_kind(scores, labels, kind)
        # sklearn sees exactly the values we see (float32 rounding included).
        s_np = np.asarray(s.numpy() if isinstance(s, torch.Tensor) else s, dtype=np.float64)
        assert abs(roc_auc(s, y) - roc_auc_score(labels, s_np)) <= TOL
        assert abs(average_precision(s, y) - average_precision_score(labels, s_np)) <= TOL


def test_auc_and_ap_match_bruteforce_with_ties():
    for seed in range(60):
        scores, labels = random_problem(1000 + seed, decimals=0)
        assert abs(roc_auc(scores, labels) - roc_auc_bruteforce(scores, labels)) <= TOL
        assert abs(average_precision(scores, labels) - average_precision_bruteforce(scores, labels)) <= TOL


def test_auc_ties_count_one_half():
    # One positive, one negative, equal scores: exactly half a correct pair.
    assert roc_auc([0.3, 0.3], [1, 0]) == 0.5
    # pairs (0.9 vs 0.5) = 1, (0.9 vs 0.1) = 1, (0.5 vs 0.5) = 1/2, (0.5 vs 0.1) = 1  -> 3.5 / 4
    assert roc_auc([0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0]) == 0.875


def test_ap_tie_group_is_one_threshold():
    # Sorted: 0.9 (neg), then tie group {0.5 pos, 0.5 neg}. The only threshold that reaches the
    # positive takes all three samples: precision 1/3, recall step 1 -> AP = 1/3. Breaking the
    # tie in the positive's favour would give 1/2.
    assert abs(average_precision([0.9, 0.5, 0.5], [0, 1, 0]) - 1 / 3) <= TOL
    # No ties: ranks of positives 1 and 3 -> (1/1 + 2/3) / 2.
    assert abs(average_precision([4.0, 3.0, 2.0, 1.0], [1, 0, 1, 0]) - 5 / 6) <= TOL


def test_auc_invariant_to_monotone_transform_and_permutation():
    scores, labels = random_problem(7)
    perm = np.random.default_rng(0).permutation(scores.size)
    base = roc_auc(scores, labels)
    assert roc_auc(np.exp(scores)[perm], labels[perm]) == pytest.approx(base, abs=TOL)
    assert roc_auc(-scores, labels) == pytest.approx(1 - base, abs=TOL)


# --------------------------------------------------------------------------- partial AUC

FRACTIONS = [0.05, 0.1, 0.29, 1 / 3, 0.5, 0.7, 1.0]


@settings(max_examples=150, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(-3, 3), st.booleans()), min_size=2, max_size=40),
    beta=st.sampled_from(FRACTIONS),
    alpha=st.sampled_from([None, 0.0, 0.1, 0.25, 0.5, 0.9]),
)
def test_partial_auc_pairs_matches_bruteforce(data, beta, alpha):
    scores = np.array([d[0] for d in data], dtype=np.float64)  # integer scores: heavy ties
    labels = np.array([d[1] for d in data], dtype=np.int64)
    labels[0], labels[1] = 1, 0
    got = partial_auc(scores, labels, max_fpr=beta, min_tpr=alpha)
    want = partial_auc_pairs_bruteforce(scores, labels, beta, alpha)
    assert abs(got - want) <= TOL


@settings(max_examples=150, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(-3, 3), st.booleans()), min_size=2, max_size=40),
    beta=st.floats(0.01, 1.0),
    alpha=st.one_of(st.none(), st.floats(0.0, 0.95)),
)
def test_partial_auc_roc_matches_bruteforce(data, beta, alpha):
    scores = np.array([d[0] for d in data], dtype=np.float64)
    labels = np.array([d[1] for d in data], dtype=np.int64)
    labels[0], labels[1] = 1, 0
    got = partial_auc(scores, labels, max_fpr=beta, min_tpr=alpha, mode="roc")
    want = partial_auc_roc_bruteforce(scores, labels, beta, alpha)
    assert abs(got - want) <= 1e-10


def test_partial_auc_roc_mode_equals_sklearn_one_way_with_ties():
    # sklearn's roc_auc_score(max_fpr=b) returns the McClish value 0.5*(1 + (A - b^2/2)/(b - b^2/2))
    # of the raw area A; invert it and normalise by b.
    for seed in range(40):
        scores, labels = random_problem(2000 + seed)
        for beta in (0.05, 0.2, 0.37, 0.5, 0.99):
            mcclish = roc_auc_score(labels, scores, max_fpr=beta)
            raw = beta**2 / 2 + (2 * mcclish - 1) * (beta - beta**2 / 2)
            got = partial_auc(scores, labels, max_fpr=beta, mode="roc")
            assert abs(got - raw / beta) <= 1e-12


def test_partial_auc_one_way_equals_roc_trapezoid_when_integer_and_untied():
    for seed in range(40):
        rng = np.random.default_rng(3000 + seed)
        n_pos, n_neg = int(rng.integers(1, 30)), 20
        scores = rng.normal(size=n_pos + n_neg)  # continuous: no ties
        labels = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
        fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
        for k in (1, 3, 10, 20):
            beta = k / n_neg
            keep = fpr <= beta + 1e-15
            area = np.trapezoid(tpr[keep], fpr[keep])
            assert abs(partial_auc(scores, labels, max_fpr=beta) - area / beta) <= 1e-12
            assert abs(partial_auc(scores, labels, max_fpr=beta, mode="roc") - area / beta) <= 1e-12


def test_partial_auc_two_way_modes_agree_when_integer_and_untied():
    rng = np.random.default_rng(5)
    scores = rng.normal(size=30)
    labels = np.r_[np.ones(10, int), np.zeros(20, int)]
    for alpha in (0.0, 0.3, 0.5, 0.9):
        for beta in (0.05, 0.25, 0.5, 1.0):
            pairs = partial_auc(scores, labels, max_fpr=beta, min_tpr=alpha)
            roc = partial_auc(scores, labels, max_fpr=beta, min_tpr=alpha, mode="roc")
            assert abs(pairs - roc) <= 1e-12


def test_partial_auc_full_range_is_auc_and_hand_example():
    scores, labels = random_problem(11)
    auc = roc_auc_score(labels, scores)
    for mode in ("pairs", "roc"):
        assert abs(partial_auc(scores, labels, max_fpr=1.0, mode=mode) - auc) <= TOL
        assert abs(partial_auc(scores, labels, 1.0, min_tpr=0.0, mode=mode) - auc) <= TOL
    # positives 0.9, 0.7, 0.2; negatives 0.8, 0.6, 0.7 (tie with a positive), 0.1.
    s = [0.9, 0.7, 0.2, 0.8, 0.6, 0.7, 0.1]
    y = [1, 1, 1, 0, 0, 0, 0]
    # beta = 0.5 -> k- = 2 negatives {0.8, 0.7}: 0.9 beats both (2), 0.7 ties 0.7 (1/2), 0.2 none
    # -> 2.5 / (3 * 2)
    assert abs(partial_auc(s, y, max_fpr=0.5) - 2.5 / 6) <= TOL
    # alpha = 0.5 -> k+ = floor(1.5) = 1 lowest positive {0.2}: beats nothing -> 0
    assert partial_auc(s, y, max_fpr=0.5, min_tpr=0.5) == 0.0
    # alpha = 0.3 -> k+ = floor(2.1) = 2 {0.2, 0.7}: 0.7 ties 0.7 -> 0.5 / (2 * 2)
    assert abs(partial_auc(s, y, max_fpr=0.5, min_tpr=0.3) - 0.5 / 4) <= TOL


def test_partial_auc_floor_is_robust_to_binary_roundoff():
    # 0.29 * 100 = 28.999999999999996 in binary; the count must be 29, not 28.
    # Negatives 100..1; one positive at 72.5 beats the negatives 72 and below.
    neg = np.arange(100, 0, -1, dtype=np.float64)
    scores = np.r_[72.5, neg]
    labels = np.r_[1, np.zeros(100, int)]
    # top 29 negatives are 100..72: the positive beats one (72) -> 1/29; with 28 it would be 0
    assert abs(partial_auc(scores, labels, max_fpr=0.29) - 1 / 29) <= TOL
    # The same for the positives: (1 - 0.34) * 100 = 65.99999999999999, the count must be 66.
    pos = np.arange(1, 101, dtype=np.float64)  # positives 1..100; one negative at 65.5
    s2, y2 = np.r_[pos, 65.5], np.r_[np.ones(100, int), 0]
    # lowest 66 positives 1..66: only 66 wins -> 1/66; with 65 kept it would be 0
    assert abs(partial_auc(s2, y2, max_fpr=1.0, min_tpr=0.34) - 1 / 66) <= TOL


def test_partial_auc_tiny_beta_keeps_one_negative():
    scores = np.array([0.5, 0.9, 0.1, 0.2])
    labels = np.array([1, 0, 0, 0])
    # floor(0.01 * 3) = 0 -> k- = 1: the single hardest negative 0.9 beats the positive.
    assert partial_auc(scores, labels, max_fpr=0.01) == 0.0


def test_partial_auc_accepts_torch():
    scores, labels = random_problem(21)
    want = partial_auc(scores, labels, max_fpr=0.3, min_tpr=0.2)
    got = partial_auc(torch.tensor(scores), torch.tensor(labels), max_fpr=0.3, min_tpr=0.2)
    assert got == want


METRICS_1D = {
    "roc_auc": roc_auc,
    "average_precision": average_precision,
    "partial_auc_pairs": lambda s, y: partial_auc(s, y, max_fpr=0.3, min_tpr=0.2),
    "partial_auc_roc": lambda s, y: partial_auc(s, y, max_fpr=0.3, min_tpr=0.2, mode="roc"),
}


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", sorted(METRICS_1D))
def test_half_precision_tensors_equal_their_float32_values(name, half):
    """bfloat16/float16 scores (and labels) give exactly the metric of the same values as float32:
    the upcast is exact, so no tie is made or broken. Scores with 3 decimals: bfloat16 rounding
    merges some of them, so the float32 copy is taken after the cast, not before."""
    metric = METRICS_1D[name]
    for seed in range(20):
        scores, labels = random_problem(seed, decimals=3)
        s_half = torch.tensor(scores).to(half)
        want = metric(s_half.to(torch.float32), labels)
        assert metric(s_half, labels) == want
        assert metric(s_half, torch.tensor(labels).to(half)) == want


# --------------------------------------------------------------------------- q-values


@pytest.mark.parametrize("encoding", ["bool", "01", "pm1", "torch"])
def test_qvalues_match_bruteforce_with_ties(encoding):
    for seed in range(30):
        rng = np.random.default_rng(4000 + seed)
        n = int(rng.integers(1, 60))
        scores = rng.integers(0, 8, n).astype(np.float64)
        target = rng.random(n) < 0.7
        enc = {
            "bool": target,
            "01": target.astype(int),
            "pm1": np.where(target, 1, -1),
            "torch": torch.tensor(target),
        }[encoding]
        q = qvalues(scores, enc)
        assert q.shape == (n,) and q.dtype == np.float64
        np.testing.assert_allclose(q, qvalues_bruteforce(scores, target), rtol=0, atol=TOL)
        for s in np.unique(scores):  # a tie group shares one q-value
            assert np.ptp(q[scores == s]) == 0.0


def test_qvalues_and_accepted_hand_example():
    # Descending:  score  10  9  8  8  7  6  5
    #              label   T  T  T  D  T  D  T
    # at threshold t:  T(t)  1  2  (8: 3)   4  4  5
    #                  D(t)  0  0  (8: 1)   1  2  2
    # FDR=(D+1)/T:         1  .5  2/3       .5 .75  .6
    # running min from the bottom: 10 -> .5, 9 -> .5, 8 -> .5, 7 -> .5, 6 -> .6, 5 -> .6
    scores = [8, 10, 5, 9, 8, 7, 6]
    target = [1, 1, 1, 1, 0, 1, 0]
    np.testing.assert_allclose(qvalues(scores, target), [0.5, 0.5, 0.6, 0.5, 0.5, 0.5, 0.6], atol=TOL)
    # targets with q <= 0.5: scores 10, 9, 8, 7 -> 4; q < 0.5: none; q <= 0.6: all 5 targets.
    assert accepted_at(scores, target, threshold=0.5) == 4
    assert accepted_at(scores, target, threshold=0.5, inclusive=False) == 0
    assert accepted_at(scores, target, threshold=0.6) == 5
    assert accepted_at(scores, target, threshold=0.6, inclusive=False) == 4


def test_qvalues_edge_cases():
    # No targets at all: FDR capped at 1 everywhere.
    np.testing.assert_array_equal(qvalues([3.0, 2.0], [0, 0]), [1.0, 1.0])
    # No decoys: (0 + 1) / T, best at the bottom: 1/3 for all.
    np.testing.assert_allclose(qvalues([3.0, 2.0, 1.0], [1, 1, 1]), [1 / 3] * 3, atol=TOL)
    # A decoy above every target: top FDR = (1+1)/0 -> capped at 1; running min still applies.
    np.testing.assert_allclose(qvalues([9.0, 1.0], [0, 1]), [1.0, 1.0], atol=TOL)
    assert qvalues([], []).shape == (0,)
    assert accepted_at([], []) == 0


# --------------------------------------------------------------------------- bad input


GOOD_S = np.array([0.1, 0.4, 0.35, 0.8])
GOOD_Y = np.array([0, 0, 1, 1])

BINARY_METRICS = [
    roc_auc,
    average_precision,
    lambda s, y: partial_auc(s, y, max_fpr=0.5),
    lambda s, y: partial_auc(s, y, max_fpr=0.5, min_tpr=0.2, mode="roc"),
]


@pytest.mark.parametrize("metric", BINARY_METRICS)
@pytest.mark.parametrize(
    "scores, labels, name",
    [
        ([0.1, np.nan, 0.3, 0.4], GOOD_Y, "scores"),
        ([0.1, np.inf, 0.3, 0.4], GOOD_Y, "scores"),
        (torch.tensor([0.1, -float("inf"), 0.3, 0.4]), GOOD_Y, "scores"),
        (GOOD_S, [0, 2, 1, 1], "labels"),
        (GOOD_S, [0, 0, 0, 0], "labels"),  # no positive
        (GOOD_S, [1, 1, 1, 1], "labels"),  # no negative
        (GOOD_S, [-1, -1, -1, -1], "labels"),  # no positive, PIN encoding
        (GOOD_S, [0, 1, 1], "labels"),  # length mismatch
        (np.ones((2, 2)), GOOD_Y, "scores"),  # not 1-D
        ([], [], "labels"),
    ],
)
def test_binary_metrics_reject_bad_input(metric, scores, labels, name):
    with pytest.raises(ValueError, match=name):
        metric(scores, labels)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(max_fpr=0.0), "max_fpr"),
        (dict(max_fpr=1.5), "max_fpr"),
        (dict(max_fpr=float("nan")), "max_fpr"),
        (dict(max_fpr=0.5, min_tpr=1.0), "min_tpr"),
        (dict(max_fpr=0.5, min_tpr=-0.1), "min_tpr"),
        (dict(max_fpr=0.5, mode="trapezoid"), "mode"),
    ],
)
def test_partial_auc_rejects_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        partial_auc(GOOD_S, GOOD_Y, **kwargs)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: qvalues([1.0, np.nan], [1, 0]), "scores"),
        (lambda: qvalues([1.0, 2.0], [1, 3]), "is_target"),
        (lambda: qvalues([1.0, 2.0], [1, 0, 1]), "is_target"),
        (lambda: accepted_at([1.0, 2.0], [1, 0], threshold=-0.01), "threshold"),
        (lambda: accepted_at([1.0, 2.0], [1, 0], threshold=float("nan")), "threshold"),
    ],
)
def test_fdr_rejects_bad_input(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_non_numeric_input_is_a_type_error_naming_the_argument():
    with pytest.raises(TypeError, match="scores"):
        roc_auc(["a", "b"], [0, 1])
    with pytest.raises(TypeError, match="max_fpr"):
        partial_auc(GOOD_S, GOOD_Y, max_fpr="high")
