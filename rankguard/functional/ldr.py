"""Multi-class losses on logits ``[B, K]`` and integer labels ``[B]``: LDR-KL, ALDR-KL and the baselines.

**LDR-KL** (Zhu, Ying, Yang, "Label Distributionally Robust Losses for Multi-class Classification",
ICML 2023; REFERENCES.md §7) takes the worst case over label distributions p in the simplex Δ_K::

    ℓ_k   = c·1[k ≠ y] + f_k − f_y                                   (margin c, scores f)
    L(f, y) = max_{p∈Δ_K} Σ_k p_k ℓ_k − λ·KL(p ‖ uniform)
            = λ · log( (1/K) Σ_k exp(ℓ_k / λ) )                       (maximiser p* = softmax(ℓ/λ))

computed as a log-sum-exp with the maximum subtracted (finite for any finite logits). Limits:
c = 0, λ = 1, raw logits → cross-entropy − log K; λ → 0 → the Crammer–Singer hinge
max_k ℓ_k = max(0, max_{k≠y} c + f_k − f_y); λ → ∞ → the mean margin (1/K) Σ_k ℓ_k (MAE-like).

**Score transform** (``transform="softplus"``, the authors' code, Optimization-AI/ICML2023_LDR
@732fc85): f = softplus(z) / mean_k softplus(z) per row, so f ≥ 0 and Σ_k f_k = K (the scores are
on a fixed scale, which is what makes one λ meaningful across examples). ``transform=None`` uses
the logits as they are (f = z). The row mean is clamped at the smallest normal number so that
rows of very negative logits (softplus underflowing to 0) give f = 0, not 0/0.

**ALDR-KL** gives each example its own λ_i (kept by :class:`rankguard.losses.ALDRKLLoss`). At each
visit, with λ_i the stored value (λ₀ at first)::

    p    = softmax(f / λ_i)                       (margin not included, detached)
    λ_i' = λ₀ − λ₀ · KL(p ‖ uniform) / (α log K)  ∈ [λ₀(1 − 1/α), λ₀]   since 0 ≤ KL ≤ log K
    loss = λ_i' · log( (1/K) Σ_k exp(ℓ_k / λ_i') ) − (α log K)/(2 λ₀) · (λ_i' − λ₀)²

λ_i' is a constant for the gradient; α > 1 keeps it positive. A confident prediction (p far from
uniform) gets a small λ_i (a hinge-like, label-trusting loss), an uncertain one a large λ_i (a
flat, label-distrusting loss). α = 2, λ₀ = 10, c = 0.1 are the paper's experiment settings.

**Baselines**, with p = softmax(z) and p_y its label entry:

- ``ce_loss``: −log softmax(z/T)_y, temperature T (T = 1 is cross-entropy).
- ``label_smoothing_loss``: (1 − ε)·(−log p_y) + ε·(1/K) Σ_k (−log p_k) (Szegedy et al., CVPR 2016).
- ``focal_loss``: −(1 − p_y)^γ log p_y (Lin et al., ICCV 2017).
- ``gce_loss``: (1 − p_y^q) / q, q ∈ (0, 1] (generalised CE, Zhang & Sabuncu, NeurIPS 2018; q → 0
  gives CE, q = 1 gives MAE/2).
- ``sce_loss``: α·CE + β·RCE, RCE = −Σ_k p_k log ȳ_k with log 0 clipped to A, i.e. −A·(1 − p_y)
  (symmetric CE, Wang et al., ICCV 2019; A = −4 as in the paper).
- ``mae_loss``: ‖onehot(y) − p‖₁ = 2(1 − p_y) (Ghosh et al., AAAI 2017).

Every function validates its inputs at the door (``logits`` 2-D floating and finite, ``labels``
integer in [0, K)), returns per-example losses ``[B]`` for ``reduction="none"``, else their mean or sum.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from rankguard._validation import check_choice, check_margin, check_scores_tensor
from rankguard.functional.reduction import reduce_loss

__all__ = ["LDR_TRANSFORMS", "LDR_MARGIN", "LDR_LAMBDA", "ALDR_ALPHA", "aldr_kl_lambda", "aldr_kl_loss",
           "ce_loss", "check_class_batch", "focal_loss", "gce_loss", "label_smoothing_loss", "ldr_kl_loss",
           "ldr_scores", "mae_loss", "sce_loss", "kl_to_uniform"]

LDR_TRANSFORMS = ("softplus", None)
# The paper's experiment settings (Zhu, Ying, Yang, ICML 2023, §6; REFERENCES.md §7).
LDR_MARGIN = 0.1
LDR_LAMBDA = 10.0
ALDR_ALPHA = 2.0


def check_class_batch(logits: Any, labels: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate ``logits [B, K]`` (floating, finite, K ≥ 2) and ``labels [B]`` (integers in [0, K)).

    >>> z, y = check_class_batch(torch.zeros(2, 3), torch.tensor([0, 2]))
    >>> check_class_batch(torch.zeros(2, 3), torch.tensor([0, 3]))
    Traceback (most recent call last):
    ...
    ValueError: `labels` must lie in [0, K) = [0, 3) (K = logits.shape[1]); found 3 at position 1
    """
    z = check_scores_tensor(logits, "logits", ndim=2)
    if z.shape[1] < 2:
        raise ValueError(f"`logits` must have K >= 2 columns (classes), got shape {tuple(z.shape)}")
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"`labels` must be a torch.Tensor of class indices, got {type(labels).__name__}")
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise TypeError(f"`labels` must hold integer class indices, got dtype {labels.dtype}")
    if labels.dim() != 1 or labels.shape[0] != z.shape[0]:
        raise ValueError(f"`labels` must be 1-D with B = {z.shape[0]} entries (one per row of `logits`), "
                         f"got shape {tuple(labels.shape)}")
    bad = (labels < 0) | (labels >= z.shape[1])
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        raise ValueError(f"`labels` must lie in [0, K) = [0, {z.shape[1]}) (K = logits.shape[1]); "
                         f"found {int(labels[i])} at position {i}")
    return z, labels.long()


