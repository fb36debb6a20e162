"""PopS: negatives drawn ∝ training popularity, ``q_u(j) ∝ deg(j)^β · [j ∉ P_u]`` (β = 1 as in DPCML).

``deg(j)`` = number of training users of item ``j``. Items nobody has used get weight 0 unless
``smoothing > 0`` adds a constant to every count.
"""

from __future__ import annotations

import numpy as np

from rankguard.samplers.base import NegativeSampler


class PopularitySampler(NegativeSampler):
    """Popularity-proportional negatives.

    >>> import numpy as np, scipy.sparse as sp
    >>> m = sp.csr_matrix(np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1]]))
    >>> PopularitySampler(m, np.random.default_rng(0)).negative_distribution(np.array([0])).round(2).tolist()
    [[0.0, 0.67, 0.33]]
    """

    name = "pops"

    def __init__(self, train, generator: np.random.Generator, n_negatives: int = 10,
                 exponent: float = 1.0, smoothing: float = 0.0):
        self.exponent = float(exponent)
        self.smoothing = float(smoothing)
        if self.smoothing < 0:
            raise ValueError(f"`smoothing` must be >= 0, got {smoothing}")
        super().__init__(train, generator, n_negatives)

    def item_weights(self) -> np.ndarray:
        deg = np.bincount(self.train.indices, minlength=self.n_items).astype(np.float64)
        return (deg + self.smoothing) ** self.exponent
