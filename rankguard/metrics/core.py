"""The one core of the binary ranking metrics: validated tensors -> one sort -> tie groups -> counts.

Every binary metric (:func:`~rankguard.metrics.roc_auc`, :func:`~rankguard.metrics.average_precision`,
:func:`~rankguard.metrics.partial_auc`, :func:`~rankguard.metrics.qvalues`, the PR/ROC points of
:mod:`rankguard.plots`) goes through :func:`binary_inputs` (validation at the door, numpy / list /
torch inputs, the tensor's device kept) and :func:`tie_groups` (one descending sort; a *tie group* is
a run of equal scores, and a threshold admits a whole group at once — scikit-learn's
``_binary_clf_curve`` idea). What differs between metrics is only the few vector operations on the
cumulative counts at the group ends (:func:`cumulative_counts`).

**The sort.** Floats are sorted as integers (:func:`sortable_keys`): the IEEE-754 bit pattern orders
like a sign-magnitude integer, so flipping the magnitude bits of negative numbers gives a two's-
complement integer with the float's order (``-0.0`` is first made ``+0.0``). Unweighted float32 scores
(and half precision, upcast exactly) need no permutation at all: the score key and the label are packed
into one int64 ``2 * key + label`` and only the values are sorted (numpy's SIMD sort on CPU, about 7x
faster here than torch's radix sort with its index array; ``torch.sort`` elsewhere); a tie group's
labels then sit together and their order inside the group never matters. Float64 scores, sample
weights and q-values need the permutation: :func:`sort_descending_stable` (torch's radix sort of the
integer keys on CPU, a stable ``torch.sort`` on other devices).

**Accumulation.** Unweighted counts are exact int64; weighted ones float64 (``torch.cumsum`` with a
float64 accumulator), whatever the score dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["sortable_keys", "sort_descending_stable", "as_scores", "as_binary_labels", "binary_inputs",
           "TieGroups", "tie_groups", "cumulative_counts"]

# float dtype -> (integer dtype of the same width, index of its sign bit)
_INT_OF = {torch.float32: (torch.int32, 31), torch.float64: (torch.int64, 63)}


def sortable_keys(values: torch.Tensor, descending: bool = False) -> torch.Tensor:
    """Integers ordered exactly like the float32/float64 ``values`` (reversed with ``descending``).

    Equal floats (``-0.0`` and ``+0.0`` included) give equal keys; shape and device are kept; the
    integer has the float's width (int32 / int64).

    >>> x = torch.tensor([0.5, -2.0, -0.0, 0.0, 3.0])
    >>> torch.argsort(sortable_keys(x), stable=True).tolist()
    [1, 2, 3, 0, 4]
    >>> sortable_keys(x, descending=True).argsort(stable=True).tolist()
    [4, 0, 2, 3, 1]
    """
    spec = _INT_OF.get(values.dtype)
    if spec is None:
        raise TypeError(f"`values` must be float32 or float64, got {values.dtype}")
    int_dtype, sign_bit = spec
    bits = (values + 0.0).view(int_dtype)  # + 0.0 turns -0.0 into +0.0
    keys = bits ^ ((bits >> sign_bit) & torch.iinfo(int_dtype).max)
    return keys.bitwise_not_() if descending else keys


def sort_descending_stable(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sorted values, order)`` of 1-D float ``values``, descending; equal values keep their input order.

    On CPU the float32/float64 values are sorted as integers (:func:`sortable_keys`; torch radix-sorts
    1-D integer tensors, several times faster than its float sort); elsewhere a stable ``torch.sort``.

    >>> v, o = sort_descending_stable(torch.tensor([0.25, 0.75, 0.25, 0.5]))
    >>> v.tolist(), o.tolist()
    ([0.75, 0.5, 0.25, 0.25], [1, 3, 0, 2])
    """
    if values.device.type != "cpu" or values.dtype not in _INT_OF:
        return torch.sort(values, descending=True, stable=True)
    order = torch.sort(sortable_keys(values, descending=True), stable=True).indices
    return values[order], order


# ------------------------------------------------------------------------------------------ validation


