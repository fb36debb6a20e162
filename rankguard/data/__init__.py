"""Datasets: the registry (name -> folder, files + sha256, loader) and the data-directory setting.

- :mod:`rankguard.data.location`  -- where datasets are looked up (``--data-dir``, ``$RANKGUARD_DATA``,
  ``~/.rankguard/data``);
- :mod:`rankguard.data.datasets`  -- :data:`DATASETS`, :func:`load`, :func:`verify_dataset`;
- :mod:`rankguard.data.verify`    -- sha256 checks, hashed once per file version and cached;
- :mod:`rankguard.data.tabular`   -- :class:`TabularData` and the scikit-learn loaders.

rankguard never downloads or copies data: licences of several datasets forbid redistribution.
A missing file raises :class:`DatasetNotFoundError` saying where it looked and what it expected;
a file with another checksum raises :class:`ChecksumMismatchError` naming dataset, file and digests.

Example
-------
>>> from rankguard.data import DATASETS
>>> "u.data" in DATASETS.get("ml-100k").files
True
"""

from rankguard.data.datasets import (
    DATASETS,
    KINDS,
    SHA256,
    DatasetInfo,
    available,
    check_dataset,
    dataset_path,
    load,
    register,
    verify_dataset,
)
from rankguard.data.location import DATA_ENV, DatasetNotFoundError, data_dir, describe_data_dir, set_data_dir
from rankguard.data.tabular import TabularData, load_breast_cancer, load_digits, load_digits_imbalanced
from rankguard.data.verify import ChecksumMismatchError, FileCheck, cache_path

__all__ = [
    "DATASETS", "KINDS", "SHA256", "DatasetInfo", "available", "check_dataset", "dataset_path", "load",
    "register", "verify_dataset", "DATA_ENV", "DatasetNotFoundError", "data_dir", "describe_data_dir",
    "set_data_dir", "TabularData", "load_breast_cancer", "load_digits", "load_digits_imbalanced",
    "ChecksumMismatchError", "FileCheck", "cache_path",
]
