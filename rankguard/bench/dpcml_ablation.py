"""DPCML ablation on ML-100K (authors' split and protocol): number of vectors C, the diversity regulariser, BPA vs APA.

    RANKGUARD_DATA=/work/shared/data rankguard bench dpcml_ablation                 # all variants, seed 0 (~10 min, 1 thread)
    RANKGUARD_DATA=/work/shared/data rankguard bench dpcml_ablation --seeds 1 2 --add-seeds   # more seeds, merged
    RANKGUARD_DATA=/work/shared/data rankguard bench dpcml_ablation --quick --out /tmp/a      # smoke run (1 epoch)

Base recipe ``dpcml-sf`` (DPCML's nearest-vector scores, SFCML's exact all-pairs squared loss and LibCML
settings, the ML-100K preset: margin 2.0, dim 256, 300 epochs, best validation AUC every epoch, no
early stop) with the diversity regulariser (η, δ₁, δ₂) = (10, 0.05, 0.25). Each variant changes one
thing (:data:`VARIANTS`): C ∈ {1, 2, 3, 5} with fixed vector counts (BPA) and the regulariser; at
C = 5 the regulariser off (η = 0), APA (``vector_rule="log2"``: C_u = min(C, max(1, ⌊log₂|I_u|⌋))),
and user vectors projected from one user embedding. With C = 1 the regulariser has nothing to act
on (a user with one vector has no spread), so C = 1 is also the "no regulariser" point at C = 1.

Writes ``results/dpcml_ablation.{json,md,png}`` (``_quick`` appended for ``--quick``): per variant
every seed's overall and tail test metrics (fractions; tail = items outside the 20% most popular by
training count), mean ± std, the vectors a test user actually uses (nearest vector for at least one
test item) and the mean active C_u, best epochs and wall times. ``--variants`` (any subset) re-runs
only those rows and merges them into the existing file; ``--add-seeds`` keeps the previous file's
seeds of a re-run variant (same config apart from the seed) and adds the new ones.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rankguard.bench.harness import (STD_NOTE, MeasuredRun, default_results_dir, environment_line,
                                     finite_or_none, mean_std_cell, read_results, standalone_main,
                                     summarize_seeds, timed_call, write_results)
from rankguard.recsys.cli import load_split
from rankguard.recsys.recipes import METRIC_KEYS, TAIL_KEYS, TrainConfig, make_config
from rankguard.recsys.trainer import train
from rankguard.runs import markdown_table

DATASET = "ml-100k-libcml"
BASE = "dpcml-sf"
ETA, DELTA1, DELTA2 = 10.0, 0.05, 0.25
# variant id -> (table label, config overrides of the base recipe)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "C1": ("C = 1", dict(vectors=1)),
    "C2": ("C = 2", dict(vectors=2)),
    "C3": ("C = 3", dict(vectors=3)),
    "C5": ("C = 5", dict(vectors=5)),
    "C5-noreg": ("C = 5, no regulariser (η = 0)", dict(vectors=5, diversity=(0.0, DELTA1, DELTA2))),
    "C5-apa": ("C = 5, APA (C_u = min(C, max(1, ⌊log₂ n_u⌋)))", dict(vectors=5, vector_rule="log2")),
    "C5-projected": ("C = 5, projected user vectors", dict(vectors=5, user_vectors="projected")),
}
SHOWN = ("P@3", "NDCG@3", "MAP", "AUC", "tail_P@3", "tail_NDCG@3")
KEYS = (*METRIC_KEYS, *TAIL_KEYS, "vectors_used", "active_vectors")
EPOCHS = 300
QUICK_EPOCHS = 1


def results_name(quick: bool) -> str:
    """``dpcml_ablation`` (``_quick`` for a smoke run)."""
    return "dpcml_ablation" + ("_quick" if quick else "")


def variant_config(variant: str, seed: int, epochs: int):
    """The TrainConfig of one variant (base recipe + ML-100K preset + the variant's overrides)."""
    _, overrides = VARIANTS[variant]
    values = dict(dict(vectors=5, diversity=(ETA, DELTA1, DELTA2), vector_rule="fixed", user_vectors="free"),
                  **overrides)
    cfg = make_config(BASE, DATASET, epochs=epochs, seed=seed, **values)
    return dataclasses.replace(cfg, eval_every=min(cfg.eval_every, epochs))


def run_variant(variant: str, split: Any, seeds: list[int], epochs: int) -> dict:
    """Train one variant once per seed; its row of the JSON file."""
    per_seed, secs, best_epochs, usage, epoch_secs = [], [], [], [], []
    cfg0 = None
    for seed in seeds:
        cfg = variant_config(variant, seed, epochs)
        cfg0 = cfg0 or cfg
        res, wall = timed_call(lambda: train(cfg, split, dataset=DATASET, log=None, diagnostics=False))
        vu = res.diagnostics["vector_usage"]
        row = {k: finite_or_none(v) for k, v in res.test_metrics.items()}
        row.update(seed=seed, vectors_used=finite_or_none(vu["mean"]), active_vectors=finite_or_none(vu["mean_active"]))
        per_seed.append(row)
        secs.append(wall)
        epoch_secs.append(res.epoch_seconds)
        best_epochs.append(res.best_epoch)
        usage.append(vu)
        print(f"{variant} seed {seed}: P@3 {100 * row['P@3']:.2f} tail P@3 {100 * (row['tail_P@3'] or 0):.2f} "
              f"AUC {100 * row['AUC']:.2f} vectors used {vu['mean']:.2f}, best epoch {res.best_epoch}/{epochs} "
              f"({wall:.0f} s, {res.epoch_seconds:.2f} s/epoch)", flush=True)
    return finish_row(variant, {"label": VARIANTS[variant][0], "epochs": epochs,
                                "config": cfg0.to_dict(), "seeds": list(seeds), "per_seed": per_seed,
                                "best_epochs": best_epochs, "wall_seconds": secs, "epoch_seconds": epoch_secs,
                                "vector_usage": usage})


def finish_row(variant: str, row: dict) -> dict:
    """(Re)compute a row's mean ± std from its ``per_seed`` entries."""
    row["mean"], row["std"] = summarize_seeds(row["per_seed"], KEYS)
    return row


def _same_config(a: dict, b: dict) -> bool:
    """Equal apart from the seed, compared as JSON (a tuple read back from the file is a list) after
    both pass through :meth:`TrainConfig.from_dict`: a field an older file lacks takes its default,
    which is what replaying that file does (a file written before a field existed is the same config)."""
    def plain(c: dict) -> str:
        full = TrainConfig.from_dict(dict(c), where="a dpcml_ablation row").to_dict()
        return json.dumps({k: v for k, v in full.items() if k != "seed"}, sort_keys=True)
    return plain(a) == plain(b)


def merge_previous(runs: dict[str, dict], previous: dict | None, add_seeds: bool
                   ) -> tuple[dict[str, dict], list[str]]:
    """Rows of ``previous`` not re-run now are kept; with ``add_seeds`` a re-run row also keeps the
    previous seeds it did not re-run (when its config, apart from the seed, is unchanged).
    Returns (rows in :data:`VARIANTS` order, names of rows kept as they were)."""
    if previous is None or previous.get("dataset") != DATASET:
        return runs, []
    old = previous.get("variants", {})
    kept = sorted(k for k in old if k not in runs and k in VARIANTS)
    merged: dict[str, dict] = {}
    for name in VARIANTS:
        if name in runs:
            row = runs[name]
            prev = old.get(name)
            if add_seeds and prev is not None and prev["epochs"] == row["epochs"] \
                    and _same_config(prev["config"], row["config"]):
                new_seeds = set(row["seeds"])
                keep = [i for i, s in enumerate(prev["seeds"]) if s not in new_seeds]
                for key in ("per_seed", "best_epochs", "wall_seconds", "epoch_seconds", "vector_usage"):
                    row[key] = [prev[key][i] for i in keep] + row[key]
                row["seeds"] = [prev["seeds"][i] for i in keep] + row["seeds"]
                order = np.argsort(row["seeds"], kind="stable")
                for key in ("seeds", "per_seed", "best_epochs", "wall_seconds", "epoch_seconds", "vector_usage"):
                    row[key] = [row[key][i] for i in order]
                if row["seeds"][0] in prev["seeds"]:   # the config of the first seed (replays per_seed[0])
                    row["config"] = prev["config"]
                finish_row(name, row)
            merged[name] = row
        elif name in old:
            merged[name] = finish_row(name, dict(old[name]))
    return merged, kept


def _seeds_note(rows: dict[str, dict]) -> str:
    counts = sorted({len(r["seeds"]) for r in rows.values()})
    if counts == [1]:
        seeds = sorted({r["seeds"][0] for r in rows.values()})
        return f"**1 seed** ({', '.join(map(str, seeds))}), so no spread is shown"
    return f"seeds per row as listed (mean ± {STD_NOTE} where a row has more than one)"


def to_markdown(payload: dict) -> str:
    """The ablation table (percent) of a dpcml_ablation payload."""
    rows = payload["variants"]

    def cell(name: str, k: str) -> str:
        return mean_std_cell([r.get(k) for r in rows[name]["per_seed"]])

    def used(name: str) -> str:
        r = rows[name]
        return (mean_std_cell([s["vectors_used"] for s in r["per_seed"]], scale=1.0) + " / "
                + mean_std_cell([s["active_vectors"] for s in r["per_seed"]], scale=1.0))

    body = [[rows[n]["label"], str(len(rows[n]["seeds"])), f"{rows[n]['epochs']} (best {', '.join(map(str, rows[n]['best_epochs']))})"]
            + [cell(n, k) for k in SHOWN] + [used(n), f"{np.mean(rows[n]['wall_seconds']):.0f}"] for n in rows]
    total = payload["total_seconds"]
    kept = payload["rows_kept_from_previous_file"]
    md = [f"# DPCML ablation: {DATASET}, authors' split and protocol", "",
          f"Base recipe `{BASE}` (nearest-vector scores over C user vectors on the unit sphere, SFCML's exact "
          f"all-pairs squared loss, Adagrad 0.05, weight decay 1e-5, margin 2.0, dim 256; best validation AUC "
          f"every epoch, no early stop) with the diversity regulariser (η, δ₁, δ₂) = ({ETA:g}, {DELTA1:g}, "
          f"{DELTA2:g}) and fixed vector counts (BPA) unless the row says otherwise; C = 1 has no spread to "
          f"regularise. Test metrics in percent, {_seeds_note(rows)}; tail = items outside the 20% most "
          f"popular by training count. `vectors used / C_u`: mean over test users of how many of their vectors "
          f"are the nearest one for at least one test item, and the mean number of active vectors. Written by "
          f"`rankguard bench dpcml_ablation`" + (" (QUICK smoke run, not a result)" if payload["quick"] else "")
          + ("" if payload.get("complete", True) else " (PARTIAL: the run was still going or was interrupted)")
          + f"; all rows' training and evaluation took {total / 60:.1f} min ({payload['torch_threads']} torch "
          f"thread(s))" + (f"; rows {', '.join(kept)} kept from the previous run." if kept else ".")
          + " " + environment_line(payload["environment"]), "",
          markdown_table(["variant", "seeds", "epochs", *SHOWN, "vectors used / C_u", "s / run"], body)]
    return "\n".join(md)


def plot(payload: dict, path: str | Path) -> Path:
    """P@3 and tail P@3 (percent) against C for BPA with the regulariser; the C = 5 variants as markers."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rankguard.plots import save_figure

    rows = payload["variants"]
    fig = Figure(figsize=(11.0, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    marks = {"C5-noreg": ("x", "no regulariser"), "C5-apa": ("s", "APA"), "C5-projected": ("^", "projected")}
    for ax, key, title, scale in zip(axes, ("P@3", "tail_P@3", "vectors_used"),
                                     ("P@3 (%)", "tail P@3 (%)", "vectors used per test user"), (100, 100, 1)):
        def stats(name: str) -> tuple[float, float]:
            vals = [s[key] for s in rows[name]["per_seed"] if s.get(key) is not None]
            return (scale * float(np.mean(vals)) if vals else float("nan"),
                    scale * float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0)
        line = [n for n in ("C1", "C2", "C3", "C5") if n in rows]
        if line:
            cs = [rows[n]["config"]["vectors"] for n in line]
            m, s = zip(*(stats(n) for n in line))
            ax.errorbar(cs, m, yerr=s, marker="o", capsize=3, label="BPA + regulariser")
        for k, (n, (marker, label)) in enumerate(marks.items()):
            if n in rows:   # side by side just right of C = 5
                m, s = stats(n)
                ax.errorbar([rows[n]["config"]["vectors"] + 0.12 * (k + 1)], [m], yerr=[s], marker=marker, linestyle="none",
                            capsize=3, markersize=8, label=f"C = 5, {label}")
        ax.set_xlabel("C (user vectors)")
        ax.set_xticks([1, 2, 3, 4, 5])
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    nseeds = sorted({len(r["seeds"]) for r in rows.values()})
    fig.suptitle(f"DPCML ablation ({BASE}, {DATASET}, authors' protocol; "
                 f"{'1 seed' if nseeds == [1] else 'seeds: ' + '/'.join(map(str, nseeds))}"
                 f"{', QUICK' if payload['quick'] else ''})")
    return save_figure(fig, path)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--epochs", type=int, default=EPOCHS, help=f"epochs per run (default {EPOCHS}, the ML-100K preset)")
    p.add_argument("--add-seeds", action="store_true",
                   help="keep the previous file's other seeds of each re-run variant (same config) and add these")
    p.add_argument("--quick", action="store_true", help=f"1 seed, {QUICK_EPOCHS} epoch(s): a smoke run, not a result")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 = steadiest on a shared 2-core box)")
    p.add_argument("--out", default=str(default_results_dir()), help="results folder (default: the checkout's results/)")


def write_payload(args: argparse.Namespace, runs: dict[str, dict], previous: dict | None, seeds: list[int],
                  measured: MeasuredRun, done: bool) -> tuple[Path, Path, Path]:
    """Merge ``runs`` into ``previous`` and write JSON, Markdown and PNG (after every variant, so an
    interrupted run keeps the rows it finished; ``done`` is false until the last one)."""
    rows, kept = merge_previous(copy.deepcopy(runs), previous, args.add_seeds)
    total = float(sum(sum(r["wall_seconds"]) for r in rows.values()))
    payload = {"benchmark": "dpcml_ablation", "dataset": DATASET, "protocol": "authors", "base_recipe": BASE,
               "quick": args.quick, "seeds_run_now": seeds, "complete": done,
               "metrics_are": "fractions in [0, 1]; null = no user qualifies; tail_* = items outside the 20% most "
                              "popular by training count; vectors_used = mean vectors nearest to >= 1 test item "
                              "per test user; active_vectors = mean C_u",
               "std_is": STD_NOTE + "; null for one seed", "total_seconds": total, "torch_threads": args.threads,
               "environment": measured.environment, "wall_s": measured.wall_s,
               "rows_rerun": list(runs), "rows_kept_from_previous_file": kept, "variants": rows}
    stem = results_name(args.quick)
    json_path, md_path = write_results(args.out, stem, payload, to_markdown(payload))
    return json_path, md_path, plot(payload, Path(args.out) / f"{stem}.png")


def run(args: argparse.Namespace) -> int:
    if args.epochs < 1:
        raise SystemExit(f"--epochs must be >= 1, got {args.epochs}")
    torch.set_num_threads(args.threads)
    seeds = args.seeds[:1] if args.quick else args.seeds
    epochs = QUICK_EPOCHS if args.quick else args.epochs
    split = load_split(DATASET)
    previous = read_results(args.out, results_name(args.quick))
    runs: dict[str, dict] = {}
    with MeasuredRun() as measured:
        for v in args.variants:
            runs[v] = run_variant(v, split, seeds, epochs)
            if v != args.variants[-1]:
                write_payload(args, runs, previous, seeds, measured, done=False)
    paths = write_payload(args, runs, previous, seeds, measured, done=True)
    print(f"wrote {', '.join(map(str, paths))} ({measured.wall_s:.0f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    return standalone_main("dpcml_ablation", __doc__, add_arguments, run, argv)