def _positive(value: Any, name: str) -> float:
    return check_margin(value, name, positive=True)


def _lam_tensor(lam: Any, z: torch.Tensor, name: str = "lam") -> torch.Tensor:
    """λ as a float, or a per-row tensor ``[B]`` (ALDR-KL); all entries finite and > 0."""
    if isinstance(lam, torch.Tensor) and lam.dim() > 0:
        if lam.shape != (z.shape[0],):
            raise ValueError(f"`{name}` must be a number or a [B] = [{z.shape[0]}] tensor, got shape {tuple(lam.shape)}")
        if not bool((torch.isfinite(lam) & (lam > 0)).all()):
            raise ValueError(f"`{name}` must be finite and > 0 everywhere")
        return lam.detach().to(z.dtype).unsqueeze(1)
    return torch.tensor(_positive(lam, name), dtype=z.dtype, device=z.device)


def ldr_scores(logits: torch.Tensor, transform: str | None = "softplus") -> torch.Tensor:
    """The scores f the LDR losses see: softplus(z)/mean_k softplus(z) per row, or z for ``None``.

    >>> f = ldr_scores(torch.tensor([[0.0, 1.0, -1.0]])); round(float(f.sum()), 6)
    3.0
    """
    check_choice(transform, LDR_TRANSFORMS, "transform")
    if transform is None:
        return logits
    s = F.softplus(logits)
    return s / s.mean(dim=1, keepdim=True).clamp_min(torch.finfo(s.dtype).tiny)


