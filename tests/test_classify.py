"""`rankguard classify`: noise injection, the split, the run directory, --config replay and exact --resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rankguard.classify.data import load_split
from rankguard.classify.noise import inject_noise, parse_noise
from rankguard.classify.recipes import ClassifyConfig
from rankguard.classify.suspects import ranking_quality
from rankguard.classify.trainer import topk_accuracy, train
from rankguard.cli import main
from rankguard.training import RunInterrupted, load_checkpoint


def test_uniform_noise_picks_another_class_at_rate():
    y = np.repeat(np.arange(5), 2000)
    out = inject_noise(y, 5, parse_noise("uniform:0.4"), np.random.default_rng(0))
    assert abs(out.rate - 0.4) < 0.02                       # realised flip rate = η (other classes only)
    off = out.matrix[~np.eye(5, dtype=bool)].reshape(5, 4)
    assert off.min() > 0.8 * off.mean()                     # spread evenly over the other classes
    assert out.matrix.sum(axis=1).tolist() == [2000] * 5
    again = inject_noise(y, 5, parse_noise("uniform:0.4"), np.random.default_rng(0))
    assert np.array_equal(out.labels, again.labels)         # seeded


def test_pairflip_and_none():
    y = np.repeat(np.arange(3), 100)
    out = inject_noise(y, 3, parse_noise("pairflip:0.3"), np.random.default_rng(1))
    assert np.all(out.labels[out.flipped] == (y[out.flipped] + 1) % 3)
    assert out.matrix[0, 2] == out.matrix[1, 0] == out.matrix[2, 1] == 0
    assert inject_noise(y, 3, parse_noise("none"), np.random.default_rng(1)).flipped.size == 0
    for bad in ("uniform", "uniform:1.0", "flip:0.2", "pairflip:x"):
        with pytest.raises(ValueError, match="--noise"):
            parse_noise(bad)


def test_split_keeps_test_labels_clean_and_folds_partition():
    from sklearn.datasets import load_digits

    y_all = load_digits().target
    tests = []
    for fold in range(3):
        s = load_split("digits", "uniform:0.6", fold=fold, folds=3, noise_seed=4)
        assert np.array_equal(s.y_test, y_all[s.test_rows])          # never corrupted
        assert np.array_equal(s.y_train_clean, y_all[s.train_rows])
        assert 0.5 < np.mean(s.y_train != s.y_train_clean) < 0.7
        assert not set(s.train_rows) & set(s.test_rows) and not set(s.val_rows) & set(s.test_rows)
        tests.append(s.test_rows)
    assert sorted(np.concatenate(tests).tolist()) == list(range(y_all.size))   # folds = a partition


def test_topk_and_ranking_quality():
    z = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    assert topk_accuracy(z, torch.tensor([0, 0]), (1, 2, 3)) == {"top1_accuracy": 0.5, "top2_accuracy": 0.5,
                                                                 "top3_accuracy": 1.0}
    q = ranking_quality({"loss": np.array([0.1, 5.0, 4.0, 0.2])}, np.array([False, True, False, False]))
    assert q["loss"]["precision_at_n"] == 1.0 and q["loss"]["auroc"] == 1.0


def test_cli_run_dir_replay_and_errors(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["classify", "train", "--dataset", "digits", "--loss", "ldr-kl", "--noise", "pairflip:0.3",
                 "--epochs", "2", "--lam", "5", "--out", str(out)]) == 0
    for name in ("metrics.json", "config.json", "noise.json", "curves.png", "confusion_matrix.png",
                 "suspected_labels.csv", "report.md", "checkpoint.pt"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 < metrics["top1_accuracy"] <= metrics["top5_accuracy"] <= 1
    assert set(metrics["suspected_labels"]["rankings"]) == {"loss", "signed_confidence", "combined"}
    noise = json.loads((out / "noise.json").read_text())
    assert noise["n_flipped"] == len(noise["train_flipped"]) + len(noise["val_flipped"]) > 0
    config = json.loads((out / "config.json").read_text())
    assert config["loss_options"] == {"lam": 5.0} and config["noise"] == "pairflip:0.3"
    csv = (out / "suspected_labels.csv").read_text().splitlines()
    assert csv[0].startswith("rank_combined,rank_loss") and len(csv) == 1 + metrics["n_train"]
    assert main(["classify", "train", "--config", str(out / "config.json"), "--out", str(tmp_path / "again")]) == 0
    assert json.loads((tmp_path / "again" / "metrics.json").read_text())["top1_accuracy"] == metrics["top1_accuracy"]
    capsys.readouterr()
    assert main(["classify", "train", "--dataset", "digits", "--loss", "ce", "--gamma", "1", "--out",
                 str(tmp_path / "x")]) == 1
    assert "--gamma does not apply to --loss ce" in capsys.readouterr().err
    assert main(["classify", "train", "--resume", str(out), "--epochs", "3"]) == 1
    assert "--resume takes no other training flag" in capsys.readouterr().err


def test_resume_equals_uninterrupted_with_aldr_state(tmp_path):
    config = ClassifyConfig(dataset="digits", loss="aldr-kl", noise="uniform:0.4", epochs=3, hidden=[32])
    whole = train(config, out=tmp_path / "whole", log=None)

    def stop_at_epoch_2(msg: str) -> None:
        if msg.startswith("epoch 2:"):
            raise KeyboardInterrupt
    with pytest.raises(RunInterrupted, match="--resume"):
        train(config, out=tmp_path / "cut", log=stop_at_epoch_2)
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["epoch"] == 1
    resumed = train(config, out=tmp_path / "cut", mode="resume", log=None)
    assert resumed.resumed_from == 2
    assert torch.equal(resumed.loss_fn.lam, whole.loss_fn.lam) and bool((whole.loss_fn.lam < 10).any())
    a, b = (load_checkpoint(tmp_path / d / "checkpoint.pt") for d in ("whole", "cut"))
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert torch.equal(a["objective"]["lam"], b["objective"]["lam"])
    assert resumed.metrics["top1_accuracy"] == whole.metrics["top1_accuracy"]


@pytest.mark.parametrize("flag,value", [("--lr", "0"), ("--patience", "-1"), ("--momentum", "-0.5"),
                                        ("--epochs", "0"), ("--weight-decay", "-1")])
def test_bad_numbers_are_one_line_errors_naming_the_flag_and_write_nothing(tmp_path, capsys, flag, value):
    out = tmp_path / "run"
    assert main(["classify", "train", "--dataset", "digits", "--loss", "ce", flag, value, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flag in err, err
    assert not out.exists()
