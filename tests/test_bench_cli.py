"""`rankguard bench NAME`: registration, the quick pairwise run's files and keys, the recsys benchmarks'
file-name and flag contracts, and the one-line scripts under benchmarks/."""

from __future__ import annotations

import argparse
import ast
import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

import rankguard.bench as bench

ROOT = Path(__file__).resolve().parents[1]
ROW_KEYS = {"name", "N", "engine_s", "reference_s", "ratio", "engine_min_s", "reference_min_s", "goal",
            "goal_min_ratio", "goal_met", "max_rel_diff", "timed"}
ENV_KEYS = {"python", "torch", "numpy", "threads", "cpu_count", "machine", "platform", "git",
            "loadavg_1min_before", "loadavg_1min_after", "dtype"}


def bench_main(argv: list[str]) -> int:
    """The `rankguard bench` group on its own parser (dispatch as rankguard.cli.main does)."""
    parser = argparse.ArgumentParser(prog="rankguard")
    bench.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", *argv])
    return int(args.func(args) or 0)


def test_every_benchmark_and_action_is_registered():
    parser = argparse.ArgumentParser(prog="rankguard")
    bench.register(parser.add_subparsers(dest="command"))
    names = ("pairwise", "recsys_quality", "recsys_speed", "metrics", "noisy_labels", "dpcml_ablation", "cold_start",
             "rescoring", "contrastive_cf", "recsys_defaults")
    for name in (*names, "readme"):
        args = parser.parse_args(["bench", name])
        assert callable(args.func)
    # the issues' spelling (rankguard bench noisy-labels, contrastive-cf) reaches the same benchmark
    for name in ("noisy-labels", "contrastive-cf", "cold-start"):
        assert parser.parse_args(["bench", name]).func is parser.parse_args(["bench", name.replace("-", "_")]).func
    assert set(bench.BENCHMARKS) == set(names)


