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
    with pytest.raises(ValueError, match="reduction"):
        AUCLoss(reduction="none")
