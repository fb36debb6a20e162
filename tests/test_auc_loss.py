"""AUCLoss: equals the dense all-pairs formula on labelled batches; validates labels."""

from __future__ import annotations

import pytest
import torch

from rankguard.functional import SURROGATES
from rankguard.losses import AUCLoss
from reference_pairwise import pairwise_loss_dense


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("label_kind", ["01", "pm1", "bool"])
def test_matches_dense(surrogate, label_kind):
    gen = torch.Generator().manual_seed(17)
    for n, margin, reduction in [(2, 1.0, "mean"), (50, 0.0, "sum"), (301, 0.7, "mean")]:
        scores = torch.round(torch.randn(n, generator=gen, dtype=torch.float64) * 8) / 4
        y = torch.rand(n, generator=gen) < 0.3
        y[0], y[1] = True, False
        labels = {"01": y.long(), "pm1": y.long() * 2 - 1, "bool": y}[label_kind]
        s = scores.clone().requires_grad_()
        got = AUCLoss(surrogate, margin, reduction)(s, labels)
        (g,) = torch.autograd.grad(got, s)
        s_ref = scores.clone().requires_grad_()
        ref = pairwise_loss_dense(s_ref[y], s_ref[~y], surrogate, margin, reduction=reduction)
        (r,) = torch.autograd.grad(ref, s_ref)
        assert abs(got.item() - ref.item()) <= 1e-10 * max(abs(ref.item()), 1e-300)
        assert float((g - r).norm()) <= 1e-10 * float(r.norm())


def test_defaults_and_hand_example():
    loss = AUCLoss()
    assert (loss.surrogate, loss.margin, loss.reduction) == ("squared_hinge", 1.0, "mean")
    # scores [2, 0.5, 2], labels [1, 0, 0]: t = 1 − (2 − 0.5) = −0.5 → 0, t = 1 − 0 = 1 → 1; mean 1/2.
    got = loss(torch.tensor([2.0, 0.5, 2.0]), torch.tensor([1, 0, 0]))
    assert got.item() == 0.5


def test_errors():
    loss = AUCLoss()
    s = torch.randn(4)
    with pytest.raises(ValueError, match="labels.*no positive"):
        loss(s, torch.zeros(4))
    with pytest.raises(ValueError, match="labels.*no negative"):
        loss(s, torch.ones(4))
    with pytest.raises(ValueError, match="labels"):
        loss(s, torch.tensor([0, 1, 2, 1]))
    with pytest.raises(ValueError, match="labels"):
        loss(s, torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="scores"):
        loss(torch.tensor([0.0, float("nan")]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="surrogate"):
        AUCLoss(surrogate="logistic")
    with pytest.raises(ValueError, match="`reduction`"):
        AUCLoss(reduction="max")


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_reduction_none_per_positive_means_in_batch_order(surrogate):
    gen = torch.Generator().manual_seed(5)
    scores = torch.round(torch.randn(40, generator=gen, dtype=torch.float64) * 8) / 4
    y = torch.rand(40, generator=gen) < 0.4
    got = AUCLoss(surrogate, 0.5, "none")(scores, y)
    ell = {"squared": lambda t: t * t, "squared_hinge": lambda t: torch.relu(t) ** 2, "hinge": torch.relu}[surrogate]
    ref = torch.stack([ell(0.5 - (scores[i] - scores[~y])).mean() for i in range(40) if y[i]])
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-300)
    torch.testing.assert_close(got.mean(), AUCLoss(surrogate, 0.5)(scores, y), rtol=1e-12, atol=1e-300)


def test_overflow_names_scores():
    with pytest.raises(ValueError, match="`scores`: the loss overflows float32"):
        AUCLoss("squared")(torch.tensor([3e19, -1.0, 0.0]), torch.tensor([1, 0, 0]))
    assert torch.isfinite(AUCLoss("squared")(torch.tensor([3e19, -1.0, 0.0], dtype=torch.float64),
                                             torch.tensor([1, 0, 0])))
