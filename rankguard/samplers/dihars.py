"""DiHarS: the hardest ``⌈β·S⌉`` of ``S`` uniform candidates — one-way partial AUC (FPR ≤ β), CVaR form.

Objective (per user ``u`` and training positive ``i``, surrogate ``ℓ`` of the gap
``t = s(u, i) − s(u, j)``, negatives ``j`` of the user):

    OPAUC_β(u, i) = min_γ  γ + 1/(β·n⁻) Σ_j [ℓ(s(u, i) − s(u, j)) − γ]₊

which, minimised over the threshold ``γ`` (the CVaR form: REFERENCES §4, our reading of the
improved-DPCML slides, not confirmed by released code), is the mean loss over the hardest
``β·n⁻`` negatives — the negatives whose false-positive rate is at most ``β``. We estimate it on
``S`` i.i.d. uniform candidates (training positives rejected): the mean loss over the top
``k = ⌈β·S⌉`` of them.

The trick: every surrogate of :mod:`rankguard.recsys.objectives` (hinge, BPR) is non-decreasing in
the negative's score ``s(u, j)``, so the hardest candidates *by loss* are the hardest *by model
score* (largest score = smallest distance). The sampler therefore returns the top-``k`` candidates
by score, picked without gradient; the sampled objective's mean over the returned ``[B, k]``
negatives is then the CVaR / OPAUC estimate, and its gradient with the selection held fixed is a
(sub)gradient of it (Danskin: the top-``k`` mean is a maximum over ``k``-subsets; the learnable
``γ`` of the slides is replaced by its exact minimiser on the sample, so no extra parameter).
When ``β·S`` is not an integer the ``k``-th candidate gets full weight instead of the fraction
``β·S − ⌊β·S⌋`` the exact empirical CVaR would give it.

Defaults: ``S = 100`` candidates (the trainer's ``--negatives``; at least :data:`MIN_CANDIDATES`)
and ``β = 0.1`` are our choice (issue #7); the TPAMI 2024 paper's values are not published.
With ``k = 1`` (``β ≤ 1/S``) DiHarS is HarS with ``S`` candidates, pick for pick. Candidates are
drawn with replacement, so a negative can appear twice among the ``k`` (the sample's empirical
distribution, as in HarS).

Exact pick distribution (used by the diagnostics, :func:`rankguard.recsys.diagnostics.hard_pick_distribution`):
with the user's ``n⁻`` negatives ranked ``r = 1..n⁻`` from the closest,
``q(r) = (E[min(B_r, k)] − E[min(B_{r−1}, k)]) / k``, ``B_r ~ Binomial(S, r/n⁻)``.
"""

from __future__ import annotations

import math

import numpy as np

from rankguard.samplers.hard import HardSampler

#: fewest candidates per pair: below this the top-⌈β·S⌉ mean is too coarse a β-tail estimate
MIN_CANDIDATES = 100
DEFAULT_CANDIDATES = 100
DEFAULT_BETA = 0.1


def hardest_count(beta: float, n_candidates: int) -> int:
    """``k = ⌈β·S⌉``, computed so that a product like ``0.07 · 100`` (= 7.000000000000001) gives 7.

    >>> hardest_count(0.1, 100), hardest_count(0.07, 100), hardest_count(0.001, 100), hardest_count(1.0, 100)
    (10, 7, 1, 100)
    """
    return max(1, math.ceil(round(beta * n_candidates, 9)))


class DiHarSampler(HardSampler):
    """The ``⌈β·S⌉`` closest of ``S = n_candidates`` uniform candidates per pair (``[B, ⌈β·S⌉]``).

    Parameters
    ----------
    n_candidates : int
        ``S``, uniform candidates per ``(user, positive)`` (the trainer's ``--negatives``), >= 100.
    beta : float in (0, 1]
        The false-positive-rate bound of the one-way partial AUC: the share of candidates kept.

    >>> import numpy as np, scipy.sparse as sp
    >>> s = DiHarSampler(sp.csr_matrix((1, 500)), np.random.default_rng(0), n_candidates=100, beta=0.03)
    >>> neg = s.sample(np.array([0]), np.array([0]), lambda u, c: c.double())   # score = item id
    >>> neg.shape, bool((np.diff(neg[0]) <= 0).all())                         # the 3 largest ids, best first
    ((1, 3), True)
    """

    name = "dihars"

    #: the trainer's ``--negatives`` default for this sampler (S candidates), overriding a recipe's count
    default_count = DEFAULT_CANDIDATES

    @classmethod
    def check_options(cls, **options) -> None:
        """Validate ``sampler_options`` before any data is loaded (the config checks call this)."""
        super().check_options(**options)
        beta = options.get("beta", DEFAULT_BETA)
        if isinstance(beta, bool) or not isinstance(beta, (int, float, np.integer, np.floating)) \
                or not math.isfinite(beta) or not 0.0 < beta <= 1.0:
            raise ValueError(f"`beta` (--beta, the FPR bound of DiHarS) must be a number in (0, 1], got {beta!r}")

    def __init__(self, train, generator: np.random.Generator, n_candidates: int = DEFAULT_CANDIDATES,
                 beta: float = DEFAULT_BETA):
        self.check_options(beta=beta)
        if isinstance(n_candidates, bool) or int(n_candidates) != n_candidates or n_candidates < MIN_CANDIDATES:
            raise ValueError(f"DiHarS needs `n_candidates` (--negatives) >= {MIN_CANDIDATES} uniform candidates "
                             f"per pair, got {n_candidates!r}; pass --negatives {DEFAULT_CANDIDATES}")
        self.beta = float(beta)
        super().__init__(train, generator, n_candidates=int(n_candidates),
                         n_negatives=hardest_count(self.beta, int(n_candidates)))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n_users={self.n_users}, n_items={self.n_items}, "
                f"n_candidates={self.n_candidates}, beta={self.beta:g}, n_negatives={self.n_negatives})")
