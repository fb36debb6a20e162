"""The ``rankguard`` command. Thin: parses arguments, calls the library, prints.

Each sub-command lives in its own module exposing ``register(subparsers)``; adding one is
one line in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rankguard import __version__

# sub-command name -> module with ``register(subparsers)``
COMMANDS: dict[str, str] = {
    "demo": "rankguard.demo",
    "bench": "rankguard.bench",
    "data": "rankguard.data.cli",
    "recsys": "rankguard.recsys.cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rankguard",
        description="Robust ranking learning: exact all-pairs AUC/AP losses, recommendation, robustness.",
    )
    parser.add_argument("--version", action="version", version=f"rankguard {__version__}")
    parser.add_argument("--data-dir", default=None,
                        help="directory datasets are looked up in (overrides $RANKGUARD_DATA)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data_dir is not None:
        from rankguard.data import set_data_dir
        set_data_dir(args.data_dir)
    func = getattr(args, "func", None)
    if func is None:
        # a command group without its sub-command, or no command at all: show the right help
        (getattr(args, "_parser", None) or parser).print_help()
        return 2
    try:
        return int(func(args) or 0)
    except (ValueError, KeyError, FileNotFoundError, TypeError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"rankguard: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
