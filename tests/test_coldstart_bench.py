"""bench cold_start: seed summaries, the goals' verdicts and the table, from records (no training)."""

from __future__ import annotations

import pytest

from rankguard.bench import cold_start as bench
from rankguard.recsys.recipes import METRIC_KEYS


def _metrics(value: float) -> dict[str, float]:
    return {k: value for k in METRIC_KEYS}


def _records(dn_value=lambda backbone, seed: 0.5, base_value=0.5) -> list[dict]:
    records = [{"method": bench.FEATURE_POPULARITY, "regime": "-", "seed": None, "warm": _metrics(0.1),
                "cold_user": _metrics(0.1), "cold_item": _metrics(0.1), "base_warm": None, "best_epoch": 0,
                "seconds": 0.0}]
    for seed in (0, 1, 2):
        for regime in bench.REGIMES:
            for b in bench.BACKBONES:
                v = dn_value(b, seed)
                records.append({"method": f"{bench.NAMES[b]}+DN", "regime": regime, "seed": seed, "warm": _metrics(v),
                                "cold_user": _metrics(v), "cold_item": _metrics(v),
                                "base_warm": _metrics(base_value) if regime == "pre" else None, "best_epoch": 1,
                                "seconds": 2.0})
        records.append({"method": bench.FEATURES_ONLY, "regime": "pre", "seed": seed, "warm": _metrics(0.2),
                        "cold_user": _metrics(0.2), "cold_item": _metrics(0.2), "base_warm": None, "best_epoch": 1,
                        "seconds": 1.0})
    return records


def test_summary_is_mean_and_sample_std_over_seeds():
    rows = bench.summarize(_records(lambda b, seed: 0.6 + 0.1 * seed))
    by = {(r["method"], r["regime"]): r for r in rows}
    cml = by[("CML+DN", "joint")]["cold_item"]
    assert cml["mean"]["P@3"] == pytest.approx(0.7) and cml["std"]["P@3"] == pytest.approx(0.1)   # ddof = 1
    assert by[("CML", "no DN")]["warm"]["mean"]["AUC"] == pytest.approx(0.5)
    assert by[(bench.FEATURE_POPULARITY, "-")]["seeds"] == []


def test_goals_hold_and_fail_where_they_should():
    ordered = {"mf": 0.65, "cml": 0.7, "dpcml": 0.75}
    lines = bench.check_goals(bench.summarize(_records(lambda b, seed: ordered[b], base_value=0.745)))
    assert all("holds" in line for line in lines[:7]), lines
    warm = [line for line in lines if "warm" in line]
    assert len(warm) == 2 and all("SHORTFALL" in line and "MF+DN P@3 -9.50" in line and "DPCML" not in line.split(":")[-1]
                                  for line in warm), warm
    # CML below MF, and a DN model under the features-only baseline
    lines = bench.check_goals(bench.summarize(_records(lambda b, seed: {"mf": 0.5, "cml": 0.15, "dpcml": 0.7}[b])))
    assert "SHORTFALL" in lines[0] and "CML+DN (pre) P@3 15.00 vs 20.00" in lines[0]
    assert any("DPCML+DN ≥ CML+DN ≥ MF+DN: SHORTFALL" in line for line in lines)


def test_markdown_states_epochs_and_seeds():
    records = _records()
    payload = {"rows": bench.summarize(records), "seeds": [0, 1, 2], "quick": False, "epochs": bench.EPOCHS,
               "dn_epochs": bench.DN_EPOCHS, "eval_every": bench.EVAL_EVERY,
               "dropoutnet": bench.DN_DEFAULTS.to_dict(), "wall_s": 1.0,
               "environment": {"python": "3.11", "torch": "2", "numpy": "2", "threads": 1, "cpu_count": 2,
                               "machine": "x86_64", "git": None}}
    text = bench.to_markdown(payload)
    assert "papers'" in text and "50.00 ± 0.00" in text and "## Goals" in text
    assert text.count("| MF+DN | pre |") == 3   # one row in each of the three tables


def test_cache_reads_back_a_record_of_the_same_plan_only(tmp_path):
    calls = []

    def make():
        calls.append(1)
        return {"method": "x", "seconds": 1.0}

    plan = bench._plan(quick=False)
    first = bench._cached(tmp_path, "row", make, lambda _: None, plan)
    again = bench._cached(tmp_path, "row", make, lambda _: None, plan)
    assert first == again and len(calls) == 1 and again["plan"]["dn_epochs"] == bench.DN_EPOCHS
    bench._cached(tmp_path, "row", make, lambda _: None, bench._plan(quick=True))   # another plan: run again
    assert len(calls) == 2
