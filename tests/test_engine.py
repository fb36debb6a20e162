"""The training engine: optimizers, hooks, selection, divergence, checkpoint and exact resume."""

from __future__ import annotations

import os
import random
import signal

import numpy as np
import pytest
import torch
from torch import nn

from rankguard.losses import APLoss
from rankguard.training import (
    CheckpointError,
    FitSettings,
    Generators,
    OptimizerSpec,
    PositiveShareBatchSampler,
    RunInterrupted,
    ScorerObjective,
    TrainingDiverged,
    fit,
    seeded,
    load_checkpoint,
)


class Quadratic(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(5.0, dtype=torch.float64))


class TwoPlayer:
    """loss = (w − 1)² − (a − 2)²: the model minimises (w → 1), the adversary maximises (a → 2)."""

    def __init__(self):
        self.a = nn.Parameter(torch.tensor(-3.0, dtype=torch.float64))
        self.steps_seen = 0

    def batches(self, epoch):
        return range(4)

    def loss(self, model, batch):
        return (model.w - 1) ** 2 - (self.a - 2) ** 2, {"a": float(self.a.detach())}

    def parameter_groups(self, model):
        return {"model": OptimizerSpec([model.w], "sgd", lr=0.1),
                "adversary": OptimizerSpec([self.a], "sgd", lr=0.1, maximize=True,
                                           active=lambda epoch, step: step % 2 == 0)}

    def after_step(self, model, step):
        self.steps_seen += 1


def test_several_optimizers_minimise_and_maximise_on_their_own_schedules():
    model, obj = Quadratic(), TwoPlayer()
    result = fit(model, obj, FitSettings(epochs=40), log=None)
    assert abs(model.w.item() - 1) < 1e-6 and abs(obj.a.item() - 2) < 1e-6
    assert obj.steps_seen == 160
    # the adversary stepped on even steps only: 2 of 4 per epoch; the logged value is the epoch mean
    assert result.history[0]["a"] == pytest.approx(np.mean([-3.0, -2.0, -2.0, -1.2]))


def test_hooks_run_after_each_step_and_at_epoch_end_in_order():
    calls = []

    class Hook:
        def after_step(self, model, step):
            calls.append(("step", step))

        def on_epoch_end(self, model, epoch):
            calls.append(("epoch", epoch))

    class Obj:
        def batches(self, epoch):
            return range(2)

        def loss(self, model, b):
            return (model.w ** 2)

        def on_epoch_end(self, model, epoch):
            calls.append(("objective-epoch", epoch))

    model = Quadratic()
    fit(model, Obj(), FitSettings(epochs=2), optimizers={"m": OptimizerSpec(model.parameters(), "sgd", lr=0.1)},
        hooks=[Hook()], log=None)
    assert calls == [("step", 0), ("step", 1), ("objective-epoch", 1), ("epoch", 1),
                     ("step", 0), ("step", 1), ("objective-epoch", 2), ("epoch", 2)]


def test_selection_keeps_the_best_state_and_patience_stops():
    model = Quadratic()
    scores = iter([0.1, 0.5, 0.4, 0.3, 0.2, 0.9])

    class Obj:
        def batches(self, epoch):
            return range(1)

        def loss(self, model, b):
            return model.w ** 2

    weights = []
    result = fit(model, Obj(), FitSettings(epochs=6, patience=3, select_metric="m"),
                 optimizers={"m": OptimizerSpec(model.parameters(), "sgd", lr=0.1)},
                 validate=lambda m: (weights.append(float(m.w)), {"m": next(scores)})[1], log=None)
    assert (result.best_epoch, result.epochs_run, result.stopped_early) == (2, 5, True)
    assert model.w.item() == weights[1]  # the model holds epoch 2's state


