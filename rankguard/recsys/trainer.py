"""Recommendation training as a recipe on the engine: config -> model + objective -> :func:`fit` -> run dir.

:func:`train` builds the backbone (:data:`~rankguard.recsys.models.MODELS`), the objective
(:func:`~rankguard.recsys.objectives.build_objective`: a loss on sampled negatives or over all
pairs), one optimizer over the model, the norm constraint as an after-step hook and the
:class:`~rankguard.recsys.evaluator.Evaluator` as validation, and hands them to
:func:`rankguard.training.fit`. With a run directory it writes ``config.json`` first, a checkpoint
after every epoch (``checkpoint.pt``: everything needed to continue, and the best state),
and at the end ``history.json``, ``metrics.json`` (test metrics as fractions, keys
:data:`METRIC_KEYS` and the tail-item :data:`TAIL_KEYS`), ``report.md`` and ``curves.png``; ``status.json`` says ``running`` until
all of those are written, then ``complete``.

The recipes, their defaults and sources live in :mod:`rankguard.recsys.recipes`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp
import torch

from rankguard.recsys.data import Split
from rankguard.recsys.evaluator import Evaluator
from rankguard.recsys.models import MODELS, EmbeddingModel
from rankguard.recsys.objectives import build_objective, candidate_scores
from rankguard.recsys.recipes import (  # noqa: F401  (re-exported: the trainer's public names)
    DATASET_PRESETS,
    METRIC_KEYS,
    TAIL_KEYS,
    RECIPES,
    TrainConfig,
    make_config,
    model_names,
)
from rankguard.runs import RunDir, markdown_table
from rankguard.training import FitSettings, Generators, OptimizerSpec, fit_in_run, load_checkpoint
from rankguard.training.engine import CheckpointError


@dataclass
class TrainResult:
    """What :func:`train` returns: the model holding the best state, metrics and history."""

    model: EmbeddingModel
    test_metrics: dict[str, float]
    best_val: dict[str, float]
    best_epoch: int
    history: list[dict[str, Any]]
    epoch_seconds: float
    diagnostics: dict[str, Any]
    resumed_from: int | None = None
    #: metrics on the split's in-distribution test set when its ``test`` is shifted (Coat, *-popshift)
    iid_metrics: dict[str, float] | None = None
    #: the run ended by early stopping (patience / min_delta), not at its last epoch
    stopped_early: bool = False


def _nulls(metrics: dict[str, float]) -> dict[str, float | None]:
    # NaN = no user qualifies for that metric (e.g. @20 needs >= 20 test items under "authors"): JSON null
    return {k: (v if np.isfinite(v) else None) for k, v in metrics.items()}


def metrics_json(test: dict[str, float], iid: dict[str, float] | None = None) -> dict[str, Any]:
    """``metrics.json``: the test metrics as fractions at the top level (NaN -> null), and, for a
    shifted test, the same keys on the in-distribution test under ``"in_distribution"``."""
    out: dict[str, Any] = _nulls(test)
    if iid is not None:
        out["in_distribution"] = _nulls(iid)
    return out


def build_model(config: TrainConfig, n_users: int, n_items: int, generator: torch.Generator | None = None,
                train: sp.spmatrix | None = None) -> EmbeddingModel:
    """The backbone a config names (shapes from the data).

    ``train`` (the training matrix) gives DPCML's per-user vector counts under
    ``vector_rule="log2"``; without it every user gets ``C`` vectors until a ``state_dict`` holding
    the run's counts is loaded (as :func:`load_run` does).
    """
    cls = MODELS.get(config.backbone)
    kwargs: dict[str, Any] = {"dim": config.dim, "generator": generator}
    if config.backbone in ("cml", "dpcml"):
        kwargs["constraint"] = config.constraint
    if config.backbone in ("mf", "lightgcn"):
        kwargs["similarity"] = config.similarity
    if config.backbone == "lightgcn":   # the graph is the training matrix; without it, set_graph() before scoring
        kwargs.update(layers=config.layers, train=train)
    if config.backbone == "dpcml":
        from rankguard.recsys.dpcml import vector_counts

        kwargs.update(vectors=config.vectors, diversity=config.diversity, user_vectors=config.user_vectors,
                      diversity_form=config.diversity_form)
        if train is not None:
            kwargs["vector_counts"] = vector_counts(config.vector_rule, config.vectors, train)
    return cls(n_users, n_items, **kwargs)


def score_fn_of(model: EmbeddingModel) -> Callable[[torch.Tensor], torch.Tensor]:
    """``users -> scores [B, n_items]`` without gradient (what the Evaluator calls)."""
    def fn(users: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.score(users)
    return fn


class Constrain:
    """After-step hook: re-apply the backbone's norm constraint (unit ball / sphere projection)."""

    def after_step(self, model: EmbeddingModel, step: int) -> None:
        model.constrain_()


