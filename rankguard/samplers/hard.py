"""HarS: draw ``C`` (default 10) uniform candidates, keep the hardest one — the closest to the user.

The DPCML paper's text says "most distant", but both authors' code bases (DPCML, LibCML) keep the
candidate with the *smallest* distance, i.e. the largest score; we follow the code. The pick is
made without gradient; the loss is then an ordinary triplet on the chosen item, whose gradient
equals that of ``min_j d(u, j)`` over the candidates.

Exact pick distribution (used by the diagnostics): with the user's ``n⁻`` negatives ranked
``r = 1..n⁻`` from closest, and ``C`` i.i.d. uniform draws,
``P(pick rank r) = ((n⁻ − r + 1)/n⁻)^C − ((n⁻ − r)/n⁻)^C`` (ties broken by draw order).
"""

from __future__ import annotations

import numpy as np
from rankguard.samplers.base import CandidateScoreFn, NegativeSampler


class HardSampler(NegativeSampler):
    """The closest of ``n_candidates`` uniform candidates (one negative per pair).

    >>> import numpy as np, scipy.sparse as sp, torch
    >>> s = HardSampler(sp.csr_matrix((1, 5)), np.random.default_rng(0), n_candidates=50)
    >>> s.sample(np.array([0]), np.array([0]), lambda u, c: c.double()).tolist()   # score = item id
    [[4]]
    """

    name = "hars"
    needs_scores = True

    def __init__(self, train, generator: np.random.Generator, n_candidates: int = 10, n_negatives: int = 1):
        if int(n_candidates) < 1:
            raise ValueError(f"`n_candidates` must be >= 1, got {n_candidates}")
        self.n_candidates = int(n_candidates)
        super().__init__(train, generator, n_negatives)
        if self.n_negatives > self.n_candidates:
            raise ValueError(f"`n_negatives` ({n_negatives}) must be <= `n_candidates` ({n_candidates})")

    @classmethod
    def from_count(cls, train, generator: np.random.Generator, count: int, **options) -> "HardSampler":
        """HarS's count is the number of uniform candidates (one hardest negative is kept per pair)."""
        return cls(train, generator, n_candidates=count, **options)

    def sample(self, users: np.ndarray, pos_items: np.ndarray,
               score_fn: CandidateScoreFn | None = None) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        return self.pick_hardest(users, self.draw(users, self.n_candidates), score_fn, self.n_negatives)
