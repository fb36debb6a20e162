"""Adaptive rank loss: values and gradients vs the note's closed forms and a dense float64 form; state; errors."""

import pytest
import torch

from rankguard.functional import adaptive_rank_loss
from rankguard.losses import AdaptiveRankLoss


def dense_adaptive_rank(s, y, mem, ymem, xi, normalizer="pairs", detach_alpha=True):
    """The B×M form of the note, written directly from the formulas (float64)."""
    st, sd = s[y], s[~y]
    mt, md = mem[ymem], mem[~ymem]
    loss = torch.zeros((), dtype=torch.float64)
    if len(st) and len(md):
        alpha = torch.exp(-torch.clamp(st - md.max(), min=0))
        if detach_alpha:
            alpha = alpha.detach()
        pairs = torch.clamp(md[None, :] - st[:, None] + xi, min=0) ** 2
        n = len(st) * len(md) if normalizer == "pairs" else normalizer
        loss = loss + (alpha[:, None] * pairs).sum() / n
    if len(sd) and len(mt):
        pairs = torch.clamp(sd[:, None] - mt[None, :] + xi, min=0) ** 2
        n = len(sd) * len(mt) if normalizer == "pairs" else normalizer
        loss = loss + pairs.sum() / n
    return loss


def closed_form_grads(s, y, mem, ymem, xi):
    """∂L/∂s_i and ∂L/∂ξ as the note states them (α constant)."""
    st, sd = s[y], s[~y]
    mt, md = mem[ymem], mem[~ymem]
    g = torch.zeros_like(s)
    alpha = torch.exp(-torch.clamp(st - md.max(), min=0))
    h1 = torch.clamp(md[None, :] - st[:, None] + xi, min=0)
    h2 = torch.clamp(sd[:, None] - mt[None, :] + xi, min=0)
    n_pd, n_pt = len(st) * len(md), len(sd) * len(mt)
    g[y] = -2.0 / n_pd * alpha * h1.sum(1)
    g[~y] = 2.0 / n_pt * h2.sum(1)
    g_xi = 2.0 / n_pd * (alpha[:, None] * h1).sum() + 2.0 / n_pt * h2.sum()
    return g, g_xi


def _data(seed, b=300, m=700):
    gen = torch.Generator().manual_seed(seed)
    s = torch.sigmoid(torch.randn(b, generator=gen, dtype=torch.float64))
    y = torch.rand(b, generator=gen) < 0.5
    mem = torch.sigmoid(torch.randn(m, generator=gen, dtype=torch.float64))
    ymem = torch.rand(m, generator=gen) < 0.5
    return s, y, mem, ymem


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-300))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("xi0", [0.0, 0.2, 0.7])
def test_value_and_gradients_match_dense_and_closed_forms(seed, xi0):
    s, y, mem, ymem = _data(seed)
    s1 = s.clone().requires_grad_()
    xi1 = torch.tensor(xi0, dtype=torch.float64, requires_grad=True)
    loss = adaptive_rank_loss(s1, y, mem, ymem, xi=xi1)
    loss.backward()
    s2 = s.clone().requires_grad_()
    xi2 = torch.tensor(xi0, dtype=torch.float64, requires_grad=True)
    dense = dense_adaptive_rank(s2, y, mem, ymem, xi2)
    dense.backward()
    assert _rel(loss.detach(), dense.detach()) <= 1e-6
    assert _rel(s1.grad, s2.grad) <= 1e-6
    assert _rel(xi1.grad, xi2.grad) <= 1e-6
    g, g_xi = closed_form_grads(s, y, mem, ymem, xi0)
    assert _rel(s1.grad, g) <= 1e-6
    assert _rel(xi1.grad, g_xi) <= 1e-6
    assert float(xi1.grad) >= 0.0  # the ξ rule can only shrink ξ


def test_origin_code_form_matches_dense():
    s, y, mem, ymem = _data(5)
    s1 = s.clone().requires_grad_()
    loss = adaptive_rank_loss(s1, y, mem, ymem, 0.2, normalizer=1e4, detach_alpha=False)
    loss.backward()
    s2 = s.clone().requires_grad_()
    dense = dense_adaptive_rank(s2, y, mem, ymem, 0.2, normalizer=1e4, detach_alpha=False)
    dense.backward()
    assert _rel(loss.detach(), dense.detach()) <= 1e-6
    assert _rel(s1.grad, s2.grad) <= 1e-6


def test_reductions_and_empty_sides():
    s, y, mem, ymem = _data(3, b=50, m=60)
    none = adaptive_rank_loss(s, y, mem, ymem, 0.3, reduction="none")
    assert none.shape == (50,)
    assert torch.allclose(none.sum(), adaptive_rank_loss(s, y, mem, ymem, 0.3))
    raw = adaptive_rank_loss(s, y, mem, ymem, 0.3, reduction="sum")
    assert float(raw) > float(none.sum())
    # a batch of targets only against a memory of targets only: both terms empty -> 0 with a zero gradient
    s1 = s[:5].clone().requires_grad_()
    out = adaptive_rank_loss(s1, torch.ones(5), mem[:4], torch.ones(4), 0.3)
    out.backward()
    assert float(out.detach()) == 0.0 and float(s1.grad.abs().sum()) == 0.0


