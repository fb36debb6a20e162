"""Distribution-shifted splits (issue #11): Split.iid_test, popularity_split, Coat, the iid_test stage."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp

from conftest import require_dataset
from rankguard import data
from rankguard.recsys.data import (Interactions, Split, load_dataset, load_fixed_split, read_dense_ratings)
from rankguard.recsys.evaluator import Evaluator
from rankguard.recsys.splits import (item_popularity, mean_item_popularity, popularity_split, ratio_split,
                                     shifted_split, weighted_sample_without_replacement)

PARTS = ("train", "val", "test", "iid_test")


def _power_law(seed: int = 0, n_users: int = 300, n_items: int = 200) -> Interactions:
    """Users x items with item i liked with probability ∝ (i + 1)^-0.8: a long tail."""
    rng = np.random.default_rng(seed)
    p_item = 0.6 * (np.arange(n_items) + 1.0) ** -0.8
    dense = rng.random((n_users, n_items)) < p_item
    dense[:, 0] = True  # every user has >= 1 positive
    return Interactions(sp.csr_matrix(dense.astype(np.float32)), name="power-law")


def _assert_partition(split: Split, positives: sp.csr_matrix) -> None:
    """The four parts share one shape, are pairwise disjoint and together are exactly ``positives``."""
    for part in PARTS:
        assert getattr(split, part).shape == positives.shape, part
    for a, b in itertools.combinations(PARTS, 2):
        assert getattr(split, a).multiply(getattr(split, b)).nnz == 0, (a, b)
    union = split.train + split.val + split.test + split.iid_test
    assert union.max() <= 1 and (union != positives).nnz == 0


def _save_coo(path, rows, cols, shape=(2, 4)):
    np.savez(path, row=np.array(rows), col=np.array(cols), data=np.ones(len(rows)), shape=np.array(shape))


# ---------------------------------------------------------------- Split and fixed-split folders

def test_split_iid_test_is_optional_and_shape_checked():
    m = sp.csr_matrix(np.eye(3, dtype=np.float32))
    assert Split(m, m, m).iid_test is None and list(Split(m, m, m).parts()) == ["train", "val", "test"]
    with pytest.raises(ValueError, match="share one shape.*iid_test"):
        Split(m, m, m, iid_test=sp.csr_matrix((3, 4), dtype=np.float32))


def test_fixed_split_folder_reads_optional_test_iid(tmp_path):
    _save_coo(tmp_path / "train.npz", [0, 1], [0, 1])
    _save_coo(tmp_path / "val.npz", [0], [2])
    _save_coo(tmp_path / "test.npz", [1], [2])
    assert load_dataset(tmp_path).iid_test is None  # no test_iid.npz: fine
    _save_coo(tmp_path / "test_iid.npz", [0, 1], [3, 3])
    split = load_dataset(tmp_path)
    assert split.iid_test.nnz == 2 and split.iid_test.dtype == np.float32
    assert split.notes[-1].endswith("2 / 1 / 1 / 2 train / validation / test / in-distribution test pairs")
    _save_coo(tmp_path / "test_iid.npz", [0], [0])
    with pytest.raises(ValueError, match=r"train and iid_test share 1 pairs \(train.npz, test_iid.npz\)"):
        load_fixed_split(tmp_path)


def test_partial_fixed_split_with_test_iid_is_still_refused(tmp_path):
    _save_coo(tmp_path / "train.npz", [0], [0])
    _save_coo(tmp_path / "val.npz", [0], [1])
    _save_coo(tmp_path / "test_iid.npz", [1], [2])
    with pytest.raises(FileNotFoundError, match=r"test\.npz is missing \(found train\.npz, val\.npz, test_iid"):
        load_dataset(tmp_path)
    (tmp_path / "train.npz").unlink()
    (tmp_path / "val.npz").unlink()
    with pytest.raises(FileNotFoundError, match="train.npz, val.npz, test.npz is missing"):
        load_dataset(tmp_path)  # a lone test_iid.npz is a (very) partial split, not something else


# ---------------------------------------------------------------- weighted sampling, popularity split

def _inclusion_reference(weights: np.ndarray, size: int) -> np.ndarray:
    """P(j in sample) for successive draws ∝ weights without replacement, by enumerating every ordered draw."""
    incl = np.zeros(weights.size)
    for seq in itertools.permutations(range(weights.size), size):
        prob, left = 1.0, float(weights.sum())
        for j in seq:
            prob *= weights[j] / left
            left -= weights[j]
        incl[list(seq)] += prob
    return incl


def test_weighted_sampler_inclusion_frequencies_follow_the_weights():
    weights = np.array([8.0, 4.0, 2.0, 1.0, 0.0])
    size, n_draws = 2, 20_000
    want = _inclusion_reference(weights, size)
    rng = np.random.default_rng(0)
    counts = np.zeros(weights.size)
    for _ in range(n_draws):
        chosen = weighted_sample_without_replacement(weights, size, rng)
        assert chosen.size == size and np.unique(chosen).size == size
        counts[chosen] += 1
    freq = counts / n_draws
    # 4 sigma of a frequency over 20k draws is <= 0.014; the alternatives below are > 0.1 away
    assert np.abs(freq - want).max() < 0.02
    assert freq[4] == 0.0  # weight 0: never drawn
    assert np.abs(want - size * weights / weights.sum()).max() > 0.1  # not naive "∝ weights" inclusion
    assert np.abs(want[:4] - size / 4).max() > 0.1  # nor uniform: the bound can fail


def test_weighted_sampler_rejects_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="`weights`"):
        weighted_sample_without_replacement(np.array([1.0, -1.0]), 1, rng)
    with pytest.raises(ValueError, match=r"`size` must be in \[0, 1\]"):
        weighted_sample_without_replacement(np.array([1.0, 0.0]), 2, rng)
    assert weighted_sample_without_replacement(np.ones(3), 0, rng).size == 0


def test_popularity_split_partitions_and_shifts_to_unpopular_items():
    inter = _power_law()
    split = popularity_split(inter, seed=3)
    _assert_partition(split, inter.matrix)
    assert split.test.nnz == round(0.2 * inter.matrix.nnz)
    pop = item_popularity(inter.matrix)
    shifted, iid = mean_item_popularity(split.test, pop), mean_item_popularity(split.iid_test, pop)
    assert shifted < 0.75 * iid
    uniform = popularity_split(inter, beta=0.0, seed=3)  # beta = 0: an ordinary random test
    assert mean_item_popularity(uniform.test, pop) == pytest.approx(mean_item_popularity(uniform.iid_test, pop),
                                                                    rel=0.1)
    assert "probability ∝ popularity^-1" in split.notes[-1] and f"{shifted:.1f} (shifted test)" in split.notes[-1]


def test_popularity_split_is_deterministic_per_seed_and_differs_across_seeds():
    inter = _power_law()
    a, b, c = popularity_split(inter, seed=1), popularity_split(inter, seed=1), popularity_split(inter, seed=2)
    for part in PARTS:
        assert (getattr(a, part) != getattr(b, part)).nnz == 0, part
    assert (a.test != c.test).nnz > 0 and (a.train != c.train).nnz > 0


def test_popularity_split_rejects_bad_arguments():
    with pytest.raises(ValueError, match="`test_fraction`"):
        popularity_split(_power_law(), test_fraction=1.0)
    with pytest.raises(ValueError, match="`beta`"):
        popularity_split(_power_law(), beta=float("nan"))


def test_systematic_rounding_is_unbiased_and_floor_is_unchanged():
    inter = Interactions(sp.csr_matrix(np.ones((2000, 6), dtype=np.float32)))
    floor = ratio_split(inter, (7, 1, 2), seed=0)
    assert (floor.train.nnz, floor.val.nnz, floor.test.nnz) == (8000, 0, 4000)  # floor(4.2), floor(0.6)
    syst = ratio_split(inter, (7, 1, 2), seed=0, rounding="systematic")
    assert (floor.train + floor.val + floor.test != syst.train + syst.val + syst.test).nnz == 0
    for got, share in ((syst.train.nnz, 0.7), (syst.val.nnz, 0.1), (syst.test.nnz, 0.2)):
        assert abs(got - share * 12_000) < 4 * math.sqrt(2000 * 0.25)  # per user the error is in [-1, 1]
    with pytest.raises(ValueError, match="`rounding`"):
        ratio_split(inter, rounding="round")


def test_shifted_split_drops_pairs_already_in_distribution():
    iid = sp.csr_matrix(np.kron(np.ones((3, 1)), [1, 1, 1, 1, 0, 0]).astype(np.float32))
    shifted = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 1, 2], [0, 5, 4])), shape=(3, 6))
    split = shifted_split(Interactions(iid), shifted, seed=0)
    assert split.test.toarray()[[1, 2], [5, 4]].tolist() == [1.0, 1.0] and split.test.nnz == 2
    assert "(1 pairs also in-distribution positives dropped)" in split.notes[-1]
    _assert_partition(split, binary(iid + split.test))


def binary(m):
    out = sp.csr_matrix(m, dtype=np.float32)
    out.data[:] = 1.0
    return out


# ---------------------------------------------------------------- Coat

def test_read_dense_ratings_errors_name_file_and_line(tmp_path):
    f = tmp_path / "r.ascii"
    f.write_text("0 5 3\n4 0\n")
    with pytest.raises(ValueError, match=r"r.ascii, line 2: expected 3 ratings"):
        read_dense_ratings(f)
    f.write_text("0 5 3\n4 x 1\n")
    with pytest.raises(ValueError, match=r"r.ascii, line 2: rating must be a number, got 'x'"):
        read_dense_ratings(f)


@pytest.fixture
def fake_coat(tmp_path, monkeypatch):
    """A data directory whose coat/ holds small made-up train/test.ascii files (verify=False loads them)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "coat"
    folder.mkdir(parents=True)
    train = rng.integers(1, 6, size=(20, 30)) * (rng.random((20, 30)) < 0.5)
    test = rng.integers(1, 6, size=(20, 30)) * (rng.random((20, 30)) < 0.3)
    for name, ratings in (("train.ascii", train), ("test.ascii", test)):
        (folder / name).write_text("\n".join(" ".join(map(str, row)) for row in ratings) + "\n")
    for name in ("README.txt", "propensities.ascii"):  # registered files: present, not read
        (folder / name).write_text("")
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data.set_data_dir(None)
    return train, test


