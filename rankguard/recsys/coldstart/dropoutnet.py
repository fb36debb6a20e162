"""DropoutNet (Volkovs, Yu & Poutanen, NeurIPS 2017) over a MF / CML / DPCML backbone.

Two towers map ``[preference embedding, side features]`` to the backbone's embedding space::

    U'_u = Φ_U(u)·m_u + σ_U · f_U([Φ_U(u)·m_u / σ_U, x_u])      (V'_v alike)

with ``Φ`` the backbone's rows (for DPCML the user's ``C`` vectors ``g_u^1..g_u^C`` flattened: the
user tower maps *each user vector*, ``[C·d] -> [C·d]``, and the nearest-vector rule scores the
mapped vectors), ``x`` the side features and ``m ∈ {0, 1}`` the input dropout: during training
every user and every item of a batch has its preference input zeroed with probability ``p``
independently, so the towers learn to score from features alone. Two choices of ours beside the
paper's ``f([Φ·m, x])``: the preference input is scaled by ``σ``, the root mean square of the
backbone's rows (the authors' code standardises its preference inputs: CML's rows lie in the unit
ball, ~0.1 a coordinate, beside 0/1 features), and the output adds the preference input back (a
skip connection), so a warm row starts at its backbone row and the tower learns a correction; at
cold start (``m = 0``) the row is ``σ·f([0, x])``, the paper's form. On ML-100K (CML, 50 epochs,
seed 0, 30 DropoutNet epochs, selected on warm and cold validation) warm test P@3 was 17.86 with the paper's form, 19.11 with the
scaling alone, 17.43 with the skip alone, 21.22 with both, against the backbone's own 22.17 (cold
item AUC 82.6 / 82.1 / 81.7 / 83.9). The objective reproduces the backbone's scores (the paper's
eq. 2, squared error on score pairs)::

    L = mean_{u ∈ batch, v ∈ K} ( s(Φ_U(u), Φ_V(v)) − s(U'_u, V'_v) )²

where ``s`` is the backbone's own score (inner product, −‖u − v‖², 2⟨u, v⟩, nearest vector) and ``K``
a shared set of items per step: half drawn from the batch's training positives (so the high-score
region is fitted), half uniform over warm items. At cold start the missing preference is zero.

For DPCML the loss adds, for the users whose preference input was kept, the same squared error on
every active vector's own score, ``mean_{u kept, c active, v} (s_c(g_u^c, Φ_V(v)) − s_c(g'_u^c, V'_v))²``.
The nearest-vector score alone passes gradient to the winning vector only, so the other mapped
vectors drift, win items they should not, and the towers settle far from the backbone: without
dropout and features, 300 steps of a 128-unit tower (the paper's form, no skip) reproduced DPCML's
scores only to a relative RMSE of 0.32-0.39 (0.02 with the per-vector term; with the skip 0.03
without the term and 0.006 with it; ``tests/test_coldstart.py``). Users whose preference
was dropped keep the nearest-vector term only: from features alone no vector order is knowable.

Defaults and sources (:class:`DropoutNetSettings`):

* ``dropout = 0.5``: the paper's rate (its §4 experiments fix the dropout rate at 0.5, its
  Figure 2 sweeps it; the authors' code, layer6ai-labs/DropoutNet @39e950e ``torch/main.py``,
  defaults ``--dropout 0.5``); ``hidden = (800, 400)`` tanh layers: the paper's CiteULike
  architecture (the code's ``--model-select 800 400``), the paper's linear output layer;
* our choices: Adam, lr 1e-3 (the code: SGD with momentum 0.9, lr 0.005, decayed 10x every 50
  user batches, batch norm in each tanh block), 64 users per step, ``K = 256`` items per step,
  30 epochs; selection on the cold-validation metric every epoch.

The engine trains it: :class:`DropoutNetObjective` (pre-training: the backbone frozen, only the
towers learn) and :class:`JointObjective` (the backbone's own objective plus the reproduction
loss against the current, detached backbone scores) follow :class:`rankguard.training.Objective`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Iterator

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from rankguard.functional.dpcml import multi_vector_scores, per_vector_scores
from rankguard.recsys.models import EmbeddingModel
from rankguard.training import seeded


#: what the towers read: "both" (preference + side features, DropoutNet), "preference" (no side
#: features: the reproduction check), "features" (preference input always zero: the features-only baseline)
INPUTS = ("both", "preference", "features")


@dataclass
class DropoutNetSettings:
    """DropoutNet hyper-parameters (module docstring: which come from the paper).

    A run stores them in its :class:`~rankguard.recsys.recipes.TrainConfig` as the ``dn_*`` fields
    (``--dn-epochs`` …), so ``config.json`` alone replays a cold-start run; :meth:`from_config`
    reads them back.

    >>> DropoutNetSettings(inputs="features").features_only, DropoutNetSettings().hidden
    (True, (800, 400))
    """

    dropout: float = 0.5
    hidden: tuple[int, ...] = (800, 400)
    epochs: int = 30
    lr: float = 1e-3
    users_per_step: int = 64
    items_per_step: int = 256
    joint_weight: float = 1.0
    inputs: str = "both"

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.dropout) <= 1.0:
            raise ValueError(f"`dropout` must be in [0, 1], got {self.dropout!r}")
        self.hidden = check_hidden(self.hidden)
        for name in ("epochs", "users_per_step", "items_per_step"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)!r}")
        if self.inputs not in INPUTS:
            raise ValueError(f"`inputs` must be one of {', '.join(INPUTS)}, got {self.inputs!r}")

    @property
    def use_features(self) -> bool:
        return self.inputs != "preference"

    @property
    def features_only(self) -> bool:
        return self.inputs == "features"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_config(cls, config: Any) -> "DropoutNetSettings":
        """The settings a :class:`~rankguard.recsys.recipes.TrainConfig` holds (its ``dn_*`` fields)."""
        return cls(**{f.name: getattr(config, CONFIG_PREFIX + f.name) for f in fields(cls)})

    def config_fields(self) -> dict[str, Any]:
        """``{"dn_epochs": …, …}``: these settings as ``TrainConfig`` overrides (``make_config(**…)``)."""
        return {CONFIG_PREFIX + k: v for k, v in self.to_dict().items()}


#: TrainConfig field = CONFIG_PREFIX + DropoutNetSettings field (``dn_epochs`` …)
CONFIG_PREFIX = "dn_"


def check_hidden(hidden: Any, flag: str = "`hidden`") -> tuple[int, ...]:
    """Tower hidden sizes as a tuple of integers >= 1 (``()`` = a linear tower); else one error naming ``flag``.

    >>> check_hidden([800, 400]), check_hidden(())
    ((800, 400), ())
    """
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, (list, tuple)) or not all(
            isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden):
        raise ValueError(f"{flag} must be a list of layer sizes (integers >= 1, e.g. 800,400), got {hidden!r}")
    return tuple(hidden)


def parse_hidden(text: str) -> tuple[int, ...]:
    """``--dn-hidden`` text: comma-separated sizes (``800,400``); ``none`` = a linear tower.

    >>> parse_hidden("800,400"), parse_hidden("none")
    ((800, 400), ())
    """
    import argparse

    if text.strip().lower() == "none":
        return ()
    try:
        return check_hidden([int(p) for p in text.split(",")], "--dn-hidden")
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated layer sizes >= 1 (e.g. 800,400) or none, "
                                         f"got {text!r}") from None


#: the defaults, for TrainConfig's ``dn_*`` fields (one place holds them: the dataclass above)
DEFAULTS = DropoutNetSettings()


def _mlp(n_in: int, hidden: tuple[int, ...], n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(n_in, h), nn.Tanh()]
        n_in = h
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class _FullScore(nn.Module):
    """``forward(users) = base.score(users)``: lets ``functional_call`` swap the backbone's tables."""

    def __init__(self, base: EmbeddingModel):
        super().__init__()
        self.base = base

    def forward(self, users: torch.Tensor) -> torch.Tensor:
        return self.base.score(users)


