"""InfoNCE / AdvInfoNCE losses, the LightGCN backbone and the adversarial objective (issue #11).

References here are written independently of the implementation: plain exp/log formulas and a
dense (n_users + n_items)² adjacency.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from rankguard.functional import adv_info_nce_loss, info_nce_loss, kl_to_uniform
from rankguard.losses import AdvInfoNCELoss, InfoNCELoss
from rankguard.recsys.contrastive import AdversarialPairObjective, adversarial_epochs
from rankguard.recsys.data import Interactions
from rankguard.recsys.lightgcn import LightGCN
from rankguard.recsys.recipes import make_config
from rankguard.recsys.splits import ratio_split
from rankguard.recsys.trainer import build_model, train
from rankguard.training import FitSettings, fit

D = torch.float64


def _brute_info_nce(pos, neg, tau):
    num = torch.exp(pos / tau)
    return (-torch.log(num / (num + torch.exp(neg / tau).sum(1)))).mean()


def _brute_adv(pos, neg, h, tau, k):
    p = torch.exp(h) / torch.exp(h).sum(1, keepdim=True)
    num = torch.exp(pos / tau)
    den = num + k * neg.shape[1] * (p * torch.exp(neg / tau)).sum(1)
    return (-torch.log(num / den)).mean()


def _rel(a, b):
    return float(((a - b).abs().max() / b.abs().max().clamp(min=1e-300)).detach())


@pytest.mark.parametrize("seed", range(5))
def test_info_nce_value_and_gradient_match_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    b, n = 1 + seed * 3, 1 + seed * 4
    pos = torch.randn(b, generator=g, dtype=D, requires_grad=True)
    neg = torch.randn(b, n, generator=g, dtype=D, requires_grad=True)
    tau = 0.3 + 0.4 * seed
    ours = info_nce_loss(pos, neg, tau)
    ref = _brute_info_nce(pos, neg, tau)
    assert _rel(ours, ref) <= 1e-6
    g_ours = torch.autograd.grad(ours, (pos, neg))
    g_ref = torch.autograd.grad(ref, (pos, neg))
    for a, r in zip(g_ours, g_ref):
        assert _rel(a, r) <= 1e-6


@pytest.mark.parametrize("seed", range(5))
def test_adv_info_nce_value_and_gradient_match_brute_force(seed):
    g = torch.Generator().manual_seed(100 + seed)
    b, n = 2 + seed, 3 + 2 * seed
    pos = torch.randn(b, generator=g, dtype=D, requires_grad=True)
    neg = torch.randn(b, n, generator=g, dtype=D, requires_grad=True)
    h = (2 * torch.randn(b, n, generator=g, dtype=D)).requires_grad_(True)
    tau, k = 0.5 + 0.2 * seed, [1.0, 64.0, 3.5, 0.25, 10.0][seed]
    ours = adv_info_nce_loss(pos, neg, h, tau, k)
    ref = _brute_adv(pos, neg, h, tau, k)
    assert _rel(ours, ref) <= 1e-6
    for a, r in zip(torch.autograd.grad(ours, (pos, neg, h)), torch.autograd.grad(ref, (pos, neg, h))):
        assert _rel(a, r) <= 1e-6


def test_uniform_hardness_and_unit_mass_is_exactly_info_nce():
    g = torch.Generator().manual_seed(7)
    pos, neg = torch.randn(16, generator=g, dtype=D), torch.randn(16, 9, generator=g, dtype=D)
    for const in (0.0, 3.0):   # any constant logit row is uniform p = 1/N
        h = torch.full((16, 9), const, dtype=D)
        a = adv_info_nce_loss(pos, neg, h, 0.75, 1.0, reduction="none")
        b = info_nce_loss(pos, neg, 0.75, reduction="none")
        assert torch.allclose(a, b, rtol=1e-12, atol=0)
    # k scales the negative mass: k = 2 is InfoNCE with every negative duplicated
    a = adv_info_nce_loss(pos, neg, torch.zeros(16, 9, dtype=D), 0.75, 2.0)
    assert torch.allclose(a, info_nce_loss(pos, torch.cat([neg, neg], 1), 0.75), rtol=1e-12)
    assert not torch.allclose(a, info_nce_loss(pos, neg, 0.75))


def test_losses_are_stable_for_large_scores_and_check_inputs():
    pos, neg = torch.tensor([1000.0, -1000.0]), torch.tensor([[999.0, -5.0], [1000.0, 0.0]])
    for v in (info_nce_loss(pos, neg, 0.01), adv_info_nce_loss(pos, neg, torch.tensor([[500.0, -500.0]] * 2), 0.01)):
        assert torch.isfinite(v)
    with pytest.raises(ValueError, match="temperature"):
        InfoNCELoss(temperature=0.0)
    with pytest.raises(ValueError, match="k_neg"):
        AdvInfoNCELoss(k_neg=-1.0)
    with pytest.raises(ValueError, match="hardness"):
        adv_info_nce_loss(pos, neg, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="neg_scores"):
        info_nce_loss(pos, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="finite"):
        info_nce_loss(torch.tensor([float("nan"), 0.0]), neg)


def test_kl_to_uniform():
    h = torch.tensor([[0.0, 0.0], [np.log(3.0), 0.0]], dtype=D)   # p = (1/2, 1/2), (3/4, 1/4)
    ref = torch.tensor([0.0, 0.75 * np.log(1.5) + 0.25 * np.log(0.5)], dtype=D)
    assert torch.allclose(kl_to_uniform(h), ref, rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------------------------------ LightGCN

def _dense_lightgcn(r: np.ndarray, users: torch.Tensor, items: torch.Tensor, layers: int):
    nu, ni = r.shape
    a = torch.zeros(nu + ni, nu + ni, dtype=D)
    a[:nu, nu:] = torch.as_tensor(r, dtype=D)
    a[nu:, :nu] = torch.as_tensor(r.T, dtype=D)
    deg = a.sum(1)
    inv = torch.where(deg > 0, deg.clamp(min=1e-300) ** -0.5, torch.zeros_like(deg))
    a_hat = inv[:, None] * a * inv[None, :]
    e = torch.cat([users, items])
    out, cur = e.clone(), e
    for _ in range(layers):
        cur = a_hat @ cur
        out = out + cur
    out = out / (layers + 1)
    return out[:nu], out[nu:]


@pytest.mark.parametrize("layers", [0, 1, 3])
def test_lightgcn_propagation_equals_dense_reference(layers):
    rng = np.random.default_rng(layers)
    r = (rng.random((9, 11)) < 0.3).astype(np.float64)
    r[2] = 0.0           # an isolated user
    r[:, 5] = 0.0        # an isolated item
    m = LightGCN(9, 11, dim=4, layers=layers, train=sp.csr_matrix(r), generator=torch.Generator().manual_seed(0),
                 dtype=D)
    pu, pi = m.propagate()
    ru, ri = _dense_lightgcn(r, m.user, m.item, layers)
    assert _rel(pu, ru) <= 1e-12 and _rel(pi, ri) <= 1e-12
    # gradients through the graph equal the dense reference's
    w = torch.randn(9, 4, dtype=D, generator=torch.Generator().manual_seed(1))
    g_ours = torch.autograd.grad((pu * w).sum() + pi.pow(2).sum(), (m.user, m.item))
    ru, ri = _dense_lightgcn(r, m.user, m.item, layers)
    g_ref = torch.autograd.grad((ru * w).sum() + ri.pow(2).sum(), (m.user, m.item))
    for a, b in zip(g_ours, g_ref):
        assert _rel(a, b) <= 1e-10
    scores = m.score(torch.arange(9))
    assert torch.allclose(scores, ru @ ri.T, rtol=1e-12)
    pair = m.score_pairs(torch.tensor([0, 4]), torch.tensor([[1, 2], [10, 0]]))
    assert torch.allclose(pair, torch.stack([(ru[0] * ri[[1, 2]]).sum(1), (ru[4] * ri[[10, 0]]).sum(1)]), rtol=1e-12)


def test_lightgcn_cache_follows_parameter_changes():
    r = sp.csr_matrix((np.random.default_rng(0).random((6, 7)) < 0.4).astype(np.float32))
    m = LightGCN(6, 7, dim=3, train=r, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = m.score(torch.arange(6)).clone()
        assert m._cache is not None
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    m.score_pairs(torch.arange(6), torch.zeros(6, 1, dtype=torch.long)).sum().backward()
    opt.step()
    with torch.no_grad():
        after = m.score(torch.arange(6))
    assert not torch.allclose(before, after)
    m2 = LightGCN(6, 7, dim=3, train=r, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        m2.score(torch.arange(6))
        m2.load_state_dict(m.state_dict())
        assert torch.allclose(m2.score(torch.arange(6)), after)
    with pytest.raises(RuntimeError, match="training graph"):
        LightGCN(6, 7, dim=3).score(torch.arange(2))
    with pytest.raises(ValueError, match="train"):
        LightGCN(6, 7, dim=3, train=sp.csr_matrix((5, 7)))


def test_cosine_similarity_scores_are_cosines():
    r = sp.csr_matrix(np.eye(4, 5, dtype=np.float32))
    cfg = make_config("lightgcn", similarity="cosine", dim=3)
    m = build_model(cfg, 4, 5, torch.Generator().manual_seed(0), train=r)
    pu, pi = m.propagate()
    ref = torch.nn.functional.normalize(pu, dim=1) @ torch.nn.functional.normalize(pi, dim=1).T
    assert torch.allclose(m.score(torch.arange(4)), ref, atol=1e-6)


# ------------------------------------------------------------------------------------ adversary

def test_adversarial_schedule_matches_the_authors_rule():
    for interval, passes in ((15, 20), (5, 7), (3, 2), (1, 4)):
        authors = [e0 + 1 for e0 in range(400) if (e0 + 3) % interval == 0 and e0 > 0][:passes]
        assert adversarial_epochs(400, interval, passes) == authors
    assert adversarial_epochs(10, 15, 20) == []


def _toy_split(seed=0):
    m = (np.random.default_rng(seed).random((30, 40)) < 0.25).astype(np.float32)
    return ratio_split(Interactions(sp.csr_matrix(m)), seed=0)


def test_adversarial_pass_moves_only_the_hardness_and_the_main_pass_only_the_recommender():
    split = _toy_split()
    cfg = make_config("lightgcn", loss="advinfonce", epochs=2, n_negatives=6, batch_size=32, adv_interval=4,
                      adv_passes=1, eval_every=1)
    assert adversarial_epochs(2, 4, 1) == [2]
    from rankguard.recsys.objectives import build_objective
    from rankguard.training import OptimizerSpec

    g = torch.Generator().manual_seed(0)
    model = build_model(cfg, split.n_users, split.n_items, g, train=split.train)
    objective, _ = build_objective(
        cfg.loss, cfg.sampler, split.train, np.random.default_rng(0), margin=1.0, batch_size=cfg.batch_size,
        n_negatives=cfg.n_negatives, temperature=cfg.temperature, k_neg=cfg.k_neg, embedding_reg=cfg.embedding_reg,
        adversary=dict(epochs=2, adv_interval=4, adv_passes=1, adv_lr=0.05, adv_reg=1e-5, adv_dim=8, generator=g))
    assert isinstance(objective, AdversarialPairObjective)
    optimizers = objective.optimizer_groups(OptimizerSpec(model.parameters(), "adam", 0.05))

    def snapshot():
        return ([p.detach().clone() for p in model.parameters()],
                [p.detach().clone() for p in objective.hardness.parameters()])

    log = []
    state = {"prev": snapshot(), "epoch": 1}

    class Watch:
        def after_step(self, m, step):
            now = snapshot()
            moved = lambda a, b: any(not torch.equal(x, y) for x, y in zip(a, b))  # noqa: E731
            log.append((state["epoch"], step, moved(state["prev"][0], now[0]), moved(state["prev"][1], now[1])))
            state["prev"] = now

        def on_epoch_end(self, m, epoch):
            state["epoch"] = epoch + 1

    fit(model, objective, FitSettings(epochs=2, eval_every=1), optimizers=optimizers, hooks=[Watch()], log=None)
    n_adv = objective.adversarial_steps(2)
    assert n_adv == objective.n_batches >= 2 and objective.adversarial_steps(1) == 0
    epoch1 = [r for r in log if r[0] == 1]
    epoch2 = [r for r in log if r[0] == 2]
    assert len(epoch1) == n_adv and len(epoch2) == 2 * n_adv
    assert all(rec and not hard for _, _, rec, hard in epoch1)
    assert all(hard and not rec for _, s, rec, hard in epoch2 if s < n_adv)
    assert all(rec and not hard for _, s, rec, hard in epoch2 if s >= n_adv)


def test_adversary_ascends_its_objective():
    split = _toy_split(1)
    from rankguard.recsys.objectives import build_objective

    g = torch.Generator().manual_seed(0)
    cfg = make_config("mf", loss="advinfonce", n_negatives=8, batch_size=1000)
    model = build_model(cfg, split.n_users, split.n_items, g)
    objective, _ = build_objective(
        "advinfonce", "unis", split.train, np.random.default_rng(0), margin=1.0, batch_size=1000, n_negatives=8,
        adversary=dict(epochs=30, adv_interval=1, adv_passes=29, adv_lr=0.05, adv_reg=0.0, adv_dim=8, generator=g))
    from rankguard.training import OptimizerSpec
    optimizers = objective.optimizer_groups(OptimizerSpec(model.parameters(), "adam", 1e-9))
    result = fit(model, objective, FitSettings(epochs=30), optimizers=optimizers, log=None)
    kl = [h["kl"] for h in result.history]
    assert kl[-1] > 3 * kl[0]   # p moved away from uniform, towards the hard negatives
    state = objective.state_dict()
    other = AdversarialPairObjective.__new__(AdversarialPairObjective)
    other.hardness = type(objective.hardness)(split.n_users, split.n_items, dim=8)
    other.load_state_dict(state)
    assert torch.equal(other.hardness.user, objective.hardness.user)


def test_train_runs_every_backbone_loss_pair_and_writes_recall(tmp_path):
    split = _toy_split(2)
    for model, loss in (("mf", "bpr"), ("lightgcn", "bpr"), ("mf", "infonce"), ("lightgcn", "advinfonce")):
        extra = dict(adv_interval=2, adv_passes=1) if loss == "advinfonce" else {}
        cfg = make_config(model, loss=loss, epochs=3, eval_every=1, n_negatives=4, batch_size=64, protocol="standard",
                          **extra)
        out = tmp_path / f"{model}-{loss}"
        r = train(cfg, split, out=out, diagnostics=False, log=None)
        import json
        metrics = json.loads((out / "metrics.json").read_text())
        assert 0.0 <= metrics["Recall@20"] <= 1.0 and "NDCG@20" in metrics
        assert r.best_epoch >= 1


def test_config_checks_for_the_new_flags():
    c = make_config("mf", loss="infonce")
    assert (c.similarity, c.n_negatives, c.temperature, c.optimizer) == ("cosine", 64, 0.75, "adam")
    assert make_config("lightgcn", "coat").protocol == "standard"
    with pytest.raises(ValueError, match="--adv-lr applies to --loss advinfonce"):
        make_config("mf", loss="infonce", adv_lr=0.1)
    with pytest.raises(ValueError, match="--layers applies to --model lightgcn"):
        make_config("mf", layers=3)
    with pytest.raises(ValueError, match="--similarity cosine applies"):
        make_config("cml", similarity="cosine")
    with pytest.raises(ValueError, match="temperature"):
        make_config("mf", loss="infonce", temperature=0.0)
    with pytest.raises(ValueError, match="--sampler unis"):
        split = _toy_split()
        from rankguard.recsys.objectives import build_objective
        build_objective("advinfonce", "hars", split.train, np.random.default_rng(0), margin=1.0, batch_size=8,
                        n_negatives=4, adversary=dict(epochs=1, adv_interval=1, adv_passes=1, adv_lr=0.1, adv_reg=0.0,
                                                      adv_dim=2))


def test_bench_contrastive_cf_quick_writes_tables(tmp_path, monkeypatch):
    from rankguard.data import available
    if not available("coat"):
        pytest.skip("dataset 'coat' not available (set RANKGUARD_DATA)")
    import json
    from rankguard.bench import contrastive_cf
    assert contrastive_cf.main(["--quick", "--datasets", "coat", "--seeds", "0", "--out", str(tmp_path),
                                "--cache", str(tmp_path / "cache")]) == 0
    payload = json.loads((tmp_path / "contrastive_cf_quick.json").read_text())
    assert {(r["backbone"], r["loss"]) for r in payload["rows"]} == {
        (b, l) for b in ("mf", "lightgcn") for l in ("bpr", "infonce", "advinfonce")}
    for r in payload["rows"]:
        run = r["per_seed"][0]
        assert 0.0 <= run["shifted"]["Recall@20"] <= 1.0 and 0.0 <= run["iid"]["NDCG@20"] <= 1.0
    md = (tmp_path / "contrastive_cf_quick.md").read_text()
    assert "shifted Recall@20" in md and "AdvInfoNCE vs InfoNCE" in md
    # finished runs are read back, not re-run: a second call trains nothing and gives the same numbers
    assert contrastive_cf.main(["--quick", "--datasets", "coat", "--seeds", "0", "--out", str(tmp_path),
                                "--cache", str(tmp_path / "cache")]) == 0
    again = json.loads((tmp_path / "contrastive_cf_quick.json").read_text())
    assert [r["per_seed"] for r in again["rows"]] == [r["per_seed"] for r in payload["rows"]]


def test_bench_seed_runs_are_reused_only_for_the_same_config(tmp_path):
    import json
    from rankguard.bench.contrastive_cf import run_seed
    split = _toy_split(3)
    cfg = make_config("mf", loss="infonce", epochs=2, eval_every=1, n_negatives=4, batch_size=64, protocol="standard",
                      seed=1)
    first = run_seed(cfg, split, tmp_path / "seed1", log=None)
    again = run_seed(cfg, split, tmp_path / "seed1", log=None)          # read back, not re-run
    assert again == first
    losses = [h["loss"] for h in json.loads((tmp_path / "seed1" / "history.json").read_text())]
    other = run_seed(make_config("mf", loss="infonce", epochs=2, eval_every=1, n_negatives=4, batch_size=64,
                                 protocol="standard", seed=1, lr=0.05), split, tmp_path / "seed1", log=None)
    assert json.loads((tmp_path / "seed1" / "config.json").read_text())["lr"] == 0.05
    retrained = [h["loss"] for h in json.loads((tmp_path / "seed1" / "history.json").read_text())]
    assert retrained != losses and other["run_dir"] == first["run_dir"]   # the folder was retrained, not read back
