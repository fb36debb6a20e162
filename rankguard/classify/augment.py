"""Train-time image augmentation for ``rankguard classify train --augment`` (off by default).

:func:`random_crop_flip` is the standard CIFAR-10 recipe: pad each image by 4 pixels with zeros
(after per-channel normalisation a zero is the training mean), crop a random 32x32 window, and
flip it left-right with probability 1/2 — one offset pair and one coin per image, drawn from the
objective's generator (so a seed, and a resumed checkpoint, give the same crops), applied to the
whole batch at once by index arithmetic (no per-image loop). :class:`AugmentedObjective` applies
it to each training batch; validation, test and the suspected-label scores see the plain images.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from rankguard.training import ScorerObjective

#: zero padding on each side before the random crop (pixels)
PADDING = 4


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, padding: int = PADDING) -> torch.Tensor:
    """Random ``padding``-pixel-shifted crops and horizontal flips of a batch ``x [B, C, H, W]``.

    >>> x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    >>> y = random_crop_flip(x, torch.Generator().manual_seed(0), padding=1)
    >>> y.shape, random_crop_flip(x, torch.Generator().manual_seed(0), padding=0).flip(3).eq(x).any().item()
    (torch.Size([2, 1, 4, 4]), True)
    """
    if x.dim() != 4:
        raise ValueError(f"`x` must be [B, C, H, W], got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=generator)
    flip = torch.rand(b, generator=generator) < 0.5
    rows = dy[:, None] + torch.arange(h)                                   # [B, H]
    cols = dx[:, None] + torch.arange(w)                                   # [B, W]
    cols = torch.where(flip[:, None], cols.flip(1), cols)                  # a flip reverses the window
    bi = torch.arange(b)[:, None, None, None]
    ci = torch.arange(c)[None, :, None, None]
    return padded[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]


class AugmentedObjective(ScorerObjective):
    """:class:`~rankguard.training.ScorerObjective` whose training batches (flat rows of images of
    ``shape`` ``(C, H, W)``) go through :func:`random_crop_flip` with ``generator`` first."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor, loss_fn: nn.Module, batch_sampler,
                 shape: Sequence[int], generator: torch.Generator):
        super().__init__(features, labels, loss_fn, batch_sampler)
        self.shape, self.generator = tuple(int(s) for s in shape), generator

    def loss(self, model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
        x = random_crop_flip(self.features[idx].reshape(-1, *self.shape), self.generator)
        return self.loss_fn(model(x.reshape(x.shape[0], -1)), self.labels[idx], idx)
