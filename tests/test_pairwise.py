"""The exact all-pairs engine vs the dense n⁺×n⁻ formula: values and gradients, ties, edge cases."""

from __future__ import annotations

import pytest
import torch

from rankguard.functional import SURROGATES, pairwise_loss, pairwise_loss_masked, pairwise_row_sums
from rankguard.functional.pairwise import _sort_descending_stable, pairwise_row_sums_grouped
from reference_pairwise import pairwise_loss_dense, pairwise_loss_masked_loop, row_sums_dense, surrogate_dense

RTOL = 1e-10


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Norm-wise relative error; exact zero reference must be matched to 1e-300."""
    return float((a - b).norm() / b.norm().clamp_min(1e-300)) if b.norm() > 0 else float(a.norm())


def make_scores(gen, n, ties, dtype=torch.float64):
    x = torch.randn(n, generator=gen, dtype=dtype) * 2
    if ties:  # multiples of 1/4 are exact in binary, so t == 0 pairs are exact too
        x = torch.round(x * 4) / 4
    return x


def check_against_dense(pos, neg, surrogate, margin, weights=None, reduction="mean"):
    inputs = [pos.clone().requires_grad_(), neg.clone().requires_grad_()]
    if weights is not None:
        inputs.append(weights.clone().requires_grad_())
    w = inputs[2] if weights is not None else None
    got = pairwise_loss(inputs[0], inputs[1], surrogate, margin, w, reduction)
    got_grads = torch.autograd.grad(got, inputs)
    ref_inputs = [t.detach().clone().requires_grad_() for t in inputs]
    ref_w = ref_inputs[2] if weights is not None else None
    ref = pairwise_loss_dense(ref_inputs[0], ref_inputs[1], surrogate, margin, ref_w, reduction)
    ref_grads = torch.autograd.grad(ref, ref_inputs)
    assert rel_err(got.detach(), ref.detach()) <= RTOL, (got, ref)
    for name, g, r in zip(("pos", "neg", "weights"), got_grads, ref_grads):
        assert rel_err(g, r) <= RTOL, (name, g, r)


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("ties", [False, True])
def test_matches_dense_many_seeds(surrogate, ties):
    gen = torch.Generator().manual_seed(1234 + ties)
    sizes = [(1, 1), (1, 7), (9, 1), (2, 3), (30, 45), (120, 80), (500, 400)]
    for k, (n_pos, n_neg) in enumerate(sizes * 3):
        pos = make_scores(gen, n_pos, ties)
        neg = make_scores(gen, n_neg, ties) - 0.5
        margin = (0.0, 1.0, 0.5)[k % 3]
        weights = torch.rand(n_pos, generator=gen, dtype=torch.float64) if k % 2 else None
        reduction = "sum" if k % 4 == 3 else "mean"
        check_against_dense(pos, neg, surrogate, margin, weights, reduction)


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_integer_scores_put_pairs_exactly_on_the_hinge(surrogate):
    # Integer scores with margin 1: many pairs have t = 1 − (p − n) == 0 exactly, where the
    # gradient convention matters (relu: 0 at 0). All-equal scores form a single tie group.
    gen = torch.Generator().manual_seed(7)
    pos = torch.randint(-3, 4, (60,), generator=gen).double()
    neg = torch.randint(-3, 4, (70,), generator=gen).double()
    check_against_dense(pos, neg, surrogate, 1.0)
    check_against_dense(torch.zeros(5, dtype=torch.float64), torch.ones(4, dtype=torch.float64), surrogate, 1.0)
    check_against_dense(torch.full((3,), 2.0, dtype=torch.float64), torch.full((6,), 2.0, dtype=torch.float64),
                        surrogate, 0.0)


def test_hand_computed_example():
    # pos = [1, 2], neg = [0.5, 2], m = 1:
    #   t = m − (p − n): p=1: 1−0.5=0.5, 1+1=2;   p=2: 1−1.5=−0.5, 1−0=1
    #   hinge rows:     [0.5 + 2, 0 + 1]          = [2.5, 1]
    #   sq hinge rows:  [0.25 + 4, 0 + 1]         = [4.25, 1]
    #   squared rows:   [0.25 + 4, 0.25 + 1]      = [4.25, 1.25]
    # ∂(hinge sum)/∂pos = −(#active) = [−2, −1]; ∂/∂neg = #positives with t > 0 = [1, 2].
    pos = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    neg = torch.tensor([0.5, 2.0], dtype=torch.float64, requires_grad=True)
    expected = {"hinge": [2.5, 1.0], "squared_hinge": [4.25, 1.0], "squared": [4.25, 1.25]}
    for surrogate, rows in expected.items():
        got = pairwise_row_sums(pos, neg, surrogate, 1.0)
        assert got.tolist() == rows
        mean = pairwise_loss(pos, neg, surrogate, 1.0)
        assert mean.item() == sum(rows) / 4
    loss = pairwise_loss(pos, neg, "hinge", 1.0, reduction="sum")
    gp, gn = torch.autograd.grad(loss, (pos, neg))
    assert gp.tolist() == [-2.0, -1.0] and gn.tolist() == [1.0, 2.0]
    # Weighted mean divides by the pair count n⁺n⁻ = 4, not by n⁻·Σw: w = [2, 0] → 2·2.5 / 4.
    w = torch.tensor([2.0, 0.0], dtype=torch.float64)
    assert pairwise_loss(pos, neg, "hinge", 1.0, w).item() == 2 * 2.5 / 4


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_row_sums_match_dense(surrogate):
    gen = torch.Generator().manual_seed(3)
    pos = make_scores(gen, 40, ties=True)
    neg = make_scores(gen, 33, ties=True)
    got = pairwise_row_sums(pos, neg, surrogate, 0.75)
    ref = row_sums_dense(pos, neg, surrogate, 0.75)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_gradcheck(surrogate):
    gen = torch.Generator().manual_seed(11)
    pos = torch.randn(6, generator=gen, dtype=torch.float64, requires_grad=True)
    neg = torch.randn(5, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.rand(6, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, n, w_: pairwise_loss(p, n, surrogate, 0.3, w_), (pos, neg, w))
    assert torch.autograd.gradcheck(lambda p, n: pairwise_row_sums(p, n, surrogate, 0.3), (pos, neg))


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_fixed_memory_bank_gets_no_grad(surrogate):
    gen = torch.Generator().manual_seed(5)
    pos = torch.randn(20, generator=gen, dtype=torch.float64, requires_grad=True)
    bank = torch.randn(50, generator=gen, dtype=torch.float64)
    loss = pairwise_loss(pos, bank, surrogate)
    loss.backward()
    assert bank.grad is None
    pos_ref = pos.detach().clone().requires_grad_()
    pairwise_loss_dense(pos_ref, bank, surrogate, 1.0).backward()
    assert rel_err(pos.grad, pos_ref.grad) <= RTOL


def test_float32_close_to_float64():
    gen = torch.Generator().manual_seed(9)
    pos = torch.randn(3000, generator=gen)
    neg = torch.randn(2000, generator=gen) - 1
    for surrogate in SURROGATES:
        got = pairwise_loss(pos, neg, surrogate)
        assert got.dtype == torch.float32
        ref = pairwise_loss_dense(pos.double(), neg.double(), surrogate, 1.0)
        assert abs(got.item() - ref.item()) <= 1e-5 * abs(ref.item())


def test_mixed_dtypes_are_promoted():
    pos = torch.tensor([0.0, 1.0], dtype=torch.float64)
    neg = torch.tensor([0.5], dtype=torch.float32)
    assert pairwise_loss(pos, neg).dtype == torch.float64


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_masked_matches_row_loop(surrogate, reduction):
    gen = torch.Generator().manual_seed(21)
    B, M = 9, 40
    scores = torch.round(torch.randn(B, M, generator=gen, dtype=torch.float64) * 8) / 4
    u = torch.rand(B, M, generator=gen)
    pos_mask = u < 0.25
    neg_mask = u > 0.4  # entries in between are ignored
    pos_mask[0] = False  # no positive
    neg_mask[1] = False  # no negative
    pos_mask[2] = False
    pos_mask[2, 3] = True  # a single positive
    neg_mask[2, 3] = False
    pos_mask[3] = neg_mask[3] = False  # nothing valid in the row
    for margin in (0.0, 1.0):
        s = scores.clone().requires_grad_()
        got = pairwise_loss_masked(s, pos_mask, neg_mask, surrogate, margin, reduction)
        s_ref = scores.clone().requires_grad_()
        ref = pairwise_loss_masked_loop(s_ref, pos_mask, neg_mask, surrogate, margin, reduction)
        assert rel_err(got.detach(), ref.detach()) <= RTOL
        weights = torch.randn(got.shape, generator=gen, dtype=torch.float64)
        (g,) = torch.autograd.grad((got * weights).sum(), s)
        (r,) = torch.autograd.grad((ref * weights).sum(), s_ref)
        assert rel_err(g, r) <= RTOL
        if reduction == "none":
            assert got[0].item() == 0.0 and got[1].item() == 0.0 and got[3].item() == 0.0


def test_masked_gradcheck_and_no_pairs():
    gen = torch.Generator().manual_seed(2)
    s = torch.randn(3, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    pos = torch.tensor([[1, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0]], dtype=torch.bool)
    neg = torch.tensor([[0, 1, 1, 0, 1, 0], [1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]], dtype=torch.bool)
    for surrogate in SURROGATES:
        assert torch.autograd.gradcheck(lambda x: pairwise_loss_masked(x, pos, neg, surrogate, 0.5), (s,))
    empty = torch.zeros_like(pos)
    out = pairwise_loss_masked(s, empty, neg)
    assert out.item() == 0.0 and not torch.isnan(out)


def test_errors_name_the_argument():
    p = torch.randn(4)
    n = torch.randn(3)
    with pytest.raises(ValueError, match="pos_scores"):
        pairwise_loss(torch.empty(0), n)
    with pytest.raises(ValueError, match="neg_scores"):
        pairwise_loss(p, torch.empty(0))
    with pytest.raises(ValueError, match="pos_scores"):
        pairwise_loss(torch.tensor([0.0, float("nan")]), n)
    with pytest.raises(ValueError, match="neg_scores"):
        pairwise_loss(p, torch.tensor([float("inf")]))
    with pytest.raises(ValueError, match="pos_weights"):
        pairwise_loss(p, n, pos_weights=torch.ones(3))
    with pytest.raises(ValueError, match="'squared', 'squared_hinge', 'hinge'"):
        pairwise_loss(p, n, surrogate="logistic")
    with pytest.raises(ValueError, match="`reduction`.*'none', 'mean', 'sum'"):
        pairwise_loss(p, n, reduction="max")
    with pytest.raises(ValueError, match="`reduction`"):
        pairwise_loss_masked(torch.randn(2, 3), torch.zeros(2, 3, dtype=torch.bool), reduction="batchmean")
    with pytest.raises(ValueError, match="margin"):
        pairwise_loss(p, n, margin=float("nan"))
    with pytest.raises(TypeError, match="pos_scores"):
        pairwise_loss(torch.tensor([1, 2]), n)
    s = torch.randn(2, 3)
    mask = torch.zeros(2, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="overlap"):
        pairwise_loss_masked(s, ~mask, ~mask)
    with pytest.raises(ValueError, match="neg_mask"):
        pairwise_loss_masked(s, mask, torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="pos_mask"):
        pairwise_loss_masked(s, mask.int(), mask)


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_inputs_are_not_modified(surrogate):
    gen = torch.Generator().manual_seed(4)
    for dtype in (torch.float64, torch.float32):
        pos = torch.randn(30, generator=gen, dtype=dtype, requires_grad=True)
        neg = torch.randn(20, generator=gen, dtype=dtype, requires_grad=True)
        scores = torch.randn(3, 10, generator=gen, dtype=dtype, requires_grad=True)
        copies = [t.detach().clone() for t in (pos, neg, scores)]
        pairwise_loss(pos, neg, surrogate).backward()
        pos_mask = torch.arange(10).expand(3, 10) < 4
        pairwise_loss_masked(scores, pos_mask, ~pos_mask, surrogate).backward()
        for t, c in zip((pos, neg, scores), copies):
            assert torch.equal(t.detach(), c)


# ---- pairwise_row_sums_grouped: several weightings of the negatives, one sort ----

def grouped_dense(pos, neg, weights, surrogate, margin):
    """R[g, i] = Σ_j v[g, j] ℓ(m − (p_i − n_j)) via the n⁺×n⁻ matrix."""
    ell = surrogate_dense(margin - (pos[:, None] - neg[None, :]), surrogate)
    return weights @ ell.T


def check_grouped(pos, neg, weights, surrogate, margin):
    p, n = pos.clone().requires_grad_(), neg.clone().requires_grad_()
    got = pairwise_row_sums_grouped(p, n, weights, surrogate, margin)
    p_ref, n_ref = pos.clone().requires_grad_(), neg.clone().requires_grad_()
    ref = grouped_dense(p_ref, n_ref, weights, surrogate, margin)
    assert got.shape == ref.shape == (weights.shape[0], pos.shape[0])
    assert rel_err(got.detach(), ref.detach()) <= RTOL, (got, ref)
    upstream = torch.randn(ref.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(pos.numel()))
    got_grads = torch.autograd.grad((got * upstream).sum(), (p, n))
    ref_grads = torch.autograd.grad((ref * upstream).sum(), (p_ref, n_ref))
    for name, g, r in zip(("pos", "neg"), got_grads, ref_grads):
        assert rel_err(g, r) <= RTOL, (name, g, r)


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("ties", [False, True])
def test_grouped_matches_dense(surrogate, ties):
    gen = torch.Generator().manual_seed(77 + ties)
    for k, (n_pos, n_neg, groups) in enumerate([(1, 1, 1), (1, 6, 3), (8, 1, 2), (40, 55, 1), (300, 200, 4)]):
        pos = make_scores(gen, n_pos, ties)
        neg = make_scores(gen, n_neg, ties) - 0.5
        weights = torch.randn(groups, n_neg, generator=gen, dtype=torch.float64)  # any sign
        if k % 2:
            weights[0] = 1.0  # one group is the plain row sum
        check_grouped(pos, neg, weights, surrogate, (0.0, 1.0, 0.5)[k % 3])


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_grouped_soap_layout_positives_inside_the_negatives(surrogate):
    """SOAP's use: the positives are members of the batch, weights 1 and y; integer scores put many pairs
    exactly on the hinge (t = 0)."""
    gen = torch.Generator().manual_seed(5)
    batch = torch.randint(-4, 5, (90,), generator=gen).double() / 2
    y = (torch.rand(90, generator=gen) < 0.4).double()
    y[0] = 1.0
    check_grouped(batch[y.bool()], batch, torch.stack([torch.ones_like(y), y]), surrogate, 0.5)
    # and the first row equals pairwise_row_sums
    rows = pairwise_row_sums_grouped(batch[y.bool()], batch, torch.stack([torch.ones_like(y), y]), surrogate, 0.5)
    torch.testing.assert_close(rows[0], pairwise_row_sums(batch[y.bool()], batch, surrogate, 0.5), rtol=1e-12,
                               atol=1e-12)


def test_grouped_hand_example_and_errors():
    pos = torch.tensor([1.0, 2.0], dtype=torch.float64)
    neg = torch.tensor([0.5, 2.0], dtype=torch.float64)
    v = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, -2.0]], dtype=torch.float64)
    # hinge pair values: p=1: [0.5, 2];  p=2: [0, 1]
    assert pairwise_row_sums_grouped(pos, neg, v, "hinge", 1.0).tolist() == [[2.5, 1.0], [0.5, 0.0], [-4.0, -2.0]]
    with pytest.raises(ValueError, match="neg_weights"):
        pairwise_row_sums_grouped(pos, neg, torch.ones(2, 3))
    with pytest.raises(ValueError, match="neg_weights"):
        pairwise_row_sums_grouped(pos, neg, torch.ones(2))
    with pytest.raises(ValueError, match="neg_weights"):
        pairwise_row_sums_grouped(pos, neg, torch.ones(0, 2))
    with pytest.raises(ValueError, match="neg_weights"):
        pairwise_row_sums_grouped(pos, neg, torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match="neg_weights"):
        pairwise_row_sums_grouped(pos, neg, torch.ones(1, 2, requires_grad=True))
    with pytest.raises(TypeError, match="neg_weights"):
        pairwise_row_sums_grouped(pos, neg, torch.ones(1, 2, dtype=torch.long))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_descending_sort_matches_stable_float_sort(dtype):
    """The integer-keyed sort (float32/float64; float16 falls back to torch's float sort) gives the order of a
    stable descending float sort — ±0.0 equal, negatives below positives — above and below the size where
    torch switches to a radix sort."""
    gen = torch.Generator().manual_seed(8)
    for n in (37, 20_000, 40_000):  # below the padding band, padded up to 2**15, radix-sorted as is
        x = (torch.randint(-20, 21, (n,), generator=gen).to(torch.float64) / 4).to(dtype)
        x[torch.randperm(n, generator=gen)[: n // 10]] = -0.0
        x[torch.randperm(n, generator=gen)[: n // 10]] = 0.0
        values, order = _sort_descending_stable(x)
        ref_values, ref_order = torch.sort(x, descending=True, stable=True)
        assert torch.equal(order, ref_order) and torch.equal(values, ref_values)


@pytest.mark.parametrize("surrogate", ["squared_hinge", "hinge"])
def test_signed_zero_keys_tie(surrogate):
    """a_i = −0.0 − 0 and n_j = +0.0 are equal: t = 0, an inactive pair (gradient 0 for the hinges)."""
    for dtype in (torch.float32, torch.float64):
        pos = torch.tensor([-0.0, 1.0], dtype=dtype, requires_grad=True)
        neg = torch.tensor([0.0, -0.0, 2.0], dtype=dtype, requires_grad=True)
        got = pairwise_loss(pos, neg, surrogate, 0.0, reduction="sum")
        g = torch.autograd.grad(got, (pos, neg))
        p_ref = pos.detach().clone().requires_grad_()
        n_ref = neg.detach().clone().requires_grad_()
        ref = pairwise_loss_dense(p_ref, n_ref, surrogate, 0.0, reduction="sum")
        r = torch.autograd.grad(ref, (p_ref, n_ref))
        assert got.item() == ref.item()
        assert torch.equal(g[0], r[0]) and torch.equal(g[1], r[1])


@pytest.mark.parametrize("surrogate", ["squared_hinge", "hinge"])
def test_float32_ties_exact(surrogate):
    """float32 on a grid of quarters: the hinge gradients (sums of quarters, exact) follow the dense matrix exactly,
    so every pair on the kink t = 0 is inactive as in the dense float32 computation."""
    gen = torch.Generator().manual_seed(12)
    pos = torch.randint(-8, 9, (3000,), generator=gen).float() / 4
    neg = torch.randint(-8, 9, (2000,), generator=gen).float() / 4
    p, n = pos.clone().requires_grad_(), neg.clone().requires_grad_()
    got = pairwise_loss(p, n, surrogate, 0.5, reduction="sum")
    g = torch.autograd.grad(got, (p, n))
    p_ref, n_ref = pos.clone().requires_grad_(), neg.clone().requires_grad_()
    ref = pairwise_loss_dense(p_ref, n_ref, surrogate, 0.5, reduction="sum")
    r = torch.autograd.grad(ref, (p_ref, n_ref))
    assert abs(got.item() - ref.item()) <= 1e-6 * abs(ref.item())
    assert torch.equal(g[0], r[0]) and torch.equal(g[1], r[1])


# ---- masked squared closed form: complement default, edge rows, cancellation ----

def edge_row_masks(B: int, M: int, gen: torch.Generator) -> torch.Tensor:
    """Random ~20 % positives, plus rows with one positive, one negative, all positives, none."""
    pos = torch.rand(B, M, generator=gen) < 0.2
    pos[0] = False                      # no positive
    pos[1] = True                       # all positives: no negative
    pos[2] = False
    pos[2, 7] = True                    # one positive
    pos[3] = True
    pos[3, 0] = False                   # one negative
    pos[4, :2] = True                   # positives at the row's edges
    pos[4, -1] = True
    return pos


def check_masked_against_loop(scores, pos, neg, surrogate, margin, reduction, tol=RTOL):
    s = scores.clone().requires_grad_()
    got = pairwise_loss_masked(s, pos, neg, surrogate, margin, reduction)
    s_ref = scores.detach().double().clone().requires_grad_()
    ref = pairwise_loss_masked_loop(s_ref, pos, ~pos if neg is None else neg, surrogate, margin, reduction)
    assert got.dtype == scores.dtype
    assert rel_err(got.detach().double(), ref.detach()) <= tol
    w = torch.linspace(0.5, 1.5, got.numel(), dtype=torch.float64).reshape(got.shape)
    (g,) = torch.autograd.grad((got * w.to(got.dtype)).sum(), s)
    (r,) = torch.autograd.grad((ref * w).sum(), s_ref)
    assert g.dtype == scores.dtype
    assert rel_err(g.double(), r) <= tol
    return got.detach(), g


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_masked_complement_default_equals_explicit_and_loop(surrogate, reduction):
    gen = torch.Generator().manual_seed(31)
    B, M = 8, 37
    scores = torch.randn(B, M, generator=gen, dtype=torch.float64)
    pos = edge_row_masks(B, M, gen)
    for margin in (0.0, 1.0, 2.5):
        got_default, g_default = check_masked_against_loop(scores, pos, None, surrogate, margin, reduction)
        got_explicit, g_explicit = check_masked_against_loop(scores, pos, ~pos, surrogate, margin, reduction)
        assert rel_err(got_default, got_explicit) <= RTOL and rel_err(g_default, g_explicit) <= RTOL
        if reduction == "none":  # rows without pairs: exactly 0, and no gradient through them
            assert got_default[0].item() == 0.0 and got_default[1].item() == 0.0
            assert g_default[:2].abs().max().item() == 0.0


@pytest.mark.parametrize("neg_is_complement", [True, False])
@pytest.mark.parametrize("offset,spread,margin", [(1e6, 1.0, 1.0), (1e6, 1e-3, 0.0), (-3e7, 0.5, 0.7)])
def test_masked_squared_survives_large_offsets(neg_is_complement, offset, spread, margin):
    """Scores far from 0 relative to their spread: a raw Σs² − M·mean² would cancel catastrophically."""
    gen = torch.Generator().manual_seed(5)
    B, M = 6, 50
    scores = offset + spread * torch.randn(B, M, generator=gen, dtype=torch.float64)
    pos = edge_row_masks(B, M, gen)
    neg = None if neg_is_complement else (~pos & (torch.rand(B, M, generator=gen) < 0.8))
    for reduction in ("none", "mean"):
        check_masked_against_loop(scores, pos, neg, "squared", margin, reduction)


def test_masked_squared_positives_holding_all_the_variance():
    """Tight clusters far apart, with a margin equal to the gap: L_b ~ 1e-8 while Σ(s − mean)² ~ 300.

    The negatives' sum of squares as (row total − positives') then cancels; the row must be redone.
    """
    gen = torch.Generator().manual_seed(6)
    B, M = 4, 60
    pos = torch.zeros(B, M, dtype=torch.bool)
    pos[:, :20] = True
    scores = 1e-4 * torch.randn(B, M, generator=gen, dtype=torch.float64)
    scores[:, :20] += 5.0
    got, _ = check_masked_against_loop(scores, pos, None, "squared", 5.0, "none")
    assert got.max().item() < 1e-7
    # beside an ordinary row (checked on its own: the norm-wise error would hide the tiny rows)
    scores[1] = torch.randn(M, generator=gen, dtype=torch.float64)
    got = pairwise_loss_masked(scores, pos, None, "squared", 5.0, "none")
    ref = pairwise_loss_masked_loop(scores, pos, ~pos, "squared", 5.0, "none")
    assert all(rel_err(got[b], ref[b]) <= RTOL for b in range(B))


def test_masked_squared_float32_accumulates_in_float64():
    gen = torch.Generator().manual_seed(8)
    B, M = 5, 400
    scores = (100.0 + torch.randn(B, M, generator=gen)).float()
    pos = edge_row_masks(B, M, gen)
    for neg in (None, ~pos):
        check_masked_against_loop(scores, pos, neg, "squared", 1.0, "mean", tol=1e-5)


def test_masked_squared_errors_and_inputs():
    s = torch.randn(2, 3, dtype=torch.float64)
    pos = torch.tensor([[True, False, False], [False, True, False]])
    with pytest.raises(ValueError, match="scores"):
        pairwise_loss_masked(torch.tensor([[0.0, float("nan"), 1.0], [0.0, 1.0, 2.0]]), pos, None, "squared")
    with pytest.raises(ValueError, match="scores"):
        pairwise_loss_masked(torch.tensor([[0.0, float("inf"), float("-inf")], [0.0, 1.0, 2.0]]), pos,
                             None, "squared")
    with pytest.raises(TypeError, match="pos_mask"):
        pairwise_loss_masked(s, pos.int(), None, "squared")
    with pytest.raises(ValueError, match="pos_mask"):
        pairwise_loss_masked(s, pos[:, :2], None, "squared")
    with pytest.raises(ValueError, match="scores"):
        pairwise_loss_masked(s[0], pos[0], None, "squared")
    t = s.t().contiguous().t()  # non-contiguous input
    assert not t.is_contiguous()
    check_masked_against_loop(t, pos, None, "squared", 1.0, "none")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("surrogate", ["squared", "squared_hinge", "hinge"])
def test_half_precision_inputs_do_not_overflow(dtype, surrogate):
    """Row sums over 70,000 negatives exceed float16's range: half inputs are computed in float32,
    so the loss stays finite and close to the float64 value (input rounding is the only error)."""
    gen = torch.Generator().manual_seed(11)
    pos, neg = torch.randn(50, generator=gen).to(dtype), torch.randn(70_000, generator=gen).to(dtype)
    got = pairwise_loss(pos.requires_grad_(), neg, surrogate, 1.0)
    ref = pairwise_loss(pos.detach().double(), neg.double(), surrogate, 1.0)
    assert got.dtype == torch.float32 and torch.isfinite(got)
    assert abs(float(got.detach()) - float(ref)) <= 1e-5 * abs(float(ref))
    got.backward()
    assert pos.grad.dtype == dtype and bool(torch.isfinite(pos.grad).all())
    block = torch.randn(4, 70_000, generator=gen).to(dtype)
    mask = torch.zeros(4, 70_000, dtype=torch.bool)
    mask[:, :50] = True
    masked = pairwise_loss_masked(block, mask, None, surrogate, 1.0)
    masked_ref = pairwise_loss_masked(block.double(), mask, None, surrogate, 1.0)
    assert torch.isfinite(masked) and abs(float(masked) - float(masked_ref)) <= 1e-5 * abs(float(masked_ref))


def test_squared_masked_overflow_is_an_error_not_nan():
    """Finite scores whose squares overflow float64 raise, naming `scores`, instead of returning NaN."""
    scores = torch.full((2, 4), 1e200, dtype=torch.float64)
    pos = torch.zeros(2, 4, dtype=torch.bool)
    pos[:, 0] = True
    with pytest.raises(OverflowError, match="scores"):
        pairwise_loss_masked(scores, pos, None, "squared", 1.0)


# ---- reduction="none": per-positive means; overflow of finite float32 scores ----

@pytest.mark.parametrize("surrogate", SURROGATES)
def test_reduction_none_is_per_positive_mean(surrogate):
    gen = torch.Generator().manual_seed(41)
    for n_pos, n_neg, weighted in [(1, 1, False), (7, 30, True), (50, 20, False)]:
        pos, neg = make_scores(gen, n_pos, ties=True), make_scores(gen, n_neg, ties=True)
        weights = torch.rand(n_pos, generator=gen, dtype=torch.float64) if weighted else None
        p, n = pos.clone().requires_grad_(), neg.clone().requires_grad_()
        got = pairwise_loss(p, n, surrogate, 0.5, weights, reduction="none")
        p_ref, n_ref = pos.clone().requires_grad_(), neg.clone().requires_grad_()
        ref = pairwise_loss_dense(p_ref, n_ref, surrogate, 0.5, weights, reduction="none")
        assert got.shape == (n_pos,)
        assert rel_err(got.detach(), ref.detach()) <= RTOL
        upstream = torch.randn(n_pos, generator=gen, dtype=torch.float64)
        for g, r in zip(torch.autograd.grad((got * upstream).sum(), (p, n)),
                        torch.autograd.grad((ref * upstream).sum(), (p_ref, n_ref))):
            assert rel_err(g, r) <= RTOL
        mean = pairwise_loss(pos, neg, surrogate, 0.5, weights, reduction="mean")
        total = pairwise_loss(pos, neg, surrogate, 0.5, weights, reduction="sum")
        torch.testing.assert_close(got.detach().mean(), mean, rtol=1e-12, atol=1e-300)
        torch.testing.assert_close(got.detach().sum() * n_neg, total, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("surrogate", ["squared", "squared_hinge"])
def test_float32_squares_that_overflow_raise_naming_the_argument(surrogate):
    """|score| ≳ 1.8e19: t² passes float32's 3.4e38. The float64 sums are fine, the float32 result was inf."""
    big, small = torch.tensor([-3e19, 1.0]), torch.tensor([-1.0, 0.5, 2.0])  # a low positive / high negative
    cases = [(lambda: pairwise_loss(big, small, surrogate), "pos_scores"),
             (lambda: pairwise_loss(small, -big, surrogate, reduction="none"), "neg_scores"),
             (lambda: pairwise_row_sums(small, -big, surrogate), "neg_scores"),
             (lambda: pairwise_row_sums_grouped(big, small, torch.ones(2, 3), surrogate), "pos_scores")]
    for call, name in cases:
        with pytest.raises(ValueError, match=f"`{name}`: the loss overflows float32.*pass float64"):
            call()
    # the same scores in float64 are fine, and so is the float32 hinge
    assert torch.isfinite(pairwise_loss(big.double(), small.double(), surrogate))
    assert torch.isfinite(pairwise_loss(big, small, "hinge"))
    # rows each within range whose float32 total is not: the reduced loss is checked too
    rows_ok = torch.full((8,), -1.5e19)
    assert bool(torch.isfinite(pairwise_row_sums(rows_ok, torch.zeros(1), surrogate)).all())
    with pytest.raises(OverflowError, match="`pos_scores`"):
        pairwise_loss(rows_ok, torch.zeros(1), surrogate, reduction="sum")
    # the masked layout, both negative conventions
    block = torch.zeros(2, 4)
    block[0, 1] = 4e19  # the row mean (4e19)²/3 passes float32
    mask = torch.zeros(2, 4, dtype=torch.bool)
    mask[:, 0] = True
    for neg_mask in (None, ~mask):
        with pytest.raises(OverflowError, match="`scores`: the loss overflows float32"):
            pairwise_loss_masked(block, mask, neg_mask, surrogate)
    assert torch.isfinite(pairwise_loss_masked(block.double(), mask, None, surrogate))


def test_float64_hinge_sums_that_overflow_raise():
    with pytest.raises(OverflowError, match="`neg_scores`.*float64.*rescale the scores$"):
        pairwise_loss(torch.tensor([0.0], dtype=torch.float64), torch.full((3,), 1e308, dtype=torch.float64),
                      "hinge", reduction="sum")
