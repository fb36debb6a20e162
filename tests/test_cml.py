"""CML-family objectives and models: SFCML equals the naive triplet sum; models' scores agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rankguard.functional.cml import bpr_loss, covariance_regularizer, sfcml_loss, triplet_hinge_loss
from rankguard.losses.cml import CMLLoss, SFCMLLoss
from rankguard.recsys.dpcml import DPCML
from rankguard.recsys.lightgcn import LightGCN
from rankguard.recsys.models import CML, MF, MODELS, SFCML

SURROGATES = {
    "squared": lambda t: t ** 2,
    "hinge": lambda t: torch.relu(t),
    "squared_hinge": lambda t: torch.relu(t) ** 2,
}


def naive_triplet_mean(scores, pos_mask, neg_mask, margin, surrogate):
    """Enumerate every (user, positive, negative) triplet explicitly; mean per user, then over users."""
    b, i = pos_mask.nonzero(as_tuple=True)
    rows, js = neg_mask.nonzero(as_tuple=True)
    per_user = []
    for u in range(scores.shape[0]):   # reference only: a loop is fine here
        pi = i[b == u]
        nj = js[rows == u]
        if len(pi) == 0 or len(nj) == 0:
            continue
        t = margin - (scores[u, pi][:, None] - scores[u, nj][None, :])
        per_user.append(SURROGATES[surrogate](t).mean())
    return torch.stack(per_user).mean()


def random_case(seed, b=7, m=23, ties=False):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(b, m, generator=g, dtype=torch.float64)
    if ties:
        scores = torch.round(scores * 2) / 2          # many exact ties, and ties across the margin
    pos = torch.rand(b, m, generator=g, dtype=torch.float64) < 0.3
    pos[0] = False                                    # a user with no positives: excluded
    pos[1] = True
    pos[1, 5] = False                                 # a user with exactly one negative
    pos[2] = False
    pos[2, 3] = True                                  # a user with one positive
    return scores, pos


@pytest.mark.parametrize("surrogate", sorted(SURROGATES))
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("margin", [1.0, 2.0, 0.3])
def test_sfcml_equals_naive_triplet_sum_value_and_gradient(surrogate, ties, margin):
    scores, pos = random_case(11 + int(ties), ties=ties)
    a = scores.clone().requires_grad_(True)
    got = sfcml_loss(a, pos, margin=margin, surrogate=surrogate)
    got.backward()
    b = scores.clone().requires_grad_(True)
    ref = naive_triplet_mean(b, pos, ~pos, margin, surrogate)
    ref.backward()
    assert abs(got.item() - ref.item()) <= 1e-9 * abs(ref.item())
    # gradients, ties included: at a hinge kink (t = 0) both sides take the documented slope 0
    # (torch's relu'(0) = 0 in the reference; the engine's convention, see tests/test_hinge_ties.py)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-12)


def test_sfcml_model_loss_equals_distance_form_triplets():
    """With s = 2<u,v> on the unit sphere, λ − (s_i − s_j) = λ + d²(u,i) − d²(u,j): the CML triplet."""
    g = torch.Generator().manual_seed(3)
    model = SFCML(6, 15, dim=8, generator=g, dtype=torch.float64)
    users = torch.arange(6)
    pos = torch.rand(6, 15, generator=g) < 0.3
    pos[:, 0] = True
    loss = SFCMLLoss(margin=2.0)(model.score(users), pos)
    d2 = ((model.user[:, None, :] - model.item[None, :, :]) ** 2).sum(-1)
    terms = []
    for u in range(6):
        for i in pos[u].nonzero()[:, 0]:
            for j in (~pos[u]).nonzero()[:, 0]:
                terms.append((u, (2.0 + d2[u, i] - d2[u, j]) ** 2))
    per_user = [torch.stack([t for uu, t in terms if uu == u]).mean() for u in range(6)]
    ref = torch.stack(per_user).mean()
    assert abs(loss.item() - ref.item()) <= 1e-9 * ref.item()


def test_triplet_hinge_and_bpr_match_elementwise_definitions():
    g = torch.Generator().manual_seed(0)
    p = torch.randn(5, generator=g, dtype=torch.float64)
    n = torch.randn(5, 4, generator=g, dtype=torch.float64)
    ref_h = np.mean([max(0.0, 0.7 - (p[b].item() - n[b, s].item())) for b in range(5) for s in range(4)])
    ref_b = np.mean([np.log1p(np.exp(-(p[b].item() - n[b, s].item()))) for b in range(5) for s in range(4)])
    assert abs(triplet_hinge_loss(p, n, margin=0.7).item() - ref_h) < 1e-12
    assert abs(bpr_loss(p, n).item() - ref_b) < 1e-12
    with pytest.raises(ValueError, match="neg_scores"):
        triplet_hinge_loss(p, n[:3])
    with pytest.raises(ValueError, match="pos_scores"):
        bpr_loss(p.clone().fill_(float("nan")), n)


def test_covariance_regularizer_matches_numpy():
    x = np.random.default_rng(0).normal(size=(9, 4))
    c = np.cov(x, rowvar=False, bias=True)
    ref = (np.linalg.norm(c) - (np.diag(c) ** 2).sum()) / 9
    assert abs(covariance_regularizer(torch.from_numpy(x)).item() - ref) < 1e-12
    loss = CMLLoss(margin=1.0, cov_weight=0.5)(torch.zeros(2), torch.zeros(2, 1), torch.from_numpy(x).float())
    assert abs(loss.item() - (1.0 + 0.5 * ref)) < 1e-5


def _make(name, n_users, n_items, **kw):
    """A registered backbone; LightGCN gets a random training graph (it propagates over one)."""
    if name == "lightgcn":
        import scipy.sparse as sp
        kw["train"] = sp.random(n_users, n_items, density=0.3, format="csr", random_state=0)
    return MODELS[name](n_users, n_items, **kw)


def _rows(model):
    """The user / item tables a model scores with (LightGCN: the propagated ones)."""
    if hasattr(model, "propagate"):
        return model.propagate()
    return model.user, model.item


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_full_scores_agree_with_pair_scores_and_naive_formula(name):
    g = torch.Generator().manual_seed(1)
    model = _make(name, 7, 11, dim=5, generator=g, dtype=torch.float64)
    users = torch.tensor([0, 3, 6, 3])
    full = model.score(users)
    assert full.shape == (4, 11)
    items = torch.tensor([[0, 10], [5, 5], [1, 2], [9, 0]])
    torch.testing.assert_close(model.score_pairs(users, items), full.gather(1, items))
    # the documented formula, one (user, item) pair at a time in Python floats (float64)
    # (keyed by class: several registry names may share one model class)
    pair_score = {MF: lambda u, v: sum(a * b for a, b in zip(u, v)),
                  CML: lambda u, v: -sum((a - b) ** 2 for a, b in zip(u, v)),
                  SFCML: lambda u, v: 2.0 * sum(a * b for a, b in zip(u, v)),
                  # DPCML: a user row holds C vectors of length d; the nearest one scores
                  DPCML: lambda u, v: -min(sum((a - b) ** 2 for a, b in zip(u[c:c + len(v)], v))
                                           for c in range(0, len(u), len(v)))}
    pair_score[LightGCN] = pair_score[MF]   # the inner product, on the propagated rows
    pair_score = pair_score[type(model)]
    user_rows, item_rows = _rows(model)
    naive = [[pair_score(user_rows[u].tolist(), item_rows[i].tolist()) for i in range(11)] for u in users.tolist()]
    torch.testing.assert_close(full, torch.tensor(naive, dtype=torch.float64), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="`users`"):
        model.score(torch.tensor([7]))


def test_constraints_project_after_a_step():
    g = torch.Generator().manual_seed(2)
    ball, sphere, sf = CML(4, 6, dim=3, generator=g), CML(4, 6, dim=3, constraint="sphere", generator=g), SFCML(4, 6, dim=3, generator=g)
    for m in (ball, sphere, sf):
        with torch.no_grad():
            m.user.mul_(5.0)
            m.item.mul_(0.01)
        m.constrain_()
    assert torch.allclose(ball.user.norm(dim=1), torch.ones(4))
    assert bool((ball.item.norm(dim=1) < 0.1).all())           # inside the ball: untouched
    for m in (sphere, sf):
        assert torch.allclose(m.item.norm(dim=1), torch.ones(6)) and torch.allclose(m.user.norm(dim=1), torch.ones(4))
    with pytest.raises(ValueError, match="constraint"):
        CML(2, 2, constraint="cube")
    mf = MF(2, 3, dim=2)
    p_u, q = mf.user[1].tolist(), mf.item.tolist()
    ref = [[sum(a * b for a, b in zip(p_u, q_i)) for q_i in q]]   # <p_u, q_i> per pair, Python floats
    # float32 model: relative float32 rounding only (scores are ~1e-4, so no absolute slack)
    torch.testing.assert_close(mf.score(torch.tensor([1])).double(), torch.tensor(ref, dtype=torch.float64),
                               rtol=1e-5, atol=0.0)


@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_sfcml_squared_complement_default_equals_explicit_and_triplets(offset):
    """Default negatives (the complement, never materialised) = explicit ``~pos`` = naive triplets."""
    scores, pos = random_case(17, b=9, m=31)
    pos[3] = True                                     # a user with no negative: excluded
    scores = scores + offset
    a = scores.clone().requires_grad_(True)
    got = sfcml_loss(a, pos, margin=1.0)
    got.backward()
    e = scores.clone().requires_grad_(True)
    explicit = sfcml_loss(e, pos, margin=1.0, neg_mask=~pos)
    explicit.backward()
    b = scores.clone().requires_grad_(True)
    ref = naive_triplet_mean(b, pos, ~pos, 1.0, "squared")
    ref.backward()
    for value, grad in ((got, a.grad), (explicit, e.grad)):
        assert abs(value.item() - ref.item()) <= 1e-10 * abs(ref.item())
        torch.testing.assert_close(grad, b.grad, rtol=1e-10, atol=1e-13)
    assert a.grad[0].abs().max().item() == 0.0 and a.grad[3].abs().max().item() == 0.0


@pytest.mark.parametrize("name", sorted(MODELS))
def test_embedding_gradients_are_bitwise_reproducible_with_repeated_ids(name):
    """Repeated ids in a batch must accumulate in a fixed order: plain ``table[ids]`` backward
    (a parallel index_put on CPU) summed them in a varying order and two same-seed runs drifted."""
    model = _make(name, 50, 1682, dim=100, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    users, items = torch.randint(0, 50, (256,), generator=g), torch.randint(0, 1682, (256, 11), generator=g)
    weights = torch.randn(256, 11, generator=g)

    def grads():
        model.zero_grad(set_to_none=True)
        (model.score_pairs(users, items) * weights).sum().backward()
        return model.user.grad.clone(), model.item.grad.clone()
    first = grads()
    for _ in range(10):
        again = grads()
        assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
