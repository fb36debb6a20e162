"""Smoke and contract tests of ``rankguard demo`` (tiny settings; the real demo is a benchmark)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rankguard.demo as demo
from rankguard.cli import main
from rankguard.demo import DemoConfig, load_task, run_demo, stratified_split

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _auc_pairs(s: np.ndarray, y: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    return float(((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean())


def _ap_brute(s: np.ndarray, y: np.ndarray) -> float:
    # mean over positives of the precision among everything scored at least as high
    return float(np.mean([(y[s >= v] == 1).mean() for v in s[y == 1]]))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    import io
    from contextlib import redirect_stdout
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = main(["demo", "--quick", "--out", str(out)])
    return code, buf.getvalue(), out


def test_quick_demo_writes_the_whole_run_directory(quick_run):
    code, stdout, out = quick_run
    assert code == 0
    assert {p.name for p in out.iterdir()} >= {"config.json", "metrics.json", "predictions.npz", "report.md",
                                               "pr_curve.png", "roc_curve.png"}
    assert f"run directory: {out}" in stdout and "| BCE |" in stdout and "| APLoss |" in stdout
    for png in ("pr_curve.png", "roc_curve.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC
    cfg = DemoConfig.from_dict(json.loads((out / "config.json").read_text()))
    assert cfg == DemoConfig.quick()
    report = (out / "report.md").read_text()
    assert "How to read it" in report and "| digits_imbalanced |" in report and "Failed runs" not in report


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
        assert 0.0 <= r["auc"] <= 1.0 and 0.0 <= r["ap"] <= 1.0
        assert len(r["train_loss"]) == cfg.epochs and all(np.isfinite(r["train_loss"]))
        s = preds[f"{r['dataset']}/{r['loss']}/seed{r['seed']}"]
        y = preds[f"{r['dataset']}/labels"]
        assert s.shape == y.shape == (metrics["datasets"][r["dataset"]]["n_test"],)
        assert r["auc"] == pytest.approx(_auc_pairs(s, y), rel=1e-9)
        assert r["ap"] == pytest.approx(_ap_brute(s, y), rel=1e-9)
    for d in cfg.datasets:
        assert preds[f"{d}/labels"].mean() == pytest.approx(metrics["datasets"][d]["test_positive_rate"])
        for loss in cfg.losses:
            entry = metrics["summary"][d][loss]
            for m in ("auc", "ap"):
                vals = [r[m] for r in runs if r["dataset"] == d and r["loss"] == loss]
                assert entry[f"{m}_mean"] == pytest.approx(np.mean(vals), rel=1e-12)
                assert entry[f"{m}_std"] == pytest.approx(np.std(vals, ddof=1), rel=1e-9, abs=1e-15)
                assert 0.0 <= entry[f"{m}_mean"] <= 1.0


def test_a_failing_run_is_recorded_and_the_others_continue(tmp_path, monkeypatch, capsys):
    real = demo.make_loss

    def flaky(name, cfg, num_samples):
        if name == "auc":
            raise ValueError("simulated breakage")
        return real(name, cfg, num_samples)
    monkeypatch.setattr(demo, "make_loss", flaky)
    code = main(["demo", "--quick", "--datasets", "breast_cancer", "--epochs", "1", "--seeds", "1",
                 "--out", str(tmp_path)])
    assert code == 1
    assert "1 run(s) failed" in capsys.readouterr().err
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    by_loss = {r["loss"]: r for r in metrics["runs"]}
    assert by_loss["auc"]["error"] == "ValueError: simulated breakage"
    assert "auc" in by_loss["bce"] and "ap" in by_loss["ap"]
    assert metrics["summary"]["breast_cancer"]["auc"] == {"n_ok": 0, "n_failed": 1, "auc_mean": None,
                                                          "auc_std": None, "ap_mean": None, "ap_std": None}
    report = (tmp_path / "report.md").read_text()
    assert "simulated breakage" in report and "failed" in report


def test_config_is_written_before_anything_can_crash(tmp_path, monkeypatch):
    def crash(name, cfg):
        raise KeyboardInterrupt
    monkeypatch.setattr(demo, "load_task", crash)
    with pytest.raises(KeyboardInterrupt):
        run_demo(DemoConfig.quick(), tmp_path)
    assert DemoConfig.from_dict(json.loads((tmp_path / "config.json").read_text())) == DemoConfig.quick()


def test_same_seed_gives_the_same_predictions(tmp_path):
    cfg = DemoConfig.quick(datasets=("breast_cancer",), losses=("bce",), seeds=(3,), epochs=1)
    a = np.load(run_demo(cfg, tmp_path / "a").out_dir / "predictions.npz")
    b = np.load(run_demo(cfg, tmp_path / "b").out_dir / "predictions.npz")
    np.testing.assert_array_equal(a["breast_cancer/bce/seed3"], b["breast_cancer/bce/seed3"])


@pytest.mark.parametrize("argv,match", [
    (["--datasets", "mnist"], "datasets"),
    (["--losses", "bce,focal"], "losses"),
    (["--seeds", "0"], "--seeds"),
    (["--epochs", "0"], "epochs"),
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
    assert "--seeds" in text and "--quick" in text and "--out" in text


def test_split_is_stratified_disjoint_and_complete():
    rng = np.random.default_rng(0)
    y = rng.random(1000) < 0.07
    train, test = stratified_split(y, 0.3, rng)
    assert np.intersect1d(train, test).size == 0 and np.union1d(train, test).size == y.size
    assert abs(y[test].sum() - round(0.3 * y.sum())) == 0
    assert abs(test.size - 300) <= 1


def test_digits_task_is_imbalanced_and_standardised():
    cfg = DemoConfig.quick()
    task = load_task("digits_imbalanced", cfg)
    rate = float(task.y_test.mean())
    assert 0.04 <= rate <= 0.06 and float(task.y_train.mean()) == pytest.approx(rate, abs=0.01)
    mean, std = task.x_train.mean(0), task.x_train.std(0)
    assert float(mean.abs().max()) < 1e-4
    assert bool(((std - 1).abs() < 1e-2).logical_or(std == 0).all())
    assert bool(task.x_test.isfinite().all())