def test_float32_scores_stay_float32():
    s, y, mem, ymem = _data(4, b=20, m=20)
    xi = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    out = adaptive_rank_loss(s.float(), y, mem, ymem, xi)
    assert out.dtype == torch.float32
    out.backward()
    assert xi.grad is not None


def test_module_memory_projection_and_state_dict_round_trip():
    s, y, mem, ymem = _data(6, b=40, m=30)
    loss = AdaptiveRankLoss(xi=0.3, xi_floor=0.1)
    loss.set_memory(mem, ymem)
    value = loss(s, y)
    value.backward()
    assert float(loss.xi.grad) > 0
    with torch.no_grad():
        loss.xi -= 10.0
    loss.project_()
    assert loss.xi.item() == pytest.approx(0.1)
    # online memory: end_epoch swaps in the batch scores seen while training
    loss(s[:10], y[:10])
    loss.end_epoch()
    assert loss.memory_scores.shape == (50,)  # both batches seen since set_memory
    other = AdaptiveRankLoss()
    other.load_state_dict(loss.state_dict())
    assert torch.equal(other.memory_scores, loss.memory_scores)
    assert torch.equal(other.memory_labels, loss.memory_labels)
    assert other.xi.item() == pytest.approx(0.1)
    assert torch.allclose(other(s, y), loss(s, y))


def test_memory_subsample_limits_each_class():
    s, y, mem, ymem = _data(7, b=20, m=500)
    loss = AdaptiveRankLoss(memory_subsample=10, generator=torch.Generator().manual_seed(1))
    loss.set_memory(mem, ymem)
    m, lab = loss._memory_view()
    assert int(lab.sum()) == 10 and int((~lab).sum()) == 10
    assert torch.isfinite(loss(s, y))


def test_fixed_xi_has_no_parameter_group():
    assert AdaptiveRankLoss(learn_xi=False).parameter_group() == []
    assert len(AdaptiveRankLoss().parameter_group()) == 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(xi=-0.1), "`xi`"),
    (dict(xi=float("nan")), "`xi`"),
    (dict(normalizer="constant"), "`normalizer`"),
    (dict(normalizer=0.0), "`normalizer`"),
    (dict(reduction="avg"), "reduction"),
])
def test_bad_options_name_the_argument(kwargs, match):
    s, y, mem, ymem = _data(8, b=5, m=5)
    with pytest.raises((ValueError, TypeError), match=match):
        adaptive_rank_loss(s, y, mem, ymem, **kwargs)


def test_bad_inputs_name_the_argument():
    s, y, mem, ymem = _data(9, b=5, m=5)
    with pytest.raises(ValueError, match="`labels`"):
        adaptive_rank_loss(s, torch.tensor([0, 1, 2, 0, 1]), mem, ymem)
    with pytest.raises(ValueError, match="`memory_labels`"):
        adaptive_rank_loss(s, y, mem, ymem[:3])
    with pytest.raises(ValueError, match="`scores`"):
        adaptive_rank_loss(torch.full((5,), float("nan"), dtype=torch.float64), y, mem, ymem)
    with pytest.raises(TypeError, match="`memory_scores`"):
        adaptive_rank_loss(s, y, [0.1, 0.2], [1, 0])
    with pytest.raises(ValueError, match="`xi_floor`"):
        AdaptiveRankLoss(xi=0.1, xi_floor=0.5)


def test_origin_code_form_module_matches_dense_on_its_subsample():
    """The Module's origin form (constant 1e4, α not detached, ≤ k memory rows per class redrawn per batch)
    equals the dense form of the origin code on the rows it drew, value and gradient."""
    s, y, mem, ymem = _data(10, b=64, m=900)
    loss = AdaptiveRankLoss(0.2, normalizer=1e4, detach_alpha=False, memory_subsample=50,
                            generator=torch.Generator().manual_seed(3))
    loss.set_memory(mem, ymem)
    draw = torch.Generator().manual_seed(3)       # the same draws as the Module's, replayed
    parts = []
    for cls_mask in (ymem, ~ymem):
        idx = cls_mask.nonzero()[:, 0]
        parts.append(idx[torch.randperm(idx.shape[0], generator=draw)[:50]])
    idx = torch.cat(parts)
    s1 = s.clone().requires_grad_()
    value = loss(s1, y)
    value.backward()
    s2 = s.clone().requires_grad_()
    xi2 = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    dense = dense_adaptive_rank(s2, y, mem[idx], ymem[idx], xi2, normalizer=1e4, detach_alpha=False)
    dense.backward()
    assert _rel(value.detach(), dense.detach()) <= 1e-6
    assert _rel(s1.grad, s2.grad) <= 1e-6
    assert _rel(loss.xi.grad, xi2.grad) <= 1e-6
    assert AdaptiveRankLoss.origin_code_form().memory_subsample == 10_000


def test_memory_subsample_that_does_not_bind_uses_the_whole_memory():
    s, y, mem, ymem = _data(11, b=30, m=80)
    whole = AdaptiveRankLoss(0.2)
    whole.set_memory(mem, ymem)
    sub = AdaptiveRankLoss(0.2, memory_subsample=80)
    sub.set_memory(mem, ymem)
    assert not sub._subsample_binds()
    assert torch.equal(whole(s, y), sub(s, y))