def test_coat_seed_and_threshold_come_through_load_dataset(fake_coat):
    train, test = fake_coat
    a = load_dataset("coat", verify=False)
    assert a.name == "coat" and "seed 1234" in a.notes[-1]  # the default = TrainConfig.split_seed's
    _assert_partition(a, binary(sp.csr_matrix((train >= 4) | (test >= 4))))
    want_test = (test >= 4) & ~(train >= 4)
    assert (a.test != sp.csr_matrix(want_test.astype(np.float32))).nnz == 0
    b, c = load_dataset("coat", verify=False, split_seed=1234), load_dataset("coat", verify=False, split_seed=5)
    assert (a.train != b.train).nnz == 0 and (a.train != c.train).nnz > 0 and (a.test != c.test).nnz == 0
    five = load_dataset("coat", verify=False, threshold=5)
    assert five.train.nnz + five.val.nnz + five.iid_test.nnz == int((train >= 5).sum())


def test_coat_real_data():
    require_dataset("coat")
    split = load_dataset("coat", split_seed=0)
    assert (split.n_users, split.n_items) == (290, 300)
    folder = data.dataset_path("coat")
    train = np.loadtxt(folder / "train.ascii")
    test = np.loadtxt(folder / "test.ascii")
    _assert_partition(split, binary(sp.csr_matrix((train >= 4) | (test >= 4))))
    assert split.train.nnz + split.val.nnz + split.iid_test.nnz == 1905
    assert split.test.nnz == 860 - 91 and "(91 pairs also in-distribution positives dropped)" in split.notes[-1]
    assert 150 < split.val.nnz < 250 and 300 < split.iid_test.nnz < 460  # 1905 x 0.1 and x 0.2, give or take


