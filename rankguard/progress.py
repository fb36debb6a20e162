"""Progress bars that stay quiet when output is not a terminal or when running in CI."""

from __future__ import annotations

import os
import sys
from typing import Iterable, Iterator, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_enabled() -> bool:
    """Bars are shown only on an interactive terminal, never under ``CI`` or ``RANKGUARD_QUIET``."""
    if os.environ.get("CI") or os.environ.get("RANKGUARD_QUIET"):
        return False
    return sys.stderr.isatty()


def progress(iterable: Iterable[T], desc: str = "", total: int | None = None, leave: bool = False) -> Iterator[T]:
    """Wrap ``iterable`` in a tqdm bar when :func:`progress_enabled`; otherwise iterate plainly."""
    return iter(tqdm(iterable, desc=desc, total=total, leave=leave, disable=not progress_enabled(),
                     dynamic_ncols=True))
