"""Trainer and ``rankguard recsys`` CLI on tiny synthetic data (no real data needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from rankguard.cli import main
from rankguard.recsys.cli import load_split
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
    captured = capsys.readouterr()
    printed = captured.out
    # the convergence warning appears (stderr and report.md) exactly when the best epoch is the last evaluated one
    status = json.loads((out / "status.json").read_text())
    unconverged = status["best_epoch"] == 6
    assert ("may not have converged" in captured.err) == unconverged
    assert ("may not have converged" in (out / "report.md").read_text()) == unconverged
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
    assert main(["recsys", "train", "--dataset", "no-such-data", "--model", "sfcml", "--out", str(tmp_path / "r2")]) == 1
    assert "no-such-data" in capsys.readouterr().err
    assert main(["recsys", "train", "--dataset", str(f), "--model", "sfcml", "--sampler", "hars",
                 "--out", str(tmp_path / "r3")]) == 1
    assert "--loss squared runs over all pairs only" in capsys.readouterr().err
    assert main(["recsys", "evaluate", str(tmp_path / "nothing")]) == 1
    assert "no such run directory" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists()  # evaluate never creates folders


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


# --------------------------------------------------------------------------- runs: repeat, replay, resume

def _tiny_dataset(tmp_path, seed=3):
    f = tmp_path / "users.dat"
    write_users_dat(f, clustered(seed=seed))
    return f


def _train(*extra):
    return main(["recsys", "train", *map(str, extra)])


@pytest.mark.parametrize("recipe", [["--model", "sfcml", "--batch-size", "16"],
                                    ["--model", "cml", "--sampler", "hars", "--batch-size", "128"]])
def test_same_seed_gives_identical_metrics_and_config_alone_replays_the_run(tmp_path, recipe):
    data = _tiny_dataset(tmp_path)
    args = ["--dataset", data, *recipe, "--epochs", 4, "--dim", 8, "--eval-every", 2]
    assert _train(*args, "--out", tmp_path / "a") == 0
    assert _train(*args, "--out", tmp_path / "b") == 0
    a, b = ((tmp_path / d / "metrics.json").read_bytes() for d in "ab")
    assert a == b
    assert _train("--config", tmp_path / "a" / "config.json", "--out", tmp_path / "c") == 0  # no other flag
    assert (tmp_path / "c" / "metrics.json").read_bytes() == a
    # flags beside --config override it
    assert _train("--config", tmp_path / "a" / "config.json", "--epochs", 1, "--out", tmp_path / "d") == 0
    assert json.loads((tmp_path / "d" / "config.json").read_text())["epochs"] == 1


_KILLER = """
import os, signal, sys
from rankguard.recsys import objectives
kind, kill_at, sig = sys.argv[1], int(sys.argv[2]), getattr(signal, sys.argv[3])
# a job started in the background by a non-interactive shell inherits SIGINT ignored (Python then installs
# no KeyboardInterrupt handler); a terminal's Ctrl-C is what this test simulates, so restore Python's default
signal.signal(signal.SIGINT, signal.default_int_handler)
cls = getattr(objectives, kind)
original, calls = cls.loss, [0]
def loss(self, model, batch):
    calls[0] += 1
    if calls[0] == kill_at:
        os.kill(os.getpid(), sig)
    return original(self, model, batch)