def test_ml100k_popshift_real_data():
    require_dataset("ml-100k")
    split = load_dataset("ml-100k-popshift", split_seed=0)
    assert (split.n_users, split.n_items) == (938, 1682)  # 5 users with < 5 positives dropped first
    total = split.train.nnz + split.val.nnz + split.test.nnz + split.iid_test.nnz
    assert total == 55_361 and split.test.nnz == round(0.2 * total)
    pop = item_popularity(split.train + split.val + split.test + split.iid_test)
    assert mean_item_popularity(split.test, pop) < 0.6 * mean_item_popularity(split.iid_test, pop)
    for info in (data.DATASETS.get("ml-100k-popshift"), data.DATASETS.get("ml-1m-popshift")):
        assert info.kind == "interactions" and not info.files and "split_seed" in info.options


def test_popshift_files_are_checked_as_the_owner_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data.set_data_dir(None)
    assert not data.available("ml-100k-popshift")  # the owner's files are missing
    folder = tmp_path / "data" / "ml-100k"
    folder.mkdir(parents=True)
    for name in data.DATASETS.get("ml-100k").files:
        (folder / name).write_text("")
    rng = np.random.default_rng(0)
    users, items = rng.integers(1, 41, 600), rng.integers(1, 61, 600)
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t5\t{t}\n" for t, (u, i) in enumerate(zip(users, items))))
    with pytest.raises(data.ChecksumMismatchError, match="dataset 'ml-100k': u.data has sha256"):
        load_dataset("ml-100k-popshift")
    split = load_dataset("ml-100k-popshift", verify=False, split_seed=3)
    assert split.name == "ml-100k-popshift" and "seed 3" in split.notes[-1]
    assert split.test.nnz == round(0.2 * (split.train + split.val + split.test + split.iid_test).nnz)
    assert load_dataset("ml-100k", verify=False, split_seed=3).matrix.nnz > 0  # plain interactions: seed unused


