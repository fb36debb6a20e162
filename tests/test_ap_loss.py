"""APLoss (SOAP) against the dense B⁺×B reference in tests/reference_ap.py, over several steps."""

from __future__ import annotations

import io

import pytest
import torch

from rankguard.functional import soap_loss
from rankguard.losses.ap import APLoss
from reference_ap import DenseSOAP
from reference_pairwise import surrogate_dense

SURROGATES = ["squared_hinge", "hinge", "squared"]


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = float(b.abs().max()) if b.numel() else 0.0
    return float((a - b).abs().max()) / max(scale, 1e-300) if b.numel() else 0.0


def make_batches(gen: torch.Generator, num_samples: int, steps: int, tie_grid: float | None):
    """Batches of distinct indices drawn from one dataset, so indices recur across steps."""
    labels_of = torch.rand(num_samples, generator=gen) < 0.4
    labels_of[0] = True  # at least one positive in the dataset
    batches = []
    for _ in range(steps):
        size = int(torch.randint(2, num_samples, (1,), generator=gen))
        idx = torch.randperm(num_samples, generator=gen)[:size]
        if not labels_of[idx].any():
            idx[0] = 0
        scores = torch.randn(size, generator=gen, dtype=torch.float64) * 2
        if tie_grid is not None:  # many exact ties among scores
            scores = torch.round(scores / tie_grid) * tie_grid
        batches.append((scores, labels_of[idx].long(), idx))
    return batches


def run_both(surrogate: str, transform, margin: float, gamma: float, batches, num_samples: int):
    fast = APLoss(num_samples, margin=margin, gamma=gamma, surrogate=surrogate,
                  score_transform=transform).to(torch.float64)
    ref = DenseSOAP(num_samples, margin, gamma, surrogate, transform)
    for scores, labels, idx in batches:
        s1 = scores.clone().requires_grad_(True)
        s2 = scores.clone().requires_grad_(True)
        l1 = fast(s1, labels, idx)
        l2 = ref.step(s2, labels, idx)
        l1.backward()
        l2.backward()
        yield l1.detach(), l2.detach(), s1.grad, s2.grad, fast, ref


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("transform", ["sigmoid", None])
def test_matches_dense_reference_over_steps(surrogate, transform):
    gen = torch.Generator().manual_seed(10 * SURROGATES.index(surrogate) + (transform is None))
    num_samples = 60
    # exact ties among scores; with raw scores a tie grid of 0.25 and margin 0.5 also puts pairs
    # exactly on the hinge kink t = 0 (value 0, gradient 0 there, as torch.relu's)
    grid = 0.25 if transform is None else 0.3
    batches = make_batches(gen, num_samples, steps=6, tie_grid=grid)
    for l1, l2, g1, g2, fast, ref in run_both(surrogate, transform, 0.5, 0.3, batches, num_samples):
        assert rel_err(l1, l2) <= 1e-10 or abs(float(l1 - l2)) <= 1e-13
        assert rel_err(g1, g2) <= 1e-10
        assert rel_err(fast.u_all, ref.u_all) <= 1e-12
        assert rel_err(fast.u_pos, ref.u_pos) <= 1e-12
    # the state really did evolve at recurring indices
    assert int((fast.u_all > 0).sum()) > 5


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_edge_batches(surrogate):
    """One negative; one positive alone; all positives (weights vanish: loss 0, grad 0)."""
    cases = [
        (torch.tensor([0.3, -0.2, 1.1]), torch.tensor([1, 1, 0]), torch.tensor([4, 1, 2])),
        (torch.tensor([0.7]), torch.tensor([1]), torch.tensor([3])),
        (torch.tensor([0.1, 0.1, 0.1]), torch.tensor([1, 1, 1]), torch.tensor([0, 2, 5])),
        (torch.tensor([-0.4, 0.9]), torch.tensor([1, 0]), torch.tensor([4, 0])),
    ]
    batches = [(s.double(), y, i) for s, y, i in cases]
    results = list(run_both(surrogate, "sigmoid", 0.6, 0.1, batches, 6))
    for l1, l2, g1, g2, *_ in results:
        assert abs(float(l1 - l2)) <= 1e-12 * max(1.0, abs(float(l2)))
        assert rel_err(g1, g2) <= 1e-10 or float((g1 - g2).abs().max()) <= 1e-14
    l_allpos, _, g_allpos, *_ = results[2]
    assert float(l_allpos) == 0.0 and float(g_allpos.abs().max()) == 0.0


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_gamma_one_gives_minus_gradient_of_batch_ap_surrogate(surrogate):
    """With γ = 1 the SOAP gradient is exactly −∇ (1/B⁺) Σ_i Σ_s y_s ℓ_is / Σ_s ℓ_is (paper's AP form)."""
    gen = torch.Generator().manual_seed(7)
    scores = torch.randn(25, generator=gen, dtype=torch.float64)
    labels = (torch.rand(25, generator=gen) < 0.5).long()
    labels[3] = 1
    s1 = scores.clone().requires_grad_(True)
    loss = APLoss(25, margin=0.6, gamma=1.0, surrogate=surrogate).double()(s1, labels, torch.arange(25))
    loss.backward()
    s2 = scores.clone().requires_grad_(True)
    h = torch.sigmoid(s2)
    pos = labels.bool()
    ell = surrogate_dense(0.6 - (h[pos][:, None] - h[None, :]), surrogate)
    ap_surrogate = ((ell * pos.double()[None, :]).sum(1) / ell.sum(1)).mean()
    ap_surrogate.backward()
    assert abs(loss.item()) <= 1e-14  # the weighted sum cancels when u equals the batch means
    assert rel_err(s1.grad, -s2.grad) <= 1e-10


