"""Quality of CML samplers, MF-BPR and SFCML on ML-100K under the authors' protocol and split.

    RANKGUARD_DATA=/work/shared/data rankguard bench recsys_quality            # full table (~15-20 min, 2 cores)
    RANKGUARD_DATA=/work/shared/data rankguard bench recsys_quality --quick --out /tmp/q   # smoke run (1 seed, 2 epochs)

Writes ``results/recsys_quality.json`` (every seed's test metrics as fractions, mean, std, timing,
diagnostics, environment) and ``results/recsys_quality.md`` (mean ± sample std (ddof=1) in percent next
to the seed paper's numbers, shortfalls listed). Other datasets or protocols (``--dataset ml-1m
--protocol standard``) write ``results/recsys_quality_<dataset>[_<protocol>].{json,md}`` (the protocol
is named when it is not ``authors``); ``--quick`` appends ``_quick``. The seed paper's numbers are
shown only for ``ml-100k-libcml`` under ``authors``.

``--epochs 20`` gives every method 20 epochs; ``--epochs SFCML=100,UniS=20`` sets only the named
methods' counts (the rest keep :data:`EPOCHS`). The table's ``epochs`` column shows each row's count.

``--methods SFCML`` (any subset) re-runs only those rows and MERGES them into the existing JSON/Markdown
(other methods' rows are kept as they were, their mean ± std recomputed from their per-seed values
with the project's convention; the shortfall list is recomputed over all rows).

Model selection uses each method's configured rule (validation only): the sampled baselines keep
the best validation P@3 (DPCML's rule), checked every 5 epochs; SFCML follows LibCML's loop (best
validation AUC, checked every epoch, no early stopping). The Markdown table names each row's rule.

Epoch budget (2 CPU cores, ≤ ~20 minutes for the whole table): SFCML runs its authors' ML-100K
script length (300 epochs, ~0.2 s each); the sampled CML baselines cost 1–3.5 s per epoch here, so
they get :data:`EPOCHS` (60, 2stS 30) — fewer than their papers' runs; their rows are therefore a
lower bound on what the samplers reach with a longer budget.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import torch

from rankguard.bench.harness import (STD_NOTE, MeasuredRun, default_results_dir, environment_line,
                                     finite_or_none, mean_std_cell, read_results, standalone_main,
                                     summarize_seeds, timed_call, write_results)
from rankguard.recsys.cli import load_split
from rankguard.recsys.trainer import METRIC_KEYS, make_config, train
from rankguard.runs import markdown_table

# method -> (recipe, sampler or None for the recipe's own)
METHODS: dict[str, tuple[str, str | None]] = {
    "UniS": ("cml", "unis"), "PopS": ("cml", "pops"), "2stS": ("cml", "2sts"), "HarS": ("cml", "hars"),
    "MF-BPR": ("mf-bpr", None), "SFCML": ("sfcml", None),
    "DPCML1": ("dpcml1", None), "DPCML2": ("dpcml", None), "DPCML-SF": ("dpcml-sf", None),
}
EPOCHS = {"UniS": 60, "PopS": 60, "2stS": 30, "HarS": 60, "MF-BPR": 100, "SFCML": 300,
          "DPCML1": 100, "DPCML2": 100, "DPCML-SF": 300}
QUICK_EPOCHS = 2
# the seed talk's ML-100K table (percent), authors' protocol and split
PAPER = {
    "SFCML": {"P@3": 23.40, "R@3": 7.62, "NDCG@3": 23.63, "P@5": 23.74, "R@5": 9.95, "NDCG@5": 24.65,
              "MAP": 18.00, "MRR": 43.13, "AUC": 93.11},
    "HarS": {"P@3": 20.76, "NDCG@3": 21.05, "MAP": 15.94, "AUC": 91.66},
    "UniS": {"P@3": 15.94, "MAP": 13.21},
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


def run_method(name: str, split: Any, dataset: str, protocol: str, seeds: list[int], epochs: int) -> dict:
    """Train ``name`` once per seed; the row of the JSON file (keys as in results/recsys_quality.json)."""
    model, sampler = METHODS[name]
    per_seed, secs, best_epochs, tvs, configs = [], [], [], [], []
    for seed in seeds:
        cfg = make_config(model, dataset, sampler=sampler, epochs=epochs, seed=seed, protocol=protocol)
        cfg = dataclasses.replace(cfg, eval_every=min(cfg.eval_every, epochs))
        configs.append(cfg)
        res, wall = timed_call(lambda: train(cfg, split, dataset=dataset, log=None, diagnostics=(seed == seeds[0])))
        secs.append(wall)
        per_seed.append({k: finite_or_none(v) for k, v in res.test_metrics.items()})
        best_epochs.append(res.best_epoch)
        if res.diagnostics:
            tvs.append(res.diagnostics)
        print(f"{name} seed {seed}: P@3 {100 * res.test_metrics['P@3']:.2f} AUC {100 * res.test_metrics['AUC']:.2f} "
              f"best epoch {res.best_epoch}/{epochs} ({wall:.0f} s, {res.epoch_seconds:.2f} s/epoch)", flush=True)
    mean, std = summarize_seeds(per_seed, METRIC_KEYS)
    return {"model": model, "sampler": sampler, "epochs": epochs, "config": _config_dict(configs[0]), "seeds": seeds,
            "per_seed": per_seed, "mean": mean, "std": std, "best_epochs": best_epochs,
            "wall_seconds": secs, "diagnostics": tvs[0] if tvs else None}


def merge_previous(runs: dict[str, dict], previous: dict | None, dataset: str, protocol: str
                   ) -> tuple[dict[str, dict], list[str] | None]:
    """Rows of ``previous`` (same dataset and protocol) not re-run now, merged in :data:`METHODS` order;
    their mean ± std recomputed from ``per_seed`` (one convention in a file). Returns (rows, kept names)."""
    if previous is None or previous.get("dataset") != dataset or previous.get("protocol") != protocol:
        return runs, None
    kept = {k: dict(v) for k, v in previous["methods"].items() if k not in runs}
    for row in kept.values():
        row["mean"], row["std"] = summarize_seeds(row["per_seed"], METRIC_KEYS)
    merged = {k: (runs[k] if k in runs else kept[k]) for k in METHODS if k in runs or k in kept}
    return merged, sorted(kept)


def shortfalls_vs_paper(runs: dict[str, dict]) -> list[str]:
    """Every metric where a row's mean falls below the seed paper's number (percent)."""
    out = []
    for name, ref in PAPER.items():
        if name in runs:
            for k, v in ref.items():
                m = runs[name]["mean"][k]
                got = float("nan") if m is None else 100 * m
                if not got >= v:
                    out.append(f"{name} {k}: {got:.2f} < seed {v:.2f} ({got - v:+.2f})")
    return out


def to_markdown(payload: dict) -> str:
    """The results table (percent), shortfalls and diagnostics of a recsys_quality payload."""
    runs, seeds, authors_table = payload["methods"], payload["seeds"], payload["paper_percent"] is not None
    merged_from = payload["rows_kept_from_previous_file"]

    def cell(name: str, k: str) -> str:
        txt = mean_std_cell([r[k] for r in runs[name]["per_seed"]])
        if authors_table and k in PAPER.get(name, {}):
            txt += f" ({PAPER[name][k]:.2f})"
        return txt

    def rule(name: str) -> str:
        c = runs[name]["config"]
        stop = f", patience {c['patience']}" if c.get("patience") else ", no early stop"
        return f"val {c['select_metric']} / {c['eval_every']} ep{stop}"

    total = payload["total_seconds"]
    rows = [[name, str(runs[name]["epochs"]), rule(name)] + [cell(name, k) for k in SHOWN] for name in runs]
    md = [f"# Collaborative ranking quality: {payload['dataset']}, protocol `{payload['protocol']}`", "",
          (f"Test metrics in percent, mean ± {STD_NOTE} over seeds {seeds}" if len(seeds) > 1
           else f"Test metrics in percent, one seed ({seeds[0]}), so no spread is shown")
          + ("; in parentheses the seed paper's number. " if authors_table else ". ")
          + "Model selection on validation only, per row (`selection`: metric / evaluation period, early stopping "
          "patience in evaluations). Written by `rankguard bench recsys_quality`"
          + (" (QUICK smoke run, not a result)" if payload["quick"] else "")
          + f"; training and evaluation of all rows took {total / 60:.1f} min ({payload['torch_threads']} torch "
          "thread(s))"
          + (f"; rows {', '.join(merged_from)} kept from the previous run, "
             f"{', '.join(payload['rows_rerun'])} re-run." if merged_from else ".")
          + " " + environment_line(payload["environment"]), "",
          markdown_table(["method", "epochs", "selection"] + list(SHOWN), rows)]
    if authors_table:
        md += ["## Shortfalls against the seed numbers", ""]
        md += [f"- {s}" for s in payload["shortfalls_vs_seed"]] or ["- none"]
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
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--epochs", type=parse_epochs, default=None,
                   help="N (every method) or METHOD=N,... (only those methods) instead of the defaults")
    p.add_argument("--quick", action="store_true", help=f"1 seed, {QUICK_EPOCHS} epochs: a smoke run, not a result")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 = steadiest on a shared 2-core box)")
    p.add_argument("--out", default=str(default_results_dir()), help="results folder (default: the checkout's results/)")


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    seeds = args.seeds[:1] if args.quick else args.seeds
    split = load_split(args.dataset)
    with MeasuredRun() as measured:
        runs = {name: run_method(name, split, args.dataset, args.protocol, seeds,
                                 epochs_for(name, args.epochs, args.quick))
                for name in args.methods}
    stem = results_name(args.dataset, args.protocol, args.quick)
    previous = read_results(args.out, stem) if set(args.methods) != set(METHODS) else None
    runs, merged_from = merge_previous(runs, previous, args.dataset, args.protocol)
    # whole-table wall time: every row's training runs (merged rows keep their own timings)
    total = float(sum(sum(r["wall_seconds"]) for r in runs.values()))
    authors_table = args.dataset == AUTHORS_DATASET and args.protocol == "authors"
    payload = {"dataset": args.dataset, "protocol": args.protocol, "seeds": seeds, "quick": args.quick,
               "metrics_are": "fractions in [0, 1]; null = no user qualifies",
               "std_is": STD_NOTE + "; null for one seed", "total_seconds": total,
               "torch_threads": args.threads, "machine": measured.environment["machine"],
               "environment": measured.environment,
               "paper_percent": PAPER if authors_table else None,
               "shortfalls_vs_seed": shortfalls_vs_paper(runs) if authors_table else None,
               "rows_rerun": sorted(k for k in runs if k in args.methods), "rows_kept_from_previous_file": merged_from,
               "methods": runs}
    json_path, md_path = write_results(args.out, stem, payload, to_markdown(payload))
    print(f"wrote {json_path} and {md_path} ({total:.0f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    return standalone_main("recsys_quality", __doc__, add_arguments, run, argv)
