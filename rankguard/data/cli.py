"""``rankguard data``: the registered datasets, whether each is present and whether it verifies.

Checksums are computed once per file version and cached (see :mod:`rankguard.data.verify`), so
the first listing reads every present file and later ones are instant. Exit status 1 when a
present dataset has a file with the wrong checksum, 0 otherwise (missing datasets are normal).
"""

from __future__ import annotations

import argparse

from rankguard.data.datasets import DATASETS, check_dataset
from rankguard.data.location import describe_data_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="list the registered datasets, their presence and checksum status")
    p.set_defaults(func=run, _parser=p)


def status_line(name: str) -> tuple[str, list[str]]:
    """(status word, problem sentences) of one dataset: packaged, verified, missing or MISMATCH."""
    info = DATASETS.get(name)
    if info.folder is None:
        return "packaged", []
    checks = check_dataset(name)
    missing = [c for c in checks if c.found is None]
    bad = [c for c in checks if c.found is not None and not c.ok]
    if bad:
        return "MISMATCH", [c.problem(name) for c in bad]
    if missing:
        word = "missing" if len(missing) == len(checks) else f"missing {len(missing)}/{len(checks)} files"
        return word, ([] if len(missing) == len(checks) else [c.problem(name) for c in missing])
    return "verified", []


def run(args: argparse.Namespace) -> int:
    print(f"data directory: {describe_data_dir()}")
    failed = False
    for name, info in DATASETS.items():
        word, problems = status_line(name)
        failed = failed or word == "MISMATCH"
        where = f"{info.folder}/ ({len(info.files)} files)" if info.folder else "ships with scikit-learn"
        loader = "" if info.loader is not None else "  [no loader yet]"
        print(f"  {name:18s} {word:10s} {info.kind:13s} {where:28s} {info.description}{loader}")
        for line in problems:
            print(f"      {line}")
    return 1 if failed else 0
