"""LDR-KL / ALDR-KL and the multi-class baselines against their definitions (REFERENCES.md §7)."""

from __future__ import annotations

import io
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import minimize

from rankguard import functional as RF
from rankguard.functional.ldr import ldr_scores
from rankguard.losses import (ALDRKLLoss, CrossEntropyLoss, FocalLoss, GCELoss, LabelSmoothingLoss, LDRKLLoss,
                              MAELoss, SCELoss)


def batch(b=6, k=4, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, k, generator=g, dtype=torch.float64) * scale,
            torch.randint(0, k, (b,), generator=g))


def margins_np(f: np.ndarray, y: int, c: float) -> np.ndarray:
    ell = f - f[y] + c
    ell[y] = 0.0
    return ell


def dro_objective(p: np.ndarray, ell: np.ndarray, lam: float) -> float:
    """Σ p_k ℓ_k − λ KL(p ‖ uniform), written out independently of the code under test."""
    k = len(p)
    p = np.clip(p, 1e-300, None)
    return float(p @ ell - lam * np.sum(p * np.log(p * k)))


@pytest.mark.parametrize("transform", [None, "softplus"])
@pytest.mark.parametrize("lam,c", [(1.0, 0.0), (0.5, 0.1), (3.0, 1.0)])
def test_ldr_kl_equals_max_over_simplex(transform, lam, c):
    z, y = batch(5, 4, seed=1)
    got = RF.ldr_kl_loss(z, y, margin=c, lam=lam, transform=transform, reduction="none").numpy()
    f = ldr_scores(z, transform).numpy()
    for i in range(5):
        ell = margins_np(f[i], int(y[i]), c)
        res = minimize(lambda p: -dro_objective(p, ell, lam), np.full(4, 0.25), method="SLSQP",
                       bounds=[(0, 1)] * 4, constraints=[{"type": "eq", "fun": lambda p: p.sum() - 1}],
                       options={"ftol": 1e-12, "maxiter": 500})
        assert res.success
        assert got[i] == pytest.approx(-res.fun, abs=1e-6)


def test_ldr_kl_k3_brute_force_grid():
    z, y = batch(3, 3, seed=2)
    lam, c = 0.7, 0.2
    got = RF.ldr_kl_loss(z, y, margin=c, lam=lam, transform=None, reduction="none").numpy()
    grid = np.linspace(0, 1, 401)
    for i in range(3):
        ell = margins_np(z[i].numpy(), int(y[i]), c)
        best = max(dro_objective(np.array([a, b, 1 - a - b]), ell, lam)
                   for a, b in itertools.product(grid, grid) if a + b <= 1)
        assert best <= got[i] + 1e-9            # the closed form is the maximum ...
        assert got[i] - best < 1e-3             # ... and the grid gets close to it


def test_ldr_kl_limits():
    z, y = batch(8, 5, seed=3)
    ce = F.cross_entropy(z, y, reduction="none") - math.log(5)
    assert torch.allclose(RF.ldr_kl_loss(z, y, 0.0, 1.0, None, "none"), ce, atol=1e-12)
    c = 0.3
    ell = z - z.gather(1, y[:, None]) + c
    ell.scatter_(1, y[:, None], 0.0)
    crammer_singer = ell.max(dim=1).values
    small = RF.ldr_kl_loss(z, y, c, 1e-4, None, "none")
    assert torch.allclose(small, crammer_singer, atol=1e-4 * math.log(5) + 1e-9)
    assert bool((small <= crammer_singer + 1e-12).all())   # λ log mean exp ≤ max
    big = RF.ldr_kl_loss(z, y, c, 1e7, None, "none")
    assert torch.allclose(big, ell.mean(dim=1), atol=1e-5)


def test_ldr_kl_reduction_and_transform():
    z, y = batch()
    per = RF.ldr_kl_loss(z, y, reduction="none")
    assert per.shape == (6,)
    assert torch.isclose(RF.ldr_kl_loss(z, y), per.mean())
    assert torch.isclose(RF.ldr_kl_loss(z, y, reduction="sum"), per.sum())
    f = ldr_scores(z, "softplus")
    assert torch.allclose(f.sum(dim=1), torch.full((6,), 4.0, dtype=torch.float64)) and bool((f >= 0).all())
    assert torch.isclose(LDRKLLoss()(z, y), per.mean())


def test_aldr_lambda_closed_form_and_bounds():
    z, y = batch(64, 6, seed=4, scale=30.0)
    lam0, alpha = 10.0, 2.0
    loss_fn = ALDRKLLoss(num_samples=100, lam0=lam0, alpha=alpha)
    idx = torch.randperm(100, generator=torch.Generator().manual_seed(0))[:64]
    for step in range(3):
        old = loss_fn.lam[idx].clone()
        loss = loss_fn(z * (step + 1), y, idx)
        f = ldr_scores(z * (step + 1), "softplus").numpy()
        for i in range(64):   # independent numpy closed form
            p = np.exp(f[i] / old[i].item() - np.max(f[i] / old[i].item()))
            p /= p.sum()
            kl = float(np.sum(p * np.log(np.clip(p * 6, 1e-300, None))))
            assert loss_fn.lam[idx[i]].item() == pytest.approx(lam0 - lam0 * kl / (alpha * math.log(6)), abs=1e-9)
        low, high = loss_fn.lam_bounds
        assert low == pytest.approx(lam0 * (1 - 1 / alpha)) and high == lam0
        assert bool(((loss_fn.lam >= low - 1e-12) & (loss_fn.lam <= high + 1e-12)).all())
        lam_b = loss_fn.lam[idx].to(z.dtype)
        expect = (RF.ldr_kl_loss(z * (step + 1), y, 0.1, lam_b, "softplus", "none")
                  - alpha * math.log(6) / (2 * lam0) * (lam_b - lam0) ** 2).mean()
        assert torch.isclose(loss, expect)
    untouched = torch.ones(100, dtype=torch.bool)
    untouched[idx] = False
    assert bool((loss_fn.lam[untouched] == lam0).all())


