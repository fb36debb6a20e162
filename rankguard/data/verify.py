"""Checksum verification of dataset files, hashed once per file version and cached.

A file is hashed (sha256) the first time it is seen; the digest is remembered under the file's
absolute path together with its size and ``st_mtime_ns``, in this process and on disk in
``$XDG_CACHE_HOME/rankguard/verified.json`` (``~/.cache/rankguard/verified.json`` when the variable
is unset). The data directory itself may be read-only, so nothing is ever written there. A later
check whose size and mtime still match reuses the digest without reading the file; touching or
replacing the file makes it hash again. An unwritable cache only costs re-hashing, never an error.

The digest is compared with the registry's expected one on every check, so the cache can never
turn a mismatch into a pass (unless a file is rewritten keeping both its size and its mtime).

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"; _ = p.write_bytes(b"abc")
>>> file_sha256(p)[:16]
'ba7816bf8f01cfea'
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from rankguard.data.location import DatasetNotFoundError
from rankguard.runs import write_json

log = logging.getLogger(__name__)

CACHE_FILE_NAME = "verified.json"
_CHUNK_BYTES = 1 << 20
_SHOWN_HEX = 12  # digits of a digest quoted in messages: enough to grep sha256sums.txt

# absolute path -> (size, mtime_ns, sha256): the in-process layer in front of the disk cache
_memory: dict[str, tuple[int, int, str]] = {}


class ChecksumMismatchError(ValueError):
    """A dataset file's sha256 differs from the one the registry expects."""


def cache_path() -> Path:
    """Where verified digests are remembered across processes (outside the data directory)."""
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "rankguard" / CACHE_FILE_NAME


def clear_memory_cache() -> None:
    """Forget the in-process digests (the disk cache stays); for tests and long-lived processes."""
    _memory.clear()


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class FileCheck:
    """The outcome for one file: ``found`` is its sha256, or ``None`` when the file is missing."""

    file: str
    path: Path
    expected: str
    found: str | None

    @property
    def ok(self) -> bool:
        return self.found == self.expected

    def problem(self, dataset: str) -> str:
        """One sentence naming the dataset, the file, what was expected and what was found."""
        if self.found is None:
            return f"dataset {dataset!r}: {self.file} is missing (expected at {self.path})"
        return (f"dataset {dataset!r}: {self.file} has sha256 {self.found[:_SHOWN_HEX]}… but the registry "
                f"expects {self.expected[:_SHOWN_HEX]}…; the file may be corrupt or a different release "
                f"({self.path})")


def _read_disk_cache(path: Path) -> dict[str, dict]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # absent or unreadable: start afresh
    return loaded if isinstance(loaded, dict) else {}


def _write_disk_cache(path: Path, new: dict[str, dict]) -> None:
    # merge with what another process may have written since we read it
    merged = {**_read_disk_cache(path), **new}
    try:
        write_json(path, dict(sorted(merged.items())))
    except OSError as exc:
        log.debug("could not write the verification cache %s: %s", path, exc)


def check_files(folder: Path, expected: Mapping[str, str]) -> list[FileCheck]:
    """Hash (or recall) every file of ``expected`` (relative path -> sha256) under ``folder``.

    Never raises for a missing or differing file: each outcome is a :class:`FileCheck`.
    """
    disk_path = cache_path()
    disk: dict[str, dict] | None = None  # read lazily: a fully in-memory hit touches no file
    new_entries: dict[str, dict] = {}
    checks = []
    for rel, want in expected.items():
        path = folder / rel
        try:
            st = path.stat()
        except OSError:
            checks.append(FileCheck(rel, path, want, None))
            continue
        key = str(path.resolve())
        stamp = (int(st.st_size), int(st.st_mtime_ns))
        hit = _memory.get(key)
        if hit is not None and hit[:2] == stamp:
            found = hit[2]
        else:
            if disk is None:
                disk = _read_disk_cache(disk_path)
            entry = disk.get(key)
            if isinstance(entry, dict) and (entry.get("size"), entry.get("mtime_ns")) == stamp:
                found = str(entry.get("sha256"))
            else:
                found = file_sha256(path)
                new_entries[key] = {"size": stamp[0], "mtime_ns": stamp[1], "sha256": found}
            _memory[key] = (*stamp, found)
        checks.append(FileCheck(rel, path, want, found))
    if new_entries:
        _write_disk_cache(disk_path, new_entries)
    return checks


def raise_for_problems(dataset: str, checks: list[FileCheck], where: str) -> None:
    """Raise for the first kind of problem found: missing files, then checksum mismatches.

    Missing files raise :class:`~rankguard.data.DatasetNotFoundError` (saying where it looked);
    differing digests raise :class:`ChecksumMismatchError`, one line per file.
    """
    missing = [c for c in checks if c.found is None]
    if missing:
        raise DatasetNotFoundError(
            f"dataset {dataset!r} not found: expected {', '.join(str(c.path) for c in missing)}; "
            f"data directory is {where}")
    bad = [c for c in checks if not c.ok]
    if bad:
        raise ChecksumMismatchError("\n".join(c.problem(dataset) for c in bad))
