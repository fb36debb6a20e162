"""DiHarS: HarS when ⌈β·S⌉ = 1, the top-⌈β·S⌉ candidates by score, the CVaR form, validation, diagnostics."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from rankguard.losses import CMLLoss
from rankguard.recsys.diagnostics import hard_pick_distribution, monte_carlo_distribution, pair_distribution_tv
from rankguard.recsys.objectives import build_objective
from rankguard.samplers import SAMPLERS, DiHarSampler, HardSampler
from rankguard.samplers.dihars import hardest_count


def random_train(n_users=30, n_items=60, density=0.3, seed=0):
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < density
    dense[0, :] = True
    dense[0, 7] = False          # a user with a single negative: the rejection fallback path
    return sp.csr_matrix(dense.astype(np.float64)), dense


def table_score_fn(table: torch.Tensor):
    def fn(users, items):
        return table[users[:, None], items]
    return fn


def test_registered_and_built_from_the_count_flag_with_beta_from_sampler_options():
    train, _ = random_train()
    assert SAMPLERS.get("dihars") is DiHarSampler
    _, s = build_objective("hinge", "dihars", train, np.random.default_rng(0), margin=1.0, batch_size=32,
                           n_negatives=200, sampler_options={"beta": 0.05})
    assert (s.n_candidates, s.beta, s.n_negatives) == (200, 0.05, 10)
    _, s = build_objective("hinge", "dihars", train, np.random.default_rng(0), margin=1.0, batch_size=32,
                           n_negatives=100)
    assert (s.n_candidates, s.beta, s.n_negatives) == (100, 0.1, 10)   # defaults: S = 100, β = 0.1


@pytest.mark.parametrize("beta", [0.01, 0.004])
def test_one_hardest_is_exactly_what_hars_picks_from_the_same_stream(beta):
    train, dense = random_train(seed=2)
    table = torch.randn(*dense.shape, dtype=torch.float64)
    di = DiHarSampler(train, np.random.default_rng(11), n_candidates=100, beta=beta)
    hard = HardSampler(train, np.random.default_rng(11), n_candidates=100)
    assert di.n_negatives == 1
    users = np.arange(30).repeat(7)
    for _ in range(3):                                   # the streams stay in step call after call
        a = di.sample(users, np.zeros_like(users), table_score_fn(table))
        b = hard.sample(users, np.zeros_like(users), table_score_fn(table))
        np.testing.assert_array_equal(a, b)


def test_returns_the_top_k_candidates_by_score_and_never_a_positive():
    train, dense = random_train(seed=3)
    table = torch.randn(*dense.shape, dtype=torch.float64)
    users = np.arange(30).repeat(4)
    kw = dict(n_candidates=120, beta=0.07)
    picked = DiHarSampler(train, np.random.default_rng(5), **kw).sample(users, np.zeros_like(users),
                                                                        table_score_fn(table))
    cand = DiHarSampler(train, np.random.default_rng(5), **kw).draw(users, 120)   # same stream
    k = math.ceil(0.07 * 120 - 1e-9)
    assert picked.shape == (users.size, k) == (users.size, 9)
    assert not dense[users[:, None], picked].any()
    assert (picked[users == 0] == 7).all()
    for row, u in enumerate(users):                     # brute force: Python sort of (−score, slot)
        ranked = sorted(range(120), key=lambda c: (-float(table[u, cand[row, c]]), c))
        want = sorted(float(table[u, cand[row, c]]) for c in ranked[:k])
        assert sorted(float(table[u, j]) for j in picked[row]) == want
        assert not (set(picked[row]) - set(cand[row]))


def test_mean_hinge_over_the_picks_is_the_cvar_form_minimised_over_the_threshold():
    # γ + 1/(β S) Σ_k [ℓ_k − γ]₊ minimised over γ (a piecewise-linear function: the minimum is at a loss
    # value) equals the mean loss over the top-βS candidates when βS is an integer
    train, dense = random_train(seed=4)
    table = torch.randn(*dense.shape, dtype=torch.float64)
    users, pos = np.arange(1, 30), np.array([np.flatnonzero(dense[u])[0] for u in range(1, 30)])
    beta, n = 0.1, 100
    picked = DiHarSampler(train, np.random.default_rng(6), n_candidates=n, beta=beta).sample(
        users, pos, table_score_fn(table))
    cand = DiHarSampler(train, np.random.default_rng(6), n_candidates=n, beta=beta).draw(users, n)
    s_pos = table[users, pos]
    objective_loss = CMLLoss(1.0)              # what the sampled objective applies: mean over [B, k]
    picked_loss = [objective_loss(s_pos[r:r + 1], table[users[r:r + 1, None], picked[r:r + 1]])
                   for r in range(users.size)]
    cand_loss = torch.clamp(1.0 - (s_pos[:, None] - table[users[:, None], cand]), min=0)
    for row in range(users.size):
        ell = cand_loss[row]
        cvar = min(float(g + torch.clamp(ell - g, min=0).sum() / (beta * n)) for g in ell.tolist())
        assert float(picked_loss[row]) == pytest.approx(cvar, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("beta", [0.0, -0.1, 1.5, math.nan, math.inf, True, "0.1", None])
def test_beta_outside_the_unit_interval_is_refused_naming_the_argument(beta):
    train, _ = random_train()
    with pytest.raises(ValueError, match=r"`beta` \(--beta"):
        DiHarSampler(train, np.random.default_rng(0), beta=beta)


def test_too_few_candidates_are_refused_naming_the_flag():
    train, _ = random_train()
    with pytest.raises(ValueError, match=r"--negatives\) >= 100.*got 10"):
        DiHarSampler.from_count(train, np.random.default_rng(0), 10, beta=0.1)
    assert DiHarSampler(train, np.random.default_rng(0), beta=1.0).n_negatives == 100
    assert hardest_count(0.07, 100) == 7 and hardest_count(0.071, 100) == 8


def test_exact_pick_distribution_of_k_hardest_equals_enumeration():
    rng = np.random.default_rng(7)
    dense = rng.random((4, 6)) < 0.3
    train = sp.csr_matrix(dense.astype(np.float64))
    scores = np.random.default_rng(8).normal(size=dense.shape)
    sampler = HardSampler(train, np.random.default_rng(0), n_candidates=4, n_negatives=2)   # k = 2 of C = 4
    got = hard_pick_distribution(sampler, np.arange(4), scores)
    for u in range(4):
        neg = np.flatnonzero(~dense[u])
        ref = np.zeros(dense.shape[1])
        for tup in itertools.product(neg, repeat=4):     # every equally likely candidate tuple
            for j in sorted(tup, key=lambda j: -scores[u, j])[:2]:
                ref[j] += 0.5 / len(neg) ** 4
        np.testing.assert_allclose(got[u], ref, atol=1e-12)


def test_dihars_pick_distribution_matches_monte_carlo_and_enters_the_tv_exactly():
    train, dense = random_train(n_users=6, n_items=25, seed=9)
    scores = np.random.default_rng(10).normal(size=dense.shape)
    table = torch.from_numpy(scores)
    sampler = DiHarSampler(train, np.random.default_rng(1), n_candidates=100, beta=0.05)
    users = np.arange(1, 6)
    exact = hard_pick_distribution(sampler, users, scores[users])
    np.testing.assert_allclose(exact.sum(axis=1), 1.0, atol=1e-12)
    assert not exact[dense[users]].any()
    mc = monte_carlo_distribution(sampler, users, 4000, table_score_fn(table))
    np.testing.assert_allclose(mc, exact, atol=0.01)
    tv = pair_distribution_tv(train, sampler, table_score_fn(table))
    assert tv["method"] == "exact" and 0.0 < tv["tv"] < 1.0


def test_trains_through_the_recipe_config_with_beta_in_sampler_options():
    from rankguard.recsys.data import Interactions
    from rankguard.recsys.splits import ratio_split
    from rankguard.recsys.trainer import TrainConfig, make_config, train

    _, dense = random_train(n_users=40, n_items=50, seed=12)
    dense[0] = False
    dense[0, :5] = True
    split = ratio_split(Interactions(sp.csr_matrix(dense.astype(np.float32))), seed=0)
    cfg = make_config("cml", sampler="dihars", n_negatives=100, sampler_options={"beta": 0.05}, dim=8, epochs=2,
                      eval_every=1, batch_size=64)
    assert TrainConfig.from_dict(cfg.to_dict()).sampler_options == {"beta": 0.05}
    result = train(cfg, split, log=None)
    assert cfg.method == "cml-dihars" and len(result.history) == 2
    assert result.diagnostics["sampling_tv"]["method"] == "exact"
