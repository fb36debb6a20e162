"""Class forms of the metrics: ``update(preds, target[, indexes])`` over batches, ``compute()``, ``reset()``.

Each class forwards to its function (one implementation): the state is the concatenation of
every batch seen, so ``compute()`` after streaming batches equals one call of the function on the
concatenated inputs, exactly (ties included: a retrieval tie is broken by position in that
concatenation).

**Memory:** these are exact metrics, so they keep every score: ``preds`` in the dtype first seen
(4 or 8 bytes), ``target`` as bool (1 byte) and, for retrieval, ``indexes`` as int64 (8 bytes) per
sample, on the device of the inputs. ``update`` validates a batch before storing it; a rejected
batch changes no state. ``state_dict()`` / ``load_state_dict()`` hold the concatenated tensors.

**Several processes:** under an initialised ``torch.distributed`` process group ``compute()``
gathers the state of every rank (:func:`rankguard.distributed.gather_uneven`: uneven sizes, no
duplicates) and computes once on the union — never an average of per-process values. Every rank
gets the same value.

>>> m = AUROC()
>>> m.update(torch.tensor([0.9, 0.2]), torch.tensor([1, 0]))
>>> m.update(torch.tensor([0.5, 0.6]), torch.tensor([0, 1]))
>>> m.compute()
1.0
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from rankguard.distributed import gather_uneven
from rankguard.metrics.ap import average_precision
from rankguard.metrics.auc import partial_auc, roc_auc
from rankguard.metrics.core import as_binary_labels, as_scores
from rankguard.metrics.retrieval import (EMPTY_TARGET_ACTIONS, as_retrieval_inputs, retrieval_auc, retrieval_map,
                                         retrieval_mrr, retrieval_ndcg, retrieval_precision, retrieval_recall)
from rankguard.metrics.topk import check_ks

__all__ = ["Metric", "AUROC", "AveragePrecision", "PartialAUC", "RetrievalPrecision", "RetrievalRecall",
           "RetrievalNDCG", "RetrievalMAP", "RetrievalMRR", "RetrievalAUC"]


class Metric:
    """Base class: keeps the concatenated state tensors named in ``_state_names``."""

    _state_names: tuple[str, ...] = ("preds", "target")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every batch."""
        self._batches: dict[str, list[torch.Tensor]] = {name: [] for name in self._state_names}

    def _validate(self, preds: Any, target: Any, indexes: Any = None) -> dict[str, torch.Tensor]:
        s = as_scores(preds, "preds")
        return {"preds": s, "target": as_binary_labels(target, "target", s.shape[0], s.device, length_of="preds")}

    def update(self, preds: Any, target: Any, indexes: Any = None) -> None:
        """Add a batch: ``preds`` ``[b]`` scores, ``target`` ``[b]`` binary (``indexes`` ``[b]`` query ids
        for retrieval metrics)."""
        batch = self._validate(preds, target, indexes)
        if self._batches["preds"] and batch["preds"].dtype != self._batches["preds"][0].dtype:
            # float32 with float64: keep float64 (exact), never round the new batch down
            wide = torch.promote_types(batch["preds"].dtype, self._batches["preds"][0].dtype)
            self._batches["preds"] = [t.to(wide) for t in self._batches["preds"]]
            batch["preds"] = batch["preds"].to(wide)
        for name in self._state_names:
            self._batches[name].append(batch[name].clone())

    def _state(self) -> dict[str, torch.Tensor]:
        if not self._batches["preds"]:
            raise ValueError(f"{type(self).__name__}.compute() before any update(): no data to compute on")
        state = {name: torch.cat(parts) for name, parts in self._batches.items()}
        self._batches = {name: [t] for name, t in state.items()}  # concatenate once
        return state

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The concatenated state tensors (empty dict before any update)."""
        return self._state() if self._batches["preds"] else {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Replace the state with ``state`` (as returned by :meth:`state_dict`)."""
        self.reset()
        if state:
            self._batches = {name: [state[name].clone()] for name in self._state_names}

    def _gathered(self) -> dict[str, torch.Tensor]:
        local = self._state() if self._batches["preds"] else None
        return {name: gather_uneven(None if local is None else local[name], like=self._like(name))
                for name in self._state_names}

    def _like(self, name: str) -> torch.Tensor:
        dtypes = {"preds": torch.float32, "target": torch.bool, "indexes": torch.int64}
        return torch.empty(0, dtype=dtypes[name])

    def _fn(self, state: dict[str, torch.Tensor]) -> float:
        raise NotImplementedError

    def compute(self) -> float:
        """The metric of every sample seen (on every process under ``torch.distributed``)."""
        state = self._gathered()
        if state["preds"].numel() == 0:
            raise ValueError(f"{type(self).__name__}.compute() before any update(): no data to compute on")
        return self._fn(state)

    def __repr__(self) -> str:
        n = sum(t.shape[0] for t in self._batches["preds"])
        return f"{type(self).__name__}({self._extra_repr()}samples={n})"

    def _extra_repr(self) -> str:
        return ""


