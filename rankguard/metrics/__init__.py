"""Ranking metrics with one definition each (numpy or torch inputs, validated at the door).

Scalar metrics: :func:`roc_auc`, :func:`partial_auc`, :func:`average_precision`;
target-decoy FDR: :func:`qvalues`, :func:`accepted_at`. Top-K / recommendation metrics live in
:mod:`rankguard.metrics.topk`.
"""

from rankguard.metrics.ap import average_precision
from rankguard.metrics.auc import partial_auc, roc_auc
from rankguard.metrics.fdr import accepted_at, qvalues

__all__ = ["roc_auc", "partial_auc", "average_precision", "qvalues", "accepted_at"]

try:
    from .topk import precision_at_k, recall_at_k, ndcg_at_k, map_score as map, mrr, auc_per_user
except ImportError:
    pass
else:
    __all__ += ["precision_at_k", "recall_at_k", "ndcg_at_k", "map", "mrr", "auc_per_user"]
