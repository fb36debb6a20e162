"""The dataset registry: checksums, cached verification, error messages, loaders, `rankguard data`."""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from rankguard import data
from rankguard.data import cli as data_cli
from rankguard.data import verify

ML1M_SHA = data.SHA256["ml-1m/users.dat"]


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    """A private verification cache (disk and in-process) for one test."""
    home = tmp_path / "cache-home"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    verify.clear_memory_cache()
    yield home
    verify.clear_memory_cache()


@pytest.fixture
def hash_calls(monkeypatch):
    """Count how often a file is actually read and hashed."""
    calls: list[Path] = []
    real = verify.file_sha256

    def counting(path):
        calls.append(Path(path))
        return real(path)

    monkeypatch.setattr(verify, "file_sha256", counting)
    return calls


@pytest.fixture
def fake_ml1m(tmp_path, monkeypatch):
    """A data directory whose ml-1m/users.dat is not the registered file."""
    root = tmp_path / "data"
    (root / "ml-1m").mkdir(parents=True)
    (root / "ml-1m" / "users.dat").write_text("5 1 2 3 4 5\n")
    monkeypatch.setenv(data.DATA_ENV, str(root))
    data.set_data_dir(None)
    return root / "ml-1m" / "users.dat"


# ---------------------------------------------------------------- the registry itself

def test_checksums_match_the_shared_sha256sums_file():
    sums = data.data_dir() / "sha256sums.txt"
    if not sums.exists():
        pytest.skip(f"no sha256sums.txt under the data directory {data.describe_data_dir()}")
    listed = {}
    for line in sums.read_text().splitlines():
        digest, rel = line.split(maxsplit=1)
        listed[rel.removeprefix("./")] = digest
    assert data.SHA256 == listed


def test_every_checksum_belongs_to_exactly_one_dataset_file():
    owned = [f"{info.folder}/{rel}" for _, info in data.DATASETS.items() if info.folder for rel in info.files]
    assert sorted(owned) == sorted(data.SHA256)
    for _, info in data.DATASETS.items():
        for rel, digest in info.files.items():
            assert len(digest) == 64 and int(digest, 16) >= 0, (info.name, rel)


def test_unknown_name_lists_registered_names():
    with pytest.raises(KeyError, match="unknown dataset 'nope'.*ml-1m"):
        data.load("nope")


def test_dataset_without_loader_says_so():
    with pytest.raises(ValueError, match="'pin-yeast' .* no loader"):
        data.load("pin-yeast")


# ---------------------------------------------------------------- verification

def test_mismatch_names_dataset_file_expected_and_found(fake_ml1m, cache_home):
    found = hashlib.sha256(fake_ml1m.read_bytes()).hexdigest()
    with pytest.raises(data.ChecksumMismatchError) as info:
        data.verify_dataset("ml-1m")
    msg = str(info.value)
    assert msg.startswith(f"dataset 'ml-1m': users.dat has sha256 {found[:12]}")
    assert f"but the registry expects {ML1M_SHA[:12]}" in msg and "corrupt or a different release" in msg
    assert str(fake_ml1m) in msg
    with pytest.raises(data.ChecksumMismatchError):
        data.load("ml-1m")  # load verifies first
    assert data.load("ml-1m", verify=False).matrix.nnz == 5


def test_missing_file_names_dataset_and_file(tmp_path, monkeypatch, cache_home):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    (tmp_path / "ml-100k-libcml").mkdir()
    (tmp_path / "ml-100k-libcml" / "users.dat").write_text("1 1\n")
    with pytest.raises(data.DatasetNotFoundError) as info:
        data.verify_dataset("ml-100k-libcml")
    msg = str(info.value)
    assert "dataset 'ml-100k-libcml'" in msg and str(tmp_path / "ml-100k-libcml" / "train.npz") in msg
    assert "users.dat" not in msg.split("expected")[1].split(";")[0]  # only the missing ones are listed


