"""rankguard's q-values equal mokapot 0.10.0's on the shared PIN files, per PSM and per peptide.

Honest by construction: mokapot's own winners (its target–decoy competition, its scores and its q-values, on
the first of seeds 1–3 where mokapot runs: it fails on some) come from a run of mokapot in its virtual
environment; the *same* scores and labels go into :func:`rankguard.metrics.qvalues`, and the two q-values are
compared match by match. mokapot does not cap its (D + 1)/T estimate at 1 (rankguard does, see its
docstring), so mokapot's q is capped before comparing. The table is the one ``rankguard bench rescoring``
leaves in ``.cache/rescoring/mokapot-tables``, else mokapot is run here (about 15 s a file). Without the
mokapot environment the test skips; the brute-force reference (``test_summary_qvalues_match_brute_force_and_
competition`` in ``test_rescoring.py``) always runs.
"""

import os
from pathlib import Path

import numpy as np
import pytest

from rankguard.bench import rescoring
from rankguard.metrics import qvalues

DATA = Path(os.environ.get("RANKGUARD_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
VENV = Path(os.environ.get("RANKGUARD_MOKAPOT_VENV", rescoring.default_mokapot_venv()))
TABLES = VENV.parent / "mokapot-tables"
SEEDS = rescoring.SEEDS


def _cached(pin: Path) -> Path | None:
    for seed in SEEDS:
        path = rescoring.mokapot_table_path(TABLES, pin, seed)
        if path.exists() and path.stat().st_mtime >= pin.stat().st_mtime:
            return path
    return None


def _table(pin: Path, tmp_path: Path) -> Path:
    cached = _cached(pin)
    if cached is not None:
        return cached
    errors = []
    for seed in SEEDS:
        out = rescoring.mokapot_table_path(tmp_path, pin, seed)
        row = rescoring.run_mokapot(VENV, pin, seed, out)
        if not row["failed"]:
            return out
        errors.append(f"seed {seed}: {row['failed']}")
    pytest.skip(f"mokapot failed on {pin.name} on every seed: {'; '.join(errors)}")


@pytest.mark.parametrize("name", [Path(f).name for f in rescoring.PIN_FILES])
def test_qvalues_equal_mokapots_per_match(name, tmp_path):
    pin = DATA / "pin" / name
    if not pin.exists():
        pytest.skip(f"shared data not found at {DATA}")
    problem = rescoring.mokapot_problem(VENV)
    if problem and _cached(pin) is None:
        pytest.skip(f"{problem}; create it with `rankguard bench rescoring --mokapot-setup`")
    t = np.genfromtxt(_table(pin, tmp_path), delimiter="\t", names=True, dtype=None, encoding="utf-8")
    checked = 0
    for level in ("psms", "peptides"):
        part = t[t["level"] == level]
        target = part["target"] == 1
        assert target.any() and (~target).any(), f"{level}: mokapot's table needs targets and decoys"
        ours = np.asarray(qvalues(part["score"].astype(np.float64), target))
        theirs = np.minimum(part["q"].astype(np.float64), 1.0)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0, err_msg=f"{name} {level}")
        assert int(np.sum((ours <= 0.01) & target)) == int(np.sum((part["q"] <= 0.01) & target))
        checked += len(part)
    assert checked > 1000
