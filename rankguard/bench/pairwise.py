"""Speed of the exact all-pairs engine and of APLoss against dense pair matrices and torch.sort.

Three rows, each timed forward + backward as the median of several repeats (float32, CPU, the
default number of torch threads):

1. ``pairwise_loss`` (squared hinge) vs the dense n⁺×n⁻ matrix at N = 2·10⁴ — goal ≥ 1000×.
2. ``pairwise_loss`` at n⁺ = n⁻ = 5·10⁵ vs one ``torch.sort`` of the same 10⁶ scores — goal: the
   engine takes ≤ 2× the sort time (speed-up ratio ≥ 0.5).
3. :class:`~rankguard.losses.ap.APLoss` vs a dense SOAP step (the full B⁺×B matrix of LibAUC's
   ``APLoss``: surrogate matrix, row means for the moving averages, weight matrix, weighted mean)
   at B = 65,536 with half the batch positive (the Adversarial-AP batches are half positive) —
   goal ≥ 1000×. The dense step works in blocks of positive rows (each block: all B columns) so it
   fits in memory. To keep a run near a minute on 2 cores, only ``soap_dense_blocks`` of the blocks
   are timed and the time is scaled by blocks/timed (each block does identical work);
   ``--full-dense`` times every block (~2 minutes more). Values are checked by a complete dense
   step at B = 8,192.

Rows 1–3 run with the default torch threads, then again with one thread (see :func:`one_thread`).

Engine and reference repeats alternate, so a change of machine load hits both; medians are the
headline (``engine_s``, ``reference_s``), minima are recorded too (``*_min_s``).
``ratio`` is always reference_s / engine_s (a speed-up, of medians); ``max_rel_diff`` is the largest of
max|a − b| / max|b| over the loss value and each gradient (engine a, dense b, same dtype).

Run ``rankguard bench pairwise`` (``--quick`` for tiny sizes, ``--out DIR`` for another folder).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import asdict, dataclass
from typing import Callable

import torch

from rankguard.bench.harness import (ENGINE_BURST_S, MeasuredRun, Timing, default_results_dir, environment_line,
                                     publish, rel_diff, standalone_main, time_interleaved)
from rankguard.bench.references import dense_soap_step, dense_squared_hinge_mean
from rankguard.functional.pairwise import pairwise_loss
from rankguard.losses.ap import APLoss
from rankguard.progress import progress
from rankguard.runs import markdown_table
from rankguard.seeding import make_generators

DTYPE = torch.float32
MARGIN = 1.0
SOAP_MARGIN, SOAP_GAMMA = 0.6, 0.1  # APLoss defaults (Adversarial-AP code)


@dataclass
class Sizes:
    """Problem sizes and repeat counts of one benchmark run."""

    dense_n: int = 10_000         # row 1: n⁺ = n⁻
    sort_n: int = 500_000         # row 2: n⁺ = n⁻ (sort of 2·sort_n scores)
    soap_batch: int = 65_536      # row 3: B, half positive
    soap_block_rows: int = 32     # row 3: dense SOAP block of positive rows (fastest of 32..2048 here)
    soap_dense_blocks: int | None = 64  # row 3: blocks timed at full B, scaled to all (None: time all)
    soap_check_batch: int = 8_192  # row 3: B of the full dense-vs-engine value/gradient check
    repeats: int = 9              # engine and sort repeats (median)
    dense_repeats: int = 3        # row 1 dense repeats
    soap_dense_repeats: int = 1   # row 3 dense repeats (the dense step is the slow part)


QUICK = Sizes(dense_n=400, sort_n=5_000, soap_batch=1_024, soap_block_rows=64, soap_dense_blocks=2,
              soap_check_batch=512, repeats=3, dense_repeats=2, soap_dense_repeats=1)


@dataclass
class Row:
    name: str
    N: int
    engine_s: float
    reference_s: float
    ratio: float
    engine_min_s: float
    reference_min_s: float
    goal: str
    goal_min_ratio: float
    goal_met: bool
    max_rel_diff: float | None
    timed: str


def _row(name: str, n: int, t: Timing, goal: str, goal_min_ratio: float, max_rel_diff: float | None,
         timed: str) -> Row:
    ratio = t.ratio
    return Row(name, n, t.engine_median, t.reference_median, ratio, t.engine_min, t.reference_min, goal,
               goal_min_ratio, bool(ratio >= goal_min_ratio), max_rel_diff, timed)


# ---- the three rows ----

def bench_dense_pairs(sizes: Sizes, gen: torch.Generator) -> Row:
    n = sizes.dense_n
    pos = torch.randn(n, generator=gen, dtype=DTYPE) + 0.5
    neg = torch.randn(n, generator=gen, dtype=DTYPE)

    def run(fn):
        p, q = pos.clone().requires_grad_(True), neg.clone().requires_grad_(True)
        loss = fn(p, q)
        loss.backward()
        return loss.detach(), p.grad, q.grad

    engine = lambda p, q: pairwise_loss(p, q, surrogate="squared_hinge", margin=MARGIN)  # noqa: E731
    dense = lambda p, q: dense_squared_hinge_mean(p, q, MARGIN)  # noqa: E731
    diff = max(rel_diff(a, b) for a, b in zip(run(engine), run(dense)))
    timing = time_interleaved(lambda: run(engine), lambda: run(dense), sizes.repeats, sizes.dense_repeats,
                              reference_warmup=0)
    return _row("pairwise_loss vs dense pairs", 2 * n, timing, "speed-up >= 1000x", 1000.0, diff,
                f"squared hinge, mean over {n}x{n} pairs, forward+backward; dense = full matrix")


def bench_vs_sort(sizes: Sizes, gen: torch.Generator) -> Row:
    n = sizes.sort_n
    scores = torch.randn(2 * n, generator=gen, dtype=DTYPE)
    pos, neg = scores[:n] + 0.5, scores[n:]

    def run_engine():
        p, q = pos.clone().requires_grad_(True), neg.clone().requires_grad_(True)
        pairwise_loss(p, q, surrogate="squared_hinge", margin=MARGIN).backward()

    timing = time_interleaved(run_engine, lambda: torch.sort(scores), sizes.repeats, sizes.repeats)
    return _row("pairwise_loss vs one torch.sort", 2 * n, timing, "engine <= 2x sort (ratio >= 0.5)",
                0.5, None, f"engine forward+backward at n+ = n- = {n}; reference = torch.sort of the {2 * n} scores")


def _soap_problem(batch: int, gen: torch.Generator):
    """Half-positive batch (positives score higher on average) of a dataset 4× its size."""
    labels = torch.zeros(batch, dtype=torch.bool)
    labels[torch.randperm(batch, generator=gen)[: batch // 2]] = True
    scores = torch.randn(batch, generator=gen, dtype=DTYPE) + labels.to(DTYPE)
    index = torch.randperm(4 * batch, generator=gen)[:batch]
    return scores, labels, index


def _soap_engine_step(module: APLoss, scores, labels, index):
    s = scores.clone().requires_grad_(True)
    loss = module(s, labels, index)
    loss.backward()
    return loss.detach(), s.grad


def _soap_dense_step(scores, labels, index, u_all, u_pos, block_rows, max_blocks=None):
    s = scores.clone().requires_grad_(True)
    loss = dense_soap_step(s, labels, index, u_all, u_pos, SOAP_MARGIN, SOAP_GAMMA, block_rows, max_blocks)
    return loss, s.grad


def soap_max_rel_diff(batch: int, block_rows: int, gen: torch.Generator) -> float:
    """Engine vs full dense SOAP on the second step (from zero state the first loss is exactly 0,
    u being proportional to the batch means): loss, gradient and both moving averages."""
    scores, labels, index = _soap_problem(batch, gen)
    module = APLoss(4 * batch, margin=SOAP_MARGIN, gamma=SOAP_GAMMA)
    u_all, u_pos = torch.zeros(4 * batch, dtype=DTYPE), torch.zeros(4 * batch, dtype=DTYPE)
    earlier = torch.randn(batch, generator=gen, dtype=DTYPE)
    _soap_engine_step(module, earlier, labels, index)
    _soap_dense_step(earlier, labels, index, u_all, u_pos, block_rows)
    engine_out = _soap_engine_step(module, scores, labels, index)
    dense_out = _soap_dense_step(scores, labels, index, u_all, u_pos, block_rows)
    return max([rel_diff(a, b) for a, b in zip(engine_out, dense_out)]
               + [rel_diff(module.u_all, u_all), rel_diff(module.u_pos, u_pos)])


def one_thread(bench: Callable[[Sizes, torch.Generator], Row]) -> Callable[[Sizes, torch.Generator], Row]:
    """The same row with torch limited to one thread. On a shared, busy 2-core machine each parallel
    op of the default 2 threads can wait a scheduler slice for a descheduled thread; that penalises
    the engine's many short passes far more than one long sort or a dense matrix op."""
    def run(sizes: Sizes, gen: torch.Generator) -> Row:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            row = bench(sizes, gen)
        finally:
            torch.set_num_threads(threads)
        row.name += ", 1 thread"
        row.timed += "; torch.set_num_threads(1) for engine and reference"
        return row
    return run


