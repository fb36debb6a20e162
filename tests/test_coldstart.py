"""Cold start: side features, cold splits (no leak), DropoutNet reproduction, CLI contract."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from rankguard.data.features import SideFeatures, read_feature_table
from rankguard.recsys.coldstart import cold_split, parse_cold_start
from rankguard.recsys.data import Interactions
from tests.conftest import require_dataset


def _toy(n_users=40, n_items=60, p=0.25, seed=0) -> Interactions:
    rng = np.random.default_rng(seed)
    return Interactions(sp.csr_matrix((rng.random((n_users, n_items)) < p).astype(np.float32)))


def test_parse_cold_start_rejects_bad_text():
    assert parse_cold_start("users:0.2") == {"users": 0.2}
    for bad in ("items", "items:1.5", "songs:0.2", "items:0.1,items:0.2"):
        with pytest.raises(ValueError, match="--cold-start"):
            parse_cold_start(bad)


@pytest.mark.parametrize("items,users", [(0.2, 0.0), (0.0, 0.25), (0.2, 0.2)])
def test_no_interaction_of_a_cold_entity_reaches_training(items, users):
    s = cold_split(_toy(), items=items, users=users, seed=3)
    ci, cu = s.cold_mask("items"), s.cold_mask("users")
    assert ci.sum() == round(items * 60) and cu.sum() == round(users * 40)
    for g in (s.cold_items, s.cold_users):   # disjoint validation / test groups
        assert not set(g["val"]) & set(g["test"])
    for part in (s.train, s.val, s.test):    # warm train, validation-selection and warm test
        part = sp.csr_matrix(part)
        assert part[:, ci].nnz == 0 and part[cu].nnz == 0
    for kind in s.kinds:
        for stage in ("val", "test"):
            t = s.targets(kind, stage)
            assert t.multiply(s.train).nnz == 0 and t.nnz > 0
    # every interaction ends up in exactly one place (or is a cold x cold pair)
    total = s.train.nnz + s.val.nnz + s.test.nnz + sum(s.targets(k, st).nnz for k in s.kinds for st in ("val", "test"))
    assert total == s.positives.nnz - s.positives[cu][:, ci].nnz
    # the same seed gives the same split
    again = cold_split(_toy(), items=items, users=users, seed=3)
    assert all(np.array_equal(s.cold_items[k], again.cold_items[k]) for k in ("val", "test"))


def test_feature_table_reader(tmp_path):
    p = tmp_path / "users.tsv"
    p.write_text("uid\tage\tjob\n7\t30\tcook\n3\t\tpilot\n")
    f = read_feature_table(p, id_col="uid")
    assert f.names == ["age", "job=cook", "job=pilot"] and f.ids.tolist() == [7, 3]
    assert f.align([3, 9]).tolist() == [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    with pytest.raises(ValueError, match="no id column"):
        read_feature_table(p)
    with pytest.raises(ValueError, match="ids repeat"):
        SideFeatures(np.zeros((2, 1)), np.array([1, 1]), ["x"])


def test_ml100k_side_features():
    require_dataset("ml-100k")
    from rankguard.data import load

    items, users = load("ml-100k-items"), load("ml-100k-users")
    assert items.values.shape == (1682, 19 + 9) and users.values.shape == (943, 7 + 2 + 21)
    assert items.names[1] == "genre_Action" and users.names[-1] == "occupation_writer"
    # one year bin (or the unknown flag) per item; one age, gender, occupation per user
    assert np.all(items.values[:, 19:].sum(1) == 1) and np.all(users.values.sum(1) == 3)
    assert items.values[0, :19].tolist().count(1.0) == 3   # Toy Story: Animation, Children's, Comedy


def test_ml100k_cold_split_aligns_features():
    require_dataset("ml-100k")
    from rankguard.recsys.coldstart import load_cold_split

    s = load_cold_split("ml-100k", "items:0.2", seed=0)
    assert s.item_features.shape == (s.n_items, 28) and s.user_features.shape == (s.n_users, 30)
    assert s.kinds == ("items",) and s.train[:, s.cold_mask("items")].nnz == 0
