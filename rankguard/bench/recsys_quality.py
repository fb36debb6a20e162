"""Collaborative ranking quality tables: CML samplers, MF-BPR, SFCML and the DPCML family.

    RANKGUARD_DATA=/work/shared/data rankguard bench recsys_quality            # ML-100K, authors' split, every row
    RANKGUARD_DATA=/work/shared/data rankguard bench recsys_quality --quick --out /tmp/q   # smoke run (1 seed, 2 epochs)
    rankguard bench recsys_quality --dataset ml-1m --methods UniS HarS DPCML2 --epochs 20   # add/replace three rows
    rankguard bench recsys_quality --tuned MF-SQ=tune/best_config.json          # a row from `rankguard recsys tune`

Writes ``results/recsys_quality.json`` (every seed's test metrics as fractions, mean, std, timing,
diagnostics, environment) and ``results/recsys_quality.md`` (mean ± sample std (ddof=1) in percent next
to the published numbers, shortfalls listed). Other datasets or protocols (``--dataset ml-1m
--protocol standard``) write ``results/recsys_quality_<dataset>[_<protocol>].{json,md}`` (the protocol
is named when it is not ``authors``); ``--quick`` appends ``_quick``. Published numbers (:data:`PAPERS`):
the seed talk's ML-100K table (``ml-100k-libcml``), the DPCML paper's Table 2 (``ml-1m``) and the
improved-DPCML talk's CiteULike table (``citeulike-t``), all under the authors' protocol. On ML-100K the
table also checks which rows beat the best published value of every column at once
(:data:`ML100K_COLUMN_MAX`).

Rows: :data:`METHODS` (recipe, sampler, overrides): the CML samplers, MF-BPR, SFCML, DPCML1 (= BPA+UniS),
DPCML2 (= BPA+HarS), DPCML-SF, and the improved-DPCML grid APA+UniS, APA+HarS, BPA+DiHarS, APA+DiHarS
(APA: ``vector_rule="log2"``; DiHarS: β = 0.1 over 100 candidates, the sampler's defaults). ``--tuned
NAME=FILE`` adds a row trained from a ``best_config.json`` written by ``rankguard recsys tune``
(selection on validation only; its own epochs unless ``--epochs`` names the row); the row records
``tuned_from`` and its complete seed-0 ``config``.

``--epochs 20`` gives every method 20 epochs; ``--epochs SFCML=100,UniS=20`` sets only the named
methods' counts (the rest keep :data:`EPOCHS`). The table's ``epochs`` column shows each row's count.

``--methods SFCML`` (any subset) re-runs only those rows and MERGES them into the existing JSON/Markdown
(other rows are kept as they were, their mean ± std recomputed from their per-seed values with the
project's convention; the shortfall list is recomputed over all rows). The files are rewritten after
EVERY row, so a long table can be completed over several runs; each (row, seed) result is also kept under
``--cache`` (default ``.cache/bench/recsys_quality/<table>``, its complete config as the key), so a
killed run loses only the seed in progress and a rerun reads the finished seeds back.

Model selection uses each method's configured rule (validation only): the sampled CML baselines keep
the best validation P@3 (DPCML's rule), checked every 5 epochs; SFCML follows LibCML's loop (best
validation AUC, checked every epoch, no early stopping); the DPCML rows validate P@3 every epoch
(the authors' ``train_best.py``). The Markdown table names each row's rule.

Epoch budget (2 CPU cores): on ML-100K SFCML runs its authors' script length (300 epochs, ~0.2 s
each) and the sampled baselines :data:`EPOCHS` (60, 2stS 30), fewer than their papers' runs; on ML-1M
and CiteULike-t the commands in the README state the (smaller) budgets used. Rows below their
paper's epoch count are a lower bound on what the method reaches with a longer budget.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import torch

from rankguard.bench.harness import (STD_NOTE, MeasuredRun, add_cache_arguments, cache_from_args, cached_record,
                                     default_results_dir, environment_line, finite_or_none, mean_std_cell,
                                     read_results, results_lock, standalone_main, summarize_seeds, timed_call,
                                     write_results)
from rankguard.recsys.cli import load_split
from rankguard.recsys.recipes import DPCML_AUTHORS_LOOP, TrainConfig
from rankguard.recsys.trainer import METRIC_KEYS, make_config, train
from rankguard.recsys.tune import apply_point, parse_grid
from rankguard.runs import markdown_table

# method -> (recipe, sampler or None for the recipe's own, further TrainConfig overrides)
#: the committed tables' CML and MF-BPR rows stop after 10 evaluations without any gain (the engine's default
#: before the cml and mf-bpr recipes got their converging rule); pinned so that rerunning a table reproduces it
_TABLE_CML = {"patience": 10, "min_delta": 0.0}
#: the DPCML-family rows run the authors' loop (validation every epoch unless --eval-every, no early stop)
_TABLE_DPCML = {k: v for k, v in DPCML_AUTHORS_LOOP.items() if k != "epochs"}
METHODS: dict[str, tuple[str, str | None, dict[str, Any]]] = {
    "UniS": ("cml", "unis", _TABLE_CML), "PopS": ("cml", "pops", _TABLE_CML), "2stS": ("cml", "2sts", _TABLE_CML),
    "HarS": ("cml", "hars", _TABLE_CML), "MF-BPR": ("mf-bpr", None, _TABLE_CML), "SFCML": ("sfcml", None, {}),
    # DPCML1 = BPA + UniS and DPCML2 = BPA + HarS in the improved-DPCML (TPAMI 2024) naming
    "DPCML1": ("dpcml1", None, _TABLE_DPCML), "DPCML2": ("dpcml", None, _TABLE_DPCML),
    "DPCML-SF": ("dpcml-sf", None, {}),
    "APA+UniS": ("dpcml1", None, {**_TABLE_DPCML, "vector_rule": "log2"}),
    "APA+HarS": ("dpcml", None, {**_TABLE_DPCML, "vector_rule": "log2"}),
    "BPA+DiHarS": ("dpcml", "dihars", _TABLE_DPCML),
    "APA+DiHarS": ("dpcml", "dihars", {**_TABLE_DPCML, "vector_rule": "log2"}),
}
EPOCHS = {"UniS": 60, "PopS": 60, "2stS": 30, "HarS": 60, "MF-BPR": 100, "SFCML": 300,
          "DPCML1": 100, "DPCML2": 100, "DPCML-SF": 300,
          "APA+UniS": 100, "APA+HarS": 100, "BPA+DiHarS": 100, "APA+DiHarS": 100}
QUICK_EPOCHS = 2
# the seed talk's ML-100K table (percent), authors' protocol and split
_ML100K = {
    "SFCML": {"P@3": 23.40, "R@3": 7.62, "NDCG@3": 23.63, "P@5": 23.74, "R@5": 9.95, "NDCG@5": 24.65,
              "MAP": 18.00, "MRR": 43.13, "AUC": 93.11},
    "HarS": {"P@3": 20.76, "NDCG@3": 21.05, "MAP": 15.94, "AUC": 91.66},
    "UniS": {"P@3": 15.94, "MAP": 13.21},
}
#: the best published value of every column of the seed's ML-100K table (maxima over all its rows)
ML100K_COLUMN_MAX = {"P@3": 23.40, "R@3": 7.62, "NDCG@3": 23.63, "P@5": 23.85, "R@5": 9.95, "NDCG@5": 24.65,
                     "MAP": 18.00, "MRR": 43.13, "AUC": 93.24}
# DPCML paper (Bao et al., NeurIPS 2022) Table 2, ML-1M, authors' protocol (REFERENCES §4)
_ML1M = {"UniS": {"P@3": 17.56, "MAP": 12.40, "MRR": 35.77}, "HarS": {"P@3": 24.88, "MAP": 15.74, "MRR": 45.15},
         "DPCML1": {"P@3": 19.12, "MAP": 13.24, "MRR": 37.55}, "DPCML2": {"P@3": 25.18, "MAP": 16.09, "MRR": 45.32}}
# the improved-DPCML talk's CiteULike table (REFERENCES §4); BPA+UniS = DPCML1, BPA+HarS = DPCML2
_CITEULIKE = {"UniS": {"P@3": 7.34, "NDCG@3": 7.48, "MAP": 5.59, "MRR": 17.27},
              "HarS": {"P@3": 8.44, "NDCG@3": 8.82, "MAP": 6.67, "MRR": 20.08},
              "DPCML1": {"P@3": 7.78}, "APA+UniS": {"P@3": 7.99}, "DPCML2": {"P@3": 8.70}, "APA+HarS": {"P@3": 8.82},
              "BPA+DiHarS": {"P@3": 9.05},
              "APA+DiHarS": {"P@3": 9.24, "R@3": 4.94, "NDCG@3": 9.72, "P@5": 11.20, "R@5": 5.99, "NDCG@5": 12.09,
                             "MAP": 6.72, "MRR": 20.88}}
#: (dataset, protocol) -> the published numbers the table is set against, with where they come from
PAPERS: dict[tuple[str, str], tuple[dict[str, dict[str, float]], str]] = {
    ("ml-100k-libcml", "authors"): (_ML100K, "the seed talk's ML-100K table"),
    ("ml-1m", "authors"): (_ML1M, "DPCML paper Table 2 (NeurIPS 2022)"),
    ("citeulike-t", "authors"): (_CITEULIKE, "the improved-DPCML talk's CiteULike table (TPAMI 2024)"),
}
SHOWN = ("P@3", "R@3", "NDCG@3", "P@5", "R@5", "NDCG@5", "MAP", "MRR", "AUC")
AUTHORS_DATASET = "ml-100k-libcml"


def parse_epochs(text: str) -> int | dict[str, int]:
    """``"20"`` -> 20 (every method); ``"SFCML=100,UniS=20"`` -> ``{"SFCML": 100, "UniS": 20}``.

    >>> parse_epochs("SFCML=100, UniS=20")
    {'SFCML': 100, 'UniS': 20}
    """
    if "=" not in text:
        n = int(text)
        if n < 1:
            raise argparse.ArgumentTypeError(f"--epochs must be >= 1, got {n}")
        return n
    out: dict[str, int] = {}
    for part in filter(None, (t.strip() for t in text.split(","))):
        name, _, val = part.partition("=")
        if name.strip() not in METHODS:
            raise argparse.ArgumentTypeError(f"--epochs: unknown method {name!r} (choose from {', '.join(METHODS)})")
        try:
            n = int(val)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--epochs: {part!r} is not METHOD=INT") from None
        if n < 1:
            raise argparse.ArgumentTypeError(f"--epochs: {part!r} must be >= 1")
        out[name.strip()] = n
    return out


def epochs_for(name: str, epochs: int | dict[str, int] | None, quick: bool) -> int:
    """The epoch count of method ``name`` given ``--epochs`` and ``--quick``.

    >>> epochs_for("SFCML", {"UniS": 5}, False), epochs_for("UniS", {"UniS": 5}, False), epochs_for("UniS", 9, True)
    (300, 5, 2)
    """
    if quick:
        return QUICK_EPOCHS
    if isinstance(epochs, dict):
        return epochs.get(name, EPOCHS[name])
    return epochs or EPOCHS[name]


def results_name(dataset: str, protocol: str, quick: bool) -> str:
    """File stem: ``recsys_quality`` for the authors' table, else ``recsys_quality_<dataset>[_<protocol>]``.

    >>> results_name("ml-100k-libcml", "authors", False), results_name("ml-1m", "standard", True)
    ('recsys_quality', 'recsys_quality_ml-1m_standard_quick')
    """
    stem = "recsys_quality" if dataset == AUTHORS_DATASET else f"recsys_quality_{Path(dataset).name}"
    if protocol != "authors":
        stem += f"_{protocol}"
    return stem + ("_quick" if quick else "")


def _config_dict(config: Any) -> dict[str, Any]:
    """The config as plain values (``to_dict()`` where the config has one, else its dataclass fields)."""
    return config.to_dict() if hasattr(config, "to_dict") else dataclasses.asdict(config)


def parse_tuned(text: str) -> tuple[str, Path]:
    """``NAME=FILE``: a row trained from a tuned ``best_config.json`` (``rankguard recsys tune``).

    >>> parse_tuned("MF-SQ=runs/best_config.json")
    ('MF-SQ', PosixPath('runs/best_config.json'))
    """
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"--tuned: {text!r} is not NAME=best_config.json")
    if name.strip() in METHODS:
        raise argparse.ArgumentTypeError(f"--tuned: {name.strip()!r} is a built-in method name; pick another")
    return name.strip(), Path(path.strip())


def method_configs(name: str, dataset: str, protocol: str, seeds: list[int], epochs: int | None,
                   tuned: Path | None = None, eval_every: int | None = None,
                   settings: dict[str, Any] | None = None) -> list[TrainConfig]:
    """One :class:`TrainConfig` per seed for row ``name``: a :data:`METHODS` entry (its recipe,
    sampler and overrides, ``epochs`` epochs), or the tuned file's config (its own epochs unless
    ``epochs`` is given) with only the seed replaced. ``eval_every`` replaces the row's validation
    period (never above its epochs); ``settings`` (``--set``) replace config fields in every row."""
    if tuned is not None:
        try:
            base = TrainConfig.from_dict(json.loads(tuned.read_text()), where=str(tuned))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"--tuned {name}: cannot read {tuned}: {exc}") from None
        if Path(str(base.dataset)).name != Path(dataset).name or base.protocol != protocol:
            raise ValueError(f"--tuned {name}: {tuned} is a {base.dataset}/{base.protocol} config, "
                             f"this table is {dataset}/{protocol}")
        configs = [dataclasses.replace(base, seed=seed, **({"epochs": epochs} if epochs else {})) for seed in seeds]
    else:
        model, sampler, extra = METHODS[name]
        configs = [make_config(model, dataset, sampler=sampler, epochs=epochs, seed=seed, protocol=protocol, **extra)
                   for seed in seeds]
    if settings:
        configs = [apply_point(c, settings) for c in configs]
    return [dataclasses.replace(c, eval_every=min(eval_every or c.eval_every, c.epochs)) for c in configs]


def parse_settings(items: list[str]) -> dict[str, Any]:
    """``--set lr=0.01 margin=2`` -> ``{"lr": 0.01, "margin": 2.0}`` (the TrainConfig field types, as
    ``rankguard recsys tune --grid`` reads them; one value per key).

    >>> parse_settings(["lr=0.01", "vector_rule=log2"])
    {'lr': 0.01, 'vector_rule': 'log2'}
    """
    grid = parse_grid(items) if items else {}
    many = [k for k, v in grid.items() if len(v) != 1]
    if many:
        raise ValueError(f"--set {many[0]}: give one value (KEY=VALUE), got {grid[many[0]]}")
    return {k: v[0] for k, v in grid.items()}


def _train_seed(cfg: TrainConfig, split: Any, dataset: str, diagnostics: bool) -> dict[str, Any]:
    """One seed of a row: test metrics (fractions, NaN -> null), best epoch, timings, diagnostics."""
    res, wall = timed_call(lambda: train(cfg, split, dataset=dataset, log=None, diagnostics=diagnostics))
    return {"test_metrics": {k: finite_or_none(v) for k, v in res.test_metrics.items()},
            "best_epoch": res.best_epoch, "wall_seconds": wall, "epoch_seconds": res.epoch_seconds,
            "diagnostics": res.diagnostics or None}


def run_method(name: str, split: Any, dataset: str, protocol: str, seeds: list[int], epochs: int | None,
               tuned: Path | None = None, eval_every: int | None = None,
               settings: dict[str, Any] | None = None, cache: Path | None = None) -> dict:
    """Train row ``name`` once per seed; the row of the JSON file (keys as in results/recsys_quality.json).

    Each seed's result is kept as ``CACHE/NAME-seedS.json`` (:func:`~rankguard.bench.harness.cached_record`,
    plan = the seed's complete config): a rerun of a killed row reads its finished seeds back."""
    configs = method_configs(name, dataset, protocol, seeds, epochs, tuned, eval_every, settings)
    per_seed, secs, best_epochs, tvs = [], [], [], []
    for seed, cfg in zip(seeds, configs):
        want = seed == seeds[0]
        rec = cached_record(cache, f"{name}-seed{seed}", lambda: _train_seed(cfg, split, dataset, want),
                            {"config": _config_dict(cfg), "diagnostics": want})
        secs.append(rec["wall_seconds"])
        per_seed.append(rec["test_metrics"])
        best_epochs.append(rec["best_epoch"])
        if rec["diagnostics"]:
            tvs.append(rec["diagnostics"])
        p3, auc = (rec["test_metrics"][k] for k in ("P@3", "AUC"))
        print(f"{name} seed {seed}: P@3 {100 * (p3 or math.nan):.2f} AUC {100 * (auc or math.nan):.2f} "
              f"best epoch {rec['best_epoch']}/{cfg.epochs} ({rec['wall_seconds']:.0f} s, "
              f"{rec['epoch_seconds']:.2f} s/epoch)", flush=True)
    mean, std = summarize_seeds(per_seed, METRIC_KEYS)
    row = {"model": configs[0].model, "sampler": configs[0].sampler, "epochs": configs[0].epochs,
           "config": _config_dict(configs[0]), "seeds": seeds, "per_seed": per_seed, "mean": mean, "std": std,
           "best_epochs": best_epochs, "wall_seconds": secs, "diagnostics": tvs[0] if tvs else None}
    if tuned is not None:
        row["tuned_from"] = str(tuned)
    return row