def bench_soap(sizes: Sizes, gen: torch.Generator) -> Row:
    batch, rows = sizes.soap_batch, sizes.soap_block_rows
    diff = soap_max_rel_diff(sizes.soap_check_batch, rows, gen)
    scores, labels, index = _soap_problem(batch, gen)
    module = APLoss(4 * batch, margin=SOAP_MARGIN, gamma=SOAP_GAMMA)
    n_blocks = -(-(batch // 2) // rows)
    timed_blocks = n_blocks if sizes.soap_dense_blocks is None else min(sizes.soap_dense_blocks, n_blocks)
    u_all, u_pos = torch.zeros(4 * batch, dtype=DTYPE), torch.zeros(4 * batch, dtype=DTYPE)
    timing = time_interleaved(lambda: _soap_engine_step(module, scores, labels, index),
                              lambda: _soap_dense_step(scores, labels, index, u_all, u_pos, rows, timed_blocks),
                              sizes.repeats, sizes.soap_dense_repeats, reference_warmup=0,
                              reference_scale=n_blocks / timed_blocks)
    how = ("all of them" if timed_blocks == n_blocks else
           f"{timed_blocks} of the {n_blocks} blocks timed at full B, time scaled by {n_blocks}/{timed_blocks} "
           "(every block does identical work)")
    return _row("APLoss vs dense SOAP", batch, timing, "speed-up >= 1000x", 1000.0, diff,
                f"one SOAP step forward+backward (update + weighted loss + backward), B = {batch} with {batch // 2} "
                f"positives (half, as Adversarial-AP batches), squared hinge on sigmoid scores; dense = LibAUC-style "
                f"autograd over B+xB entries in blocks of {rows} positive rows, {how}; max rel diff from a full "
                f"dense step at B = {sizes.soap_check_batch}")


BENCHES = (bench_dense_pairs, bench_vs_sort, bench_soap)

HEADERS = ["benchmark", "N", "engine (s)", "reference (s)", "ratio (ref/engine)", "goal", "met", "max rel diff",
           "engine min (s)", "reference min (s)"]


def to_markdown(report: dict) -> str:
    rows = [[r["name"], r["N"], f"{r['engine_s']:.4g}", f"{r['reference_s']:.4g}", f"{r['ratio']:.4g}", r["goal"],
             "yes" if r["goal_met"] else "NO", "-" if r["max_rel_diff"] is None else f"{r['max_rel_diff']:.2e}",
             f"{r['engine_min_s']:.4g}", f"{r['reference_min_s']:.4g}"]
            for r in report["rows"]]
    env = report["environment"]
    lines = [
        "# Pairwise engine benchmark",
        "",
        f"{env['dtype']}; median of {report['sizes']['repeats']} repeats (dense: "
        f"{report['sizes']['dense_repeats']} for row 1, {report['sizes']['soap_dense_repeats']} for row 3)"
        + (" — QUICK sizes, not the real benchmark" if report["quick"] else "") + ". "
        f"Engine and reference runs alternate; one engine sample is the mean per call over a burst of "
        f"back-to-back calls lasting >= {ENGINE_BURST_S} s (timeit-style). Whole run: {report['wall_s']} s. "
        + environment_line(env) + " On a shared machine compare with the min columns.",
        "",
        markdown_table(HEADERS, rows),
        "What was timed:",
        "",
    ]
    lines += [f"- **{r['name']}**: {r['timed']}." for r in report["rows"]]
    lines += ["", "ratio = reference_s / engine_s; max rel diff = max|engine − dense| / max|dense| over the loss "
              "value, the gradients (and for SOAP the moving averages), both in the timed dtype.", ""]
    return "\n".join(lines)


def run_benchmark(sizes: Sizes, seed: int = 0, quick: bool = False) -> dict:
    """Run all rows and return the report (environment, sizes, rows) as a dict of plain values."""
    gen, _ = make_generators(seed)
    with MeasuredRun(dtype=str(DTYPE).replace("torch.", "")) as measured:
        benches = list(BENCHES) + ([one_thread(b) for b in BENCHES] if torch.get_num_threads() > 1 else [])
        rows = [bench(sizes, gen) for bench in progress(benches, desc="pairwise bench", total=len(benches))]
    return {
        "benchmark": "pairwise",
        "quick": quick,
        "environment": measured.environment,
        "wall_s": measured.wall_s,
        "sizes": asdict(sizes),
        "rows": [asdict(r) for r in rows],
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="tiny sizes (seconds), for smoke tests")
    p.add_argument("--out", default=str(default_results_dir()),
                   help="folder for pairwise.json and pairwise.md (default: the checkout's results/)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--full-dense", action="store_true",
                   help="time every block of the dense SOAP step instead of scaling a timed fraction")


def run(args: argparse.Namespace) -> int:
    sizes = QUICK if args.quick else Sizes()
    if args.full_dense:
        sizes = dataclasses.replace(sizes, soap_dense_blocks=None)
    report = run_benchmark(sizes, seed=args.seed, quick=args.quick)
    return publish(args.out, "pairwise", report, to_markdown(report))


def main(argv: list[str] | None = None) -> int:
    return standalone_main("pairwise", __doc__, add_arguments, run, argv)
