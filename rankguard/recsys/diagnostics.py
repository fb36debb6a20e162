"""Generalization diagnostics for collaborative ranking (the SFCML talk's bound terms).

Effective sample size
    Per user with ``n⁺`` training positives and ``n⁻ = n_items − n⁺`` unobserved items,
    ``Ñ_u = (√(1/n⁺ + 1/n⁻))⁻² = n⁺n⁻ / (n⁺ + n⁻)`` — the per-user sample size that enters the
    AUC-type generalization bound (dominated by the smaller of ``n⁺`` and ``n⁻``).

Sampling bias (total variation)
    The objective is the mean over users of the mean over that user's (positive, unobserved)
    pairs, i.e. the target distribution over triplets ``(u, i, j)`` is
    ``p(u, i, j) = 1/U · 1/(n⁺_u n⁻_u)`` (``U`` = users with ≥ 1 positive).
    A sampled trainer visits each training pair ``(u, i)`` once per epoch (so user ``u`` gets weight
    ``w_u = n⁺_u / N``, ``N`` = all training pairs) and draws ``j ~ q_u`` independently of ``i``:
    ``q(u, i, j) = w_u / n⁺_u · q_u(j)``. Both are uniform in ``i`` within a user, hence

        TV = ½ Σ_u Σ_{j ∉ P_u} | w_u q_u(j) − 1/(U n⁻_u) |.

    Batch-level effects (a smaller last batch) average out over the epoch's random permutation, so
    distributions are taken in expectation over the shuffling. SFCML uses every pair of each user
    with ``w_u = 1/U`` and ``q_u`` uniform: TV = 0 by construction.

    ``q_u`` is exact for UniS / PopS (closed form) and HarS / DiHarS (order statistics of the
    model's current scores); for 2stS it is estimated by Monte Carlo from ``n_draws`` sampler calls
    per user (the estimate is biased upward by sampling noise of order ``√(n_items / (n_draws · S))``).
    With ``k`` negatives per pair (DiHarS: ``k = ⌈β·S⌉``) each counts ``1/k`` (the objective's mean),
    so ``q_u(j)`` is the expected share of the ``k`` picks that are ``j``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from scipy.special import gammaln, xlog1py, xlogy

from rankguard.samplers import NegativeSampler
from rankguard.samplers.base import CandidateScoreFn
from rankguard.samplers.hard import HardSampler
from rankguard.samplers.popularity import PopularitySampler
from rankguard.samplers.two_stage import TwoStageSampler


def _counts(train: sp.spmatrix) -> tuple[np.ndarray, int]:
    if not sp.issparse(train):
        raise TypeError(f"`train` must be a scipy sparse users x items matrix, got {type(train).__name__}")
    csr = sp.csr_matrix(train)
    csr.eliminate_zeros()
    return np.diff(csr.indptr), csr.shape[1]


def effective_sample_size(train: sp.spmatrix) -> dict[str, float]:
    """Summary over users (with ≥ 1 positive) of ``Ñ_u = n⁺n⁻ / (n⁺ + n⁻)``: mean, median, min, max.

    >>> effective_sample_size(sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 0, 0]])))["min"]
    0.75
    """
    n_pos, n_items = _counts(train)
    n_pos = n_pos[n_pos > 0].astype(np.float64)
    n_neg = n_items - n_pos
    ess = np.where(n_neg > 0, n_pos * n_neg / np.maximum(n_pos + n_neg, 1), 0.0)
    if ess.size == 0:
        raise ValueError("`train` has no user with a positive")
    return {"users": int(ess.size), "mean": float(ess.mean()), "median": float(np.median(ess)),
            "min": float(ess.min()), "max": float(ess.max())}


def hard_pick_distribution(sampler: HardSampler, users: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Exact ``q_u(j)`` of :class:`HardSampler` / :class:`DiHarSampler` given scores ``[B, n_items]``.

    Rank the user's negatives from the closest (largest score), ``r = 1..n⁻``; the sampler keeps the
    ``k = n_negatives`` closest of ``C`` i.i.d. uniform candidates. With ``B_r ~ Binomial(C, r/n⁻)``
    (candidates of rank ≤ r), the expected number of picks of rank ``r`` is
    ``E[min(B_r, k)] − E[min(B_{r−1}, k)]``, and ``E[min(B, k)] = k − Σ_{i<k} (k − i) P(B = i)``, so

        q(r) = (1/k) Σ_{i=0}^{k−1} (k − i) [P(B_{r−1} = i) − P(B_r = i)].

    For ``k = 1`` (HarS) this is ``((n⁻−r+1)/n⁻)^C − ((n⁻−r)/n⁻)^C``. Score ties: order by item id.
    Returns ``[B, n_items]``, rows summing to 1, zero on training positives.
    """
    users = np.asarray(users, dtype=np.int64)
    pos = sampler.train[users].toarray() > 0
    s = np.where(pos, -np.inf, np.asarray(scores, dtype=np.float64))
    order = np.argsort(-s, axis=1, kind="stable")
    n_neg = (~pos).sum(axis=1, keepdims=True).astype(np.float64)
    r = np.arange(1, s.shape[1] + 1, dtype=np.float64)[None, :]
    c, k = sampler.n_candidates, sampler.n_negatives
    if k == 1:  # the HarS closed form (no binomial terms needed)
        p_rank = np.clip((n_neg - r + 1) / n_neg, 0, None) ** c - np.clip((n_neg - r) / n_neg, 0, None) ** c
    else:
        upto, below = np.clip(r / n_neg, 0, 1), np.clip((r - 1) / n_neg, 0, 1)
        p_rank = np.zeros_like(upto)
        for i in range(k):
            p_rank += (k - i) * (_binom_pmf(i, c, below) - _binom_pmf(i, c, upto))
        p_rank /= k
    q = np.zeros_like(s)
    np.put_along_axis(q, order, p_rank, axis=1)
    q[pos] = 0.0
    return q


