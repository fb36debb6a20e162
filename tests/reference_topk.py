"""Brute-force per-user ranking metrics and evaluator, written plainly with Python loops.

Independent of rankguard.metrics.topk: ranks come from Python's sorted() on (-score, item),
AUC from counting every (positive, negative) pair (a tie counts 1/2).
"""

from __future__ import annotations

import math

import numpy as np


def user_metrics(scores, relevant, exclude, ks):
    """Metrics of one user: scores [I] floats, relevant / exclude: sets of item indices."""
    candidates = [i for i in range(len(scores)) if i not in exclude]
    rel = [i for i in candidates if i in relevant]
    out = {}
    if not rel:
        return None
    ranking = sorted(candidates, key=lambda i: (-scores[i], i))
    position = {item: p + 1 for p, item in enumerate(ranking)}
    for k in ks:
        top = ranking[:k]
        hits = sum(1 for i in top if i in relevant)
        out[f"P@{k}"] = hits / k
        out[f"R@{k}"] = hits / len(rel)
        dcg = sum(1.0 / math.log2(p + 2) for p, i in enumerate(top) if i in relevant)
        idcg = sum(1.0 / math.log2(p + 2) for p in range(min(len(rel), k)))
        out[f"NDCG@{k}"] = dcg / idcg
    rel_positions = sorted(position[i] for i in rel)
    out["MAP"] = sum((j + 1) / p for j, p in enumerate(rel_positions)) / len(rel)
    out["MRR"] = 1.0 / rel_positions[0]
    negatives = [i for i in candidates if i not in relevant]
    if negatives:
        wins = 0.0
        for i in rel:
            for j in negatives:
                wins += 1.0 if scores[i] > scores[j] else (0.5 if scores[i] == scores[j] else 0.0)
        out["AUC"] = wins / (len(rel) * len(negatives))
    else:
        out["AUC"] = math.nan
    return out


def _rows(csr):
    return [set(csr.indices[csr.indptr[u]:csr.indptr[u + 1]].tolist()) for u in range(csr.shape[0])]


def evaluate(split, scores, stage, protocol, ks, tail_items=None):
    """The evaluator's averages, user by user. scores: numpy [n_users, n_items]."""
    train, val, test = _rows(split.train), _rows(split.val), _rows(split.test)
    target = test if stage == "test" else val
    sums, counts = {}, {}

    def add(name, value):
        if not math.isnan(value):
            sums[name] = sums.get(name, 0.0) + value
            counts[name] = counts.get(name, 0) + 1

    all_ks = sorted(set(ks) | {20})
    for u in range(split.n_users):
        if not target[u]:
            continue
        if protocol == "standard" and stage == "test":
            exclude = train[u] | val[u]
        else:
            exclude = train[u]
        row = scores[u].tolist()
        m = user_metrics(row, target[u], exclude, all_ks)
        n_rel = len(target[u])
        for k in all_ks:
            if protocol == "standard" or n_rel >= k:
                for name in ("P", "R", "NDCG"):
                    add(f"{name}@{k}", m[f"{name}@{k}"])
        if protocol == "standard" or n_rel >= 3:
            for name in ("MAP", "MRR", "AUC"):
                add(name, m[name])
        if tail_items is not None:
            tail_rel = {i for i in target[u] if tail_items[i]}
            if tail_rel:
                # ranking over all candidates, only tail items relevant
                mt = user_metrics(row, tail_rel, exclude, [20])
                add("tail_R@20", mt["R@20"])
                add("tail_NDCG@20", mt["NDCG@20"])
    out = {name: sums[name] / counts[name] for name in sums}
    out["counts"] = counts
    return out


def tail_items_by_popularity(train, fraction):
    """Least popular round(fraction * n_items) items by training count (ties: higher index = less popular)."""
    n_items = train.shape[1]
    counts = np.bincount(train.indices, minlength=n_items)
    ordered = sorted(range(n_items), key=lambda i: (-counts[i], i))
    n_tail = int(round(fraction * n_items))
    tail = np.zeros(n_items, dtype=bool)
    for i in ordered[n_items - n_tail:]:
        tail[i] = True
    return tail
