"""The training engine every recipe plugs into (see :mod:`rankguard.training.engine`).

- :func:`fit`, :class:`FitSettings`, :class:`FitResult` — the loop: steps, hooks, validation,
  selection, early stopping, checkpoint after every epoch, exact resume.
- :class:`OptimizerSpec`, :data:`OPTIMIZERS` — several optimizers / parameter groups per run.
- :class:`Objective` — the protocol an objective follows (``batches``, ``loss``, optional hooks/state).
- :class:`Generators` — every random source of a run, saved in checkpoints.
- :class:`PositiveShareBatchSampler` — class-balanced batches of dataset indices.
- :func:`init_linear_` — seeded initialisation of ``nn.Linear`` layers (no global RNG).
"""

from rankguard.training.batching import PositiveShareBatchSampler
from rankguard.training.engine import (
    CheckpointError,
    FitResult,
    FitSettings,
    RunInterrupted,
    TrainingDiverged,
    fit,
    fit_in_run,
    load_checkpoint,
)
from rankguard.training.init import init_linear_, seeded
from rankguard.training.objective import OPTIMIZERS, Objective, OptimizerSpec
from rankguard.training.randomness import Generators
from rankguard.training.scorer import ScorerObjective, train_scorer
from rankguard.training.batching import LossFn, ignore_index

__all__ = ["fit", "fit_in_run", "FitSettings", "FitResult", "OptimizerSpec", "OPTIMIZERS", "Objective", "Generators",
           "PositiveShareBatchSampler", "TrainingDiverged", "RunInterrupted", "CheckpointError",
           "load_checkpoint", "init_linear_", "seeded", "ScorerObjective", "train_scorer", "ignore_index", "LossFn"]
