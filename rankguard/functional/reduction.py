"""The one reducing helper behind every ``reduction`` argument in :mod:`rankguard.functional`.

The vocabulary is :data:`rankguard._validation.REDUCTIONS` = ``('none', 'mean', 'sum')``, as in
``torch.nn.functional``. All-pairs losses never hold the per-pair matrix; they hand over per-row
*sums* of ``terms`` pair values each, and ``'none'`` then means the per-row means.
"""

from __future__ import annotations

import torch

from rankguard._validation import REDUCTIONS, check_reduction

__all__ = ["REDUCTIONS", "reduce_loss"]


def reduce_loss(values: torch.Tensor, reduction: str, terms: int = 1,
                count: int | torch.Tensor | None = None) -> torch.Tensor:
    """Reduce per-element losses, each of which may be a sum of ``terms`` pair values.

    With ``N = count`` (default ``values.numel() · terms``, the number of terms)::

        'none'  values / terms        (same shape as values: per-element means)
        'sum'   Σ values
        'mean'  Σ values / N

    so ``'mean'`` is the mean over all terms, and with ``terms = 1`` and no ``count`` this is
    ``torch.nn.functional``'s rule. ``count`` overrides ``N`` where some elements are structural
    zeros left out of the mean (rows without pairs); it is clamped to at least 1, so a mean over
    nothing is 0.

    Args:
        values: any-shape floating tensor.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        terms: positive int, how many terms each element sums.
        count: number of terms the mean divides by (int or 0-d tensor).

    Example:
        >>> rows = torch.tensor([3.0, 1.0])     # two row sums of 2 terms each
        >>> reduce_loss(rows, "none", terms=2), reduce_loss(rows, "mean", terms=2), reduce_loss(rows, "sum")
        (tensor([1.5000, 0.5000]), tensor(1.), tensor(4.))
    """
    check_reduction(reduction)
    if reduction == "none":
        return values / terms if terms != 1 else values
    total = values.sum()
    if reduction == "sum":
        return total
    if count is None:
        count = values.numel() * terms
    if isinstance(count, torch.Tensor):
        return total / count.clamp_min(1).to(total.dtype)
    return total / max(count, 1)
