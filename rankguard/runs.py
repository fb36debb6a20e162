"""Run directories: config, metrics JSON, Markdown report and plots of one run, written safely.

Files are written atomically (temporary file, then rename) so a crash never leaves a
half-written ``metrics.json`` and never destroys what an earlier step saved.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

import numpy as np


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(fh)`` on a temporary binary file beside ``path``, then rename it into place.

    The rename is atomic, so a crash never leaves a half-written file and never destroys what
    ``path`` held before. Every saver in rankguard (JSON, text, ``torch.save``, ``np.savez``,
    figures) goes through here.

    >>> import tempfile, pathlib; p = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
    >>> atomic_write(p, lambda fh: fh.write(b"ok")).read_bytes()
    b'ok'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` (dataclasses, numpy scalars and arrays allowed) as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n")


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A GitHub-flavoured Markdown table; floats are shown with 4 decimals."""
    def fmt(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


class RunDir:
    """A folder holding one run: ``config.json``, ``metrics.json``, ``report.md`` and plots.

    >>> import tempfile; d = RunDir(tempfile.mkdtemp()); _ = d.save_json("metrics.json", {"AUC": 0.9})
    >>> sorted(p.name for p in d.path.iterdir())
    ['metrics.json']
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def file(self, name: str) -> Path:
        return self.path / name

    def save_json(self, name: str, obj: Any) -> Path:
        return write_json(self.path / name, obj)

    def save_text(self, name: str, text: str) -> Path:
        return atomic_write_text(self.path / name, text)

    def load_json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text())
