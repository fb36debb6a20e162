"""Diagnostics: effective sample size and the samplers' TV distance against brute-force enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from rankguard.recsys.diagnostics import (
    effective_sample_size,
    hard_pick_distribution,
    monte_carlo_distribution,
    pair_distribution_tv,
)
from rankguard.samplers import HardSampler, PopularitySampler, TwoStageSampler, UniformSampler


def tiny_train(seed=0, n_users=6, n_items=7):
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < 0.4
    dense[:, 0] = True                 # everyone has a positive
    dense[1] = True
    dense[1, 2:4] = False              # a user with two negatives
    dense[2] = False                   # a user with no positives: outside every distribution
    return sp.csr_matrix(dense.astype(np.float64)), dense


def brute_tv(dense, q_u):
    """½ Σ over explicit triplets (u, i, j) of |trained-on − per-user uniform|; q_u(u, j) given."""
    users = [u for u in range(dense.shape[0]) if dense[u].any()]
    n_pairs = dense.sum()
    total = 0.0
    for u in users:
        pos, neg = np.flatnonzero(dense[u]), np.flatnonzero(~dense[u])
        for i, j in itertools.product(pos, neg):
            trained = (1.0 / n_pairs) * q_u(u, j)           # pair (u, i) once per epoch, then j ~ q_u
            target = 1.0 / (len(users) * len(pos) * len(neg))
            total += abs(trained - target)
    return 0.5 * total


def test_effective_sample_size_matches_per_user_formula():
    train, dense = tiny_train()
    vals = []
    for u in range(dense.shape[0]):
        npos, nneg = dense[u].sum(), (~dense[u]).sum()
        if npos:
            vals.append(np.sqrt(1.0 / npos + 1.0 / nneg) ** -2.0)
    got = effective_sample_size(train)
    assert got["users"] == len(vals)
    for key, ref in (("mean", np.mean(vals)), ("median", np.median(vals)), ("min", np.min(vals))):
        assert abs(got[key] - ref) < 1e-12


def test_sfcml_objective_has_zero_tv():
    train, _ = tiny_train()
    assert pair_distribution_tv(train, None)["tv"] == 0.0


def test_uniform_and_popularity_tv_equal_triplet_enumeration():
    train, dense = tiny_train(1)
    uni = UniformSampler(train, np.random.default_rng(0))
    ref_u = brute_tv(dense, lambda u, j: 1.0 / (~dense[u]).sum())
    assert abs(pair_distribution_tv(train, uni)["tv"] - ref_u) < 1e-12
    assert ref_u > 0                                        # users with more positives weigh more
    pop = PopularitySampler(train, np.random.default_rng(0), smoothing=0.5)
    deg = dense.sum(axis=0) + 0.5

    def q_pop(u, j):
        return deg[j] / deg[~dense[u]].sum()
    got = pair_distribution_tv(train, pop, block_users=2)   # blocks must not change the sum
    assert abs(got["tv"] - brute_tv(dense, q_pop)) < 1e-12
    assert got["method"] == "exact"


def test_hard_pick_distribution_equals_enumeration_of_candidate_tuples():
    train, dense = tiny_train(2)
    hard = HardSampler(train, np.random.default_rng(0), n_candidates=3)
    scores = np.random.default_rng(5).normal(size=dense.shape)
    users = np.array([0, 1, 3])
    got = hard_pick_distribution(hard, users, scores[users])
    for row, u in enumerate(users):
        neg = np.flatnonzero(~dense[u])
        ref = np.zeros(dense.shape[1])
        for tup in itertools.product(neg, repeat=3):     # every equally likely candidate tuple
            best = max(tup, key=lambda j: scores[u, j])
            ref[best] += 1.0 / len(neg) ** 3
        np.testing.assert_allclose(got[row], ref, atol=1e-12)
    table = torch.from_numpy(scores)
    tv = pair_distribution_tv(train, hard, lambda u, it: table[u[:, None], it])
    ref_tv = brute_tv(dense, lambda u, j: hard_pick_distribution(hard, np.array([u]), scores[[u]])[0, j])
    assert abs(tv["tv"] - ref_tv) < 1e-12
    assert tv["tv"] > pair_distribution_tv(train, UniformSampler(train, np.random.default_rng(0)))["tv"]


def test_monte_carlo_estimate_approaches_the_exact_distribution():
    train, dense = tiny_train(3)
    pop = PopularitySampler(train, np.random.default_rng(1), n_negatives=5, smoothing=1.0)
    users = np.array([0, 1, 4])
    mc = monte_carlo_distribution(pop, users, 4000)
    np.testing.assert_allclose(mc, pop.negative_distribution(users), atol=0.02)
    with pytest.raises(ValueError, match="score_fn"):
        pair_distribution_tv(train, HardSampler(train, np.random.default_rng(0)))


def two_stage_hardest_pick_distribution(dense, scores, n_candidates, smoothing):
    """Exact q_u(j) of 2stS "hardest" with one negative: enumerate every tuple of ``n_candidates``
    i.i.d. draws from q(j) ∝ deg(j) + smoothing over the user's negatives; the top score wins."""
    deg = dense.sum(axis=0) + smoothing
    q = np.zeros(dense.shape)
    for u in range(dense.shape[0]):
        neg = np.flatnonzero(~dense[u])
        p_neg = deg[neg] / deg[neg].sum()
        for tup in itertools.product(range(neg.size), repeat=n_candidates):
            best = max(tup, key=lambda a: scores[u, neg[a]])
            q[u, neg[best]] += np.prod(p_neg[list(tup)])
    return q


def test_two_stage_tv_equals_triplet_enumeration_of_its_monte_carlo_marginal():
    """The 2stS TV is the triplet TV of the Monte-Carlo marginal: replaying the same draws (same
    seed, same call) gives the exact value; and with many draws it approaches the TV of the exact
    pick distribution (tuple enumeration)."""
    train, dense = tiny_train(3)
    scores = np.random.default_rng(2).normal(size=dense.shape)
    table = torch.from_numpy(scores)

    def score_fn(u, it):
        return table[u[:, None], it]

    def sampler():
        return TwoStageSampler(train, np.random.default_rng(1), n_candidates=3, n_negatives=1, smoothing=1.0,
                               stage_two="hardest")
    res = pair_distribution_tv(train, sampler(), score_fn, n_draws=300)
    assert res["method"].startswith("monte-carlo")
    active = np.flatnonzero(dense.any(axis=1))
    q_mc = np.zeros(dense.shape)
    q_mc[active] = monte_carlo_distribution(sampler(), active, 300, score_fn)   # the same draws
    assert abs(res["tv"] - brute_tv(dense, lambda u, j: q_mc[u, j])) < 1e-12
    q_exact = two_stage_hardest_pick_distribution(dense, scores, n_candidates=3, smoothing=1.0)
    exact_tv = brute_tv(dense, lambda u, j: q_exact[u, j])
    # sampling noise: ~ ½ Σ_j |q̂ − q| with 20000 draws per user, a few 1e-3 (bias upwards)
    many = pair_distribution_tv(train, sampler(), score_fn, n_draws=20000)["tv"]
    assert abs(many - exact_tv) < 0.01
    assert exact_tv > 0.05                     # far from the target: the tolerance is meaningful
