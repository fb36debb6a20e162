"""Shared test fixtures: float64 by default in references, data-directory skips."""

from __future__ import annotations

import pytest

from rankguard.data import available, dataset_path


def require_dataset(name: str):
    """Return the dataset folder, or skip the test with a reason naming what is missing."""
    if not available(name):
        try:
            dataset_path(name)
        except Exception as exc:  # the message says where it looked
            pytest.skip(f"dataset {name!r} not available: {exc}")
    return dataset_path(name)