@pytest.mark.parametrize("mode", ["max", "min"])
def test_min_delta_small_gains_do_not_reset_patience_but_the_best_state_is_kept(mode, tmp_path):
    """Gains of at most min_delta over the last counted one keep counting towards patience; the kept
    state is still the best (any strict gain); the patience mark survives a resume."""
    sign = 1.0 if mode == "max" else -1.0
    values = [sign * v for v in (0.50, 0.505, 0.509, 0.52, 0.529, 0.535, 0.536, 0.537, 0.538, 0.9)]

    class Obj:
        def batches(self, epoch):
            return range(1)

        def loss(self, model, b):
            return model.w ** 2

    class StopIn6:
        def after_step(self, model, step):
            if self.epoch == 6:
                raise KeyboardInterrupt

        def on_epoch_end(self, model, epoch):
            self.epoch = epoch + 1
        epoch = 1

    def run(epochs, resume=False, done=0, hooks=()):
        model = Quadratic()
        calls = [done]                       # validation after epoch e reads values[e - 1]

        def validate(m):
            calls[0] += 1
            return {"m": values[calls[0] - 1]}

        result = fit(model, Obj(), FitSettings(epochs=epochs, patience=3, min_delta=0.01, select_metric="m",
                                               mode=mode),
                     optimizers={"m": OptimizerSpec(model.parameters(), "sgd", lr=0.1)},
                     validate=validate, checkpoint=tmp_path / "ckpt.pt", resume=resume, hooks=list(hooks),
                     log=None)
        return result

    # 0.505, 0.509: within 0.01 of 0.50 (bad 1, 2); 0.52 counts (mark 0.52); 0.529 a small gain (bad 1, but the
    # best state); 0.535 counts against the mark 0.52 (not against the best 0.529); 0.536, 0.537, 0.538 small
    # gains (bad 1, 2, 3): stop at epoch 9 with the best state of epoch 9
    result = run(10)
    assert (result.best_epoch, result.epochs_run, result.stopped_early) == (9, 9, True)
    (tmp_path / "ckpt.pt").unlink()
    with pytest.raises(RunInterrupted, match="holds epoch 5"):   # killed in epoch 6, resumed from epoch 5
        run(10, hooks=[StopIn6()])
    resumed = run(10, resume=True, done=5)
    assert (resumed.best_epoch, resumed.epochs_run, resumed.stopped_early) == (9, 9, True)
    with pytest.raises(ValueError, match="min_delta"):
        FitSettings(epochs=1, min_delta=-0.1)


def test_non_finite_loss_and_parameters_raise_naming_epoch_step_and_hint():
    class Obj:
        def __init__(self, at):
            self.at = at

        def batches(self, epoch):
            return range(3)

        def loss(self, model, b):
            return model.w * (float("nan") if b == self.at else 1.0)

    model = Quadratic()
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 3: the loss became nan; lower the learning rate \(--lr 9\)"):
        fit(model, Obj(2), FitSettings(epochs=1, divergence_hint="lower the learning rate (--lr 9)"),
            optimizers={"m": OptimizerSpec(model.parameters(), "sgd", lr=1.0)}, log=None)
    class OneStep(Obj):
        def batches(self, epoch):
            return range(1)

    model = Quadratic()
    with pytest.raises(TrainingDiverged, match="in epoch 1: a parameter became NaN or inf"):
        fit(model, OneStep(-1), FitSettings(epochs=1),
            optimizers={"m": OptimizerSpec(model.parameters(), "sgd", lr=float("inf"))}, log=None)


def _scorer_run(seed=0):
    """A scorer trained with the stateful APLoss on class-balanced batches: every state kind at once."""
    gens = Generators(seed)
    x = torch.randn(120, 5, generator=torch.Generator().manual_seed(99))
    y = (x[:, 0] + 0.3 * x[:, 1] > 0.6).float()
    model = seeded(lambda: nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 1)), gens.torch)
    loss = APLoss(num_samples=120)
    sampler = PositiveShareBatchSampler(y, 16, 4, generator=gens.torch)
    objective = ScorerObjective(x, y, loss, sampler)
    opts = {"model": OptimizerSpec(model.parameters(), "adam", lr=0.01)}

    def validate(m):
        return {"score": float(m(x)[:, 0].double().sum())}
    return model, objective, opts, validate, gens, loss


