"""CIFAR-10 in `rankguard classify`: the loader, the small CNN, augmentation, and one quick CLI run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from rankguard import data
from rankguard.classify.augment import random_crop_flip
from rankguard.classify.models import build_model
from rankguard.classify.recipes import ClassifyConfig
from rankguard.cli import main
from rankguard.data import images


def _write(folder, n, *, x=None, y=None, names=("x", "y")):
    rng = np.random.default_rng(n)
    arrays = {"x": rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8) if x is None else x,
              "y": np.arange(n) % 10 if y is None else y}
    folder.mkdir(parents=True, exist_ok=True)
    for name in (images.CIFAR10_TRAIN, images.CIFAR10_TEST):
        np.savez(folder / name, **{k: arrays[k] for k in names})


def test_loader_gives_nchw_normalised_by_training_channel_stats(tmp_path):
    _write(tmp_path, 20)
    d = images.load_cifar10(tmp_path)
    raw = np.load(tmp_path / images.CIFAR10_TRAIN)["x"].astype(np.float64) / 255
    mean, std = raw.mean(axis=(0, 1, 2)), raw.std(axis=(0, 1, 2))
    assert d.x_train.shape == (20, 3, 32, 32) and d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    np.testing.assert_allclose(d.x_train, ((raw - mean) / std).transpose(0, 3, 1, 2), atol=1e-5)
    np.testing.assert_allclose(d.x_train.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(d.x_train.std(axis=(0, 2, 3)), 1, atol=1e-5)
    assert d.n_classes == 10


@pytest.mark.parametrize("kind, match", [
    ("missing", "CIFAR-10 file not found"),
    ("keys", "expected arrays 'x' and 'y', missing y"),
    ("shape", r"'x' must be uint8 \[n, 32, 32, 3\] \(NHWC\), got uint8 \[4, 3, 32, 32\]"),
    ("labels", "labels must lie in 0..9, got 0..11"),
    ("garbage", "not a readable .npz file"),
])
def test_odd_files_are_one_line_errors(tmp_path, kind, match):
    if kind == "missing":
        tmp_path.mkdir(exist_ok=True)
    elif kind == "keys":
        _write(tmp_path, 4, names=("x",))
    elif kind == "shape":
        _write(tmp_path, 4, x=np.zeros((4, 3, 32, 32), np.uint8))
    elif kind == "labels":
        _write(tmp_path, 4, y=np.array([0, 1, 11, 2]))
    else:
        for name in (images.CIFAR10_TRAIN, images.CIFAR10_TEST):
            (tmp_path / name).write_bytes(b"not a zip")
    with pytest.raises((ValueError, FileNotFoundError), match=match) as info:
        images.load_cifar10(tmp_path)
    assert "\n" not in str(info.value) and images.CIFAR10_TRAIN in str(info.value)


def test_augmentation_matches_a_per_image_loop_and_is_seeded():
    x = torch.randn(6, 3, 32, 32)
    got = random_crop_flip(x, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    dy, dx = torch.randint(0, 9, (6,), generator=g), torch.randint(0, 9, (6,), generator=g)
    flip = torch.rand(6, generator=g) < 0.5
    padded = F.pad(x, (4, 4, 4, 4))
    for i in range(6):
        crop = padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        assert torch.equal(got[i], crop.flip(2) if flip[i] else crop)
    assert torch.equal(got, random_crop_flip(x, torch.Generator().manual_seed(3)))


def test_cnn_is_the_default_for_cifar_shaped_inputs_and_seeded():
    assert (ClassifyConfig(dataset="cifar10").model, ClassifyConfig(dataset="cifar10").hidden) == ("cnn", [32, 64, 128])
    assert (ClassifyConfig(dataset="mnist").model, ClassifyConfig(dataset="digits").hidden) == ("mlp", [128, 128])
    assert ClassifyConfig(dataset="cifar10", model="mlp").hidden == [128, 128]
    with pytest.raises(ValueError, match="--augment crops and flips images; --dataset digits"):
        ClassifyConfig(dataset="digits", augment=True)
    before = torch.get_rng_state()
    a, b = (build_model("cnn", 3072, 10, torch.Generator().manual_seed(1), (8, 16)) for _ in range(2))
    assert torch.equal(before, torch.get_rng_state())
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert a(torch.zeros(2, 3072)).shape == (2, 10)
    with pytest.raises(ValueError, match="use --model mlp for tabular data"):
        build_model("cnn", 64, 10, torch.Generator(), (8,))


@pytest.fixture
def fake_cifar10(tmp_path, monkeypatch):
    """A data directory whose cifar10/ holds tiny random files (100 training, 50 test images), registered
    with their own checksums for this test only."""
    import hashlib

    folder = tmp_path / "data" / "cifar10"
    _write(folder, 100)
    (folder / images.CIFAR10_TEST).unlink()
    rng = np.random.default_rng(1)
    np.savez(folder / images.CIFAR10_TEST, x=rng.integers(0, 256, (50, 32, 32, 3), dtype=np.uint8), y=np.arange(50) % 10)
    files = data.DATASETS.get("cifar10").files
    for name in files:
        monkeypatch.setitem(files, name, hashlib.sha256((folder / name).read_bytes()).hexdigest())
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data.set_data_dir(None)
    return folder


def test_cli_cifar10_one_epoch_writes_top1_top5(fake_cifar10, tmp_path):
    out = tmp_path / "run"
    assert main(["classify", "train", "--dataset", "cifar10", "--loss", "aldr-kl", "--noise", "uniform:0.4",
                 "--epochs", "1", "--max-train", "60", "--augment", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["top1_accuracy"] <= metrics["top5_accuracy"] <= 1
    assert (metrics["n_train"], metrics["n_val"], metrics["n_test"], metrics["n_features"]) == (48, 12, 50, 3072)
    config = json.loads((out / "config.json").read_text())
    assert (config["model"], config["hidden"], config["augment"], config["max_train"]) == ("cnn", [32, 64, 128], True, 60)
    assert (out / "confusion_matrix.png").is_file() and (out / "suspected_labels.csv").is_file()


def test_augmented_cnn_run_resumes_exactly(fake_cifar10, tmp_path):
    from rankguard.classify.trainer import train
    from rankguard.training import RunInterrupted

    config = ClassifyConfig(dataset="cifar10", loss="ce", epochs=2, hidden=[8, 16], augment=True, batch_size=16)
    whole = train(config, out=tmp_path / "whole", log=None)

    def stop_at_epoch_2(msg: str) -> None:
        if msg.startswith("epoch 2:"):
            raise KeyboardInterrupt
    with pytest.raises(RunInterrupted):
        train(config, out=tmp_path / "cut", log=stop_at_epoch_2)
    resumed = train(config, out=tmp_path / "cut", mode="resume", log=None)
    assert resumed.resumed_from == 2
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)   # same crops and flips after the resume, BN statistics included


def test_real_cifar10_files_load_as_documented():
    if not data.available("cifar10"):
        pytest.skip(f"dataset 'cifar10' not available under {data.describe_data_dir()} (set RANKGUARD_DATA)")
    d = data.load("cifar10")
    assert d.x_train.shape == d.x_test.shape == (10000, 3, 32, 32)
    assert np.bincount(d.y_train).tolist() == [1000] * 10 and np.bincount(d.y_test).tolist() == [1000] * 10
    np.testing.assert_allclose(d.x_train.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(d.x_train.std(axis=(0, 2, 3)), 1, atol=1e-4)
    assert np.abs(d.x_test.mean(axis=(0, 2, 3))).max() < 0.05   # the test set is normalised by the training stats


def test_bad_max_train_and_augment_are_one_line_cli_errors(tmp_path, capsys):
    assert main(["classify", "train", "--dataset", "cifar10", "--loss", "ce", "--max-train", "1",
                 "--out", str(tmp_path / "a")]) == 1
    assert "--max-train must be an integer >= 2, got 1" in capsys.readouterr().err
    assert main(["classify", "train", "--dataset", "letter", "--loss", "ce", "--augment",
                 "--out", str(tmp_path / "b")]) == 1
    assert "--dataset letter is not an image dataset" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