def test_label_encodings_agree():
    scores = torch.tensor([0.5, -1.0, 2.0, 0.0], dtype=torch.float64)
    idx = torch.tensor([0, 1, 2, 3])
    forms = [torch.tensor([1, 0, 1, 0]), torch.tensor([1, -1, 1, -1]), torch.tensor([True, False, True, False]),
             [1.0, 0.0, 1.0, 0.0]]
    losses = [float(APLoss(4).double()(scores, y, idx)) for y in forms]
    assert all(v == losses[0] for v in losses)


def test_state_dict_round_trip_and_to():
    gen = torch.Generator().manual_seed(3)
    batches = make_batches(gen, 30, steps=4, tie_grid=None)
    a = APLoss(30, surrogate="squared_hinge").to(torch.float64)
    assert a.u_all.dtype == torch.float64 and a.u_pos.dtype == torch.float64
    for s, y, i in batches[:3]:
        a(s, y, i)
    sd = a.state_dict()
    assert set(sd) == {"u_all", "u_pos"}
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    b = APLoss(30, surrogate="squared_hinge").to(torch.float64)
    b.load_state_dict(torch.load(buf))
    assert torch.equal(a.u_all, b.u_all) and torch.equal(a.u_pos, b.u_pos) and bool(a.u_all.any())
    s, y, i = batches[3]
    assert float(a(s, y, i)) == float(b(s, y, i))
    fresh = APLoss(30, surrogate="squared_hinge").to(torch.float64)
    assert float(fresh(s, y, i)) != float(a(s, y, i))  # the restored state is what made them agree
    a.reset_state()
    assert not a.u_all.any() and not a.u_pos.any()


def test_float32_scores_with_float32_state_close_to_float64():
    gen = torch.Generator().manual_seed(11)
    batches = make_batches(gen, 40, steps=3, tie_grid=None)
    a32, a64 = APLoss(40), APLoss(40).double()
    for s, y, i in batches:
        v32 = a32(s.float(), y, i)
        v64 = a64(s, y, i)
        assert v32.dtype == torch.float32
        assert abs(float(v32) - float(v64)) <= 1e-5 * max(1.0, abs(float(v64)))


@pytest.mark.parametrize(
    "kwargs, fragment",
    [({"margin": 0.0}, "margin"), ({"margin": -1.0}, "margin"), ({"margin": float("nan")}, "margin"),
     ({"gamma": 0.0}, "gamma"), ({"gamma": 1.5}, "gamma"), ({"surrogate": "logistic"}, "surrogate"),
     ({"score_transform": "tanh"}, "score_transform"), ({"num_samples": 0}, "num_samples")],
)
def test_constructor_errors(kwargs, fragment):
    args = {"num_samples": 10, **kwargs}
    with pytest.raises(ValueError, match=f"`{fragment}`"):
        APLoss(**args)


