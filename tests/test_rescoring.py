"""Rescoring: PIN / TopPIC readers (real files and the issue's bad-input list), q-values, CLI."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from rankguard.cli import main
from rankguard.rescoring import RescoringInputError, read_matches
from rankguard.rescoring.pipeline import competition, origin_count, summarise

DATA = Path(os.environ.get("RANKGUARD_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
YEAST = DATA / "pin" / "yeast_percolator.pin"
TOPPIC_TEST = DATA / "toppic" / "test"
needs_data = pytest.mark.skipif(not YEAST.exists(), reason=f"shared data not found at {DATA}")

HEADER = "SpecId\tLabel\tScanNr\tExpMass\tf1\tf2\tPeptide\tProteins\n"


def _pin(tmp_path, body, header=HEADER, name="x.txt"):
    p = tmp_path / name
    p.write_text(header + body)
    return p


def _rows(n=6):
    return "".join(f"s{i}\t{1 if i % 2 else -1}\t{i}\t100.{i}\t{i}.5\t{-i}\tK.PEP{i}K.R\tprotA\n" for i in range(n))


@needs_data
def test_yeast_pin_counts_spillover_and_direction():
    t = read_matches(YEAST)
    assert len(t) == 19674 and int(t.is_target.sum()) == 9852 and t.features.shape[1] == 19
    assert sum("\t" in p for p in t.proteins) == 1738
    assert t.default_direction["deltCn"] == pytest.approx(1.61)
    assert len(set(t.spectrum)) < len(t)       # (ScanNr, ExpMass): target and decoy of a spectrum share it


@needs_data
def test_toppic_reader_labels_and_fdr():
    f = sorted(TOPPIC_TEST.glob("*.xml"))[0]
    t = read_matches(f)
    assert t.kind == "toppic" and len(t) > 400 and 0 < t.is_target.sum() < len(t)
    assert all(p.startswith("DECOY_") for p, y in zip(t.proteins, t.is_target) if not y)
    assert t.extra["toppic_fdr"].shape == (len(t),)


def test_pin_detected_from_content_and_integer_looking_text(tmp_path):
    body = _rows().replace("s0\t", "6d05\t", 1).replace("\t0\t100.0", "\t6d05\t100.0", 1)
    t = read_matches(_pin(tmp_path, body, name="weird.xml"))
    assert t.kind == "pin" and t.spec_ids[0] == "6d05" and t.spectrum[0] == "6d05|100.0"


def test_pin_mokapot_extended_layout_with_spill(tmp_path):
    header = HEADER.rstrip("\n") + "\tModifiedPeptide\tPeptideGroup\n"
    body = "a\t1\t1\t10\t1\t2\tPEP\tprotA\tprotB\tPEP[1]\tg1\nb\t-1\t2\t11\t0\t1\tPEQ\tprotC\tPEQ\tg2\n"
    t = read_matches(_pin(tmp_path, body, header))
    assert t.proteins == ["protA\tprotB", "protC"] and t.feature_names == ["f1", "f2"]


@pytest.mark.parametrize("body, match", [
    (_rows().replace("\t-1\t", "\t1\t"), "no decoys"),
    (_rows().replace("\t1\t", "\t-1\t"), "no targets"),
    (_rows().replace("s2\t-1", "s2\t0", 1), r":4: Label must be 1 \(target\) or -1 \(decoy\), got '0'"),
    (_rows().replace("\t3.5\t", "\tabc\t", 1), r":5: feature `f1` is not a finite number: 'abc'"),
    (_rows() + "s9\t1\t9\n", r":8: ragged row"),
])
def test_pin_bad_input_names_the_line(tmp_path, body, match):
    with pytest.raises(RescoringInputError, match=match):
        read_matches(_pin(tmp_path, body))


def test_pin_missing_label_and_empty_file(tmp_path):
    with pytest.raises(RescoringInputError, match="no `Label` column"):
        read_matches(_pin(tmp_path, _rows(), HEADER.replace("Label", "Lbl")))
    empty = tmp_path / "e.pin"
    empty.write_text("")
    with pytest.raises(RescoringInputError, match="empty"):
        read_matches(empty)


def test_pin_exact_repeat_is_reported_not_fatal(tmp_path):
    rows = _rows()
    t = read_matches(_pin(tmp_path, rows + rows.splitlines(keepends=True)[1]))
    assert len(t) == 6 and "exact repeat" in t.notes[0] and ":8:" in t.notes[0]


def test_xml_not_toppic_and_truncated(tmp_path):
    p = tmp_path / "a.xml"
    p.write_text("<?xml version='1.0'?><mzML><run/></mzML>")
    with pytest.raises(RescoringInputError, match="not TopPIC PrSM output"):
        read_matches(p)
    prsm = ("<prsm><prsm_id>7</prsm_id><spectrum_id>1</spectrum_id><adjusted_prec_mass>100</adjusted_prec_mass>"
            "<fdr>0.1</fdr><match_peak_num>3</match_peak_num><match_fragment_num>3</match_fragment_num>"
            "<norm_match_fragment_num>1</norm_match_fragment_num><proteoform><fasta_seq><seq_name>DECOY_x"
            "</seq_name></fasta_seq><start_pos>0</start_pos><end_pos>9</end_pos><variable_ptm_num>0"
            "</variable_ptm_num><unexpected_ptm_num>0</unexpected_ptm_num><proteo_match_seq>ABC</proteo_match_seq>"
            "</proteoform><extreme_value><p_value>0.1</p_value><e_value>1</e_value></extreme_value></prsm>")
    p.write_text("<prsm_list>" + prsm + prsm.replace(">7<", ">8<")[:120])
    with pytest.raises(RescoringInputError, match="truncated after PrSM 7"):
        read_matches(p)
    p.write_text("<prsm_list>" + prsm.replace("<fdr>0.1</fdr>", "") + "</prsm_list>")
    with pytest.raises(RescoringInputError, match="PrSM 7: missing <fdr>"):
        read_matches(p)


def _brute_q(scores, tgt):
    """(D + 1)/T over thresholds at each distinct score, running minimum from the bottom."""
    out = []
    for s in scores:
        best = 1.0
        for t in set(scores):
            if t <= s:
                T = sum(1 for x, y in zip(scores, tgt) if x >= t and y)
                D = sum(1 for x, y in zip(scores, tgt) if x >= t and not y)
                best = min(best, min(1.0, (D + 1) / T) if T else 1.0)
        out.append(best)
    return out


def test_summary_qvalues_match_brute_force_and_competition():
    rng = np.random.default_rng(0)
    n = 120
    scores = np.round(rng.normal(size=n), 1)
    from rankguard.rescoring.readers import MatchTable
    keys = [str(i // 2) for i in range(n)]
    tgt = rng.random(n) < 0.6
    t = MatchTable("pin", [str(i) for i in range(n)], tgt, keys, np.zeros((n, 1)), ["f"],
                   [f"P{i % 40}" for i in range(n)], ["x"] * n, ["mem"] * n)
    res = summarise(t, scores)
    win = competition(scores, keys)
    assert len(win) == 60 and all(scores[w] == max(scores[int(keys[w]) * 2:int(keys[w]) * 2 + 2]) for w in win)
    assert np.allclose(res["psm_q"], _brute_q(list(scores[win]), list(tgt[win])))
    assert origin_count(np.array([3.0, 2.0, 1.0]), np.array([True, False, True]), 0.5) == 2


def test_cli_no_target_passes_writes_tables_and_zero(tmp_path, capsys):
    body = "".join(f"s{i}\t{1 if i % 2 else -1}\t{i}\t{i}\t{i % 3}\t{(i * 7) % 5}\tPEP{i}\tp\n" for i in range(40))
    f = _pin(tmp_path, body)
    out = tmp_path / "out"
    assert main(["rescore", str(f), "--out", str(out), "--epochs", "1"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["accepted_psms"] == 0 and s["accepted_peptides"] == 0
    assert (out / "psms.tsv").exists() and (out / "peptides.tsv").exists() and (out / "qvalues.png").exists()
    assert "0 accepted PSMs" in capsys.readouterr().out


@needs_data
def test_cli_acceptance_yeast_summary(tmp_path):
    out = tmp_path / "y"
    assert main(["rescore", str(YEAST), "--out", str(out), "--loss", "svm"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert isinstance(s["accepted_psms"], int) and s["accepted_psms"] > 0
    assert set(s["by_threshold"]) == {"0.01", "0.05"}


@needs_data
def test_rescore_never_overwrites_an_earlier_result_silently(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["rescore", str(YEAST), "--out", str(out), "--loss", "svm"]) == 0
    assert json.loads((out / "status.json").read_text())["status"] == "complete"
    capsys.readouterr()
    assert main(["rescore", str(YEAST), "--out", str(out), "--loss", "svm"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--overwrite" in err
    assert main(["rescore", str(YEAST), "--out", str(out), "--loss", "svm", "--overwrite"]) == 0


def test_cli_origin_code_form_flags_reach_the_loss(tmp_path):
    body = "".join(f"s{i}\t{1 if i % 2 else -1}\t{i}\t{i}\t{i % 3 + (i % 2)}\t{(i * 7) % 5}\tPEP{i}\tp\n"
                   for i in range(60))
    f = _pin(tmp_path, body)
    out = tmp_path / "out"
    assert main(["rescore", str(f), "--out", str(out), "--epochs", "2", "--normalizer", "1e4",
                 "--alpha-in-gradient", "--memory-subsample", "5"]) == 0
    s = json.loads((out / "summary.json").read_text())["settings"]
    assert s["normalizer"] == 1e4 and s["detach_alpha"] is False and s["memory_subsample"] == 5
    from rankguard.rescoring.pipeline import ORIGIN_CODE_FORM, RescoreSettings
    assert RescoreSettings(**ORIGIN_CODE_FORM).memory_subsample == 10_000
    with pytest.raises(ValueError, match="`memory_subsample`"):
        RescoreSettings(memory_subsample=0)
    with pytest.raises(ValueError, match="`normalizer`"):
        RescoreSettings(normalizer="constant")
    with pytest.raises(SystemExit):
        main(["rescore", str(f), "--out", str(tmp_path / "o2"), "--normalizer", "-1"])


def test_accepted_curve_counts_targets_at_or_below_each_threshold():
    from rankguard.rescoring import accepted_curve
    q = np.array([0.0, 0.01, 0.01, 0.02, 0.5])
    t = np.array([True, True, False, True, True])
    assert accepted_curve(q, t, np.array([0.0, 0.01, 0.015, 0.1, 1.0])).tolist() == [1, 2, 2, 3, 4]
    with pytest.raises(ValueError, match="`q`"):
        accepted_curve(q, t[:2])
