"""What a recipe hands the engine: an objective, optimizer specs and hooks.

An **objective** knows how to cut an epoch into batches and turn a batch into a loss; the engine
(:func:`rankguard.training.fit`) knows nothing else about the method. The protocol::

    class MyObjective:
        def batches(self, epoch: int) -> Iterable[Any]: ...            # one epoch, from the
                                                                       # objective's own seeded generator
        def loss(self, model, batch) -> Tensor | tuple[Tensor, dict[str, float]]: ...
        # optional
        def parameter_groups(self, model) -> dict[str, OptimizerSpec]: ...   # default: one "model" group
        def after_step(self, model, step: int) -> None: ...            # projections, norm constraints
        def on_epoch_end(self, model, epoch: int) -> None: ...         # memory swaps, schedules
        def state_dict(self) -> dict: ...                              # per-sample state, memories
        def load_state_dict(self, state: dict) -> None: ...

The logged values dict is averaged over the epoch's steps and stored in the history beside the
loss. State that must survive a resume (moving averages keyed by dataset index, memories of the
previous epoch, a learnable margin) lives in ``state_dict``; random draws come from generators the
objective received at construction (tracked by :class:`rankguard.training.Generators`).

Fitting other kinds of method:

* *several optimizers*: ``parameter_groups`` returns one :class:`OptimizerSpec` per group — the
  model, a loss's learnable margin with its own learning rate, an adversary trained to maximise
  (``maximize=True``), each optionally stepping on its own schedule (``active``);
* *an attack's inner loop*: runs inside ``loss`` (with stateful losses frozen while it probes);
* *several processes*: ``batches`` yields the shard of this rank; state keyed by dataset index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol, runtime_checkable

import torch

from rankguard.registry import Registry

#: optimizer classes by name (``--optimizer`` choices)
OPTIMIZERS: Registry[type[torch.optim.Optimizer]] = Registry("optimizer")
OPTIMIZERS.register("adagrad", torch.optim.Adagrad)
OPTIMIZERS.register("adam", torch.optim.Adam)
OPTIMIZERS.register("adamw", torch.optim.AdamW)
OPTIMIZERS.register("sgd", torch.optim.SGD)


@dataclass
class OptimizerSpec:
    """One parameter group and how to optimise it.

    ``active(epoch, step) -> bool`` (default: always) says whether this optimizer steps after a
    given step — e.g. an adversary updated every k-th step or only in some epochs.
    ``maximize=True`` makes it ascend the loss (an adversary). ``options`` go to the optimizer
    class (``momentum``, ``betas`` …).
    """

    params: Iterable[torch.nn.Parameter]
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    maximize: bool = False
    active: Callable[[int, int], bool] | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def build(self, name: str) -> torch.optim.Optimizer:
        params = [p for p in self.params]
        if not params:
            raise ValueError(f"optimizer group {name!r} has no parameters")
        if not (self.lr > 0):
            raise ValueError(f"optimizer group {name!r}: learning rate must be > 0, got {self.lr}")
        cls = OPTIMIZERS.get(self.optimizer)
        options = dict(self.options)
        if "fused" not in options and "foreach" not in options and _fusable(params):
            options["fused"] = True
        return cls(params, lr=self.lr, weight_decay=self.weight_decay, maximize=self.maximize, **options)


def _fusable(params: list[torch.Tensor]) -> bool:
    """Every parameter dense, floating point, on one CPU or CUDA device (what ``fused=True`` accepts)."""
    devices = {p.device for p in params}
    return (len(devices) == 1 and next(iter(devices)).type in ("cpu", "cuda")
            and all(p.is_floating_point() and p.layout == torch.strided for p in params))


@runtime_checkable
class Objective(Protocol):
    """The two methods every objective has (see the module docstring for the optional ones)."""

    def batches(self, epoch: int) -> Iterable[Any]: ...

    def loss(self, model: torch.nn.Module, batch: Any) -> Any: ...