def as_scores(x: Any, name: str = "scores") -> torch.Tensor:
    """``x`` (torch, numpy, list) as a finite 1-D float32/float64 tensor, or raise naming ``name``.

    Tensors keep their device and are detached; numpy float32/float64 arrays are wrapped without a
    copy; half precision is upcast to float32 (exact: no tie made or broken); other numbers become
    float64. A column ``(n, 1)`` is flattened; other shapes are rejected (no silent broadcasting).

    >>> as_scores([1, 2]).dtype, as_scores(np.ones(2, np.float32)).dtype
    (torch.float64, torch.float32)
    """
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        if isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64):
            arr = np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("="))
        else:
            try:
                arr = np.ascontiguousarray(x, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"`{name}` must be a 1-D array of numbers, got {type(x).__name__}: {exc}") from None
        t = torch.from_numpy(arr)
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.to(torch.float32)
    elif t.dtype not in _INT_OF:
        t = t.to(torch.float64)
    if t.dim() == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.dim() != 1:
        raise ValueError(f"`{name}` must be 1-D, got shape {tuple(t.shape)}")
    if t.numel() and not bool(torch.isfinite(torch.stack(torch.aminmax(t))).all()):  # NaN propagates
        bad = ~torch.isfinite(t)
        raise ValueError(f"`{name}` contains {int(bad.sum())} non-finite value(s) (NaN or inf); "
                         f"first at flat index {int(bad.nonzero()[0, 0])}")
    return t.contiguous()


def as_binary_labels(y: Any, name: str, length: int, device: torch.device, length_of: str = "scores"
                     ) -> torch.Tensor:
    """Labels as a bool tensor on ``device`` (True = positive): {0, 1}, bool or {-1, 1} (-1 negative).

    Two elementwise passes (no ``unique``); the values found are listed only in the error message.
    """
    if not isinstance(y, torch.Tensor):
        try:
            y = torch.from_numpy(np.ascontiguousarray(y if np.asarray(y).dtype == bool else np.asarray(y, np.float64)))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"`{name}` must be a 1-D array of labels, got {type(y).__name__}: {exc}") from None
    y = y.detach()
    if y.dim() == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dim() != 1:
        raise ValueError(f"`{name}` must be 1-D, got shape {tuple(y.shape)}")
    if y.shape[0] != length:
        raise ValueError(f"`{length_of}` and `{name}` must have the same length, got {length} and {y.shape[0]}")
    y = y.to(device)
    if y.dtype == torch.bool:
        return y
    pos = y == 1
    if bool((pos | (y == 0)).all()) or bool((pos | (y == -1)).all()):
        return pos
    shown = ", ".join(f"{v:g}" for v in torch.unique(y.double().cpu())[:6].tolist())
    raise ValueError(f"`{name}` must hold binary labels in {{0, 1}} or {{-1, 1}}; found values {shown}")


def as_sample_weight(w: Any, length: int, device: torch.device, name: str = "sample_weight") -> torch.Tensor:
    """Finite, non-negative weights as a float64 tensor of ``length`` on ``device``."""
    t = as_scores(w, name).to(device=device, dtype=torch.float64)
    if t.shape[0] != length:
        raise ValueError(f"`scores` and `{name}` must have the same length, got {length} and {t.shape[0]}")
    if bool((t < 0).any()):
        raise ValueError(f"`{name}` must be >= 0; found {int((t < 0).sum())} negative weight(s)")
    return t