def _margins(f: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """ℓ_k = c·1[k ≠ y] + f_k − f_y, shape [B, K]."""
    fy = f.gather(1, labels.unsqueeze(1))
    off = torch.full_like(f, margin).scatter(1, labels.unsqueeze(1), 0.0)
    return off + f - fy


def _lse_mean(values: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """λ·log((1/K) Σ_k exp(v_k/λ)) per row, max-subtracted by torch.logsumexp."""
    return lam.squeeze(-1) * (torch.logsumexp(values / lam, dim=1) - math.log(values.shape[1]))


def ldr_kl_loss(logits: torch.Tensor, labels: torch.Tensor, margin: float = LDR_MARGIN, lam: Any = LDR_LAMBDA,
                transform: str | None = "softplus", reduction: str = "mean") -> torch.Tensor:
    """LDR-KL loss λ·log((1/K) Σ_k exp((c·1[k≠y] + f_k − f_y)/λ)) (module docstring for the definition).

    Args:
        logits: ``[B, K]`` model outputs z; f = :func:`ldr_scores` (z, transform).
        labels: ``[B]`` integer classes in [0, K).
        margin: c ≥ 0 (0.1 in the paper). lam: λ > 0 (10 in the paper), a number or a ``[B]`` tensor.
        transform: ``"softplus"`` (the authors' code) or ``None`` (raw logits).
        reduction: ``"none"`` ([B]), ``"mean"`` or ``"sum"``.

    >>> z, y = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0])
    >>> ce = F.cross_entropy(z, y) - math.log(3)
    >>> bool(torch.isclose(ldr_kl_loss(z, y, margin=0.0, lam=1.0, transform=None), ce))
    True
    """
    z, y = check_class_batch(logits, labels)
    c = check_margin(margin, "margin")
    if c < 0:
        raise ValueError(f"`margin` must be >= 0, got {margin!r}")
    lam_t = _lam_tensor(lam, z)
    per_row = _lse_mean(_margins(ldr_scores(z, transform), y, c), lam_t)
    return reduce_loss(per_row, reduction)


def kl_to_uniform(p: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ uniform) = Σ_k p_k log(K p_k) per row of a ``[B, K]`` probability matrix (0·log 0 = 0).

    >>> kl_to_uniform(torch.tensor([[0.5, 0.5], [1.0, 0.0]])).tolist()  # doctest: +ELLIPSIS
    [0.0, 0.693...]
    """
    k = p.shape[1]
    return torch.xlogy(p, p * k).sum(dim=1).clamp_min(0.0)


def aldr_kl_lambda(logits: torch.Tensor, lam_old: torch.Tensor, lam0: float = LDR_LAMBDA,
                   alpha: float = ALDR_ALPHA, transform: str | None = "softplus") -> torch.Tensor:
    """ALDR-KL's closed-form λ update λ₀ − λ₀·KL(softmax(f/λ_old) ‖ uniform)/(α log K), detached, ``[B]``.

    >>> lam = aldr_kl_lambda(torch.tensor([[0.0, 0.0], [200.0, -200.0]]), torch.full((2,), 10.0), transform=None)
    >>> [round(v, 3) for v in lam.tolist()]        # uniform -> λ₀; confident -> λ₀(1 − 1/α)
    [10.0, 5.0]
    """
    z = check_scores_tensor(logits, "logits", ndim=2)
    l0, a = _positive(lam0, "lam0"), _positive(alpha, "alpha")
    if a <= 1:
        raise ValueError(f"`alpha` must be > 1 (it keeps λ_i >= λ₀(1 − 1/α) > 0), got {alpha!r}")
    lam_old = _lam_tensor(lam_old, z, "lam_old")
    with torch.no_grad():
        p = torch.softmax(ldr_scores(z.detach(), transform) / lam_old, dim=1)
        return (l0 - l0 * kl_to_uniform(p) / (a * math.log(z.shape[1]))).reshape(z.shape[0])


def aldr_kl_loss(logits: torch.Tensor, labels: torch.Tensor, lam: torch.Tensor, lam0: float = LDR_LAMBDA,
                 alpha: float = ALDR_ALPHA, margin: float = LDR_MARGIN, transform: str | None = "softplus",
                 reduction: str = "mean") -> torch.Tensor:
    """ALDR-KL loss at per-example λ_i (``lam`` ``[B]``, from :func:`aldr_kl_lambda`; treated as constant):
    λ_i·log((1/K) Σ_k exp(ℓ_k/λ_i)) − (α log K)/(2λ₀)·(λ_i − λ₀)².

    >>> z, y = torch.tensor([[1.0, 0.0]]), torch.tensor([0])
    >>> lam = aldr_kl_lambda(z, torch.full((1,), 10.0))
    >>> aldr_kl_loss(z, y, lam).shape
    torch.Size([])
    """
    z, y = check_class_batch(logits, labels)
    l0, a = _positive(lam0, "lam0"), _positive(alpha, "alpha")
    lam_t = _lam_tensor(lam, z)
    per_row = ldr_kl_loss(z, y, margin, lam_t.squeeze(1), transform, "none")
    per_row = per_row - a * math.log(z.shape[1]) / (2 * l0) * (lam_t.squeeze(1) - l0) ** 2
    return reduce_loss(per_row, reduction)


def ce_loss(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0,
            reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy at temperature T: −log softmax(z/T)_y.

    >>> bool(torch.isclose(ce_loss(torch.tensor([[1.0, 2.0]]), torch.tensor([1])),
    ...                    F.cross_entropy(torch.tensor([[1.0, 2.0]]), torch.tensor([1]))))
    True
    """
    z, y = check_class_batch(logits, labels)
    t = _positive(temperature, "temperature")
    return reduce_loss(F.cross_entropy(z / t, y, reduction="none"), reduction)


def _log_p(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    z, y = check_class_batch(logits, labels)
    log_p = torch.log_softmax(z, dim=1)
    return log_p, log_p.gather(1, y.unsqueeze(1)).squeeze(1), y


def label_smoothing_loss(logits: torch.Tensor, labels: torch.Tensor, smoothing: float = 0.1,
                         reduction: str = "mean") -> torch.Tensor:
    """(1 − ε)·(−log p_y) + ε·mean_k(−log p_k) (Szegedy et al. 2016; ε = 0.1 there).

    >>> round(float(label_smoothing_loss(torch.zeros(1, 4), torch.tensor([0]))), 4)  # log 4
    1.3863
    """
    eps = check_margin(smoothing, "smoothing")
    if not 0 <= eps < 1:
        raise ValueError(f"`smoothing` must lie in [0, 1), got {smoothing!r}")
    log_p, log_py, _ = _log_p(logits, labels)
    return reduce_loss(-(1 - eps) * log_py - eps * log_p.mean(dim=1), reduction)


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float = 2.0,
               reduction: str = "mean") -> torch.Tensor:
    """−(1 − p_y)^γ log p_y (Lin et al. 2017; γ = 2 there); γ = 0 is cross-entropy.

    >>> round(float(focal_loss(torch.zeros(1, 2), torch.tensor([0]), gamma=1.0)), 4)  # 0.5·log 2
    0.3466
    """
    g = check_margin(gamma, "gamma")
    if g < 0:
        raise ValueError(f"`gamma` must be >= 0, got {gamma!r}")
    _, log_py, _ = _log_p(logits, labels)
    return reduce_loss(-(-torch.expm1(log_py)).clamp_min(0) ** g * log_py, reduction)


def gce_loss(logits: torch.Tensor, labels: torch.Tensor, q: float = 0.7, reduction: str = "mean") -> torch.Tensor:
    """Generalised cross-entropy (1 − p_y^q)/q (Zhang & Sabuncu 2018; q = 0.7 there).

    >>> round(float(gce_loss(torch.zeros(1, 2), torch.tensor([0]), q=1.0)), 4)    # 1 − 1/2
    0.5
    """
    qq = _positive(q, "q")
    if qq > 1:
        raise ValueError(f"`q` must lie in (0, 1], got {q!r}")
    _, log_py, _ = _log_p(logits, labels)
    return reduce_loss(-torch.expm1(qq * log_py) / qq, reduction)


def sce_loss(logits: torch.Tensor, labels: torch.Tensor, alpha: float = 0.1, beta: float = 1.0,
             log_zero: float = -4.0, reduction: str = "mean") -> torch.Tensor:
    """Symmetric cross-entropy α·(−log p_y) + β·(−A)(1 − p_y), A = ``log_zero`` (Wang et al. 2019;
    α = 0.1, β = 1, A = −4 their CIFAR-10 settings).

    >>> round(float(sce_loss(torch.zeros(1, 2), torch.tensor([0]), alpha=0.0, beta=1.0)), 4)   # 4·(1 − 1/2)
    2.0
    """
    a, b = check_margin(alpha, "alpha"), check_margin(beta, "beta")
    if a < 0 or b < 0 or a + b == 0:
        raise ValueError(f"`alpha` and `beta` must be >= 0 and not both 0, got {alpha!r}, {beta!r}")
    big_a = check_margin(log_zero, "log_zero")
    if big_a >= 0:
        raise ValueError(f"`log_zero` (A, the clipped log 0) must be < 0, got {log_zero!r}")
    _, log_py, _ = _log_p(logits, labels)
    return reduce_loss(-a * log_py + b * big_a * torch.expm1(log_py), reduction)


def mae_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean absolute error between one-hot labels and softmax: ‖e_y − p‖₁ = 2(1 − p_y) (Ghosh et al. 2017).

    >>> round(float(mae_loss(torch.zeros(1, 4), torch.tensor([0]))), 4)
    1.5
    """
    _, log_py, _ = _log_p(logits, labels)
    return reduce_loss(-2 * torch.expm1(log_py), reduction)
