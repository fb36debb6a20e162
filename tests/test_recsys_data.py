"""Readers, filtering, loading and splits: synthetic files for behaviour, shared data for real counts."""

from __future__ import annotations

import logging
from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse as sp

from conftest import require_dataset
from rankguard.data import ChecksumMismatchError
from rankguard.recsys.data import (Interactions, Split, build_interactions, filter_min_interactions, load_dataset,
                                   load_fixed_split, read_csv, read_inter, read_movielens, read_users_dat)
from rankguard.recsys.splits import leave_one_out, ratio_split, temporal_split


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------- readers on small files

def test_read_movielens_threshold_ids_and_timestamps(tmp_path):
    path = _write(tmp_path, "u.data", "1\t2\t5\t100\n1\t3\t3\t101\n3\t1\t4\t102\n2\t3\t1\t103\n")
    inter = read_movielens(path, threshold=4.0)
    assert inter.matrix.shape == (3, 3)  # largest ids over all lines
    assert inter.matrix.dtype == np.float32
    assert sorted(zip(*inter.matrix.nonzero())) == [(0, 1), (2, 0)]
    assert inter.timestamps[0, 1] == 100 and inter.timestamps[2, 0] == 102
    assert read_movielens(path, threshold=1.0).matrix.nnz == 4


@pytest.mark.parametrize("line, fragment", [
    ("1\t2\t5\n", "expected 4 fields"),
    ("1\tx\t5\t100\n", "item id must be an integer"),
    ("1\t2\tfive\t100\n", "rating must be a number"),
    ("0\t2\t5\t100\n", "1-based"),
])
def test_read_movielens_malformed_line_names_file_and_line(tmp_path, line, fragment):
    path = _write(tmp_path, "u.data", "1\t2\t5\t100\n" + line)
    with pytest.raises(ValueError, match=fragment) as info:
        read_movielens(path)
    assert str(path) in str(info.value) and "line 2" in str(info.value)


def test_read_users_dat_ids_as_given(tmp_path):
    path = _write(tmp_path, "users.dat", "2 1 4\n0\n3 0 2 2\n")
    inter = read_users_dat(path, one_based_users=True)
    assert inter.matrix.shape == (3, 5)  # column = item id, n_items = largest id + 1
    assert inter.matrix[0].indices.tolist() == [1, 4]
    assert inter.matrix[1].nnz == 0  # empty line kept as an empty row
    assert inter.matrix[2].indices.tolist() == [0, 2]  # duplicate merged
    assert inter.user_ids.tolist() == [1, 2, 3]
    assert read_users_dat(path).user_ids.tolist() == [0, 1, 2]


@pytest.mark.parametrize("text, lineno, fragment", [
    ("2 1 4\n3 1 2\n", 2, "count prefix says 3"),
    ("2 1 4\n2 1 b\n", 2, "item id must be an integer"),
    ("x 1\n", 1, "count must be an integer"),
    ("1 1\n\n1 2\n", 2, "blank line"),
])
def test_read_users_dat_malformed(tmp_path, text, lineno, fragment):
    path = _write(tmp_path, "users.dat", text)
    with pytest.raises(ValueError, match=fragment) as info:
        read_users_dat(path)
    assert f"{path}, line {lineno}" in str(info.value)


def test_read_inter_remaps_tokens_and_thresholds(tmp_path):
    text = ("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
            "u9\tA\t5\t10\nu1\tB\t2\t11\nu1\tA\t4\t12\nu9\tA\t5\t13\n")
    path = _write(tmp_path, "x.inter", text)
    inter = read_inter(path, threshold=4)
    assert inter.user_ids.tolist() == ["u1", "u9"] and inter.item_ids.tolist() == ["A", "B"]
    assert sorted(zip(*inter.matrix.nonzero())) == [(0, 0), (1, 0)]
    assert inter.timestamps[1, 0] == 13  # duplicate pair keeps the latest time
    assert read_inter(path).matrix.nnz == 3
    bad = _write(tmp_path, "bad.inter", text + "u2\tC\t5\n")
    with pytest.raises(ValueError, match=r"bad.inter, line 6: expected 4"):
        read_inter(bad)