def test_resume_after_an_interrupt_ends_bit_for_bit_like_an_uninterrupted_run(tmp_path):
    settings = FitSettings(epochs=6, eval_every=2, select_metric="score")
    model, obj, opts, val, gens, loss = _scorer_run()
    full = fit(model, obj, settings, optimizers=opts, validate=val, generators=gens, log=None)
    want = {k: v.clone() for k, v in model.state_dict().items()}
    want_loss_state = {k: v.clone() for k, v in loss.state_dict().items()}

    class StopIn4:
        def after_step(self, model, step):
            if self.epoch == 4 and step == 1:
                raise KeyboardInterrupt

        def on_epoch_end(self, model, epoch):
            self.epoch = epoch + 1
        epoch = 1

    ckpt = tmp_path / "checkpoint.pt"
    model, obj, opts, val, gens, loss = _scorer_run()
    with pytest.raises(RunInterrupted, match=f"Ctrl-C during epoch 4; {ckpt} holds epoch 3"):
        fit(model, obj, settings, optimizers=opts, validate=val, generators=gens, checkpoint=ckpt,
            hooks=[StopIn4()], log=None)
    assert load_checkpoint(ckpt)["epoch"] == 3
    model, obj, opts, val, gens, loss = _scorer_run()  # a fresh process: everything rebuilt from the seed
    resumed = fit(model, obj, settings, optimizers=opts, validate=val, generators=gens, checkpoint=ckpt,
                  resume=True, log=None)
    assert resumed.resumed_from == 4
    for k, v in model.state_dict().items():
        assert torch.equal(v, want[k]), k
    for k, v in loss.state_dict().items():
        assert torch.equal(v, want_loss_state[k]), k
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(resumed.history) == strip(full.history)
    assert (resumed.best_epoch, resumed.best_metrics) == (full.best_epoch, full.best_metrics)
    # resuming a finished run trains nothing more and returns the same selection
    model, obj, opts, val, gens, loss = _scorer_run()
    again = fit(model, obj, settings, optimizers=opts, validate=val, generators=gens, checkpoint=ckpt,
                resume=True, log=None)
    assert again.best_epoch == full.best_epoch and all(torch.equal(v, want[k]) for k, v in model.state_dict().items())


def test_sigterm_becomes_a_one_line_interrupt_and_keeps_the_checkpoint(tmp_path):
    class Term:
        def on_epoch_end(self, model, epoch):
            if epoch == 2:
                os.kill(os.getpid(), signal.SIGTERM)

    model, obj, opts, val, gens, _ = _scorer_run()
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(RunInterrupted, match="SIGTERM during epoch 2; .* holds epoch 1"):
        fit(model, obj, FitSettings(epochs=4), optimizers=opts, generators=gens,
            checkpoint=tmp_path / "c.pt", hooks=[Term()], log=None)
    assert signal.getsignal(signal.SIGTERM) is before  # the engine's handler is removed again
    assert load_checkpoint(tmp_path / "c.pt")["epoch"] == 1


def test_corrupt_or_foreign_checkpoint_is_named(tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"not a checkpoint")
    model, obj, opts, val, gens, _ = _scorer_run()
    with pytest.raises(CheckpointError, match=f"{bad}: unreadable checkpoint"):
        fit(model, obj, FitSettings(epochs=1), optimizers=opts, checkpoint=bad, resume=True, log=None)
    torch.save({"format": 1}, bad)
    with pytest.raises(CheckpointError, match="not a rankguard checkpoint"):
        load_checkpoint(bad)


def test_training_touches_no_global_random_state():
    torch_state, np_state, py_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    model, obj, opts, val, gens, _ = _scorer_run()
    fit(model, obj, FitSettings(epochs=2), optimizers=opts, generators=gens, log=None)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), np_state))
    assert random.getstate() == py_state


def test_settings_refuse_bad_values():
    with pytest.raises(ValueError, match="patience"):
        FitSettings(epochs=1, patience=-1)
    with pytest.raises(ValueError, match="epochs"):
        FitSettings(epochs=0)
    with pytest.raises(ValueError, match="no parameters"):
        fit(Quadratic(), TwoPlayer(), FitSettings(epochs=1), optimizers={"x": OptimizerSpec([])}, log=None)
