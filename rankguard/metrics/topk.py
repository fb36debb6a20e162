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

**Tie rules against the binary metrics.** AUC equals :func:`rankguard.metrics.roc_auc` of the
user's candidate row, ties included. AP does not equal
:func:`rankguard.metrics.average_precision` on tied rows: that one keeps scikit-learn's tie groups
(a tie group is one threshold), this one the stable order. On the row ``[0.9, 0.5, 0.5]`` with
item 1 relevant, ``average_precision`` is 1/3 and ``map_score`` 1/2; without ties they agree.

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
from typing import Any, Collection, Sequence

import numpy as np
import torch

from rankguard._validation import check_scores_tensor

__all__ = ["precision_at_k", "recall_at_k", "ndcg_at_k", "map_score", "mrr", "auc_per_user", "ranking_metrics",
           "relevant_positions", "metrics_from_positions"]


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


def check_ks(ks: Sequence[int]) -> list[int]:
    out = []
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"`k` must be a positive integer, got {k!r}")
        out.append(int(k))
    return out


def _row_chunk(n_items: int) -> int:
    """Rows per chunk of :func:`relevant_positions` (~1M scores)."""
    return max(1, (1 << 20) // max(n_items, 1))


def _tie_chunk(n_items: int) -> int:
    """Rows per chunk of the tie fallback (~16M elements)."""
    return max(1, (1 << 24) // max(n_items, 1))


def _masked_negated(scores: torch.Tensor, excl_user: torch.Tensor | None,
                    excl_item: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``-scores`` with excluded entries at +inf (they sort after every candidate), and its
    row-wise ascending sort (values only). On CPU numpy does both (several times faster)."""
    if scores.dtype not in (torch.float32, torch.float64):
        scores = scores.float()  # half precision: exact upcast, keeps ties
    if scores.device.type == "cpu":
        neg_np = np.negative(scores.numpy())
        if excl_user is not None:
            neg_np[excl_user.numpy(), excl_item.numpy()] = np.inf
        return torch.from_numpy(neg_np), torch.from_numpy(np.sort(neg_np, axis=1))
    neg = -scores
    if excl_user is not None:
        neg[excl_user, excl_item] = math.inf
    return neg, torch.sort(neg, dim=1).values


def _stable_positions(neg_rows: torch.Tensor, row: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """1-based position of ``items[j]`` in the stable ascending order of ``neg_rows[row[j]]``."""
    if neg_rows.device.type == "cpu":
        order = torch.from_numpy(np.argsort(neg_rows.numpy(), axis=1, kind="stable"))
    else:
        order = torch.sort(neg_rows, dim=1, stable=True).indices
    inverse = torch.empty_like(order)
    inverse.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    return inverse[row, items] + 1


def _positions_by_sort(scores: torch.Tensor, user: torch.Tensor, item: torch.Tensor,
                       excl_user: torch.Tensor | None, excl_item: torch.Tensor | None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(above, upto, pos) from one values-only row sort and two batched binary searches; users
    whose relevant items tie with other candidates get one stable argsort of their rows."""
    n_users, n_items = scores.shape
    device = scores.device
    neg, sorted_neg = _masked_negated(scores, excl_user, excl_item)
    value = neg[user, item]
    n_rel = torch.bincount(user, minlength=n_users)
    first = torch.zeros(n_users + 1, dtype=torch.int64, device=device)
    first[1:] = n_rel.cumsum(0)
    slot = torch.arange(user.numel(), device=device) - first[user]
    # batched binary search needs one row of query values per user: pad with +inf
    width = max(int(n_rel.max()) if n_users and user.numel() else 0, 1)
    queries = torch.full((n_users, width), math.inf, dtype=neg.dtype, device=device)
    queries[user, slot] = value
    above = torch.searchsorted(sorted_neg, queries, side="left")[user, slot]
    upto = torch.searchsorted(sorted_neg, queries, side="right")[user, slot]
    pos = above + 1
    tied = torch.nonzero(upto - above > 1).flatten()
    if tied.numel():  # ties: the candidates of lower index come first (stable order)
        tied_users, local = torch.unique(user[tied], return_inverse=True)
        step = _tie_chunk(n_items)
        for lo in range(0, tied_users.numel(), step):  # chunks bound memory; not a per-user loop
            in_chunk = (local >= lo) & (local < lo + step)
            t = tied[in_chunk]
            pos[t] = _stable_positions(neg[tied_users[lo:lo + step]], local[in_chunk] - lo, item[t])
    return above, upto, pos


def _positions_by_bins(scores: torch.Tensor, user: torch.Tensor, item: torch.Tensor,
                       excl_user: torch.Tensor | None, excl_item: torch.Tensor | None,
                       max_pairs: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """(above, upto, pos) without sorting the rows; ``None`` if bins are too crowded.

    Each score goes to a bin by a per-row map that never decreases with the score (so a higher
    bin means a higher score): bins 1..NB-2 span the user's relevant scores, bin 0 holds lower
    scores, excluded items go to bin NB (never counted). Then for a relevant item ``r`` in bin
    ``b``: ``above = #candidates in bins > b + #candidates in b with a higher score``; the second
    term (and the ties, placed by item index) comes from exact comparisons with the few
    candidates of bin ``b``. Full [U, I] passes: the bin map, one histogram, one flag gather.
    """
    n_users, n_items = scores.shape
    device = scores.device
    n_bins = max(8, n_items // 2)
    value = scores[user, item]
    big = torch.finfo(scores.dtype).max
    lo = torch.full((n_users,), big, dtype=scores.dtype, device=device).scatter_reduce_(0, user, value, "amin")
    hi = torch.full((n_users,), -big, dtype=scores.dtype, device=device).scatter_reduce_(0, user, value, "amax")
    lo = torch.where(lo <= hi, lo, torch.zeros_like(lo))  # users without relevant items
    span = hi - lo
    # one relevant score (or all equal): any positive width keeps the map monotone
    span = torch.where(span > 0, span, torch.clamp(lo.abs(), min=1.0) * 2.0 ** -10)
    scale = torch.nan_to_num((n_bins - 2.5) / span, posinf=big)
    # bin = clamp(s * scale + 1 - lo * scale, 0, NB - 1): lo * scale stays finite (span >= ulp(lo)
    # or |lo| 2^-10), so no inf - inf; an overflowing s * scale lands in an end bin
    x = scores * scale[:, None]
    x.add_((1.0 - lo * scale)[:, None]).clamp_(0.0, n_bins - 1.0)
    bins = x.to(torch.int64)
    del x
    if excl_user is not None:
        bins[excl_user, excl_item] = n_bins
    hist = torch.zeros(n_users, n_bins + 1, dtype=torch.int64, device=device)
    hist.scatter_add_(1, bins, torch.ones(1, 1, dtype=torch.int64, device=device).expand(n_users, n_items))
    rel_bin = bins[user, item]
    size = hist[user, rel_bin]  # candidates sharing the relevant item's bin (itself included)
    n_pairs = int(size.sum())
    if max_pairs is None:
        max_pairs = max(n_users * n_items // 4, 4 * user.numel())
    if n_pairs > max_pairs:
        return None
    cum = hist[:, :n_bins].cumsum(1)
    n_cand = cum[:, -1]
    higher_bins = n_cand[user] - cum[user, rel_bin]
    # list the candidates of the bins holding a relevant item, grouped by (user, bin)
    flag = torch.zeros(n_users, n_bins + 1, dtype=torch.bool, device=device)
    flag[user, rel_bin] = True
    flat = torch.nonzero(flag.gather(1, bins).flatten()).flatten()
    group = bins.flatten()[flat] + (flat // n_items) * (n_bins + 1)
    group, order = torch.sort(group, stable=True)
    member_score = scores.flatten()[flat[order]]
    member_item = flat[order] % n_items
    start = torch.searchsorted(group, user * (n_bins + 1) + rel_bin)
    # every (relevant item, member of its bin) pair, compared exactly
    owner = torch.repeat_interleave(torch.arange(user.numel(), device=device), size, output_size=n_pairs)
    offset = torch.arange(n_pairs, device=device) - (torch.cumsum(size, 0) - size)[owner]
    member = start[owner] + offset
    ms, mi, v = member_score[member], member_item[member], value[owner]
    k = user.numel()

    def count(mask: torch.Tensor) -> torch.Tensor:
        return torch.zeros(k, dtype=torch.int64, device=device).index_add_(0, owner, mask.to(torch.int64))

    equal = ms == v
    above = higher_bins + count(ms > v)
    upto = above + count(equal)
    pos = above + count(equal & (mi < item[owner])) + 1
    return above, upto, pos


def relevant_positions(scores: torch.Tensor, rel_user: torch.Tensor, rel_item: torch.Tensor,
                       excl_user: torch.Tensor | None = None,
                       excl_item: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Where each relevant candidate lands in its user's ranking (no full argsort needed).

    ``scores`` [U, I]; relevant pairs ``(rel_user, rel_item)`` [M], sorted by user, unique, and
    disjoint from the excluded pairs ``(excl_user, excl_item)`` [E] (unique). Returns per relevant
    entry: ``user``, ``item``, ``pos`` (1-based position in the stable order score desc / item
    index asc), ``above`` (#candidates with a strictly higher score), ``upto`` (#candidates with a
    higher or equal score); and per user ``n_candidates`` [U].

    With ``s_r`` the relevant item's score, ``pos = above + #{candidates j < r: s_j = s_r} + 1``.
    Cost: a few elementwise passes over the block (a monotone binning of the scores, a per-user
    histogram) plus exact comparisons of each relevant item with the candidates of its bin; if
    too many candidates share bins with relevant items (heavy ties), one values-only row sort and
    binary searches instead.
    """
    n_users, n_items = scores.shape
    device = scores.device
    user, item = rel_user.to(device), rel_item.to(device)
    if excl_user is not None:
        excl_user, excl_item = excl_user.to(device), excl_item.to(device)
    if scores.dtype not in (torch.float32, torch.float64):
        scores = scores.float()  # half precision: exact upcast, keeps ties
    above, upto, pos = (torch.empty_like(user) for _ in range(3))
    # row chunks of ~1M scores: the work arrays stay in cache-friendly, reusable memory
    step = _row_chunk(n_items)
    bounds = torch.searchsorted(user, torch.arange(0, n_users + step, step, device=device)).tolist()
    for c, lo in enumerate(range(0, n_users, step)):  # chunks of rows, not a per-user loop
        a, b = bounds[c], bounds[c + 1]
        if a == b:
            continue
        rows = scores[lo:lo + step]
        u, i = user[a:b] - lo, item[a:b]
        eu = ei = None
        if excl_user is not None:
            inside = (excl_user >= lo) & (excl_user < lo + step)
            eu, ei = excl_user[inside] - lo, excl_item[inside]
        found = _positions_by_bins(rows, u, i, eu, ei)
        above[a:b], upto[a:b], pos[a:b] = found if found is not None else _positions_by_sort(rows, u, i, eu, ei)
    n_cand = torch.full((n_users,), n_items, dtype=torch.int64, device=device)
    if excl_user is not None:
        n_cand -= torch.bincount(excl_user, minlength=n_users)
    return {"user": user, "item": item, "pos": pos, "above": above, "upto": upto, "n_candidates": n_cand}


FULL_RANKING = ("MAP", "MRR", "AUC")


def metrics_from_positions(entries: dict[str, torch.Tensor], n_users: int, ks: Sequence[int] = (),
                           full: bool | Collection[str] = True, keep: torch.Tensor | None = None
                           ) -> dict[str, torch.Tensor]:
    """Per-user metrics from :func:`relevant_positions` output (optionally only entries in ``keep``).

    ``ks`` gives ``P@k``, ``R@k``, ``NDCG@k``; ``full`` the full-ranking metrics: ``True`` all of
    ``MAP``, ``MRR``, ``AUC``, ``False`` none, or a collection of their names, and only those are
    computed (MAP needs each entry's rank among its user's relevant items, MRR a per-user minimum,
    AUC alone reads ``above`` / ``upto``). Taking a subset of the relevant entries (e.g. tail items)
    re-uses the same ranking.
    """
    wanted = set(FULL_RANKING if full is True else () if full is False else full)
    if wanted - set(FULL_RANKING):
        raise ValueError(f"`full` names metrics among {FULL_RANKING}, got {sorted(wanted - set(FULL_RANKING))}")
    user, pos = entries["user"], entries["pos"]
    above = upto = None
    if "AUC" in wanted:
        above, upto = entries["above"], entries["upto"]
    if keep is not None:
        user, pos = user[keep], pos[keep]
        if above is not None:
            above, upto = above[keep], upto[keep]
    device = pos.device
    f64 = torch.float64
    n_rel = torch.zeros(n_users, dtype=torch.int64, device=device).index_add_(0, user, torch.ones_like(user))
    k_rel = n_rel.to(f64)
    has_rel = n_rel > 0
    nan = torch.tensor(math.nan, dtype=f64, device=device)
    posf = pos.to(f64)
    out: dict[str, torch.Tensor] = {"n_relevant": n_rel, "n_candidates": entries["n_candidates"]}

    def per_user(values: torch.Tensor) -> torch.Tensor:
        return torch.zeros(n_users, dtype=f64, device=device).index_add_(0, user, values)

    if ks:
        gain = 1.0 / torch.log2(posf + 1.0)
        # ideal_dcg[n] = sum_{p=1}^{n} 1/log2(p + 1), n = 0..max(ks)
        ideal_positions = torch.arange(1, max(ks) + 1, dtype=f64, device=device)
        ideal_dcg = torch.cat([torch.zeros(1, dtype=f64, device=device),
                               (1.0 / torch.log2(ideal_positions + 1.0)).cumsum(0)])
    for k in ks:
        inside = (pos <= k).to(f64)
        hits, dcg = per_user(inside), per_user(inside * gain)
        ideal = ideal_dcg[torch.clamp(n_rel, max=k)]
        out[f"P@{k}"] = torch.where(has_rel, hits / k, nan)
        out[f"R@{k}"] = torch.where(has_rel, hits / k_rel.clamp(min=1), nan)
        out[f"NDCG@{k}"] = torch.where(has_rel, dcg / ideal.clamp(min=1e-300), nan)

    if "MAP" in wanted:
        # rank of each entry among its user's relevant items: the entries ordered by (user, position)
        # (already so when they come from one segmented sort: then no sort), a running count per user
        first = torch.zeros(n_users + 1, dtype=torch.int64, device=device)
        first[1:] = n_rel.cumsum(0)
        key = user * (int(pos.max()) + 1 if pos.numel() else 1) + pos
        if key.numel() > 1 and not bool((key[1:] > key[:-1]).all()):
            order = torch.argsort(key)
            user_s, pos_s = user[order], posf[order]
        else:
            user_s, pos_s = user, posf
        rank_among = (torch.arange(user_s.numel(), device=device) - first[user_s] + 1).to(f64)
        ap = torch.zeros(n_users, dtype=f64, device=device).index_add_(0, user_s, rank_among / pos_s)
        out["MAP"] = torch.where(has_rel, ap / k_rel.clamp(min=1), nan)
    if "MRR" in wanted:
        first_pos = torch.full((n_users,), math.inf, dtype=f64, device=device)
        first_pos.scatter_reduce_(0, user, posf, reduce="amin")
        out["MRR"] = torch.where(has_rel, 1.0 / first_pos, nan)
    if "AUC" in wanted:
        n_c = entries["n_candidates"].to(f64)
        mean_position = (above + upto + 1).to(f64) / 2.0  # average position of the tie group
        rank_bottom = per_user(n_c[user] + 1.0 - mean_position)
        n_neg = n_c - k_rel
        auc = (rank_bottom - k_rel * (k_rel + 1) / 2) / (k_rel * n_neg).clamp(min=1)
        out["AUC"] = torch.where(has_rel & (n_neg > 0), auc, nan)
    return out


def ranking_metrics(scores: Any, relevant: Any, ks: Sequence[int] = (), exclude: Any = None,
                    full: bool = True) -> dict[str, torch.Tensor]:
    """All per-user metrics from one ranking: ``P@k``, ``R@k``, ``NDCG@k`` for ``k`` in ``ks``, and
    (with ``full``) ``MAP``, ``MRR``, ``AUC``; plus ``n_relevant`` (K) and ``n_candidates`` (N).

    Shapes: ``scores``, ``relevant``, ``exclude`` [U, I]; every output [U], float64 torch tensors
    on the device of ``scores`` (the counts are int64). Definitions in the module docstring.
    Cost: one row-wise sort of the scores (values only) plus binary searches for relevant items.

    >>> out = ranking_metrics(torch.tensor([[3., 2., 1.]]), torch.tensor([[0, 1, 1]]), ks=[1])
    >>> out["P@1"].item(), out["MAP"].item()
    (0.0, 0.5833333333333333)
    """
    s = check_scores_tensor(_as_tensor(scores), "scores", ndim=2)
    ks = check_ks(ks)
    rel = _bool_matrix(relevant, "relevant", s.shape, s.device)
    excl = None
    if exclude is not None:
        excl = _bool_matrix(exclude, "exclude", s.shape, s.device)
        rel = rel & ~excl
    rel_user, rel_item = rel.nonzero(as_tuple=True)
    excl_user, excl_item = excl.nonzero(as_tuple=True) if excl is not None else (None, None)
    entries = relevant_positions(s.detach(), rel_user, rel_item, excl_user, excl_item)
    return metrics_from_positions(entries, s.shape[0], ks=ks, full=full)


def _single(name: str, scores: Any, relevant: Any, exclude: Any, ks: Sequence[int] = (),
            full: bool = False) -> Any:
    result = ranking_metrics(scores, relevant, ks=ks, exclude=exclude, full=full)[name]
    return result if isinstance(scores, torch.Tensor) else result.cpu().numpy()


def precision_at_k(scores: Any, relevant: Any, k: int, exclude: Any = None) -> Any:
    """Per-user precision at ``k``: ``hits@k / k`` (denominator ``k``, always).

    Shapes: [U, I] inputs -> [U]; NaN for users with no relevant candidate.

    Ties: stable order (score descending, then item index), so of two tied items the one with the
    lower index takes the earlier position.

    >>> precision_at_k(np.array([[1., 2., 3.]]), np.array([[1, 0, 1]]), 2).tolist()
    [0.5]
    >>> s = np.array([[0.9, 0.5, 0.5]])                  # items 1 and 2 tie; item 1 comes first
    >>> precision_at_k(s, np.array([[0, 1, 0]]), 2).tolist(), precision_at_k(s, np.array([[0, 0, 1]]), 2).tolist()
    ([0.5], [0.0])
    """
    return _single(f"P@{k}", scores, relevant, exclude, ks=[k])


def recall_at_k(scores: Any, relevant: Any, k: int, exclude: Any = None) -> Any:
    """Per-user recall at ``k``: ``hits@k / |relevant and not excluded|``.

    Ties: stable order (score descending, then item index).

    >>> recall_at_k(np.array([[1., 2., 3.]]), np.array([[1, 0, 1]]), 2).tolist()
    [0.5]
    >>> s = np.array([[0.9, 0.5, 0.5]])                  # items 1 and 2 tie; item 1 comes first
    >>> recall_at_k(s, np.array([[0, 1, 0]]), 2).tolist(), recall_at_k(s, np.array([[0, 0, 1]]), 2).tolist()
    ([1.0], [0.0])
    """
    return _single(f"R@{k}", scores, relevant, exclude, ks=[k])


def ndcg_at_k(scores: Any, relevant: Any, k: int, exclude: Any = None) -> Any:
    """Per-user NDCG at ``k``, binary gains, discount ``1/log2(p + 1)``; the ideal DCG sums the
    first ``min(K, k)`` discounts (K relevant candidates).

    Ties: stable order (score descending, then item index); the tied item gets its position's
    discount, not an average over the tie group.

    >>> round(float(ndcg_at_k(np.array([[1., 2., 3.]]), np.array([[1, 0, 1]]), 2)[0]), 4)
    0.6131
    >>> round(float(ndcg_at_k(np.array([[0.9, 0.5, 0.5]]), np.array([[0, 1, 0]]), 2)[0]), 4)  # 1/log2(3)
    0.6309
    """
    return _single(f"NDCG@{k}", scores, relevant, exclude, ks=[k])


def map_score(scores: Any, relevant: Any, exclude: Any = None) -> Any:
    """Per-user average precision over the full candidate ranking:
    ``(1/K) sum_{i relevant} precision at p_i`` (average it over users for MAP).

    Ties: stable order (score descending, then item index), unlike
    :func:`rankguard.metrics.average_precision` (scikit-learn's tie groups): on ``[0.9, 0.5, 0.5]``
    with item 1 relevant, item 1 sits at position 2 here (AP 1/2), while ``average_precision``
    gives the tie group's precision 1/3. Without ties both agree.

    >>> map_score(np.array([[3., 2., 1.]]), np.array([[1, 0, 1]])).tolist()
    [0.8333333333333333]
    >>> map_score(np.array([[0.9, 0.5, 0.5]]), np.array([[0, 1, 0]])).tolist()   # position 2
    [0.5]
    >>> from rankguard.metrics import average_precision
    >>> round(average_precision([0.9, 0.5, 0.5], [0, 1, 0]), 3)                  # tie group
    0.333
    """
    return _single("MAP", scores, relevant, exclude, full=True)


def mrr(scores: Any, relevant: Any, exclude: Any = None) -> Any:
    """Per-user reciprocal rank ``1 / p_first`` of the first relevant candidate.

    Ties: stable order (score descending, then item index).

    >>> mrr(np.array([[3., 2., 1.]]), np.array([[0, 1, 1]])).tolist()
    [0.5]
    >>> s = np.array([[0.9, 0.5, 0.5]])                  # items 1 and 2 tie; item 1 comes first
    >>> mrr(s, np.array([[0, 1, 0]])).tolist(), mrr(s, np.array([[0, 0, 1]])).tolist()
    ([0.5], [0.3333333333333333])
    """
    return _single("MRR", scores, relevant, exclude, full=True)


def auc_per_user(scores: Any, relevant: Any, exclude: Any = None) -> Any:
    """Per-user AUC ``(sum of positives' ranks from the bottom - K(K+1)/2) / (K (N - K))`` over
    the ``N`` candidates, ties at average rank (a tied pair counts 1/2); NaN if K = 0 or K = N.

    Ties: the one per-user metric that does not use the stable order: a tie group gets its average
    rank, so the result does not depend on item indices and equals
    :func:`rankguard.metrics.roc_auc` of the row, ties included.

    >>> auc_per_user(np.array([[3., 2., 2.]]), np.array([[0, 1, 0]])).tolist()
    [0.25]
    >>> s = np.array([[0.9, 0.5, 0.5]])                  # item 1 or item 2 relevant: same AUC
    >>> auc_per_user(s, np.array([[0, 1, 0]])).tolist(), auc_per_user(s, np.array([[0, 0, 1]])).tolist()
    ([0.25], [0.25])
    """
    return _single("AUC", scores, relevant, exclude, full=True)