def _binom_pmf(i: int, n: int, p: np.ndarray) -> np.ndarray:
    """``P(B = i)`` for ``B ~ Binomial(n, p)``, elementwise over ``p`` (``0·log 0 = 0``, so ``p = 0, 1``
    are exact). The log-space ufunc form is ~10x faster than ``scipy.stats.binom.pmf`` on the
    ``[users, n_items]`` grids of :func:`hard_pick_distribution` (DiHarS, ``k = 10``: CiteULike-t's
    5,219 × 25k grid took minutes)."""
    log_choose = gammaln(n + 1) - gammaln(i + 1) - gammaln(n - i + 1)
    return np.exp(log_choose + xlogy(i, p) + xlog1py(n - i, -p))


def monte_carlo_distribution(sampler: NegativeSampler, users: np.ndarray, n_draws: int,
                             score_fn: CandidateScoreFn | None = None, batch_size: int = 256) -> np.ndarray:
    """Empirical negative marginal ``q_u(j)`` from ``n_draws`` calls of ``sampler.sample`` per user.

    Each draw gets a positive drawn uniformly from the user's training items (the trainer's
    triplets), so for samplers whose negatives depend on the positive (2stS with spread-out
    weights) ``q_u`` is the marginal over the user's positives. Draws are shuffled and sampled in
    calls of ``batch_size`` pairs, like training batches (2stS draws one candidate set per call).
    Returns ``[B, n_items]``.
    """
    users = np.asarray(users, dtype=np.int64)
    rep = np.repeat(users, n_draws)
    indptr, indices = sampler.train.indptr, sampler.train.indices
    n_pos = indptr[rep + 1] - indptr[rep]
    if np.any(n_pos == 0):
        raise ValueError("`users` must all have at least one training positive")
    pos_items = indices[indptr[rep] + sampler.rng.integers(0, n_pos)]
    # one call per training-sized batch: 2stS draws one candidate set per call, as per training batch
    order = sampler.rng.permutation(rep.size)
    neg = np.empty((rep.size, sampler.n_negatives), dtype=np.int64)
    for start in range(0, rep.size, batch_size):
        chunk = order[start:start + batch_size]
        neg[chunk] = sampler.sample(rep[chunk], pos_items[chunk], score_fn)
    local = np.repeat(np.arange(users.size), n_draws)[:, None] * sampler.n_items + neg
    counts = np.bincount(local.ravel(), minlength=users.size * sampler.n_items).astype(np.float64)
    counts = counts.reshape(users.size, sampler.n_items)
    return counts / counts.sum(axis=1, keepdims=True)


