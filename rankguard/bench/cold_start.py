"""Cold start on ML-100K: MF / CML / DPCML + DropoutNet (pre-training) vs two feature baselines.

    RANKGUARD_DATA=/work/shared/data rankguard bench cold_start            # reduced table (~3-5 min, 1 thread)

Reduced from issue #8 to fit a 2-core, ~10-minute budget: one seed, one cold split holding out
20% of the items *and* 20% of the users (seed 1234; half cold-validation, half cold-test),
pre-training regime only, short runs (:data:`EPOCHS` backbone epochs, :data:`DN_EPOCHS`
DropoutNet epochs), candidates ``all``, authors' protocol. The joint regime, 3 seeds and the
full epoch counts are not run here (``rankguard recsys train --dropoutnet joint`` runs one).

Rows: each backbone + DN (warm metrics from the DN scores, the backbone's own warm metrics
beside them), the feature-popularity baseline and the features-only model (the same towers,
preference input always zero, over the CML backbone). Writes ``results/cold_start.{json,md}``.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import torch

from rankguard.bench.harness import (MeasuredRun, default_results_dir, environment_line, finite_or_none,
                                     standalone_main, timed_call, write_results)
from rankguard.recsys.coldstart import load_cold_split
from rankguard.recsys.coldstart.dropoutnet import DropoutNetSettings
from rankguard.recsys.coldstart.evaluate import evaluate_cold, feature_popularity_scores
from rankguard.recsys.coldstart.train import train_cold
from rankguard.recsys.evaluator import Evaluator
from rankguard.recsys.recipes import METRIC_KEYS, make_config
from rankguard.runs import markdown_table

COLD = "items:0.2,users:0.2"
EPOCHS = {"mf": 30, "cml": 30, "dpcml": 15}
DN_EPOCHS = 15
KEYS = ("P@3", "R@3", "NDCG@3", "AUC")
GROUPS = ("warm", "cold_user", "cold_item")


def _row(name: str, warm: dict[str, float], cold: dict[str, dict[str, float]], seconds: float,
         base: dict[str, float] | None = None) -> dict[str, Any]:
    pick = lambda d: {k: finite_or_none(d.get(k)) for k in METRIC_KEYS}  # noqa: E731
    return {"method": name, "warm": pick(warm), **{g: pick(cold.get(g, {})) for g in GROUPS[1:]},
            "base_warm": pick(base) if base else None, "seconds": round(seconds, 1)}


def run_rows(dataset: str, seed: int, quick: bool = False) -> list[dict[str, Any]]:
    split = load_cold_split(dataset, COLD, seed=1234)
    rows = []
    scores = feature_popularity_scores(split)
    fn = lambda users: scores[users]  # noqa: E731
    warm = Evaluator(split, protocol="authors").evaluate(fn, "test")
    rows.append(_row("feature popularity", warm, evaluate_cold(split, fn, "test"), 0.0))
    dn_epochs = 1 if quick else DN_EPOCHS
    for backbone in ("mf", "cml", "dpcml"):
        config = make_config(backbone, dataset, epochs=1 if quick else EPOCHS[backbone], eval_every=5, patience=0,
                             cold_start=COLD, dropoutnet="pre", seed=seed, dn_epochs=dn_epochs)
        result, seconds = timed_call(lambda: train_cold(config, split, log=None))
        rows.append(_row(f"{backbone.upper() if backbone != 'dpcml' else 'DPCML'}+DN", result.test_metrics,
                         result.cold_metrics, seconds, result.base_metrics))
    config = make_config("cml", dataset, epochs=1 if quick else EPOCHS["cml"], eval_every=5, patience=0,
                         cold_start=COLD, dropoutnet="pre", seed=seed, dn_epochs=dn_epochs, dn_inputs="features")
    result, seconds = timed_call(lambda: train_cold(config, split, log=None))
    rows.append(_row("features only (CML space)", result.test_metrics, result.cold_metrics, seconds))
    return rows


def to_markdown(payload: dict[str, Any]) -> str:
    def cell(v):
        return "n/a" if v is None else f"{100 * v:.2f}"

    headers = ["method", *[f"{g} {k}" for g in GROUPS for k in KEYS], "backbone warm P@3", "s"]
    body = [[r["method"], *[cell(r[g][k]) for g in GROUPS for k in KEYS],
             cell(r["base_warm"]["P@3"]) if r["base_warm"] else "–", f"{r['seconds']:.1f}"] for r in payload["rows"]]
    rows = {r["method"]: r for r in payload["rows"]}
    dn = [m for m in rows if m.endswith("+DN")]
    base_rows = ("feature popularity", "features only (CML space)")
    lines = ["# Cold start on ML-100K (DropoutNet, pre-training; reduced)", "",
             f"Split: {payload['cold_start']} held out (seed 1234), authors' protocol, candidates all; "
             f"1 seed; backbone epochs {payload['epochs']}, DropoutNet epochs {payload['dn_epochs']}; percent. "
             f"{payload['wall_s']} s wall.", "", markdown_table(headers, body), "## Goals (issue #8)", ""]
    for g in ("cold_user", "cold_item"):
        for k in ("P@3", "AUC"):
            beat = [m for m in dn if all((rows[m][g][k] or 0) > (rows[b][g][k] or 0) for b in base_rows)]
            lines.append(f"- {g} {k}: DN models above both baselines: {', '.join(beat) or 'none'}"
                         f"{'' if len(beat) == len(dn) else ' (NOT all)'}")
    auc = rows.get("DPCML+DN", {}).get("cold_item", {}).get("AUC")
    lines.append(f"- cold-item AUC > 0.6: " + ", ".join(f"{m} {cell(rows[m]['cold_item']['AUC'])}" for m in dn))
    for g in ("cold_user", "cold_item"):
        vals = [rows[m][g]["P@3"] or 0 for m in ("DPCML+DN", "CML+DN", "MF+DN") if m in rows]
        lines.append(f"- {g} ordering DPCML ≥ CML ≥ MF on P@3: {'yes' if vals == sorted(vals, reverse=True) else 'NO'}")
    lines.append("- warm within 1 point of the backbone: " + ", ".join(
        f"{m} {100 * ((rows[m]['warm']['P@3'] or 0) - (rows[m]['base_warm']['P@3'] or 0)):+.2f}" for m in dn))
    del auc
    lines += ["", "Not run here: the joint regime, 3 seeds, the papers' epoch counts.", "",
              environment_line(payload["environment"]), ""]
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="ml-100k")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="smoke run: 1 epoch each")
    p.add_argument("--out", default=None, help="results folder (default results/)")


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
    with MeasuredRun() as measured:
        rows = run_rows(args.dataset, args.seed, args.quick)
    payload = {"dataset": args.dataset, "cold_start": COLD, "seed": args.seed, "quick": args.quick,
               "epochs": {k: (1 if args.quick else v) for k, v in EPOCHS.items()},
               "dn_epochs": 1 if args.quick else DN_EPOCHS, "dropoutnet": dataclasses.asdict(DropoutNetSettings()),
               "rows": rows, "wall_s": measured.wall_s, "environment": measured.environment}
    name = "cold_start_quick" if args.quick else "cold_start"
    json_path, md_path = write_results(args.out or default_results_dir(), name, payload, to_markdown(payload))
    print(f"wrote {json_path} and {md_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return standalone_main("cold_start", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
