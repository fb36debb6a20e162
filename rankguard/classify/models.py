"""Classifiers by name (:data:`MODELS`), built from a seeded generator (never the global RNG).

``mlp``: the paper's feed-forward network for tabular data (Zhu, Ying, Yang, ICML 2023, §6: an FFNN
trained 100 epochs with SGD, momentum 0.9, batch 64). The width is not stated in REFERENCES.md §7;
two hidden ReLU layers of 128 units is our choice (documented in config.json as ``hidden``).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from rankguard.registry import Registry
from rankguard.training import seeded

MODELS: Registry[Callable[..., nn.Module]] = Registry("classifier")


@MODELS.register("mlp")
def mlp(n_features: int, n_classes: int, hidden: Sequence[int] = (128, 128)) -> nn.Module:
    """``Linear -> ReLU`` per hidden width, then ``Linear`` to ``n_classes`` logits.

    >>> mlp(4, 3, hidden=(5,))(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """
    layers: list[nn.Module] = []
    width = n_features
    for h in hidden:
        layers += [nn.Linear(width, int(h)), nn.ReLU()]
        width = int(h)
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


def build_model(name: str, n_features: int, n_classes: int, generator: torch.Generator,
                hidden: Sequence[int] = (128, 128)) -> nn.Module:
    """The registered model ``name``, its layers initialised from ``generator``.

    >>> a = build_model("mlp", 4, 3, torch.Generator().manual_seed(0), (5,))
    >>> b = build_model("mlp", 4, 3, torch.Generator().manual_seed(0), (5,))
    >>> all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    True
    """
    factory = MODELS.get(name)
    return seeded(lambda: factory(n_features, n_classes, tuple(hidden)), generator)
