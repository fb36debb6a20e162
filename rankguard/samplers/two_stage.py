"""2stS: two-stage sampling (Tran, Hennequin, Royo-Letelier, Moussallam, SIGIR 2019, "Improving
collaborative metric learning with efficient negative sampling").

Stage one draws ``C = 300`` popularity-weighted candidates (``deg(j)^β``, β = 1). Stage two, two forms:

* ``stage_two="spreadout"`` (default) — the DPCML code's form (statusrank/DPCML @1fd74fa,
  ``sampler/two-stage_sampler.py``, class ``SpreadoutSampler``) and Tran et al.'s: one candidate set per
  batch, drawn ∝ popularity *without replacement*; per pair, with ``x_j = ⟨v_{i⁺}, v_j⟩`` the inner
  product of the *positive item* and each candidate, weights (Wu et al., ICCV 2017, distance-weighted
  sampling, inverse of the inner-product density on the ``d``-sphere)::

      w_j ∝ (1 − x_j²)^{1 − (d − 1)/2}  if x_j > 0,   w_j = 0 otherwise;

  ``S`` negatives sampled ∝ ``w`` *without replacement* (Gumbel top-``S``; normalised in log space, so
  ``x → 1`` cannot overflow). The user's training positives are excluded from the candidates
  before weighting (the code re-tries such picks a few times; the positive item itself, ``x = 1``,
  would otherwise take all the weight). Rows with fewer than ``S`` positive weights fill up
  uniformly from the other candidates (the code errs there); if even those run out, the rest are
  drawn from the popularity distribution (training positives rejected). Needs the
  item table: ``score_fn.item_embeddings(items) -> [.., d]`` (the trainer attaches it).
* ``stage_two="hardest"`` — per pair ``C`` candidates (training positives rejected), keep the ``S``
  with the largest model score for the user. Deterministic hard mining of *popular* unobserved items
  (the likely validation/test positives) collapses CML on ML-100K (test P@3 0.00); kept as an option.

Each kept negative is its own triplet. The resulting distribution has no simple closed form; the
diagnostics estimate its negative marginal by Monte Carlo, with positives drawn from the user's
training items.
"""

from __future__ import annotations

import numpy as np
import torch

from rankguard.samplers.base import CandidateScoreFn
from rankguard.samplers.popularity import PopularitySampler


class TwoStageSampler(PopularitySampler):
    """Popularity candidates, then ``n_negatives`` of them by ``stage_two`` ("hardest" or "spreadout").

    >>> import numpy as np, scipy.sparse as sp
    >>> m = sp.csr_matrix(np.ones((4, 6)) * (np.arange(6) < 3))   # items 3..5 unused: smooth counts
    >>> s = TwoStageSampler(m, np.random.default_rng(0), n_candidates=20, n_negatives=1, smoothing=1.0,
    ...                     stage_two="hardest")
    >>> s.sample(np.array([0]), np.array([0]), lambda u, c: c.double()).tolist()
    [[5]]
    """

    name = "2sts"
    needs_scores = True
    STAGE_TWO = ("hardest", "spreadout")

    def __init__(self, train, generator: np.random.Generator, n_candidates: int = 300, n_negatives: int = 10,
                 exponent: float = 1.0, smoothing: float = 0.0, stage_two: str = "spreadout"):
        if int(n_candidates) < int(n_negatives):
            raise ValueError(f"`n_candidates` ({n_candidates}) must be >= `n_negatives` ({n_negatives})")
        if stage_two not in self.STAGE_TWO:
            raise ValueError(f"`stage_two` must be one of {', '.join(self.STAGE_TWO)}, got {stage_two!r}")
        self.n_candidates = int(n_candidates)
        self.stage_two = stage_two
        super().__init__(train, generator, n_negatives, exponent=exponent, smoothing=smoothing)

    def sample(self, users: np.ndarray, pos_items: np.ndarray,
               score_fn: CandidateScoreFn | None = None) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        if self.stage_two == "hardest":
            return self.pick_hardest(users, self.draw(users, self.n_candidates), score_fn, self.n_negatives)
        item_fn = getattr(score_fn, "item_embeddings", None)
        if item_fn is None:
            raise ValueError("2sts with stage_two='spreadout' needs `score_fn.item_embeddings(items) -> [.., d]`")
        pos_items = np.asarray(pos_items, dtype=np.int64)
        support = np.flatnonzero(self.weights > 0)
        c = min(self.n_candidates, support.size)
        if c < self.n_negatives:
            raise ValueError(f"only {support.size} items have popularity > 0; need >= n_negatives = {self.n_negatives}")
        p = self.weights[support] / self.weights[support].sum()
        cand = support[self.rng.choice(support.size, size=c, replace=False, p=p)]      # [C], one per batch
        with torch.no_grad():
            v_pos = item_fn(torch.from_numpy(pos_items)).double()
            v_c = item_fn(torch.from_numpy(cand)).double()
        x = (v_pos @ v_c.T).numpy()                                                     # [B, C]
        return self._spreadout_pick(users, x, cand, v_c.shape[1])

    def _spreadout_pick(self, users: np.ndarray, x: np.ndarray, cand: np.ndarray, dim: int) -> np.ndarray:
        """Sample ``S`` of the candidates per row ∝ ``w(x)`` without replacement (Gumbel top-S)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            logw = (1.0 - (dim - 1) / 2.0) * np.log(1.0 - x * x + 1e-8)
        positive = self.is_positive(users, np.broadcast_to(cand, x.shape))
        valid = (x > 0) & np.isfinite(logw) & ~positive
        logw = np.where(valid, logw, -np.inf)
        logw -= np.where(valid.any(axis=1, keepdims=True), logw.max(axis=1, keepdims=True), 0.0)
        gumbel = -np.log(-np.log(self.rng.random(x.shape)))
        key = np.where(valid, logw + gumbel, gumbel)
        tier = np.where(valid, 0, np.where(positive, 2, 1))   # weighted, then uniform fill-up, positives last
        order = np.lexsort((-key, tier), axis=-1)[:, : self.n_negatives]
        out = cand[order]
        bad = self.is_positive(users, out)
        if bad.any():
            r, col = np.nonzero(bad)
            out[r, col] = self.draw(users[r], 1)[:, 0]
        return out
