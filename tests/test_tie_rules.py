"""Tie rules: the binary metrics keep scikit-learn's tie groups, the per-user metrics one stable order.

Without ties both families define the same numbers (AP of a row = MAP of the one-row matrix, AUC =
per-user AUC); on a tied row AP and MAP differ exactly as the docstrings say, while the two AUCs
stay equal (both count a tied pair 1/2).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rankguard.metrics import auc_per_user, average_precision, map_score, roc_auc

TOL = 1e-12


def untied_row(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct continuous scores (ties have probability 0; checked) and labels with both classes."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    scores = rng.normal(size=n)
    assert np.unique(scores).size == n
    labels = (rng.random(n) < rng.uniform(0.1, 0.9)).astype(np.int64)
    labels[rng.permutation(n)[:2]] = [1, 0]
    return scores, labels


@pytest.mark.parametrize("seed", range(200))
def test_binary_and_per_user_metrics_agree_without_ties(seed):
    scores, labels = untied_row(seed)
    row, rel = scores[None, :], labels[None, :]
    assert abs(average_precision(scores, labels) - float(map_score(row, rel)[0])) <= TOL
    assert abs(roc_auc(scores, labels) - float(auc_per_user(row, rel)[0])) <= TOL


def test_tied_example_ap_is_one_third_map_is_one_half():
    scores, labels = [0.9, 0.5, 0.5], [0, 1, 0]
    row, rel = np.array([scores]), np.array([labels])
    # tie group {0.5, 0.5} is one threshold: precision 1/3 for its positive
    assert average_precision(scores, labels) == pytest.approx(1 / 3, abs=TOL)
    # stable order: item 1 before item 2, so the positive is at position 2
    assert map_score(row, rel).tolist() == [0.5]
    # AP is order-free; MAP follows the item index inside the tie group
    assert average_precision([0.9, 0.5, 0.5], [0, 0, 1]) == pytest.approx(1 / 3, abs=TOL)
    assert map_score(row, np.array([[0, 0, 1]])).tolist() == pytest.approx([1 / 3], abs=TOL)
    # AUC: both count the tied pair 1/2, whatever the index
    for lab in ([0, 1, 0], [0, 0, 1]):
        assert roc_auc(scores, lab) == 0.25
        assert auc_per_user(row, np.array([lab])).tolist() == [0.25]


@pytest.mark.parametrize("seed", range(20))
def test_auc_agrees_on_heavily_tied_rows_whatever_the_item_order(seed):
    """Both AUCs count a tied pair 1/2, so they agree on tied rows and ignore the item order."""
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(4, 40))
    scores = rng.integers(0, 4, size=n).astype(np.float64)
    labels = (rng.random(n) < 0.4).astype(np.int64)
    labels[:2] = [1, 0]
    want = roc_auc(scores, labels)
    for perm in (np.arange(n), rng.permutation(n), np.lexsort((labels, -scores))):
        got = float(auc_per_user(scores[perm][None], labels[perm][None])[0])
        assert abs(got - want) <= TOL


def test_agreement_holds_for_torch_inputs():
    scores, labels = untied_row(7)
    t = torch.tensor(scores[None])
    assert abs(average_precision(torch.tensor(scores), labels) - map_score(t, torch.tensor(labels[None])).item()) <= TOL