def binary_inputs(scores: Any, labels: Any, sample_weight: Any = None, labels_name: str = "labels",
                  require_both: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Validate once, at the door: ``(scores, labels as bool, weights float64 or None)``, one device.

    With ``require_both`` a class without (weighted) members is an error: the metric is undefined.
    """
    s = as_scores(scores)
    y = as_binary_labels(labels, labels_name, s.shape[0], s.device)
    w = None if sample_weight is None else as_sample_weight(sample_weight, s.shape[0], s.device)
    if require_both:
        n_pos = int(y.sum())
        for missing, what in ((n_pos == 0, "positive"), (n_pos == y.shape[0], "negative")):
            if missing:
                raise ValueError(f"`{labels_name}` contains no {what} sample; the metric is undefined")
        if w is not None:
            for members, what in ((y, "positive"), (~y, "negative")):
                if not bool((w * members).sum() > 0):
                    raise ValueError(f"`sample_weight` is 0 on every {what} sample; the metric is undefined")
    return s, y, w


# ------------------------------------------------------------------------------------------ tie groups


Array = Any  # a numpy array (CPU inputs) or a torch tensor (other devices); see ``tie_groups``


def array_of(t: torch.Tensor) -> Array:
    """The array the core computes with: a zero-copy numpy view of a CPU tensor (numpy's elementwise
    passes are the faster ones on a couple of threads), else the tensor itself (CUDA)."""
    return t.numpy() if t.device.type == "cpu" else t


def as_float64(x: Array) -> Array:
    return x.astype(np.float64) if isinstance(x, np.ndarray) else x.to(torch.float64)


def cumsum(x: Array, dtype: str) -> Array:
    """Cumulative sum along the only axis, accumulated in ``dtype`` ("int64" or "float64")."""
    if isinstance(x, np.ndarray):
        return np.cumsum(x, dtype=np.dtype(dtype))
    return torch.cumsum(x, 0, dtype=getattr(torch, dtype))


def difference_from_zero(x: Array) -> Array:
    """``[x_0, x_1 - x_0, x_2 - x_1, ...]`` (the increments of a cumulative count from 0)."""
    d = x.copy() if isinstance(x, np.ndarray) else x.clone()
    d[1:] -= x[:-1]
    return d


def reverse_cummin(x: Array) -> Array:
    """``out[i] = min(x[i:])``."""
    if isinstance(x, np.ndarray):
        return np.minimum.accumulate(x[::-1])[::-1]
    return torch.cummin(x.flip(0), 0).values.flip(0)


@dataclass
class TieGroups:
    """Samples in descending score order, as the metrics need them (arrays: see :func:`array_of`).

    ``pos`` ``[n]``: each sorted sample's weight as a positive (int64 0/1 for unweighted inputs,
    float64 otherwise); ``weight`` ``[n]``: its weight (``None`` = all 1); ``ends`` ``[G]`` int64:
    the sorted position of the last sample of each tie group; ``order`` ``[n]`` (only when asked
    for): the input index of each sorted sample.
    """

    pos: Array
    ends: Array
    weight: Array | None = None
    order: Array | None = None

    @property
    def neg(self) -> Array:
        """Each sorted sample's weight as a negative."""
        return 1 - self.pos if self.weight is None else self.weight - self.pos


def _group_ends(keys: Array, shift: int) -> Array:
    """Sorted positions where the next key differs above its lowest ``shift`` bits, and the last."""
    changed = keys[1:] ^ keys[:-1]
    if shift:
        changed >>= shift
    if isinstance(changed, np.ndarray):
        return np.append(np.flatnonzero(changed), keys.shape[0] - 1)
    ends = torch.nonzero(changed).flatten()
    return torch.cat([ends, ends.new_full((1,), keys.shape[0] - 1)])


def tie_groups(scores: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None,
               need_order: bool = False) -> TieGroups:
    """One descending sort of validated ``scores`` ``[n]`` (n >= 1) with bool ``labels`` ``[n]`` (and
    float64 ``weights``) into :class:`TieGroups`. The order inside a tie group is unspecified unless
    ``need_order`` (then stable: input order).

    >>> g = tie_groups(torch.tensor([0.5, 0.9, 0.5]), torch.tensor([True, False, False]))
    >>> g.ends.tolist(), cumulative_counts(g)[0].tolist()
    ([0, 2], [0, 1])
    """
    cpu = scores.device.type == "cpu"
    if weights is None and not need_order and scores.dtype == torch.float32:
        # one int64 per sample: 2 * (descending float key) + label; sort the values only
        keys = array_of(sortable_keys(scores, descending=True))
        packed = keys.astype(np.int64) if cpu else keys.to(torch.int64)
        packed <<= 1
        packed |= array_of(labels)
        packed = np.sort(packed) if cpu else torch.sort(packed).values
        ends = _group_ends(packed, shift=1)
        packed &= 1
        return TieGroups(packed, ends)
    sorted_scores, order = sort_descending_stable(scores)
    ends = _group_ends(array_of(sortable_keys(sorted_scores)), shift=0)
    pos = labels[order].to(torch.int64)
    if weights is None:
        return TieGroups(array_of(pos), ends, order=array_of(order))
    w = weights[order]
    return TieGroups(array_of(w * pos), ends, array_of(w), array_of(order))


def cumulative_counts(groups: TieGroups, keep: Array | None = None) -> tuple[Array, Array]:
    """``(tp, fp)`` ``[G]`` at each tie-group end, highest threshold first: the (weighted) positives
    and negatives scoring at or above it, counting only the sorted samples where ``keep`` (0/1 or
    bool ``[n]``, default all) is set. int64 for unweighted groups (exact), float64 otherwise.
    """
    dtype = "int64" if groups.weight is None else "float64"
    if keep is None:
        tp = cumsum(groups.pos, dtype)[groups.ends]
        if groups.weight is None:
            return tp, groups.ends + 1 - tp
        return tp, cumsum(groups.neg, dtype)[groups.ends]
    return cumsum(groups.pos * keep, dtype)[groups.ends], cumsum(groups.neg * keep, dtype)[groups.ends]
