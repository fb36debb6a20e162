"""Ranking metrics with one definition each (numpy or torch inputs, validated at the door).

Scalar metrics: :func:`roc_auc`, :func:`partial_auc`, :func:`average_precision`;
target-decoy FDR: :func:`qvalues`, :func:`accepted_at`. Top-K / recommendation metrics on score
matrices (:mod:`rankguard.metrics.topk`): :func:`precision_at_k`, :func:`recall_at_k`,
:func:`ndcg_at_k`, :func:`map_score` (alias ``map``), :func:`mrr`, :func:`auc_per_user`.
"""

from rankguard.metrics.ap import average_precision
from rankguard.metrics.auc import partial_auc, roc_auc
from rankguard.metrics.fdr import accepted_at, qvalues

__all__ = ["roc_auc", "partial_auc", "average_precision", "qvalues", "accepted_at"]

from rankguard.metrics.topk import (auc_per_user, map_score, mrr, ndcg_at_k, precision_at_k,
                                    recall_at_k)

map = map_score  # the name for mean average precision over a score matrix (shadows the builtin only here)

__all__ += ["precision_at_k", "recall_at_k", "ndcg_at_k", "map_score", "map", "mrr", "auc_per_user"]
