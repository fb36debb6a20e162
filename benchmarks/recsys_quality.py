"""Quality of CML samplers, MF-BPR and SFCML on ML-100K under the authors' protocol and split.

    RANKGUARD_DATA=/work/shared/data python benchmarks/recsys_quality.py            # full table (~15-20 min, 2 cores)
    RANKGUARD_DATA=/work/shared/data python benchmarks/recsys_quality.py --quick    # smoke run (1 seed, 2 epochs)

Writes ``results/recsys_quality.json`` (every seed's test metrics as fractions, mean, std, timing,
diagnostics) and ``results/recsys_quality.md`` (mean ± std in percent next to the seed paper's numbers,
shortfalls listed). Other datasets or protocols (``--dataset ml-1m --protocol standard``) write
``results/recsys_quality_<dataset>[_<protocol>].{json,md}`` (the protocol is named when it is not
``authors``); the seed paper's numbers are shown only for ``ml-100k-libcml`` under ``authors``.

``--epochs 20`` gives every method 20 epochs; ``--epochs SFCML=100,UniS=20`` sets only the named
methods' counts (the rest keep :data:`EPOCHS`). The table's ``epochs`` column shows each row's count.

``--methods SFCML`` (any subset) re-runs only those rows and MERGES them into the existing JSON/Markdown
(other methods' rows are kept as they were; the shortfall list is recomputed over all rows)::

    RANKGUARD_DATA=/work/shared/data python benchmarks/recsys_quality.py --methods SFCML

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
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rankguard.recsys.cli import load_split  # noqa: E402
from rankguard.recsys.trainer import METRIC_KEYS, make_config, train  # noqa: E402
from rankguard.runs import atomic_write_text, markdown_table, write_json  # noqa: E402

# method -> (model, sampler)
METHODS: dict[str, tuple[str, str | None]] = {
    "UniS": ("cml", "unis"), "PopS": ("cml", "pops"), "2stS": ("cml", "2sts"), "HarS": ("cml", "hars"),
    "MF-BPR": ("mf-bpr", None), "SFCML": ("sfcml", None),
}
EPOCHS = {"UniS": 60, "PopS": 60, "2stS": 30, "HarS": 60, "MF-BPR": 100, "SFCML": 300}
# the seed talk's ML-100K table (percent), authors' protocol and split
PAPER = {
    "SFCML": {"P@3": 23.40, "R@3": 7.62, "NDCG@3": 23.63, "P@5": 23.74, "R@5": 9.95, "NDCG@5": 24.65,
              "MAP": 18.00, "MRR": 43.13, "AUC": 93.11},
    "HarS": {"P@3": 20.76, "NDCG@3": 21.05, "MAP": 15.94, "AUC": 91.66},
    "UniS": {"P@3": 15.94, "MAP": 13.21},
}
SHOWN = ("P@3", "R@3", "NDCG@3", "P@5", "R@5", "NDCG@5", "MAP", "MRR", "AUC")


def _finite(v: float) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-100k-libcml")
    ap.add_argument("--protocol", default="authors", choices=("authors", "standard"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--epochs", type=parse_epochs, default=None,
                    help="N (every method) or METHOD=N,... (only those methods) instead of the defaults")
    ap.add_argument("--quick", action="store_true", help="1 seed, 2 epochs: a smoke run, not a result")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 = steadiest on a shared 2-core box)")
    ap.add_argument("--out", default=str(ROOT / "results"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = args.seeds[:1] if args.quick else args.seeds
    split = load_split(args.dataset)
    runs: dict[str, dict] = {}
    for name in args.methods:
        model, sampler = METHODS[name]
        if args.quick:
            epochs = 2
        elif isinstance(args.epochs, dict):
            epochs = args.epochs.get(name, EPOCHS[name])
        else:
            epochs = args.epochs or EPOCHS[name]
        per_seed, secs, best_epochs, tvs = [], [], [], []
        for seed in seeds:
            cfg = make_config(model, args.dataset, sampler=sampler, epochs=epochs, seed=seed, protocol=args.protocol)
            cfg = dataclasses.replace(cfg, eval_every=min(cfg.eval_every, epochs))
            t0 = time.perf_counter()
            res = train(cfg, split, dataset=args.dataset, log=None, diagnostics=(seed == seeds[0]))
            secs.append(time.perf_counter() - t0)
            per_seed.append({k: _finite(v) for k, v in res.test_metrics.items()})
            best_epochs.append(res.best_epoch)
            if res.diagnostics:
                tvs.append(res.diagnostics)
            print(f"{name} seed {seed}: P@3 {100 * res.test_metrics['P@3']:.2f} AUC {100 * res.test_metrics['AUC']:.2f} "
                  f"best epoch {res.best_epoch}/{epochs} ({secs[-1]:.0f} s, {res.epoch_seconds:.2f} s/epoch)", flush=True)
        mean = {k: _finite(np.mean([r[k] for r in per_seed if r[k] is not None])) if any(r[k] is not None for r in per_seed) else None
                for k in METRIC_KEYS}
        std = {k: _finite(np.std([r[k] for r in per_seed if r[k] is not None])) if any(r[k] is not None for r in per_seed) else None
               for k in METRIC_KEYS}
        runs[name] = {"model": model, "sampler": sampler, "epochs": epochs, "config": dataclasses.asdict(cfg), "seeds": seeds,
                      "per_seed": per_seed, "mean": mean, "std": std, "best_epochs": best_epochs,
                      "wall_seconds": secs, "diagnostics": tvs[0] if tvs else None}
    out = Path(args.out)
    authors_table = args.dataset == "ml-100k-libcml" and args.protocol == "authors"
    stem = "recsys_quality" if args.dataset == "ml-100k-libcml" else f"recsys_quality_{Path(args.dataset).name}"
    if args.protocol != "authors":
        stem += f"_{args.protocol}"
    if args.quick:
        stem += "_quick"
    merged_from = None
    previous = out / f"{stem}.json"
    if set(args.methods) != set(METHODS) and previous.exists():
        old = json.loads(previous.read_text())
        if old.get("dataset") == args.dataset and old.get("protocol") == args.protocol:
            merged_from = sorted(set(old["methods"]) - set(runs))
            kept = {k: v for k, v in old["methods"].items() if k not in runs}
            runs = {k: (runs[k] if k in runs else kept[k]) for k in METHODS if k in runs or k in kept}
    # whole-table wall time: every row's training runs (merged rows keep their own timings)
    total = float(sum(sum(r["wall_seconds"]) for r in runs.values()))

    shortfalls = []
    for name, ref in PAPER.items():
        if name in runs and authors_table:
            for k, v in ref.items():
                got = 100 * runs[name]["mean"][k]
                if got < v:
                    shortfalls.append(f"{name} {k}: {got:.2f} < seed {v:.2f} ({got - v:+.2f})")
    payload = {"dataset": args.dataset, "protocol": args.protocol, "seeds": seeds, "quick": args.quick,
               "metrics_are": "fractions in [0, 1]; null = no user qualifies", "total_seconds": total,
               "torch_threads": args.threads, "machine": platform.processor() or platform.machine(),
               "paper_percent": PAPER if authors_table else None, "shortfalls_vs_seed": shortfalls if authors_table else None,
               "rows_rerun": sorted(k for k in runs if k in args.methods), "rows_kept_from_previous_file": merged_from,
               "methods": runs}
    write_json(out / f"{stem}.json", payload)

    def cell(name: str, k: str) -> str:
        m, s = runs[name]["mean"][k], runs[name]["std"][k]
        one_seed = len(runs[name]["seeds"]) == 1  # a std over one seed is no spread: show the value alone
        txt = "n/a" if m is None else f"{100 * m:.2f}" if one_seed else f"{100 * m:.2f} ± {100 * (s or 0):.2f}"
        if name in PAPER and k in PAPER[name] and authors_table:
            txt += f" ({PAPER[name][k]:.2f})"
        return txt
    def rule(name: str) -> str:
        c = runs[name]["config"]
        stop = f", patience {c['patience']}" if c.get("patience") else ", no early stop"
        return f"val {c['select_metric']} / {c['eval_every']} ep{stop}"
    rows = [[name, str(runs[name]["epochs"]), rule(name)] + [cell(name, k) for k in SHOWN] for name in runs]
    md = [f"# Collaborative ranking quality: {args.dataset}, protocol `{args.protocol}`", "",
          (f"Test metrics in percent, mean ± std over seeds {seeds}" if len(seeds) > 1
           else f"Test metrics in percent, one seed ({seeds[0]}), so no spread is shown")
          + ("; in parentheses the seed paper's number. " if authors_table else ". ")
          + f"Model selection on validation only, per row (`selection`: metric / evaluation period, early stopping "
          f"patience in evaluations). Written by `benchmarks/recsys_quality.py`; training and evaluation of all rows "
          f"took {total / 60:.1f} min ({args.threads} torch thread(s))"
          + (f"; rows {', '.join(merged_from)} kept from the previous run of the script, "
             f"{', '.join(k for k in runs if k in args.methods)} re-run." if merged_from else ".")
          + "", "",
          markdown_table(["method", "epochs", "selection"] + list(SHOWN), rows)]
    if authors_table:
        md += ["## Shortfalls against the seed numbers", ""]
        md += [f"- {s}" for s in shortfalls] or ["- none"]
        md.append("")
    diag_rows = [[name, f"{runs[name]['diagnostics']['sampling_tv']['tv']:.4f}", runs[name]["diagnostics"]["sampling_tv"]["method"]]
                 for name in runs if runs[name]["diagnostics"]]
    if diag_rows:
        ess = next(r["diagnostics"]["effective_sample_size"] for r in runs.values() if r["diagnostics"])
        md += ["## Diagnostics", "",
               f"Effective sample size over {ess['users']} users: mean {ess['mean']:.2f}, median {ess['median']:.2f}, "
               f"min {ess['min']:.2f}. TV distance between each method's trained-on pair distribution and the per-user "
               f"uniform one (first seed's final model):", "",
               markdown_table(["method", "TV", "how"], diag_rows)]
    atomic_write_text(out / f"{stem}.md", "\n".join(md))
    print(f"wrote {out / stem}.json and .md ({total:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
