"""APLoss (SOAP) against the dense B⁺×B reference in tests/reference_ap.py, over several steps."""

from __future__ import annotations

import io

import pytest
import torch

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
