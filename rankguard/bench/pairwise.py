"""Speed of the exact all-pairs engine and of APLoss against dense pair matrices and torch.sort.

Three rows, each timed forward + backward as the median of several repeats (float32, CPU, the
default number of torch threads):

1. ``pairwise_loss`` (squared hinge) vs the dense n⁺×n⁻ matrix at N = 2·10⁴ — goal ≥ 1000×.
2. ``pairwise_loss`` at n⁺ = n⁻ = 5·10⁵ vs one ``torch.sort`` of the same 10⁶ scores — goal: the
   engine takes ≤ 2× the sort time (speed-up ratio ≥ 0.5).
3. :class:`~rankguard.losses.ap.APLoss` vs a dense SOAP step (the full B⁺×B matrix of LibAUC's
   ``APLoss``: surrogate matrix, row means for the moving averages, weight matrix, weighted mean)
   at B = 65,536 with half the batch positive (the Adversarial-AP batches are half positive). The
   dense step does all of its B⁺×B work, in blocks of rows so it fits in memory — goal ≥ 1000×.

``ratio`` is always reference_s / engine_s (a speed-up); ``max_rel_diff`` is the largest of
max|a − b| / max|b| over the loss value and each gradient (engine a, dense b, same dtype).

Run ``python benchmarks/pairwise.py`` or ``rankguard bench pairwise`` (``--quick`` for tiny sizes).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from rankguard.functional.pairwise import pairwise_loss
from rankguard.losses.ap import APLoss
from rankguard.progress import progress
from rankguard.runs import markdown_table, write_json, atomic_write_text
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
    soap_block_rows: int = 512    # row 3: dense SOAP block of positive rows
    repeats: int = 5              # engine and sort repeats (median)
    dense_repeats: int = 3        # row 1 dense repeats
    soap_dense_repeats: int = 1   # row 3 dense repeats (the dense step is the slow part)


QUICK = Sizes(dense_n=400, sort_n=5_000, soap_batch=1_024, soap_block_rows=128, repeats=3,
              dense_repeats=2, soap_dense_repeats=1)


@dataclass
class Row:
    name: str
    N: int
    engine_s: float
    reference_s: float
    ratio: float
    goal: str
    goal_min_ratio: float
    goal_met: bool
    max_rel_diff: float | None
    timed: str


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max|a − b| / max|b| (0 when both are zero)."""
    a, b = a.detach().double(), b.detach().double()
    scale = float(b.abs().max())
    err = float((a - b).abs().max())
    return err / scale if scale > 0 else err


def _row(name: str, n: int, engine_s: float, reference_s: float, goal: str, goal_min_ratio: float,
         max_rel_diff: float | None, timed: str) -> Row:
    ratio = reference_s / engine_s
    return Row(name, n, engine_s, reference_s, ratio, goal, goal_min_ratio, bool(ratio >= goal_min_ratio),
               max_rel_diff, timed)


# ---- dense baselines (what one writes without the engine) ----

def dense_squared_hinge_mean(pos: torch.Tensor, neg: torch.Tensor, margin: float) -> torch.Tensor:
    """mean_ij max(0, m − (p_i − n_j))² through the full n⁺×n⁻ matrix."""
    return torch.clamp(margin - (pos[:, None] - neg[None, :]), min=0).pow(2).mean()


def dense_soap_step(scores: torch.Tensor, labels: torch.Tensor, index: torch.Tensor, u_all: torch.Tensor,
                    u_pos: torch.Tensor, margin: float, gamma: float, block_rows: int) -> torch.Tensor:
    """One LibAUC-style dense SOAP step (squared hinge, sigmoid scores), forward AND backward.

    Builds every B⁺×B entry — surrogate, row means for the moving averages, weight matrix,
    weighted sum and its backward — block of positive rows by block, so memory stays bounded.
    Accumulates ``scores.grad``; updates ``u_all``/``u_pos`` in place; returns the loss value.
    """
    h_full = torch.sigmoid(scores)
    h = h_full.detach().requires_grad_(True)
    y = labels.to(h.dtype)
    pos_rows = torch.nonzero(labels).flatten()
    n_pos, batch = pos_rows.numel(), h.numel()
    total = torch.zeros((), dtype=h.dtype)
    for start in range(0, n_pos, block_rows):
        rows = pos_rows[start:start + block_rows]
        ell = torch.clamp(margin - (h[rows][:, None] - h[None, :]), min=0).pow(2)
        with torch.no_grad():
            idx = index[rows]
            u_all[idx] = (1 - gamma) * u_all[idx] + gamma * ell.mean(dim=1)
            u_pos[idx] = (1 - gamma) * u_pos[idx] + gamma * (ell * y[None, :]).mean(dim=1)
            weight = (u_pos[idx][:, None] - u_all[idx][:, None] * y[None, :]) / u_all[idx][:, None] ** 2
        part = (weight * ell).sum() / (n_pos * batch)
        part.backward()
        total += part.detach()
    h_full.backward(h.grad)
    return total


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
    engine_s = median_time(lambda: run(engine), sizes.repeats)
    dense_s = median_time(lambda: run(dense), sizes.dense_repeats)
    return _row("pairwise_loss vs dense pairs", 2 * n, engine_s, dense_s, "speed-up >= 1000x", 1000.0, diff,
                f"squared hinge, mean over {n}x{n} pairs, forward+backward; dense = full matrix")


