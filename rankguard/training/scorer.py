"""The objective of a scorer trained on in-memory tensors (binary ranking / classification recipes).

``ScorerObjective(features, labels, loss_fn, batch_sampler)``: each epoch's batches come from the
sampler (its own seeded generator); a batch ``idx`` gives ``s = model(features[idx])`` squeezed to
``[B]`` and ``loss = loss_fn(s, labels[idx], idx)``. ``idx`` is the rows' dataset index, which is
what per-sample stateful losses (``APLoss(num_samples=N)``) key their state on; a ``loss_fn``
that is an ``nn.Module`` has its state (buffers) saved in the engine's checkpoints.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch import nn

from rankguard.training.batching import LossFn, PositiveShareBatchSampler, ignore_index
from rankguard.training.engine import FitSettings, fit
from rankguard.training.objective import OptimizerSpec


class ScorerObjective:
    """Batches of dataset indices -> ``loss_fn(model(features[idx]), labels[idx], idx)``.

    Shapes: ``features [N, d]``, ``labels [N]`` (float 0/1, as the losses take them);
    ``model`` maps ``[B, d]`` to ``[B]`` or ``[B, 1]`` scores.
    """

    def __init__(self, features: torch.Tensor, labels: torch.Tensor, loss_fn: LossFn,
                 batch_sampler: Iterable[torch.Tensor]):
        if features.dim() != 2:
            raise ValueError(f"`features` must be 2-D [N, d], got shape {tuple(features.shape)}")
        if labels.dim() != 1 or labels.shape[0] != features.shape[0]:
            raise ValueError(f"`labels` must be 1-D with N = {features.shape[0]} entries (one per row of "
                             f"`features`), got shape {tuple(labels.shape)}")
        self.features, self.labels, self.loss_fn, self.sampler = features, labels, loss_fn, batch_sampler

    def batches(self, epoch: int) -> Iterable[torch.Tensor]:
        return iter(self.sampler)

    def loss(self, model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
        scores = model(self.features[idx])
        if scores.dim() == 2 and scores.shape[1] == 1:
            scores = scores[:, 0]
        return self.loss_fn(scores, self.labels[idx], idx)

    def state_dict(self) -> dict[str, Any]:
        return self.loss_fn.state_dict() if isinstance(self.loss_fn, nn.Module) else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if isinstance(self.loss_fn, nn.Module):
            self.loss_fn.load_state_dict(state)


def train_scorer(model: nn.Module, loss_fn: LossFn, features: torch.Tensor, labels: torch.Tensor, *,
                 optimizer: OptimizerSpec, batch_sampler: PositiveShareBatchSampler, epochs: int,
                 desc: str = "train", validate: Callable[[nn.Module], dict[str, float]] | None = None,
                 select_metric: str | None = None) -> list[float]:
    """Thin recipe: :class:`ScorerObjective` under :func:`rankguard.training.fit`; per-epoch mean losses.

    A non-finite loss raises :class:`~rankguard.training.TrainingDiverged` naming the epoch and step.

    >>> X = torch.randn(40, 3, generator=torch.Generator().manual_seed(0)); y = (X[:, 0] > 0).float()
    >>> m = nn.Linear(3, 1)
    >>> import torch.nn.functional as F
    >>> hist = train_scorer(m, ignore_index(F.binary_cross_entropy_with_logits), X, y,
    ...                     optimizer=OptimizerSpec(m.parameters(), "sgd", lr=0.1),
    ...                     batch_sampler=PositiveShareBatchSampler(y, 8, 4), epochs=5)
    >>> len(hist), hist[-1] < hist[0]
    (5, True)
    """
    objective = ScorerObjective(features, labels, loss_fn, batch_sampler)
    result = fit(model, objective, FitSettings(epochs=epochs, desc=desc, select_metric=select_metric),
                 optimizers={"model": optimizer}, validate=validate, log=None)
    return [r["loss"] for r in result.history]