def test_read_csv(tmp_path):
    path = _write(tmp_path, "r.csv", "uid,iid,score,t\na,x,1,5\nb,y,5,6\nb,x,4,7\n")
    inter = read_csv(path, user_col="uid", item_col="iid", rating_col="score", threshold=4, time_col="t")
    assert inter.matrix.nnz == 2 and inter.n_users == 2 and inter.n_items == 2
    with pytest.raises(ValueError, match="column 'user'"):
        read_csv(path)
    bad = _write(tmp_path, "bad.csv", "user,item,rating\na,x,1\nb,y,zz\n")
    with pytest.raises(ValueError, match=r"bad.csv, line 3: rating"):
        read_csv(bad, rating_col="rating", threshold=3)


# ---------------------------------------------------------------- filtering, loading

def _brute_kcore(dense, min_user, min_item):
    dense = dense.copy()
    users, items = np.arange(dense.shape[0]), np.arange(dense.shape[1])
    while True:
        before = dense.shape
        keep_u = dense.sum(1) >= min_user
        dense, users = dense[keep_u], users[keep_u]
        keep_i = dense.sum(0) >= min_item
        dense, items = dense[:, keep_i], items[keep_i]
        if dense.shape == before:
            return dense, users, items


@pytest.mark.parametrize("seed", range(5))
def test_filter_min_interactions_is_a_k_core(seed, caplog):
    rng = np.random.default_rng(seed)
    dense = (rng.random((60, 40)) < 0.12).astype(np.float32)
    inter = Interactions(sp.csr_matrix(dense), name="toy")
    with caplog.at_level(logging.INFO, logger="rankguard.recsys.data"):
        out = filter_min_interactions(inter, min_user=3, min_item=3)
    want, users, items = _brute_kcore(dense, 3, 3)
    np.testing.assert_array_equal(out.matrix.toarray(), want)
    np.testing.assert_array_equal(out.user_ids, users)
    np.testing.assert_array_equal(out.item_ids, items)
    assert "toy: kept" in caplog.text
    only_users = filter_min_interactions(inter, min_user=3)
    assert only_users.n_items == 40
    np.testing.assert_array_equal(only_users.matrix.toarray(), dense[dense.sum(1) >= 3])


def test_load_dataset_unknown_name_lists_known(monkeypatch, tmp_path):
    monkeypatch.setenv("RANKGUARD_DATA", str(tmp_path))
    with pytest.raises(KeyError, match="recommendation dataset name.*citeulike-t.*ml-100k") as exc:
        load_dataset("no-such-set")
    assert str(tmp_path) in str(exc.value) and "mnist" not in str(exc.value)


def test_load_dataset_by_path_drops_empty_users(tmp_path, caplog):
    path = _write(tmp_path, "users.dat", "5 1 2 3 4 5\n0\n2 1 2\n6 0 1 2 3 4 5\n")
    with caplog.at_level(logging.INFO, logger="rankguard.recsys.data"):
        inter = load_dataset(path, min_interactions=5)
    assert inter.user_ids.tolist() == [0, 3] and "kept 2 of 4 users" in caplog.text
    assert load_dataset(path, min_interactions=0).n_users == 3  # the empty user always goes


def test_load_fixed_split_folder(tmp_path):
    for part, rows, cols in (("train", [0, 1], [0, 1]), ("val", [0], [2]), ("test", [1], [2])):
        np.savez(tmp_path / f"{part}.npz", row=np.array(rows), col=np.array(cols), data=np.ones(len(rows)),
                 shape=np.array([2, 3]), format=np.array(b"coo"))
    split = load_dataset(tmp_path)
    assert split.n_users == 2 and split.n_items == 3
    assert (split.train.nnz, split.val.nnz, split.test.nnz) == (2, 1, 1)
    np.savez(tmp_path / "test.npz", row=np.array([0]), col=np.array([0]), data=np.ones(1), shape=np.array([2, 3]))
    with pytest.raises(ValueError, match="train and test share 1"):
        load_fixed_split(tmp_path)


# ---------------------------------------------------------------- splits

def _random_inter(seed, n_users=200, n_items=80, with_times=False):
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < rng.uniform(0.0, 0.4, size=(n_users, 1))
    m = sp.csr_matrix(dense.astype(np.float32))
    ts = None
    if with_times:
        ts = m.copy().astype(np.float64)
        ts.data = rng.integers(1, 30, size=m.nnz).astype(np.float64)  # ties in time
    return Interactions(m, timestamps=ts)


