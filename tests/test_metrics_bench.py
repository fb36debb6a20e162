"""`rankguard bench metrics --quick` runs end to end and writes its JSON and Markdown."""

from __future__ import annotations

import json

from rankguard.bench import BENCHMARKS
from rankguard.bench.metrics import main


def test_quick_metrics_benchmark_writes_results(tmp_path):
    assert BENCHMARKS["metrics"] == "rankguard.bench.metrics"
    assert main(["--quick", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["quick"] and {r["task"] for r in report["rows"]} >= {"AUC", "AP", "NDCG@10", "MAP", "MRR"}
    for r in report["rows"]:
        if r.get("sklearn_diff") is not None:
            assert r["sklearn_diff"] <= 1e-12
        if r.get("ir_measures_diff") is not None:
            assert r["ir_measures_diff"] <= 1e-6
    assert "# Ranking metrics benchmark" in (tmp_path / "metrics.md").read_text()
