"""Pieces every training command shares: argument types, config files, and where a run goes.

``rankguard recsys train`` and ``rankguard classify train`` (and later recipes) follow one contract:
``--config FILE`` replays a run's ``config.json`` (flags beside it override), ``--resume DIR``
continues a killed run and takes no other training flag, ``--out DIR`` must be new or empty unless
``--overwrite``. :func:`run_target` implements that contract once.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, Callable, TypeVar

from rankguard.runs import RunDir

C = TypeVar("C")


def finite_float(text: str) -> float:
    """argparse type: a finite float (``nan``/``inf`` are refused naming the value)."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def read_config(path: str | Path, flag: str = "--config") -> dict[str, Any]:
    """A run's ``config.json`` as a dict; a missing or malformed file raises naming ``flag`` and the path."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{flag} {path}: no such file")
    try:
        values = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{flag} {path}: not a JSON config ({exc})") from None
    if not isinstance(values, dict):
        raise ValueError(f"{flag} {path}: expected a JSON object")
    return values


def run_target(args: argparse.Namespace, given: dict[str, Any], build: Callable[[], C],
               from_dict: Callable[[dict[str, Any], str], C]) -> tuple[C, Path, str] | None:
    """``(config, run folder, mode)`` for a training command, or ``None`` when ``--resume`` finds a
    finished run (it prints so: the caller exits 0).

    ``given`` holds the training flags the user typed (refused beside ``--resume``); ``build()``
    makes the config from the flags (and ``--config``); ``from_dict(values, where)`` rebuilds one
    from a run's ``config.json``. A non-empty ``--out`` is refused before any data is loaded.
    """
    if args.resume is not None:
        extra = sorted(given) + (["config"] if args.config else []) + (["out"] if args.out else [])
        if extra:
            raise ValueError(f"--resume takes no other training flag (got "
                             f"{', '.join('--' + e.replace('_', '-') for e in extra)}); the run continues with "
                             f"its own config.json")
        run = RunDir.for_run(args.resume, "resume")
        if run.status() == "complete":
            print(f"{run.path}: the run already finished; nothing to resume (metrics in {run.file('metrics.json')})")
            return None
        return from_dict(run.load_json("config.json"), str(run.file("config.json"))), run.path, "resume"
    if args.out is None:
        raise ValueError("--out DIR is required (the run directory to write)")
    config = build()
    out, mode = Path(args.out), ("overwrite" if args.overwrite else "new")
    if mode == "new":
        RunDir.for_run(out, mode)   # refuse an earlier run before loading any data
    return config, out, mode


def check_int_flags(config: Any, names: tuple[str, ...], minimum: int) -> None:
    """Each ``config.<name>`` must be an integer ``>= minimum``; else one error naming ``--name``."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"--{name.replace('_', '-')} must be an integer >= {minimum}, got {value!r}")


def check_number_flags(config: Any, names: tuple[str, ...], low: float = 0.0, strict: bool = False) -> None:
    """Each ``config.<name>`` must be a finite number ``> low`` (``strict``) or ``>= low``; else one error
    naming ``--name``."""
    for name in names:
        value = getattr(config, name)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
            and (value > low if strict else value >= low)
        if not ok:
            raise ValueError(f"--{name.replace('_', '-')} must be a finite number {'>' if strict else '>='} "
                             f"{low:g}, got {value!r}")