class AUROC(Metric):
    """Streaming :func:`rankguard.metrics.roc_auc` (scikit-learn's ties: a tied pair counts 1/2)."""

    def _fn(self, state: dict[str, torch.Tensor]) -> float:
        return roc_auc(state["preds"], state["target"])


class AveragePrecision(Metric):
    """Streaming :func:`rankguard.metrics.average_precision` (a tie group is one threshold)."""

    def _fn(self, state: dict[str, torch.Tensor]) -> float:
        return average_precision(state["preds"], state["target"])


class PartialAUC(Metric):
    """Streaming :func:`rankguard.metrics.partial_auc` with ``max_fpr``, ``min_tpr``, ``mode`` fixed.

    >>> PartialAUC(max_fpr=0.5)
    PartialAUC(max_fpr=0.5, min_tpr=None, mode='pairs', samples=0)
    """

    def __init__(self, max_fpr: float, min_tpr: float | None = None, mode: str = "pairs") -> None:
        # validated now, on a tiny problem, so a bad argument fails at construction
        partial_auc([1.0, 0.0], [1, 0], max_fpr=max_fpr, min_tpr=min_tpr, mode=mode)
        self.max_fpr, self.min_tpr, self.mode = max_fpr, min_tpr, mode
        super().__init__()

    def _extra_repr(self) -> str:
        return f"max_fpr={self.max_fpr}, min_tpr={self.min_tpr}, mode={self.mode!r}, "

    def _fn(self, state: dict[str, torch.Tensor]) -> float:
        return partial_auc(state["preds"], state["target"], self.max_fpr, self.min_tpr, self.mode)


class _Retrieval(Metric):
    """Grouped retrieval metric over ``(preds, target, indexes)`` (:mod:`rankguard.metrics.retrieval`)."""

    _state_names = ("preds", "target", "indexes")
    _function: Callable[..., torch.Tensor]
    _has_k = False

    def __init__(self, k: int | None = None, empty_target_action: str = "neg") -> None:
        if empty_target_action not in EMPTY_TARGET_ACTIONS:
            raise ValueError(f"`empty_target_action` must be one of {EMPTY_TARGET_ACTIONS}, got {empty_target_action!r}")
        if self._has_k:
            self.k = check_ks([10 if k is None else k])[0]
        elif k is not None:
            raise TypeError(f"{type(self).__name__} ranks all documents; it takes no `k`")
        self.empty_target_action = empty_target_action
        super().__init__()

    def _extra_repr(self) -> str:
        k = f"k={self.k}, " if self._has_k else ""
        return f"{k}empty_target_action={self.empty_target_action!r}, "

    def _validate(self, preds: Any, target: Any, indexes: Any = None) -> dict[str, torch.Tensor]:
        if indexes is None:
            raise ValueError(f"{type(self).__name__}.update() needs `indexes` (the query id of each document)")
        s, y, idx = as_retrieval_inputs(preds, target, indexes)
        return {"preds": s, "target": y, "indexes": idx}

    def _fn(self, state: dict[str, torch.Tensor]) -> float:
        kwargs = {"k": self.k} if self._has_k else {}
        fn = type(self)._function
        return float(fn(state["preds"], state["target"], state["indexes"],
                        empty_target_action=self.empty_target_action, **kwargs))


class RetrievalPrecision(_Retrieval):
    """Streaming :func:`~rankguard.metrics.retrieval.retrieval_precision` (P@k, mean over queries)."""

    _function = staticmethod(retrieval_precision)
    _has_k = True


class RetrievalRecall(_Retrieval):
    """Streaming :func:`~rankguard.metrics.retrieval.retrieval_recall` (R@k)."""

    _function = staticmethod(retrieval_recall)
    _has_k = True


class RetrievalNDCG(_Retrieval):
    """Streaming :func:`~rankguard.metrics.retrieval.retrieval_ndcg` (NDCG@k, binary gains)."""

    _function = staticmethod(retrieval_ndcg)
    _has_k = True


class RetrievalMAP(_Retrieval):
    """Streaming :func:`~rankguard.metrics.retrieval.retrieval_map` (full-ranking AP per query)."""

    _function = staticmethod(retrieval_map)


class RetrievalMRR(_Retrieval):
    """Streaming :func:`~rankguard.metrics.retrieval.retrieval_mrr`."""

    _function = staticmethod(retrieval_mrr)


class RetrievalAUC(_Retrieval):
    """Streaming :func:`~rankguard.metrics.retrieval.retrieval_auc` (per-query AUC, ties 1/2)."""

    _function = staticmethod(retrieval_auc)
