"""`rankguard bench rescoring --quick`: runs in seconds and writes both result files and the q-value plot;
mokapot failures are recorded, never raised; `--only-forms` merges part (d) into existing results."""

import json
import os
import re
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
    # (d): every form per file and seed, ξ after every epoch; the rule moves ξ only down, the floor holds,
    # a fixed ξ stays; the q-value plot is written and referenced from the table by its path from the root
    forms = report["forms"]
    assert {r["form"] for r in forms["rows"]} == {label for label, _ in rescoring.LOSS_FORMS}
    by = {r["form"]: r for r in forms["rows"]}
    labels = [label for label, _ in rescoring.LOSS_FORMS]
    for r in forms["rows"]:
        assert r["xi_path"][0] == 0.2 and len(r["xi_path"]) == 1 + report["settings"]["epochs"]
        assert all(b <= a + 1e-12 for a, b in zip(r["xi_path"], r["xi_path"][1:]))
    assert by[labels[1]]["xi_path"][-1] < 0.05 and min(by[labels[2]]["xi_path"]) >= rescoring.XI_FLOOR - 1e-12
    assert by[labels[3]]["xi_path"] == pytest.approx([0.2] * len(by[labels[3]]["xi_path"]))
    assert (tmp_path / rescoring.PLOT_NAME).stat().st_size > 0
    assert f"](results/{rescoring.PLOT_NAME})" in md and "ξ fixed" in md
    # --only-forms merges (d) into the results just written and keeps the rest
    before = json.loads((tmp_path / "rescoring.json").read_text())
    assert rescoring.main(["--quick", "--only-forms", "--out", str(tmp_path), "--data", str(DATA)]) == 0
    after = json.loads((tmp_path / "rescoring.json").read_text())
    assert after["forms"]["merged"] and after["pin"] == before["pin"] and after["toppic"] == before["toppic"]
    assert [r["psms"] for r in after["forms"]["rows"]] == [r["psms"] for r in before["forms"]["rows"]]
    assert "--only-forms" in (tmp_path / "rescoring.md").read_text()


def test_mokapot_failure_is_recorded_not_raised(tmp_path):
    """A Python without mokapot stands in for a broken environment: the run is a recorded failure."""
    venv = tmp_path / "fake-venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    assert "cannot import mokapot" in rescoring.mokapot_problem(venv)
    row = rescoring.run_mokapot(venv, tmp_path / "x.pin", seed=1)
    # the runner imports pandas before mokapot: on a machine without pandas that import fails first
    assert row["psms"] is None and re.search(r"No module named '(mokapot|pandas)'", row["failed"])
    missing = rescoring.run_mokapot(tmp_path / "none", tmp_path / "x.pin", seed=1)
    assert missing["failed"] and missing["psms"] is None
    assert rescoring.mokapot_problem(tmp_path / "none").startswith("no mokapot environment")
