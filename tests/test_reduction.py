"""One reduction vocabulary: every functional loss and Module takes 'none' | 'mean' | 'sum' and rejects the rest
with the same message; 'mean' is the mean of 'none' (the all-pairs losses' 'none' is per-positive means)."""

from __future__ import annotations

import pytest
import torch

import rankguard._validation as validation
import rankguard.functional as F
from rankguard.losses import APLoss, AUCLoss, BPRLoss, SFCMLLoss

gen = torch.Generator().manual_seed(0)
SCORES = torch.randn(12, generator=gen, dtype=torch.float64)
LABELS = torch.tensor([1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0])
BLOCK = torch.randn(3, 8, generator=gen, dtype=torch.float64)
MASK = torch.rand(3, 8, generator=gen) < 0.4
MASK[:, 0], MASK[:, 1] = True, False
POS, NEG = torch.randn(4, generator=gen, dtype=torch.float64), torch.randn(4, 5, generator=gen, dtype=torch.float64)
U = torch.rand(4, generator=gen, dtype=torch.float64)

LOSSES = {
    "pairwise_loss": lambda r: F.pairwise_loss(SCORES[:5], SCORES[5:], reduction=r),
    "pairwise_loss_masked": lambda r: F.pairwise_loss_masked(BLOCK, MASK, reduction=r),
    "auc_loss": lambda r: F.auc_loss(SCORES, LABELS, reduction=r),
    "soap_loss": lambda r: F.soap_loss(SCORES, LABELS, U, U / 3, reduction=r)[0],
    "sfcml_loss": lambda r: F.sfcml_loss(BLOCK, MASK, reduction=r),
    "triplet_hinge_loss": lambda r: F.triplet_hinge_loss(POS, NEG, reduction=r),
    "bpr_loss": lambda r: F.bpr_loss(POS, NEG, reduction=r),
    "AUCLoss": lambda r: AUCLoss(reduction=r)(SCORES, LABELS),
    "APLoss": lambda r: APLoss(12, reduction=r).double()(SCORES, LABELS, torch.arange(12)),
    "SFCMLLoss": lambda r: SFCMLLoss(reduction=r)(BLOCK, MASK),
    "BPRLoss": lambda r: BPRLoss(reduction=r)(POS, NEG),
}


def test_one_vocabulary():
    assert validation.REDUCTIONS == ("none", "mean", "sum")
    assert F.REDUCTIONS is validation.REDUCTIONS
    from rankguard.functional.pairwise import REDUCTIONS as engine_reductions
    assert engine_reductions is validation.REDUCTIONS


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_takes_the_three_and_mean_is_the_mean_of_none(name):
    out = {r: LOSSES[name](r) for r in validation.REDUCTIONS}
    assert out["mean"].dim() == 0 and out["sum"].dim() == 0 and out["none"].dim() >= 1
    torch.testing.assert_close(out["none"].mean(), out["mean"], rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="`reduction` must be one of 'none', 'mean', 'sum'; got 'max'"):
        LOSSES[name]("max")


def test_reduce_loss_rules():
    rows = torch.tensor([3.0, 1.0, 0.0], dtype=torch.float64)
    assert F.reduce_loss(rows, "none").tolist() == [3.0, 1.0, 0.0]
    assert F.reduce_loss(rows, "none", terms=2).tolist() == [1.5, 0.5, 0.0]
    assert F.reduce_loss(rows, "sum", terms=2).item() == 4.0
    assert F.reduce_loss(rows, "mean", terms=2).item() == 4.0 / 6
    assert F.reduce_loss(rows, "mean", count=torch.tensor(2)).item() == 2.0
    assert F.reduce_loss(rows, "mean", count=torch.tensor(0)).item() == 4.0  # clamped to 1: nothing to average
