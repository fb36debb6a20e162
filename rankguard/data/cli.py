"""``rankguard data list``: the registered datasets and whether each is present."""

from __future__ import annotations

import argparse

from rankguard.data import DATASETS, available, data_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="list the registered datasets and the data directory")
    p.set_defaults(func=run, _parser=p)


def run(args: argparse.Namespace) -> int:
    print(f"data directory: {data_dir()}")
    for name, info in sorted(DATASETS.items()):
        mark = "present" if available(name) else "missing"
        print(f"  {name:16s} {mark:8s} {info.folder}/{', '.join(info.files)}  -- {info.description}")
    return 0
