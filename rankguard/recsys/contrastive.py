"""AdvInfoNCE training (Zhang et al., NeurIPS 2023): a hardness model trained adversarially, on the engine.

The recommender (any backbone) scores ``(u, i⁺)`` and ``N`` uniform negatives ``j`` (the user's
training items excluded); a separate **hardness model** — its own user and item tables
``e^p_u, e^p_j`` (``adv_dim`` = 64) — gives each negative the logit ``h_uj = ⟨e^p_u, e^p_j⟩`` and
the weight ``p_uj = softmax_j h_uj`` of :func:`rankguard.functional.adv_info_nce_loss`.

Two phases, as in the authors' ``train_AdvInfoNCE.py`` (LehengTHU/AdvInfoNCE @e7c0416):

* **adversarial pass** — at 1-based epochs ``e ≥ 2`` with ``(e + 2) % adv_interval == 0`` (their
  0-based ``(epoch + 3) % adv_interval == 0 and epoch > warm_up_epochs = 0``), for the first
  ``adv_passes`` such epochs only (their ``eta_epochs``: the KL budget — each pass can move ``p``
  further from uniform), one pass over the training pairs *before* that epoch's recommender pass:
  only the hardness tables step (own Adam, ``adv_lr``), **maximising**
  ``ℓ − adv_reg · ½(‖e^p_u‖² + ‖e^p_j‖²)/B``. That penalty is the one the paper means; the public
  code computes it (``reg_neg_prob``) but subtracts the recommender's term instead, so its
  adversary is unpenalised.
* **recommender pass** — every epoch, hardness frozen: the backbone minimises
  ``ℓ + embedding_reg · ½(‖u⁰‖² + ‖i⁺⁰‖² + ‖j⁰‖²)/B`` on the free (layer-0) rows (the authors'
  regulariser, with their ``0.5 ** norm`` typo for the negatives read as ``0.5 · norm²``).

One scalar serves both phases: ``ℓ + rec_reg − adv_pen`` — the adversary's gradient (it ascends,
``maximize=True``) sees ``ℓ − adv_pen``, the recommender's sees ``ℓ + rec_reg``; each phase only
builds the graph of the side that steps (the other side's scores are computed without gradient),
and the engine steps only the optimizer whose ``active(epoch, step)`` says so.

Logged per epoch: ``kl`` = mean ``KL(p ‖ uniform)`` of the batches' negatives (how far the
adversary moved), ``adv_share`` = the share of that epoch's steps that were adversarial.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from rankguard.functional.contrastive import kl_to_uniform
from rankguard.losses.contrastive import AdvInfoNCELoss
from rankguard.recsys.models import MF
from rankguard.recsys.objectives import SampledPairObjective, _epoch_batches, half_sq_norm
from rankguard.samplers import NegativeSampler
from rankguard.training.objective import OptimizerSpec


def adversarial_epochs(epochs: int, interval: int, passes: int) -> list[int]:
    """The 1-based epochs that begin with an adversarial pass (module docstring).

    >>> adversarial_epochs(60, 15, 2), adversarial_epochs(10, 1, 3)
    ([13, 28], [2, 3, 4])
    """
    if interval < 1 or passes < 0:
        raise ValueError(f"--adv-interval must be >= 1 and --adv-passes >= 0, got {interval}, {passes}")
    return [e for e in range(2, epochs + 1) if (e + 2) % interval == 0][:passes]


class Hardness(nn.Module):
    """The adversary's tables ``e^p_u [n_users, d]``, ``e^p_j [n_items, d]``; Xavier-normal init (the authors').

    ``logits(users [B], items [B, N]) -> [B, N]`` = ``⟨e^p_u, e^p_j⟩``.
    """

    def __init__(self, n_users: int, n_items: int, dim: int = 64, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        if dim < 1:
            raise ValueError(f"--adv-dim must be >= 1, got {dim}")
        self.user = nn.Parameter(torch.randn(n_users, dim, generator=generator, dtype=dtype)
                                 * math.sqrt(2.0 / (n_users + dim)))
        self.item = nn.Parameter(torch.randn(n_items, dim, generator=generator, dtype=dtype)
                                 * math.sqrt(2.0 / (n_items + dim)))

    def logits(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``⟨e^p_u, e^p_j⟩``: ``users [B]``, ``items [B, N]`` -> ``[B, N]`` (one ``[B, n_items]`` product
        and a gather when ``N`` is a sizeable share of the catalogue, as :meth:`MF.score_pairs`)."""
        u = F.embedding(users, self.user)
        if items.shape[1] * MF.DENSE_PAIRS >= self.item.shape[0]:
            return (u @ self.item.T).gather(1, items)
        return (u[:, None, :] * F.embedding(items, self.item)).sum(-1)

    def penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``½(‖e^p_u‖² + Σ_j ‖e^p_j‖²)`` over the batch's rows (the adversary's L2, before ``/B``)."""
        return half_sq_norm(F.embedding(users, self.user), F.embedding(items, self.item))


class AdversarialPairObjective(SampledPairObjective):
    """AdvInfoNCE on the engine (module docstring): sampled pairs, a hardness adversary, two phases.

    ``batches(epoch)`` yields ``("adv", idx)`` batches first on an adversarial epoch, then
    ``("main", idx)``; :meth:`optimizer_groups` gives the engine the two optimizers with their
    ``active`` schedules. The hardness tables are this objective's state (``state_dict``), so a
    resumed run continues the adversary exactly.
    """

    def __init__(self, train: sp.csr_matrix, sampler: NegativeSampler, loss: AdvInfoNCELoss, batch_size: int,
                 rng: np.random.Generator, *, hardness: Hardness, epochs: int, adv_interval: int, adv_passes: int,
                 adv_lr: float, adv_reg: float, embedding_reg: float = 0.0):
        super().__init__(train, sampler, loss, batch_size, rng, embedding_reg=embedding_reg)
        self.hardness = hardness
        self.adv_epochs = set(adversarial_epochs(epochs, adv_interval, adv_passes))
        self.adv_lr, self.adv_reg = float(adv_lr), float(adv_reg)
        self.n_batches = max(1, -(-self.users.size // self.batch_size))

    def adversarial_steps(self, epoch: int) -> int:
        """How many of ``epoch``'s first steps are adversarial (0 on an ordinary epoch)."""
        return self.n_batches if epoch in self.adv_epochs else 0

    def batches(self, epoch: int) -> Iterator[tuple[str, np.ndarray]]:
        ids = np.arange(self.users.size)
        if epoch in self.adv_epochs:
            yield from (("adv", b) for b in _epoch_batches(ids, self.batch_size, self.rng))
        yield from (("main", b) for b in _epoch_batches(ids, self.batch_size, self.rng))

    def optimizer_groups(self, model_spec: OptimizerSpec) -> dict[str, OptimizerSpec]:
        """``model`` (steps on recommender steps) and ``hardness`` (Adam at ``adv_lr``, maximising, adversarial steps)."""
        def model_active(epoch: int, step: int) -> bool:
            return step >= self.adversarial_steps(epoch)

        def hardness_active(epoch: int, step: int) -> bool:
            return step < self.adversarial_steps(epoch)

        model_spec.active = model_active
        return {"model": model_spec,
                "hardness": OptimizerSpec(self.hardness.parameters(), "adam", self.adv_lr, maximize=True,
                                          active=hardness_active)}

    def loss(self, model: nn.Module, batch: tuple[str, np.ndarray]) -> tuple[torch.Tensor, dict[str, float]]:
        phase, idx = batch
        users, pos = self.users[idx], self.items[idx]
        neg = self.sampler.sample(users, pos, None)
        u_t = torch.from_numpy(users)
        items = torch.from_numpy(np.concatenate([pos[:, None], neg], axis=1))
        adversarial = phase == "adv"
        with torch.set_grad_enabled(not adversarial):
            s = model.score_pairs(u_t, items)
        with torch.set_grad_enabled(adversarial):
            logits = self.hardness.logits(u_t, items[:, 1:])
        value = self.loss_fn(s[:, 0], s[:, 1:], logits)
        if adversarial:
            total = value - self.adv_reg * self.hardness.penalty(u_t, items[:, 1:]) / float(users.size)
        else:
            total = value + self.batch_l2(model, u_t, items)
        with torch.no_grad():
            kl = float(kl_to_uniform(logits).mean())
        return total, {"contrastive": float(value.detach()), "kl": kl, "adv_share": float(adversarial)}

    def state_dict(self) -> dict[str, Any]:
        return {"hardness": {k: v.detach().clone() for k, v in self.hardness.state_dict().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.hardness.load_state_dict(state["hardness"])
