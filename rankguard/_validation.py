"""Input checks shared by metrics, functional ops and losses.

Every public entry point validates its inputs once, at the door, with a message that names
the argument at fault (scikit-learn style). Nothing here is public API.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _kind(x: Any) -> str:
    return type(x).__name__


def as_numpy_1d(x: Any, name: str, dtype: Any = np.float64) -> np.ndarray:
    """Convert a 1-D array-like (numpy, torch, list) to a numpy array, or raise naming ``name``.

    A column vector of shape ``(n, 1)`` is accepted and flattened; anything else with more
    than one dimension is rejected (no silent broadcasting). Half-precision tensors (bfloat16,
    float16; numpy has no bfloat16) go through float32, an exact upcast that keeps ties.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype in (torch.bfloat16, torch.float16):
            x = x.to(torch.float32)
        x = x.numpy()
    try:
        arr = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`{name}` must be a 1-D array of numbers, got {_kind(x)}: {exc}") from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D, got shape {tuple(arr.shape)}")
    return arr


def check_finite_np(arr: np.ndarray, name: str) -> None:
    """Raise if ``arr`` holds NaN or +-inf, saying how many and where the first one is."""
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.flatnonzero(bad.ravel())[0])
        raise ValueError(
            f"`{name}` contains {int(bad.sum())} non-finite value(s) (NaN or inf); "
            f"first at flat index {first}"
        )


def binary_labels_np(y: Any, name: str = "labels", allow_pm1: bool = True) -> np.ndarray:
    """Return labels as a boolean numpy array (True = positive).

    Accepts {0, 1}, booleans and, when ``allow_pm1``, {-1, 1} (-1 = negative).
    """
    arr = as_numpy_1d(y, name, dtype=np.float64)
    check_finite_np(arr, name)
    values = np.unique(arr)
    if np.all(np.isin(values, (0.0, 1.0))):
        return arr == 1.0
    if allow_pm1 and np.all(np.isin(values, (-1.0, 1.0))):
        return arr == 1.0
    allowed = "{0, 1} or {-1, 1}" if allow_pm1 else "{0, 1}"
    shown = ", ".join(f"{v:g}" for v in values[:6])
    raise ValueError(f"`{name}` must hold binary labels in {allowed}; found values {shown}")


def check_same_length(a: Any, b: Any, name_a: str, name_b: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"`{name_a}` and `{name_b}` must have the same length, got {len(a)} and {len(b)}")