@pytest.mark.parametrize(
    "scores, labels, index, exc, fragment",
    [
        ([0.1, 0.2, 0.3], [1, 0, 1], [0, 1, 10], IndexError, "index"),
        ([0.1, 0.2, 0.3], [1, 0, 1], [0, -1, 2], IndexError, "index"),
        ([0.1, 0.2, 0.3], [1, 0, 1], [0.0, 1.0, 2.0], TypeError, "index"),
        ([0.1, 0.2, 0.3], [1, 0, 1], [0, 1], ValueError, "index"),
        ([0.1, 0.2, 0.3], [1, 0, 1], [[0, 1, 2]], ValueError, "index"),
        ([0.1, 0.2, 0.3], [1, 0, 1], [4, 4, 2], ValueError, "index"),
        ([0.1, 0.2, 0.3], [0, 0, 0], [0, 1, 2], ValueError, "labels"),
        ([0.1, 0.2, 0.3], [1, 2, 0], [0, 1, 2], ValueError, "labels"),
        ([0.1, 0.2, 0.3], [1, 0], [0, 1, 2], ValueError, "labels"),
        ([0.1, float("nan"), 0.3], [1, 0, 1], [0, 1, 2], ValueError, "scores"),
        ([0.1, float("inf"), 0.3], [1, 0, 1], [0, 1, 2], ValueError, "scores"),
        ([], [], [], ValueError, "scores"),
    ],
)
def test_forward_errors_name_the_argument(scores, labels, index, exc, fragment):
    loss_fn = APLoss(10)
    before = loss_fn.u_all.clone()
    with pytest.raises(exc, match=f"`{fragment}`"):
        loss_fn(torch.tensor(scores), torch.tensor(labels), torch.tensor(index) if index else index)
    assert torch.equal(loss_fn.u_all, before)  # a rejected batch leaves the state untouched


def test_scores_must_be_float_tensor():
    with pytest.raises(TypeError, match="`scores`"):
        APLoss(4)(torch.tensor([1, 2, 3]), torch.tensor([1, 0, 1]), torch.tensor([0, 1, 2]))


# ---- the pure function soap_loss, frozen state, overflow ----

def functional_steps(surrogate, transform, margin, gamma, batches, num_samples, reduction="mean"):
    """Drive soap_loss with the state held here: gather the positives' averages, scatter the new ones."""
    u_all = torch.zeros(num_samples, dtype=torch.float64)
    u_pos = torch.zeros(num_samples, dtype=torch.float64)
    for scores, labels, idx in batches:
        s = scores.clone().requires_grad_(True)
        at = idx[labels.bool()]
        gathered = (u_all[at].clone(), u_pos[at].clone())
        copies = [t.clone() for t in (scores, labels, *gathered)]
        loss, new_all, new_pos = soap_loss(s, labels, *gathered, margin=margin, gamma=gamma, surrogate=surrogate,
                                           score_transform=transform, reduction=reduction)
        for before, after in zip(copies, (s.detach(), labels, *gathered)):
            assert torch.equal(before, after)  # pure: no input modified
        assert not new_all.requires_grad and not new_pos.requires_grad
        u_all[at], u_pos[at] = new_all, new_pos
        (loss * torch.linspace(0.5, 1.5, loss.numel(), dtype=loss.dtype).reshape(loss.shape)).sum().backward()
        yield loss.detach(), s.grad, u_all.clone(), u_pos.clone()


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("transform", ["sigmoid", None])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_functional_matches_dense_reference_and_module(surrogate, transform, reduction):
    gen = torch.Generator().manual_seed(40 + 3 * SURROGATES.index(surrogate) + (transform is None))
    num_samples = 50
    batches = make_batches(gen, num_samples, steps=6, tie_grid=0.25 if transform is None else None)
    ref = DenseSOAP(num_samples, 0.5, 0.3, surrogate, transform)
    module = APLoss(num_samples, margin=0.5, gamma=0.3, surrogate=surrogate, score_transform=transform,
                    reduction=reduction).double()
    steps = functional_steps(surrogate, transform, 0.5, 0.3, batches, num_samples, reduction)
    for (scores, labels, idx), (loss, grad, u_all, u_pos) in zip(batches, steps):
        s_ref = scores.clone().requires_grad_(True)
        l_ref = ref.step(s_ref, labels, idx, reduction)
        s_mod = scores.clone().requires_grad_(True)
        l_mod = module(s_mod, labels, idx)
        upstream = torch.linspace(0.5, 1.5, l_ref.numel(), dtype=torch.float64).reshape(l_ref.shape)
        (l_ref * upstream).sum().backward()
        (l_mod * upstream).sum().backward()
        assert loss.shape == l_ref.shape == l_mod.shape
        # the weighted terms cancel (exactly 0 in exact arithmetic on a first visit): error relative to their size
        size = {"none": ref.last_terms.abs().mean(dim=1), "mean": ref.last_terms.abs().mean(),
                "sum": ref.last_terms.abs().sum()}[reduction]
        assert float(((loss - l_ref.detach()).abs() / size.clamp_min(1e-300)).max()) <= 1e-10
        assert rel_err(grad, s_ref.grad) <= 1e-10
        assert rel_err(u_all, ref.u_all) <= 1e-12 and rel_err(u_pos, ref.u_pos) <= 1e-12
        # the Module is the function plus gathered state: agreement far below 1e-10
        assert float(((l_mod.detach() - loss).abs() / size.clamp_min(1e-300)).max()) <= 1e-10
        assert rel_err(s_mod.grad, grad) <= 1e-10
        assert rel_err(module.u_all, u_all) <= 1e-10 and rel_err(module.u_pos, u_pos) <= 1e-10
    assert int((u_all > 0).sum()) > 5


