"""Hinge subgradients at ties, against an exact brute force that states the convention on its own.

The documented convention (rankguard.functional.pairwise): a pair with t = m − (p − n) == 0 has value 0
and gradient 0, i.e. d/dt max(0, t) = [t > 0]. The reference below enumerates every pair in exact
rational arithmetic (``fractions.Fraction``), so whether t == 0 is decided without rounding; scores are
quarters and margins dyadic, so the float engine sees the same ties. No torch autograd, no shared helper.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from rankguard.functional import auc_loss, pairwise_loss, pairwise_loss_masked, pairwise_row_sums, sfcml_loss
from rankguard.losses import AUCLoss

MARGINS = [0.0, 0.5, 1.0]
RTOL = 1e-12


def ell_and_slope(t: Fraction, surrogate: str) -> tuple[Fraction, Fraction]:
    """ℓ(t) and the chosen (sub)derivative: hinge [t > 0] (0 at the kink), squared hinge 2·max(0, t)."""
    active = t > 0
    if surrogate == "hinge":
        return (t if active else Fraction(0)), Fraction(1 if active else 0)
    return (t * t if active else Fraction(0)), (2 * t if active else Fraction(0))


def brute_force(x: list[float], pairs: list[tuple[int, int, Fraction]], margin: float, surrogate: str):
    """L = Σ c·ℓ(m − (x_i − x_j)) over (i, j, c) in ``pairs``; returns (L, dL/dx, per-pair ℓ) exactly."""
    xs = [Fraction(v) for v in x]
    m = Fraction(margin)
    total, grad, values = Fraction(0), [Fraction(0)] * len(x), []
    for i, j, c in pairs:
        value, slope = ell_and_slope(m - (xs[i] - xs[j]), surrogate)
        total += c * value
        grad[i] -= c * slope
        grad[j] += c * slope
        values.append(value)
    return total, grad, values


def quarters(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randint(-8, 9, shape, generator=gen).to(torch.float64) / 4


def assert_close(got: torch.Tensor, want) -> None:
    want = torch.tensor([float(v) for v in want], dtype=torch.float64).reshape(got.shape)
    scale = float(want.abs().max()) if want.numel() else 0.0
    assert float((got.detach() - want).abs().max()) <= RTOL * max(scale, 1.0), (got, want)


@pytest.mark.parametrize("surrogate", ["hinge", "squared_hinge"])
@pytest.mark.parametrize("margin", MARGINS)
def test_pairwise_loss_and_row_sums(surrogate, margin):
    gen = torch.Generator().manual_seed(int(4 * margin) + 10 * (surrogate == "hinge"))
    pos, neg = quarters(gen, 40), quarters(gen, 35)
    w = torch.randint(1, 5, (40,), generator=gen).to(torch.float64) / 2
    n_pos = pos.shape[0]
    pairs = [(i, n_pos + j, Fraction(float(w[i]))) for i in range(n_pos) for j in range(neg.shape[0])]
    total, grad, values = brute_force(pos.tolist() + neg.tolist(), pairs, margin, surrogate)
    assert sum(float(margin - (pos[i // 35] - neg[i % 35])) == 0 for i in range(len(values))) > 10  # pairs at t = 0
    p, n, wt = (t.clone().requires_grad_() for t in (pos, neg, w))
    got = pairwise_loss(p, n, surrogate, margin, wt, reduction="sum")
    got.backward()
    assert_close(got, [total])
    assert_close(p.grad, grad[:n_pos])
    assert_close(n.grad, grad[n_pos:])
    assert_close(wt.grad, [sum(values[i * 35:(i + 1) * 35]) for i in range(n_pos)])  # ∂/∂w_i = Σ_j ℓ_ij
    # row sums under an upstream weighting g_i: the same pairs with coefficient g_i
    g = torch.randint(-3, 4, (n_pos,), generator=gen).to(torch.float64)
    pairs = [(i, n_pos + j, Fraction(float(g[i]))) for i in range(n_pos) for j in range(neg.shape[0])]
    _, grad, _ = brute_force(pos.tolist() + neg.tolist(), pairs, margin, surrogate)
    p, n = pos.clone().requires_grad_(), neg.clone().requires_grad_()
    (pairwise_row_sums(p, n, surrogate, margin) * g).sum().backward()
    assert_close(p.grad, grad[:n_pos])
    assert_close(n.grad, grad[n_pos:])


def masked_pairs(pos_mask: torch.Tensor, neg_mask: torch.Tensor, row_weight) -> list[tuple[int, int, Fraction]]:
    """Pairs of flat indices of a [B, M] block; row b's pairs carry row_weight(b) / (|P_b|·|N_b|)."""
    B, M = pos_mask.shape
    pairs = []
    for b in range(B):
        P = [k for k in range(M) if pos_mask[b, k]]
        N = [k for k in range(M) if neg_mask[b, k]]
        for i in P:
            for j in N:
                pairs.append((b * M + i, b * M + j, Fraction(row_weight(b)) / (len(P) * len(N))))
    return pairs


@pytest.mark.parametrize("surrogate", ["hinge", "squared_hinge"])
@pytest.mark.parametrize("margin", MARGINS)
def test_masked_and_sfcml(surrogate, margin):
    gen = torch.Generator().manual_seed(100 + int(4 * margin))
    B, M = 6, 17
    scores = quarters(gen, B, M)
    pos_mask = torch.rand(B, M, generator=gen) < 0.3
    pos_mask[0] = False  # a row without pairs
    neg_mask = ~pos_mask & (torch.rand(B, M, generator=gen) < 0.8)
    c = torch.randint(-3, 4, (B,), generator=gen).to(torch.float64)
    _, grad, _ = brute_force(scores.flatten().tolist(), masked_pairs(pos_mask, neg_mask, lambda b: float(c[b])),
                             margin, surrogate)
    s = scores.clone().requires_grad_()
    (pairwise_loss_masked(s, pos_mask, neg_mask, surrogate, margin, "none") * c).sum().backward()
    assert_close(s.grad, grad)
    # sfcml_loss, reduction "mean": the mean of L_b over rows with pairs, negatives = every other item
    rows_with_pairs = sum(1 for b in range(B) if pos_mask[b].any() and (~pos_mask[b]).any())
    total, grad, _ = brute_force(scores.flatten().tolist(),
                                 masked_pairs(pos_mask, ~pos_mask, lambda b: Fraction(1, rows_with_pairs)),
                                 margin, surrogate)
    s = scores.clone().requires_grad_()
    got = sfcml_loss(s, pos_mask, margin=margin, surrogate=surrogate)
    got.backward()
    assert_close(got, [total])
    assert_close(s.grad, grad)


@pytest.mark.parametrize("surrogate", ["hinge", "squared_hinge"])
def test_auc_loss_on_a_labelled_batch(surrogate):
    gen = torch.Generator().manual_seed(3)
    scores = quarters(gen, 60)
    y = torch.rand(60, generator=gen) < 0.4
    P, N = [k for k in range(60) if y[k]], [k for k in range(60) if not y[k]]
    total, grad, _ = brute_force(scores.tolist(), [(i, j, Fraction(1, len(P) * len(N))) for i in P for j in N],
                                 1.0, surrogate)
    for loss_fn in (lambda s: auc_loss(s, y, surrogate, 1.0), lambda s: AUCLoss(surrogate, 1.0)(s, y)):
        s = scores.clone().requires_grad_()
        got = loss_fn(s)
        got.backward()
        assert_close(got, [total])
        assert_close(s.grad, grad)