def bench_vs_sort(sizes: Sizes, gen: torch.Generator) -> Row:
    n = sizes.sort_n
    scores = torch.randn(2 * n, generator=gen, dtype=DTYPE)
    pos, neg = scores[:n] + 0.5, scores[n:]

    def run_engine():
        p, q = pos.clone().requires_grad_(True), neg.clone().requires_grad_(True)
        pairwise_loss(p, q, surrogate="squared_hinge", margin=MARGIN).backward()

    engine_s = median_time(run_engine, sizes.repeats)
    sort_s = median_time(lambda: torch.sort(scores), sizes.repeats)
    return _row("pairwise_loss vs one torch.sort", 2 * n, engine_s, sort_s, "engine <= 2x sort (ratio >= 0.5)",
                0.5, None, f"engine forward+backward at n+ = n- = {n}; reference = torch.sort of the {2 * n} scores")


def bench_soap(sizes: Sizes, gen: torch.Generator) -> Row:
    batch = sizes.soap_batch
    scores = torch.randn(batch, generator=gen, dtype=DTYPE)
    labels = torch.zeros(batch, dtype=torch.bool)
    labels[torch.randperm(batch, generator=gen)[: batch // 2]] = True
    scores = scores + labels.to(DTYPE)  # positives score higher on average
    index = torch.randperm(4 * batch, generator=gen)[:batch]  # a batch of a larger dataset

    def run_engine(module: APLoss):
        s = scores.clone().requires_grad_(True)
        loss = module(s, labels, index)
        loss.backward()
        return loss.detach(), s.grad

    def run_dense(u_all: torch.Tensor, u_pos: torch.Tensor):
        s = scores.clone().requires_grad_(True)
        loss = dense_soap_step(s, labels, index, u_all, u_pos, SOAP_MARGIN, SOAP_GAMMA, sizes.soap_block_rows)
        return loss, s.grad

    module = APLoss(4 * batch, margin=SOAP_MARGIN, gamma=SOAP_GAMMA)
    u_all, u_pos = torch.zeros(4 * batch, dtype=DTYPE), torch.zeros(4 * batch, dtype=DTYPE)
    # From zero state the first step's loss value is exactly 0 (u ∝ the batch means), so compare
    # the second step, taken after one step on other scores of the same samples.
    earlier = torch.randn(batch, generator=gen, dtype=DTYPE).requires_grad_(True)
    module(earlier, labels, index)
    dense_soap_step(earlier, labels, index, u_all, u_pos, SOAP_MARGIN, SOAP_GAMMA, sizes.soap_block_rows)
    engine_out = run_engine(module)
    dense_out = run_dense(u_all, u_pos)
    diff = max([rel_diff(a, b) for a, b in zip(engine_out, dense_out)]
               + [rel_diff(module.u_all, u_all), rel_diff(module.u_pos, u_pos)])
    engine_s = median_time(lambda: run_engine(module), sizes.repeats)
    dense_s = median_time(lambda: run_dense(u_all, u_pos), sizes.soap_dense_repeats, warmup=0)
    return _row("APLoss vs dense SOAP", batch, engine_s, dense_s, "speed-up >= 1000x", 1000.0, diff,
                f"one SOAP step forward+backward, B = {batch}, {batch // 2} positives (half), squared hinge on "
                f"sigmoid scores; dense = all B+xB entries in blocks of {sizes.soap_block_rows} rows")


BENCHES = (bench_dense_pairs, bench_vs_sort, bench_soap)

HEADERS = ["benchmark", "N", "engine (s)", "reference (s)", "ratio (ref/engine)", "goal", "met", "max rel diff"]


def to_markdown(report: dict) -> str:
    rows = [[r["name"], r["N"], f"{r['engine_s']:.4g}", f"{r['reference_s']:.4g}", f"{r['ratio']:.4g}", r["goal"],
             "yes" if r["goal_met"] else "NO", "-" if r["max_rel_diff"] is None else f"{r['max_rel_diff']:.2e}"]
            for r in report["rows"]]
    env = report["environment"]
    lines = [
        "# Pairwise engine benchmark",
        "",
        f"torch {env['torch']}, {env['dtype']}, {env['threads']} torch threads, {env['cpu_count']} CPUs "
        f"({env['machine']}); median of {report['sizes']['repeats']} repeats (dense: "
        f"{report['sizes']['dense_repeats']} for row 1, {report['sizes']['soap_dense_repeats']} for row 3)"
        + (" — QUICK sizes, not the real benchmark" if report["quick"] else "") + ".",
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
    rows = [bench(sizes, gen) for bench in progress(BENCHES, desc="pairwise bench", total=len(BENCHES))]
    return {
        "benchmark": "pairwise",
        "quick": quick,
        "environment": {"torch": torch.__version__, "dtype": str(DTYPE).replace("torch.", ""),
                        "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                        "machine": f"{platform.machine()} {platform.processor() or platform.system()}".strip()},
        "sizes": asdict(sizes),
        "rows": [asdict(r) for r in rows],
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="tiny sizes (seconds), for smoke tests")
    p.add_argument("--out", default="results", help="folder for pairwise.json and pairwise.md (default: results)")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    sizes = QUICK if args.quick else Sizes()
    report = run_benchmark(sizes, seed=args.seed, quick=args.quick)
    out = Path(args.out)
    write_json(out / "pairwise.json", report)
    md = to_markdown(report)
    atomic_write_text(out / "pairwise.md", md)
    print(md)
    print(f"wrote {out / 'pairwise.json'} and {out / 'pairwise.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/pairwise.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
