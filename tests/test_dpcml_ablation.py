"""`rankguard bench dpcml_ablation --quick`: files, keys, table rows, and merging rows and seeds."""

from __future__ import annotations

import json

from conftest import require_dataset

from rankguard.bench import dpcml_ablation as abl


def _run(out, *argv):
    import argparse

    parser = argparse.ArgumentParser()
    abl.add_arguments(parser)
    return abl.run(parser.parse_args(["--quick", "--out", str(out), *argv]))


def test_variants_change_one_thing_each():
    base = abl.variant_config("C5", 0, 3)
    assert (base.model, base.vectors, base.diversity, base.vector_rule, base.user_vectors) == \
        ("dpcml-sf", 5, (abl.ETA, abl.DELTA1, abl.DELTA2), "fixed", "free")
    assert (base.margin, base.dim, base.select_metric, base.eval_every, base.patience) == (2.0, 256, "AUC", 1, 0)
    diff = {v: {k for k, x in abl.variant_config(v, 0, 3).to_dict().items() if base.to_dict()[k] != x}
            for v in abl.VARIANTS}
    assert diff == {"C1": {"vectors"}, "C2": {"vectors"}, "C3": {"vectors"}, "C5": set(),
                    "C5-noreg": {"diversity"}, "C5-apa": {"vector_rule"}, "C5-projected": {"user_vectors"}}


def test_quick_run_writes_files_and_merges_rows_and_seeds(tmp_path, capsys):
    require_dataset("ml-100k-libcml")
    assert _run(tmp_path, "--variants", "C1", "C5-apa") == 0
    stem = tmp_path / "dpcml_ablation_quick"
    assert {p.name for p in tmp_path.iterdir()} == {f"dpcml_ablation_quick.{e}" for e in ("json", "md", "png")}
    data = json.loads(stem.with_suffix(".json").read_text())
    assert data["quick"] is True and data["dataset"] == "ml-100k-libcml" and list(data["variants"]) == ["C1", "C5-apa"]
    row = data["variants"]["C5-apa"]
    assert row["seeds"] == [0] and row["epochs"] == abl.QUICK_EPOCHS and row["config"]["vector_rule"] == "log2"
    assert set(row["per_seed"][0]) >= {"P@3", "AUC", "tail_P@3", "tail_NDCG@3", "vectors_used", "active_vectors", "seed"}
    assert 1.0 <= row["mean"]["vectors_used"] <= row["mean"]["active_vectors"] <= 5.0
    assert data["variants"]["C1"]["mean"]["vectors_used"] == 1.0 and row["std"]["P@3"] is None
    md = stem.with_suffix(".md").read_text()
    assert "**1 seed**" in md and "QUICK" in md and "| C = 1 | 1 |" in md and "tail_P@3" in md
    assert stem.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"

    # re-run one row with another seed, kept: C1 gets seeds [0, 1], C5-apa stays as it was
    assert _run(tmp_path, "--variants", "C1", "--seeds", "1", "--add-seeds") == 0
    merged = json.loads(stem.with_suffix(".json").read_text())
    c1 = merged["variants"]["C1"]
    assert c1["seeds"] == [0, 1] and [r["seed"] for r in c1["per_seed"]] == [0, 1] and c1["config"]["seed"] == 0
    assert c1["std"]["P@3"] is not None and merged["rows_kept_from_previous_file"] == ["C5-apa"]
    assert merged["variants"]["C5-apa"] == data["variants"]["C5-apa"]
    assert "| C = 1 | 2 |" in stem.with_suffix(".md").read_text()
    # without --add-seeds a re-run replaces the row's seeds
    assert _run(tmp_path, "--variants", "C1", "--seeds", "2") == 0
    assert json.loads(stem.with_suffix(".json").read_text())["variants"]["C1"]["seeds"] == [2]
    assert "dpcml_ablation_quick.png" in capsys.readouterr().out


def test_add_seeds_treats_a_field_missing_from_an_older_file_as_its_default():
    from rankguard.bench.dpcml_ablation import _same_config
    from rankguard.recsys.recipes import make_config

    new = make_config("dpcml-sf", "ml-100k-libcml", seed=1).to_dict()
    old = {k: v for k, v in make_config("dpcml-sf", "ml-100k-libcml", seed=0).to_dict().items()
           if k not in ("layers", "temperature", "dn_hidden")}   # a file written before these fields existed
    assert _same_config(old, new)
    assert not _same_config(dict(old, margin=1.5), new)
    assert not _same_config(dict(old, layers=3), new)
