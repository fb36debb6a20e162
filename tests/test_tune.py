"""``rankguard recsys tune``: selection on validation only, a replayable best config, resumable grids."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from rankguard.cli import main
from rankguard.recsys.data import Interactions
from rankguard.recsys.recipes import make_config
from rankguard.recsys.splits import ratio_split
from rankguard.recsys.tune import grid_points, parse_grid, tune
from test_recsys_cli import clustered, write_users_dat

TUNE = ["--model", "cml", "--epochs", "3", "--dim", "8", "--eval-every", "1", "--batch-size", "128",
        "--select-metric", "AUC", "--grid", "lr=0.01,0.2", "margin=0.5,1"]


@pytest.fixture()
def dataset(tmp_path):
    f = tmp_path / "users.dat"
    write_users_dat(f, clustered(seed=4))
    return f


def _tune(dataset, out, *extra):
    return main(["recsys", "tune", "--dataset", str(dataset), *TUNE, *extra, "--out", str(out)])


def test_chosen_point_is_the_argmax_of_recorded_validation_and_best_config_replays_bit_for_bit(
        dataset, tmp_path, capsys):
    out = tmp_path / "tune"
    assert _tune(dataset, out) == 0
    tuning = json.loads((out / "tuning.json").read_text())
    names = [p["name"] for p in tuning["points"]]
    assert names == ["lr=0.01_margin=0.5", "lr=0.01_margin=1", "lr=0.2_margin=0.5", "lr=0.2_margin=1"]
    recorded = {}
    for name in names:                       # the validation values each run itself recorded
        history = json.loads((out / "runs" / name / "history.json").read_text())
        status = json.loads((out / "runs" / name / "status.json").read_text())
        evals = [h for h in history if "val" in h]
        best = max(evals, key=lambda h: h["val"]["AUC"])          # max keeps the first of ties, as the engine
        assert best["epoch"] == status["best_epoch"]
        recorded[name] = best["val"]["AUC"]
        point = tuning["points"][names.index(name)]
        assert point["val"]["AUC"] == recorded[name] and point["best_epoch"] == best["epoch"]
        used_all = status["epochs_run"] == json.loads((out / "runs" / name / "config.json").read_text())["epochs"]
        assert point["best_is_last"] == (best["epoch"] == evals[-1]["epoch"] and used_all)
        assert not any("test" in key.lower() for key in point["val"])
    want = max(names, key=lambda n: recorded[n])
    assert tuning["chosen"] == want and tuning["chosen_value"] == recorded[want]
    best_config = json.loads((out / "best_config.json").read_text())
    run_config = json.loads((out / "runs" / want / "config.json").read_text())
    assert best_config == run_config
    md = (out / "tuning.md").read_text()
    assert f"**{want}**" in md and "| point |" in md
    capsys.readouterr()
    replay = tmp_path / "replay"
    assert main(["recsys", "train", "--config", str(out / "best_config.json"), "--out", str(replay)]) == 0
    assert (replay / "metrics.json").read_bytes() == (out / "runs" / want / "metrics.json").read_bytes()


def test_rerunning_skips_finished_points_and_redoes_only_a_missing_one(dataset, tmp_path, capsys):
    out = tmp_path / "tune"
    assert _tune(dataset, out) == 0
    first = (out / "tuning.json").read_text()
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/metrics.json")}
    assert len(stamps) == 4
    capsys.readouterr()
    assert _tune(dataset, out) == 0
    printed = capsys.readouterr().out
    assert printed.count("finished before") == 4 and "training (" not in printed
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    again = json.loads((out / "tuning.json").read_text())
    assert all(p["reused"] for p in again["points"])
    assert again["chosen"] == json.loads(first)["chosen"]
    # remove one point: only it trains again, to the same numbers (one seed, deterministic)
    gone = out / "runs" / "lr=0.2_margin=1"
    before = (gone / "metrics.json").read_bytes()
    for f in sorted(gone.iterdir()):
        f.unlink()
    gone.rmdir()
    assert _tune(dataset, out) == 0
    printed = capsys.readouterr().out
    assert printed.count("finished before") == 3 and "lr=0.2_margin=1: training (new run)" in printed
    assert (gone / "metrics.json").read_bytes() == before


def test_unknown_grid_key_and_conflicts_are_one_line_errors(dataset, tmp_path, capsys):
    rc = main(["recsys", "tune", "--dataset", str(dataset), "--model", "cml", "--grid", "lr=0.1", "learning_rate=1",
               "--out", str(tmp_path / "t")])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1
    assert "unknown key 'learning_rate'; valid:" in err and "lr" in err and "margin" in err
    assert not (tmp_path / "t").exists()                     # refused before any folder or training
    rc = main(["recsys", "tune", "--dataset", str(dataset), "--model", "cml", "--lr", "0.1", "--grid", "lr=0.1,0.2",
               "--out", str(tmp_path / "t")])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "--lr is both fixed and in --grid" in err
    rc = main(["recsys", "tune", "--dataset", str(dataset), "--model", "cml", "--grid", "seed=0,1",
               "--out", str(tmp_path / "t")])
    assert rc == 1 and "not tunable" in capsys.readouterr().err
    # a folder already holding a point's run under another config is refused, naming the difference
    out = tmp_path / "tune"
    assert _tune(dataset, out) == 0
    capsys.readouterr()
    longer = [("4" if prev == "--epochs" else a) for prev, a in zip([None, *TUNE], TUNE)]
    rc = main(["recsys", "tune", "--dataset", str(dataset), *longer, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "another config (epochs 3 vs 4)" in err


def test_grid_parsing_and_names():
    grid = parse_grid(["lr=0.01,0.05", "dim=8,16", "sampler_options.beta=0.05,0.1"])
    assert grid == {"lr": [0.01, 0.05], "dim": [8, 16], "sampler_options.beta": [0.05, 0.1]}
    names = [p.name for p in grid_points(grid)]
    assert len(names) == 8 and names[0] == "lr=0.01_dim=8_sampler_options.beta=0.05"
    assert [p.name for p in grid_points({})] == ["default"]
    with pytest.raises(ValueError, match="--grid dim: '8.5' is not an integer"):
        parse_grid(["dim=8.5"])


def test_library_tune_grids_a_sampler_option_of_dihars(tmp_path):
    split = ratio_split(Interactions(sp.csr_matrix(clustered(seed=2).astype(np.float32))), seed=0)
    base = make_config("cml", sampler="dihars", n_negatives=100, dim=8, epochs=2, eval_every=1, batch_size=128,
                       select_metric="AUC")
    result = tune(base, {"sampler_options.beta": [0.02, 0.1]}, tmp_path, split, log=None)
    assert [p.name for p in result.points] == ["sampler_options.beta=0.02", "sampler_options.beta=0.1"]
    for point, beta in zip(result.points, (0.02, 0.1)):
        stored = json.loads((tmp_path / "runs" / point.name / "config.json").read_text())
        assert stored["sampler_options"] == {"beta": beta} and stored["sampler"] == "dihars"
    assert result.best_config["sampler_options"]["beta"] == result.chosen.params["sampler_options.beta"]


def test_library_tune_grids_the_dpcml_diversity_triple_and_a_rerun_reads_it_back(tmp_path):
    split = ratio_split(Interactions(sp.csr_matrix(clustered(seed=2).astype(np.float32))), seed=0)
    base = make_config("dpcml", vectors=2, dim=8, epochs=2, eval_every=1, batch_size=128, select_metric="AUC")
    grid = parse_grid(["diversity=10:0.05:0.25,0.04:0:0.5"])
    assert grid == {"diversity": [(10.0, 0.05, 0.25), (0.04, 0.0, 0.5)]}
    with pytest.raises(ValueError, match="3 numbers joined by ':'"):
        parse_grid(["diversity=10:0.05"])
    result = tune(base, grid, tmp_path, split, log=None)
    assert [p.name for p in result.points] == ["diversity=10-0.05-0.25", "diversity=0.04-0-0.5"]
    for point, triple in zip(result.points, grid["diversity"]):
        stored = json.loads((tmp_path / "runs" / point.name / "config.json").read_text())
        assert tuple(stored["diversity"]) == triple
    again = tune(base, grid, tmp_path, split, log=None)   # finished points are read back, not refused or re-run
    assert [p.val for p in again.points] == [p.val for p in result.points]


def test_parallel_jobs_train_the_same_runs_as_one_at_a_time(tmp_path):
    """--jobs 2: points trained in two spawned processes (one torch thread each) end with the same
    files as a sequential tuning on one thread, and the same choice; a re-run reuses them all."""
    import torch

    split = ratio_split(Interactions(sp.csr_matrix(clustered(seed=2).astype(np.float32))), seed=0)
    base = make_config("cml", dim=8, epochs=2, eval_every=1, batch_size=128, select_metric="AUC")
    grid = {"lr": [0.01, 0.2], "margin": [0.5]}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = tune(base, grid, tmp_path / "one", split, log=None)
    finally:
        torch.set_num_threads(threads)
    two = tune(base, grid, tmp_path / "two", split, log=None, jobs=2)
    assert two.chosen.name == one.chosen.name and not any(p.reused for p in two.points)
    for point in one.points:
        a, b = (tmp_path / d / "runs" / point.name / "metrics.json" for d in ("one", "two"))
        assert a.read_bytes() == b.read_bytes()
    assert all(p.reused for p in tune(base, grid, tmp_path / "two", split, log=None, jobs=2).points)
    with pytest.raises(ValueError, match="--jobs must be an integer >= 1"):
        tune(base, grid, tmp_path / "three", split, log=None, jobs=0)


def test_an_early_stopped_point_is_not_flagged_unconverged():
    from rankguard.recsys.tune import PointResult

    base = dict(name="p", params={}, run_dir="r", status="complete", reused=False, best_epoch=145, last_eval_epoch=145)
    assert not PointResult(**base, epochs_run=145, epochs=1000).best_is_last    # stopped by patience / min_delta
    assert PointResult(**base, epochs_run=145, epochs=145).best_is_last         # budget used, best at the end
