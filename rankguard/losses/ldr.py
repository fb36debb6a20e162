"""Multi-class losses as ``nn.Module``: defaults and (for ALDR-KL) the per-sample λ_i buffer.

Formulas and citations live in :mod:`rankguard.functional.ldr`. Every module is called as
``loss_fn(logits [B, K], labels [B], index=None)``; ``index`` (dataset positions) is required by
:class:`ALDRKLLoss` and ignored by the others, which is the engine's ``(scores, labels, index)``
contract (:mod:`rankguard.training.batching`).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from rankguard._validation import check_choice, check_margin, check_reduction
from rankguard.functional import ldr as F_ldr
from rankguard.functional.ldr import ALDR_ALPHA, LDR_LAMBDA, LDR_MARGIN, LDR_TRANSFORMS


class _ClassLoss(nn.Module):
    """Base: stores ``reduction`` and forwards ``(logits, labels)`` to one functional form."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = check_reduction(reduction)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._options().items())

    def _options(self) -> dict:
        return {"reduction": self.reduction}


class LDRKLLoss(_ClassLoss):
    """LDR-KL: λ·log((1/K) Σ_k exp((c·1[k≠y] + f_k − f_y)/λ)) (Zhu, Ying, Yang, ICML 2023).

    Args:
        margin: c ≥ 0 (default 0.1, the paper's). lam: λ > 0 (default 10, the paper's).
        transform: ``"softplus"`` (default; f = softplus(z)/mean softplus(z), the authors' code) or
            ``None`` (f = z; then c = 0, λ = 1 is cross-entropy − log K).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.

    >>> loss = LDRKLLoss()(torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0]))
    >>> loss.shape
    torch.Size([])
    """

    def __init__(self, margin: float = LDR_MARGIN, lam: float = LDR_LAMBDA, transform: str | None = "softplus",
                 reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = check_margin(margin, "margin")
        self.lam = check_margin(lam, "lam", positive=True)
        self.transform = check_choice(transform, LDR_TRANSFORMS, "transform")

    def _options(self) -> dict:
        return {"margin": self.margin, "lam": self.lam, "transform": self.transform, **super()._options()}

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        return F_ldr.ldr_kl_loss(logits, labels, self.margin, self.lam, self.transform, self.reduction)


class ALDRKLLoss(_ClassLoss):
    """Adaptive LDR-KL with one λ_i per training example (Zhu, Ying, Yang, ICML 2023, Alg. ALDR-KL).

    Each call gathers the stored λ_i of the batch's ``index``, computes the closed-form update
    λ_i' = λ₀ − λ₀·KL(softmax(f/λ_i) ‖ uniform)/(α log K) (:func:`~rankguard.functional.aldr_kl_lambda`),
    writes it back (unless frozen) and returns
    λ_i'·log mean_k exp(ℓ_k/λ_i') − (α log K)/(2λ₀)·(λ_i' − λ₀)² (:func:`~rankguard.functional.aldr_kl_loss`).

    Args:
        num_samples: training-set size; ``index`` must lie in ``[0, num_samples)``.
        lam0: λ₀ > 0 (default 10). alpha: α > 1 (default 2); λ_i stays in [λ₀(1 − 1/α), λ₀].
        margin: c ≥ 0 (default 0.1). transform, reduction: as :class:`LDRKLLoss`.
        update: write the new λ_i back (default); see :meth:`frozen`.

    State: buffer ``lam`` ``[num_samples]`` (starts at λ₀), in ``state_dict``, moved by ``.to()``.
    A rejected batch (bad labels, index or logits) changes no state.

    >>> loss_fn = ALDRKLLoss(num_samples=5)
    >>> z, y, idx = torch.tensor([[4.0, -4.0], [0.0, 0.0]]), torch.tensor([0, 1]), torch.tensor([3, 0])
    >>> _ = loss_fn(z, y, idx)
    >>> [round(v, 2) for v in loss_fn.lam.tolist()]
    [10.0, 10.0, 10.0, 9.96, 10.0]
    """

    lam: torch.Tensor

    def __init__(self, num_samples: int, lam0: float = LDR_LAMBDA, alpha: float = ALDR_ALPHA,
                 margin: float = LDR_MARGIN, transform: str | None = "softplus", reduction: str = "mean",
                 update: bool = True):
        super().__init__(reduction)
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"`num_samples` must be an integer >= 1 (the training-set size), got {num_samples!r}")
        self.num_samples = num_samples
        self.lam0 = check_margin(lam0, "lam0", positive=True)
        self.alpha = check_margin(alpha, "alpha")
        if self.alpha <= 1:
            raise ValueError(f"`alpha` must be > 1 (it keeps λ_i >= λ₀(1 − 1/α) > 0), got {alpha!r}")
        self.margin = check_margin(margin, "margin")
        self.transform = check_choice(transform, LDR_TRANSFORMS, "transform")
        self.update = bool(update)
        self.register_buffer("lam", torch.full((num_samples,), self.lam0, dtype=torch.float64))

    def _options(self) -> dict:
        return {"num_samples": self.num_samples, "lam0": self.lam0, "alpha": self.alpha, "margin": self.margin,
                "transform": self.transform, **super()._options()}

    @property
    def lam_bounds(self) -> tuple[float, float]:
        """``(λ₀(1 − 1/α), λ₀)``: the range every λ_i stays in."""
        return self.lam0 * (1 - 1 / self.alpha), self.lam0

    @contextlib.contextmanager
    def frozen(self) -> Iterator["ALDRKLLoss"]:
        """Inside the block, calls read λ_i and compute the update but do not store it."""
        previous, self.update = self.update, False
        try:
            yield self
        finally:
            self.update = previous

    def _check_index(self, index: torch.Tensor | None, batch: int) -> torch.Tensor:
        if index is None:
            raise ValueError("`index` is required by ALDRKLLoss: the batch rows' dataset positions, which key λ_i")
        if not isinstance(index, torch.Tensor) or index.dtype in (torch.bool,) or index.is_floating_point():
            raise TypeError(f"`index` must be an integer tensor of dataset positions, got "
                            f"{getattr(index, 'dtype', type(index).__name__)}")
        if index.shape != (batch,):
            raise ValueError(f"`index` must have shape [B] = [{batch}], got {tuple(index.shape)}")
        bad = (index < 0) | (index >= self.num_samples)
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            raise ValueError(f"`index` must lie in [0, num_samples) = [0, {self.num_samples}); found "
                             f"{int(index[i])} at position {i} (is `num_samples` the training-set size?)")
        return index.to(self.lam.device).long()

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        z, y = F_ldr.check_class_batch(logits, labels)
        idx = self._check_index(index, z.shape[0])
        lam_old = self.lam[idx].to(z.dtype)
        lam_new = F_ldr.aldr_kl_lambda(z, lam_old, self.lam0, self.alpha, self.transform)
        loss = F_ldr.aldr_kl_loss(z, y, lam_new, self.lam0, self.alpha, self.margin, self.transform, self.reduction)
        if self.update:
            self.lam[idx] = lam_new.to(self.lam.dtype)
        return loss


