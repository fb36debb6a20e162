"""PR/ROC points against brute-force definitions, and that the figure helpers write PNGs."""

from __future__ import annotations

import numpy as np
import pytest

from rankguard.plots import plot_pr_curves, plot_roc_curves, pr_points, roc_points


def _random_case(seed: int, n: int = 60, tie_levels: int | None = None):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=n)
    if tie_levels:
        s = np.round(s * tie_levels) / tie_levels
    y = rng.random(n) < 0.3
    y[0], y[1] = True, False
    return s, y.astype(int)


@pytest.mark.parametrize("seed,ties", [(0, None), (1, 2), (2, 1), (3, 5)])
def test_points_match_brute_force_thresholds(seed, ties):
    s, y = _random_case(seed, tie_levels=ties)
    thresholds = np.sort(np.unique(s))[::-1]
    above = s[None, :] >= thresholds[:, None]            # [K, N]
    tp = (above & (y[None, :] == 1)).sum(1)
    fp = (above & (y[None, :] == 0)).sum(1)
    r, p = pr_points(s, y)
    full = thresholds >= s[y == 1].min()  # PR points stop at the first threshold with recall 1
    np.testing.assert_allclose(r[1:], tp[full] / y.sum(), rtol=1e-12)
    np.testing.assert_allclose(p[1:], tp[full] / (tp[full] + fp[full]), rtol=1e-12)
    assert r[-1] == 1.0
    f, t = roc_points(s, y)
    np.testing.assert_allclose(f, np.r_[0, fp / (y == 0).sum()], rtol=1e-12)
    np.testing.assert_allclose(t, np.r_[0, tp / y.sum()], rtol=1e-12)


@pytest.mark.parametrize("seed,ties", [(4, None), (5, 2), (6, 1)])
def test_curve_areas_equal_pairwise_auc_and_average_precision(seed, ties):
    s, y = _random_case(seed, tie_levels=ties)
    pos, neg = s[y == 1], s[y == 0]
    auc_pairs = ((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean()
    f, t = roc_points(s, y)
    assert np.trapezoid(t, f) == pytest.approx(auc_pairs, rel=1e-12)
    # AP as the mean over positives of the precision at the positive's own score (ties included)
    prec_at = np.array([(y[s >= v] == 1).mean() for v in pos])
    r, p = pr_points(s, y)
    assert np.sum(np.diff(r) * p[1:]) == pytest.approx(prec_at.mean(), rel=1e-12)


def test_points_reject_bad_input():
    with pytest.raises(ValueError, match="no negative"):
        pr_points([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="scores"):
        roc_points([0.1, np.nan], [0, 1])
    with pytest.raises(ValueError, match="same length"):
        pr_points([0.1, 0.2, 0.3], [0, 1])


def test_figures_are_written_as_png(tmp_path):
    s, y = _random_case(7)
    panels = {"a": {"x": (s, y), "y": (-s, y)}, "b": {"x": (s[:30], y[:30])}}
    for fn, name in [(plot_pr_curves, "pr.png"), (plot_roc_curves, "roc.png")]:
        path = fn(panels, tmp_path / name, metric_labels={"a": {"x": "AP 0.5"}})
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pr.png", "roc.png"]
