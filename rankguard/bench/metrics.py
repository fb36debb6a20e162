"""Speed and values of the ranking metrics against scikit-learn, torchmetrics and ir_measures.

Rows (float32 scores on CPU, 10% positives / relevant, the default torch threads):

1. Binary AUC, AP and one-way pAUC (FPR <= 0.1) at N = 10⁶ and 10⁷, continuous scores and tied
   scores (1,000 distinct values): :func:`rankguard.metrics.roc_auc`, ``average_precision``,
   ``partial_auc(mode="roc")`` against scikit-learn (``roc_auc_score``, ``average_precision_score``,
   ``roc_auc_score(max_fpr=)``) and torchmetrics (``binary_auroc``, ``binary_average_precision``,
   ``binary_auroc(max_fpr=)``, ``validate_args=False``). Both references return the McClish-
   standardised partial area; it is turned back into the plain area / max_fpr before comparing.
   Goal: AUC and AP at 10⁷ at least 2x faster than the faster reference.
2. Grouped NDCG@10, MAP and MRR over 10⁵ queries x 100 documents (flat ``indexes``) against
   torchmetrics' ``RetrievalNormalizedDCG`` / ``RetrievalMAP`` / ``RetrievalMRR`` and ir_measures
   (``nDCG@10``, ``AP``, ``RR``). Both loop over queries in Python, so each is timed on a subset of
   the queries and the time scaled by queries/subset (stated in the row); values are compared on
   that subset. Goal: >= 20x faster than torchmetrics.

``ratio`` = reference time / rankguard time (a speed-up, of medians); ``max |diff|`` is the absolute
value difference (≤ 1e-12 expected against scikit-learn; float32 rounding against torchmetrics,
which accumulates in float32). A reference that is not installed is named and its columns skipped
(torchmetrics is in the ``bench`` extra). Run ``rankguard bench metrics`` (``--quick`` for tiny sizes).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch

from rankguard.bench.harness import (MeasuredRun, default_results_dir, environment_line, standalone_main,
                                     publish, time_interleaved)
from rankguard.metrics import average_precision, partial_auc, retrieval_map, retrieval_mrr, retrieval_ndcg, roc_auc
from rankguard.progress import progress
from rankguard.runs import markdown_table

MAX_FPR = 0.1


@dataclass
class Sizes:
    binary_n: tuple[int, ...] = (1_000_000, 10_000_000)
    queries: int = 100_000
    documents: int = 100
    torchmetrics_queries: int = 2_000   # subset timed, scaled to all queries
    ir_measures_queries: int = 2_000
    repeats: int = 3                    # rankguard repeats (median)
    reference_repeats: int = 1


QUICK = Sizes(binary_n=(10_000, 100_000), queries=300, documents=20, torchmetrics_queries=100,
              ir_measures_queries=100, repeats=2, reference_repeats=1)


def _optional(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        return None


def _mcclish_to_plain(value: float, beta: float) -> float:
    """Invert ``(1 + (A - b²/2) / (b - b²/2)) / 2`` and return ``A / b`` (the plain normalised pAUC)."""
    area = (2 * value - 1) * (beta - beta ** 2 / 2) + beta ** 2 / 2
    return area / beta


def _binary_problem(n: int, tied: bool, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.rand(n, generator=gen) < 0.1
    scores = torch.randn(n, generator=gen) + labels.to(torch.float32)
    if tied:
        scores = torch.round(scores * 100) / 100  # about 1,000 distinct values
    return scores.to(torch.float32), labels


def _row(task: str, n: int, kind: str, engine: Callable[[], float], refs: dict[str, Callable[[], float] | None],
         sizes: Sizes, goal: str | None, goal_ratio: float | None, note: str, scale: dict[str, float] | None = None,
         values: dict[str, tuple[float, float]] | None = None) -> dict:
    """Time the engine against each available reference; ``values[name] = (ours, theirs)`` overrides the
    compared values (subset comparisons)."""
    row: dict[str, Any] = {"task": task, "N": n, "kind": kind, "note": note, "goal": goal}
    engine_s = None
    for name, fn in refs.items():
        if fn is None:
            row[f"{name}_s"] = row[f"{name}_diff"] = None
            continue
        t = time_interleaved(engine, fn, sizes.repeats, sizes.reference_repeats, reference_warmup=0,
                             reference_scale=(scale or {}).get(name, 1.0))
        engine_s = t.engine_median if engine_s is None else min(engine_s, t.engine_median)
        ours, theirs = (values or {}).get(name, (t.engine_result, t.reference_result))
        row[f"{name}_s"] = t.reference_median
        row[f"{name}_diff"] = abs(float(ours) - float(theirs))
    if engine_s is None:
        engine_s = time_interleaved(engine, None, sizes.repeats).engine_median
    row["rankguard_s"] = engine_s
    times = [row[f"{name}_s"] for name in refs if row.get(f"{name}_s") is not None]
    row["ratio_vs_fastest"] = min(times) / engine_s if times else None
    row["goal_met"] = None if goal_ratio is None or row["ratio_vs_fastest"] is None else \
        bool(row["ratio_vs_fastest"] >= goal_ratio)
    return row


def binary_rows(sizes: Sizes, gen: torch.Generator, sk: Any, tm: Any) -> list[dict]:
    rows = []
    skm = sk.metrics if sk is not None else None
    tmf = None
    if tm is not None:
        import torchmetrics.functional.classification as tmf  # noqa: F811
    for n in sizes.binary_n:
        for tied in (False, True):
            s, y = _binary_problem(n, tied, gen)
            s_np, y_np, y_long = s.numpy(), y.numpy(), y.to(torch.int64)
            kind = "tied (~1,000 values)" if tied else "continuous"
            top = n == max(sizes.binary_n)
            specs = [
                ("AUC", lambda: roc_auc(s, y),
                 skm and (lambda: skm.roc_auc_score(y_np, s_np)),
                 tmf and (lambda: float(tmf.binary_auroc(s, y_long, validate_args=False))), 2.0 if top else None),
                ("AP", lambda: average_precision(s, y),
                 skm and (lambda: skm.average_precision_score(y_np, s_np)),
                 tmf and (lambda: float(tmf.binary_average_precision(s, y_long, validate_args=False))),
                 2.0 if top else None),
                (f"pAUC (FPR <= {MAX_FPR})", lambda: partial_auc(s, y, max_fpr=MAX_FPR, mode="roc"),
                 skm and (lambda: _mcclish_to_plain(skm.roc_auc_score(y_np, s_np, max_fpr=MAX_FPR), MAX_FPR)),
                 tmf and (lambda: _mcclish_to_plain(float(tmf.binary_auroc(s, y_long, max_fpr=MAX_FPR,
                                                                            validate_args=False)), MAX_FPR)), None),
            ]
            for task, engine, sk_fn, tm_fn, goal_ratio in specs:
                rows.append(_row(task, n, kind, engine, {"sklearn": sk_fn, "torchmetrics": tm_fn}, sizes,
                                 f">= {goal_ratio:g}x the faster reference" if goal_ratio else None, goal_ratio,
                                 "float32 tensor in; scikit-learn gets the same values as numpy"))
    return rows


def retrieval_rows(sizes: Sizes, gen: torch.Generator, tm: Any, irm: Any) -> list[dict]:
    q, d = sizes.queries, sizes.documents
    target = torch.rand(q * d, generator=gen) < 0.1
    preds = (torch.rand(q * d, generator=gen) + 0.3 * target).to(torch.float32)
    indexes = torch.arange(q).repeat_interleave(d)
    rows = []
    tm_q, ir_q = min(sizes.torchmetrics_queries, q), min(sizes.ir_measures_queries, q)
    specs = [("NDCG@10", lambda p, t, i: retrieval_ndcg(p, t, i, k=10), "RetrievalNormalizedDCG", {"top_k": 10},
              "nDCG@10"),
             ("MAP", retrieval_map, "RetrievalMAP", {}, "AP"),
             ("MRR", retrieval_mrr, "RetrievalMRR", {}, "RR")]
    for task, ours, tm_name, tm_kwargs, ir_name in specs:
        refs: dict[str, Callable[[], float] | None] = {"torchmetrics": None, "ir_measures": None}
        values: dict[str, tuple[float, float]] = {}
        scale: dict[str, float] = {}
        if tm is not None:
            import torchmetrics.retrieval as tmr
            m_cls = getattr(tmr, tm_name)
            sub = tm_q * d
            ps, ts, is_ = preds[:sub], target[:sub], indexes[:sub]
            refs["torchmetrics"] = lambda: float(m_cls(**tm_kwargs)(ps, ts, indexes=is_))
            values["torchmetrics"] = (float(ours(ps, ts, is_)), refs["torchmetrics"]())
            scale["torchmetrics"] = q / tm_q
        if irm is not None:
            sub = ir_q * d
            qrels = [irm.Qrel(str(int(i)), str(j), 1) for j, (i, t) in
                     enumerate(zip(indexes[:sub].tolist(), target[:sub].tolist())) if t]
            run = [irm.ScoredDoc(str(int(i)), str(j), float(p)) for j, (i, p) in
                   enumerate(zip(indexes[:sub].tolist(), preds[:sub].tolist()))]
            measure = irm.parse_measure(ir_name)
            refs["ir_measures"] = lambda: irm.calc_aggregate([measure], qrels, run)[measure]
            ps, ts, is_ = preds[:sub], target[:sub], indexes[:sub]
            values["ir_measures"] = (float(ours(ps, ts, is_, empty_target_action="skip") if task != "NDCG@10"
                                           else retrieval_ndcg(ps, ts, is_, k=10, empty_target_action="skip")),
                                     refs["ir_measures"]())
            scale["ir_measures"] = q / ir_q
        note = (f"{q} queries x {d} documents, flat indexes; torchmetrics timed on {tm_q} queries and ir_measures "
                f"(building its input lists not timed) on {ir_q}, times scaled to {q} queries; values compared on "
                "those subsets")
        rows.append(_row(task, q * d, "grouped", lambda: float(ours(preds, target, indexes)), refs, sizes,
                         ">= 20x torchmetrics", 20.0, note, scale, values))
        rows[-1]["ratio_vs_torchmetrics"] = (rows[-1]["torchmetrics_s"] / rows[-1]["rankguard_s"]
                                             if rows[-1].get("torchmetrics_s") else None)
        rows[-1]["goal_met"] = None if rows[-1]["ratio_vs_torchmetrics"] is None else \
            bool(rows[-1]["ratio_vs_torchmetrics"] >= 20.0)
    return rows


def _cell(v: float | None, fmt: str) -> str:
    return "skipped" if v is None else format(v, fmt)


def to_markdown(report: dict) -> str:
    env = report["environment"]
    missing = [name for name, ok in report["references"].items() if not ok]
    head = ["task", "N", "scores", "rankguard (s)", "scikit-learn (s)", "torchmetrics (s)", "ir_measures (s)",
            "speed-up vs fastest", "goal", "met", "max abs diff sklearn", "max abs diff torchmetrics",
            "max abs diff ir_measures"]
    rows = []
    for r in report["rows"]:
        rows.append([r["task"], f"{r['N']:,}", r["kind"], f"{r['rankguard_s']:.3g}",
                     _cell(r.get("sklearn_s"), ".3g") if "sklearn_s" in r else "-",
                     _cell(r.get("torchmetrics_s"), ".3g"),
                     _cell(r.get("ir_measures_s"), ".3g") if "ir_measures_s" in r else "-",
                     _cell(r.get("ratio_vs_fastest"), ".3g") + "x" if r.get("ratio_vs_fastest") else "-",
                     r["goal"] or "-", "-" if r["goal_met"] is None else ("yes" if r["goal_met"] else "NO"),
                     _cell(r.get("sklearn_diff"), ".1e") if "sklearn_diff" in r else "-",
                     _cell(r.get("torchmetrics_diff"), ".1e"),
                     _cell(r.get("ir_measures_diff"), ".1e") if "ir_measures_diff" in r else "-"])
    lines = ["# Ranking metrics benchmark", "",
             ("QUICK sizes, not the real benchmark. " if report["quick"] else "")
             + f"float32 scores on CPU, 10% positives; medians of {report['sizes']['repeats']} rankguard runs and "
             f"{report['sizes']['reference_repeats']} reference run(s), alternated. Whole run: {report['wall_s']} s. "
             + environment_line(env), "",
             markdown_table(head, rows),
             "Speed-up = the fastest available reference's time / rankguard's (grouped rows: the goal is against "
             "torchmetrics). pAUC: the references' McClish-standardised values are turned back into area / max_fpr "
             "before comparing. Grouped rows: " + report["rows"][-1]["note"] + ".", ""]
    if missing:
        lines += [f"Not installed, columns skipped: {', '.join(missing)} (`pip install rankguard[bench]`).", ""]
    return "\n".join(lines)


def run_benchmark(sizes: Sizes, seed: int = 0, quick: bool = False) -> dict:
    gen = torch.Generator().manual_seed(seed)
    sk, tm, irm = _optional("sklearn.metrics"), _optional("torchmetrics"), _optional("ir_measures")
    with MeasuredRun(dtype="float32") as measured:
        rows = []
        for part in progress([0, 1], desc="metrics bench", total=2):
            rows += binary_rows(sizes, gen, sk, tm) if part == 0 else retrieval_rows(sizes, gen, tm, irm)
    return {"benchmark": "metrics", "quick": quick, "environment": measured.environment, "wall_s": measured.wall_s,
            "sizes": asdict(sizes), "references": {"scikit-learn": sk is not None, "torchmetrics": tm is not None,
                                                   "ir_measures": irm is not None},
            "rows": rows}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="tiny sizes (seconds), for smoke tests")
    p.add_argument("--out", default=str(default_results_dir()),
                   help="folder for metrics.json and metrics.md (default: the checkout's results/)")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    report = run_benchmark(QUICK if args.quick else Sizes(), seed=args.seed, quick=args.quick)
    return publish(args.out, "metrics", report, to_markdown(report))


def main(argv: list[str] | None = None) -> int:
    return standalone_main("metrics", __doc__, add_arguments, run, argv)

