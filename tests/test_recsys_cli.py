"""Trainer and ``rankguard recsys`` CLI on tiny synthetic data (no real data needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from rankguard.cli import main
from rankguard.recsys.data import Interactions
from rankguard.recsys.evaluator import Evaluator
from rankguard.recsys.splits import ratio_split
from rankguard.recsys.trainer import METRIC_KEYS, build_model, make_config, score_fn_of, train


def clustered(n_users=60, n_items=80, n_groups=4, seed=0):
    """Users of group g like mostly items of group g: a problem an embedding model can learn."""
    rng = np.random.default_rng(seed)
    ug, ig = rng.integers(n_groups, size=n_users), np.arange(n_items) % n_groups
    p = np.where(ug[:, None] == ig[None, :], 0.8, 0.03)
    dense = rng.random((n_users, n_items)) < p
    dense[np.arange(n_users), ug] = True
    return dense


def write_users_dat(path, dense):
    lines = [" ".join(map(str, [row.sum(), *np.flatnonzero(row)])) for row in dense]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("model,sampler", [("sfcml", None), ("cml", "unis"), ("cml", "hars"), ("mf-bpr", None)])
def test_training_improves_validation_metric(model, sampler):
    split = ratio_split(Interactions(sp.csr_matrix(clustered().astype(np.float32))), seed=1)
    extra = {"lr": 0.1} if model == "mf-bpr" else {}
    cfg = make_config(model, sampler=sampler, dim=16, epochs=12, eval_every=4, batch_size=64, patience=0,
                      select_metric="AUC", **extra)
    ev = Evaluator(split, protocol="authors")
    torch_gen = torch.Generator().manual_seed(cfg.seed)
    before = ev.evaluate(score_fn_of(build_model(cfg, split.n_users, split.n_items, torch_gen)), "val")["AUC"]
    result = train(cfg, split, diagnostics=False, log=None)
    assert result.best_val["AUC"] > before + 0.1, (before, result.best_val["AUC"])
    assert set(METRIC_KEYS) <= set(result.test_metrics)
    assert all(0.0 <= v <= 1.0 or np.isnan(v) for v in result.test_metrics.values())  # NaN: nobody qualifies


def test_cli_train_evaluate_round_trip_on_a_folder(tmp_path, capsys):
    dense = clustered(seed=3)
    data = tmp_path / "tiny-libcml"
    data.mkdir()
    write_users_dat(data / "users.dat", dense)
    split = ratio_split(Interactions(sp.csr_matrix(dense.astype(np.float32))), seed=5)
    for part in ("train", "val", "test"):
        sp.save_npz(data / f"{part}.npz", sp.coo_matrix(getattr(split, part)))
    out = tmp_path / "run"
    rc = main(["recsys", "train", "--dataset", str(data), "--model", "sfcml", "--epochs", "6", "--dim", "8",
               "--eval-every", "2", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    for name in ("config.json", "metrics.json", "checkpoint.pt", "report.md", "history.json"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(METRIC_KEYS) <= set(metrics)
    assert "Effective sample size" in (out / "report.md").read_text()
    assert main(["recsys", "evaluate", str(out)]) == 0
    again = capsys.readouterr().out
    # the table lines printed after training and after re-evaluation from the checkpoint agree
    assert printed.splitlines()[-2] == again.splitlines()[-1]
    assert f"{100 * metrics['AUC']:.2f}" in again
    assert metrics['Recall@20'] is None       # nobody has >= 20 test items: null, not a silent number


def test_cli_users_dat_path_is_ratio_split_and_errors_are_clear(tmp_path, capsys):
    f = tmp_path / "users.dat"
    write_users_dat(f, clustered(seed=4))
    out = tmp_path / "run"
    assert main(["recsys", "train", "--dataset", str(f), "--model", "cml", "--sampler", "pops", "--epochs", "2",
                 "--dim", "4", "--eval-every", "1", "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["method"] == "cml-pops" and cfg["dataset"] == str(f)
    capsys.readouterr()
    assert main(["recsys", "train", "--dataset", "no-such-data", "--model", "sfcml", "--out", str(out)]) == 1
    assert "no-such-data" in capsys.readouterr().err
    assert main(["recsys", "train", "--dataset", str(f), "--model", "sfcml", "--sampler", "hars",
                 "--out", str(out)]) == 1
    assert "--sampler applies to --model cml" in capsys.readouterr().err
    assert main(["recsys", "evaluate", str(tmp_path / "nothing")]) == 1
    assert "no checkpoint" in capsys.readouterr().err


def test_cli_on_the_authors_ml100k_split_writes_the_contract_keys(tmp_path, capsys):
    """Real data: a short SFCML run on ml-100k-libcml writes metrics.json with the issue's keys as
    fractions, learns something (test AUC well above chance), and `evaluate` reproduces the numbers."""
    from conftest import require_dataset

    require_dataset("ml-100k-libcml")
    out = tmp_path / "run"
    assert main(["recsys", "train", "--dataset", "ml-100k-libcml", "--model", "sfcml", "--epochs", "3",
                 "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("P@3", "R@3", "NDCG@3", "P@5", "R@5", "NDCG@5", "MAP", "MRR", "AUC", "Recall@20", "NDCG@20"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["AUC"] > 0.75
    config = json.loads((out / "config.json").read_text())
    assert config["protocol"] == "authors"  # the fixed split's own protocol is the default there
    capsys.readouterr()
    assert main(["recsys", "evaluate", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{100 * metrics['P@3']:.2f}" in printed
