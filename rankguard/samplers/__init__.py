"""Negative samplers for recommendation: one small file per sampler, one registry line each.

Every sampler takes the training matrix (CSR, users x items) and a ``numpy.random.Generator`` and,
for a batch of ``(user, positive)`` pairs, returns negatives ``[B, S]`` that are never training
positives (see :mod:`rankguard.samplers.base`).

>>> import numpy as np, scipy.sparse as sp
>>> s = make_sampler("unis", sp.csr_matrix(np.eye(4)), np.random.default_rng(0))
>>> s.sample(np.array([1, 2]), np.array([1, 2])).shape
(2, 10)
"""

from __future__ import annotations

import numpy as np

from rankguard.samplers.base import CandidateScoreFn, NegativeSampler
from rankguard.samplers.hard import HardSampler
from rankguard.samplers.popularity import PopularitySampler
from rankguard.samplers.two_stage import TwoStageSampler
from rankguard.samplers.uniform import UniformSampler

SAMPLERS: dict[str, type[NegativeSampler]] = {
    "unis": UniformSampler,
    "pops": PopularitySampler,
    "2sts": TwoStageSampler,
    "hars": HardSampler,
}


def make_sampler(name: str, train, generator: np.random.Generator, **kwargs) -> NegativeSampler:
    """Build the sampler registered as ``name`` (case-insensitive); unknown names list the known ones."""
    key = str(name).lower()
    if key not in SAMPLERS:
        raise KeyError(f"unknown sampler {name!r}; known: {', '.join(sorted(SAMPLERS))}")
    return SAMPLERS[key](train, generator, **kwargs)


__all__ = ["SAMPLERS", "make_sampler", "NegativeSampler", "CandidateScoreFn", "UniformSampler",
           "PopularitySampler", "TwoStageSampler", "HardSampler"]
