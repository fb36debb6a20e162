"""One seeded random source per run: randomness flows from here, never from global state."""

from __future__ import annotations

import random

import numpy as np
import torch


def make_generators(seed: int) -> tuple[torch.Generator, np.random.Generator]:
    """Return ``(torch.Generator, numpy Generator)`` seeded with ``seed``.

    Also seeds torch's and Python's global generators, because ``nn.Module`` initialisers
    draw from them.

    >>> a, _ = make_generators(0); b, _ = make_generators(0)
    >>> torch.equal(torch.rand(3, generator=a), torch.rand(3, generator=b))
    True
    """
    torch.manual_seed(seed)
    random.seed(seed)
    return torch.Generator().manual_seed(seed), np.random.default_rng(seed)