cls.loss = loss
from rankguard.cli import main
from rankguard.recsys.cli import load_split
sys.exit(main(sys.argv[4:]))
"""


def _run_killed(tmp_path, kind, kill_at, sig, args):
    import os
    import subprocess
    import sys

    script = tmp_path / "killer.py"
    script.write_text(_KILLER)
    env = {**os.environ, "CI": "1"}
    return subprocess.run([sys.executable, str(script), kind, str(kill_at), sig, "recsys", "train",
                           *map(str, args)], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("recipe,kind,steps_per_epoch", [
    (["--model", "sfcml", "--batch-size", "16"], "AllPairsObjective", 4),
    (["--model", "cml", "--sampler", "hars", "--batch-size", "128"], "SampledPairObjective", None),
])
def test_sigkill_mid_epoch_then_resume_gives_the_same_metrics_bit_for_bit(tmp_path, recipe, kind, steps_per_epoch):
    data = _tiny_dataset(tmp_path)
    args = ["--dataset", data, *recipe, "--epochs", 5, "--dim", 8, "--eval-every", 2]
    assert _train(*args, "--out", tmp_path / "whole") == 0
    steps = steps_per_epoch or len(json.loads((tmp_path / "whole" / "history.json").read_text())) and None
    if steps is None:  # sampled objective: steps per epoch = ceil(training pairs / batch)
        cfg = json.loads((tmp_path / "whole" / "config.json").read_text())
        steps = -(-int(load_split(cfg["dataset"], cfg["split_seed"]).train.nnz) // 128)
    out = tmp_path / "killed"
    done = _run_killed(tmp_path, kind, 3 * steps + 2, "SIGKILL", [*args, "--out", out])
    assert done.returncode == -9, done.stderr
    assert json.loads((out / "status.json").read_text())["status"] == "running"
    assert not (out / "metrics.json").exists()          # an unfinished run has no metrics
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 3
    assert _train("--resume", out) == 0                  # no other flag needed
    assert (out / "metrics.json").read_bytes() == (tmp_path / "whole" / "metrics.json").read_bytes()
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(json.loads((out / "history.json").read_text())) == \
        strip(json.loads((tmp_path / "whole" / "history.json").read_text()))
    assert (out / "curves.png").stat().st_size > 0


def test_killed_before_the_first_checkpoint_restarts_from_epoch_one_and_finished_runs_say_so(tmp_path, capsys):
    data = _tiny_dataset(tmp_path)
    args = ["--dataset", data, "--model", "sfcml", "--batch-size", "16", "--epochs", 3, "--dim", 8]
    assert _train(*args, "--out", tmp_path / "whole") == 0
    out = tmp_path / "early"
    assert _run_killed(tmp_path, "AllPairsObjective", 2, "SIGKILL", [*args, "--out", out]).returncode == -9
    assert not (out / "checkpoint.pt").exists()
    assert _train("--resume", out) == 0
    assert (out / "metrics.json").read_bytes() == (tmp_path / "whole" / "metrics.json").read_bytes()
    capsys.readouterr()
    assert _train("--resume", out) == 0
    assert "already finished" in capsys.readouterr().out


def test_sigterm_and_ctrl_c_exit_with_one_line_and_keep_the_checkpoint(tmp_path):
    data = _tiny_dataset(tmp_path)
    args = ["--dataset", data, "--model", "sfcml", "--batch-size", "16", "--epochs", 4, "--dim", 8]
    for sig in ("SIGTERM", "SIGINT"):
        out = tmp_path / sig
        done = _run_killed(tmp_path, "AllPairsObjective", 4 * 2 + 1, sig, [*args, "--out", out])
        assert done.returncode == 130, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        want = "SIGTERM" if sig == "SIGTERM" else "Ctrl-C"
        assert f"interrupted by {want} during epoch 3" in lines[0] and f"--resume {out}" in lines[0]
        assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 2
        assert json.loads((out / "status.json").read_text())["status"] == "interrupted"
        assert _train("--resume", out) == 0


def test_run_folder_safety_overwrite_and_one_line_errors(tmp_path, capsys):
    data = _tiny_dataset(tmp_path)
    out = tmp_path / "run"
    args = ["--dataset", data, "--model", "sfcml", "--epochs", 1, "--dim", 4]
    assert _train(*args, "--out", out) == 0
    (out / "stray.txt").write_text("from the old run")
    capsys.readouterr()
    assert _train(*args, "--model", "cml", "--out", out) == 1       # an earlier run is never overwritten silently
    err = capsys.readouterr().err
    assert "holds an earlier run" in err and "--overwrite" in err and "--resume" in err
    assert json.loads((out / "config.json").read_text())["model"] == "sfcml"   # untouched
    assert _train("--dataset", data, "--model", "cml", "--epochs", 1, "--dim", 4, "--out", out, "--overwrite") == 0
    assert not (out / "stray.txt").exists() and json.loads((out / "config.json").read_text())["model"] == "cml"
    capsys.readouterr()
    for bad, needle in [(["--out", data], "is a file"), (["--patience", "-1", "--out", tmp_path / "x"], "--patience"),
                        (["--margin", "-0.5", "--out", tmp_path / "x"], "--margin"),
                        (["--lr", "0", "--out", tmp_path / "x"], "--lr"),
                        (["--min-delta", "-0.01", "--out", tmp_path / "x"], "--min-delta")]:
        assert _train(*args, *bad) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err
    with pytest.raises(SystemExit) as exc:
        _train(*args, "--margin", "nan", "--out", tmp_path / "x")
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--margin" in err
    (out / "checkpoint.pt").write_bytes(b"garbage")
    (out / "status.json").write_text('{"status": "running"}')
    assert _train("--resume", out) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unreadable checkpoint" in err and "checkpoint.pt" in err
    assert _train("--resume", out, "--lr", "0.1") == 1
    assert "--resume takes no other training flag" in capsys.readouterr().err


def test_run_files_respect_the_umask(tmp_path):
    import os

    from rankguard.runs import atomic_write_text

    old = os.umask(0o027)
    try:
        path = atomic_write_text(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o640


def test_divergence_names_the_learning_rate_not_internal_arguments(tmp_path, capsys):
    data = _tiny_dataset(tmp_path)
    out = tmp_path / "run"
    assert _train("--dataset", data, "--model", "mf-bpr", "--optimizer", "sgd", "--lr", "1e36", "--epochs", 2,
                  "--out", out) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "training diverged at epoch 1" in err and "--lr, now 1e+36" in err
    assert "pos_scores" not in err
    assert json.loads((out / "status.json").read_text())["status"] == "failed"
    assert not (out / "metrics.json").exists()


def test_dihars_flags_reach_the_sampler_and_bad_options_are_refused_before_training(tmp_path, capsys):
    data = _tiny_dataset(tmp_path)
    out = tmp_path / "run"
    assert _train("--dataset", data, "--model", "cml", "--sampler", "dihars", "--beta", "0.05", "--epochs", 1,
                  "--dim", 4, "--out", out) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["sampler_options"] == {"beta": 0.05} and cfg["n_negatives"] == 100   # DiHarS's own S default
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"tail_P@3", "tail_NDCG@3", "tail_R@20"} <= set(metrics)                # tail items beside overall
    assert "Tail items only" in (out / "report.md").read_text()
    # --config keeps the file's sampler options; a flag beside it overrides one
    assert _train("--config", out / "config.json", "--beta", "0.2", "--out", tmp_path / "again") == 0
    assert json.loads((tmp_path / "again" / "config.json").read_text())["sampler_options"] == {"beta": 0.2}
    capsys.readouterr()
    for bad, needle in [(["--sampler", "dihars", "--beta", "1.5"], "`beta` (--beta"),
                        (["--sampler", "hars", "--beta", "0.1"], "not accepted by hars"),
                        (["--sampler", "dihars", "--negatives", "10"], "--negatives")]:
        target = tmp_path / f"bad{len(bad)}{bad[1]}"
        assert _train("--dataset", data, "--model", "cml", *bad, "--epochs", 1, "--out", target) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err


def test_pair_repeats_holds_each_pair_n_times_an_epoch_and_is_refused_where_nothing_is_sampled(tmp_path, capsys):
    from rankguard.recsys.objectives import build_objective

    train_m = sp.csr_matrix(clustered(seed=3).astype(np.float32))
    for repeats in (1, 3):
        objective, _ = build_objective("hinge", "unis", train_m, np.random.default_rng(0), margin=1.0, batch_size=7,
                                       n_negatives=1, pair_repeats=repeats)
        seen = np.concatenate(list(objective.batches(1)))
        assert np.array_equal(np.bincount(seen, minlength=train_m.nnz), np.full(train_m.nnz, repeats))
    one, _ = build_objective("hinge", "unis", train_m, np.random.default_rng(5), margin=1.0, batch_size=7, n_negatives=1)
    same, _ = build_objective("hinge", "unis", train_m, np.random.default_rng(5), margin=1.0, batch_size=7,
                              n_negatives=1, pair_repeats=1)
    assert all(np.array_equal(a, b) for a, b in zip(one.batches(1), same.batches(1)))   # 1 = the old epoch, draw for draw
    data = _tiny_dataset(tmp_path)
    out = tmp_path / "run"
    assert _train("--dataset", data, "--model", "dpcml1", "--negatives", 1, "--pair-repeats", 4, "--epochs", 1,
                  "--dim", 4, "--vectors", 2, "--out", out) == 0
    assert json.loads((out / "config.json").read_text())["pair_repeats"] == 4
    capsys.readouterr()
    for bad, needle in [(["--model", "sfcml", "--pair-repeats", "2"], "--pair-repeats"),
                        (["--model", "cml", "--pair-repeats", "0"], "--pair-repeats must be an integer >= 1")]:
        assert _train("--dataset", data, *bad, "--epochs", 1, "--out", tmp_path / f"bad{bad[1]}") == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err


def test_convergence_warning_only_when_the_best_epoch_is_the_last_evaluation():
    from types import SimpleNamespace

    from rankguard.recsys.trainer import convergence_warning, make_config

    config = make_config("cml", "ml-100k-libcml", epochs=7)
    history = [{"epoch": 1}, {"epoch": 2, "val": {}}, {"epoch": 4, "val": {}}, {"epoch": 6, "val": {}}, {"epoch": 7}]
    assert convergence_warning(config, SimpleNamespace(history=history, best_epoch=4, stopped_early=False)) is None
    line = convergence_warning(config, SimpleNamespace(history=history, best_epoch=6, stopped_early=False))
    assert "epoch 6 of 7" in line and "P@3" in line and "--epochs" in line
    assert convergence_warning(config, SimpleNamespace(history=[{"epoch": 1}], best_epoch=0, stopped_early=False)) is None
    assert convergence_warning(config, SimpleNamespace(history=history, best_epoch=6, stopped_early=True)) is None


def test_min_delta_flag_reaches_early_stopping(tmp_path, capsys):
    """No gain can exceed 1.0 (metrics are fractions): with --patience 2 --min-delta 1 the run stops at the
    third evaluation whatever the validation curve does, and config.json records the setting."""
    data = _tiny_dataset(tmp_path)
    args = ["--dataset", data, "--model", "cml", "--epochs", 8, "--dim", 4, "--eval-every", 1, "--patience", 2]
    assert _train(*args, "--min-delta", 1, "--out", tmp_path / "a") == 0
    status = json.loads((tmp_path / "a" / "status.json").read_text())
    assert status["epochs_run"] == 3 and json.loads((tmp_path / "a" / "config.json").read_text())["min_delta"] == 1.0
    assert "may not have converged" not in capsys.readouterr().err    # stopped early: converged by the rule
