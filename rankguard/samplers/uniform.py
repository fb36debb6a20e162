"""UniS: uniform negatives (DPCML/LibCML ``UniS``): ``q_u(j) = 1 / n_u⁻`` over non-positives.

Each of the ``S`` (default 10) negatives drawn per ``(u, i⁺)`` forms its own triplet.
"""

from __future__ import annotations

from rankguard.samplers.base import NegativeSampler


class UniformSampler(NegativeSampler):
    """Uniform over the user's unobserved items.

    >>> import numpy as np, scipy.sparse as sp
    >>> s = UniformSampler(sp.csr_matrix(np.eye(3)), np.random.default_rng(0), n_negatives=4)
    >>> bool((s.sample(np.array([0]), np.array([0])) != 0).all())
    True
    """

    name = "unis"