def _run_config(config: TrainConfig, split: Split) -> dict[str, Any]:
    return {"method": config.method, "n_users": split.n_users, "n_items": split.n_items,
            "data_notes": list(getattr(split, "notes", []) or []), **config.to_dict()}


def train(config: TrainConfig, split: Split, out: str | os.PathLike | None = None, dataset: str = "",
          diagnostics: bool = True, log: Callable[[str], None] | None = print, mode: str = "new") -> TrainResult:
    """Train the model ``config`` names on ``split.train``; select on ``split.val``; test on ``split.test``.

    ``mode`` (with ``out``): ``"new"`` refuses a folder holding another run, ``"overwrite"`` replaces
    it, ``"resume"`` continues the run in ``out`` from its last checkpoint (epoch 1 if it has none).

    >>> import numpy as np, scipy.sparse as sp
    >>> rng = np.random.default_rng(0); m = (rng.random((20, 30)) < 0.3).astype(np.float32)
    >>> from rankguard.recsys.splits import ratio_split; from rankguard.recsys.data import Interactions
    >>> split = ratio_split(Interactions(sp.csr_matrix(m)), seed=0)
    >>> r = train(make_config("sfcml", epochs=2, eval_every=1, dim=8), split, diagnostics=False, log=None)
    >>> sorted(r.test_metrics)[:3], len(r.history)
    (['AUC', 'MAP', 'MRR'], 2)
    """
    if dataset and not config.dataset:
        config.dataset = str(dataset)
    if config.cold_start:   # cold start: DropoutNet over this backbone (rankguard.recsys.coldstart)
        from rankguard.recsys.coldstart.train import train_cold
        return train_cold(config, split, out=out, mode=mode, log=log)  # type: ignore[return-value]
    gens = Generators(config.seed)
    train_m = sp.csr_matrix(split.train)
    model = build_model(config, split.n_users, split.n_items, gens.torch, train=train_m)
    objective, sampler = build_objective(
        config.loss, config.sampler, train_m, gens.numpy, margin=config.margin, batch_size=config.batch_size,
        n_negatives=config.n_negatives, cov_weight=config.cov_weight, sampler_options=config.sampler_options,
        temperature=config.temperature, k_neg=config.k_neg, embedding_reg=config.embedding_reg,
        pair_repeats=config.pair_repeats, adversary=dict(epochs=config.epochs, adv_interval=config.adv_interval, adv_passes=config.adv_passes,
                       adv_lr=config.adv_lr, adv_reg=config.adv_reg, adv_dim=config.adv_dim, generator=gens.torch))
    optimizers = {"model": OptimizerSpec(model.parameters(), config.optimizer, config.lr, config.weight_decay)}
    if hasattr(objective, "optimizer_groups"):   # an adversary (AdvInfoNCE's hardness) with its own optimizer
        optimizers = objective.optimizer_groups(optimizers["model"])
    evaluator = Evaluator(split, protocol=config.protocol, block_size=config.eval_block_size)

    def validate(m: EmbeddingModel) -> dict[str, float]:
        val = evaluator.evaluate(score_fn_of(m), stage="val")
        return {k: val[k] for k in METRIC_KEYS if k in val}

    run = RunDir.for_run(out, mode) if out is not None else None
    if run is not None:
        if mode != "resume":
            run.save_json("config.json", _run_config(config, split))
        run.mark("running")
        for note in getattr(split, "notes", []) or []:
            if log:
                log(f"data: {note}")
    settings = FitSettings(epochs=config.epochs, eval_every=config.eval_every, patience=config.patience,
                           min_delta=float(config.min_delta), select_metric=config.select_metric,
                           desc=f"train {config.method}",
                           divergence_hint=f"lower the learning rate (--lr, now {config.lr:g})")
    fitted = fit_in_run(run, "rankguard recsys train", model, objective, settings, optimizers=optimizers,
                        validate=validate, generators=gens, resume=mode == "resume",
                        extra_state={"config": config.to_dict(), "n_users": split.n_users, "n_items": split.n_items},
                        hooks=[Constrain()], log=log)

    test = evaluator.evaluate(score_fn_of(model), stage="test")
    test_metrics = {k: float(test[k]) for k in (*METRIC_KEYS, *TAIL_KEYS) if k in test}
    iid = None
    if getattr(split, "iid_test", None) is not None:   # a shifted test: the in-distribution one beside it
        iid_all = evaluator.evaluate(score_fn_of(model), stage="iid_test")
        iid = {k: float(iid_all[k]) for k in (*METRIC_KEYS, *TAIL_KEYS) if k in iid_all}
    diag: dict[str, Any] = {}
    if hasattr(model, "nearest_vector"):   # multi-vector users (DPCML): which vectors serve the test items
        from rankguard.recsys.dpcml import vector_usage
        diag["vector_usage"] = vector_usage(model, split.test)
    if diagnostics:
        from rankguard.recsys.diagnostics import effective_sample_size, pair_distribution_tv
        diag["effective_sample_size"] = effective_sample_size(train_m)
        diag["sampling_tv"] = pair_distribution_tv(train_m, sampler,
                                                   candidate_scores(model) if sampler is not None else None)
    result = TrainResult(model, test_metrics, fitted.best_metrics, fitted.best_epoch, fitted.history,
                         fitted.epoch_seconds, diag, fitted.resumed_from, iid, fitted.stopped_early)
    if run is not None:
        from rankguard.plots import plot_training_curves

        run.save_json("history.json", fitted.history)
        run.save_json("metrics.json", metrics_json(test_metrics, iid))
        run.save_text("report.md", render_report(config, result, getattr(split, "notes", []) or []))
        plot_training_curves(fitted.history, run.file("curves.png"), config.select_metric,
                             title=f"{config.method} on {Path(config.dataset).name or 'data'}")
        run.mark("complete", best_epoch=fitted.best_epoch, epochs_run=fitted.epochs_run)
    return result


