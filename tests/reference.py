"""Brute-force reference definitions used by the tests (a flat module of small functions).

Each function is the textbook definition written as plainly as possible, O(n^2) or worse, in
float64 numpy. Fast implementations in rankguard are checked against these.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


def pair_score_matrix(pos, neg) -> np.ndarray:
    """M[i, j] = 1 if pos_i > neg_j, 1/2 if equal, 0 otherwise."""
    pos = np.asarray(pos, dtype=np.float64)[:, None]
    neg = np.asarray(neg, dtype=np.float64)[None, :]
    return (pos > neg) + 0.5 * (pos == neg)


def roc_auc_bruteforce(scores, labels) -> float:
    """Mean over all (positive, negative) pairs of 1(s+ > s-) + 1/2 1(s+ = s-)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels) == 1
    return float(pair_score_matrix(s[y], s[~y]).mean())


def average_precision_bruteforce(scores, labels) -> float:
    """Sum over distinct thresholds t (descending) of (new recall at t) * precision(s >= t)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels) == 1
    n_pos = y.sum()
    total = 0.0
    for t in sorted(set(s.tolist()), reverse=True):
        selected = s >= t
        precision = (selected & y).sum() / selected.sum()
        new_positives = ((s == t) & y).sum()
        total += new_positives / n_pos * precision
    return float(total)


def decimal_fraction(x: float) -> Fraction:
    """The simple fraction a person meant: 0.29 -> 29/100, 1/3 -> 1/3 (not the binary value)."""
    return Fraction(float(x)).limit_denominator(10**6)


def floor_count(exact: Fraction, n: int) -> int:
    """max(1, floor(exact)), capped at n."""
    return max(1, min(n, math.floor(exact)))


def partial_auc_pairs_bruteforce(scores, labels, max_fpr, min_tpr=None) -> float:
    """Mean of the pair matrix over the k- highest negatives and the k+ lowest positives."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels) == 1
    pos, neg = np.sort(s[y]), np.sort(s[~y])[::-1]
    k_neg = floor_count(decimal_fraction(max_fpr) * neg.size, neg.size)
    alpha = 0 if min_tpr is None else decimal_fraction(min_tpr)
    k_pos = floor_count((1 - alpha) * pos.size, pos.size)
    return float(pair_score_matrix(pos[:k_pos], neg[:k_neg]).mean())


def roc_points_bruteforce(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) at every distinct threshold, descending, starting at (0, 0)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels) == 1
    fpr, tpr = [0.0], [0.0]
    for t in sorted(set(s.tolist()), reverse=True):
        fpr.append(((s >= t) & ~y).sum() / (~y).sum())
        tpr.append(((s >= t) & y).sum() / y.sum())
    return np.array(fpr), np.array(tpr)


def partial_auc_roc_bruteforce(scores, labels, max_fpr, min_tpr=None) -> float:
    """(1/((1-a) b)) * integral over FPR in [0, b] of max(TPR - a, 0), piecewise linear ROC.

    Walks the segments one by one; a segment that crosses TPR = a is split at the crossing.
    """
    a = 0.0 if min_tpr is None else float(min_tpr)
    b = float(max_fpr)
    fpr, tpr = roc_points_bruteforce(scores, labels)
    area = 0.0
    for (x0, y0), (x1, y1) in zip(zip(fpr[:-1], tpr[:-1]), zip(fpr[1:], tpr[1:])):
        if x1 == x0 or x0 >= b:
            continue  # vertical segment (no area) or beyond the FPR budget
        if x1 > b:  # cut the segment at FPR = b
            y1 = y0 + (y1 - y0) * (b - x0) / (x1 - x0)
            x1 = b
        if y0 >= a and y1 >= a:
            area += (x1 - x0) * ((y0 - a) + (y1 - a)) / 2
        elif y0 < a and y1 > a:  # rises through a: triangle to the right of the crossing
            xc = x0 + (x1 - x0) * (a - y0) / (y1 - y0)
            area += (x1 - xc) * (y1 - a) / 2
        # both below a (TPR is non-decreasing, so it never falls through a): nothing
    return area / ((1 - a) * b)


def qvalues_bruteforce(scores, is_target) -> np.ndarray:
    """q_i = min over score values t <= s_i of min(1, (D(t) + 1) / T(t)), counts over s >= t."""
    s = np.asarray(scores, dtype=np.float64)
    target = np.isin(np.asarray(is_target), (1, True))
    fdr_at = {}
    for t in set(s.tolist()):
        n_target = (target & (s >= t)).sum()
        n_decoy = (~target & (s >= t)).sum()
        fdr_at[t] = 1.0 if n_target == 0 else min(1.0, (n_decoy + 1) / n_target)
    return np.array([min(f for t, f in fdr_at.items() if t <= si) for si in s.tolist()])
