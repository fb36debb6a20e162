"""Smoke and contract tests of ``rankguard demo`` (tiny settings; the real demo is a benchmark)."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import numpy as np
import pytest
import torch

import rankguard.demo as demo
from rankguard.cli import main
from rankguard.demo import DemoConfig, load_task, run_demo, stratified_split, train_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# one cheap configuration for tests that only need a run directory
TINY = ["--quick", "--datasets", "breast_cancer", "--losses", "bce", "--seeds", "1", "--epochs", "1"]


def _auc_pairs(s: np.ndarray, y: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    return float(((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean())


def _ap_brute(s: np.ndarray, y: np.ndarray) -> float:
    # mean over positives of the precision among everything scored at least as high
    return float(np.mean([(y[s >= v] == 1).mean() for v in s[y == 1]]))


def _main(argv: list[str]) -> tuple[int, str]:
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = main(argv)
    return code, buf.getvalue()


def _without_timings(obj):
    """The metrics with wall-clock fields (which legitimately differ between runs) removed."""
    if isinstance(obj, dict):
        return {k: _without_timings(v) for k, v in obj.items() if k not in ("seconds", "traceback")}
    if isinstance(obj, list):
        return [_without_timings(v) for v in obj]
    return obj


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    code, stdout = _main(["demo", "--quick", "--out", str(out)])
    return code, stdout, out


def test_quick_demo_writes_the_whole_run_directory(quick_run):
    code, stdout, out = quick_run
    assert code == 0
    assert {p.name for p in out.iterdir()} >= {"config.json", "metrics.json", "predictions.npz", "report.md",
                                               "pr_curve.png", "roc_curve.png", "curves.png"}
    assert f"run directory: {out}" in stdout and "| BCE |" in stdout and "| APLoss |" in stdout
    assert "| lr 0.01, margin 0.6 |" in stdout  # the chosen setting is in the table
    for png in ("pr_curve.png", "roc_curve.png", "curves.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC
    cfg = DemoConfig.from_dict(json.loads((out / "config.json").read_text()))
    assert cfg == DemoConfig.quick()
    report = (out / "report.md").read_text()
    assert "How to read it" in report and "| digits_imbalanced |" in report and "Failed" not in report
    assert "sample std (ddof=1)" in report and "tuned on validation" in report
    assert "Tuning grid: lr ∈ {0.01} for every loss; AUCLoss margin ∈ {1}; APLoss margin ∈ {0.6}" in report


def test_metrics_are_in_range_and_match_the_saved_predictions(quick_run):
    _, _, out = quick_run
    cfg = DemoConfig.quick()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "complete"
    runs = metrics["runs"]
    assert len(runs) == len(cfg.datasets) * len(cfg.losses) * len(cfg.seeds)
    preds = np.load(out / "predictions.npz")
    for r in runs:
        assert "error" not in r, r
        assert 0.0 <= r["auc"] <= 1.0 and 0.0 <= r["ap"] <= 1.0 and 0.0 < r["val_ap"] <= 1.0
        assert len(r["train_loss"]) == cfg.epochs and all(np.isfinite(r["train_loss"]))
        assert 1 <= r["best_epoch"] <= cfg.epochs and r["lr"] == 0.01
        s = preds[f"{r['dataset']}/{r['loss']}/seed{r['seed']}"]
        y = preds[f"{r['dataset']}/labels"]
        assert s.shape == y.shape == (metrics["datasets"][r["dataset"]]["n_test"],)
        assert r["auc"] == pytest.approx(_auc_pairs(s, y), rel=1e-9)
        assert r["ap"] == pytest.approx(_ap_brute(s, y), rel=1e-9)
    for d in cfg.datasets:
        info = metrics["datasets"][d]
        assert preds[f"{d}/labels"].mean() == pytest.approx(info["test_positive_rate"])
        assert info["n_val"] > 0 and info["val_positives"] > 0
        for loss in cfg.losses:
            entry = metrics["summary"][d][loss]
            for m in ("auc", "ap"):
                vals = [r[m] for r in runs if r["dataset"] == d and r["loss"] == loss]
                assert entry[f"{m}_mean"] == pytest.approx(np.mean(vals), rel=1e-12)
                assert entry[f"{m}_std"] == pytest.approx(np.std(vals, ddof=1), rel=1e-9, abs=1e-15)
                assert 0.0 <= entry[f"{m}_mean"] <= 1.0


def test_tuning_chooses_the_best_mean_validation_ap_and_tests_only_that_setting(tmp_path):
    cfg = DemoConfig.quick(datasets=("digits_imbalanced",), losses=("bce", "ap"), lrs=(1e-3, 1e-1),
                           ap=demo.APLossSettings(margins=(0.3, 1.0)))
    metrics = run_demo(cfg, tmp_path / "run").metrics
    task = load_task("digits_imbalanced", cfg)
    from rankguard.metrics import average_precision
    for loss in cfg.losses:
        tuning = metrics["tuning"]["digits_imbalanced"][loss]
        trials = tuning["trials"]
        assert [t["setting"] for t in trials] == cfg.grid(loss) and len(trials) == (2 if loss == "bce" else 4)
        means = [t["val_ap_mean"] for t in trials]
        for t in trials:
            assert t["val_ap_mean"] == pytest.approx(np.mean(list(t["val_ap"].values())), rel=1e-12)
        assert len(set(means)) == len(means), "tied validation scores would make this test vacuous"
        assert tuning["chosen"] == trials[int(np.argmax(means))]["setting"]
        runs = [r for r in metrics["runs"] if r["loss"] == loss]
        assert [r["seed"] for r in runs] == list(cfg.seeds)
        chosen = trials[int(np.argmax(means))]
        for r in runs:
            assert {k: r[k] for k in tuning["chosen"]} == tuning["chosen"]
            assert r["val_ap"] == chosen["val_ap"][str(r["seed"])]
            # retrain independently: the recorded validation AP is the model's AP on the validation
            # split, and the test AP is measured on the same (best-epoch) model
            model, result = train_run(task, loss, tuning["chosen"], r["seed"], cfg)
            with torch.no_grad():
                val_scores = model(task.x_val)[:, 0].double().numpy()
                test_scores = model(task.x_test)[:, 0].double().numpy()
            assert average_precision(val_scores, task.y_val.numpy()) == r["val_ap"]
            assert average_precision(test_scores, task.y_test.numpy()) == r["ap"]
            assert result.best_epoch == r["best_epoch"]


def test_two_runs_of_one_config_give_identical_metrics(tmp_path):
    cfg = DemoConfig.quick(lrs=(1e-2, 3e-2))
    a = run_demo(cfg, tmp_path / "a").metrics
    b = run_demo(cfg, tmp_path / "b").metrics
    assert _without_timings(a) == _without_timings(b)  # exact equality, floats included
    pa, pb = np.load(tmp_path / "a" / "predictions.npz"), np.load(tmp_path / "b" / "predictions.npz")
    assert sorted(pa.files) == sorted(pb.files)
    for key in pa.files:
        np.testing.assert_array_equal(pa[key], pb[key])


def test_the_demo_leaves_global_random_state_alone(tmp_path):
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    run_demo(DemoConfig.quick(datasets=("breast_cancer",), seeds=(0,), epochs=1), tmp_path)
    assert torch.equal(torch_state, torch.get_rng_state())
    after = np.random.get_state()
    assert np_state[0] == after[0] and np.array_equal(np_state[1], after[1]) and np_state[2:] == after[2:]


def test_a_failing_run_is_recorded_and_the_others_continue(tmp_path, monkeypatch, capsys):
    real = demo.make_loss

    def flaky(name, cfg, num_samples, margin=None):
        if name == "auc":
            raise ValueError("simulated breakage")
        return real(name, cfg, num_samples, margin)
    monkeypatch.setattr(demo, "make_loss", flaky)
    code = main(["demo", "--quick", "--datasets", "breast_cancer", "--epochs", "1", "--seeds", "1",
                 "--out", str(tmp_path)])
    assert code == 1
    assert "1 run(s) failed" in capsys.readouterr().err
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    by_loss = {r["loss"]: r for r in metrics["runs"]}
    assert "simulated breakage" in by_loss["auc"]["error"]
    assert metrics["tuning"]["breast_cancer"]["auc"]["trials"][0]["errors"] == {"0": "ValueError: simulated breakage"}
    assert metrics["tuning"]["breast_cancer"]["auc"]["chosen"] is None
    assert "auc" in by_loss["bce"] and "ap" in by_loss["ap"]
    assert metrics["summary"]["breast_cancer"]["auc"] == {"n_ok": 0, "n_failed": 1, "auc_mean": None,
                                                          "auc_std": None, "ap_mean": None, "ap_std": None}
    report = (tmp_path / "report.md").read_text()
    assert "simulated breakage" in report and "Failed runs" in report


def test_a_diverging_setting_is_not_chosen(tmp_path, monkeypatch):
    real = demo.train_run

    def diverges_at_high_lr(task, loss, setting, seed, cfg):
        if setting["lr"] > 0.05:
            from rankguard.training import TrainingDiverged
            raise TrainingDiverged("training diverged at epoch 1, step 1: the loss became nan")
        return real(task, loss, setting, seed, cfg)
    monkeypatch.setattr(demo, "train_run", diverges_at_high_lr)
    cfg = DemoConfig.quick(datasets=("breast_cancer",), losses=("bce",), lrs=(0.1, 0.01))
    res = run_demo(cfg, tmp_path)
    tuning = res.metrics["tuning"]["breast_cancer"]["bce"]
    assert tuning["chosen"] == {"lr": 0.01} and res.n_failed == 0
    assert set(tuning["trials"][0]["errors"]) == {"0", "1"}
    assert "Failed tuning runs" in (tmp_path / "report.md").read_text()


def test_config_is_written_before_anything_can_crash(tmp_path, monkeypatch):
    def crash(name, cfg):
        raise KeyboardInterrupt
    monkeypatch.setattr(demo, "load_task", crash)
    with pytest.raises(KeyboardInterrupt):
        run_demo(DemoConfig.quick(), tmp_path)
    assert DemoConfig.from_dict(json.loads((tmp_path / "config.json").read_text())) == DemoConfig.quick()


def test_an_earlier_run_is_refused_unless_overwrite_is_passed(tmp_path, capsys):
    out = tmp_path / "run"
    assert _main(["demo", *TINY, "--out", str(out)])[0] == 0
    (out / "stale.txt").write_text("from the earlier run")
    assert _main(["demo", *TINY, "--out", str(out)])[0] == 1
    assert "--overwrite" in capsys.readouterr().err and (out / "stale.txt").exists()
    assert _main(["demo", *TINY, "--out", str(out), "--overwrite"])[0] == 0
    assert not (out / "stale.txt").exists() and (out / "report.md").exists()


def test_default_config_survives_its_json(tmp_path):
    from rankguard.runs import write_json
    cfg = DemoConfig()
    write_json(tmp_path / "c.json", cfg)
    assert DemoConfig.from_dict(json.loads((tmp_path / "c.json").read_text())) == cfg
    assert len(cfg.grid("bce")) == len(cfg.lrs) and len(cfg.grid("auc")) == len(cfg.lrs) * len(cfg.auc.margins)


@pytest.mark.parametrize("argv,match", [
    (["--datasets", "mnist"], "datasets"),
    (["--datasets", "nope"], "datasets"),
    (["--losses", "bce,focal"], "losses"),
    (["--seeds", "0"], "--seeds"),
    (["--epochs", "0"], "epochs"),
    (["--lr", "0"], "lrs"),
])
def test_bad_options_fail_with_a_message_naming_them(tmp_path, capsys, argv, match):
    assert main(["demo", "--quick", "--out", str(tmp_path / "x"), *argv]) == 1
    assert match in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_help_describes_the_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert all(flag in text for flag in ("--seeds", "--quick", "--out", "--overwrite", "--lr"))


def test_split_is_stratified_disjoint_and_complete():
    rng = np.random.default_rng(0)
    y = rng.random(1000) < 0.07
    train, val, test = stratified_split(y, 0.2, 0.2, rng)
    parts = np.concatenate([train, val, test])
    assert np.unique(parts).size == parts.size == y.size
    for part in (val, test):
        assert y[part].sum() == round(0.2 * y.sum()) and abs(part.size - 200) <= 1
        assert np.all(np.diff(part) > 0)


def test_digits_task_comes_from_the_registry_imbalanced_and_standardised():
    from rankguard.data import load_digits_imbalanced
    cfg = DemoConfig.quick()
    task = load_task("digits_imbalanced", cfg)
    info = task.summary()
    full = load_digits_imbalanced(rng=np.random.default_rng(cfg.split_seed))
    assert info["n_train"] + info["n_val"] + info["n_test"] == full.y.size
    assert info["train_positives"] + info["val_positives"] + info["test_positives"] == int(full.y.sum())
    rate = float(task.y_test.mean())
    assert 0.04 <= rate <= 0.06 and float(task.y_val.mean()) == pytest.approx(rate, abs=0.01)
    mean, std = task.x_train.mean(0), task.x_train.std(0)
    assert float(mean.abs().max()) < 1e-4
    assert bool(((std - 1).abs() < 1e-2).logical_or(std == 0).all())
    assert bool(task.x_val.isfinite().all()) and bool(task.x_test.isfinite().all())


def test_model_initialisation_follows_the_seed_generator_only():
    cfg = DemoConfig.quick()
    before = torch.get_rng_state()
    a = demo.make_model(cfg, 5, torch.Generator().manual_seed(1))
    b = demo.make_model(cfg, 5, torch.Generator().manual_seed(1))
    c = demo.make_model(cfg, 5, torch.Generator().manual_seed(2))
    assert torch.equal(before, torch.get_rng_state())
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a[0].weight, c[0].weight)
