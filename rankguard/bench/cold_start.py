"""Cold start on ML-100K (issue #8): MF / CML / DPCML + DropoutNet, joint and pre-training, 3 seeds.

    RANKGUARD_DATA=/work/shared/data rankguard bench cold_start      # ~22-25 min on 1 thread (or: cold-start)
    rankguard bench cold_start --quick                                 # smoke run, 1 epoch each

One cold split: 20% of the items *and* 20% of the users held out (split seed 1234; half of each
cold group selects, half tests), the authors' protocol, candidates ``all``. Seeds 0, 1, 2 are
training seeds (backbone init and sampling, towers, dropout masks); the split is the same for all.

Rows, each the mean ± sample std over the seeds (``harness.summarize_seeds``):

* ``{MF, CML, DPCML}+DN`` in the ``pre`` regime (the backbone by the trainer, then DropoutNet on the
  frozen backbone for :data:`DN_EPOCHS`) and the ``joint`` regime (both for the backbone's epochs);
* the backbone alone (the ``pre`` regime's backbone: the same config and seed without DN), the
  reference of the warm goal for both regimes;
* two baselines that need no interaction of a cold entity: **feature popularity** (cold items
  scored by the training popularity of their genres, cold users get the global popularity
  ranking; no seed) and **features only** (the same towers with the preference input always zero,
  over the seed's pre-trained CML backbone, reused from the CML+DN ``pre`` run).

Epochs (:data:`EPOCHS`, :data:`DN_EPOCHS`): what fits the 30-minute budget on one thread, stated in
the table beside the papers' counts. Every (row, seed) is kept as JSON under ``--cache`` (default
``.cache/bench/cold_start``); a rerun reads the finished ones back, so a killed run resumes.
Writes ``results/cold_start.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from rankguard.bench.harness import (STD_NOTE, MeasuredRun, add_cache_arguments, cache_from_args, cached_record,
                                     default_results_dir, environment_line, finite_or_none, mean_std_cell,
                                     standalone_main, summarize_seeds, timed_call, write_results)
from rankguard.recsys.coldstart import load_cold_split
from rankguard.recsys.coldstart.dropoutnet import DEFAULTS as DN_DEFAULTS
from rankguard.recsys.coldstart.evaluate import evaluate_cold, feature_popularity_scores
from rankguard.recsys.coldstart.train import train_cold
from rankguard.recsys.evaluator import Evaluator
from rankguard.recsys.recipes import METRIC_KEYS, make_config
from rankguard.runs import markdown_table

DATASET = "ml-100k"
COLD = "items:0.2,users:0.2"
SPLIT_SEED = 1234
SEEDS = (0, 1, 2)
BACKBONES = ("mf", "cml", "dpcml")
REGIMES = ("pre", "joint")
#: backbone epochs run here (pre: the backbone's own run; joint: the joint run), reduced to fit 30 minutes
#: on one thread: one seed of all seven runs ~445 s at 50 (measured: DPCML joint 120 s, DPCML pre 125 s, CML pre
#: 60 s, MF pre 33 s), so
#: the papers' 100 (DPCML: the authors' run.sh; MF / CML: the recipes' TrainConfig default) would take ~45 min
EPOCHS = {"mf": 50, "cml": 50, "dpcml": 50}
PAPER_EPOCHS = {"mf": 100, "cml": 100, "dpcml": 100}
#: DropoutNet epochs of the pre regime (ours; the authors' code runs 10 epochs of far larger data)
DN_EPOCHS = DN_DEFAULTS.epochs
#: validation cadence of the backbone runs and the joint runs (the DPCML authors validate every epoch)
EVAL_EVERY = 5
KEYS = ("P@3", "R@3", "NDCG@3", "AUC")
GROUPS = ("warm", "cold_user", "cold_item")
#: cold items ranked among the cold-test items only (``--cold-candidates cold``, the DN authors' protocol);
#: reported beside the goals' ``all`` (warm and cold items together), not checked
AMONG_COLD = "cold_item_among_cold"
NAMES = {"mf": "MF", "cml": "CML", "dpcml": "DPCML"}
FEATURE_POPULARITY, FEATURES_ONLY = "feature popularity", "features only (CML space)"
#: the goals' tolerance on warm metrics, in points (percent)
WARM_POINTS = 1.0


def _metrics(d: dict[str, float] | None) -> dict[str, float | None] | None:
    return None if d is None else {k: finite_or_none(d.get(k)) for k in METRIC_KEYS}


def _among_cold(split: Any, score_fn: Callable) -> dict[str, float | None] | None:
    return _metrics(evaluate_cold(split, score_fn, "test", candidates="cold").get("cold_item"))


def _record(method: str, regime: str, seed: int | None, result: Any, seconds: float, split: Any) -> dict[str, Any]:
    fn = result.model.score_fn(torch.from_numpy(split.cold_mask("users")), torch.from_numpy(split.cold_mask("items")))
    return {"method": method, "regime": regime, "seed": seed, "warm": _metrics(result.test_metrics),
            **{g: _metrics(result.cold_metrics.get(g)) for g in GROUPS[1:]}, AMONG_COLD: _among_cold(split, fn),
            "base_warm": _metrics(result.base_metrics) if result.base_metrics else None,
            "best_epoch": int(result.best_epoch), "seconds": round(seconds, 1)}


def _plan(quick: bool) -> dict[str, Any]:
    """What a cached record was run with; a record of another plan is run again."""
    return {"epochs": {k: 1 if quick else v for k, v in EPOCHS.items()}, "dn_epochs": 1 if quick else DN_EPOCHS,
            "eval_every": 1 if quick else EVAL_EVERY, "dropoutnet": json.loads(json.dumps(DN_DEFAULTS.to_dict())),
            "split_seed": SPLIT_SEED, "cold_start": COLD}


def _cached(cache: Path | None, key: str, make: Callable[[], dict[str, Any]], log, plan: dict[str, Any]
            ) -> dict[str, Any]:
    record = cached_record(cache, key, make, plan, log=None)
    log(f"{key}: {record['seconds']} s")
    return record


def _config(backbone: str, regime: str, seed: int, quick: bool, **dn: Any):
    return make_config(backbone, DATASET, epochs=1 if quick else EPOCHS[backbone], eval_every=1 if quick else EVAL_EVERY,
                       patience=0, cold_start=COLD, dropoutnet=regime, split_seed=SPLIT_SEED, seed=seed,
                       dn_epochs=1 if quick else DN_EPOCHS, **dn)


def run_records(seeds: list[int], quick: bool, cache: Path | None, log=print) -> list[dict[str, Any]]:
    """Every (row, seed) record, cached ones read back."""
    split = load_cold_split(DATASET, COLD, seed=SPLIT_SEED)

    def popularity() -> dict[str, Any]:
        scores = feature_popularity_scores(split)
        fn = lambda users: scores[users]  # noqa: E731
        warm = Evaluator(split, protocol="authors").evaluate(fn, "test")
        cold = evaluate_cold(split, fn, "test")
        return {"method": FEATURE_POPULARITY, "regime": "-", "seed": None, "warm": _metrics(warm),
                **{g: _metrics(cold.get(g)) for g in GROUPS[1:]}, AMONG_COLD: _among_cold(split, fn),
                "base_warm": None, "best_epoch": 0, "seconds": 0.0}

    plan = _plan(quick)
    records = [_cached(cache, "feature_popularity", popularity, log, plan)]
    for seed in seeds:
        for regime in REGIMES:
            for backbone in BACKBONES:
                name = f"{NAMES[backbone]}+DN"
                pre_cml: dict[str, Any] = {}

                def train(backbone=backbone, regime=regime, name=name, holder=pre_cml) -> dict[str, Any]:
                    result, seconds = timed_call(lambda: train_cold(_config(backbone, regime, seed, quick), split,
                                                                    log=None))
                    holder["result"] = result
                    return _record(name, regime, seed, result, seconds, split)

                records.append(_cached(cache, f"{backbone}-{regime}-seed{seed}", train, log, plan))
                if backbone == "cml" and regime == "pre":
                    def features_only(holder=pre_cml) -> dict[str, Any]:
                        config = _config("cml", "pre", seed, quick, dn_inputs="features")
                        reuse = holder.get("result")   # None when the CML row came from the cache: train it again
                        result, seconds = timed_call(lambda: train_cold(config, split, log=None, base=reuse))
                        return _record(FEATURES_ONLY, "pre", seed, result, seconds, split)

                    records.append(_cached(cache, f"features_only-seed{seed}", features_only, log, plan))
    return records


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (method, regime): mean and std of every group's metrics over the seeds, plus the
    backbone-alone rows (``base_warm`` of the pre regime)."""
    rows: list[dict[str, Any]] = []
    keyed: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        keyed.setdefault((r["method"], r["regime"]), []).append(r)
    for (method, regime), group in keyed.items():
        row: dict[str, Any] = {"method": method, "regime": regime, "seeds": sorted(r["seed"] for r in group
                                                                                if r["seed"] is not None),
                               "seconds": float(np.mean([r["seconds"] for r in group]))}
        for g in (*GROUPS, AMONG_COLD):
            per_seed = [r[g] for r in group if r.get(g) is not None]
            row[g] = dict(zip(("mean", "std"), summarize_seeds(per_seed, METRIC_KEYS))) if per_seed else None
            row[f"{g}_per_seed"] = per_seed
        rows.append(row)
        if regime == "pre" and method.endswith("+DN"):
            per_seed = [r["base_warm"] for r in group if r["base_warm"]]
            rows.append({"method": method[:-3], "regime": "no DN", "seeds": row["seeds"], "seconds": None,
                         "warm": dict(zip(("mean", "std"), summarize_seeds(per_seed, METRIC_KEYS))),
                         "warm_per_seed": per_seed, "cold_user": None, "cold_item": None, AMONG_COLD: None})
    return rows


