"""Cold-start training: DropoutNet over a backbone in the pre-training or the joint regime.

``pre`` — the backbone first, by the existing trainer (:func:`rankguard.recsys.trainer.train`) on
the warm split (its own run directory ``OUT/base``, selected on warm validation), then
DropoutNet on the frozen backbone (:class:`DropoutNetObjective`) for ``dn_epochs``, validated every epoch.
``joint`` — backbone and towers in one :func:`rankguard.training.fit` (:class:`JointObjective`) for
the backbone's ``epochs``, validated every ``eval_every`` epochs.
Both select the state with the best mean of the warm, cold-user and cold-item validation
``select_metric`` (the DN authors' code selects on their sum).

The run directory ``OUT`` holds ``config.json`` (the :class:`TrainConfig`, DropoutNet's settings
in its ``dn_*`` fields: it alone replays the run), ``checkpoint.pt``, ``history.json``, ``metrics.json`` — the warm test metrics of the
DropoutNet scores at the top level (warm users and items keep their preference input), plus
``cold_item`` and/or ``cold_user`` objects with the same keys and ``base`` (the backbone's own warm
test metrics, ``pre`` only) — ``report.md`` and ``status.json``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from rankguard.recsys.coldstart.dropoutnet import (DEFAULTS, DropoutNet, DropoutNetObjective, DropoutNetSettings,
                                                   JointObjective)
from rankguard.recsys.coldstart.evaluate import OBJECT, evaluate_cold
from rankguard.recsys.coldstart.splits import ColdSplit
from rankguard.recsys.data import Split
from rankguard.recsys.evaluator import Evaluator
from rankguard.recsys.recipes import METRIC_KEYS, TrainConfig
from rankguard.runs import RunDir, markdown_table
from rankguard.training import FitSettings, Generators, OptimizerSpec, fit_in_run

REGIMES = ("pre", "joint")


@dataclass
class ColdResult:
    """What :func:`train_cold` returns (``test_metrics`` are the warm ones, as the trainer's)."""

    model: DropoutNet
    test_metrics: dict[str, float]
    cold_metrics: dict[str, dict[str, float]]
    base_metrics: dict[str, float]
    best_epoch: int
    history: list[dict[str, Any]]
    #: ``pre``: the backbone's own training result and config (``train_cold(..., base=this)`` reuses them)
    base_result: Any = None
    base_config: TrainConfig | None = None


def _features(split: ColdSplit, settings: DropoutNetSettings) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    if not settings.use_features:
        return None, None
    as_t = lambda x: None if x is None else torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
    return as_t(split.user_features), as_t(split.item_features)


def _warm(split: ColdSplit) -> Split:
    return Split(split.train, split.val, split.test, name=split.name, notes=list(split.notes))


def _masks(split: ColdSplit) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(split.cold_mask("users")), torch.from_numpy(split.cold_mask("items"))


def train_cold(config: TrainConfig, split: ColdSplit, out: str | os.PathLike | None = None, mode: str = "new",
               log: Callable[[str], None] | None = print, base: "ColdResult | None" = None) -> ColdResult:
    """Train DropoutNet over ``config``'s backbone on ``split`` in regime ``config.dropoutnet``.

    DropoutNet's settings are ``config``'s ``dn_*`` fields (:meth:`DropoutNetSettings.from_config`), so
    the run's ``config.json`` alone replays it. ``base`` (``pre`` only): the result of an earlier ``pre``
    run on the same split whose backbone settings and seed equal this config's; its trained backbone
    is reused instead of training the same one again (training is deterministic: the same result).
    """
    from rankguard.recsys.objectives import build_objective
    from rankguard.recsys.trainer import Constrain, build_model, train

    settings = DropoutNetSettings.from_config(config)
    regime = config.dropoutnet or "pre"
    if regime not in REGIMES:
        raise ValueError(f"--dropoutnet must be one of {', '.join(REGIMES)}, got {regime!r}")
    if not isinstance(split, ColdSplit) or not split.kinds:
        raise ValueError("cold-start training needs a ColdSplit with cold items or users (--cold-start items:0.2)")
    run = RunDir.for_run(out, mode) if out is not None else None
    base_config = dataclasses.replace(config, cold_start="", dropoutnet="", **DEFAULTS.config_fields())
    gens = Generators(config.seed)
    dn_rng = gens.add("dropoutnet", np.random.default_rng(config.seed + 1))
    cold_u, cold_i = _masks(split)
    protocol, candidates = config.protocol, config.cold_candidates
    if run is not None:
        run.save_json("config.json", {"method": config.method, "n_users": split.n_users, "n_items": split.n_items,
                                      "data_notes": list(split.notes), **config.to_dict()})
        run.mark("running")
    base_metrics: dict[str, float] = {}
    base_result = None
    if regime == "pre":
        if base is not None:
            if base.base_result is None or base.base_config != base_config:
                raise ValueError("`base` must be a pre-training result whose backbone settings and seed equal "
                                 "this config's")
            base_result = base.base_result
        else:
            base_out = run.file("base") if run is not None else None
            # resuming a killed run resumes (or reloads, when it finished) the backbone's own run too
            base_mode = mode if mode in ("overwrite", "resume") and base_out is not None and (
                mode == "overwrite" or base_out.exists()) else "new"
            base_result = train(base_config, _warm(split), out=base_out, mode=base_mode, diagnostics=False, log=log)
        base, base_metrics = base_result.model, base_result.test_metrics
        for p in base.parameters():
            p.requires_grad_(False)
    else:
        base = build_model(base_config, split.n_users, split.n_items, gens.torch, train=split.train)
    users_f, items_f = _features(split, settings)
    model = DropoutNet(base, users_f, items_f, hidden=settings.hidden, features_only=settings.features_only,
                       generator=gens.torch)
    dn_objective = DropoutNetObjective(split.train, split.warm_mask("users"), split.warm_mask("items"), settings, dn_rng)
    warm_eval = Evaluator(_warm(split), protocol=protocol, block_size=config.eval_block_size)
    metric = config.select_metric

    def validate(m: DropoutNet) -> dict[str, float]:
        # the authors' rule (layer6ai-labs/DropoutNet torch/main.py): the sum of the warm, cold-user and
        # cold-item validation metrics; here their mean, in both regimes
        fn = m.score_fn(cold_u, cold_i)
        cold = evaluate_cold(split, fn, "val", protocol, candidates)
        values = {f"warm_{metric}": float(warm_eval.evaluate(fn, stage="val")[metric]),
                  **{f"{name}_{metric}": obj[metric] for name, obj in cold.items()}}
        return {"select": float(np.nanmean(list(values.values()))), **values}

    if regime == "pre":
        objective: Any = dn_objective
        optimizers = {"towers": OptimizerSpec(list(model.user_tower.parameters()) + list(model.item_tower.parameters()),
                                              "adam", settings.lr)}
        epochs, hooks = settings.epochs, []
    else:
        base_objective, _ = build_objective(
            config.loss, config.sampler, split.train, gens.numpy, margin=config.margin, batch_size=config.batch_size,
            n_negatives=config.n_negatives, cov_weight=config.cov_weight, sampler_options=config.sampler_options,
            temperature=config.temperature, k_neg=config.k_neg, embedding_reg=config.embedding_reg,
            pair_repeats=config.pair_repeats)
        objective = JointObjective(base_objective, dn_objective, settings.joint_weight)
        optimizers = {"model": OptimizerSpec(base.parameters(), config.optimizer, config.lr, config.weight_decay),
                      "towers": OptimizerSpec(list(model.user_tower.parameters()) + list(model.item_tower.parameters()),
                                              "adam", settings.lr)}
        epochs, hooks = config.epochs, [Constrain()]
    # pre: DropoutNet's epochs are short, validate each; joint: the backbone's schedule
    fit_settings = FitSettings(epochs=epochs, eval_every=1 if regime == "pre" else config.eval_every, patience=0,
                               select_metric="select",
                               desc=f"dropoutnet {regime} {config.method}")
    fitted = fit_in_run(run, "rankguard recsys train", model, objective, fit_settings, optimizers=optimizers,
                        validate=validate, generators=gens, resume=mode == "resume",
                        extra_state={"config": config.to_dict()}, hooks=hooks, log=log)
    model.eval()
    fn = model.score_fn(cold_u, cold_i)
    warm = warm_eval.evaluate(fn, stage="test")
    test_metrics = {k: float(warm[k]) for k in METRIC_KEYS if k in warm}
    cold = evaluate_cold(split, fn, "test", protocol, candidates)
    result = ColdResult(model, test_metrics, cold, base_metrics, fitted.best_epoch, fitted.history, base_result,
                        base_config if base_result is not None else None)
    if run is not None:
        clean = lambda d: {k: (v if np.isfinite(v) else None) for k, v in d.items()}  # noqa: E731
        payload: dict[str, Any] = clean(test_metrics)
        payload.update({name: clean(obj) for name, obj in cold.items()})
        if base_metrics:
            payload["base"] = clean({k: base_metrics[k] for k in METRIC_KEYS if k in base_metrics})
        run.save_json("history.json", fitted.history)
        run.save_json("metrics.json", payload)
        run.save_text("report.md", render_cold_report(config, result, settings, split))
        run.mark("complete", best_epoch=fitted.best_epoch, epochs_run=fitted.epochs_run)
    return result


def cold_table(result: ColdResult, keys: tuple[str, ...] = ("P@3", "R@3", "NDCG@3", "AUC")) -> str:
    """Markdown: one row per evaluated group (warm, cold items, cold users, backbone), percent."""
    rows = [["warm (DropoutNet)", *[f"{100 * result.test_metrics[k]:.2f}" for k in keys]]]
    for name, obj in result.cold_metrics.items():
        rows.append([name, *[f"{100 * obj[k]:.2f}" for k in keys]])
    if result.base_metrics:
        rows.append(["warm (backbone)", *[f"{100 * result.base_metrics[k]:.2f}" for k in keys]])
    return markdown_table(["group", *keys], rows)


def render_cold_report(config: TrainConfig, result: ColdResult, settings: DropoutNetSettings, split: ColdSplit) -> str:
    """``report.md`` of a cold-start run."""
    lines = [f"# {config.method} + DropoutNet ({config.dropoutnet}) on {Path(config.dataset).name or 'data'}", "",
             f"Cold start `{config.cold_start}`, candidates `{config.cold_candidates}`, protocol `{config.protocol}`; "
             f"DropoutNet dropout {settings.dropout:g}, hidden {list(settings.hidden)}, best epoch {result.best_epoch} "
             f"(selection on validation {config.select_metric}).", "", "## Test metrics (%)", "", cold_table(result),
             "## Data", "", *[f"- {n}" for n in split.notes], ""]
    return "\n".join(lines)


__all__ = ["train_cold", "ColdResult", "cold_table", "REGIMES", "OBJECT"]
