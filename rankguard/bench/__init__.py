"""``rankguard bench NAME``: speed and quality benchmarks that write results/*.json and *.md.

Each benchmark is a module exposing ``add_arguments(parser)`` and ``run(args) -> int`` (and
``main(argv)`` for its script under benchmarks/); adding one is one line in :data:`BENCHMARKS`.
"""

from __future__ import annotations

import argparse
import importlib

# benchmark name -> module with add_arguments(parser) and run(args)
BENCHMARKS: dict[str, str] = {
    "pairwise": "rankguard.bench.pairwise",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a benchmark (writes results/NAME.json and results/NAME.md)")
    p.set_defaults(_parser=p)  # `rankguard bench` alone prints this group's help
    bench_sub = p.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    for name, module in BENCHMARKS.items():
        mod = importlib.import_module(module)
        doc = (mod.__doc__ or name).strip().splitlines()[0]
        bp = bench_sub.add_parser(name, help=doc, description=doc)
        mod.add_arguments(bp)
        bp.set_defaults(func=mod.run, _parser=bp)
