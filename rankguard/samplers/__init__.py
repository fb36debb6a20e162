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

from rankguard.registry import Registry
from rankguard.samplers.base import CandidateScoreFn, NegativeSampler
from rankguard.samplers.dihars import DiHarSampler
from rankguard.samplers.hard import HardSampler
from rankguard.samplers.popularity import PopularitySampler
from rankguard.samplers.two_stage import TwoStageSampler
from rankguard.samplers.uniform import UniformSampler

#: negative samplers by name (``--sampler`` choices); adding one is one file + one line here
SAMPLERS: Registry[type[NegativeSampler]] = Registry("sampler")
SAMPLERS.register("unis", UniformSampler)
SAMPLERS.register("pops", PopularitySampler)
SAMPLERS.register("2sts", TwoStageSampler)
SAMPLERS.register("hars", HardSampler)
SAMPLERS.register("dihars", DiHarSampler)


def make_sampler(name: str, train, generator: np.random.Generator, **kwargs) -> NegativeSampler:
    """Build the sampler registered as ``name`` (case-insensitive); unknown names list the known ones."""
    return SAMPLERS.get(name)(train, generator, **kwargs)


__all__ = ["SAMPLERS", "make_sampler", "NegativeSampler", "CandidateScoreFn", "UniformSampler",
           "PopularitySampler", "TwoStageSampler", "HardSampler", "DiHarSampler"]
