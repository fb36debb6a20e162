"""``rankguard bench NAME``: speed and quality benchmarks that write results/NAME.json and NAME.md.

Each benchmark is a module exposing ``add_arguments(parser)``, ``run(args) -> int`` and
``main(argv)``; adding one is one line in :data:`BENCHMARKS`. All of them time, record the
environment, write their files and compute mean ± std through :mod:`rankguard.bench.harness`;
the dense references they time against live in :mod:`rankguard.bench.references`.

``rankguard bench readme`` (:mod:`rankguard.bench.readme`, listed in :data:`ACTIONS`) copies the
results tables into README.md.
"""

from __future__ import annotations

import argparse
import importlib

# benchmark name -> module with add_arguments(parser), run(args) and main(argv)
BENCHMARKS: dict[str, str] = {
    "noisy_labels": "rankguard.bench.noisy_labels",
    "metrics": "rankguard.bench.metrics",
    "pairwise": "rankguard.bench.pairwise",
    "recsys_quality": "rankguard.bench.recsys_quality",
    "recsys_defaults": "rankguard.bench.recsys_defaults",
    "recsys_speed": "rankguard.bench.recsys_speed",
    "cold_start": "rankguard.bench.cold_start",
    "dpcml_ablation": "rankguard.bench.dpcml_ablation",
    "rescoring": "rankguard.bench.rescoring",
    "contrastive_cf": "rankguard.bench.contrastive_cf",
}
# other `rankguard bench` actions (not benchmarks), same module interface
ACTIONS: dict[str, str] = {
    "readme": "rankguard.bench.readme",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a benchmark (writes results/NAME.json and results/NAME.md)")
    p.set_defaults(_parser=p)  # `rankguard bench` alone prints this group's help
    bench_sub = p.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    for name, module in {**BENCHMARKS, **ACTIONS}.items():
        mod = importlib.import_module(module)
        doc = (mod.__doc__ or name).strip().splitlines()[0]
        dashed = name.replace("_", "-")   # the issues spell benchmarks with dashes (noisy-labels): both work
        bp = bench_sub.add_parser(name, help=doc, description=doc, aliases=[dashed] if dashed != name else [])
        mod.add_arguments(bp)
        bp.set_defaults(func=mod.run, _parser=bp)