def _mean(rows: dict[tuple[str, str], dict[str, Any]], method: str, regime: str, group: str, key: str) -> float:
    row = rows.get((method, regime))
    value = row[group]["mean"][key] if row and row.get(group) else None
    return float("nan") if value is None else float(value)


def check_goals(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's goals on the seed means; each line says ``holds`` or ``SHORTFALL`` and why."""
    by = {(r["method"], r["regime"]): r for r in rows}
    lines = []
    dn_rows = [(f"{NAMES[b]}+DN", reg) for reg in REGIMES for b in BACKBONES]
    fp, fo = (FEATURE_POPULARITY, "-"), (FEATURES_ONLY, "pre")
    for g in GROUPS[1:]:
        misses = [f"{m} ({reg}) {k} {100 * _mean(by, m, reg, g, k):.2f} vs "
                  f"{100 * max(_mean(by, *fp, g, k), _mean(by, *fo, g, k)):.2f}"
                  for m, reg in dn_rows for k in KEYS
                  if not _mean(by, m, reg, g, k) > max(_mean(by, *fp, g, k), _mean(by, *fo, g, k))]
        lines.append(f"- every DN model above both baselines on {g} ({', '.join(KEYS)}): "
                     + ("holds" if not misses else f"SHORTFALL, {len(misses)} of {len(dn_rows) * len(KEYS)} "
                        f"not above: " + "; ".join(misses)))
    aucs = [(m, reg, _mean(by, m, reg, "cold_item", "AUC")) for m, reg in dn_rows]
    low = [f"{m} ({reg}) {100 * a:.2f}" for m, reg, a in aucs if not a > 0.6]
    lines.append(f"- cold-item AUC > 60 for every DN model (lowest {100 * min(a for *_, a in aucs):.2f}): "
                 + ("holds" if not low else "SHORTFALL: " + ", ".join(low)))
    for reg in REGIMES:
        for g in GROUPS[1:]:
            bad = []
            for k in KEYS[:3]:
                d, c, m = (_mean(by, f"{n}+DN", reg, g, k) for n in ("DPCML", "CML", "MF"))
                if not d >= c >= m:
                    bad.append(f"{k} {100 * d:.2f} / {100 * c:.2f} / {100 * m:.2f}")
            lines.append(f"- {reg}, {g}: DPCML+DN ≥ CML+DN ≥ MF+DN: "
                         + ("holds on P@3, R@3, NDCG@3" if not bad else "SHORTFALL (DPCML / CML / MF): " + "; ".join(bad)))
    for reg in REGIMES:
        gaps = []
        for b in BACKBONES:
            for k in KEYS[:3]:
                gap = 100 * (_mean(by, f"{NAMES[b]}+DN", reg, "warm", k) - _mean(by, NAMES[b], "no DN", "warm", k))
                if not gap >= -WARM_POINTS:
                    gaps.append(f"{NAMES[b]}+DN {k} {gap:+.2f}")
        worst = min(100 * (_mean(by, f"{NAMES[b]}+DN", reg, "warm", "P@3") - _mean(by, NAMES[b], "no DN", "warm", "P@3"))
                    for b in BACKBONES)
        lines.append(f"- {reg}: warm P@3 / R@3 / NDCG@3 within {WARM_POINTS:g} point of the backbone alone "
                     f"(worst P@3 gap {worst:+.2f}): " + ("holds" if not gaps else "SHORTFALL: " + ", ".join(gaps)))
    return lines


def to_markdown(payload: dict[str, Any]) -> str:
    rows = payload["rows"]
    n_seeds = len(payload["seeds"])
    order = ([(FEATURE_POPULARITY, "-"), (FEATURES_ONLY, "pre")]
             + [(f"{NAMES[b]}+DN", reg) for reg in REGIMES for b in BACKBONES])
    by = {(r["method"], r["regime"]): r for r in rows}

    def table(group: str, extra: list[tuple[str, str]]) -> str:
        body = []
        for key in order + extra:
            r = by.get(key)
            if r is None or r.get(group) is None:
                continue
            per_seed = r[f"{group}_per_seed"]
            body.append([key[0], key[1], *[mean_std_cell([s[k] for s in per_seed]) for k in KEYS],
                         "–" if r["seconds"] is None else f"{r['seconds']:.0f}"])
        return markdown_table(["method", "regime", *KEYS, "s / seed"], body)

    e, p = payload["epochs"], PAPER_EPOCHS
    quick = " (QUICK smoke run: 1 epoch each)" if payload["quick"] else ""
    lines = [f"# Cold start on ML-100K: DropoutNet over MF / CML / DPCML{quick}", "",
             f"Split: {COLD} held out (split seed {SPLIT_SEED}; half of each cold group selects, half tests), "
             f"authors' protocol, cold items ranked among all items; training seeds {', '.join(map(str, payload['seeds']))} "
             f"(mean ± {STD_NOTE} over {n_seeds}); percent. Backbone epochs (pre: the backbone's run, joint: the joint "
             f"run): MF {e['mf']}, CML {e['cml']}, DPCML {e['dpcml']} (papers': {p['mf']}, {p['cml']}, {p['dpcml']}); "
             f"DropoutNet epochs (pre) {payload['dn_epochs']}; validation every {payload['eval_every']} epochs "
             f"(DPCML's authors: every epoch), DropoutNet's (pre) every epoch. DropoutNet: dropout "
             f"{payload['dropoutnet']['dropout']:g}, towers {payload['dropoutnet']['hidden']}, Adam "
             f"{payload['dropoutnet']['lr']:g}. \"no DN\": the pre regime's backbone (same config and seed) alone. "
             f"{payload['wall_s']:.0f} s wall for this invocation (cached rows are read back).", "",
             "## Cold users", "", table("cold_user", []),
             "## Cold items (ranked among all items)", "", table("cold_item", []),
             "## Cold items ranked among the cold-test items only (the DN authors' protocol; not a goal)", "",
             table(AMONG_COLD, []),
             "## Warm users and items", "", table("warm", [(NAMES[b], "no DN") for b in BACKBONES]),
             "## Goals (issue #8, on the seed means)", "", *check_goals(rows), "",
             environment_line(payload["environment"]), ""]
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="training seeds (default 0,1,2)")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 epoch each (writes cold_start_quick.*)")
    add_cache_arguments(p, "cold_start")
    p.add_argument("--out", default=None, help="results folder (default results/)")


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
    seeds = sorted({int(s) for s in str(args.seeds).split(",")})
    name = "cold_start_quick" if args.quick else "cold_start"
    cache = cache_from_args(args, name)
    with MeasuredRun() as measured:
        records = run_records(seeds, args.quick, cache)
    payload = {"dataset": DATASET, "cold_start": COLD, "split_seed": SPLIT_SEED, "seeds": seeds, "quick": args.quick,
               "epochs": {k: (1 if args.quick else v) for k, v in EPOCHS.items()}, "paper_epochs": PAPER_EPOCHS,
               "dn_epochs": 1 if args.quick else DN_EPOCHS, "eval_every": 1 if args.quick else EVAL_EVERY,
               "dropoutnet": DN_DEFAULTS.to_dict(), "records": records, "rows": summarize(records),
               "wall_s": measured.wall_s, "environment": measured.environment}
    payload["goals"] = check_goals(payload["rows"])
    json_path, md_path = write_results(args.out or default_results_dir(), name, payload, to_markdown(payload))
    print(f"wrote {json_path} and {md_path}")
    for line in payload["goals"]:
        print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    return standalone_main("cold_start", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
