"""Top-K and full-ranking metrics for recommendation, per user, on a block of users.

Inputs for every function (numpy or torch; the result has the same kind):

* ``scores`` [U, I] float, finite: higher = more relevant;
* ``relevant`` [U, I] bool (or 0/1): the user's relevant items for this stage;
* ``exclude`` [U, I] bool or None: items that are not candidates (e.g. training items). They
  are never counted: not as hits, not as relevant, not in the candidate count ``N``.

**One ranking for all metrics.** Each user's candidates are ordered by (score descending,
item index ascending): a deterministic, stable order (one ``torch.sort`` per block), so that
the position of a tied item does not depend on the metric or the block. Position ``p`` is
1-based. With ``R`` the relevant candidates (``|R| = K``), ``N`` the number of candidates,
``hits@k`` the relevant items among the first ``k`` positions:

* ``P@k = hits@k / k`` (k even if ``N < k``);
* ``R@k = hits@k / K``;
* ``NDCG@k = sum_{p <= k, item at p in R} 1/log2(p + 1) / sum_{p=1}^{min(K, k)} 1/log2(p + 1)``;
* ``AP = (1/K) sum_{i in R} (#R at positions <= p_i) / p_i`` over the full ranking (MAP averages AP);
* ``RR = 1 / p_first`` (position of the first relevant candidate; MRR averages RR);
* ``AUC = (sum_{i in R} r_i - K(K+1)/2) / (K (N - K))`` with ``r_i`` the rank of ``i`` counted
  from the bottom among the ``N`` candidates; **tied scores get the average rank** of their tie
  group, so AUC counts a tied (positive, negative) pair as 1/2 (Mann-Whitney). AUC is the one
  metric that averages over ties; the others use the stable order above.

A user with no relevant candidate gets NaN in every per-user vector (AUC also when ``N = K``);
callers (``rankguard.recsys.Evaluator``) leave NaN users out of averages.

Example
-------
>>> import torch
>>> s = torch.tensor([[0.9, 0.1, 0.5, 0.3]])
>>> rel = torch.tensor([[False, True, True, False]])
>>> precision_at_k(s, rel, 2).tolist(), recall_at_k(s, rel, 2).tolist()
([0.5], [0.5])
>>> mrr(s, rel).tolist(), auc_per_user(s, rel).tolist()
([0.5], [0.25])
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from rankguard._validation import check_scores_tensor

__all__ = ["precision_at_k", "recall_at_k", "ndcg_at_k", "map_score", "mrr", "auc_per_user", "ranking_metrics"]


def _as_tensor(x: Any) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def _bool_matrix(x: Any, name: str, shape: torch.Size, device: torch.device) -> torch.Tensor:
    t = _as_tensor(x).to(device)
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"`{name}` must have the shape of `scores` {tuple(shape)}, got {tuple(t.shape)}")
    if t.dtype == torch.bool:
        return t
    ok = (t == 0) | (t == 1)
    if not bool(ok.all()):
        raise ValueError(f"`{name}` must be boolean or 0/1")
    return t != 0


def _check_ks(ks: Sequence[int]) -> list[int]:
    out = []
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"`k` must be a positive integer, got {k!r}")
        out.append(int(k))
    return out


def ranking_metrics(scores: Any, relevant: Any, ks: Sequence[int] = (), exclude: Any = None,
                    full: bool = True, validate: bool = True) -> dict[str, torch.Tensor]:
    """All per-user metrics from one sort: ``P@k``, ``R@k``, ``NDCG@k`` for ``k`` in ``ks``, and
    (with ``full``) ``MAP``, ``MRR``, ``AUC``; plus ``n_relevant`` (K) and ``n_candidates`` (N).

    Shapes: ``scores``, ``relevant``, ``exclude`` [U, I]; every output [U], float64 torch tensors
    on the device of ``scores`` (the counts are int64). Definitions in the module docstring.

    >>> out = ranking_metrics(torch.tensor([[3., 2., 1.]]), torch.tensor([[0, 1, 1]]), ks=[1])
    >>> out["P@1"].item(), out["MAP"].item()
    (0.0, 0.5833333333333333)
    """
    s = _as_tensor(scores)
    if validate:
        check_scores_tensor(s, "scores", ndim=2)
        ks = _check_ks(ks)
    n_users, n_items = s.shape
    device = s.device
    rel = _bool_matrix(relevant, "relevant", s.shape, device) if validate else relevant
    excl = None
    if exclude is not None:
        excl = _bool_matrix(exclude, "exclude", s.shape, device) if validate else exclude
        rel = rel & ~excl
    # ascending stable sort of -score == (score desc, index asc); excluded items go last (+inf)
    neg = -s
    if excl is not None:
        neg = neg.masked_fill(excl, math.inf)
    sorted_neg, order = torch.sort(neg, dim=1, stable=True)
    n_rel = rel.sum(1)
    n_cand = torch.full_like(n_rel, n_items) if excl is None else (~excl).sum(1)
    k_rel = n_rel.to(torch.float64)
    nan = torch.tensor(math.nan, dtype=torch.float64, device=device)
    has_rel = n_rel > 0
    out: dict[str, torch.Tensor] = {"n_relevant": n_rel, "n_candidates": n_cand}

    if ks:
        k_max = min(max(ks), n_items)
        top_rel = rel.gather(1, order[:, :k_max]).to(torch.float64)  # [U, k_max]
        positions = torch.arange(1, k_max + 1, dtype=torch.float64, device=device)
        discount = 1.0 / torch.log2(positions + 1.0)
        cum_hits = top_rel.cumsum(1)
        cum_dcg = (top_rel * discount).cumsum(1)
        ideal_all = torch.cat([torch.zeros(1, dtype=torch.float64, device=device),
                               (1.0 / torch.log2(torch.arange(2, max(ks) + 2, dtype=torch.float64,
                                                                device=device))).cumsum(0)])
        for k in ks:
            kk = min(k, n_items)
            hits = cum_hits[:, kk - 1]
            ideal = ideal_all[torch.clamp(n_rel, max=k)]
            out[f"P@{k}"] = torch.where(has_rel, hits / k, nan)
            out[f"R@{k}"] = torch.where(has_rel, hits / k_rel, nan)
            out[f"NDCG@{k}"] = torch.where(has_rel, cum_dcg[:, kk - 1] / ideal.clamp(min=1e-300), nan)

    if full:
        rel_sorted = rel.gather(1, order)  # [U, I] bool, in ranking order
        user, idx = rel_sorted.nonzero(as_tuple=True)  # row-major: ascending position within a user
        pos = idx.to(torch.float64) + 1.0
        first = torch.zeros(n_users + 1, dtype=torch.int64, device=device)
        first[1:] = n_rel.cumsum(0)
        rank_among_rel = torch.arange(user.numel(), device=device) - first[user] + 1  # 1..K
        ap = torch.zeros(n_users, dtype=torch.float64, device=device)
        ap.index_add_(0, user, rank_among_rel.to(torch.float64) / pos)
        out["MAP"] = torch.where(has_rel, ap / k_rel.clamp(min=1), nan)
        first_pos = torch.full((n_users,), math.inf, dtype=torch.float64, device=device)
        first_pos.scatter_reduce_(0, user, pos, reduce="amin")
        out["MRR"] = torch.where(has_rel, 1.0 / first_pos, nan)
        # average ranks over ties: the tie group of a relevant item spans positions
        # (#candidates strictly above, #candidates above or tied]; find both by binary search
        k_max_rel = int(n_rel.max()) if n_users else 0
        values = torch.full((n_users, max(k_max_rel, 1)), math.inf, dtype=sorted_neg.dtype, device=device)
        values[user, rank_among_rel - 1] = sorted_neg[user, idx]
        above = torch.searchsorted(sorted_neg, values, side="left")
        upto = torch.searchsorted(sorted_neg, values, side="right")
        mask = torch.arange(values.shape[1], device=device) < n_rel[:, None]
        mean_pos = (above + upto + 1).to(torch.float64) / 2.0  # average 1-based position of the group
        n_c = n_cand.to(torch.float64)
        rank_bottom = torch.where(mask, n_c[:, None] + 1.0 - mean_pos, 0.0).sum(1)
        n_neg = n_c - k_rel
        auc = (rank_bottom - k_rel * (k_rel + 1) / 2) / (k_rel * n_neg).clamp(min=1)
        out["AUC"] = torch.where(has_rel & (n_neg > 0), auc, nan)
    return out


def _single(name: str, scores: Any, relevant: Any, exclude: Any, ks: Sequence[int] = (),
            full: bool = False) -> Any:
    result = ranking_metrics(scores, relevant, ks=ks, exclude=exclude, full=full)[name]
    return result if isinstance(scores, torch.Tensor) else result.cpu().numpy()


def precision_at_k(scores: Any, relevant: Any, k: int, exclude: Any = None) -> Any:
    """Per-user precision at ``k``: ``hits@k / k`` (denominator ``k``, always).

    Shapes: [U, I] inputs -> [U]; NaN for users with no relevant candidate.

    >>> precision_at_k(np.array([[1., 2., 3.]]), np.array([[1, 0, 1]]), 2).tolist()
    [0.5]
    """
    return _single(f"P@{k}", scores, relevant, exclude, ks=[k])


def recall_at_k(scores: Any, relevant: Any, k: int, exclude: Any = None) -> Any:
    """Per-user recall at ``k``: ``hits@k / |relevant and not excluded|``.

    >>> recall_at_k(np.array([[1., 2., 3.]]), np.array([[1, 0, 1]]), 2).tolist()
    [0.5]
    """
    return _single(f"R@{k}", scores, relevant, exclude, ks=[k])


def ndcg_at_k(scores: Any, relevant: Any, k: int, exclude: Any = None) -> Any:
    """Per-user NDCG at ``k``, binary gains, discount ``1/log2(p + 1)``; the ideal DCG sums the
    first ``min(K, k)`` discounts (K relevant candidates).

    >>> round(float(ndcg_at_k(np.array([[1., 2., 3.]]), np.array([[1, 0, 1]]), 2)[0]), 4)
    0.6131
    """
    return _single(f"NDCG@{k}", scores, relevant, exclude, ks=[k])


def map_score(scores: Any, relevant: Any, exclude: Any = None) -> Any:
    """Per-user average precision over the full candidate ranking:
    ``(1/K) sum_{i relevant} precision at p_i`` (average it over users for MAP).

    >>> map_score(np.array([[3., 2., 1.]]), np.array([[1, 0, 1]])).tolist()
    [0.8333333333333333]
    """
    return _single("MAP", scores, relevant, exclude, full=True)


def mrr(scores: Any, relevant: Any, exclude: Any = None) -> Any:
    """Per-user reciprocal rank ``1 / p_first`` of the first relevant candidate.

    >>> mrr(np.array([[3., 2., 1.]]), np.array([[0, 1, 1]])).tolist()
    [0.5]
    """
    return _single("MRR", scores, relevant, exclude, full=True)


def auc_per_user(scores: Any, relevant: Any, exclude: Any = None) -> Any:
    """Per-user AUC ``(sum of positives' ranks from the bottom - K(K+1)/2) / (K (N - K))`` over
    the ``N`` candidates, ties at average rank (a tied pair counts 1/2); NaN if K = 0 or K = N.

    >>> auc_per_user(np.array([[3., 2., 2.]]), np.array([[0, 1, 0]])).tolist()
    [0.25]
    """
    return _single("AUC", scores, relevant, exclude, full=True)
