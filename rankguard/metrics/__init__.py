"""Ranking metrics with one definition each (numpy or torch inputs, validated at the door).

Scalar metrics: :func:`roc_auc`, :func:`partial_auc`, :func:`average_precision`;
target-decoy FDR: :func:`qvalues`, :func:`accepted_at`. Top-K / recommendation metrics on score
matrices (:mod:`rankguard.metrics.topk`): :func:`precision_at_k`, :func:`recall_at_k`,
:func:`ndcg_at_k`, :func:`map_score` (alias ``map``), :func:`mrr`, :func:`auc_per_user`.
Grouped retrieval metrics over ``(preds, target, indexes)`` (:mod:`rankguard.metrics.retrieval`,
the same per-query definitions): :func:`retrieval_precision`, :func:`retrieval_recall`,
:func:`retrieval_ndcg`, :func:`retrieval_map`, :func:`retrieval_mrr`, :func:`retrieval_auc`,
:func:`retrieval_metrics`. Class forms with ``update`` / ``compute`` / ``reset`` and a
distributed ``compute`` (:mod:`rankguard.metrics.classes`): :class:`AUROC`,
:class:`AveragePrecision`, :class:`PartialAUC`, :class:`RetrievalPrecision`,
:class:`RetrievalRecall`, :class:`RetrievalNDCG`, :class:`RetrievalMAP`, :class:`RetrievalMRR`,
:class:`RetrievalAUC`. The one core they share: :mod:`rankguard.metrics.core`.
"""

from rankguard.metrics.ap import average_precision
from rankguard.metrics.auc import partial_auc, roc_auc
from rankguard.metrics.fdr import accepted_at, qvalues

__all__ = ["roc_auc", "partial_auc", "average_precision", "qvalues", "accepted_at"]

from rankguard.metrics.topk import (auc_per_user, map_score, mrr, ndcg_at_k, precision_at_k,
                                    recall_at_k)

map = map_score  # the name for mean average precision over a score matrix (shadows the builtin only here)

__all__ += ["precision_at_k", "recall_at_k", "ndcg_at_k", "map_score", "map", "mrr", "auc_per_user"]

from rankguard.metrics.classes import (AUROC, AveragePrecision, PartialAUC, RetrievalAUC, RetrievalMAP,  # noqa: E402
                                       RetrievalMRR, RetrievalNDCG, RetrievalPrecision, RetrievalRecall)
from rankguard.metrics.retrieval import (retrieval_auc, retrieval_map, retrieval_metrics, retrieval_mrr,  # noqa: E402
                                         retrieval_ndcg, retrieval_precision, retrieval_recall)

__all__ += ["AUROC", "AveragePrecision", "PartialAUC", "RetrievalPrecision", "RetrievalRecall", "RetrievalNDCG",
            "RetrievalMAP", "RetrievalMRR", "RetrievalAUC", "retrieval_metrics", "retrieval_precision",
            "retrieval_recall", "retrieval_ndcg", "retrieval_map", "retrieval_mrr", "retrieval_auc"]