def pair_distribution_tv(train: sp.spmatrix, sampler: NegativeSampler | None,
                         score_fn: CandidateScoreFn | None = None, n_draws: int = 200,
                         block_users: int = 512) -> dict[str, float | str]:
    """TV distance between the trained-on triplet distribution and the per-user uniform one.

    ``sampler=None`` means the sampling-free objective (SFCML): result 0. HarS / DiHarS / 2stS need
    ``score_fn(users [B], items [B, C]) -> scores`` (the current model). Returns the TV, how
    ``q_u`` was obtained (``"exact"`` or ``"monte-carlo (n draws/user)"``), and the part due to the
    user weighting alone (``½ Σ_u |w_u − 1/U|``).

    >>> from rankguard.samplers import UniformSampler
    >>> m = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 0, 0]]))
    >>> round(pair_distribution_tv(m, UniformSampler(m, np.random.default_rng(0)))["tv"], 12)  # ½(|2/3−½|+|1/3−½|)
    0.166666666667
    """
    n_pos_all, n_items = _counts(train)
    active = np.flatnonzero(n_pos_all > 0)
    n_users = active.size
    if sampler is None:
        weights = np.full(n_users, 1.0 / n_users)
    else:
        weights = n_pos_all[active] / n_pos_all.sum()
    user_part = 0.5 * float(np.abs(weights - 1.0 / n_users).sum())
    if sampler is None:
        return {"tv": 0.0, "user_weighting_tv": user_part, "method": "exact (all pairs)"}
    csr = sp.csr_matrix(train)
    if isinstance(sampler, TwoStageSampler):
        # q_u depends on the positive: the TV of the negative marginal is reported (Monte-Carlo
        # noise biases a finite-sample TV upwards)
        method = f"monte-carlo ({n_draws} draws x {sampler.n_negatives} negatives / user; negative marginal)"
    else:
        method = "exact"
    total = 0.0
    for start in range(0, n_users, block_users):
        users = active[start:start + block_users]
        w = weights[start:start + block_users]
        if isinstance(sampler, TwoStageSampler):
            q = monte_carlo_distribution(sampler, users, n_draws, score_fn)
        elif isinstance(sampler, HardSampler):
            if score_fn is None:
                raise ValueError(f"{sampler.name} needs `score_fn` (the model's current scores)")
            items = torch.arange(n_items).expand(users.size, n_items)
            with torch.no_grad():
                s = score_fn(torch.from_numpy(users), items).double().numpy()
            q = hard_pick_distribution(sampler, users, s)
        elif type(sampler).sample is NegativeSampler.sample or isinstance(sampler, PopularitySampler):
            q = sampler.negative_distribution(users)
        else:
            raise TypeError(f"no TV rule for sampler {type(sampler).__name__}")
        pos = csr[users].toarray() > 0
        n_neg = (~pos).sum(axis=1, keepdims=True)
        target = np.where(pos, 0.0, (1.0 / n_users) * (1.0 / n_neg))
        total += float(np.abs(w[:, None] * q - target)[~pos].sum())
    return {"tv": 0.5 * total, "user_weighting_tv": user_part, "method": method}
