"""Batches of dataset indices for in-memory scorers, and the loss contract they feed.

- :class:`PositiveShareBatchSampler` -- batches of dataset indices with a guaranteed number of
  positives per batch, so pairwise (AUC) and listwise (AP) losses always see both classes.
- :func:`ignore_index` -- adapts a ``loss(scores, labels)`` to the ``(scores, labels, index)`` contract.

The loss contract is the one used across :mod:`rankguard.losses`: a callable taking
``(scores [B], labels [B], index [B] long)`` and returning a scalar tensor. ``index`` holds the
rows' positions in the training tensors; stateful losses such as SOAP's ``APLoss`` key their
per-sample moving averages on it, stateless ones ignore it (see :func:`ignore_index`).
"""

from __future__ import annotations

import math
from typing import Callable, Iterator

import torch
from rankguard._validation import binary_labels_tensor

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _cyclic_blocks(perm: torch.Tensor, n_blocks: int, block: int) -> torch.Tensor:
    """Rows ``b`` = ``perm[(b*block + 0..block-1) mod len(perm)]``: shape ``[n_blocks, block]``.

    Walking one permutation cyclically gives every element an equal share (up to one) across
    the blocks, and since ``block <= len(perm)`` no element appears twice in a row.
    """
    pos = torch.arange(n_blocks).unsqueeze(1) * block + torch.arange(block).unsqueeze(0)
    return perm[pos % perm.numel()]


class PositiveShareBatchSampler:
    """Batches of indices holding ``positives_per_batch`` positives and the rest negatives.

    One epoch passes once over a fresh permutation of the negatives,
    ``n_batches = ceil(n_neg / (batch_size - positives_per_batch))``; positives are drawn from a
    fresh permutation of the positives, walked cyclically (rare positives are revisited within
    an epoch; no index repeats inside a batch). The last batch tops up its negatives from the
    start of the permutation, so every batch has exactly the same size and class share.
    If a class has fewer members than its share, the share is lowered to the class size
    (the batch gets smaller rather than holding duplicates, which would bias per-sample state).

    Shapes: ``labels`` ``[N]`` binary; each yielded batch is a ``LongTensor [B]`` with the
    positives first. Pass it as ``batch_sampler=`` to a ``DataLoader`` or index tensors directly.

    This is the Adversarial-AP recipe (batches of 128 with 64 positives), sized down for small data.

    >>> y = torch.tensor([1, 0, 0, 0, 0, 0, 1, 0])
    >>> s = PositiveShareBatchSampler(y, batch_size=4, positives_per_batch=1,
    ...                               generator=torch.Generator().manual_seed(0))
    >>> len(s), [int(y[b].sum()) for b in s]
    (2, [1, 1])
    """

    def __init__(self, labels: torch.Tensor, batch_size: int = 64, positives_per_batch: int = 32,
                 generator: torch.Generator | None = None):
        y = binary_labels_tensor(labels, "labels")
        if not isinstance(batch_size, int) or batch_size < 2:
            raise ValueError(f"`batch_size` must be an integer >= 2, got {batch_size!r}")
        if not isinstance(positives_per_batch, int) or not 1 <= positives_per_batch < batch_size:
            raise ValueError(f"`positives_per_batch` must be an integer in [1, batch_size - 1] = "
                             f"[1, {batch_size - 1}], got {positives_per_batch!r}")
        self.positives = torch.nonzero(y).flatten()
        self.negatives = torch.nonzero(~y).flatten()
        if self.positives.numel() == 0 or self.negatives.numel() == 0:
            raise ValueError(f"`labels` must contain both classes; got {self.positives.numel()} "
                             f"positive(s) and {self.negatives.numel()} negative(s)")
        self.n_pos = min(positives_per_batch, self.positives.numel())
        self.n_neg = min(batch_size - positives_per_batch, self.negatives.numel())
        self.generator = generator

    def __len__(self) -> int:
        return math.ceil(self.negatives.numel() / self.n_neg)

    def epoch(self) -> torch.Tensor:
        """All batches of one epoch as a ``LongTensor [n_batches, n_pos + n_neg]``."""
        g = self.generator
        pos = self.positives[torch.randperm(self.positives.numel(), generator=g)]
        neg = self.negatives[torch.randperm(self.negatives.numel(), generator=g)]
        n = len(self)
        return torch.cat([_cyclic_blocks(pos, n, self.n_pos), _cyclic_blocks(neg, n, self.n_neg)], dim=1)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self.epoch().unbind(0))


def ignore_index(loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> LossFn:
    """Adapt a ``loss(scores, labels)`` to the engine's ``loss(scores, labels, index)`` contract.

    >>> import torch.nn.functional as F
    >>> bce = ignore_index(F.binary_cross_entropy_with_logits)
    >>> round(float(bce(torch.zeros(2), torch.tensor([0., 1.]), torch.arange(2))), 6)  # log 2
    0.693147
    """
    def wrapped(scores: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return loss(scores, labels)
    wrapped.__name__ = getattr(loss, "__name__", type(loss).__name__)
    return wrapped