def test_reductions_are_consistent():
    gen = torch.Generator().manual_seed(2)
    scores, labels, idx = make_batches(gen, 30, steps=2, tie_grid=None)[1]
    u = torch.rand(int(labels.sum()), generator=gen, dtype=torch.float64)
    out = {r: soap_loss(scores, labels, u, u / 2, reduction=r)[0] for r in ("none", "mean", "sum")}
    assert out["none"].shape == (int(labels.sum()),)
    torch.testing.assert_close(out["none"].mean(), out["mean"], rtol=1e-12, atol=0)
    torch.testing.assert_close(out["none"].sum() * scores.shape[0], out["sum"], rtol=1e-12, atol=0)


def state_of(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def assert_same_state(a, b):
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_frozen_reads_but_does_not_write_the_state():
    gen = torch.Generator().manual_seed(13)
    batches = make_batches(gen, 30, steps=4, tie_grid=None)
    live = APLoss(30).double()
    for s, y, i in batches[:3]:
        live(s, y, i)
    twin = APLoss(30).double()
    twin.load_state_dict(live.state_dict())
    s, y, i = batches[3]
    before = state_of(live)
    s_frozen = s.clone().requires_grad_(True)
    with live.frozen() as same:
        assert same is live and live.update is False
        with live.frozen():  # nests
            pass
        assert live.update is False
        frozen_loss = live(s_frozen, y, i)
        frozen_again = live(s, y, i)
    assert live.update is True
    assert_same_state(before, state_of(live))
    # value and gradient are those of an updating call (weights from the would-be-updated averages)
    s_live = s.clone().requires_grad_(True)
    updating_loss = twin(s_live, y, i)
    frozen_loss.backward()
    updating_loss.backward()
    assert frozen_loss.item() == updating_loss.item() == frozen_again.item()
    assert torch.equal(s_frozen.grad, s_live.grad)
    assert not torch.equal(twin.u_all, live.u_all)  # the updating call did write
    # the constructor flag and the attribute do the same; an error inside frozen() restores the flag
    off = APLoss(30, update=False).double()
    off.load_state_dict(before)
    assert off(s, y, i).item() == frozen_loss.item()
    assert_same_state(before, state_of(off))
    off.update = True
    off(s, y, i)
    assert torch.equal(off.u_all, twin.u_all)
    with pytest.raises(ValueError, match="`labels`"), live.frozen():
        live(s, torch.zeros_like(y), i)
    assert live.update is True
    with pytest.raises(TypeError, match="`update`"):
        APLoss(30, update=1)


@pytest.mark.parametrize("dtype, big", [(torch.float32, 2e19), (torch.float64, 1e155)])
@pytest.mark.parametrize("surrogate", SURROGATES)
def test_overflowing_scores_raise_before_any_state_change(dtype, big, surrogate):
    """Raw (untransformed) scores whose squares overflow: an error naming `scores`, not a NaN loss and
    u_all = inf that would poison every later batch."""
    loss_fn = APLoss(8, surrogate=surrogate, score_transform=None).to(dtype)
    y, i = torch.tensor([1, 0, 1, 0]), torch.tensor([0, 1, 2, 3])
    loss_fn(torch.tensor([0.3, -0.2, 0.1, 0.5], dtype=dtype), y, i)  # some state to keep
    before = state_of(loss_fn)
    scores = torch.tensor([1.0, -1.0, 0.5, 2.0], dtype=dtype) * big
    if surrogate == "hinge":  # |t| ~ big sums within range; u_all' ~ big/B, whose square alone would overflow
        got = loss_fn(scores, y, i)
        wide = APLoss(8, surrogate=surrogate, score_transform=None).double()
        wide.load_state_dict({k: v.double() for k, v in before.items()})
        want = wide(scores.double(), y, i)
        assert bool(torch.isfinite(got)) and abs(float(got) - float(want)) <= 1e-5 * abs(float(want))
        return
    with pytest.raises(ValueError, match="`scores`.*overflow"):
        loss_fn(scores, y, i)
    assert_same_state(before, state_of(loss_fn))
    with pytest.raises(OverflowError, match="`scores`"):
        soap_loss(scores, y, before["u_all"][:2], before["u_pos"][:2], surrogate=surrogate, score_transform=None)


def test_hinge_on_huge_raw_float32_scores():
    """u_all' ~ 1e20: its square alone overflows float32, the weights u_pos'/u_all'/u_all' do not.

    Past float32's range, an error."""
    y, i = torch.tensor([1, 0, 1, 0]), torch.tensor([0, 1, 2, 3])
    narrow = APLoss(4, surrogate="hinge", score_transform=None)
    wide = APLoss(4, surrogate="hinge", score_transform=None).double()
    for scale in ([1.0, -1.0, 0.5, 2.0], [0.2, -1.0, 1.5, 0.0]):  # a second step, so the loss is not 0
        scores = torch.tensor(scale) * 1e21
        got, want = narrow(scores, y, i), wide(scores.double(), y, i)
    assert abs(got.item() - want.item()) <= 1e-5 * abs(want.item()) and want.item() != 0
    loss_fn = APLoss(4, surrogate="hinge", score_transform=None)
    with pytest.raises(ValueError, match="`scores`.*score_transform='sigmoid'"):
        loss_fn(torch.tensor([3e38, -3e38, 1.0]), torch.tensor([1, 0, 1]), torch.tensor([0, 1, 2]))
    assert not loss_fn.u_all.any()


@pytest.mark.parametrize(
    "u_all, u_pos, fragment",
    [(torch.zeros(3), torch.zeros(2), "u_all"), (torch.zeros(2), torch.zeros(1), "u_pos"),
     (torch.tensor([0.0, -1.0]), torch.zeros(2), "u_all"), (torch.zeros(2), torch.tensor([float("nan"), 0.0]), "u_pos"),
     (torch.zeros(2), torch.zeros(2, dtype=torch.float64), "u_pos")],
)
def test_functional_state_errors(u_all, u_pos, fragment):
    with pytest.raises(ValueError, match=f"`{fragment}`"):
        soap_loss(torch.tensor([0.1, 0.2, 0.3]), [1, 0, 1], u_all, u_pos)


@pytest.mark.parametrize("kwargs, fragment", [({"margin": 0.0}, "margin"), ({"gamma": 2.0}, "gamma"),
                                              ({"surrogate": "log"}, "surrogate"), ({"reduction": "max"}, "reduction"),
                                              ({"score_transform": "tanh"}, "score_transform")])
def test_functional_option_errors(kwargs, fragment):
    with pytest.raises(ValueError, match=f"`{fragment}`"):
        soap_loss(torch.tensor([0.1, 0.2]), [1, 0], torch.zeros(1), torch.zeros(1), **kwargs)
