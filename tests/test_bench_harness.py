"""The benchmark harness, checked against things known from outside the code under test: a sleep of a
known length, a fake clock with exact costs, hand-computed mean ± sample std, files read back, a README
spliced in a temp folder."""

from __future__ import annotations

import json
import math
import time

import pytest

from rankguard.bench import harness
from rankguard.bench.harness import (MeasuredRun, mean_std_cell, read_results, rel_diff, splice_readme,
                                     summarize_seeds, time_interleaved, timed_call, update_readme, write_results)

# sleep() may overshoot by scheduler slices on a busy machine, never undershoot
SLEEP_SLACK_S = 0.2


def test_timed_call_measures_a_known_sleep():
    # the real clock: three 20 ms sleeps, mean per call
    out, secs = timed_call(lambda: time.sleep(0.02) or "done", calls=3)
    assert out == "done"
    assert 0.02 <= secs <= 0.02 + SLEEP_SLACK_S
    with pytest.raises(ValueError, match="calls"):
        timed_call(lambda: None, calls=0)


class FakeClock:
    """perf_counter() that moves only when a timed function says it ran: exact, load-free times
    (multiples of 1/4 s are exact in binary, so no rounding enters the hand-computed numbers)."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


def test_time_interleaved_alternates_bursts_with_exact_times(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(harness, "time", clock)
    calls: list[str] = []

    def engine():
        calls.append("E")
        clock.now += 0.25
        return "e"

    def reference():
        calls.append("R")
        clock.now += 1.0
        return "r"

    t = time_interleaved(engine, reference, engine_repeats=3, reference_repeats=2, burst_s=0.6)
    # the warm-up engine call takes 0.25 s, so a burst is ceil(0.6 / 0.25) = 3 calls; 1 reference warm-up
    assert t.engine_calls == 3
    assert "".join(calls) == "E" + "R" + "EEE" + "R" + "EEE" + "R" + "EEE"
    assert t.engine_samples == [0.25, 0.25, 0.25] and t.reference_samples == [1.0, 1.0]
    assert (t.engine_median, t.engine_min, t.reference_median, t.reference_min) == (0.25, 0.25, 1.0, 1.0)
    assert t.ratio == 4.0
    assert (t.engine_result, t.reference_result) == ("e", "r")


def test_time_interleaved_medians_minima_and_scale(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(harness, "time", clock)
    engine_costs = iter([0.5, 1.0, 0.25, 2.0])   # no warm-up: one call per sample
    reference_costs = iter([3.0, 1.0, 2.0])
    calls: list[str] = []

    def engine():
        calls.append("E")
        clock.now += next(engine_costs)

    def reference():
        calls.append("R")
        clock.now += next(reference_costs)

    t = time_interleaved(engine, reference, engine_repeats=4, reference_repeats=3, engine_warmup=0,
                         reference_warmup=0, reference_scale=10.0)
    assert "".join(calls) == "ERERERE" and t.engine_calls == 1
    assert t.engine_samples == [0.5, 1.0, 0.25, 2.0] and t.reference_samples == [30.0, 10.0, 20.0]
    # median of 4 = mean of the middle two (0.5, 1.0); references scaled by 10
    assert (t.engine_median, t.engine_min, t.reference_median, t.reference_min) == (0.75, 0.25, 20.0, 10.0)


def test_time_interleaved_engine_only(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(harness, "time", clock)

    def engine():
        clock.now += 0.5

    t = time_interleaved(engine, None, engine_repeats=2, burst_s=0.1)
    assert t.engine_calls == 1 and t.engine_samples == [0.5, 0.5]
    assert t.reference_median is None and t.reference_samples == [] and t.ratio is None


def test_time_interleaved_rejects_bad_repeats():
    with pytest.raises(ValueError, match="engine_repeats"):
        time_interleaved(lambda: None, None, engine_repeats=0)
    with pytest.raises(ValueError, match="reference_repeats"):
        time_interleaved(lambda: None, lambda: None, engine_repeats=1, reference_repeats=0)


def test_rel_diff_by_hand():
    assert rel_diff(1.5, 2.0) == pytest.approx(0.25)
    assert rel_diff(0.3, 0.0) == pytest.approx(0.3)  # zero reference: the absolute difference


def test_measured_run_records_environment_and_wall_time():
    with MeasuredRun(dtype="float32") as run:
        time.sleep(0.05)
    env = run.environment
    assert env["dtype"] == "float32" and env["threads"] >= 1 and env["cpu_count"] >= 1
    assert env["python"].count(".") == 2 and env["torch"] and env["numpy"] and env["platform"]
    assert "loadavg_1min_before" in env and "loadavg_1min_after" in env
    assert env["git"] is None or len(env["git"]["commit"]) == 40
    assert 0.0 <= run.wall_s <= 1.0
    json.dumps(env)  # plain values only


def test_write_results_round_trip(tmp_path):
    payload = {"rows": [{"name": "a", "engine_s": 1.25e-3, "std": None}], "quick": True}
    md = "# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    json_path, md_path = write_results(tmp_path / "new", "demo", payload, md)
    assert (json_path.name, md_path.name) == ("demo.json", "demo.md")
    assert json.loads(json_path.read_text()) == payload
    assert md_path.read_text() == md
    assert read_results(tmp_path / "new", "demo") == payload
    assert read_results(tmp_path / "new", "absent") is None
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["demo.json", "demo.md"]  # no temp files left


def test_mean_std_over_seeds_by_hand():
    # values 0.2, 0.4, 0.9: mean 0.5; deviations -0.3, -0.1, 0.4; sum of squares 0.26; / (3 - 1) -> 0.13
    mean, std = summarize_seeds([{"P@3": 0.2, "AUC": None}, {"P@3": 0.4, "AUC": 0.7}, {"P@3": 0.9, "AUC": None}],
                                ["P@3", "AUC"])
    assert mean["P@3"] == pytest.approx(0.5) and std["P@3"] == pytest.approx(math.sqrt(0.13))
    assert mean["AUC"] == pytest.approx(0.7) and std["AUC"] is None  # one seed: no spread
    assert mean_std_cell([0.2, 0.4, 0.9]) == f"50.00 ± {100 * math.sqrt(0.13):.2f}" == "50.00 ± 36.06"
    assert mean_std_cell([0.123]) == "12.30"
    assert mean_std_cell([None]) == "n/a"
    assert "ddof=1" in harness.STD_NOTE


README = """# Project

