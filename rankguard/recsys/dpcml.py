"""DPCML backbone: several vectors per user, the nearest one scores (Bao et al., NeurIPS 2022).

User ``u`` has ``C`` vectors ``g_u^1 .. g_u^C`` (the first ``C_u`` active), item ``v`` one vector
``g_v``; ``d(u, v) = min_{c ≤ C_u} ‖g_u^c − g_v‖²`` and ``score = −d`` (the formulas and the
diversity regulariser are the pure functions of :mod:`rankguard.functional.dpcml`; this module only
adds parameters, the norm constraint and the vector-count rule).

Defaults and their sources (statusrank/DPCML @c686b3f ``model/model.py``, ``utils.py``, REFERENCES §4):

* init: user vectors N(0, 0.01²) (``nn.init.normal_(std=0.01)``), items N(0, (1/√d)²);
* ``constraint="user-sphere"`` (the authors'): every user vector projected to norm 1 after each
  step (``ClipUserNorm``, max_norm 1), item rows clipped to the unit ball
  (``nn.Embedding(max_norm=1)``). As every rankguard model, the projection also runs once after
  init (the authors' code skips it there, which only changes the first step);
* ``constraint="ball"`` clips users and items to the unit ball (CML's constraint) and
  ``"sphere"`` projects both to the unit sphere and scores ``max_c 2⟨g_u^c, g_v⟩`` (= 2 − d on
  the sphere; SFCML's score). Under ``ball``/``sphere`` the user init is the CML/SFCML one,
  N(0, (1/√d)²), so that ``C = 1`` reproduces :class:`~rankguard.recsys.models.CML` /
  :class:`~rankguard.recsys.models.SFCML` draw for draw (the user std is immaterial under
  ``user-sphere``: the first projection removes it);
* ``user_vectors="free"``: ``C`` free vectors per user, one ``[n_users, C·d]`` table (for ``C = 1``
  the same table as CML's). ``"projected"`` (improved DPCML, TPAMI 2024; code unreleased, our
  reading of the slides): ``e_u^c = P_cᵀ u`` from one user embedding ``u`` (``[n_users, d]``, init as
  above) and ``C`` matrices ``P_c`` (N(0, 1/d) entries, so ``‖P_cᵀu‖ ≈ ‖u‖``); the norm
  constraint then applies to the derived vectors in the forward pass (normalised to norm 1, or
  clipped to the ball), items as above;
* vector counts (``vector_counts``): ``C_u = C`` for every user (BPA), or per user from
  :func:`vector_counts` (``rule="log2"``, APA: ``C_u = min(C, max(1, ⌊log₂|I_u|⌋))`` with ``|I_u|``
  the user's training interactions — our reading of an unpublished rule, from the comment
  ``K' = min(K, max(log_2(|I|), 1))`` in the authors' ``model.py``). Vectors beyond ``C_u`` are
  masked: they never win the min and get no gradient;
* diversity: ``η = 10, δ₁ = 0.05, δ₂ = 0.25`` (the authors' ``shells/run.sh`` for DPCML2 on
  Steam-200k; all three in the paper's grid). Scale: the authors' code SUMS the hinge over a batch
  of 256 triplets and adds ``η ·`` the per-pair form averaged over the whole user table
  (``model.py``: ``.sum()`` in ``preference_loss``, ``.mean()`` in ``regularization_loss_barrier``),
  so against rankguard's mean-over-triplets loss the code's weight is ``η / 256`` in the ``pairs``
  form — ``diversity=(0.0390625, 0.05, 0.25), diversity_form="pairs"`` is the code's objective
  divided by the batch size (the same Adam steps up to its ε). The paper's form with ``η = 10`` on
  the mean loss, our default, weighs diversity far more, and validated better on ML-1M (DPCML2,
  seed 0, 20 epochs, validation P@3: 23.40 against 22.05 for the code's scale and 21.51 for the
  paper's form at ``η = 0.039``; ``results/tuning/dpcml2_ml-1m_diversity`` and ``dpcml2_ml-1m``).

Memory: ``score(users [B])`` holds ``B·C·n_items`` scores at once (the evaluator's user blocks;
1,024 users × 5 vectors × 3,706 ML-1M items ≈ 19 M floats); ``score_pairs`` holds ``B·C·K·d``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from rankguard.functional.dpcml import DIVERSITY_FORMS, diversity_penalty, multi_vector_scores
from rankguard.functional.dpcml import nearest_vector as _nearest_vector
from rankguard.recsys.models import MODELS, EmbeddingModel, _check_ids, _unit_rows_

CONSTRAINTS = ("user-sphere", "ball", "sphere")
VECTOR_RULES = ("fixed", "log2")
USER_VECTORS = ("free", "projected")
#: (η, δ₁, δ₂) of the authors' DPCML2 script (statusrank/DPCML shells/run.sh, HarCML on Steam-200k)
DEFAULT_DIVERSITY = (10.0, 0.05, 0.25)
#: the DPCML code's user-vector init std (model.py, ``nn.init.normal_(std=0.01)``)
DPCML_USER_INIT_STD = 0.01


def vector_counts(rule: str, vectors: int, interactions: Any) -> np.ndarray:
    """``C_u`` per user from the users' training interaction counts ``|I_u|`` (int64 ``[n_users]``).

    ``"fixed"`` (BPA): ``C_u = C``. ``"log2"`` (APA, our reading): ``C_u = min(C, max(1, ⌊log₂|I_u|⌋))``
    (``|I_u| = 0`` gives 1). ``interactions``: counts ``[n_users]`` or the training matrix.

    >>> vector_counts("log2", 5, [0, 1, 3, 4, 7, 8, 100]).tolist()
    [1, 1, 1, 2, 2, 3, 5]
    """
    if rule not in VECTOR_RULES:
        raise ValueError(f"`rule` must be one of {', '.join(VECTOR_RULES)}, got {rule!r}")
    if sp.issparse(interactions):
        n = np.diff(sp.csr_matrix(interactions).indptr)
    else:
        n = np.asarray(interactions)
    n = n.astype(np.int64)
    if n.ndim != 1 or (n.size and n.min() < 0):
        raise ValueError("`interactions` must be non-negative counts [n_users] (or the training matrix)")
    if rule == "fixed":
        return np.full(n.size, int(vectors), dtype=np.int64)
    m = np.maximum(n, 1)
    k = np.floor(np.log2(m)).astype(np.int64)
    k -= (np.left_shift(1, k) > m)             # guard log2 rounding at powers of two
    k += (np.left_shift(1, k + 1) <= m)
    return np.minimum(int(vectors), np.maximum(1, k)).astype(np.int64)


class DPCML(EmbeddingModel):
    """Diversity-promoting CML backbone (module docstring: defaults, constraints, memory).

    >>> m = DPCML(4, 6, dim=3, vectors=2, generator=torch.Generator().manual_seed(0))
    >>> m.score(torch.tensor([0, 3])).shape, m.score_pairs(torch.tensor([1]), torch.tensor([[0, 5]])).shape
    (torch.Size([2, 6]), torch.Size([1, 2]))
    >>> m.nearest_vector(torch.tensor([1]), torch.tensor([[0, 5]])).dtype
    torch.int64
    """

    def __init__(self, n_users: int, n_items: int, dim: int = 100, vectors: int = 5, constraint: str = "user-sphere",
                 user_vectors: str = "free", vector_counts: Sequence[int] | np.ndarray | torch.Tensor | None = None,
                 diversity: Sequence[float] = DEFAULT_DIVERSITY, diversity_form: str = "paper",
                 user_init_std: float | None = None, item_init_std: float | None = None,
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32):
        if isinstance(vectors, bool) or not isinstance(vectors, (int, np.integer)) or vectors < 1:
            raise ValueError(f"`vectors` must be an integer >= 1, got {vectors!r}")
        for name, value, valid in (("constraint", constraint, CONSTRAINTS), ("user_vectors", user_vectors, USER_VECTORS),
                                   ("diversity_form", diversity_form, DIVERSITY_FORMS)):
            if value not in valid:
                raise ValueError(f"`{name}` must be one of {', '.join(valid)}, got {value!r}")
        self.eta, self.delta1, self.delta2 = check_diversity(diversity, "diversity")
        self.vectors, self.constraint, self.user_vectors_mode = int(vectors), constraint, user_vectors
        self.diversity_form = diversity_form
        self.metric = "inner" if constraint == "sphere" else "distance"
        if user_init_std is None:
            user_init_std = DPCML_USER_INIT_STD if constraint == "user-sphere" else 1.0 / math.sqrt(dim)
        free = user_vectors == "free"
        super().__init__(n_users, n_items, dim, 1.0 / math.sqrt(dim) if item_init_std is None else item_init_std,
                         generator=generator, dtype=dtype, user_dim=dim * self.vectors if free else dim,
                         user_init_std=user_init_std)
        if not free:
            self.projections = nn.Parameter(
                torch.randn(self.vectors, dim, dim, generator=generator, dtype=dtype) / math.sqrt(dim))
        counts = torch.full((self.n_users,), self.vectors, dtype=torch.long) if vector_counts is None \
            else torch.as_tensor(np.asarray(vector_counts), dtype=torch.long).clone()
        if counts.shape != (self.n_users,) or (counts.numel() and (int(counts.min()) < 1 or int(counts.max()) > self.vectors)):
            raise ValueError(f"`vector_counts` must be [n_users = {self.n_users}] integers in [1, {self.vectors}]")
        #: C_u per user (saved in state_dict, so a reloaded run keeps its counts)
        self.register_buffer("user_vector_counts", counts)

    # ------------------------------------------------------------------ vectors
    def active(self, users: torch.Tensor) -> torch.Tensor:
        """``[B, C]`` bool: vector ``c`` of ``users[b]`` is active (``c < C_u``)."""
        counts = self.user_vector_counts[users]
        return torch.arange(self.vectors, device=counts.device)[None, :] < counts[:, None]

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        """``g_u^c`` for every ``c`` (inactive ones included), ``[B] -> [B, C, d]`` (ids not re-checked)."""
        rows = F.embedding(users, self.user)
        if self.user_vectors_mode == "free":
            return rows.view(users.shape[0], self.vectors, self.dim)
        # e_u^c = P_cᵀ u for every c as one [B, d] @ [d, C·d] matmul
        g = (rows @ self.projections.permute(1, 0, 2).reshape(self.dim, -1)).view(-1, self.vectors, self.dim)
        norm = g.norm(dim=-1, keepdim=True)
        if self.constraint == "ball":
            return g / norm.clamp(min=1.0)
        return g / norm.clamp(min=torch.finfo(g.dtype).tiny)

    # ------------------------------------------------------------------ scores
    def score(self, users: torch.Tensor) -> torch.Tensor:
        """Nearest-vector scores of every item, ``[B] -> [B, n_items]`` (``B·C·n_items`` memory)."""
        users = _check_ids(users, self.n_users, "users")
        return multi_vector_scores(self.user_vectors(users), self.item, self.active(users), self.metric)

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Nearest-vector scores of ``items[b, k]`` for ``users[b]``: ``[B], [B, K] -> [B, K]``."""
        users, items = self._check_pairs(users, items)
        return multi_vector_scores(self.user_vectors(users), self.item_rows(items), self.active(users), self.metric)

    def nearest_vector(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Which of the user's active vectors scores each item, ``[B], [B, K] -> [B, K]`` long."""
        users, items = self._check_pairs(users, items)
        with torch.no_grad():
            return _nearest_vector(self.user_vectors(users), self.item_rows(items), self.active(users), self.metric)

    def _check_pairs(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        users = _check_ids(users, self.n_users, "users")
        items = _check_ids(items, self.n_items, "items")
        if items.dim() != 2 or items.shape[0] != users.shape[0]:
            raise ValueError(f"`items` must be [B, K] with B = len(users) = {users.shape[0]}, got {tuple(items.shape)}")
        return users, items

    # ------------------------------------------------------------------ regulariser
    def regularizer(self, users: torch.Tensor) -> torch.Tensor:
        """``η ·`` the diversity penalty, a scalar tensor (0 when ``η = 0`` or ``C = 1``).

        ``diversity_form="paper"``: ``η · mean ψ(u)`` over the distinct ``users`` of the batch with
        ``C_u ≥ 2``. ``"pairs"`` (the authors' code): ``η ·`` the per-pair hinges averaged over
        the *whole* user table, recomputed each step as their ``regularization_loss_barrier`` is
        (``users`` is then unused).
        """
        if self.eta == 0.0 or self.vectors == 1:
            return torch.zeros((), dtype=self.item.dtype)
        if self.diversity_form == "pairs":
            ids = torch.arange(self.n_users)
            # the whole table: its view, not a gather (whose backward adds a second dense table gradient)
            vectors = self.user.view(self.n_users, self.vectors, self.dim) if self.user_vectors_mode == "free" \
                else self.user_vectors(ids)
        else:
            ids = torch.unique(_check_ids(users, self.n_users, "users"))
            vectors = self.user_vectors(ids)
        penalty = diversity_penalty(vectors, self.delta1, self.delta2, self.active(ids), form=self.diversity_form)
        return self.eta * penalty

    def scores_with_regularizer(self, users: torch.Tensor, items: torch.Tensor | None = None
                                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(score_pairs(users, items), regularizer(users))`` — or ``score(users)`` when ``items`` is
        ``None`` — from ONE lookup of the users' vectors (what the training objectives call).

        Under ``diversity_form="paper"`` the regulariser is taken on the batch's gathered rows, each
        of the ``B_u`` copies of a user weighted ``1/B_u``: the same value as :meth:`regularizer`
        (the mean of ``ψ`` over distinct users with ``C_u ≥ 2``) and the same gradient, without a
        second embedding lookup, whose dense gradient of the ``[n_users, C·d]`` table cost a
        zero-fill and an add of that table every step (DPCML2 ML-1M, batch 256, one thread: 17.1 -> 10.1 ms
        a step, 1.7x).
        """
        if items is None:
            users = _check_ids(users, self.n_users, "users")
        else:
            users, items = self._check_pairs(users, items)
        vectors, active = self.user_vectors(users), self.active(users)
        targets = self.item if items is None else self.item_rows(items)
        scores = multi_vector_scores(vectors, targets, active, self.metric)
        if self.eta == 0.0 or self.vectors == 1 or self.diversity_form != "paper":
            return scores, self.regularizer(users)
        distinct, inverse, copies = torch.unique(users, return_inverse=True, return_counts=True)
        psi = diversity_penalty(vectors, self.delta1, self.delta2, active, form="paper", reduction="none")
        eligible = int((self.user_vector_counts[distinct] >= 2).sum())
        if eligible == 0:
            return scores, torch.zeros((), dtype=self.item.dtype)
        return scores, self.eta * (psi / copies[inverse].to(psi.dtype)).sum() / eligible

    @torch.no_grad()
    def constrain_(self) -> None:
        """User vectors: unit sphere (``user-sphere``, ``sphere``) or ball; items: ball or sphere."""
        if self.user_vectors_mode == "free":   # projected vectors are normalised in the forward pass
            _unit_rows_(self.user.view(-1, self.dim), ball=self.constraint == "ball")
            counts = getattr(self, "user_vector_counts", None)   # absent during the base class's first call
            if counts is not None and bool((counts < self.vectors).any()):
                # Inactive vectors (APA) never score and get no loss gradient; left alone, weight decay and the
                # projection drove them into float32 denormals (~1e-44), which made every epoch ~2x slower on CPU
                # by epoch 8. Held at exactly 0 they stay 0 (zero decay gradient, zero optimizer step).
                inactive = torch.arange(self.vectors, device=counts.device)[None, :] >= counts[:, None]
                self.user.view(self.n_users, self.vectors, self.dim)[inactive] = 0.0
        _unit_rows_(self.item, ball=self.constraint != "sphere")


def check_diversity(value: Any, flag: str = "--diversity") -> tuple[float, float, float]:
    """``(η, δ₁, δ₂)`` as floats with ``η ≥ 0`` and ``0 ≤ δ₁ ≤ δ₂``, else one error naming ``flag``."""
    try:
        eta, d1, d2 = (float(v) for v in value)
        ok = all(math.isfinite(v) for v in (eta, d1, d2)) and eta >= 0.0 and 0.0 <= d1 <= d2
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{flag} must be three finite numbers eta,delta1,delta2 with eta >= 0 and "
                         f"0 <= delta1 <= delta2, got {value!r}")
    return eta, d1, d2


def vector_usage(model: DPCML, interactions: sp.spmatrix, chunk: int = 65536) -> dict[str, Any]:
    """Per user with ≥ 1 item in ``interactions`` (e.g. the test matrix): how many of its vectors are
    the nearest one for at least one of those items.

    Returns ``{"users", "vectors" (C), "mean" (vectors used), "mean_active" (mean C_u),
    "counts" {"1": users using 1 vector, …, "C": …}}``.
    """
    coo = sp.coo_matrix(interactions)
    users, items = coo.row.astype(np.int64), coo.col.astype(np.int64)
    nearest = np.empty(users.size, dtype=np.int64)
    for start in range(0, users.size, chunk):
        u = torch.from_numpy(users[start:start + chunk])
        i = torch.from_numpy(items[start:start + chunk])[:, None]
        nearest[start:start + chunk] = model.nearest_vector(u, i)[:, 0].numpy()
    keys = np.unique(users * model.vectors + nearest)
    used = np.bincount(keys // model.vectors, minlength=model.n_users)
    who = np.unique(users)
    per_user = used[who]
    counts = np.bincount(per_user, minlength=model.vectors + 1)[1:]
    active = model.user_vector_counts.numpy()[who]
    return {"users": int(who.size), "vectors": model.vectors,
            "mean": float(per_user.mean()) if who.size else float("nan"),
            "mean_active": float(active.mean()) if who.size else float("nan"),
            "counts": {str(k + 1): int(n) for k, n in enumerate(counts)}}


MODELS.register("dpcml", DPCML)
