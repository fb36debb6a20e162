"""2stS: two-stage sampling (Tran, Hennequin, Royo-Letelier, Moussallam, SIGIR 2019, "Improving
collaborative metric learning with efficient negative sampling").

What this class does (a *hardest-of-popular-candidates* variant):

1. stage one draws ``C = 300`` candidates per ``(u, i⁺)`` with probability ∝ training popularity
   (``deg(j)^β``, β = 1), rejecting the user's training positives;
2. stage two keeps, deterministically, the ``S`` candidates with the largest model score for the
   *user* (smallest user–item distance).

What the DPCML code (statusrank/DPCML @1fd74fa, ``sampler/two-stage_sampler.py``, class
``SpreadoutSampler``) and Tran et al. do instead in stage two — not implemented here:

* one candidate set of ``C`` items per batch, drawn ∝ popularity *without replacement*;
* per pair, weights from the *item–item* inner product ``x = ⟨v_{i⁺}, v_j⟩`` of the positive item
  and each candidate: ``w_j ∝ (1 − x²)^{1 − (d − 1)/2}`` for ``x > 0`` and ``w_j = 0`` otherwise (the
  inverse-density "distance-weighted sampling" of Wu et al., ICCV 2017 — the "spread-out" part);
* ``S`` negatives *sampled* ∝ ``w`` without replacement (uniform when all weights are 0); training
  positives re-drawn a few times.

The deterministic user-score top-``S`` here concentrates every update on the popular unobserved items,
which are exactly the likely validation/test positives; on ML-100K this collapses the ranking
(test P@3 0.00, AUC 61, ``results/recsys_quality.md``). A faithful port needs item embeddings in the
sampler callback and positive-aware Monte Carlo diagnostics (``diagnostics.monte_carlo_distribution``
passes item 0 as every positive), so it is left for a separate change.

Each kept negative is its own triplet. The resulting distribution has no simple closed form; the
diagnostics estimate it by Monte Carlo.
"""

from __future__ import annotations

import numpy as np
from rankguard.samplers.base import CandidateScoreFn
from rankguard.samplers.popularity import PopularitySampler


class TwoStageSampler(PopularitySampler):
    """Popularity candidates, then the hardest ``n_negatives`` of them by model score.

    >>> import numpy as np, scipy.sparse as sp
    >>> m = sp.csr_matrix(np.ones((4, 6)) * (np.arange(6) < 3))   # items 3..5 unused: smooth counts
    >>> s = TwoStageSampler(m, np.random.default_rng(0), n_candidates=20, n_negatives=1, smoothing=1.0)
    >>> s.sample(np.array([0]), np.array([0]), lambda u, c: c.double()).tolist()
    [[5]]
    """

    name = "2sts"
    needs_scores = True

    def __init__(self, train, generator: np.random.Generator, n_candidates: int = 300, n_negatives: int = 10,
                 exponent: float = 1.0, smoothing: float = 0.0):
        if int(n_candidates) < int(n_negatives):
            raise ValueError(f"`n_candidates` ({n_candidates}) must be >= `n_negatives` ({n_negatives})")
        self.n_candidates = int(n_candidates)
        super().__init__(train, generator, n_negatives, exponent=exponent, smoothing=smoothing)

    def sample(self, users: np.ndarray, pos_items: np.ndarray,
               score_fn: CandidateScoreFn | None = None) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        return self.pick_hardest(users, self.draw(users, self.n_candidates), score_fn, self.n_negatives)