def last_eval_epoch(history: list[dict[str, Any]]) -> int | None:
    """The epoch of the last validation in a run's ``history`` (``None`` if it never validated)."""
    evals = [h["epoch"] for h in history if "val" in h]
    return evals[-1] if evals else None


def best_is_last(best_epoch: int | None, last_eval: int | None, stopped_early: bool) -> bool:
    """The run's one "may not have converged" rule: it used its whole budget (not ended by early
    stopping — with ``min_delta`` an early-stopped run's best state may be its last, after gains too
    small to count) and its best validation epoch is its last evaluation."""
    return not stopped_early and last_eval is not None and best_epoch == last_eval


def convergence_warning(config: TrainConfig, result: TrainResult) -> str | None:
    """One line when :func:`best_is_last` holds for the run (still improving when its budget ran out),
    else ``None``."""
    last = last_eval_epoch(result.history)
    if not best_is_last(result.best_epoch, last, result.stopped_early):
        return None
    return (f"warning: the best validation {config.select_metric} came at the last evaluation (epoch {last} of "
            f"{config.epochs}), so the model may not have converged; train longer (--epochs)")


def metrics_table(metrics: dict[str, float], keys: tuple[str, ...] = METRIC_KEYS) -> str:
    """Markdown table of the metrics in percent (metrics.json keeps fractions)."""
    keys = [k for k in keys if k in metrics]
    cells = [f"{100 * metrics[k]:.2f}" if metrics[k] is not None and np.isfinite(metrics[k]) else "n/a" for k in keys]
    return markdown_table(keys, [cells])


