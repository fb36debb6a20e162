"""Seeded parameter initialisation: models draw from a passed generator, never the global RNG.

``nn.Linear`` initialises from torch's global generator; :func:`init_linear_` redraws every
``nn.Linear`` of a module with the same distribution PyTorch uses by default (Kaiming-uniform
weights with ``a = √5``, i.e. U(−1/√fan_in, 1/√fan_in), and biases U(−1/√fan_in, 1/√fan_in)),
from the generator it is given.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn


@torch.no_grad()
def init_linear_(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-initialise every ``nn.Linear`` in ``module`` from ``generator``; returns ``module``.

    >>> g = lambda: torch.Generator().manual_seed(0)
    >>> a, b = init_linear_(nn.Linear(3, 2), g()), init_linear_(nn.Linear(3, 2), g())
    >>> torch.equal(a.weight, b.weight), float(a.weight.detach().abs().max()) <= 1 / math.sqrt(3)
    (True, True)
    """
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            bound = 1.0 / math.sqrt(layer.in_features)
            layer.weight.copy_(torch.rand(layer.weight.shape, generator=generator) * 2 * bound - bound)
            if layer.bias is not None:
                layer.bias.copy_(torch.rand(layer.bias.shape, generator=generator) * 2 * bound - bound)
    return module


def seeded(factory: Callable[[], nn.Module], generator: torch.Generator) -> nn.Module:
    """Build ``factory()`` and initialise its ``nn.Linear`` layers from ``generator``.

    ``nn.Linear``'s constructor draws from torch's global generator; the module is built on the
    meta device (no values, no draws) and materialised empty on the CPU before
    :func:`init_linear_` fills it, so the global state is never touched. Only ``nn.Linear`` layers
    are initialised: a factory with other parametrised layers must initialise them itself.

    >>> before = torch.get_rng_state()
    >>> m = seeded(lambda: nn.Linear(4, 2), torch.Generator().manual_seed(0))
    >>> torch.equal(before, torch.get_rng_state()), m.weight.device.type
    (True, 'cpu')
    """
    with torch.device("meta"):
        module = factory()
    others = [type(m).__name__ for m in module.modules()
              if not isinstance(m, nn.Linear) and any(True for _ in m.parameters(recurse=False))]
    if others:
        raise TypeError(f"seeded() initialises nn.Linear layers only; also found {', '.join(sorted(set(others)))}")
    return init_linear_(module.to_empty(device="cpu"), generator)
