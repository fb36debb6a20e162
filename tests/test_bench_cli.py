"""Smoke test of `rankguard bench pairwise --quick`: runs, writes JSON + Markdown, rows are sane."""

from __future__ import annotations

import json

from rankguard.cli import main


def test_bench_pairwise_quick_writes_results(tmp_path, capsys):
    assert main(["bench", "pairwise", "--quick", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "pairwise.json").read_text())
    md = (tmp_path / "pairwise.md").read_text()
    assert report["quick"] is True
    env = report["environment"]
    assert env["dtype"] == "float32" and env["threads"] >= 1 and env["torch"]
    rows = report["rows"]
    assert len(rows) == (6 if env["threads"] > 1 else 3)
    for row in rows:
        assert set(row) >= {"name", "N", "engine_s", "reference_s", "ratio", "goal", "goal_met", "max_rel_diff"}
        assert row["engine_s"] > 0 and row["reference_s"] > 0
        assert abs(row["ratio"] - row["reference_s"] / row["engine_s"]) <= 1e-9 * row["ratio"]
        assert row["goal_met"] == (row["ratio"] >= row["goal_min_ratio"])
        assert row["name"] in md
    # engine and dense agree (float32) where a dense answer exists
    for i, row in enumerate(rows):
        if i % 3 == 1:  # vs torch.sort: no dense answer
            assert row["max_rel_diff"] is None
        else:
            assert row["max_rel_diff"] <= 1e-4
    assert "pairwise.json" in capsys.readouterr().out


def test_bench_without_name_prints_help(capsys):
    assert main(["bench"]) == 2
    assert "pairwise" in capsys.readouterr().out