def test_aldr_lambda_extremes_reach_bounds():
    lam = RF.aldr_kl_lambda(torch.tensor([[0.0, 0.0, 0.0], [1e4, -1e4, -1e4]]), torch.full((2,), 1.0),
                            lam0=1.0, alpha=3.0, transform=None)
    assert lam.tolist() == pytest.approx([1.0, 1.0 * (1 - 1 / 3)])


def test_aldr_state_dict_roundtrip_frozen_and_to():
    z, y = batch(6, 4)
    a = ALDRKLLoss(num_samples=10)
    a(z, y, torch.arange(6))
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = ALDRKLLoss(num_samples=10)
    b.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(a.lam, b.lam) and "lam" in a.state_dict()
    before = b.lam.clone()
    with b.frozen():
        b(z * 3, y, torch.arange(6))
    assert torch.equal(b.lam, before) and b.update
    assert b.to(torch.float32).lam.dtype == torch.float32   # a buffer: moved / cast by .to()


def test_bad_inputs_name_the_argument():
    z, y = batch(4, 3)
    with pytest.raises(ValueError, match="`labels` must lie in \\[0, K\\)"):
        RF.ldr_kl_loss(z, torch.tensor([0, 1, 3, 0]))
    with pytest.raises(ValueError, match="`labels`"):
        RF.ce_loss(z, torch.tensor([0, -1, 2, 0]))
    with pytest.raises(TypeError, match="`labels`"):
        RF.ldr_kl_loss(z, y.double())
    bad = z.clone()
    bad[1, 2] = float("nan")
    for fn in (RF.ldr_kl_loss, RF.ce_loss, RF.gce_loss, RF.mae_loss):
        with pytest.raises(ValueError, match="`logits` contains 1 non-finite"):
            fn(bad, y)
    loss_fn = ALDRKLLoss(num_samples=4)
    with pytest.raises(ValueError, match="`index` must lie in \\[0, num_samples\\) = \\[0, 4\\)"):
        loss_fn(z, y, torch.tensor([0, 1, 2, 4]))
    with pytest.raises(ValueError, match="`index` is required"):
        loss_fn(z, y)
    with pytest.raises(ValueError, match="`labels`"):
        loss_fn(z, torch.tensor([0, 1, 2, 9]), torch.arange(4))
    assert bool((loss_fn.lam == 10.0).all())       # rejected batches change no state
    with pytest.raises(ValueError, match="`alpha` must be > 1"):
        ALDRKLLoss(num_samples=4, alpha=1.0)
    with pytest.raises(ValueError, match="`num_samples`"):
        ALDRKLLoss(num_samples=0)
    with pytest.raises(ValueError, match="`lam`"):
        LDRKLLoss(lam=0.0)


ALL_LOSSES = [LDRKLLoss(), LDRKLLoss(transform=None, lam=0.1), CrossEntropyLoss(temperature=0.5),
              LabelSmoothingLoss(), FocalLoss(), GCELoss(), SCELoss(), MAELoss()]


@pytest.mark.parametrize("loss_fn", ALL_LOSSES + [ALDRKLLoss(num_samples=4), ALDRKLLoss(num_samples=4, transform=None)],
                         ids=lambda m: type(m).__name__)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_no_nan_for_huge_logits(loss_fn, dtype):
    z = torch.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4], [0.0, 5e3, -5e3]], dtype=dtype,
                     requires_grad=True)
    loss = loss_fn(z, torch.tensor([1, 0, 2, 0]), torch.arange(4))
    loss.backward()
    assert torch.isfinite(loss) and bool(torch.isfinite(z.grad).all())


def test_baselines_match_their_formulas():
    z, y = batch(7, 5, seed=5)
    p = torch.softmax(z, 1)
    py = p.gather(1, y[:, None]).squeeze(1)
    ce = F.cross_entropy(z, y, reduction="none")
    assert torch.allclose(RF.ce_loss(z, y, 2.0, "none"), F.cross_entropy(z / 2, y, reduction="none"))
    assert torch.allclose(RF.label_smoothing_loss(z, y, 0.2, "none"),
                          F.cross_entropy(z, y, label_smoothing=0.2, reduction="none"))
    assert torch.allclose(RF.focal_loss(z, y, 0.0, "none"), ce)
    assert torch.allclose(RF.focal_loss(z, y, 2.0, "none"), -(1 - py) ** 2 * torch.log(py))
    assert torch.allclose(RF.gce_loss(z, y, 0.7, "none"), (1 - py ** 0.7) / 0.7)
    assert torch.allclose(RF.gce_loss(z, y, 1e-6, "none"), ce, atol=1e-4)
    onehot = F.one_hot(y, 5).double()
    rce = -(p * torch.log(onehot.clamp_min(math.exp(-4)))).sum(1)
    assert torch.allclose(RF.sce_loss(z, y, 0.1, 1.0, -4.0, "none"), 0.1 * ce + rce)
    assert torch.allclose(RF.mae_loss(z, y, "none"), (onehot - p).abs().sum(1))
