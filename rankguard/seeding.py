"""One seeded random source per run: randomness flows from here, never from global state."""

from __future__ import annotations

import numpy as np
import torch


def make_generators(seed: int) -> tuple[torch.Generator, np.random.Generator]:
    """Return ``(torch.Generator, numpy Generator)`` seeded with ``seed``; no global RNG is touched.

    Models built by rankguard draw their initial weights from the torch generator passed to them
    (see :func:`rankguard.training.init.init_linear_`), so nothing needs the global seed. For a
    checkpointable bundle of both, see :class:`rankguard.training.Generators`.

    >>> a, _ = make_generators(0); b, _ = make_generators(0)
    >>> torch.equal(torch.rand(3, generator=a), torch.rand(3, generator=b))
    True
    >>> before = torch.get_rng_state(); _ = make_generators(5); torch.equal(before, torch.get_rng_state())
    True
    """
    return torch.Generator().manual_seed(int(seed)), np.random.default_rng(int(seed))