def _check_partition(inter, split):
    union = split.train + split.val + split.test
    assert (union != inter.matrix).nnz == 0  # the parts cover every pair ...
    assert union.max() <= 1  # ... exactly once


@pytest.mark.parametrize("ratios", [(3, 1, 1), (0.8, 0.1, 0.1), (1, 1, 1)])
def test_ratio_split_sizes_follow_floor_rule(ratios):
    inter = _random_inter(0)
    split = ratio_split(inter, ratios, seed=5)
    _check_partition(inter, split)
    total = sum(ratios)
    for u in range(inter.n_users):
        n = inter.matrix[u].nnz
        n_train = int(np.floor(n * ratios[0] / total + 1e-9))
        n_val = int(np.floor(n * ratios[1] / total + 1e-9))
        assert (split.train[u].nnz, split.val[u].nnz, split.test[u].nnz) == (n_train, n_val, n - n_train - n_val)
    again = ratio_split(inter, ratios, seed=5)
    assert (again.test != split.test).nnz == 0
    assert (ratio_split(inter, ratios, seed=6).test != split.test).nnz > 0


def test_leave_one_out_takes_latest_by_time():
    inter = _random_inter(1, with_times=True)
    split = leave_one_out(inter, seed=0)
    _check_partition(inter, split)
    for u in range(inter.n_users):
        times = dict(zip(inter.matrix[u].indices, inter.timestamps[u].data))
        n = len(times)
        assert split.test[u].nnz == min(n, 1) and split.val[u].nnz == (1 if n >= 2 else 0)
        if n >= 2:
            t_test = times[split.test[u].indices[0]]
            t_val = times[split.val[u].indices[0]]
            assert t_test == max(times.values()) and t_val <= t_test
            assert all(times[i] <= t_val for i in split.train[u].indices)
    random_split = leave_one_out(Interactions(inter.matrix), seed=0)  # no times: random order
    _check_partition(inter, random_split)


def test_temporal_split_orders_by_time():
    inter = _random_inter(2, with_times=True)
    split = temporal_split(inter, (3, 1, 1))
    _check_partition(inter, split)
    for u in range(inter.n_users):
        times = dict(zip(inter.matrix[u].indices, inter.timestamps[u].data))
        tr = [times[i] for i in split.train[u].indices]
        va = [times[i] for i in split.val[u].indices]
        te = [times[i] for i in split.test[u].indices]
        if tr and va:
            assert max(tr) <= min(va)
        if va and te:
            assert max(va) <= min(te)
        n = len(times)
        assert len(tr) == n * 3 // 5 and len(va) == n // 5
    with pytest.raises(ValueError, match="no timestamps"):
        temporal_split(Interactions(inter.matrix))


# ---------------------------------------------------------------- real data

def _count_raw_udata(path, threshold):
    positives, users, items = set(), set(), set()
    with open(path) as fh:
        for line in fh:
            u, i, r, _ = line.split("\t")
            users.add(u)
            items.add(i)
            if float(r) >= threshold:
                positives.add((u, i))
    return len(users), len(items), len(positives)


def test_ml100k_udata_counts():
    folder = require_dataset("ml-100k")
    inter = read_movielens(folder / "u.data", threshold=4.0)
    n_users, n_items, n_pos = _count_raw_udata(folder / "u.data", 4.0)
    assert inter.matrix.shape == (n_users, n_items) == (943, 1682)
    assert inter.matrix.nnz == n_pos


def test_ml100k_libcml_users_dat_and_fixed_split():
    folder = require_dataset("ml-100k-libcml")
    inter = load_dataset(folder / "users.dat", min_interactions=5)
    assert inter.n_users == 938 and inter.matrix.nnz == 55361
    split = load_dataset("ml-100k-libcml")
    assert (split.train.nnz, split.val.nnz, split.test.nnz) == (32844, 10696, 11821)
    # the fixed split partitions exactly the >= 5 users' positives, rows in file order
    union = split.train + split.val + split.test
    assert union.shape == inter.matrix.shape and (union != inter.matrix).nnz == 0
    # and our ratio_split reproduces the authors' per-user part sizes
    ours = ratio_split(inter, (3, 1, 1))
    for a, b in ((ours.train, split.train), (ours.val, split.val), (ours.test, split.test)):
        np.testing.assert_array_equal(np.diff(a.indptr), np.diff(b.indptr))


