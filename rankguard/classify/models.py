"""Classifiers by name (:data:`MODELS`), built from a seeded generator (never the global RNG).

``mlp``: the paper's feed-forward network for tabular data (Zhu, Ying, Yang, ICML 2023, §6: an FFNN
trained 100 epochs with SGD, momentum 0.9, batch 64). The width is not stated in REFERENCES.md §7;
two hidden ReLU layers of 128 units is our choice (documented in config.json as ``hidden``).

``cnn``: a small convolutional network for CIFAR-10-shaped images, a CPU-sized stand-in for the
paper's ResNet (which this project's CPU budget cannot train): per width in ``hidden`` (default
32, 64, 128 channels) one block ``Conv3x3 (padding 1) -> BatchNorm -> ReLU -> MaxPool 2x2``, then
global average pooling and one ``Linear`` to the logits (about 94k parameters; 32x32 inputs end
at 4x4 before pooling). The engine feeds flat rows ``[B, C*H*W]`` (see
:class:`~rankguard.training.ScorerObjective`); the network views them as ``[B, 3, H, H]``.
:func:`default_model` picks it for inputs of shape ``[3, 32, 32]``, the MLP otherwise.
"""

from __future__ import annotations

import inspect
import math
from typing import Callable, Sequence

import torch
from torch import nn

from rankguard.registry import Registry
from rankguard.training import seeded
from rankguard.training.init import init_linear_

MODELS: Registry[Callable[..., nn.Module]] = Registry("classifier")

#: the input shape (C, H, W) for which :func:`default_model` picks ``cnn``
CNN_INPUT = (3, 32, 32)


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


class SmallCNN(nn.Module):
    """The ``cnn`` model (module docstring): conv blocks, global average pooling, a linear head.

    >>> SmallCNN(3 * 32 * 32, 10, (8, 16))(torch.zeros(2, 3 * 32 * 32)).shape
    torch.Size([2, 10])
    """

    #: rows per forward pass when the trainer scores a whole set (validation, test, training)
    eval_batch = 1024

    def __init__(self, n_features: int, n_classes: int, hidden: Sequence[int] = (32, 64, 128), in_channels: int = 3):
        super().__init__()
        side = math.isqrt(n_features // in_channels) if n_features % in_channels == 0 else 0
        if side == 0 or in_channels * side * side != n_features:
            raise ValueError(f"the cnn model takes flat {in_channels}-channel square images (C*H*H features), "
                             f"got {n_features} features; use --model mlp for tabular data")
        if not hidden or side < 2 ** len(hidden):
            raise ValueError(f"the cnn model needs 1 to log2({side}) = {int(math.log2(side))} conv widths "
                             f"(--hidden), got {list(hidden)}")
        self.in_shape = (in_channels, side, side)
        blocks: list[nn.Module] = []
        width = in_channels
        for h in hidden:
            blocks += [nn.Conv2d(width, int(h), 3, padding=1, bias=False), nn.BatchNorm2d(int(h)), nn.ReLU(),
                       nn.MaxPool2d(2)]
            width = int(h)
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.features(x.reshape(x.shape[0], *self.in_shape))
        return self.head(z.mean(dim=(2, 3)))


@torch.no_grad()
def _seeded_cnn(factory: Callable[[], nn.Module], generator: torch.Generator) -> nn.Module:
    """Build ``factory()`` on the meta device and initialise it from ``generator`` only: ``Conv2d`` and
    ``Linear`` weights with PyTorch's default U(−1/√fan_in, 1/√fan_in), BatchNorm at weight 1, bias 0
    and fresh running statistics (no draws)."""
    with torch.device("meta"):
        module = factory()
    module = module.to_empty(device="cpu")
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            fan_in = layer.in_channels // layer.groups * math.prod(layer.kernel_size)
            bound = 1.0 / math.sqrt(fan_in)
            layer.weight.copy_(torch.rand(layer.weight.shape, generator=generator) * 2 * bound - bound)
            if layer.bias is not None:
                layer.bias.copy_(torch.rand(layer.bias.shape, generator=generator) * 2 * bound - bound)
        elif isinstance(layer, nn.BatchNorm2d):
            layer.reset_parameters()
    return init_linear_(module, generator)


MODELS.register("cnn", SmallCNN)

#: models whose layers :func:`build_model` initialises beyond ``nn.Linear``
_SELF_INIT = {"cnn": _seeded_cnn}


def default_model(input_shape: Sequence[int] | None) -> str:
    """``cnn`` for inputs of shape :data:`CNN_INPUT` ``[3, 32, 32]``, ``mlp`` otherwise.

    >>> default_model((3, 32, 32)), default_model(None), default_model((784,))
    ('cnn', 'mlp', 'mlp')
    """
    return "cnn" if input_shape is not None and tuple(input_shape) == CNN_INPUT else "mlp"


def default_hidden(name: str) -> list[int]:
    """The ``hidden`` default of model ``name``'s factory (MLP widths, or the CNN's conv channels).

    >>> default_hidden("mlp"), default_hidden("cnn")
    ([128, 128], [32, 64, 128])
    """
    return [int(h) for h in inspect.signature(MODELS.get(name)).parameters["hidden"].default]


def build_model(name: str, n_features: int, n_classes: int, generator: torch.Generator,
                hidden: Sequence[int] = (128, 128)) -> nn.Module:
    """The registered model ``name``, its layers initialised from ``generator``.

    >>> a = build_model("mlp", 4, 3, torch.Generator().manual_seed(0), (5,))
    >>> b = build_model("mlp", 4, 3, torch.Generator().manual_seed(0), (5,))
    >>> all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    True
    """
    factory = MODELS.get(name)
    return _SELF_INIT.get(name, seeded)(lambda: factory(n_features, n_classes, tuple(hidden)), generator)