# ---------------------------------------------------------------- evaluator: the iid_test stage

def _dense_reference(split: Split, scores: np.ndarray, stage: str, protocol: str, k: int) -> dict[str, float]:
    """P/R/NDCG@k, user by user, from dense 0/1 arrays: rank the candidates with sorted() on (-score, item)."""
    dense = {p: (m.toarray() > 0) for p, m in split.parts().items()}
    if protocol == "standard" and stage != "val":
        masked = np.logical_or.reduce([dense[p] for p in dense if p != stage])
    else:
        masked = dense["train"]
    sums = {"P": 0.0, "R": 0.0, "NDCG": 0.0}
    n_users = 0
    for u in range(split.n_users):
        relevant = set(np.flatnonzero(dense[stage][u]).tolist())
        if not relevant or (protocol == "authors" and len(relevant) < k):
            continue
        candidates = [i for i in range(split.n_items) if not masked[u, i]]
        top = sorted(candidates, key=lambda i: (-scores[u, i], i))[:k]
        hits = [pos for pos, i in enumerate(top) if i in relevant]
        sums["P"] += len(hits) / k
        sums["R"] += len(hits) / len(relevant)
        ideal = sum(1 / math.log2(pos + 2) for pos in range(min(k, len(relevant))))
        sums["NDCG"] += sum(1 / math.log2(pos + 2) for pos in hits) / ideal
        n_users += 1
    return {m: v / n_users if n_users else math.nan for m, v in sums.items()}


def _shift_split(seed: int) -> Split:
    rng = np.random.default_rng(seed)
    dense = rng.random((25, 30)) < 0.45
    return popularity_split(Interactions(sp.csr_matrix(dense.astype(np.float32))), seed=seed)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("protocol", ["standard", "authors"])
@pytest.mark.parametrize("stage", ["val", "test", "iid_test"])
def test_iid_test_masking_matches_a_dense_brute_force(seed, protocol, stage):
    split = _shift_split(seed)
    scores = np.random.default_rng(seed + 10).integers(0, 5, size=(split.n_users, split.n_items)).astype(float)
    out = Evaluator(split, protocol=protocol, ks=(1, 3, 5), block_size=7).evaluate_scores(scores, stage)
    for k in (1, 3, 5):
        want = _dense_reference(split, scores, stage, protocol, k)
        for m in ("P", "R", "NDCG"):
            got = out[f"{m}@{k}"]
            assert (math.isnan(got) and math.isnan(want[m])) or got == pytest.approx(want[m], rel=1e-12), (m, k)


def test_without_iid_test_the_test_stage_is_unchanged():
    full = _shift_split(0)
    plain = Split(full.train, full.val, full.test)  # iid_test dropped: its items become candidates again
    scores = np.random.default_rng(1).random((full.n_users, full.n_items))
    got = Evaluator(plain, ks=(3,)).evaluate_scores(scores, "test")
    want = _dense_reference(plain, scores, "test", "standard", 3)
    assert got["R@3"] == pytest.approx(want["R"], rel=1e-12)
    assert got["R@3"] != Evaluator(full, ks=(3,)).evaluate_scores(scores, "test")["R@3"]
    with pytest.raises(ValueError, match="'iid_test' needs a split with an in-distribution test set"):
        Evaluator(plain).evaluate_scores(scores, "iid_test")
    with pytest.raises(ValueError, match="`stage` must be one of"):
        Evaluator(plain).evaluate_scores(scores, "train")


def test_evaluator_refuses_an_iid_test_that_overlaps_another_part():
    full = _shift_split(0)
    bad = Split(full.train, full.val, full.test, iid_test=binary(full.iid_test + full.test))
    with pytest.raises(ValueError, match="test and iid_test share"):
        Evaluator(bad)