def merge_previous(runs: dict[str, dict], previous: dict | None, dataset: str, protocol: str
                   ) -> tuple[dict[str, dict], list[str] | None]:
    """Rows of ``previous`` (same dataset and protocol) not re-run now, merged in :data:`METHODS` order
    (then tuned rows in their order of appearance); their mean ± std recomputed from ``per_seed``
    (one convention in a file). Returns (rows, kept names)."""
    if previous is None or previous.get("dataset") != dataset or previous.get("protocol") != protocol:
        return runs, None
    kept = {k: dict(v) for k, v in previous["methods"].items() if k not in runs}
    for row in kept.values():
        row["mean"], row["std"] = summarize_seeds(row["per_seed"], METRIC_KEYS)
    names = [k for k in METHODS if k in runs or k in kept]
    names += [k for k in list(previous["methods"]) + list(runs) if k not in METHODS and k not in names]
    merged = {k: (runs[k] if k in runs else kept[k]) for k in names}
    return merged, sorted(kept)


def shortfalls_vs_paper(runs: dict[str, dict], paper: dict[str, dict[str, float]]) -> list[str]:
    """Every metric where a row's mean falls below its published number (percent, ``paper`` as in :data:`PAPERS`)."""
    out = []
    for name, ref in paper.items():
        if name in runs:
            for k, v in ref.items():
                m = runs[name]["mean"][k]
                got = float("nan") if m is None else 100 * m
                if not got >= v:
                    out.append(f"{name} {k}: {got:.2f} < paper {v:.2f} ({got - v:+.2f})")
    return out


