"""``rankguard rescore FILE… [--train FILES…] [--loss …] --out DIR``: target–decoy rescoring of PIN / TopPIC files.

Writes into DIR: ``psms.tsv`` (``prsms.tsv`` for TopPIC input) and ``peptides.tsv`` (mokapot-style: the
winning match per spectrum / per peptide with score, q-value and label, best first), ``summary.json`` (top-level
integer ``accepted_psms`` and ``accepted_peptides`` at q ≤ 0.01 — PrSMs for TopPIC input — and
``by_threshold`` with 0.01 and 0.05 and the origin code's counting rule), ``qvalues.png`` (accepted targets
vs q for rankguard and the best single feature), and prints a summary line.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from rankguard.cli_args import finite_float
from rankguard.rescoring.pipeline import LOSSES, MODELS, RescoreSettings, best_single_feature, rescore, summarise
from rankguard.rescoring.plots import accepted_curve, plot_qvalue_curves
from rankguard.rescoring.readers import MatchTable, concat_tables, read_matches
from rankguard.runs import RunDir, atomic_write_text, write_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rescore", help="rescore target-decoy matches (PIN or TopPIC PrSM XML) with a ranking loss")
    p.add_argument("files", nargs="+", metavar="FILE", help="PIN or TopPIC *_prsm.xml files (format read from content)")
    p.add_argument("--train", nargs="+", metavar="FILE", default=None,
                   help="train once on these files and score FILE… (default: 3-fold cross-validation)")
    p.add_argument("--loss", choices=LOSSES, default="adaptive-rank")
    p.add_argument("--model", choices=MODELS, default=RescoreSettings.model)
    p.add_argument("--iterations", type=int, default=RescoreSettings.iterations,
                   help="Percolator iterations of the confident-target set (torch losses)")
    p.add_argument("--epochs", type=int, default=RescoreSettings.epochs)
    p.add_argument("--lr", type=finite_float, default=RescoreSettings.lr)
    p.add_argument("--xi", type=finite_float, default=RescoreSettings.xi, help="adaptive-rank margin ξ₀")
    p.add_argument("--xi-floor", type=finite_float, default=0.0, help="ξ is kept >= this (0 = the note's rule)")
    p.add_argument("--fixed-xi", action="store_true", help="do not learn ξ")
    p.add_argument("--normalizer", type=_normalizer, default="pairs",
                   help="adaptive-rank: 'pairs' (the note: all pairs) or a constant dividing both sums (origin: 1e4)")
    p.add_argument("--alpha-in-gradient", action="store_true",
                   help="adaptive-rank: do not detach α_i (the origin code; the note treats it as a constant)")
    p.add_argument("--memory-subsample", type=int, default=None, metavar="K",
                   help="adaptive-rank: compare each batch with <= K memory rows per class, redrawn every batch "
                        "(the origin code: 10000; default: the whole memory)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output directory (must be new or empty)")
    p.add_argument("--overwrite", action="store_true", help="replace the results already in --out")
    p.set_defaults(func=run, _parser=p)


def _normalizer(text: str) -> str | float:
    if text == "pairs":
        return text
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be 'pairs' or a positive number, got {text!r}")
    return value


def _tsv(table: MatchTable, scores: np.ndarray, index: np.ndarray, q: np.ndarray) -> str:
    order = np.argsort(-scores[index], kind="stable")
    lines = ["SpecId\tLabel\tscore\tq-value\tPeptide\tProteins"]
    for k in order:
        i = int(index[k])
        lines.append(f"{table.spec_ids[i]}\t{1 if table.is_target[i] else -1}\t{scores[i]:.6g}\t{q[k]:.6g}\t"
                     f"{table.peptides[i]}\t{table.proteins[i]}")
    return "\n".join(lines) + "\n"


def rescore_files(files: list[str], out: str | Path, settings: RescoreSettings, train: list[str] | None = None,
                  plot: bool = True) -> dict[str, Any]:
    """Read, rescore, write the tables, summary.json and the plot; returns the summary dict."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = concat_tables([read_matches(f) for f in files])
    train_table = concat_tables([read_matches(f) for f in train]) if train else None
    scores, info = rescore(table, settings, train_table)
    res = summarise(table, scores)
    unit = "PrSMs" if table.kind == "toppic" else "PSMs"
    atomic_write_text(out / ("prsms.tsv" if table.kind == "toppic" else "psms.tsv"),
                      _tsv(table, scores, res["psm_index"], res["psm_q"]))
    atomic_write_text(out / "peptides.tsv", _tsv(table, scores, res["peptide_index"], res["peptide_q"]))
    name, sign, feat = best_single_feature(train_table or table)
    k = table.feature_names.index(name)
    feat_scores = sign * table.features[:, k]
    base = summarise(table, feat_scores)
    summary: dict[str, Any] = {
        "accepted_psms": int(res["accepted_psms"]), "accepted_peptides": int(res["accepted_peptides"]),
        "unit": unit, "files": [str(f) for f in files], "train": train or None,
        "by_threshold": res["by_threshold"],
        "best_single_feature": {"name": name, "direction": sign, "accepted_psms": base["accepted_psms"],
                                "accepted_peptides": base["accepted_peptides"], "by_threshold": base["by_threshold"]},
        "matches": len(table), "spectra": int(len(res["psm_index"])), "notes": table.notes[:20],
        "xi_by_epoch": info.get("xi_by_epoch"), "wall_s": info["wall_s"], "protocol": info["protocol"],
        "settings": info["settings"],
    }
    if "toppic_fdr" in table.extra:
        # TopPIC's own ranking: E-value order (lower is better), counted by the same rules
        e = -np.log10(np.maximum(table.extra["e_value"], 1e-300))
        summary["toppic"] = summarise(table, e)["by_threshold"]
    write_json(out / "summary.json", summary)
    if plot:
        curves = {f"rankguard ({settings.loss})": accepted_curve(res["psm_q"], table.is_target[res["psm_index"]]),
                  f"best feature ({name})": accepted_curve(base["psm_q"], table.is_target[base["psm_index"]])}
        plot_qvalue_curves(curves, out / "qvalues.png", unit)
    return summary


def run(args: argparse.Namespace) -> int:
    settings = RescoreSettings(loss=args.loss, model=args.model, epochs=args.epochs, lr=args.lr, xi=args.xi,
                               iterations=args.iterations,
                               xi_floor=args.xi_floor, learn_xi=not args.fixed_xi, seed=args.seed,
                               normalizer=args.normalizer, detach_alpha=not args.alpha_in_gradient,
                               memory_subsample=args.memory_subsample)
    run_dir = RunDir.for_run(args.out, "overwrite" if args.overwrite else "new")   # never overwrite silently
    run_dir.save_json("config.json", {"files": [str(Path(f).resolve()) for f in args.files],
                                      "train": [str(Path(f).resolve()) for f in args.train or []],
                                      **dataclasses.asdict(settings)})
    run_dir.mark("running")
    try:
        s = rescore_files(args.files, args.out, settings, args.train)
    except Exception as exc:
        run_dir.mark("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    run_dir.mark("complete", accepted_psms=s["accepted_psms"])
    b = s["best_single_feature"]
    print(f"{s['accepted_psms']} accepted {s['unit']} and {s['accepted_peptides']} peptides at q <= 0.01 "
          f"({settings.loss}; best single feature {b['name']}: {b['accepted_psms']}); wrote {args.out}")
    for note in s["notes"][:3]:
        print(f"note: {note}")
    return 0
