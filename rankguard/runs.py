"""Run directories: config, metrics JSON, Markdown report and plots of one run, written safely.

Files are written atomically (temporary file, then rename) so a crash never leaves a
half-written ``metrics.json`` and never destroys what an earlier step saved.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
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


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


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
        # mkstemp creates 0600; a run file gets the mode an ordinary open() would give (0666 & ~umask)
        os.fchmod(fd, 0o666 & ~_umask())
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


class RunDirError(ValueError):
    """A run folder that cannot be used as asked (holds another run, is a file, is missing)."""


#: the run's state marker: ``{"status": "running" | "complete" | "failed" | "interrupted", ...}``
STATUS_FILE = "status.json"


class RunDir:
    """A folder holding one run: ``config.json``, ``metrics.json``, ``report.md`` and plots.

    ``RunDir(path)`` creates the folder; ``RunDir(path, create=False)`` requires it to exist (a
    read-only use such as ``recsys evaluate`` never creates folders). To start a training run use
    :meth:`for_run`, which refuses a folder holding an earlier run unless told to overwrite or
    resume it, and marks the run ``running`` in ``status.json`` until it finishes.

    >>> import tempfile; d = RunDir(tempfile.mkdtemp()); _ = d.save_json("metrics.json", {"AUC": 0.9})
    >>> sorted(p.name for p in d.path.iterdir())
    ['metrics.json']
    """

    def __init__(self, path: str | os.PathLike, create: bool = True):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"{self.path}: is a file, not a run directory")
        if create:
            self.path.mkdir(parents=True, exist_ok=True)
        elif not self.path.is_dir():
            raise RunDirError(f"{self.path}: no such run directory")

    @classmethod
    def for_run(cls, path: str | os.PathLike, mode: str = "new", flag: str = "--out") -> "RunDir":
        """Open ``path`` for a training run; ``mode`` is ``"new"``, ``"overwrite"`` or ``"resume"``.

        ``new``: the folder must be absent or empty (an earlier run is never overwritten silently).
        ``overwrite``: an earlier *run* in it (it has ``config.json`` or ``status.json``) is deleted
        first, so no file of the old run survives beside the new one; a folder of other files is
        refused. ``resume``: the folder must hold a run's ``config.json``.
        """
        p = Path(path)
        if p.exists() and not p.is_dir():
            raise RunDirError(f"{flag} {p}: is a file; name a folder for the run")
        entries = sorted(q.name for q in p.iterdir()) if p.is_dir() else []
        is_run = any(name in entries for name in ("config.json", STATUS_FILE))
        if mode == "resume":
            if not (p / "config.json").is_file():
                raise RunDirError(f"--resume {p}: no config.json there; is it a rankguard run directory?")
        elif mode == "overwrite":
            if entries and not is_run:
                raise RunDirError(f"--overwrite {p}: the folder holds files but no rankguard run "
                                  f"(no config.json); refusing to delete them")
            for q in p.iterdir() if entries else ():
                shutil.rmtree(q) if q.is_dir() and not q.is_symlink() else q.unlink()
        elif mode == "new":
            if entries:
                what = "an earlier run" if is_run else f"{len(entries)} file(s)"
                raise RunDirError(f"{flag} {p}: the folder holds {what}; pass --overwrite to replace it, "
                                  f"--resume {p} to continue it, or choose another {flag}")
        else:
            raise ValueError(f"`mode` must be 'new', 'overwrite' or 'resume', got {mode!r}")
        return cls(p)

    def file(self, name: str) -> Path:
        return self.path / name

    def save_json(self, name: str, obj: Any) -> Path:
        return write_json(self.path / name, obj)

    def save_text(self, name: str, text: str) -> Path:
        return atomic_write_text(self.path / name, text)

    def load_json(self, name: str) -> Any:
        path = self.path / name
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise RunDirError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None

    def status(self) -> str | None:
        """``"running"``, ``"complete"``, … from ``status.json``; ``None`` when there is none."""
        if not self.file(STATUS_FILE).is_file():
            return None
        return str(self.load_json(STATUS_FILE).get("status"))

    def mark(self, status: str, **info: Any) -> Path:
        """Write ``status.json`` (``running`` while training, ``complete`` once every file is written)."""
        return self.save_json(STATUS_FILE, {"status": status, **info})