def every_column_check(runs: dict[str, dict], maxima: dict[str, float] = ML100K_COLUMN_MAX) -> dict[str, Any]:
    """Which rows' means beat (≥) the best published value of every column at once, and by how much
    each row misses. ``{"column_max": …, "rows": {name: {"beats_all": bool, "misses": {col: gap}}}}``."""
    rows = {}
    for name, row in runs.items():
        misses = {}
        for k, best in maxima.items():
            m = row["mean"].get(k)
            got = float("nan") if m is None else 100 * m
            if not got >= best:
                misses[k] = round(got - best, 4)
        rows[name] = {"beats_all": not misses, "misses": misses}
    return {"column_max": maxima, "rows": rows}


def to_markdown(payload: dict) -> str:
    """The results table (percent), shortfalls and diagnostics of a recsys_quality payload."""
    runs, seeds = payload["methods"], payload["seeds"]
    paper = payload["paper_percent"]
    merged_from = payload["rows_kept_from_previous_file"]

    def cell(name: str, k: str) -> str:
        txt = mean_std_cell([r[k] for r in runs[name]["per_seed"]])
        if paper and k in paper.get(name, {}):
            txt += f" ({paper[name][k]:.2f})"
        return txt

    def rule(name: str) -> str:
        c = runs[name]["config"]
        stop = (f", patience {c['patience']}" + (f" (gain > {c['min_delta']:g})" if c.get("min_delta") else "")
                if c.get("patience") else ", no early stop")
        return f"val {c['select_metric']} / {c['eval_every']} ep{stop}"

    def seeds_of(name: str) -> str:
        s = runs[name].get("seeds", seeds)
        return "" if list(s) == list(seeds) else f" (seeds {s})"

    total = payload["total_seconds"]

    def best_epochs(name: str) -> str:
        return "/".join(str(e) for e in runs[name].get("best_epochs") or []) or "–"

    rows = [[name + seeds_of(name), str(runs[name]["epochs"]), best_epochs(name), rule(name)]
            + [cell(name, k) for k in SHOWN] for name in runs]
    source = payload.get("paper_source")
    md = [f"# Collaborative ranking quality: {payload['dataset']}, protocol `{payload['protocol']}`", "",
          (f"Test metrics in percent, mean ± {STD_NOTE} over seeds {seeds}" if len(seeds) > 1
           else f"Test metrics in percent, one seed ({seeds[0]}), so no spread is shown")
          + (f"; in parentheses the published number ({source}). " if paper else ". ")
          + "Model selection on validation only, per row (`selection`: metric / evaluation period, early stopping "
          "patience in evaluations); `epochs` is each row's budget, `best` its best validation epoch per seed (a row "
          "whose best epoch is its budget may not have converged). Written by `rankguard bench recsys_quality`"
          + (" (QUICK smoke run, not a result)" if payload["quick"] else "")
          + f"; training and evaluation of all rows took {total / 60:.1f} min ({payload['torch_threads']} torch "
          "thread(s))"
          + (f"; rows {', '.join(merged_from)} kept from the previous run, "
             f"{', '.join(payload['rows_rerun'])} re-run." if merged_from else ".")
          + " " + environment_line(payload["environment"]), "",
          markdown_table(["method", "epochs", "best", "selection"] + list(SHOWN), rows)]
    tuned = [f"- {name}: `{runs[name]['tuned_from']}`" for name in runs if runs[name].get("tuned_from")]
    if tuned:
        md += ["", "Rows trained from a `rankguard recsys tune` choice (one seed per grid point, validation only):", ""]
        md += tuned
    if paper:
        md += ["", "## Shortfalls against the published numbers", ""]
        md += [f"- {s}" for s in payload["shortfalls_vs_seed"]] or ["- none"]
    check = payload.get("every_column")
    if check:
        winners = [n for n, r in check["rows"].items() if r["beats_all"]]
        md += ["", "## One row above the best published value of every column", "",
               "Column maxima over all rows of the seed table: "
               + ", ".join(f"{k} {v:.2f}" for k, v in check["column_max"].items()) + ".", "",
               (f"Rows at or above every maximum: {', '.join(winners)}." if winners else
                "**No row is at or above every maximum.**") + " Closest misses per row:", ""]
        md += [f"- {n}: " + (", ".join(f"{k} {g:+.2f}" for k, g in r["misses"].items()) or "none")
               for n, r in check["rows"].items()]
    md.append("")
    diag_rows = [[name, f"{runs[name]['diagnostics']['sampling_tv']['tv']:.4f}",
                  runs[name]["diagnostics"]["sampling_tv"]["method"]] for name in runs if runs[name]["diagnostics"]]
    if diag_rows:
        ess = next(r["diagnostics"]["effective_sample_size"] for r in runs.values() if r["diagnostics"])
        md += ["## Diagnostics", "",
               f"Effective sample size over {ess['users']} users: mean {ess['mean']:.2f}, median {ess['median']:.2f}, "
               f"min {ess['min']:.2f}. TV distance between each method's trained-on pair distribution and the per-user "
               f"uniform one (first seed's final model):", "",
               markdown_table(["method", "TV", "how"], diag_rows)]
    return "\n".join(md)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default=AUTHORS_DATASET)
    p.add_argument("--protocol", default="authors", choices=("authors", "standard"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=None, choices=list(METHODS),
                   help="rows to (re-)run and merge into the existing table (default: every built-in row)")
    p.add_argument("--tuned", type=parse_tuned, action="append", default=[], metavar="NAME=FILE",
                   help="also run a row NAME from a `rankguard recsys tune` best_config.json (repeatable)")
    p.add_argument("--epochs", type=parse_epochs, default=None,
                   help="N (every method) or METHOD=N,... (only those methods) instead of the defaults")
    p.add_argument("--eval-every", type=int, default=None, metavar="N",
                   help="validate every N epochs in every row run now (default: each recipe's period)")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="settings",
                   help="config fields set in every row run now, e.g. lr=0.01 (as chosen by `rankguard recsys "
                        "tune` on validation); the rows' configs record them")
    p.add_argument("--quick", action="store_true", help=f"1 seed, {QUICK_EPOCHS} epochs: a smoke run, not a result")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 = steadiest on a shared 2-core box)")
    p.add_argument("--out", default=str(default_results_dir()), help="results folder (default: the checkout's results/)")
    add_cache_arguments(p, "recsys_quality")