class DropoutNet(nn.Module):
    """The two towers over ``base`` (an :class:`EmbeddingModel`; kept as a sub-module).

    ``user_features [n_users, f_u]`` / ``item_features [n_items, f_i]`` (``None``: no features).
    ``features_only=True`` never feeds the preference part (the features-only baseline).

    >>> from rankguard.recsys.models import MF
    >>> g = torch.Generator().manual_seed(0); base = MF(5, 7, dim=4, generator=g)
    >>> dn = DropoutNet(base, None, torch.ones(7, 2), hidden=(8,), generator=g)
    >>> u, v = dn.tables(cold_items=torch.tensor([False] * 6 + [True])); dn.score_rows(u[:2], v).shape
    torch.Size([2, 7])
    """

    def __init__(self, base: EmbeddingModel, user_features: torch.Tensor | None, item_features: torch.Tensor | None,
                 hidden: tuple[int, ...] = (800, 400), features_only: bool = False,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.base = base
        object.__setattr__(self, "_scorer", _FullScore(base))   # not a sub-module: no duplicate state
        self.multi = hasattr(base, "user_vectors")          # DPCML: C vectors per user
        self.features_only = bool(features_only)
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        user_dim = base.dim * base.vectors if self.multi else base.user.shape[1]
        for side, feats, n in (("user", user_features, base.n_users), ("item", item_features, base.n_items)):
            f = torch.zeros(n, 0) if feats is None else torch.as_tensor(feats, dtype=torch.float32)
            if f.shape[0] != n:
                raise ValueError(f"`{side}_features` must have {n} rows (one per {side}), got {tuple(f.shape)}")
            self.register_buffer(f"{side}_features", f)
        self.user_tower = seeded(lambda: _mlp(user_dim + self.user_features.shape[1], hidden, user_dim), g)
        self.item_tower = seeded(lambda: _mlp(base.dim + self.item_features.shape[1], hidden, base.dim), g)

    # ------------------------------------------------------------------ backbone rows and scores
    def preference(self, side: str, ids: torch.Tensor) -> torch.Tensor:
        """The backbone's rows: users ``[B] -> [B, C·d]`` (DPCML) or ``[B, d]``; items ``[K] -> [K, d]``."""
        if side == "item":
            return self.base.item_rows(ids)
        return self.base.user_vectors(ids).flatten(1) if self.multi else self.base.user_rows(ids)

    def score_rows(self, user_rows: torch.Tensor, item_rows: torch.Tensor,
                   users: torch.Tensor | None = None) -> torch.Tensor:
        """The backbone's score of every (user row, item row): ``[B, du], [K, d] -> [B, K]``.

        For DPCML ``users`` (the rows' ids) picks each user's active vectors (all when ``None``).
        """
        if self.multi:
            vecs = user_rows.view(user_rows.shape[0], self.base.vectors, self.base.dim)
            active = self.base.active(users) if users is not None else None
            return multi_vector_scores(vecs, item_rows, active, self.base.metric)
        # the backbone's own full-ranking score, with its tables swapped for these rows
        ids = torch.arange(user_rows.shape[0])
        return torch.func.functional_call(self._scorer, {"base.user": user_rows, "base.item": item_rows}, (ids,))

    def vector_scores(self, user_rows: torch.Tensor, item_rows: torch.Tensor) -> torch.Tensor:
        """DPCML: the score of each user vector, ``[B, C·d], [K, d] -> [B, C, K]`` (inactive ones included)."""
        vecs = user_rows.view(user_rows.shape[0], self.base.vectors, self.base.dim)
        return per_vector_scores(vecs, item_rows, self.base.metric)

    def base_scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Backbone scores ``[B], [K] -> [B, K]`` (the reproduction target)."""
        return self.score_rows(self.preference("user", users), self.preference("item", items), users)

    # ------------------------------------------------------------------ towers
    def input_scale(self, side: str) -> torch.Tensor:
        """``σ``: the root mean square of the backbone's ``side`` rows (all of them, detached), a scalar."""
        with torch.no_grad():
            n = self.base.n_users if side == "user" else self.base.n_items
            rows = self.preference(side, torch.arange(n))
            return rows.pow(2).mean().sqrt().clamp(min=torch.finfo(rows.dtype).tiny)

    def transform(self, side: str, ids: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Mapped rows ``Φ·m + σ·f([Φ·m / σ, x])`` for ``ids`` (module docstring); ``keep [len(ids)]`` bool:
        False zeroes the preference input (``m = 0``)."""
        pref = self.preference(side, ids)
        if self.features_only:
            pref = torch.zeros_like(pref)
        elif keep is not None:
            pref = pref * keep.to(pref.dtype)[:, None]
        feats = (self.user_features if side == "user" else self.item_features)[ids]
        tower = self.user_tower if side == "user" else self.item_tower
        scale = self.input_scale(side)
        return pref + scale * tower(torch.cat([pref / scale, feats], dim=1))

    def tables(self, cold_users: torch.Tensor | None = None, cold_items: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mapped rows of every user and item; cold ones (bool masks) from features alone."""
        users, items = torch.arange(self.base.n_users), torch.arange(self.base.n_items)
        keep_u = None if cold_users is None else ~torch.as_tensor(cold_users, dtype=torch.bool)
        keep_i = None if cold_items is None else ~torch.as_tensor(cold_items, dtype=torch.bool)
        return self.transform("user", users, keep_u), self.transform("item", items, keep_i)

    def score_fn(self, cold_users: torch.Tensor | None = None, cold_items: torch.Tensor | None = None):
        """``users [B] -> [B, n_items]`` for the Evaluator (tables computed once, without gradient)."""
        with torch.no_grad():
            u, v = self.tables(cold_users, cold_items)

        def fn(users: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return self.score_rows(u[users], v, users)
        return fn

    @torch.no_grad()
    def constrain_(self) -> None:
        """The backbone's norm constraint (joint training steps the backbone too)."""
        self.base.constrain_()


class DropoutNetObjective:
    """Pre-training: reproduce the (frozen) backbone's scores with input dropout (module docstring).

    Users of a step: warm users (``warm_users`` bool mask, >= 1 training positive) in a seeded
    permutation; items: half drawn from the step's training positives, half uniform over
    ``warm_items``. Cold entities are never drawn (they have no training positive and are masked).
    """

    def __init__(self, train: sp.csr_matrix, warm_users: np.ndarray, warm_items: np.ndarray,
                 settings: DropoutNetSettings, rng: np.random.Generator):
        self.train = sp.csr_matrix(train)
        self.users = np.flatnonzero(warm_users)
        self.items = np.flatnonzero(warm_items)
        self.s, self.rng = settings, rng

    def batches(self, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        order = self.rng.permutation(self.users)
        k = self.s.items_per_step
        for start in range(0, order.size, self.s.users_per_step):
            users = order[start:start + self.s.users_per_step]
            positives = self.train[users].indices
            positives = positives[np.isin(positives, self.items)]
            drawn = self.rng.choice(positives, k // 2) if positives.size else self.rng.choice(self.items, k // 2)
            items = np.unique(np.concatenate([drawn, self.rng.choice(self.items, k - k // 2)]))
            p = self.s.dropout
            yield {"users": torch.from_numpy(users).long(), "items": torch.from_numpy(items).long(),
                   "keep_users": torch.from_numpy(self.rng.random(users.size) >= p),
                   "keep_items": torch.from_numpy(self.rng.random(items.size) >= p)}

    def reproduction_loss(self, model: DropoutNet, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The squared score error (module docstring); DPCML adds the per-vector term of kept users."""
        users, items, keep = batch["users"], batch["items"], batch["keep_users"]
        with torch.no_grad():
            user_rows, item_rows = model.preference("user", users), model.preference("item", items)
            target = model.score_rows(user_rows, item_rows, users)
        mapped_users = model.transform("user", users, keep)
        mapped_items = model.transform("item", items, batch["keep_items"])
        loss = ((model.score_rows(mapped_users, mapped_items, users) - target) ** 2).mean()
        if model.multi and bool(keep.any()):
            with torch.no_grad():
                target_c = model.vector_scores(user_rows[keep], item_rows)
            active = model.base.active(users[keep])
            pred_c = model.vector_scores(mapped_users[keep], mapped_items)
            loss = loss + ((pred_c - target_c) ** 2)[active].mean()
        return loss

    def loss(self, model: DropoutNet, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.reproduction_loss(model, batch)


class JointObjective:
    """Joint training: the backbone's objective + ``weight ·`` the reproduction loss.

    Each epoch is one epoch of the backbone's batches and one epoch of DropoutNet's, its steps spread
    evenly over the backbone's (DropoutNet batch ``j`` of ``m`` joins backbone batch ``⌊j·n/m⌋`` of
    ``n``; batches without one carry the backbone's loss only), so a joint epoch costs about a pre-training
    epoch of each. The reproduction target is the backbone's current score, detached; the towers'
    preference input is not, so the reproduction loss also reaches the backbone's rows (joint,
    end-to-end training), while the backbone's own loss anchors them.
    """

    def __init__(self, base_objective: Any, dn_objective: DropoutNetObjective, weight: float = 1.0):
        self.base_objective, self.dn, self.weight = base_objective, dn_objective, float(weight)
        self._log_scale = 1.0

    def batches(self, epoch: int) -> Iterator[tuple[Any, list[dict[str, torch.Tensor]]]]:
        base = list(self.base_objective.batches(epoch))   # index arrays: negatives are drawn in loss()
        joined: list[list[dict[str, torch.Tensor]]] = [[] for _ in base]
        for j, batch in enumerate(dn := list(self.dn.batches(epoch))):
            joined[j * len(base) // len(dn)].append(batch)
        self._log_scale = len(base) / max(len(dn), 1)   # the engine averages logs over backbone steps
        yield from zip(base, joined)

    def loss(self, model: DropoutNet, batch: tuple[Any, list[dict[str, torch.Tensor]]]):
        out = self.base_objective.loss(model.base, batch[0])
        base_loss, logged = (out if isinstance(out, tuple) else (out, {}))
        logged = {**logged, "base_loss": float(base_loss.detach())}
        if not batch[1]:
            return base_loss, {**logged, "dn_loss": 0.0}
        dn_loss = sum(self.dn.reproduction_loss(model, b) for b in batch[1])
        # logged so that its epoch mean is the mean loss per DropoutNet batch
        return base_loss + self.weight * dn_loss, {**logged, "dn_loss": float(dn_loss.detach()) * self._log_scale}

    def on_epoch_end(self, model: DropoutNet, epoch: int) -> None:
        fn = getattr(self.base_objective, "on_epoch_end", None)
        if fn is not None:
            fn(model.base, epoch)

    def state_dict(self) -> dict[str, Any]:
        fn = getattr(self.base_objective, "state_dict", None)
        return fn() if fn is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        fn = getattr(self.base_objective, "load_state_dict", None)
        if fn is not None:
            fn(state)
