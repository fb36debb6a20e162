"""Negative samplers: never a training positive, the right distribution, the right hard pick."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy import stats

from rankguard.samplers import SAMPLERS, HardSampler, TwoStageSampler, make_sampler


def random_train(n_users=30, n_items=40, density=0.3, seed=0):
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < density
    dense[0, :] = True
    dense[0, 7] = False          # user 0: a single negative item -> rejection fallback path
    dense[1, :] = False          # user 1: no positives at all
    return sp.csr_matrix(dense.astype(np.float64)), dense


def item_score_fn(table: torch.Tensor):
    def fn(users, items):
        return table[users[:, None], items]
    return fn


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_never_returns_training_positives(name):
    train, dense = random_train()
    rng = np.random.default_rng(1)
    table = torch.randn(*dense.shape, dtype=torch.float64)
    kwargs = {"smoothing": 1.0} if name in ("pops", "2sts") else {}
    if name == "2sts":  # the spread-out stage two has its own no-positives test in test_two_stage.py
        kwargs.update(n_candidates=30, n_negatives=5, stage_two="hardest")
    s = make_sampler(name, train, rng, **kwargs)
    users = np.repeat(np.arange(dense.shape[0]), 20)
    pos = np.zeros_like(users)
    neg = s.sample(users, pos, item_score_fn(table))
    assert neg.shape[0] == users.size and neg.dtype.kind == "i"
    assert not dense[users[:, None], neg].any()
    assert (neg[users == 0] == 7).all()  # the only negative user 0 has


def test_popularity_frequencies_match_restricted_popularity():
    train, dense = random_train(n_users=5, n_items=12, density=0.4, seed=3)
    s = make_sampler("pops", train, np.random.default_rng(2), smoothing=0.5)
    u = 2
    draws = s.draw(np.full(40000, u), 1)[:, 0]
    deg = dense.sum(axis=0) + 0.5                  # brute force: popularity, zero on u's positives
    expected = np.where(dense[u], 0.0, deg)
    expected /= expected.sum()
    counts = np.bincount(draws, minlength=12)
    keep = expected > 0
    assert counts[~keep].sum() == 0
    chi2 = stats.chisquare(counts[keep], expected[keep] * counts.sum())
    assert chi2.pvalue > 1e-3
    np.testing.assert_allclose(s.negative_distribution(np.array([u]))[0], expected, rtol=1e-12)


def test_uniform_frequencies_and_fallback_are_exact_distribution():
    train, dense = random_train(n_users=4, n_items=10, density=0.5, seed=5)
    s = make_sampler("unis", train, np.random.default_rng(4))
    u = 3
    counts = np.bincount(s.draw(np.full(30000, u), 1)[:, 0], minlength=10)
    neg = ~dense[u]
    assert counts[~neg].sum() == 0
    assert stats.chisquare(counts[neg]).pvalue > 1e-3


def test_hard_sampler_picks_the_closest_candidate():
    train, dense = random_train(seed=7)
    table = torch.randn(*dense.shape, dtype=torch.float64)
    users = np.arange(2, 30).repeat(3)
    a = HardSampler(train, np.random.default_rng(9), n_candidates=10)
    b = HardSampler(train, np.random.default_rng(9), n_candidates=10)
    cand = b.draw(users, 10)                         # same random stream -> same candidates
    picked = a.sample(users, np.zeros_like(users), item_score_fn(table))[:, 0]
    cand_scores = table[torch.from_numpy(users)[:, None], torch.from_numpy(cand)].numpy()
    best = cand[np.arange(users.size), cand_scores.argmax(axis=1)]   # largest score = smallest distance
    np.testing.assert_array_equal(picked, best)


def test_two_stage_keeps_the_top_scored_candidates():
    train, dense = random_train(seed=8)
    table = torch.randn(*dense.shape, dtype=torch.float64)
    users = np.arange(2, 30)
    kw = dict(n_candidates=25, n_negatives=4, smoothing=1.0, stage_two="hardest")
    a = TwoStageSampler(train, np.random.default_rng(3), **kw)
    cand = TwoStageSampler(train, np.random.default_rng(3), **kw).draw(users, 25)
    picked = a.sample(users, np.zeros_like(users), item_score_fn(table))
    for row in range(users.size):    # brute force per row (test only)
        sc = table[users[row], cand[row]].numpy()
        np.testing.assert_array_equal(np.sort(table[users[row], picked[row]].numpy()), np.sort(sc)[-4:])


def test_bad_inputs_name_the_problem():
    with pytest.raises(KeyError, match="known: 2sts, dihars, hars, pops, unis"):
        make_sampler("nope", sp.csr_matrix(np.eye(3)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="every item"):
        make_sampler("unis", sp.csr_matrix(np.ones((2, 3))), np.random.default_rng(0))
    with pytest.raises(ValueError, match="zero sampling weight"):
        make_sampler("pops", sp.csr_matrix(np.array([[1.0, 0.0], [1.0, 0.0]])), np.random.default_rng(0))
    with pytest.raises(TypeError, match="`train`"):
        make_sampler("unis", np.eye(3), np.random.default_rng(0))
    with pytest.raises(ValueError, match="score_fn"):
        make_sampler("hars", sp.csr_matrix(np.eye(3)), np.random.default_rng(0)).sample(np.array([0]), np.array([0]))


@pytest.mark.parametrize("name", ["unis", "pops"])
def test_sampler_accepts_trailing_users_without_positives(name):
    """Users with no training positive at the end of the matrix (a cold user drawn last) must not break
    the per-user weight sums (np.add.reduceat raised IndexError there)."""
    import numpy as np
    import scipy.sparse as sp
    from rankguard.samplers import SAMPLERS
    m = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    s = SAMPLERS.get(name).from_count(m, np.random.default_rng(0), 3)
    neg = s.sample(np.array([0, 1, 0]), np.array([0, 1, 0]), None)
    assert neg.shape == (3, 3) and not (neg[[0, 2]] == 0).any() and not (neg[1] == 1).any()