def run(args: argparse.Namespace) -> int:
    """Train the rows one after another; after EACH row the JSON and Markdown are rewritten with
    every row finished so far merged into the existing file, so a long table can be completed over
    several runs; with the per-seed cache a killed run loses at most the seed in progress."""
    torch.set_num_threads(args.threads)
    seeds = args.seeds[:1] if args.quick else args.seeds
    methods = list(METHODS) if args.methods is None and not args.tuned else list(args.methods or [])
    jobs = [(name, None) for name in methods] + list(args.tuned)
    if args.eval_every is not None and args.eval_every < 1:
        raise ValueError(f"--eval-every must be >= 1, got {args.eval_every}")
    settings = parse_settings(args.settings)
    for name, path in jobs:   # a bad tuned file or setting fails before any training
        method_configs(name, args.dataset, args.protocol, seeds[:1], None, path, None, settings)
    split = load_split(args.dataset)
    stem = results_name(args.dataset, args.protocol, args.quick)
    cache = cache_from_args(args, "recsys_quality")
    cache = cache / stem if cache is not None else None
    whole_table = set(methods) == set(METHODS) and not args.tuned
    paper, source = PAPERS.get((Path(args.dataset).name, args.protocol), (None, None))
    runs: dict[str, dict] = {}
    with MeasuredRun() as measured:
        for name, path in jobs:
            if args.quick or path is None:
                epochs: int | None = epochs_for(name, args.epochs, args.quick)
            else:   # a tuned row keeps its file's epochs unless --epochs N sets every row
                epochs = None if isinstance(args.epochs, dict) else args.epochs
            runs[name] = run_method(name, split, args.dataset, args.protocol, seeds, epochs, path, args.eval_every,
                                    settings, cache)
            measured.mark()
            with results_lock(args.out, stem):   # re-read: another process may have added rows meanwhile
                written = write_table(args, runs, None if whole_table else read_results(args.out, stem),
                                      seeds, stem, paper, source, measured)
            print(f"wrote {written[0]} and {written[1]} after {name} "
                  f"({written[2]:.0f} s of training in the table)", flush=True)
    return 0


