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
    "classify": "rankguard.classify.cli",
    "rescore": "rankguard.rescoring.cli",
}


class _Parser(argparse.ArgumentParser):
    """An argument error is one line naming the flag (argparse prints the whole usage block)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rankguard",
        description="Robust ranking learning: exact all-pairs AUC/AP losses, recommendation, robustness.",
    )
    parser.add_argument("--version", action="version", version=f"rankguard {__version__}")
    parser.add_argument("--data-dir", default=None,
                        help="directory datasets are looked up in (overrides $RANKGUARD_DATA)")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
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
    from rankguard.training import RunInterrupted

    try:
        return int(func(args) or 0)
    except RunInterrupted as exc:
        print(f"rankguard: {exc}", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(f"rankguard: error: {error_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C outside a training loop (training raises RunInterrupted)
        if args.debug:
            raise
        print("rankguard: interrupted", file=sys.stderr)
        return 130


def error_line(exc: BaseException) -> str:
    """One line for a user error: the message (which names the flag, file or argument at fault).

    Errors rankguard raises on purpose carry their own text; anything else is prefixed with its
    type so that an unexpected failure still reads as one line (``--debug`` shows the traceback).
    """
    msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    msg = " ".join(str(msg).split()) or type(exc).__name__
    plain = (ValueError, KeyError, FileNotFoundError, TypeError, FloatingPointError, PermissionError)
    return msg if isinstance(exc, plain) else f"{type(exc).__name__}: {msg}"

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
