"""2stS: two-stage sampling (Tran, Sweeney, Lee, SIGIR 2019, "Improving collaborative metric learning
with efficient negative sampling").

Our reading of the method, as used in the DPCML comparison:

1. stage one draws ``C = 300`` candidates per ``(u, i⁺)`` with probability ∝ training popularity
   (``deg(j)^β``, β = 1) — cheap, and it makes popular items (the frequent hard negatives) likely;
2. stage two keeps the ``S`` candidates the model currently finds hardest, i.e. with the largest
   score (smallest distance) — Tran et al. rank the candidate set by the model's inner product.
   Their "spread-out" part is a regulariser on the embeddings (global orthogonal regularisation),
   not part of the sampler; it is not applied here.

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