def write_table(args: argparse.Namespace, runs: dict[str, dict], previous: dict | None, seeds: list[int], stem: str,
                paper: Any, source: Any, measured: Any) -> tuple[Path, Path, float]:
    """Merge the rows run now into ``previous`` and write the JSON and Markdown; returns both paths and
    the table's training seconds."""
    merged, merged_from = merge_previous(dict(runs), previous, args.dataset, args.protocol)
    # whole-table wall time: every row's training runs (merged rows keep their own timings)
    total = float(sum(sum(r["wall_seconds"]) for r in merged.values()))
    payload = {"dataset": args.dataset, "protocol": args.protocol, "seeds": seeds, "quick": args.quick,
               "metrics_are": "fractions in [0, 1]; null = no user qualifies",
               "std_is": STD_NOTE + "; null for one seed", "total_seconds": total,
               "torch_threads": args.threads, "machine": measured.environment["machine"],
               "environment": measured.environment,
               "paper_percent": paper, "paper_source": source,
               "shortfalls_vs_seed": shortfalls_vs_paper(merged, paper) if paper else None,
               "every_column": every_column_check(merged) if args.dataset == AUTHORS_DATASET
               and args.protocol == "authors" else None,
               "rows_rerun": sorted(runs), "rows_kept_from_previous_file": merged_from,
               "methods": merged}
    json_path, md_path = write_results(args.out, stem, payload, to_markdown(payload))
    return json_path, md_path, total


def main(argv: list[str] | None = None) -> int:
    return standalone_main("recsys_quality", __doc__, add_arguments, run, argv)