def check_scores_tensor(t: Any, name: str, ndim: int = 1) -> torch.Tensor:
    """Check that ``t`` is a floating tensor with ``ndim`` dimensions and only finite values."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {_kind(t)}")
    if not t.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got dtype {t.dtype}")
    if t.dim() != ndim:
        raise ValueError(f"`{name}` must be {ndim}-D, got shape {tuple(t.shape)}")
    finite = torch.isfinite(t)
    if not bool(finite.all()):
        n_bad = int((~finite).sum())
        first = int((~finite).flatten().nonzero()[0])
        raise ValueError(
            f"`{name}` contains {n_bad} non-finite value(s) (NaN or inf); first at flat index {first}"
        )
    return t


def binary_labels_tensor(y: Any, name: str = "labels", length: int | None = None,
                         allow_pm1: bool = True) -> torch.Tensor:
    """Return labels as a boolean tensor (True = positive); accepts {0,1}, bool, or {-1,1}."""
    if not isinstance(y, torch.Tensor):
        y = torch.as_tensor(np.asarray(y))
    if y.dim() == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dim() != 1:
        raise ValueError(f"`{name}` must be 1-D, got shape {tuple(y.shape)}")
    if length is not None and y.shape[0] != length:
        raise ValueError(f"`{name}` has length {y.shape[0]} but the scores have length {length}")
    if y.dtype == torch.bool:
        return y
    values = torch.unique(y.detach().to(torch.float64).cpu())
    if not bool(torch.isfinite(values).all()):
        raise ValueError(f"`{name}` contains non-finite values")
    ok01 = bool(torch.isin(values, torch.tensor([0.0, 1.0], dtype=torch.float64)).all())
    okpm = allow_pm1 and bool(torch.isin(values, torch.tensor([-1.0, 1.0], dtype=torch.float64)).all())
    if not (ok01 or okpm):
        allowed = "{0, 1} or {-1, 1}" if allow_pm1 else "{0, 1}"
        shown = ", ".join(f"{v:g}" for v in values[:6].tolist())
        raise ValueError(f"`{name}` must hold binary labels in {allowed}; found values {shown}")
    return y == 1


# --------------------------------------------------------------------------------------------
# option checks and the one reduction vocabulary
# --------------------------------------------------------------------------------------------

REDUCTIONS = ("none", "mean", "sum")


def check_choice(value: Any, valid: tuple[Any, ...], name: str) -> Any:
    """Return ``value`` if it is one of ``valid``, else raise ``ValueError`` naming ``name`` and listing them."""
    if value not in valid:
        raise ValueError(f"`{name}` must be one of {', '.join(repr(v) for v in valid)}; got {value!r}")
    return value


def check_reduction(reduction: Any) -> str:
    """``reduction`` must be one of :data:`REDUCTIONS` (``'none'``, ``'mean'``, ``'sum'``)."""
    return check_choice(reduction, REDUCTIONS, "reduction")


def check_margin(margin: Any, name: str = "margin", positive: bool = False, why: str = "") -> float:
    """Return ``margin`` as a finite float (numpy and 0-d tensor numbers accepted, booleans rejected).

    ``positive=True`` also requires ``margin > 0``; ``why`` (e.g. "it keeps u_all > 0") is added to that message.
    """
    if isinstance(margin, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be a real number, got a boolean ({margin!r})")
    try:
        m = float(margin)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"`{name}` must be a real number, got {_kind(margin)}") from None
    if not np.isfinite(m):
        raise ValueError(f"`{name}` must be finite, got {margin}")
    if positive and m <= 0:
        because = f" ({why})" if why else ""
        raise ValueError(f"`{name}` must be a finite number > 0{because}, got {margin!r}")
    return m


# --------------------------------------------------------------------------------------------
# finite inputs whose loss overflows
# --------------------------------------------------------------------------------------------

class ScoreOverflowError(ValueError, OverflowError):
    """Finite scores whose loss overflows the compute dtype; a ``ValueError`` (a bad argument value) and an
    ``OverflowError`` both, so either ``except`` catches it."""


def raise_score_overflow(name: str, values: torch.Tensor, dtype: torch.dtype, hint: str = "") -> None:
    """Raise :class:`ScoreOverflowError` naming ``name``: its magnitude, where squares overflow ``dtype``, and
    what to do (rescale; pass float64 unless already float64; ``hint`` adds a loss-specific remedy)."""
    big = float(values.detach().abs().max()) if values.numel() else 0.0
    square_limit = float(torch.finfo(dtype).max) ** 0.5
    remedies = ["rescale the scores"] + ([hint] if hint else []) + ([] if dtype == torch.float64 else ["pass float64"])
    todo = remedies[0] if len(remedies) == 1 else ", ".join(remedies[:-1]) + " or " + remedies[-1]
    raise ScoreOverflowError(
        f"`{name}`: the loss overflows {str(dtype).replace('torch.', '')} (largest |{name}| = {big:.3g}; squares "
        f"overflow it at |score| ~ {square_limit:.1e}); {todo}")


def check_finite_result(results: tuple[torch.Tensor, ...], inputs: tuple[tuple[str, torch.Tensor], ...],
                        hint: str = "") -> None:
    """Raise :class:`ScoreOverflowError` if any of ``results`` (small reduced tensors: row sums, a loss) is
    non-finite although the ``inputs`` (``(name, tensor)`` pairs, already checked finite) are.

    One ``isfinite`` over the results in the common case; the inputs are scanned only to name the
    largest one once something has overflowed.
    """
    ok = torch.stack([torch.isfinite(r).all().to(results[0].device) for r in results]).all()
    if bool(ok):
        return
    name, values = max(inputs, key=lambda nv: float(nv[1].detach().abs().max()) if nv[1].numel() else 0.0)
    raise_score_overflow(name, values, results[0].dtype, hint)
