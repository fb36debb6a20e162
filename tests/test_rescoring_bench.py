"""`rankguard bench rescoring --quick`: runs in seconds and writes both result files."""

import json
import os
from pathlib import Path

import pytest

from rankguard.bench import rescoring

DATA = Path(os.environ.get("RANKGUARD_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.mark.skipif(not (DATA / "pin" / "mokapot_10k_psms.pin").exists(), reason="shared PIN data not available")
def test_quick_rescoring_bench_writes_results(tmp_path):
    assert rescoring.main(["--quick", "--out", str(tmp_path), "--data", str(DATA)]) == 0
    report = json.loads((tmp_path / "rescoring.json").read_text())
    speed = report["loss_speed"]
    assert speed["max_rel_diff"] < 1e-9
    assert speed["speedup_vs_dense"] > 0 and speed["sort_s"] > 0
    methods = [r["method"] for r in report["pin"]]
    assert any(m.startswith("best single feature") for m in methods)
    assert {"rankguard adaptive-rank", "rankguard bce", "rankguard auc", "svm (Percolator baseline)",
            rescoring.MOKAPOT_LABEL} <= set(methods)
    md = (tmp_path / "rescoring.md").read_text()
    assert "not re-run" in md and "QUICK" in md
