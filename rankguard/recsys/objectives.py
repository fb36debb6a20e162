"""Collaborative-ranking objectives for the training engine, and the loss registry behind ``--loss``.

A loss names a pair surrogate ``ℓ(t)`` of the score gap ``t = s(u, i⁺) − s(u, j)``; the sampler
(``--sampler``) names which ``(i⁺, j)`` pairs it runs over:

* a negative sampler (``unis``, ``pops``, ``2sts``, ``hars``): :class:`SampledPairObjective` —
  batches of training pairs ``(u, i⁺)``, each once per epoch, negatives ``j`` from the sampler;
* ``all``: :class:`AllPairsObjective` — batches of users, the loss over **every** (positive,
  unobserved) pair of each user, exactly, through the all-pairs engine (the SFCML objective).

| ``--loss`` | ``ℓ`` | sampled negatives | all pairs |
|---|---|---|---|
| ``hinge`` | ``max(0, λ − t)`` (CML triplet hinge) | yes | yes |
| ``bpr`` | ``−log σ(t)`` (BPR) | yes | no (not a surrogate of the exact engine) |
| ``squared`` | ``(λ − t)²`` (SFCML) | no | yes |
| ``squared_hinge`` | ``max(0, λ − t)²`` | no | yes |

``squared`` and ``squared_hinge`` run over all pairs: given with ``--loss`` and no ``--sampler``
they imply ``--sampler all``. The formulas live in :mod:`rankguard.functional.cml`; the losses
are the Modules of :mod:`rankguard.losses`.

A model with a ``regularizer(users) -> scalar`` method (DPCML's diversity term) has it added to
either objective's loss for the batch's users, and logged as ``reg`` (:func:`scores_and_regularizer`).
With ``--model dpcml`` the sampled objectives score by the nearest user vector, so HarS keeps the
candidate closest to *any* of the user's vectors, and ``--sampler all`` (``--loss squared``) is the
sampling-free all-pairs loss over those nearest-vector scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from rankguard.losses import AdvInfoNCELoss, BPRLoss, CMLLoss, InfoNCELoss, SFCMLLoss
from rankguard.registry import Registry
from rankguard.samplers import SAMPLERS, NegativeSampler

#: the ``--sampler`` value meaning "no sampling: every (positive, unobserved) pair"
ALL_PAIRS = "all"


@dataclass(frozen=True)
class PairLoss:
    """A registered ``--loss``: how it runs on sampled negatives and/or over all pairs.

    ``sampled(options) -> Module(pos [B], neg [B, S], embeddings) -> scalar`` or ``None``, where
    ``options`` holds ``margin``, ``cov_weight``, ``temperature``, ``k_neg``; ``all_pairs`` = the exact
    engine's surrogate name, or ``None``; ``default_sampler`` is what ``--loss NAME`` without
    ``--sampler`` implies (``None``: the recipe's sampler); ``defaults`` are the config values
    ``--loss NAME`` implies over the recipe's (flags still override them), with ``source``;
    ``adversarial`` losses train a hardness adversary (:mod:`rankguard.recsys.contrastive`).
    """

    name: str
    formula: str
    sampled: Any = None
    all_pairs: str | None = None
    default_sampler: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    adversarial: bool = False

    def supports(self, sampler: str) -> bool:
        return self.all_pairs is not None if sampler == ALL_PAIRS else self.sampled is not None


#: what --loss infonce / advinfonce imply: LehengTHU/AdvInfoNCE @e7c0416, its Coat script (τ 0.75, lr 1e-3,
#: batch 1024, 64 negatives) and parse.py (Adam, regs 1e-5, embed_size 64), cosine scores (train_norm/pred_norm)
CONTRASTIVE_DEFAULTS: dict[str, Any] = dict(n_negatives=64, temperature=0.75, similarity="cosine", optimizer="adam",
                                            lr=1e-3, weight_decay=0.0, batch_size=1024, embedding_reg=1e-5, dim=64,
                                            epochs=2000, eval_every=5, patience=10)
_CONTRASTIVE_SOURCE = ("LehengTHU/AdvInfoNCE @e7c0416: Coat script (tau 0.75, lr 1e-3, batch 1024, 64 negatives, "
                       "adv_lr 1e-2, eta_epochs 20, adv_interval 15), parse.py (Adam, regs 1e-5, embed_size 64, "
                       "w_embed_size 64, k_neg 64, 2000 epochs, validation every 5, patience 10), cosine scores")

LOSSES: Registry[PairLoss] = Registry("loss")
LOSSES.register("hinge", PairLoss("hinge", "max(0, λ − t)", sampled=lambda o: CMLLoss(o["margin"], o["cov_weight"]),
                                  all_pairs="hinge"))
LOSSES.register("bpr", PairLoss("bpr", "−log σ(t)", sampled=lambda o: BPRLoss()))
LOSSES.register("squared", PairLoss("squared", "(λ − t)²", all_pairs="squared", default_sampler=ALL_PAIRS))
LOSSES.register("squared_hinge", PairLoss("squared_hinge", "max(0, λ − t)²", all_pairs="squared_hinge",
                                          default_sampler=ALL_PAIRS))
LOSSES.register("infonce", PairLoss("infonce", "−log e^{s⁺/τ} / (e^{s⁺/τ} + Σ_j e^{s_j/τ})",
                                    sampled=lambda o: InfoNCELoss(o["temperature"]),
                                    defaults=CONTRASTIVE_DEFAULTS, source=_CONTRASTIVE_SOURCE))
LOSSES.register("advinfonce", PairLoss("advinfonce", "−log e^{s⁺/τ} / (e^{s⁺/τ} + k·N·Σ_j p_j e^{s_j/τ})",
                                       sampled=lambda o: AdvInfoNCELoss(o["temperature"], o["k_neg"]),
                                       defaults=CONTRASTIVE_DEFAULTS, source=_CONTRASTIVE_SOURCE, adversarial=True))


def sampler_names() -> list[str]:
    """Everything ``--sampler`` accepts: the registered samplers and ``all``."""
    return [ALL_PAIRS, *SAMPLERS.names()]


def check_loss_sampler(loss: str, sampler: str) -> None:
    """Raise a one-line error when ``loss`` cannot run on ``sampler`` (names the flags)."""
    spec = LOSSES.get(loss)
    if sampler != ALL_PAIRS and sampler not in SAMPLERS:
        raise KeyError(f"unknown sampler {sampler!r}; known: {', '.join(sampler_names())}")
    if not spec.supports(sampler):
        if sampler == ALL_PAIRS:
            raise ValueError(f"--loss {loss} runs on sampled negatives only; pass --sampler "
                             f"{{{','.join(SAMPLERS.names())}}}")
        raise ValueError(f"--loss {loss} runs over all pairs only (--sampler all), not on --sampler {sampler}")


def _epoch_batches(ids: np.ndarray, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    order = ids[rng.permutation(ids.size)]
    return iter(np.array_split(order, max(1, -(-order.size // batch_size))))


def candidate_scores(model: nn.Module):
    """``(users [B], items [B, C]) -> scores [B, C]`` without gradient, for samplers that pick by score.

    Gathered item rows for few candidates (HarS, C = 10); one ``[B, n_items]`` matmul and a gather
    when ``C`` is a sizeable share of the catalogue (the "hardest" 2stS variant, C = 300). Carries
    ``item_embeddings(items)`` for 2stS's spread-out stage two (weights by ⟨v_i⁺, v_j⟩).
    """
    def fn(users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            if items.shape[1] * 8 < model.n_items:
                return model.score_pairs(users, items)
            return model.score(users).gather(1, items)

    def item_embeddings(items: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.item_rows(items)
    fn.item_embeddings = item_embeddings  # type: ignore[attr-defined]
    return fn


def scores_and_regularizer(model: nn.Module, users: torch.Tensor, items: torch.Tensor | None = None
                           ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(scores, reg)``: ``model.score_pairs(users, items)`` (``model.score(users)`` when ``items`` is
    ``None``) and ``model.regularizer(users)``, or ``None`` for a model without a regulariser.

    Models opt in to a regulariser (DPCML's diversity term) by defining ``regularizer(users) -> Tensor``;
    a model whose scores and regulariser read the same rows may also define
    ``scores_with_regularizer(users, items)`` returning both from one lookup (DPCML: the second
    lookup's dense gradient of the ``[n_users, C·d]`` table was ~20 % of a step). The objectives need
    no model-specific code.
    """
    fused = getattr(model, "scores_with_regularizer", None)
    if fused is not None:
        return fused(users, items)
    scores = model.score(users) if items is None else model.score_pairs(users, items)
    regularizer = getattr(model, "regularizer", None)
    return scores, (None if regularizer is None else regularizer(users))


def with_regularizer(loss: torch.Tensor, reg: torch.Tensor | None
                     ) -> torch.Tensor | tuple[torch.Tensor, dict[str, float]]:
    """``loss + reg`` and ``{"reg": value}`` (logged); ``loss`` unchanged when ``reg`` is ``None``."""
    if reg is None:
        return loss
    return loss + reg, {"reg": float(reg.detach())}


def half_sq_norm(*rows: torch.Tensor) -> torch.Tensor:
    """``½ Σ ‖rows‖²_F`` over the given row tensors.

    >>> float(half_sq_norm(torch.ones(2, 2), torch.ones(1, 3)))
    3.5
    """
    return 0.5 * sum((r * r).sum() for r in rows)


def counted_half_sq_norm(model: nn.Module, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """``½(Σ_b ‖u⁰_b‖² + Σ_{b,k} ‖v⁰_{items[b,k]}‖²)`` over the free tables ``model.user``/``model.item``,
    as ``½ Σ_r count_r ‖row_r‖²`` with each row's count in the batch: the value and gradient of
    :func:`half_sq_norm` on the gathered rows without gathering ``[B, K, d]`` (whose backward was
    the slowest part of a 64-negative step).

    >>> class M: user, item = torch.ones(2, 2), torch.ones(3, 1)
    >>> float(counted_half_sq_norm(M, torch.tensor([0, 0]), torch.tensor([[1, 2], [1, 1]])))
    4.0
    """
    def part(table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        counts = torch.bincount(ids.reshape(-1), minlength=table.shape[0]).to(table.dtype)
        return (counts * (table * table).sum(1)).sum()
    return 0.5 * (part(model.user, users) + part(model.item, items))


class SampledPairObjective:
    """Batches of training pairs ``(u, i⁺)`` (each once per epoch, or ``pair_repeats`` times), negatives
    from ``sampler``.

    ``pair_repeats = S`` with one negative per pair is the DPCML/LibCML code's uniform sampling, where
    each of a pair's ``S`` negatives is its own dataset row (a triplet) and a batch holds
    ``batch_size`` triplets: ``S`` times the steps per epoch of ``S`` negatives per pair.

    The loss Module gets ``(s⁺ [B], s⁻ [B, S], embeddings)``; ``embeddings`` = the batch's user and
    item rows, for CML's covariance regulariser (``cov_weight``). ``embedding_reg`` > 0 adds the
    LightGCN-style batch L2 ``embedding_reg · ½(‖u⁰‖² + ‖i⁺⁰‖² + Σ_s ‖j_s⁰‖²)/B`` on the free
    (layer-0) rows of the batch (He et al. 2020; the AdvInfoNCE code's ``regs``).
    """

    def __init__(self, train: sp.csr_matrix, sampler: NegativeSampler, loss: nn.Module, batch_size: int,
                 rng: np.random.Generator, embedding_reg: float = 0.0, pair_repeats: int = 1):
        coo = sp.coo_matrix(train)
        self.users = coo.row.astype(np.int64)
        self.items = coo.col.astype(np.int64)
        self.sampler, self.loss_fn, self.batch_size, self.rng = sampler, loss, int(batch_size), rng
        self.embedding_reg = float(embedding_reg)
        if isinstance(pair_repeats, bool) or not isinstance(pair_repeats, (int, np.integer)) or pair_repeats < 1:
            raise ValueError(f"`pair_repeats` must be an integer >= 1, got {pair_repeats!r}")
        self.pair_repeats = int(pair_repeats)

    def batch_l2(self, model: nn.Module, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor | float:
        """The ``embedding_reg`` term for a batch (``0.0`` when off): users ``[B]``, items ``[B, 1 + S]``."""
        if not self.embedding_reg:
            return 0.0
        return self.embedding_reg * counted_half_sq_norm(model, users, items) / users.shape[0]

    def batches(self, epoch: int) -> Iterator[np.ndarray]:
        """Each training pair ``pair_repeats`` times per epoch (each time with fresh negatives), shuffled."""
        return _epoch_batches(np.tile(np.arange(self.users.size), self.pair_repeats), self.batch_size, self.rng)

    def loss(self, model: nn.Module, batch: np.ndarray) -> torch.Tensor | tuple[torch.Tensor, dict[str, float]]:
        users, pos = self.users[batch], self.items[batch]
        neg = self.sampler.sample(users, pos, candidate_scores(model) if self.sampler.needs_scores else None)
        u_t = torch.from_numpy(users)
        items = torch.from_numpy(np.concatenate([pos[:, None], neg], axis=1))
        s, reg = scores_and_regularizer(model, u_t, items)
        embeddings = None
        if getattr(self.loss_fn, "cov_weight", 0.0):
            embeddings = torch.cat([model.user_rows(u_t), model.item_rows(items.flatten())])
        return with_regularizer(self.loss_fn(s[:, 0], s[:, 1:], embeddings) + self.batch_l2(model, u_t, items), reg)


class AllPairsObjective:
    """Batches of users (each user with ≥ 1 training positive once per epoch); per user the loss over
    ALL of its (positive, unobserved) pairs (:class:`rankguard.losses.SFCMLLoss`)."""

    def __init__(self, train: sp.csr_matrix, loss: nn.Module, batch_size: int, rng: np.random.Generator):
        self.train = sp.csr_matrix(train)
        self.active = np.flatnonzero(np.diff(self.train.indptr) > 0)
        self.loss_fn, self.batch_size, self.rng = loss, int(batch_size), rng

    def batches(self, epoch: int) -> Iterator[np.ndarray]:
        return _epoch_batches(self.active, self.batch_size, self.rng)

    def loss(self, model: nn.Module, batch: np.ndarray) -> torch.Tensor | tuple[torch.Tensor, dict[str, float]]:
        users = torch.from_numpy(batch)
        scores, reg = scores_and_regularizer(model, users)
        pos_mask = torch.from_numpy(self.train[batch].toarray() > 0)
        return with_regularizer(self.loss_fn(scores, pos_mask), reg)


def build_objective(loss: str, sampler: str, train: sp.csr_matrix, rng: np.random.Generator, *,
                    margin: float, batch_size: int, n_negatives: int, cov_weight: float = 0.0,
                    sampler_options: dict[str, Any] | None = None, temperature: float = 0.75, k_neg: float = 64.0,
                    embedding_reg: float = 0.0, adversary: dict[str, Any] | None = None, pair_repeats: int = 1
                    ) -> tuple[SampledPairObjective | AllPairsObjective, NegativeSampler | None]:
    """The objective for ``--loss loss --sampler sampler`` (and its sampler; ``None`` for ``all``).

    An adversarial loss (``advinfonce``) needs ``adversary`` = the keyword arguments of
    :class:`~rankguard.recsys.contrastive.AdversarialPairObjective` beyond the shared ones
    (``epochs``, ``adv_interval``, ``adv_passes``, ``adv_lr``, ``adv_reg``) plus ``adv_dim`` and the
    torch ``generator`` that draws the hardness tables.
    """
    check_loss_sampler(loss, sampler)
    spec = LOSSES.get(loss)
    if pair_repeats != 1 and (sampler == ALL_PAIRS or spec.adversarial):
        raise ValueError(f"--pair-repeats repeats sampled (user, positive) pairs; it does not apply to "
                         f"{'--sampler all' if sampler == ALL_PAIRS else f'--loss {loss}'}")
    if sampler == ALL_PAIRS:
        return AllPairsObjective(train, SFCMLLoss(margin, spec.all_pairs), batch_size, rng), None
    neg_sampler = SAMPLERS.get(sampler).from_count(train, rng, n_negatives, **(sampler_options or {}))
    loss_fn = spec.sampled(dict(margin=margin, cov_weight=cov_weight, temperature=temperature, k_neg=k_neg))
    if spec.adversarial:
        from rankguard.recsys.contrastive import AdversarialPairObjective, Hardness

        if adversary is None:
            raise ValueError(f"--loss {loss} trains a hardness adversary: its settings (adversary=...) are missing")
        if neg_sampler.needs_scores:
            raise ValueError(f"--loss {loss} samples uniform negatives (the hardness model weighs them); "
                             f"--sampler {sampler} picks by score: use --sampler unis")
        adv = dict(adversary)
        hardness = Hardness(*train.shape, dim=int(adv.pop("adv_dim")), generator=adv.pop("generator", None))
        return AdversarialPairObjective(train, neg_sampler, loss_fn, batch_size, rng, hardness=hardness,
                                        embedding_reg=embedding_reg, **adv), neg_sampler
    return (SampledPairObjective(train, neg_sampler, loss_fn, batch_size, rng, embedding_reg=embedding_reg,
                                 pair_repeats=pair_repeats), neg_sampler)
