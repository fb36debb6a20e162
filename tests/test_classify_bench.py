"""`rankguard bench noisy_labels`: a smoke run writes both files, and a second run merges its rows."""

from __future__ import annotations

import json

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
    assert "| aldr-kl |" in md and "## Suspected labels" in md and "QUICK" in md