def test_ml1m_users_and_split():
    require_dataset("ml-1m")
    inter = load_dataset("ml-1m")
    assert inter.n_users == 6034 and inter.matrix.nnz == 575271 and inter.n_items == 3953
    assert "dropped 4 of 6038 users with fewer than 5 positives" in inter.notes
    split = ratio_split(inter)
    _check_partition(inter, split)
    assert split.notes[:-1] == inter.notes


def _ratio_split_loop(inter, ratios, seed):
    """Reference: the same random keys, but each user's list sorted and cut in a Python loop."""
    keys = np.random.default_rng(seed).random(inter.matrix.nnz)
    total = sum(Fraction(r) for r in ratios)
    parts = {0: [], 1: [], 2: []}
    m = inter.matrix
    for u in range(m.shape[0]):
        lo, hi = m.indptr[u], m.indptr[u + 1]
        ordered = [int(m.indices[e]) for e in sorted(range(lo, hi), key=lambda e: keys[e])]
        n = len(ordered)
        n_train = int(n * Fraction(ratios[0]) / total)
        n_val = int(n * Fraction(ratios[1]) / total)
        for pos, item in enumerate(ordered):
            parts[0 if pos < n_train else 1 if pos < n_train + n_val else 2].append((u, item))
    return [sorted(parts[p]) for p in (0, 1, 2)]


@pytest.mark.parametrize("seed, ratios", [(0, (3, 1, 1)), (1, (8, 1, 1)), (2, (1, 1, 1))])
def test_ratio_split_vectorised_equals_a_per_user_loop(seed, ratios):
    inter = _random_inter(seed, n_users=40, n_items=25)
    split = ratio_split(inter, ratios, seed=seed)
    want = _ratio_split_loop(inter, ratios, seed)
    got = [sorted(zip(*(a.tolist() for a in part.nonzero()))) for part in (split.train, split.val, split.test)]
    assert got == want


# ---------------------------------------------------------------- data faults

def _save_coo(path, rows, cols, shape):
    np.savez(path, row=np.array(rows), col=np.array(cols), data=np.ones(len(rows)), shape=np.array(shape))


def test_partial_fixed_split_is_refused_naming_the_missing_file(tmp_path):
    _write(tmp_path, "users.dat", "5 1 2 3 4 5\n5 1 2 3 4 5\n")
    _save_coo(tmp_path / "val.npz", [0], [2], [2, 6])
    _save_coo(tmp_path / "test.npz", [1], [2], [2, 6])
    with pytest.raises(FileNotFoundError, match=r"train\.npz is missing \(found val\.npz, test\.npz\)"):
        load_dataset(tmp_path)  # used to fall back to users.dat and a fresh random split
    with pytest.raises(FileNotFoundError, match="train.npz is missing"):
        load_fixed_split(tmp_path)


def test_sparse_item_ids_in_users_dat_are_remapped(tmp_path):
    path = _write(tmp_path, "users.dat", "3 1 2000000000 7\n2 7 2000000000\n")
    inter = read_users_dat(path)
    assert inter.matrix.shape == (2, 3)  # not (2, 2e9 + 1)
    assert inter.item_ids.tolist() == [1, 7, 2000000000]
    assert inter.matrix[0].indices.tolist() == [0, 1, 2] and inter.matrix[1].indices.tolist() == [1, 2]
    assert any("remapped 3 distinct item ids (largest 2000000000)" in n for n in inter.notes)
    # the raw ids survive filtering
    assert filter_min_interactions(inter, min_user=3).item_ids.tolist() == [1, 7, 2000000000]


def test_dense_enough_ids_keep_the_file_id_space(tmp_path):
    path = _write(tmp_path, "users.dat", "2 0 1500\n")  # 1501 <= 10 * 2 + 1000 fails -> remapped
    assert read_users_dat(path).item_ids.tolist() == [0, 1500]
    path = _write(tmp_path, "users.dat", "2 0 1000\n")  # 1001 <= 1020: kept as given
    inter = read_users_dat(path)
    assert inter.matrix.shape == (1, 1001) and inter.item_ids is None and not inter.notes


