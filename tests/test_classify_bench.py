"""`rankguard bench noisy_labels`: a smoke run writes both files, and a second run merges its rows."""

from __future__ import annotations

import json

import pytest

from rankguard.cli import main


def test_noisy_labels_quick_merges_rows(tmp_path):
    base = ["bench", "noisy_labels", "--quick", "--datasets", "digits", "--noises", "pairflip:0.4",
            "--lrs", "0.1", "--out", str(tmp_path)]
    assert main(base + ["--losses", "ce", "aldr-kl"]) == 0
    assert main(base + ["--losses", "mae"]) == 0
    payload = json.loads((tmp_path / "noisy_labels_quick.json").read_text())
    assert sorted(payload["rows"]) == ["digits|pairflip:0.4|aldr-kl", "digits|pairflip:0.4|ce",
                                       "digits|pairflip:0.4|mae"]
    assert payload["rows_kept_from_previous_file"] == ["digits|pairflip:0.4|aldr-kl", "digits|pairflip:0.4|ce"]
    row = payload["rows"]["digits|pairflip:0.4|aldr-kl"]
    assert len(row["grid_val_noisy_top1"]) == 2 and row["chosen"]["lr"] == 0.1
    md = (tmp_path / "noisy_labels_quick.md").read_text()
    assert "| aldr-kl |" in md and "## Suspected labels, in-sample" in md and "QUICK" in md
    # out-of-fold rankings for ce and aldr-kl (OOF_LOSSES), on seed 0, 2 folds in --quick
    oof = row["per_seed"][0]["oof"]
    assert oof["folds"] == 2 and oof["n_flipped"] > 0 and set(oof["rankings"]) == {"loss", "signed_confidence",
                                                                                  "combined"}
    assert "oof" not in payload["rows"]["digits|pairflip:0.4|mae"]["per_seed"][0]
    assert "## Suspected labels, out-of-fold, beside cleanlab" in md


def test_oof_logits_never_see_their_label(monkeypatch):
    """Each fold model is trained without the rows it predicts, and every row is predicted once."""
    import numpy as np

    import rankguard.classify.trainer as trainer
    from rankguard.classify.data import load_split
    from rankguard.classify.oof import out_of_fold_logits
    from rankguard.classify.recipes import ClassifyConfig

    split = load_split("digits", "uniform:0.4")
    seen = []
    real = trainer.train

    def spy(config, out=None, mode="new", log=None, split=None):
        seen.append((set(split.train_rows.tolist()), set(split.test_rows.tolist())))
        return real(config, out, mode, log, split)

    monkeypatch.setattr(trainer, "train", spy)
    z = out_of_fold_logits(ClassifyConfig(dataset="digits", loss="ce", noise="uniform:0.4", epochs=1), split, 3)
    assert len(seen) == 3 and np.isfinite(z).all()
    assert all(not (tr & held) for tr, held in seen)
    assert sorted(r for _, held in seen for r in held) == sorted(split.train_rows.tolist())


def test_oof_against_cleanlab():
    """With cleanlab installed, its find_label_issues runs on the same out-of-fold probabilities."""
    pytest.importorskip("cleanlab", reason="cleanlab is a benchmark extra (pip install 'rankguard[bench]')")
    from rankguard.classify.data import load_split
    from rankguard.classify.oof import oof_suspect_quality
    from rankguard.classify.recipes import ClassifyConfig

    split = load_split("digits", "uniform:0.4")
    q = oof_suspect_quality(ClassifyConfig(dataset="digits", loss="ce", noise="uniform:0.4", epochs=2, lr=0.1),
                            split, folds=2)
    cl = q["cleanlab"]
    assert 0 < cl["n_flagged"] <= q["n_train"] and 0 <= cl["precision"] <= 1 and 0 <= cl["recall"] <= 1
    # for cross-entropy, −log p_y and cleanlab's self-confidence p_y give the same ranking
    assert cl["self_confidence_precision_at_n"] == pytest.approx(q["rankings"]["loss"]["precision_at_n"], abs=0.01)


def test_oof_needs_noise_and_enough_rows():
    from rankguard.classify.data import load_split
    from rankguard.classify.oof import oof_suspect_quality, out_of_fold_logits
    from rankguard.classify.recipes import ClassifyConfig

    clean = load_split("digits", "none")
    cfg = ClassifyConfig(dataset="digits", loss="ce", epochs=1)
    with pytest.raises(ValueError, match="needs injected noise"):
        oof_suspect_quality(cfg, clean, folds=2)
    with pytest.raises(ValueError, match="`folds`"):
        out_of_fold_logits(cfg, clean, folds=1)
    with pytest.raises(ValueError, match="smallest class count"):
        out_of_fold_logits(cfg, clean, folds=10_000)
