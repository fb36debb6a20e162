"""SOAP average-precision loss (Qi et al., NeurIPS 2021) as an ``nn.Module``: state and defaults only.

The formula lives in :func:`rankguard.functional.soap_loss`; this module keeps the two moving
averages per positive dataset index in buffers, gathers the batch's, and writes the new ones back.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from rankguard._validation import check_reduction
from rankguard.functional.ap import SOAP_GAMMA, SOAP_MARGIN, check_soap_batch, check_soap_options, soap_loss


class APLoss(nn.Module):
    r"""SOAP surrogate of average precision with per-sample moving averages.

    ``loss = mean_{i∈P, s} w_is·ℓ_is`` with ``w_is = (u_pos'[i] − u_all'[i]·y_s)/u_all'[i]²`` and
    ``u' = (1−γ)·u + γ·(batch mean of ℓ_is, resp. y_s·ℓ_is)``; the full statement, with AP's
    approximation and the O(B log B) evaluation, is :func:`~rankguard.functional.soap_loss`'s.

    Each call validates the batch, gathers ``u_all[index[i]]``, ``u_pos[index[i]]`` for the batch's
    positives i, calls :func:`~rankguard.functional.soap_loss` and, when ``update`` is true, writes the
    new averages back at those indices. The weights always use the *updated* averages
    ``(1−γ)·u[i] + γ·(batch mean)``, as LibAUC does.

    **Frozen** (``update=False``, or inside ``with loss_fn.frozen():``): the moving averages are read
    but not written. The value and gradient are exactly those an updating call would give — the
    weights use the would-be-updated averages ``(1−γ)·u[i] + γ·(batch mean)`` computed from the stored
    ``u`` — and the new averages are then discarded, so ``state_dict()`` is unchanged. Use it where
    the loss is evaluated many times per training step, e.g. in an adversarial attack's inner loop;
    the training step itself then runs with ``update=True``. (Using the stored averages alone would
    divide by ``u_all = 0`` for a positive never seen.)

    Args:
        num_samples: size of the dataset; ``index`` values must lie in ``[0, num_samples)``.
        margin: m > 0. It keeps u_all > 0 after every update (the diagonal term is ℓ(m) > 0),
            so the weights never divide by zero; ``margin <= 0`` is rejected.
        gamma: γ ∈ (0, 1], the weight of the new batch in the moving averages.
        surrogate: ``"squared_hinge"`` (default, the paper's), ``"hinge"`` or ``"squared"``.
        score_transform: ``"sigmoid"`` (default) or ``None``.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` ([B⁺] per-positive losses).
        update: write the new moving averages back (default). A plain attribute: set it, or use
            :meth:`frozen`.

    Defaults m = 0.6, γ = 0.1 follow the Adversarial-AP code (Li, Tong, Yang, NeurIPS 2023),
    which trains SOAP on sigmoid scores (REFERENCES.md §2).

    State: buffers ``u_all`` and ``u_pos`` of shape ``[num_samples]`` (start at 0) — saved in
    ``state_dict`` and moved by ``.to()``. ``update`` is configuration, not state.

    Shapes: ``scores`` [B] float (raw model outputs), ``labels`` [B] in {0,1}, {−1,1} or bool,
    ``index`` [B] integer dataset indices, all distinct within a batch (a repeated index would make
    two updates of one moving average in one step; it raises ``ValueError``). A batch needs at least
    one positive (SOAP has no term otherwise; ``ValueError`` naming ``labels``). Returns a scalar
    (``[B⁺]`` for ``reduction="none"``). A rejected batch — including finite scores whose loss
    overflows (``ValueError`` naming ``scores``) — changes no state.

    >>> loss_fn = APLoss(num_samples=10)
    >>> scores = torch.tensor([2.0, -1.0, 0.5, 0.0], requires_grad=True)
    >>> labels, index = torch.tensor([1, 0, 1, 0]), torch.tensor([0, 3, 7, 9])
    >>> with loss_fn.frozen():
    ...     _ = loss_fn(scores, labels, index)      # e.g. inside an attack: no state written
    >>> bool(loss_fn.u_all.any())
    False
    >>> loss = loss_fn(scores, labels, index)
    >>> loss.backward(); loss.shape, scores.grad.shape, int((loss_fn.u_all > 0).sum())
    (torch.Size([]), torch.Size([4]), 2)
    """

    u_all: torch.Tensor
    u_pos: torch.Tensor

    def __init__(self, num_samples: int, margin: float = SOAP_MARGIN, gamma: float = SOAP_GAMMA,
                 surrogate: str = "squared_hinge", score_transform: str | None = "sigmoid",
                 reduction: str = "mean", update: bool = True):
        super().__init__()
        if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
            raise ValueError(f"`num_samples` must be a positive integer, got {num_samples!r}")
        self.margin, self.gamma = check_soap_options(margin, gamma, surrogate, score_transform)
        if not isinstance(update, (bool, np.bool_)):
            raise TypeError(f"`update` must be a bool, got {type(update).__name__}")
        self.num_samples = int(num_samples)
        self.surrogate = surrogate
        self.score_transform = score_transform
        self.reduction = check_reduction(reduction)
        self.update = bool(update)
        self.register_buffer("u_all", torch.zeros(self.num_samples))
        self.register_buffer("u_pos", torch.zeros(self.num_samples))

    def extra_repr(self) -> str:
        return (f"num_samples={self.num_samples}, margin={self.margin}, gamma={self.gamma}, "
                f"surrogate={self.surrogate!r}, score_transform={self.score_transform!r}, "
                f"reduction={self.reduction!r}, update={self.update}")

    def reset_state(self) -> None:
        """Set both moving averages back to 0 (e.g. between independent training runs)."""
        self.u_all.zero_()
        self.u_pos.zero_()

    @contextlib.contextmanager
    def frozen(self) -> Iterator["APLoss"]:
        """Within the block, calls read the moving averages but do not write them (see the class docstring);
        ``update`` is restored afterwards, also on error, and blocks nest."""
        previous = self.update
        self.update = False
        try:
            yield self
        finally:
            self.update = previous

    def _check_index(self, index: Any, length: int) -> torch.Tensor:
        if not isinstance(index, torch.Tensor):
            index = torch.as_tensor(np.asarray(index))
        if index.dtype == torch.bool or index.is_floating_point() or index.is_complex():
            raise TypeError(f"`index` must be an integer tensor of dataset indices, got dtype {index.dtype}")
        if index.dim() != 1:
            raise ValueError(f"`index` must be 1-D, got shape {tuple(index.shape)}")
        if index.shape[0] != length:
            raise ValueError(f"`index` has length {index.shape[0]} but the scores have length {length}")
        index = index.to(device=self.u_all.device, dtype=torch.long)
        lo, hi = (int(v) for v in torch.aminmax(index))
        if lo < 0 or hi >= self.num_samples:
            bad = lo if lo < 0 else hi
            raise IndexError(f"`index` holds {bad}, outside [0, num_samples={self.num_samples})")
        # distinct <=> no two equal neighbours once sorted; int32 keys (when they fit) take torch's radix sort
        keys = index.to(torch.int32) if self.num_samples <= torch.iinfo(torch.int32).max else index
        ordered = torch.sort(keys).values
        if bool((ordered[1:] == ordered[:-1]).any()):
            raise ValueError("`index` repeats a dataset index within the batch; each sample may appear once")
        return index

    def forward(self, scores: torch.Tensor, labels: Any, index: Any) -> torch.Tensor:
        is_pos = check_soap_batch(scores, labels)
        index = self._check_index(index, scores.shape[0])
        idx_pos = index[is_pos.to(index.device)]  # the positives' dataset indices, in batch order
        loss, new_u_all, new_u_pos = soap_loss(
            scores, is_pos, self.u_all.index_select(0, idx_pos), self.u_pos.index_select(0, idx_pos),
            margin=self.margin, gamma=self.gamma, surrogate=self.surrogate,
            score_transform=self.score_transform, reduction=self.reduction)
        if self.update:  # only once soap_loss has returned: a rejected batch changes no state
            with torch.no_grad():
                self.u_all.index_copy_(0, idx_pos, new_u_all)
                self.u_pos.index_copy_(0, idx_pos, new_u_pos)
        return loss