def test_verification_is_cached_in_process_and_on_disk(tmp_path, cache_home, hash_calls):
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"abc")
    expected = {"a.txt": hashlib.sha256(b"abc").hexdigest()}
    assert all(c.ok for c in verify.check_files(folder, expected)) and len(hash_calls) == 1
    assert all(c.ok for c in verify.check_files(folder, expected)) and len(hash_calls) == 1  # in-process hit
    assert (cache_home / "rankguard" / "verified.json").exists()
    verify.clear_memory_cache()  # a new process: the disk cache answers
    assert all(c.ok for c in verify.check_files(folder, expected)) and len(hash_calls) == 1
    # a changed file (new mtime) is hashed again, and the cache never hides a mismatch
    (folder / "a.txt").write_bytes(b"abd")
    st = (folder / "a.txt").stat()
    os.utime(folder / "a.txt", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    [check] = verify.check_files(folder, expected)
    assert not check.ok and len(hash_calls) == 2
    [check] = verify.check_files(folder, expected)
    assert not check.ok and len(hash_calls) == 2


def test_read_only_data_and_unwritable_cache_still_verify(tmp_path, monkeypatch, hash_calls):
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"abc")
    folder.chmod(0o555)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # the cache folder cannot be created
    verify.clear_memory_cache()
    try:
        [check] = verify.check_files(folder, {"a.txt": hashlib.sha256(b"abc").hexdigest()})
        assert check.ok and sorted(p.name for p in folder.iterdir()) == ["a.txt"]  # nothing written there
    finally:
        folder.chmod(0o755)
        verify.clear_memory_cache()


def test_corrupt_cache_file_is_ignored(tmp_path, cache_home, hash_calls):
    (cache_home / "rankguard").mkdir(parents=True)
    (cache_home / "rankguard" / "verified.json").write_text("{not json")
    (tmp_path / "a.txt").write_bytes(b"abc")
    [check] = verify.check_files(tmp_path, {"a.txt": hashlib.sha256(b"abc").hexdigest()})
    assert check.ok and len(hash_calls) == 1


def test_real_datasets_verify():
    present = [n for n, info in data.DATASETS.items() if info.folder and data.available(n)]
    if not present:
        pytest.skip(f"no registered dataset under {data.describe_data_dir()}")
    for name in present:
        assert data.verify_dataset(name) == data.data_dir() / data.DATASETS.get(name).folder


# ---------------------------------------------------------------- loaders

def test_breast_cancer_loader():
    from sklearn.datasets import load_breast_cancer

    d = data.load("breast_cancer")
    ref = load_breast_cancer()
    assert d.x.dtype == np.float64 and d.y.dtype == np.int64 and d.x.shape == (569, 30)
    np.testing.assert_array_equal(d.x, ref.data)
    np.testing.assert_array_equal(d.y, (ref.target == 0).astype(int))  # malignant is positive
    assert "malignant" in d.description


def test_digits_loaders():
    digits = data.load("digits")
    assert digits.x.shape == (1797, 64) and sorted(set(digits.y.tolist())) == list(range(10))
    a = data.load_digits_imbalanced(positive_class=8, positive_rate=0.05, rng=np.random.default_rng(3))
    b = data.load("digits_imbalanced", positive_class=8, positive_rate=0.05, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a.x, b.x)
    n_neg = int((digits.y != 8).sum())
    assert int((a.y == 0).sum()) == n_neg and int(a.y.sum()) == round(0.05 / 0.95 * n_neg)
    # every kept row is a row of the full set with the right label
    rows = {r.tobytes(): lab for r, lab in zip(digits.x, digits.y)}
    assert all((rows[r.tobytes()] == 8) == bool(lab) for r, lab in zip(a.x, a.y))
    other = data.load_digits_imbalanced(rng=4)
    assert not np.array_equal(other.x, a.x)
    with pytest.raises(ValueError, match="positive_rate"):
        data.load_digits_imbalanced(positive_rate=1.5)


def test_letter_loader():
    from conftest import require_dataset

    require_dataset("letter")
    d = data.load("letter")
    assert d.x.shape == (2000, 16) and d.y.min() >= 0 and d.y.max() == 25


# ---------------------------------------------------------------- `rankguard data`

def test_cli_lists_presence_and_verification(fake_ml1m, cache_home, capsys):
    assert data_cli.run(argparse.Namespace()) == 1  # a present file with the wrong checksum
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if not line.startswith("      ")}
    assert lines["ml-1m"].split()[1] == "MISMATCH" and "users.dat has sha256" in out
    assert lines["ml-100k"].split()[1] == "missing" and lines["breast_cancer"].split()[1] == "packaged"
    assert set(lines) == set(data.DATASETS.names())
    fake_ml1m.unlink()
    assert data_cli.run(argparse.Namespace()) == 0