def test_sparse_ids_in_u_data_are_remapped(tmp_path):
    path = _write(tmp_path, "u.data", "1\t3000000000\t5\t1\n4000000000\t2\t5\t2\n1\t2\t1\t3\n")
    inter = read_movielens(path)
    assert inter.matrix.shape == (2, 2)
    assert inter.user_ids.tolist() == [1, 4000000000] and inter.item_ids.tolist() == [2, 3000000000]
    assert sorted(zip(*inter.matrix.nonzero())) == [(0, 1), (1, 0)]
    assert sum("remapped" in n for n in inter.notes) == 2


@pytest.mark.parametrize("reader, name", [(read_users_dat, "users.dat"), (read_movielens, "u.data"),
                                          (read_inter, "x.inter"), (read_csv, "x.csv")])
def test_binary_file_raises_naming_the_file_and_line(tmp_path, reader, name):
    path = tmp_path / name
    path.write_bytes(b"3 1 2 3\n" + b"PK\x03\x04\x14\x00\x08\x00\x89\xfe\xff")
    with pytest.raises(ValueError, match="not a UTF-8 text file") as info:
        reader(path)
    assert f"{path}, line 2" in str(info.value)


def test_npz_read_as_users_dat_names_the_file(tmp_path):
    _save_coo(tmp_path / "train.npz", [0], [1], [1, 2])
    path = tmp_path / "users.dat"
    path.write_bytes((tmp_path / "train.npz").read_bytes())
    with pytest.raises(ValueError, match=r"users\.dat, line \d+: not a UTF-8 text file"):
        load_dataset(path)


def test_notes_report_duplicates_and_dropped_users(tmp_path):
    path = _write(tmp_path, "users.dat", "6 1 2 2 3 4 5\n2 1 1\n0\n")
    raw = read_users_dat(path)
    assert raw.notes == [f"merged 2 duplicate (user, item) pairs in {path}"]
    inter = load_dataset(path, min_interactions=5)
    assert inter.notes == raw.notes + ["dropped 2 of 3 users with fewer than 5 positives"]
    assert raw.notes == [f"merged 2 duplicate (user, item) pairs in {path}"]  # the input is not modified
    assert filter_min_interactions(raw, min_user=1).notes[-1] == "dropped 1 of 3 users with no positives"
    assert filter_min_interactions(raw, min_user=0).notes == raw.notes  # nothing dropped, nothing said


def test_every_split_carries_the_notes_and_adds_one():
    inter = _random_inter(3, n_users=30, n_items=20, with_times=True)
    inter.notes = ["dropped 5 of 943 users with fewer than 5 positives"]
    for split in (ratio_split(inter, (3, 1, 1), seed=7), leave_one_out(inter, seed=7),
                  temporal_split(inter, (3, 1, 1))):
        assert split.notes[0] == inter.notes[0] and len(split.notes) == 2
        assert f"{split.train.nnz} / {split.val.nnz} / {split.test.nnz}" in split.notes[1]
        assert split.notes is not inter.notes
    assert "3:1:1 in a random order (seed 7)" in ratio_split(inter, (3, 1, 1), seed=7).notes[-1]


def test_notes_default_empty_and_fixed_split_notes(tmp_path):
    m = sp.csr_matrix(np.eye(2, dtype=np.float32))
    assert Interactions(m).notes == [] and Split(m, m, m).notes == []
    assert Interactions(m).notes is not Interactions(m).notes
    for part, rows, cols in (("train", [0, 0], [0, 0]), ("val", [0], [2]), ("test", [1], [2])):
        _save_coo(tmp_path / f"{part}.npz", rows, cols, [2, 3])
    split = load_fixed_split(tmp_path)
    assert any("merged 1 duplicate" in n and "train.npz" in n for n in split.notes)
    assert split.notes[-1].endswith("1 / 1 / 1 train / validation / test pairs")
    assert build_interactions(np.array([0]), np.array([1]), (1, 2)).notes == []


def test_load_dataset_by_name_goes_through_the_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("RANKGUARD_DATA", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "ml-1m").mkdir()
    _write(tmp_path / "ml-1m", "users.dat", "5 1 2 3 4 5\n1 3\n")
    with pytest.raises(ChecksumMismatchError, match=r"dataset 'ml-1m': users\.dat has sha256"):
        load_dataset("ml-1m")  # not the registered file
    inter = load_dataset("ml-1m", verify=False)
    assert inter.name == "ml-1m" and inter.user_ids.tolist() == [1]  # one-based users, from the registry entry
    with pytest.raises(KeyError, match="not interaction data"):
        load_dataset("digits")
