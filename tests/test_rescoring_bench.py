"""`rankguard bench rescoring --quick`: runs in seconds and writes both result files; mokapot failures are
recorded, never raised."""

import json
import os
import sys
from pathlib import Path

import pytest

from rankguard.bench import rescoring

DATA = Path(os.environ.get("RANKGUARD_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.mark.skipif(not (DATA / "pin" / "mokapot_10k_psms.pin").exists() or not (DATA / "toppic").exists(),
                    reason="shared PIN / TopPIC data not available")
def test_quick_rescoring_bench_writes_results(tmp_path):
    assert rescoring.main(["--quick", "--out", str(tmp_path), "--data", str(DATA)]) == 0
    report = json.loads((tmp_path / "rescoring.json").read_text())
    speed = report["loss_speed"]
    assert speed["max_rel_diff"] < 1e-9
    assert speed["speedup_vs_dense"] > 0 and speed["sort_s"] > 0
    methods = [r["method"] for r in report["pin"]]
    assert any(m.startswith("best single feature") for m in methods)
    assert {"rankguard adaptive-rank", "rankguard bce", "rankguard auc", "svm (Percolator baseline)"} <= set(methods)
    assert report["mokapot"] == {"ran": False, "why": "quick run"}
    a = report["toppic"]
    assert set(a["runs"]) == {"svm", "adaptive-rank", "bce", "auc"} and len(a["files"]) == 1
    assert not set(a["validation_files"]) & set(a["test_files"])          # chosen on held-out training files
    assert all(len(v) == len(report["seeds"]) for r in a["runs"].values() for v in r["q"])
    f = a["files"][0]   # FAIMS −10: TopPIC's E-value order under the origin's rule = the origin's reported TopPIC count
    assert f["label"] == "FAIMS −10" and f["toppic_origin"] == f["origin_reported_toppic"] == 141
    md = (tmp_path / "rescoring.md").read_text()
    assert "QUICK" in md and "mokapot was not run: quick run" in md and "origin's rule" in md


def test_mokapot_failure_is_recorded_not_raised(tmp_path):
    """A Python without mokapot stands in for a broken environment: the run is a recorded failure."""
    venv = tmp_path / "fake-venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    assert "cannot import mokapot" in rescoring.mokapot_problem(venv)
    row = rescoring.run_mokapot(venv, tmp_path / "x.pin", seed=1)
    assert row["psms"] is None and "No module named 'mokapot'" in row["failed"]
    missing = rescoring.run_mokapot(tmp_path / "none", tmp_path / "x.pin", seed=1)
    assert missing["failed"] and missing["psms"] is None
    assert rescoring.mokapot_problem(tmp_path / "none").startswith("no mokapot environment")