def test_bench_pairwise_quick_writes_documented_files(tmp_path, capsys):
    assert bench_main(["pairwise", "--quick", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairwise.json", "pairwise.md"]
    report = json.loads((tmp_path / "pairwise.json").read_text())
    md = (tmp_path / "pairwise.md").read_text()
    assert set(report) == {"benchmark", "quick", "environment", "wall_s", "sizes", "rows"}
    assert report["benchmark"] == "pairwise" and report["quick"] is True and report["wall_s"] >= 0
    env = report["environment"]
    assert set(env) >= ENV_KEYS and env["dtype"] == "float32"
    rows = report["rows"]
    assert len(rows) == (6 if env["threads"] > 1 else 3)
    for i, row in enumerate(rows):
        assert set(row) == ROW_KEYS
        assert 0 < row["engine_min_s"] <= row["engine_s"] and 0 < row["reference_min_s"] <= row["reference_s"]
        assert isinstance(row["goal_met"], bool)
        assert f"| {row['name']} | {row['N']} | {row['engine_s']:.4g} | {row['reference_s']:.4g} |" in md
        # engine and dense agree (float32) where a dense answer exists; none for torch.sort
        assert (row["max_rel_diff"] is None) if i % 3 == 1 else (row["max_rel_diff"] <= 1e-4)
    assert "QUICK sizes" in md and "pairwise.json" in capsys.readouterr().out


def test_recsys_benchmarks_keep_their_flags_and_file_names():
    from rankguard.bench import recsys_quality as q
    from rankguard.bench import recsys_speed as s

    parser = argparse.ArgumentParser()
    q.add_arguments(parser)
    args = parser.parse_args(["--quick", "--out", "X", "--dataset", "ml-1m", "--protocol", "standard",
                              "--methods", "SFCML", "UniS", "--epochs", "SFCML=100,UniS=20", "--seeds", "0", "1",
                              "--threads", "2"])
    assert args.epochs == {"SFCML": 100, "UniS": 20} and args.seeds == [0, 1] and args.methods == ["SFCML", "UniS"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--epochs", "Nope=3"])
    assert q.results_name("ml-100k-libcml", "authors", False) == "recsys_quality"
    assert q.results_name("ml-1m", "standard", False) == "recsys_quality_ml-1m_standard"
    assert q.results_name("citeulike-t", "authors", True) == "recsys_quality_citeulike-t_quick"
    for committed in (ROOT / "results").glob("recsys_quality*.json"):  # the committed files' keys still hold
        data = json.loads(committed.read_text())
        assert committed.stem == q.results_name(data["dataset"], data["protocol"], data["quick"])
        assert set(q.METHODS) >= {k for k, r in data["methods"].items() if not r.get("tuned_from")}
    parser = argparse.ArgumentParser()
    s.add_arguments(parser)
    args = parser.parse_args(["--quick", "--out", "X", "--dataset", "ml-1m", "--threads", "1"])
    assert args.quick and args.out == "X"


def test_quality_merge_recomputes_kept_rows_with_sample_std():
    from rankguard.bench.recsys_quality import merge_previous

    old_row = {"per_seed": [{"P@3": 0.1}, {"P@3": 0.3}], "mean": {"P@3": 0.2}, "std": {"P@3": 0.1}}  # old: ddof=0
    previous = {"dataset": "d", "protocol": "authors", "methods": {"UniS": old_row, "SFCML": {"stale": True}}}
    new = {"SFCML": {"fresh": True}}
    runs, kept = merge_previous(new, previous, "d", "authors")
    assert list(runs) == ["UniS", "SFCML"] and kept == ["UniS"] and runs["SFCML"] == {"fresh": True}
    assert runs["UniS"]["std"]["P@3"] == pytest.approx(math.sqrt(0.02))  # deviations ±0.1: sqrt(0.02 / (2 - 1))
    assert merge_previous(new, previous, "other", "authors") == (new, None)


def test_quality_merge_keeps_tuned_rows_after_the_built_in_ones():
    from rankguard.bench.recsys_quality import merge_previous

    row = {"per_seed": [{"P@3": 0.1}], "mean": {}, "std": {}}
    previous = {"dataset": "d", "protocol": "authors", "methods": {"Mine": dict(row, tuned_from="x"), "UniS": row}}
    runs, kept = merge_previous({"HarS": {"fresh": True}, "Other": {"fresh": True}}, previous, "d", "authors")
    assert list(runs) == ["UniS", "HarS", "Mine", "Other"] and kept == ["Mine", "UniS"]


def test_every_column_check_names_each_miss():
    from rankguard.bench.recsys_quality import ML100K_COLUMN_MAX, every_column_check

    above = {k: v / 100 + 1e-4 for k, v in ML100K_COLUMN_MAX.items()}
    below = dict(above, AUC=0.9290)
    check = every_column_check({"A": {"mean": above}, "B": {"mean": below}, "C": {"mean": dict(above, MAP=None)}})
    assert check["rows"]["A"] == {"beats_all": True, "misses": {}}
    assert check["rows"]["B"]["beats_all"] is False and list(check["rows"]["B"]["misses"]) == ["AUC"]
    assert check["rows"]["B"]["misses"]["AUC"] == pytest.approx(92.90 - 93.24)
    assert list(check["rows"]["C"]["misses"]) == ["MAP"]   # no value is a miss, never a pass


def test_tuned_rows_replay_the_file_with_only_the_seed_replaced(tmp_path):
    from rankguard.bench.recsys_quality import method_configs, parse_tuned
    from rankguard.recsys.trainer import make_config

    cfg = make_config("mf", "ml-100k-libcml", loss="squared", epochs=7, lr=0.02, protocol="authors")
    path = tmp_path / "best_config.json"
    path.write_text(json.dumps(cfg.to_dict()))
    a, b = method_configs("Mine", "ml-100k-libcml", "authors", [0, 2], None, path)
    assert (a.seed, b.seed, a.epochs, a.lr, a.loss) == (0, 2, 7, 0.02, "squared")
    assert method_configs("Mine", "ml-100k-libcml", "authors", [0], 3, path)[0].epochs == 3
    with pytest.raises(ValueError, match="ml-1m"):
        method_configs("Mine", "ml-1m", "authors", [0], None, path)
    with pytest.raises(argparse.ArgumentTypeError, match="built-in"):
        parse_tuned(f"UniS={path}")
    set_lr = method_configs("DPCML2", "ml-100k-libcml", "authors", [1], 4, None, 3, {"lr": 0.01})[0]
    assert (set_lr.lr, set_lr.seed, set_lr.epochs, set_lr.eval_every) == (0.01, 1, 4, 3)
    from rankguard.bench.recsys_quality import parse_settings
    with pytest.raises(ValueError, match="one value"):
        parse_settings(["lr=0.01,0.1"])
    with pytest.raises(ValueError):
        parse_settings(["no_such_field=1"])
    apa = method_configs("APA+DiHarS", "ml-100k-libcml", "authors", [0], 2)[0]
    assert (apa.vector_rule, apa.sampler, apa.backbone, apa.epochs, apa.eval_every) == ("log2", "dihars", "dpcml", 2, 1)


def test_table_rows_keep_the_loops_they_were_run_with_while_recipes_converge():
    """The cml/dpcml recipes stop early (patience 6, min gain 1e-3); the tables' rows keep their loops:
    CML rows patience 10 with any gain counting, DPCML rows the authors' (every epoch, no early stop);
    --set still overrides them."""
    from rankguard.bench.recsys_quality import method_configs
    from rankguard.recsys.trainer import make_config

    assert [make_config(m).patience for m in ("cml", "dpcml", "mf-bpr")] == [6, 6, 6]
    for name in ("HarS", "MF-BPR"):
        c = method_configs(name, "ml-1m", "authors", [0], 30)[0]
        assert (c.patience, c.min_delta, c.eval_every, c.epochs) == (10, 0.0, 5, 30), name
    for name in ("DPCML1", "DPCML2", "APA+UniS", "APA+HarS", "BPA+DiHarS", "APA+DiHarS"):
        c = method_configs(name, "ml-1m", "authors", [0], 100)[0]
        assert (c.patience, c.min_delta, c.eval_every, c.epochs) == (0, 0.0, 1, 100), name
    c = method_configs("DPCML2", "ml-1m", "authors", [0], 300, None, 5, {"patience": 6, "min_delta": 1e-3})[0]
    assert (c.patience, c.min_delta, c.eval_every) == (6, 1e-3, 5)


def test_method_name_accepts_property_attribute_or_function():
    from rankguard.bench.recsys_speed import method_name

    assert method_name(SimpleNamespace(method="cml-unis", model="cml")) == "cml-unis"
    assert method_name(SimpleNamespace(method=lambda: "sfcml", model="sfcml")) == "sfcml"
    assert method_name(SimpleNamespace(model="cml", sampler="hars")) == "cml-hars"


@pytest.mark.parametrize("name", ["pairwise", "recsys_quality", "recsys_speed", "update_readme"])
def test_benchmark_scripts_are_one_line_shims(name):
    text = (ROOT / "benchmarks" / f"{name}.py").read_text()
    assert "sys.path" not in text and len(text.strip().splitlines()) == 1
    module = "readme" if name == "update_readme" else name
    assert re.fullmatch(rf"from rankguard\.bench\.{module} import main; raise SystemExit\(main\(\)\)", text.strip())
    ast.parse(text)


def test_bench_without_name_prints_help(capsys):
    from rankguard.cli import main

    assert main(["bench"]) == 2
    out = capsys.readouterr().out
    assert all(name in out for name in ("pairwise", "recsys_quality", "recsys_speed", "readme"))


def test_quality_rows_written_by_another_process_meanwhile_are_kept(tmp_path, monkeypatch):
    """Two `bench recsys_quality --methods …` processes on one table: each write re-reads the file
    under a lock, so the row another process wrote while this one trained is merged, not dropped."""
    import multiprocessing

    from rankguard.bench import recsys_quality as q

    def fake_row(name):
        cfg = q.method_configs(name, "ml-100k-libcml", "authors", [0], 1)[0]
        metrics = {k: 0.1 for k in q.METRIC_KEYS}
        return {"config": cfg.to_dict(), "per_seed": [metrics], "mean": metrics, "std": {}, "wall_seconds": [1.0],
                "best_epochs": [1], "epochs": 1, "seeds": [0], "diagnostics": {}}

    def run(name):
        parser = argparse.ArgumentParser()
        q.add_arguments(parser)
        q.run(parser.parse_args(["--out", str(tmp_path), "--methods", name, "--seeds", "0", "--threads", "1"]))

    def slow_run_method(name, *a, **k):
        if name == "UniS":   # while UniS "trains", another process finishes HarS and writes the table
            proc = multiprocessing.get_context("fork").Process(target=run, args=("HarS",))
            proc.start()
            proc.join()
            assert proc.exitcode == 0
        return fake_row(name)

    monkeypatch.setattr(q, "run_method", slow_run_method)
    monkeypatch.setattr(q, "load_split", lambda dataset: None)
    run("UniS")
    rows = json.loads((tmp_path / "recsys_quality.json").read_text())["methods"]
    assert sorted(rows) == ["HarS", "UniS"]


def test_quality_row_killed_mid_row_resumes_from_its_finished_seeds(tmp_path, monkeypatch):
    """Each (row, seed) result is kept under the cache keyed by its complete config: after a failure in
    seed 1 the rerun reads seed 0 back and trains only seed 1; another setting trains both again."""
    from types import SimpleNamespace

    from rankguard.bench import recsys_quality as q

    calls = []

    def fake_train(cfg, split, dataset=None, log=None, diagnostics=False):
        calls.append((cfg.seed, cfg.lr))
        if len(calls) == 2 and cfg.seed == 1:
            raise RuntimeError("killed")
        metrics = {k: 0.01 * (cfg.seed + 1) for k in q.METRIC_KEYS}
        return SimpleNamespace(test_metrics=metrics, best_epoch=1, epoch_seconds=0.5,
                               diagnostics={"tv": 0.1} if diagnostics else None)

    monkeypatch.setattr(q, "train", fake_train)
    args = ("UniS", None, "ml-100k-libcml", "authors", [0, 1], 1)
    with pytest.raises(RuntimeError, match="killed"):
        q.run_method(*args, cache=tmp_path)
    row = q.run_method(*args, cache=tmp_path)
    assert calls == [(0, 0.05), (1, 0.05), (1, 0.05)]
    assert [s["P@3"] for s in row["per_seed"]] == [0.01, 0.02] and row["diagnostics"] == {"tv": 0.1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["UniS-seed0.json", "UniS-seed1.json"]
    q.run_method(*args, settings={"lr": 0.1}, cache=tmp_path)
    assert calls[3:] == [(0, 0.1), (1, 0.1)]


def test_recsys_defaults_rows_say_whether_the_flagless_run_converged(tmp_path, capsys):
    """`bench recsys_defaults` trains exactly `recsys train --dataset D --model M` (no other flag), records
    whether it converged by the rule `recsys train` warns with, merges rows, and reads cached rows back."""
    from rankguard.bench import recsys_defaults as rd
    from rankguard.recsys.recipes import make_config
    from test_recsys_cli import _tiny_dataset

    data = _tiny_dataset(tmp_path)
    out, cache = tmp_path / "results", tmp_path / "cache"
    argv = ["--datasets", str(data), "--out", str(out), "--cache", str(cache)]
    assert rd.main([*argv, "--models", "cml"]) == 0
    assert rd.main([*argv, "--models", "mf-bpr"]) == 0
    payload = json.loads((out / "recsys_defaults.json").read_text())
    assert sorted(payload["rows"]) == ["cml@users.dat", "mf-bpr@users.dat"]
    for key, row in payload["rows"].items():
        config = make_config(key.split("@")[0], str(data))
        assert (row["epochs"], row["patience"], row["select_metric"]) == (config.epochs, config.patience,
                                                                          config.select_metric)
        assert row["converged"] == (row["stopped_early"] or row["best_epoch"] < row["last_eval_epoch"])
        assert row["epochs_run"] <= row["epochs"] and (row["epochs_run"] < row["epochs"]) == row["stopped_early"]
    assert "| cml | users.dat |" in (out / "recsys_defaults.md").read_text()
    capsys.readouterr()
    assert rd.main([*argv, "--models", "cml"]) == 0           # cached: read back, not trained again
    assert "read back from" in capsys.readouterr().out
