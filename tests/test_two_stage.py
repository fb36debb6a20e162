"""2stS "spreadout" stage two (DPCML's SpreadoutSampler form) against a brute-force weight formula."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy import stats

from rankguard.samplers import TwoStageSampler


def brute_weights(x: np.ndarray, d: int) -> np.ndarray:
    """w_j ∝ (1 − x²)^(1 − (d−1)/2) for x > 0, else 0 (normalised; loop over entries, test only).

    The documented formula as written, no regulariser: here x² stays well below 1, so any small
    guard the implementation adds inside the power must be invisible to the frequency test.
    """
    w = np.zeros_like(x)
    for j, xj in enumerate(x):
        if xj > 0:
            w[j] = (1.0 - xj * xj) ** (1.0 - (d - 1) / 2.0)
    return w / w.sum()


class ItemTable:
    def __init__(self, table):
        self.table = table

    def __call__(self, users, items):  # user scores are not used by the spreadout stage
        raise AssertionError("spreadout must not call the user-score function")

    def item_embeddings(self, items):
        return self.table[items]


def setup(n_users=3, n_items=8, d=4, seed=0):
    rng = np.random.default_rng(seed)
    dense = np.zeros((n_users, n_items), dtype=bool)
    dense[:, 0] = True                     # item 0: everyone's positive
    train = sp.csr_matrix(dense.astype(np.float64))
    table = torch.from_numpy(rng.normal(size=(n_items, d)))
    table = table / table.norm(dim=1, keepdim=True)
    return train, dense, table


def inner_product_table(x_to_item0, d):
    """Unit rows whose inner products with row 0 (= e_1) are ``x_to_item0``: x e_1 + √(1 − x²) e_k."""
    table = torch.zeros(len(x_to_item0) + 1, d, dtype=torch.float64)
    table[0, 0] = 1.0
    for j, x in enumerate(x_to_item0, start=1):
        table[j, 0] = x
        table[j, 1 + j % (d - 1)] = (1.0 - x * x) ** 0.5
    return table


@pytest.mark.parametrize("d", [4, 7])
def test_single_pick_frequencies_match_the_weights(d):
    """Every item is a candidate (C = n_items), so one pick is distributed exactly ∝ w over the
    items with x > 0 other than the positive; x spread over (0, 1) makes the weights distinct."""
    train, dense, _ = setup()
    x_items = [0.95, 0.8, 0.6, 0.4, 0.2, -0.3, -0.9]
    table = inner_product_table(x_items, d)
    s = TwoStageSampler(train, np.random.default_rng(1), n_candidates=8, n_negatives=1, smoothing=1.0,
                        stage_two="spreadout")
    n = 30000
    users, pos = np.full(n, 1), np.zeros(n, dtype=np.int64)
    picks = s.sample(users, pos, ItemTable(table))[:, 0]
    x = np.array([-1.0] + x_items)         # item 0 is a training positive: excluded, never kept
    w = brute_weights(x, d)
    counts = np.bincount(picks, minlength=8)
    keep = w > 0
    assert counts[0] == 0 and counts[~keep].sum() == 0 and keep.sum() == 5
    assert stats.chisquare(counts[keep], w[keep] * counts.sum()).pvalue > 1e-3


def test_without_replacement_fill_up_and_no_positives():
    train, dense, table = setup(n_users=4, n_items=12, d=3, seed=4)
    s = TwoStageSampler(train, np.random.default_rng(2), n_candidates=11, n_negatives=6, smoothing=1.0,
                        stage_two="spreadout")
    users = np.repeat(np.arange(4), 50)
    out = s.sample(users, np.zeros_like(users), ItemTable(table))
    assert out.shape == (200, 6)
    assert not dense[users[:, None], out].any()
    srt = np.sort(out, axis=1)              # distinct within a row unless a positive was re-drawn
    assert (np.diff(srt, axis=1) > 0).mean() > 0.9


def test_near_parallel_items_do_not_overflow():
    train, dense, table = setup(n_items=6, d=256, seed=5)
    table = table.clone()
    table[3] = table[0] * (1 - 1e-12)       # x ≈ 1 with d = 256: (1 − x²)^(−126.5) overflows naively
    s = TwoStageSampler(train, np.random.default_rng(0), n_candidates=6, n_negatives=2, smoothing=1.0,
                        stage_two="spreadout")
    out = s.sample(np.array([0, 1, 2]), np.zeros(3, dtype=np.int64), ItemTable(table))
    assert (out == 3).any(axis=1).all()     # the near-duplicate of the positive dominates the weights


def test_spreadout_needs_item_table_and_bad_mode_is_named():
    train, _, _ = setup()
    s = TwoStageSampler(train, np.random.default_rng(0), n_candidates=5, n_negatives=1, smoothing=1.0,
                        stage_two="spreadout")
    with pytest.raises(ValueError, match="item_embeddings"):
        s.sample(np.array([0]), np.array([0]), lambda u, i: i.double())
    with pytest.raises(ValueError, match="stage_two"):
        TwoStageSampler(train, np.random.default_rng(0), stage_two="top")
