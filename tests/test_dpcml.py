"""DPCML: min-over-vectors scoring and the diversity regulariser against Python-loop references;
C = 1 reproduces CML and SFCML through ``train()`` bit for bit; APA/BPA; ragged masking; the CLI.

"Exactly equal" below means ``torch.equal`` on every parameter after training, ``==`` on every
test metric and on every epoch's training loss: the same init draws (users first, then items,
from the run's generator), the same arithmetic per score, the same sampler draws, the same steps.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from rankguard.cli import main
from rankguard.functional import diversity_penalty, multi_vector_scores, nearest_vector, vector_diversity
from rankguard.recsys.data import Interactions
from rankguard.recsys.dpcml import DPCML, vector_counts, vector_usage
from rankguard.recsys.evaluator import Evaluator
from rankguard.recsys.splits import ratio_split
from rankguard.recsys.trainer import METRIC_KEYS, build_model, make_config, score_fn_of, train

REL = 1e-6


def _rel_close(got, ref):
    got, ref = torch.as_tensor(got, dtype=torch.float64), torch.as_tensor(ref, dtype=torch.float64)
    err = (got - ref).abs().max().item() if got.numel() else 0.0
    assert err <= REL * max(1.0, ref.abs().max().item()), err


# ------------------------------------------------------------------ independent references (Python loops)

def ref_scores(g, items, active, metric, per_user_items):
    """s[b][k] = max over active c of −Σ_e (g[b,c,e] − v[e])² (or 2 Σ g v), one scalar op at a time."""
    out = []
    for b in range(g.shape[0]):
        row = []
        item_list = items[b] if per_user_items else items
        for k in range(item_list.shape[0]):
            best = None
            for c in range(g.shape[1]):
                if not active[b][c]:
                    continue
                if metric == "inner":
                    s = 2.0 * sum(g[b, c, e] * item_list[k, e] for e in range(g.shape[2]))
                else:
                    s = -sum((g[b, c, e] - item_list[k, e]) ** 2 for e in range(g.shape[2]))
                best = s if best is None or s > best else best
            row.append(best)
        out.append(torch.stack(row))
    return torch.stack(out)


def ref_delta(g, active, b):
    cs = [c for c in range(g.shape[1]) if active[b][c]]
    n = len(cs)
    total = sum(sum((g[b, c1, e] - g[b, c2, e]) ** 2 for e in range(g.shape[2])) for c1 in cs for c2 in cs if c1 != c2)
    return total / (2 * n * (n - 1))


def ref_penalty(g, active, d1, d2, form):
    terms = []
    for b in range(g.shape[0]):
        cs = [c for c in range(g.shape[1]) if active[b][c]]
        if form == "paper":
            if len(cs) < 2:
                continue
            delta = ref_delta(g, active, b)
            terms.append(torch.relu(d1 - delta) + torch.relu(delta - d2))
        else:
            c_all = g.shape[1]
            s = 0.0
            for c1 in cs:
                for c2 in cs:
                    if c1 != c2:
                        q = sum((g[b, c1, e] - g[b, c2, e]) ** 2 for e in range(g.shape[2]))
                        s = s + torch.relu(d1 - q) + torch.relu(q - d2)
            terms.append(s / (c_all * c_all) if torch.is_tensor(s) else torch.tensor(0.0, dtype=torch.float64))
    return torch.stack(terms).mean() if terms else torch.tensor(0.0, dtype=torch.float64)


def _case(seed, b=4, c=3, d=4, n=6, k=5):
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(b, c, d, generator=gen, dtype=torch.float64)
    items = torch.randn(n, d, generator=gen, dtype=torch.float64)
    pair_items = torch.randn(b, k, d, generator=gen, dtype=torch.float64)
    active = torch.tensor([[True, True, True], [True, False, False], [True, True, False], [True, True, True]])
    return g, items, pair_items, active


@pytest.mark.parametrize("metric", ["distance", "inner"])
@pytest.mark.parametrize("per_user_items", [False, True])
def test_min_over_vectors_scores_match_loops_in_value_and_gradient(metric, per_user_items):
    g0, items0, pair_items0, active = _case(0)
    it0 = pair_items0 if per_user_items else items0
    weights = torch.randn(g0.shape[0], it0.shape[-2], generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    g, it = g0.clone().requires_grad_(True), it0.clone().requires_grad_(True)
    got = multi_vector_scores(g, it, active, metric)
    (got * weights).sum().backward()
    gr, ir = g0.clone().requires_grad_(True), it0.clone().requires_grad_(True)
    ref = ref_scores(gr, ir, active.tolist(), metric, per_user_items)
    (ref * weights).sum().backward()
    _rel_close(got.detach(), ref.detach())
    _rel_close(g.grad, gr.grad)
    _rel_close(it.grad, ir.grad)
    assert bool((g.grad[1, 1:] == 0).all())          # inactive vectors get no gradient
    with torch.no_grad():                             # the evaluation path (no index kept): the same values
        assert torch.equal(multi_vector_scores(g0, it0, active, metric), got.detach())
    # nearest_vector = the argmax the reference picks
    near = nearest_vector(g0, it0, active, metric)
    per = [[max((c for c in range(3) if active[b, c]),
                key=lambda c: float(ref_scores(g0[b:b + 1, c:c + 1], it0[b:b + 1] if per_user_items else it0,
                                               [[True]], metric, per_user_items)[0, k]))
            for k in range(it0.shape[-2])] for b in range(g0.shape[0])]
    assert near.tolist() == per


@pytest.mark.parametrize("form", ["paper", "pairs"])
@pytest.mark.parametrize("band", [(0.0, 0.1), (0.5, 2.0), (3.0, 8.0), (1.0, 1.0)])
def test_diversity_regulariser_matches_loops_in_value_and_gradient(form, band):
    g0, _, _, active = _case(1)
    g = g0.clone().requires_grad_(True)
    got = diversity_penalty(g, *band, active=active, form=form)
    got.backward()
    gr = g0.clone().requires_grad_(True)
    ref = ref_penalty(gr, active.tolist(), *band, form)
    ref.backward()
    _rel_close(got.detach(), ref.detach())
    _rel_close(g.grad, gr.grad)
    delta = vector_diversity(g0, active)
    _rel_close(delta[[0, 2, 3]], torch.stack([ref_delta(g0, active.tolist(), b) for b in (0, 2, 3)]))
    assert float(delta[1]) == 0.0                     # C_u = 1: no diversity, not in the paper mean


def test_regulariser_inputs_are_checked():
    g = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match="delta1"):
        diversity_penalty(g, 0.5, 0.1)
    with pytest.raises(ValueError, match="`active`"):
        multi_vector_scores(g, torch.zeros(5, 4), torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="`item_vectors`"):
        multi_vector_scores(g, torch.zeros(5, 3))


def test_vector_count_rule_is_floor_log2_capped():
    n = np.arange(0, 300)
    expected = [min(5, max(1, int(k).bit_length() - 1)) if k > 0 else 1 for k in n]
    assert vector_counts("log2", 5, n).tolist() == expected
    assert vector_counts("fixed", 4, n).tolist() == [4] * n.size


def test_ragged_masking_a_user_with_one_vector_never_uses_vector_two():
    m = DPCML(3, 4, dim=2, vectors=3, vector_counts=[1, 3, 2], constraint="ball", diversity=(10.0, 0.5, 1.0),
              generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        m.user[0, 2:4] = m.item[1]                    # vector 2 of user 0 sits on item 1
    users, items = torch.tensor([0, 0]), torch.tensor([[1, 0], [2, 3]])
    v0 = m.user[0, :2]
    expected = -((v0[None] - m.item) ** 2).sum(-1)
    torch.testing.assert_close(m.score(torch.tensor([0]))[0], expected, rtol=0, atol=1e-15)
    assert m.nearest_vector(users, items).tolist() == [[0, 0], [0, 0]]
    m.user.grad = None
    (m.score_pairs(users, items).sum() + m.regularizer(torch.tensor([0, 1]))).backward()
    assert bool((m.user.grad[0, 2:] == 0).all())      # inactive vectors: no score, no regulariser gradient
    assert float(m.regularizer(torch.tensor([0])).detach()) == 0.0   # C_u = 1 only: nothing to diversify


@pytest.mark.parametrize("pairs", [True, False])
@pytest.mark.parametrize("counts", [[3, 1, 2, 3, 2], [1, 1, 1, 1, 1]])
def test_one_lookup_scores_and_regulariser_match_loops_on_distinct_users(pairs, counts):
    """The objectives' ``scores_with_regularizer``: one gather of a batch with repeated users gives the
    loop scores and η·(mean ψ over the DISTINCT users with C_u ≥ 2), values and gradients (float64)."""
    eta, d1, d2 = 7.0, 0.4, 0.9
    m = DPCML(5, 6, dim=3, vectors=3, vector_counts=counts, constraint="ball", diversity=(eta, d1, d2),
              generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    users = torch.tensor([0, 2, 0, 4, 1, 0, 2])
    items = torch.tensor([[1, 0], [2, 3], [5, 5], [0, 4], [3, 1], [2, 2], [4, 0]]) if pairs else None
    w = torch.randn(users.numel(), 2 if pairs else 6, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    s, reg = m.scores_with_regularizer(users, items)
    ((s * w).sum() + reg).backward()
    table = m.user.detach().clone().requires_grad_(True)
    item_table = m.item.detach().clone().requires_grad_(True)
    active = [[c < counts[u] for c in range(3)] for u in users.tolist()]
    g = table.view(5, 3, 3)[users]
    targets = item_table[items] if pairs else item_table
    ref_s = ref_scores(g, targets, active, "distance", per_user_items=pairs)
    distinct = sorted(set(users.tolist()))
    ref_reg = eta * ref_penalty(table.view(5, 3, 3)[distinct], [[c < counts[u] for c in range(3)] for u in distinct],
                                d1, d2, "paper")
    ((ref_s * w).sum() + ref_reg).backward()
    _rel_close(s.detach(), ref_s.detach())
    _rel_close(reg.detach(), ref_reg.detach())
    _rel_close(m.user.grad, table.grad)
    _rel_close(m.item.grad, item_table.grad)
    if max(counts) == 1:
        assert float(reg) == 0.0


# ------------------------------------------------------------------ training equalities through train()

def clustered(n_users=40, n_items=50, n_groups=4, seed=0, p_in=0.8):
    rng = np.random.default_rng(seed)
    ug, ig = rng.integers(n_groups, size=n_users), np.arange(n_items) % n_groups
    dense = rng.random((n_users, n_items)) < np.where(ug[:, None] == ig[None, :], p_in, 0.05)
    dense[np.arange(n_users), ug] = True
    return dense


def _split(seed=1, **kw):
    return ratio_split(Interactions(sp.csr_matrix(clustered(**kw).astype(np.float32))), seed=seed)


def _assert_same_run(a, b):
    for (name, p), (name_b, q) in zip(a.model.named_parameters(), b.model.named_parameters()):
        assert name == name_b and torch.equal(p, q), name
    assert a.test_metrics.keys() == b.test_metrics.keys()
    for k in a.test_metrics:
        assert a.test_metrics[k] == b.test_metrics[k] or (math.isnan(a.test_metrics[k]) and math.isnan(b.test_metrics[k])), k
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert a.best_epoch == b.best_epoch


_SHARED = dict(dim=8, epochs=3, eval_every=1, batch_size=64, patience=0)


@pytest.mark.parametrize("sampler", ["unis", "hars"])
def test_one_vector_no_diversity_ball_constraint_equals_cml_bit_for_bit(sampler):
    split = _split()
    cml = make_config("cml", sampler=sampler, **_SHARED)
    dp = make_config("dpcml", sampler=sampler, vectors=1, diversity=(0.0, 0.0, 0.0), constraint="ball",
                     optimizer=cml.optimizer, lr=cml.lr, weight_decay=cml.weight_decay,
                     select_metric=cml.select_metric, **_SHARED)
    a = train(cml, split, diagnostics=False, log=None)
    b = train(dp, split, diagnostics=False, log=None)
    _assert_same_run(a, b)
    assert b.diagnostics["vector_usage"]["counts"] == {"1": b.diagnostics["vector_usage"]["users"]}


def test_one_vector_sphere_all_pairs_squared_equals_sfcml_bit_for_bit():
    split = _split()
    sf = make_config("sfcml", **_SHARED)
    dp = make_config("dpcml", loss="squared", vectors=1, constraint="sphere", optimizer=sf.optimizer, lr=sf.lr,
                     weight_decay=sf.weight_decay, select_metric=sf.select_metric, margin=sf.margin, **_SHARED)
    assert dp.sampler == "all"                        # --loss squared implies every pair
    _assert_same_run(train(sf, split, diagnostics=False, log=None), train(dp, split, diagnostics=False, log=None))


def test_apa_with_every_user_at_the_cap_equals_bpa():
    split = _split(p_in=1.0, n_groups=2)               # every user has >= 8 training items
    counts = np.diff(sp.csr_matrix(split.train).indptr)
    assert counts.min() >= 8
    kw = dict(vectors=3, diversity=(10.0, 0.05, 0.25), **_SHARED)
    bpa = train(make_config("dpcml", vector_rule="fixed", **kw), split, diagnostics=False, log=None)
    apa = train(make_config("dpcml", vector_rule="log2", **kw), split, diagnostics=False, log=None)
    assert apa.model.user_vector_counts.tolist() == [3] * split.n_users
    _assert_same_run(bpa, apa)
    assert all("reg" in h for h in bpa.history) and bpa.history[0]["reg"] > 0   # the regulariser is logged


def test_log2_rule_gives_ragged_counts_and_the_usage_statistics_match_a_loop():
    split = _split()
    cfg = make_config("dpcml", vector_rule="log2", vectors=4, **_SHARED)
    model = build_model(cfg, split.n_users, split.n_items, torch.Generator().manual_seed(0), train=split.train)
    counts = model.user_vector_counts.numpy()
    assert counts.tolist() == vector_counts("log2", 4, np.diff(sp.csr_matrix(split.train).indptr)).tolist()
    assert len(set(counts.tolist())) > 1
    usage = vector_usage(model, split.test, chunk=7)
    test = sp.csr_matrix(split.test)
    used = []
    for u in range(split.n_users):
        items = test.indices[test.indptr[u]:test.indptr[u + 1]]
        if items.size == 0:
            continue
        g = model.user[u].view(4, -1)[:counts[u]].detach()
        near = {int(torch.argmin(((g - model.item[i].detach()) ** 2).sum(-1))) for i in items}
        used.append(len(near))
    assert usage["users"] == len(used) and usage["mean"] == pytest.approx(np.mean(used), rel=1e-12)
    assert usage["counts"] == {str(k): used.count(k) for k in range(1, 5)}


def test_inactive_apa_vectors_stay_exactly_zero_through_training():
    """Held at 0, unused vectors never drift into float32 denormals (which slowed CPU epochs ~2x)."""
    split = _split()
    cfg = make_config("dpcml-sf", vector_rule="log2", vectors=4, dim=8, epochs=3, eval_every=3,
                      weight_decay=1e-3, batch_size=16)
    model = train(cfg, split, diagnostics=False, log=None).model
    counts = model.user_vector_counts
    assert bool((counts < 4).any())
    vectors = model.user.detach().view(split.n_users, 4, 8)
    inactive = torch.arange(4)[None, :] >= counts[:, None]
    assert bool((vectors[inactive] == 0).all())
    assert bool((vectors[~inactive].norm(dim=-1) - 1).abs().max() < 1e-5)   # active ones stay on the sphere


@pytest.mark.parametrize("user_vectors", ["free", "projected"])
def test_evaluator_block_sizes_give_the_same_metrics(user_vectors):
    split = _split()
    cfg = make_config("dpcml", vectors=3, user_vectors=user_vectors, **_SHARED)
    model = build_model(cfg, split.n_users, split.n_items, torch.Generator().manual_seed(0), train=split.train)
    users = torch.arange(split.n_users)
    whole = model.score(users)
    for b in (1, 7):   # a user's scores do not depend on the block it is scored in, up to BLAS rounding:
        # the [B·C, d] @ [d, N] product's kernel (and so its last bit) depends on B on some CPUs
        # (AMD EPYC, torch 2.13: 1 ulp apart for B = 1, 3, 7 against B = 21), for free and projected vectors
        blocked = torch.cat([model.score(users[i:i + b]) for i in range(0, split.n_users, b)])
        torch.testing.assert_close(blocked, whole, rtol=1e-6, atol=1e-6)
    results = [Evaluator(split, protocol="authors", block_size=b).evaluate(score_fn_of(model), "test")
               for b in (1, 7, 1024)]
    for r in results[1:]:   # the evaluator's own per-block sums may differ in the last bit
        for k in METRIC_KEYS:
            assert r[k] == pytest.approx(results[0][k], rel=1e-12, nan_ok=True), k


def test_projected_user_vectors_follow_the_constraint_and_train():
    m = DPCML(5, 6, dim=4, vectors=3, user_vectors="projected", generator=torch.Generator().manual_seed(0))
    g = m.user_vectors(torch.arange(5))
    torch.testing.assert_close(g.norm(dim=-1), torch.ones(5, 3))
    assert {n for n, _ in m.named_parameters()} == {"user", "item", "projections"}
    r = train(make_config("dpcml", user_vectors="projected", vectors=2, **_SHARED), _split(), diagnostics=False, log=None)
    assert set(METRIC_KEYS) <= set(r.test_metrics)


# ------------------------------------------------------------------ CLI

def _users_dat(tmp_path, seed=3):
    f = tmp_path / "users.dat"
    dense = clustered(n_users=40, n_items=50, seed=seed)
    f.write_text("\n".join(" ".join(map(str, [row.sum(), *np.flatnonzero(row)])) for row in dense) + "\n")
    return f


def test_cli_dpcml_hars_writes_the_same_run_files_and_keys_as_other_models(tmp_path, capsys):
    data = _users_dat(tmp_path)
    common = ["recsys", "train", "--dataset", str(data), "--epochs", "2", "--dim", "8", "--eval-every", "1"]
    assert main([*common, "--model", "dpcml", "--vectors", "5", "--sampler", "hars", "--out", str(tmp_path / "d")]) == 0
    assert main([*common, "--model", "cml", "--out", str(tmp_path / "c")]) == 0
    d, c = tmp_path / "d", tmp_path / "c"
    assert sorted(p.name for p in d.iterdir()) == sorted(p.name for p in c.iterdir())
    assert json.loads((d / "metrics.json").read_text()).keys() == json.loads((c / "metrics.json").read_text()).keys()
    config = json.loads((d / "config.json").read_text())
    assert (config["backbone"], config["vectors"], config["sampler"], config["diversity"]) == \
        ("dpcml", 5, "hars", [10.0, 0.05, 0.25])
    report = (d / "report.md").read_text()
    assert "User-vector usage" in report and "Effective sample size" in report
    assert "User-vector usage" not in (c / "report.md").read_text()
    # the config alone replays it; evaluate reloads the model (counts from the checkpoint)
    assert main(["recsys", "train", "--config", str(d / "config.json"), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "metrics.json").read_bytes() == (d / "metrics.json").read_bytes()
    capsys.readouterr()
    assert main(["recsys", "evaluate", str(d)]) == 0
    metrics = json.loads((d / "metrics.json").read_text())
    assert f"{100 * metrics['AUC']:.2f}" in capsys.readouterr().out
    assert main([*common, "--epochs", "1", "--model", "dpcml", "--vector-rule", "log2", "--user-vectors", "projected",
                 "--diversity", "20,0.1,0.5", "--diversity-form", "pairs", "--out", str(tmp_path / "p")]) == 0
    capsys.readouterr()
    assert main(["recsys", "evaluate", str(tmp_path / "p")]) == 0


@pytest.mark.parametrize("flags,named", [
    (["--model", "dpcml", "--vectors", "0"], "--vectors"),
    (["--model", "dpcml", "--diversity", "10,0.1"], "--diversity"),
    (["--model", "dpcml", "--diversity", "10,0.5,0.1"], "--diversity"),
    (["--model", "dpcml", "--diversity", "-1,0,0.1"], "--diversity"),
    (["--model", "dpcml", "--vector-rule", "sqrt"], "--vector-rule"),
    (["--model", "dpcml", "--user-vectors", "shared"], "--user-vectors"),
    (["--model", "cml", "--vectors", "3"], "--vectors"),
    (["--model", "sfcml", "--diversity", "10,0,1"], "--diversity"),
    (["--model", "cml", "--constraint", "user-sphere"], "--constraint"),
    (["--model", "dpcml", "--cov-weight", "0.1"], "--cov-weight"),
])
def test_bad_flags_give_one_line_errors_naming_the_flag(tmp_path, capsys, flags, named):
    data = _users_dat(tmp_path)
    try:   # argparse rejects malformed values (exit 2); the config rejects bad combinations (rc 1)
        rc = main(["recsys", "train", "--dataset", str(data), *flags, "--epochs", "1", "--out", str(tmp_path / "x")])
    except SystemExit as exc:
        rc = exc.code
    assert rc in (1, 2)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err, err
    assert not (tmp_path / "x" / "metrics.json").exists()