def render_report(config: TrainConfig, result: TrainResult, notes: list[str] = ()) -> str:
    """The run's ``report.md``: test metrics, selection, timing, data notes, diagnostics."""
    lines = [f"# {config.method} on {config.dataset or 'data'}", "",
             f"Backbone `{config.backbone}`, loss `{config.loss}`, sampler `{config.sampler}`; protocol "
             f"`{config.protocol}`; best validation {config.select_metric} "
             f"{100 * result.best_val.get(config.select_metric, float('nan')):.2f} at epoch {result.best_epoch}; "
             f"{result.epoch_seconds:.3f} s per training epoch."
             + (f" Resumed after epoch {result.resumed_from - 1}." if result.resumed_from else ""), "",
             *([f"**{w[0].upper()}{w[1:]}.**", ""] if (w := convergence_warning(config, result)) else []),
             "## Test metrics (%)", "", metrics_table(result.test_metrics),
             *(["In-distribution test (the shifted test above is the data's `test`):", "",
                metrics_table(result.iid_metrics)] if result.iid_metrics is not None else []),
             "Tail items only (relevant items outside the 20% most popular by training count; users "
             "without a tail test item left out):", "", metrics_table(result.test_metrics, TAIL_KEYS),
             "![training curves](curves.png)", ""]
    if notes:
        lines += ["## Data", "", *[f"- {n}" for n in notes], ""]
    d = result.diagnostics
    if "vector_usage" in d:
        vu = d["vector_usage"]
        lines += ["## User-vector usage", "",
                  f"Per test user, how many of its {vu['vectors']} vectors are the nearest one for at least one "
                  f"test item: mean **{vu['mean']:.2f}** over {vu['users']} users (mean active vectors "
                  f"C_u {vu['mean_active']:.2f}).", "",
                  markdown_table(["vectors used", *vu["counts"]], [["users", *vu["counts"].values()]])]
    if "effective_sample_size" in d:
        ess, tv = d["effective_sample_size"], d["sampling_tv"]
        lines += ["## Generalization diagnostics", "",
                  "Effective sample size Ñ_u = (√(1/n⁺ + 1/n⁻))⁻² over training users:", "",
                  markdown_table(["users", "mean", "median", "min"],
                                 [[ess["users"], f"{ess['mean']:.2f}", f"{ess['median']:.2f}", f"{ess['min']:.2f}"]]),
                  f"Total-variation distance between the trained-on (positive, negative) pair distribution and "
                  f"the per-user uniform one: **{tv['tv']:.4f}** ({tv['method']}); user weighting alone "
                  f"contributes {tv['user_weighting_tv']:.4f}. (0 for the sampling-free all-pairs objective.)", ""]
    return "\n".join(lines)


def load_run(path: str | os.PathLike) -> tuple[TrainConfig, EmbeddingModel, dict[str, Any]]:
    """Rebuild the best model of a run directory from ``checkpoint.pt``; returns (config, model, run config).

    Never creates the folder; a missing or unreadable checkpoint raises naming the file.
    """
    run = RunDir(path, create=False)
    ckpt_path = run.file("checkpoint.pt")
    if not ckpt_path.exists():
        raise FileNotFoundError(f"{ckpt_path}: no checkpoint (is {path} a `rankguard recsys train` run directory?)")
    ckpt = load_checkpoint(ckpt_path)
    extra = ckpt.get("extra", {})
    try:
        config = TrainConfig.from_dict(extra["config"], where=str(ckpt_path))
        train_m = None
        if config.backbone == "lightgcn":   # propagates over the run's training graph: rebuild it from the data
            from rankguard.recsys.cli import load_split
            train_m = load_split(config.dataset, seed=config.split_seed).train
        model = build_model(config, int(extra["n_users"]), int(extra["n_items"]), train=train_m)
        best = ckpt["best"]["state"]
        model.load_state_dict(best if best is not None else ckpt["model"])
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{ckpt_path}: does not hold a recommendation model ({type(exc).__name__}: {exc})") from None
    model.eval()
    run_config = run.load_json("config.json") if run.file("config.json").exists() else {}
    return config, model, run_config
