"""THE training loop: every recipe (recommendation, classification, rescoring, robust training) runs here.

``fit(model, objective, settings, ...)`` does, per epoch ``e = start .. settings.epochs``:

1. for each ``batch`` in ``objective.batches(e)``: ``loss, logs = objective.loss(model, batch)``;
   a non-finite loss raises :class:`TrainingDiverged` (never a silent NaN); zero every optimizer's
   gradients, ``loss.backward()``, step each optimizer whose spec is active at ``(e, step)``;
   call ``objective.after_step`` and every hook's ``after_step`` (projections, norm constraints);
2. ``objective.on_epoch_end(model, e)`` and the hooks' ``on_epoch_end`` (memory swaps, schedules);
3. every ``eval_every`` epochs (and at the last): ``metrics = validate(model)``; the state with the
   best ``select_metric`` is kept (strict improvement; the first evaluation always counts);
   ``patience`` evaluations without an improvement of more than ``min_delta`` (over the value at
   the last such improvement) stop the run (0 = never);
4. a checkpoint, written atomically, holding everything needed to continue: model, optimizers,
   objective state, every random generator, epoch, best state, history, patience counter.

``resume=True`` with an existing checkpoint continues after its epoch and — since model,
optimizer, objective and generator states are restored exactly — ends in the same state, bit for
bit, as a run that was never interrupted. A run killed before its first checkpoint starts again
from epoch 1. Ctrl-C and SIGTERM raise :class:`RunInterrupted` (one line: which checkpoint was
kept and how to resume); the last complete checkpoint stays on disk.

Time per epoch counts the training steps and end-of-epoch hooks only (not validation).
"""

from __future__ import annotations

import copy
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

import torch
from torch import nn

from rankguard.progress import progress
from rankguard.runs import atomic_write
from rankguard.training.objective import OptimizerSpec
from rankguard.training.randomness import Generators

CHECKPOINT_FORMAT = 2


class TrainingDiverged(FloatingPointError):
    """The loss or the parameters became NaN/inf; the message names the epoch, step and a likely cause."""


class RunInterrupted(Exception):
    """Ctrl-C or SIGTERM stopped training; the last complete checkpoint is kept."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the run."""


class Hook(Protocol):
    """Optional callbacks: any subset of ``after_step(model, step)`` and ``on_epoch_end(model, epoch)``."""


@dataclass
class FitSettings:
    """Loop settings. ``patience`` counts evaluations (not epochs); 0 disables early stopping.
    ``min_delta`` (>= 0, in the metric's units) is the gain that resets the patience count: with
    ``min_delta = 1e-4`` a validation AUC creeping up by less than 0.01 points per ``patience``
    evaluations ends the run. The kept state is still the best one (any strict gain).

    ``select_metric=None`` keeps the last state (no selection). ``divergence_hint`` ends the
    divergence message (a recipe names its own flags, e.g. ``"lower the learning rate (--lr 0.05)"``).
    """

    epochs: int
    eval_every: int = 1
    patience: int = 0
    min_delta: float = 0.0
    select_metric: str | None = None
    mode: str = "max"
    desc: str = "train"
    divergence_hint: str = "lower the learning rate"

    def __post_init__(self) -> None:
        for name in ("epochs", "eval_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}")
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 0:
            raise ValueError(f"`patience` must be an integer >= 0 (0 = never stop early), got {self.patience!r}")
        if isinstance(self.min_delta, bool) or not isinstance(self.min_delta, (int, float)) \
                or not math.isfinite(self.min_delta) or self.min_delta < 0:
            raise ValueError(f"`min_delta` must be a finite number >= 0, got {self.min_delta!r}")
        if self.mode not in ("max", "min"):
            raise ValueError(f"`mode` must be 'max' or 'min', got {self.mode!r}")


@dataclass
class FitResult:
    """What :func:`fit` returns; the model passed in holds the best (or last) state afterwards."""

    best_epoch: int
    best_value: float
    best_metrics: dict[str, float]
    history: list[dict[str, Any]]
    epochs_run: int
    epoch_seconds: float
    stopped_early: bool
    resumed_from: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _call(obj: Any, name: str, *args: Any) -> None:
    fn = getattr(obj, name, None)
    if fn is not None:
        fn(*args)


def _finite_params(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def _diverged(model: nn.Module, exc: BaseException) -> bool:
    """Whether an error raised inside a loss means the model diverged rather than bad input: the
    parameters are no longer finite, or the loss saw non-finite / overflowing scores (which names a
    tensor argument the user never wrote, so the engine restates it as divergence)."""
    return (not _finite_params(model) or isinstance(exc, (OverflowError, FloatingPointError))
            or "non-finite" in str(exc))


def _improves(value: float, best: float, mode: str) -> bool:
    if math.isnan(value):
        return False
    return value > best if mode == "max" else value < best


class _SignalsToInterrupt:
    """While active (main thread only), SIGTERM raises KeyboardInterrupt like Ctrl-C does."""

    def __enter__(self) -> "_SignalsToInterrupt":
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            def handler(signum: int, frame: Any) -> None:
                raise KeyboardInterrupt("SIGTERM")
            self.previous = signal.signal(signal.SIGTERM, handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`fit`; an unreadable file raises :class:`CheckpointError`."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # a truncated or foreign file: say which file, not a pickle traceback
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:160] if str(exc) else 'no detail'})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a rankguard checkpoint of format {CHECKPOINT_FORMAT}")
    return state


