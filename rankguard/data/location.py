"""The data-directory setting: where registered datasets are looked up.

The directory is chosen in this order:

1. :func:`set_data_dir` (the CLI's ``--data-dir`` flag calls it),
2. the environment variable ``RANKGUARD_DATA``,
3. ``~/.rankguard/data``.

>>> set_data_dir("/tmp/somewhere"); str(data_dir())
'/tmp/somewhere'
>>> set_data_dir(None)
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "RANKGUARD_DATA"
_DEFAULT = Path("~/.rankguard/data")
_override: Path | None = None


class DatasetNotFoundError(FileNotFoundError):
    """A dataset (or one of its files) is not under the data directory."""


def set_data_dir(path: str | os.PathLike | None) -> None:
    """Override the data directory for this process (``None`` restores the default lookup)."""
    global _override
    _override = Path(path).expanduser() if path is not None else None


def data_dir() -> Path:
    """The directory datasets are looked up in (see the module docstring for the order)."""
    if _override is not None:
        return _override
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return _DEFAULT.expanduser()


def describe_data_dir() -> str:
    """The data directory and where the setting came from, for error messages."""
    if _override is not None:
        return f"{_override} (from --data-dir)"
    if os.environ.get(DATA_ENV):
        return f"{data_dir()} (from ${DATA_ENV})"
    return f"{data_dir()} (default; set ${DATA_ENV} or pass --data-dir)"