Intro text with <!-- a comment --> kept.

## Benchmarks

<!-- BEGIN results/alpha.md -->
stale alpha
<!-- END results/alpha.md -->

between the blocks

<!-- BEGIN results/missing.md -->
stale missing
<!-- END results/missing.md -->
tail
"""


def test_splice_readme_replaces_blocks_verbatim(tmp_path):
    (tmp_path / "results").mkdir()
    body = "# Alpha table\n\ntext with # not a heading\n\n## Sub\n\n| x |\n|---|\n| 1 |\n\n"
    (tmp_path / "results" / "alpha.md").write_text(body)
    readme = tmp_path / "README.md"
    readme.write_text(README)
    report = update_readme(readme)
    assert report.refreshed == ["results/alpha.md"] and report.missing == ["results/missing.md"] and report.changed
    new = readme.read_text()
    expected_block = ("<!-- BEGIN results/alpha.md -->\n#### Alpha table\n\ntext with # not a heading\n\n##### Sub\n\n"
                      "| x |\n|---|\n| 1 |\n<!-- END results/alpha.md -->")
    assert new == README.replace("<!-- BEGIN results/alpha.md -->\nstale alpha\n<!-- END results/alpha.md -->",
                                 expected_block)
    # a second run changes nothing
    again = update_readme(readme)
    assert not again.changed and readme.read_text() == new


def test_splice_readme_without_blocks_is_identity(tmp_path):
    text = "no markers here\n<!-- BEGIN results/x.md -->\nunterminated\n"
    new, report = splice_readme(text, tmp_path)
    assert new == text and report.refreshed == [] and report.missing == [] and not report.changed


def test_bench_readme_command_reports_missing_file(tmp_path, capsys):
    from rankguard.bench.readme import main

    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "alpha.md").write_text("# A\n")
    (tmp_path / "README.md").write_text(README)
    assert main(["--readme", str(tmp_path / "README.md")]) == 1
    captured = capsys.readouterr()
    assert "results/missing.md is missing" in captured.err
    assert "1 table(s) spliced" in captured.out
    assert "stale missing" in (tmp_path / "README.md").read_text()
    with pytest.raises(FileNotFoundError, match="no such README"):
        main(["--readme", str(tmp_path / "nope.md")])