def fit(model: nn.Module, objective: Any, settings: FitSettings, *,
        optimizers: dict[str, OptimizerSpec] | None = None,
        validate: Callable[[nn.Module], dict[str, float]] | None = None,
        generators: Generators | None = None,
        checkpoint: str | Path | None = None, resume: bool = False,
        extra_state: dict[str, Any] | None = None,
        hooks: Iterable[Any] = (), log: Callable[[str], None] | None = print) -> FitResult:
    """Train ``model`` on ``objective``; see the module docstring for the loop.

    Args:
        optimizers: name -> :class:`OptimizerSpec`; default ``objective.parameter_groups(model)``
            if the objective has it, else one Adam group over ``model.parameters()``.
        validate: ``model -> {metric: value}`` (called in eval mode, without gradient).
        generators: the run's random sources, saved in and restored from checkpoints.
        checkpoint: path of ``checkpoint.pt`` (written after every epoch; ``None`` = no file).
        resume: continue from ``checkpoint`` if it exists (else start at epoch 1).
        extra_state: plain data stored in the checkpoint beside the training state (e.g. the config).

    >>> X = torch.randn(64, 3, generator=torch.Generator().manual_seed(0)); y = X[:, 0]
    >>> class Regression:
    ...     def batches(self, epoch): return [slice(0, 32), slice(32, 64)]
    ...     def loss(self, model, b): return ((model(X[b])[:, 0] - y[b]) ** 2).mean()
    >>> m = nn.Linear(3, 1)
    >>> r = fit(m, Regression(), FitSettings(epochs=30), optimizers={"model": OptimizerSpec(m.parameters(), lr=0.1)},
    ...         log=None)
    >>> r.epochs_run, r.history[-1]["loss"] < r.history[0]["loss"]
    (30, True)
    """
    if optimizers is None:
        groups = getattr(objective, "parameter_groups", None)
        optimizers = groups(model) if groups is not None else {"model": OptimizerSpec(model.parameters())}
    if not optimizers:
        raise ValueError("`optimizers` is empty: nothing would be trained")
    opts = {name: spec.build(name) for name, spec in optimizers.items()}
    hooks = list(hooks)
    ckpt_path = Path(checkpoint) if checkpoint is not None else None
    metric = settings.select_metric
    worst = -math.inf if settings.mode == "max" else math.inf

    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"epoch": 0, "value": worst, "metrics": {}, "state": None}
    bad_evals, train_seconds, start, finished, resumed_from = 0, 0.0, 1, False, None
    mark = worst   # the metric at the last gain of more than min_delta (what patience counts from)
    if resume and ckpt_path is not None and ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        try:
            model.load_state_dict(state["model"])
            for name, opt in opts.items():
                opt.load_state_dict(state["optimizers"][name])
            if state.get("objective") is not None:
                _call(objective, "load_state_dict", state["objective"])
            if generators is not None:
                generators.load_state_dict(state["generators"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{ckpt_path}: does not fit this run ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0][:200]})") from None
        history, best, bad_evals = list(state["history"]), dict(state["best"]), int(state["bad_evals"])
        mark = float(state.get("patience_mark", best["value"]))
        train_seconds, finished = float(state["train_seconds"]), bool(state["finished"])
        start = resumed_from = int(state["epoch"]) + 1
        if log:
            log(f"resuming after epoch {state['epoch']} from {ckpt_path}" + (" (already finished)" if finished else ""))

    def save(epoch: int, done: bool) -> None:
        if ckpt_path is None:
            return
        payload = {"format": CHECKPOINT_FORMAT, "epoch": epoch, "finished": done,
                   "model": model.state_dict(), "optimizers": {k: o.state_dict() for k, o in opts.items()},
                   "objective": objective.state_dict() if hasattr(objective, "state_dict") else None,
                   "generators": generators.state_dict() if generators is not None else None,
                   "best": best, "bad_evals": bad_evals, "patience_mark": mark, "history": history,
                   "train_seconds": train_seconds, "extra": extra_state or {}}
        atomic_write(ckpt_path, lambda fh: torch.save(payload, fh))
        nonlocal last_saved
        last_saved = epoch

    epoch, step_in_epoch, stopped_early, last_saved = start - 1, 0, False, start - 1
    try:
        with _SignalsToInterrupt():
            epochs = range(start, settings.epochs + 1) if not finished else range(0)
            for epoch in progress(epochs, desc=settings.desc, total=len(epochs)):
                model.train()
                t0 = time.perf_counter()
                total, steps, logged = 0.0, 0, {}
                for step_in_epoch, batch in enumerate(objective.batches(epoch)):
                    try:
                        out = objective.loss(model, batch)
                    except (ValueError, FloatingPointError, RuntimeError) as exc:
                        if not _diverged(model, exc):
                            raise
                        raise TrainingDiverged(f"training diverged at epoch {epoch}, step {step_in_epoch + 1}: the "
                                               f"model's scores or parameters became NaN or inf; "
                                               f"{settings.divergence_hint}") from exc
                    loss, logs = out if isinstance(out, tuple) else (out, {})
                    value = float(loss.detach())
                    if not math.isfinite(value):
                        raise TrainingDiverged(f"training diverged at epoch {epoch}, step {step_in_epoch + 1}: "
                                               f"the loss became {value}; {settings.divergence_hint}")
                    for opt in opts.values():
                        opt.zero_grad(set_to_none=True)
                    loss.backward()
                    for name, opt in opts.items():
                        active = optimizers[name].active
                        if active is None or active(epoch, step_in_epoch):
                            opt.step()
                    _call(objective, "after_step", model, step_in_epoch)
                    for hook in hooks:
                        _call(hook, "after_step", model, step_in_epoch)
                    total += value
                    steps += 1
                    for k, v in logs.items():
                        logged[k] = logged.get(k, 0.0) + float(v)
                _call(objective, "on_epoch_end", model, epoch)
                for hook in hooks:
                    _call(hook, "on_epoch_end", model, epoch)
                seconds = time.perf_counter() - t0
                train_seconds += seconds
                if not _finite_params(model):
                    raise TrainingDiverged(f"training diverged in epoch {epoch}: a parameter became NaN or "
                                           f"inf; {settings.divergence_hint}")
                record: dict[str, Any] = {"epoch": epoch, "loss": total / max(steps, 1),
                                          **{k: v / max(steps, 1) for k, v in logged.items()},
                                          "seconds": round(seconds, 4)}
                if validate is not None and (epoch % settings.eval_every == 0 or epoch == settings.epochs):
                    model.eval()
                    with torch.no_grad():
                        val = {k: float(v) for k, v in validate(model).items()}
                    record["val"] = val
                    if metric is not None:
                        value = val[metric]
                        first = best["epoch"] == 0
                        if first or _improves(value, best["value"], settings.mode):
                            best = {"epoch": epoch, "value": value, "metrics": val,
                                    "state": copy.deepcopy(model.state_dict())}
                        shift = settings.min_delta if settings.mode == "max" else -settings.min_delta
                        if first or _improves(value, mark + shift, settings.mode):
                            mark, bad_evals = value, 0
                        else:
                            bad_evals += 1
                        if log:
                            log(f"epoch {epoch}: loss {record['loss']:.5f}  val {metric} {value:.4f}"
                                + ("" if math.isfinite(value) else " (no user/sample qualifies; selection keeps the first state)"))
                history.append(record)
                stopped_early = bool(settings.patience and bad_evals >= settings.patience)
                save(epoch, stopped_early or epoch == settings.epochs)
                if stopped_early:
                    if log:
                        log(f"early stop at epoch {epoch}: no {metric} gain"
                            + (f" above {settings.min_delta:g}" if settings.min_delta else "")
                            + f" in {bad_evals} evaluations")
                    break
    except KeyboardInterrupt as exc:
        why = "SIGTERM" if str(exc) == "SIGTERM" else "Ctrl-C"
        kept = ((f"{ckpt_path} holds epoch {last_saved}" if last_saved else "no epoch had finished")
                if ckpt_path is not None else "no checkpoint is written for this run")
        raise RunInterrupted(f"interrupted by {why} during epoch {epoch}; {kept}") from None

    if metric is not None and best["epoch"]:
        model.load_state_dict(best["state"])
    model.eval()
    epochs_run = history[-1]["epoch"] if history else 0
    return FitResult(best_epoch=best["epoch"] if metric is not None else epochs_run,
                     best_value=best["value"], best_metrics=dict(best["metrics"]), history=history,
                     epochs_run=epochs_run, epoch_seconds=train_seconds / max(len(history), 1),
                     stopped_early=stopped_early or (finished and epochs_run < settings.epochs),
                     resumed_from=resumed_from)


def fit_in_run(run: Any, resume_command: str, model: nn.Module, objective: Any, settings: FitSettings,
               **kwargs: Any) -> FitResult:
    """:func:`fit` inside a run directory (a :class:`rankguard.runs.RunDir`, or ``None``): the
    checkpoint goes to ``run/checkpoint.pt``, and ``status.json`` records how it ended — an
    interrupt says ``interrupted`` and the re-raised message names ``{resume_command} --resume DIR``;
    any other error says ``failed`` (with the error) before propagating. ``kwargs`` go to :func:`fit`.
    """
    if run is not None:
        kwargs.setdefault("checkpoint", run.file("checkpoint.pt"))
    try:
        return fit(model, objective, settings, **kwargs)
    except RunInterrupted as exc:
        if run is None:
            raise
        run.mark("interrupted", reason=str(exc))
        raise RunInterrupted(f"{exc}; continue with: {resume_command} --resume {run.path}") from None
    except Exception as exc:
        if run is not None:
            run.mark("failed", error=f"{type(exc).__name__}: {exc}")
        raise