class CrossEntropyLoss(_ClassLoss):
    """Cross-entropy at temperature T (default 1): −log softmax(z/T)_y.

    >>> CrossEntropyLoss()(torch.zeros(1, 2), torch.tensor([1])).item() > 0
    True
    """

    def __init__(self, temperature: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.temperature = check_margin(temperature, "temperature", positive=True)

    def _options(self) -> dict:
        return {"temperature": self.temperature, **super()._options()}

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        return F_ldr.ce_loss(logits, labels, self.temperature, self.reduction)


class LabelSmoothingLoss(_ClassLoss):
    """Label-smoothed cross-entropy, ε = ``smoothing`` (default 0.1, Szegedy et al. 2016).

    >>> LabelSmoothingLoss()(torch.zeros(1, 2), torch.tensor([1])).shape
    torch.Size([])
    """

    def __init__(self, smoothing: float = 0.1, reduction: str = "mean"):
        super().__init__(reduction)
        self.smoothing = float(smoothing)

    def _options(self) -> dict:
        return {"smoothing": self.smoothing, **super()._options()}

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        return F_ldr.label_smoothing_loss(logits, labels, self.smoothing, self.reduction)


class FocalLoss(_ClassLoss):
    """Focal loss −(1 − p_y)^γ log p_y, γ default 2 (Lin et al. 2017).

    >>> FocalLoss()(torch.zeros(1, 2), torch.tensor([1])).shape
    torch.Size([])
    """

    def __init__(self, gamma: float = 2.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.gamma = float(gamma)

    def _options(self) -> dict:
        return {"gamma": self.gamma, **super()._options()}

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        return F_ldr.focal_loss(logits, labels, self.gamma, self.reduction)


class GCELoss(_ClassLoss):
    """Generalised cross-entropy (1 − p_y^q)/q, q default 0.7 (Zhang & Sabuncu 2018).

    >>> GCELoss()(torch.zeros(1, 2), torch.tensor([1])).shape
    torch.Size([])
    """

    def __init__(self, q: float = 0.7, reduction: str = "mean"):
        super().__init__(reduction)
        self.q = float(q)

    def _options(self) -> dict:
        return {"q": self.q, **super()._options()}

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        return F_ldr.gce_loss(logits, labels, self.q, self.reduction)


class SCELoss(_ClassLoss):
    """Symmetric cross-entropy α·CE + β·RCE, defaults α = 0.1, β = 1, A = −4 (Wang et al. 2019).

    >>> SCELoss()(torch.zeros(1, 2), torch.tensor([1])).shape
    torch.Size([])
    """

    def __init__(self, alpha: float = 0.1, beta: float = 1.0, log_zero: float = -4.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.alpha, self.beta, self.log_zero = float(alpha), float(beta), float(log_zero)

    def _options(self) -> dict:
        return {"alpha": self.alpha, "beta": self.beta, "log_zero": self.log_zero, **super()._options()}

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        return F_ldr.sce_loss(logits, labels, self.alpha, self.beta, self.log_zero, self.reduction)


class MAELoss(_ClassLoss):
    """MAE between one-hot labels and softmax, 2(1 − p_y) (Ghosh et al. 2017).

    >>> MAELoss()(torch.zeros(1, 2), torch.tensor([1])).item()
    1.0
    """

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        return F_ldr.mae_loss(logits, labels, self.reduction)
