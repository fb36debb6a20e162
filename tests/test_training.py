"""Positive-share batches and the scorer recipe's loss contract (the engine itself: test_engine.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rankguard.training import OptimizerSpec, PositiveShareBatchSampler, ignore_index, train_scorer


def _labels(n: int, n_pos: int, seed: int) -> torch.Tensor:
    y = torch.zeros(n)
    y[torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:n_pos]] = 1
    return y


@pytest.mark.parametrize("n,n_pos,bs,k", [(100, 10, 16, 8), (50, 3, 8, 4), (37, 30, 10, 5), (9, 1, 4, 1),
                                          (12, 6, 20, 10)])
def test_sampler_batches_have_exact_shares_no_duplicates_and_cover_negatives(n, n_pos, bs, k):
    y = _labels(n, n_pos, seed=n)
    s = PositiveShareBatchSampler(y, batch_size=bs, positives_per_batch=k,
                                  generator=torch.Generator().manual_seed(1))
    want_pos, want_neg = min(k, n_pos), min(bs - k, n - n_pos)
    for _ in range(2):  # two epochs: fresh permutations each time
        batches = list(s)
        assert len(batches) == len(s) == -(-(n - n_pos) // want_neg)
        seen_pos = np.zeros(n, dtype=int)
        seen_neg = set()
        for b in batches:
            assert b.dtype == torch.long and b.numel() == want_pos + want_neg
            assert len(set(b.tolist())) == b.numel()  # no index twice in a batch
            assert int(y[b].sum()) == want_pos
            seen_neg.update(i for i in b.tolist() if y[i] == 0)
            for i in b.tolist():
                if y[i] == 1:
                    seen_pos[i] += 1
        assert seen_neg == set(torch.nonzero(y == 0).flatten().tolist())
        counts = seen_pos[y.numpy() == 1]
        assert counts.max() - counts.min() <= 1  # positives share the epoch evenly


def test_sampler_is_reproducible_from_its_generator():
    y = _labels(60, 7, 0)
    a = PositiveShareBatchSampler(y, 10, 5, generator=torch.Generator().manual_seed(3)).epoch()
    b = PositiveShareBatchSampler(y, 10, 5, generator=torch.Generator().manual_seed(3)).epoch()
    c = PositiveShareBatchSampler(y, 10, 5, generator=torch.Generator().manual_seed(4)).epoch()
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("kwargs,match", [
    (dict(labels=torch.zeros(5)), "both classes"),
    (dict(labels=torch.ones(5)), "both classes"),
    (dict(labels=torch.tensor([0., 1.]), batch_size=1), "batch_size"),
    (dict(labels=torch.tensor([0., 1.]), batch_size=4, positives_per_batch=4), "positives_per_batch"),
    (dict(labels=torch.tensor([0., 2.])), "labels"),
])
def test_sampler_rejects_bad_input_naming_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PositiveShareBatchSampler(**kwargs)


def test_train_scorer_passes_row_indices_matching_labels_and_features():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(30, 4, generator=g)
    y = _labels(30, 6, 1)
    calls = []

    class Identity(nn.Module):  # score = first feature, plus a parameter so backward works
        def __init__(self):
            super().__init__()
            self.b = nn.Parameter(torch.zeros(()))

        def forward(self, x):
            return x[:, 0] + self.b

    def loss(scores, labels, index):
        assert torch.equal(labels, y[index])
        assert torch.allclose(scores, X[index, 0], atol=1e-3)
        calls.append(index.clone())
        return (scores * 0.0).sum() + 1.0

    model = Identity()
    sampler = PositiveShareBatchSampler(y, 8, 4, generator=g)
    hist = train_scorer(model, loss, X, y, optimizer=OptimizerSpec(model.parameters(), "sgd", lr=1e-30),
                        batch_sampler=sampler, epochs=3)
    assert hist == [1.0, 1.0, 1.0] and len(calls) == 3 * len(sampler)


def test_train_scorer_raises_on_non_finite_loss():
    X, y = torch.randn(10, 2), torch.tensor([1., 0.] * 5)
    m = nn.Linear(2, 1)

    def bad(scores, labels, index):
        return scores.sum() * float("nan")
    with pytest.raises(FloatingPointError, match="epoch 1, step 1: the loss became nan"):
        train_scorer(m, bad, X, y, optimizer=OptimizerSpec(m.parameters(), "sgd", lr=0.1),
                     batch_sampler=PositiveShareBatchSampler(y, 4, 2), epochs=1)


def test_train_scorer_rejects_mismatched_shapes():
    m = nn.Linear(2, 1)
    opt = OptimizerSpec(m.parameters(), "sgd", lr=0.1)
    y = torch.tensor([1., 0., 1.])
    with pytest.raises(ValueError, match="labels"):
        train_scorer(m, ignore_index(F.binary_cross_entropy_with_logits), torch.randn(4, 2), y,
                     optimizer=opt, batch_sampler=PositiveShareBatchSampler(y, 2, 1), epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        train_scorer(m, ignore_index(F.binary_cross_entropy_with_logits), torch.randn(3, 2), y,
                     optimizer=opt, batch_sampler=PositiveShareBatchSampler(y, 2, 1), epochs=0)


def test_training_with_bce_learns_a_separable_problem():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 3, generator=g)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0.8).float()
    m = nn.Linear(3, 1)
    train_scorer(m, ignore_index(F.binary_cross_entropy_with_logits), X, y,
                 optimizer=OptimizerSpec(m.parameters(), "adam", lr=0.05),
                 batch_sampler=PositiveShareBatchSampler(y, 32, 16, generator=g), epochs=20)
    with torch.no_grad():
        s = m(X)[:, 0]
    pos, neg = s[y == 1], s[y == 0]
    auc = float((pos[:, None] > neg[None, :]).float().mean())
    assert auc > 0.97
