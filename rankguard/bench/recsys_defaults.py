"""Converged defaults: ``rankguard recsys train --dataset D --model M`` with no other flag, on the shared datasets.

    RANKGUARD_DATA=/work/shared/data rankguard bench recsys_defaults --models sfcml \\
        --datasets ml-100k ml-1m citeulike-a citeulike-t
    rankguard bench recsys_defaults --models dpcml --datasets ml-100k         # add rows to the table

For each (model, dataset): one run of exactly what ``recsys train`` runs without flags
(:func:`rankguard.recsys.recipes.make_config` with the model and dataset only — none of these dataset
names has a preset, so the recipe's defaults apply), seed 0. Recorded per row: the epoch budget, the
epochs run, the best validation epoch, whether the run ended by early stopping, the best validation
value of the recipe's selection metric, the test metrics, seconds per epoch and the wall time.

A row **converged** when ``recsys train`` would print no convergence warning
(:func:`rankguard.recsys.trainer.convergence_warning`): the run ended by early stopping (no gain of
the selection metric above ``min_delta`` in ``patience`` evaluations), or its best validation epoch
came before its last evaluation. A row that used its whole budget with the best epoch last did not.

Rows merge into ``results/recsys_defaults.{json,md}`` (re-read under a lock before every write, so
two processes can add rows to one table); each row is also kept under ``--cache`` (default
``.cache/bench/recsys_defaults``, keyed by its complete config), so a killed run resumes.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import torch

from rankguard.bench.harness import (MeasuredRun, add_cache_arguments, cache_from_args, cached_record,
                                     default_results_dir, environment_line, finite_or_none, read_results,
                                     results_lock, standalone_main, timed_call, write_results)
from rankguard.runs import markdown_table

#: the four shared recommendation datasets the issue names (none has a preset)
DATASETS = ("ml-100k", "ml-1m", "citeulike-a", "citeulike-t")
MODELS = ("sfcml", "cml", "dpcml")
SHOWN = ("P@3", "NDCG@3", "MAP", "MRR", "AUC")
NAME = "recsys_defaults"


def row_key(model: str, dataset: str) -> str:
    return f"{model}@{Path(dataset).name}"


def run_row(model: str, dataset: str, seed: int = 0, cache: Path | None = None,
            log=print) -> dict[str, Any]:
    """Train ``make_config(model, dataset, seed=seed)`` and return its row (cached by config)."""
    from rankguard.recsys.cli import load_split
    from rankguard.recsys.recipes import make_config
    from rankguard.recsys.trainer import convergence_warning, last_eval_epoch, train

    config = make_config(model, dataset, seed=seed)

    def make() -> dict[str, Any]:
        split = load_split(config.dataset, seed=config.split_seed)
        result, wall = timed_call(lambda: train(config, split, dataset=dataset, log=None))
        return {"model": model, "dataset": Path(dataset).name, "seed": seed,
                "epochs": config.epochs, "epochs_run": result.history[-1]["epoch"] if result.history else 0,
                "eval_every": config.eval_every, "patience": config.patience, "min_delta": config.min_delta,
                "select_metric": config.select_metric, "best_epoch": result.best_epoch,
                "last_eval_epoch": last_eval_epoch(result.history), "stopped_early": result.stopped_early,
                "converged": convergence_warning(config, result) is None,
                "best_val": finite_or_none(result.best_val.get(config.select_metric)),
                "test": {k: finite_or_none(v) for k, v in result.test_metrics.items()},
                "epoch_seconds": result.epoch_seconds, "wall_seconds": wall}

    row = cached_record(cache, f"{row_key(model, dataset)}-seed{seed}", make, {"config": config.to_dict()}, log=log)
    if log is not None:
        log(f"{row_key(model, dataset)}: best epoch {row['best_epoch']} of {row['epochs_run']} run "
            f"(budget {row['epochs']}), {'converged' if row['converged'] else 'NOT converged'}; "
            f"test P@3 {100 * (row['test']['P@3'] or math.nan):.2f} ({row['wall_seconds'] / 60:.1f} min)")
    return row


def to_markdown(payload: dict[str, Any]) -> str:
    rows = payload["rows"]

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.2f}"

    def rule(r: dict[str, Any]) -> str:
        stop = (f"patience {r['patience']}" + (f", gain > {r['min_delta']:g}" if r["min_delta"] else "")
                if r["patience"] else "no early stop")
        return f"val {r['select_metric']} / {r['eval_every']} ep, {stop}"

    table = [[r["model"], r["dataset"], rule(r), r["epochs"], r["epochs_run"], r["best_epoch"],
              "yes" if r["stopped_early"] else "no", "**yes**" if r["converged"] else "**no**", pct(r["best_val"]),
              *[pct(r["test"].get(k)) for k in SHOWN], f"{r['epoch_seconds']:.2f}", f"{r['wall_seconds'] / 60:.1f}"]
             for r in rows.values()]
    by_model: dict[str, list[dict[str, Any]]] = {}
    for r in rows.values():
        by_model.setdefault(r["model"], []).append(r)
    summary = []
    for model, rs in by_model.items():
        done = sorted(r["dataset"] for r in rs)
        missing = [d for d in DATASETS if d not in done]
        bad = [r["dataset"] for r in rs if not r["converged"]]
        summary.append(f"- `{model}`: " + ("converged on " + ", ".join(d for d in done if d not in bad)
                                            if len(bad) < len(rs) else "converged on none")
                       + (f"; **not** converged on {', '.join(bad)}" if bad else "")
                       + (f"; not run on {', '.join(missing)}" if missing else ""))
    return "\n".join([
        "# `recsys train` defaults: do they converge?", "",
        "One run per row of `rankguard recsys train --dataset D --model M` with no other flag (seed 0; none of "
        "these datasets has a preset, so the recipe's defaults apply). A row converged when the run ended by "
        "early stopping or its best validation epoch came before its last evaluation. Test metrics in percent "
        "at the best validation epoch (selection on validation only). Written by `rankguard bench "
        f"recsys_defaults`; {payload['total_seconds'] / 60:.1f} min of training in the table. "
        + environment_line(payload["environment"]), "",
        markdown_table(["model", "dataset", "selection", "budget", "epochs run", "best epoch", "early stop",
                        "converged", "best val", *[f"test {k}" for k in SHOWN], "s/epoch", "min"], table),
        "", *summary, ""])


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", nargs="+", default=list(MODELS), help=f"recipes (default {' '.join(MODELS)})")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), help=f"datasets (default {' '.join(DATASETS)})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--out", default=str(default_results_dir()), help="results folder (default: the checkout's results/)")
    add_cache_arguments(p, NAME)


def run(args: argparse.Namespace) -> int:
    from rankguard.recsys.recipes import make_config

    torch.set_num_threads(args.threads)
    for model in args.models:   # an unknown model or dataset name fails before any training
        make_config(model, args.datasets[0])
    cache = cache_from_args(args, NAME)
    with MeasuredRun() as measured:
        for dataset in args.datasets:
            for model in args.models:
                row = run_row(model, dataset, args.seed, cache)
                measured.mark()
                with results_lock(args.out, NAME):   # another process may have added rows meanwhile
                    previous = read_results(args.out, NAME) or {}
                    rows = {**previous.get("rows", {}), row_key(model, dataset): row}
                    payload = {"rows": rows, "environment": measured.environment,
                               "total_seconds": float(sum(r["wall_seconds"] for r in rows.values())),
                               "converged_is": "ended by early stopping, or best validation epoch before the last "
                                               "evaluation (no convergence warning)"}
                    json_path, md_path = write_results(args.out, NAME, payload, to_markdown(payload))
                print(f"wrote {json_path} and {md_path}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    return standalone_main(NAME, __doc__, add_arguments, run, argv)
