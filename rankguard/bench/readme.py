"""Copy the benchmark tables (results/NAME.md) into README.md, verbatim: ``rankguard bench readme``.

README.md marks each spot with ``<!-- BEGIN results/NAME.md -->`` … ``<!-- END results/NAME.md -->``;
this replaces what lies between with the current file (its headings demoted two levels, nothing
else changed), so no number in the README is typed by hand. A marked file that does not exist is
named on stderr, its block left as it was, and the command exits 1. The splicing itself is
:func:`rankguard.bench.harness.update_readme`.

    rankguard bench readme                       # the checkout's README.md and results/
    rankguard bench readme --readme PATH/README.md --root PATH
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rankguard.bench.harness import repo_root, standalone_main, update_readme


def add_arguments(p: argparse.ArgumentParser) -> None:
    root = repo_root() or Path.cwd()
    p.add_argument("--readme", default=str(root / "README.md"), help="README to update (default: the checkout's)")
    p.add_argument("--root", default=None,
                   help="folder holding results/ (default: the README's folder)")


def run(args: argparse.Namespace) -> int:
    report = update_readme(args.readme, args.root)
    for name in report.missing:
        print(f"rankguard bench readme: {name} is missing (run its benchmark first); its README block was "
              "left unchanged", file=sys.stderr)
    state = "updated" if report.changed else "already up to date"
    print(f"rankguard bench readme: {len(report.refreshed)} table(s) spliced into {args.readme} ({state})")
    return 1 if report.missing else 0


def main(argv: list[str] | None = None) -> int:
    return standalone_main("readme", __doc__, add_arguments, run, argv)
