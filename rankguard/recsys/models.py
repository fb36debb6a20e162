"""Embedding models for collaborative ranking: MF, CML and SFCML (DPCML: :mod:`rankguard.recsys.dpcml`).

Models only map users to item scores; they hold no loss (losses live in
:mod:`rankguard.functional.cml`). Every model exposes

* ``score(users [B]) -> [B, n_items]`` — full-ranking scores (higher = better);
* ``score_pairs(users [B], items [B, K]) -> [B, K]`` — scores of chosen items only;
* ``constrain_()`` — the projection applied after initialisation and after every optimiser step
  (a no-op for MF).

Defaults:

* MF: N(0, 0.01) init, dot-product score (BPR, Rendle et al. 2009).
* CML (Hsieh et al., WWW 2017): ``s(u, v) = −‖u − v‖²``; rows clipped to the unit ball after each
  step (``constraint="ball"``), or projected to the unit sphere (``"sphere"``); init N(0, 1/√d) as in
  the DPCML code.
* SFCML (Bao et al., TPAMI 2023; LibCML @35e5c43 ``model/SFCML.py``): rows projected to the unit
  sphere after init and after every optimiser step (items then users); ``s(u, v) = 2⟨u, v⟩``
  (= 2 − ‖u − v‖² on the sphere). LibCML initialises with ``nn.Embedding``'s N(0, 1) and normalises;
  after the projection any isotropic Gaussian init gives the same (uniform-on-sphere) rows, so the
  ``init_std`` here only matters before the first projection. No dropout, no bias terms.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rankguard.functional.dpcml import per_vector_scores
from rankguard.registry import Registry


def _check_ids(ids: torch.Tensor, n: int, name: str) -> torch.Tensor:
    if not isinstance(ids, torch.Tensor):
        ids = torch.as_tensor(ids)
    if ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"`{name}` must be an integer tensor, got dtype {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n):
        raise ValueError(f"`{name}` holds ids outside [0, {n}): min {int(ids.min())}, max {int(ids.max())}")
    return ids.long()


class EmbeddingModel(nn.Module):
    """User and item tables ``[n_users, user_dim]``, ``[n_items, d]`` with a score defined by subclasses.

    ``user_dim`` (default ``d``) and ``user_init_std`` (default ``init_std``) let a subclass hold
    wider user rows (DPCML: ``C`` vectors per row); the draws are always users first, then items,
    from ``generator``.
    """

    def __init__(self, n_users: int, n_items: int, dim: int, init_std: float, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32, user_dim: int | None = None, user_init_std: float | None = None):
        super().__init__()
        if n_users < 1 or n_items < 1 or dim < 1:
            raise ValueError(f"`n_users`, `n_items`, `dim` must be >= 1, got {n_users}, {n_items}, {dim}")
        self.n_users, self.n_items, self.dim = int(n_users), int(n_items), int(dim)
        user_dim = dim if user_dim is None else int(user_dim)
        user_std = init_std if user_init_std is None else user_init_std
        self.user = nn.Parameter(torch.randn(n_users, user_dim, generator=generator, dtype=dtype) * user_std)
        self.item = nn.Parameter(torch.randn(n_items, dim, generator=generator, dtype=dtype) * init_std)
        self.constrain_()

    def _pair(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:  # u [B,1,d] or [B,d], v [.., d]
        raise NotImplementedError

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item for each user: ``[B] -> [B, n_items]``."""
        return self._full(self.user_rows(_check_ids(users, self.n_users, "users")), self.item)

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of ``items[b, k]`` for ``users[b]``: ``[B], [B, K] -> [B, K]``."""
        users = _check_ids(users, self.n_users, "users")
        items = _check_ids(items, self.n_items, "items")
        if items.dim() != 2 or items.shape[0] != users.shape[0]:
            raise ValueError(f"`items` must be [B, K] with B = len(users) = {users.shape[0]}, got {tuple(items.shape)}")
        return self._pair(self.user_rows(users)[:, None, :], self.item_rows(items))

    # Row lookups go through F.embedding: its backward accumulates repeated ids deterministically
    # (plain ``table[ids]`` backward is a parallel index_put that sums duplicates in a varying
    # order on CPU, so two runs of one seed drifted apart) and is ~2x faster.
    def user_rows(self, users: torch.Tensor) -> torch.Tensor:
        """``user[users]`` rows, ``[...] -> [..., d]`` (ids are not re-checked)."""
        return F.embedding(users, self.user)

    def item_rows(self, items: torch.Tensor) -> torch.Tensor:
        """``item[items]`` rows, ``[...] -> [..., d]`` (ids are not re-checked)."""
        return F.embedding(items, self.item)

    def _full(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def constrain_(self) -> None:
        """Projection applied after init and after each optimiser step (none by default)."""


#: ``similarity`` of the inner-product backbones (MF, LightGCN): ``dot`` = ⟨p_u, q_i⟩,
#: ``cosine`` = ⟨p_u, q_i⟩ / (‖p_u‖‖q_i‖) (the AdvInfoNCE authors' ``train_norm``/``pred_norm``)
SIMILARITIES = ("dot", "cosine")


def _unit(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1)


class MF(EmbeddingModel):
    """Matrix factorisation, ``s(u, i) = ⟨p_u, q_i⟩`` (train with BPR), or its cosine with
    ``similarity="cosine"`` (the contrastive losses' default).

    >>> m = MF(3, 5, dim=4, generator=torch.Generator().manual_seed(0))
    >>> m.score(torch.tensor([0, 2])).shape
    torch.Size([2, 5])
    >>> bool(MF(3, 5, dim=4, similarity="cosine").score(torch.tensor([1])).abs().max() <= 1 + 1e-6)
    True
    """

    def __init__(self, n_users: int, n_items: int, dim: int = 64, init_std: float = 0.01,
                 similarity: str = "dot", **kw):
        if similarity not in SIMILARITIES:
            raise ValueError(f"`similarity` must be one of {', '.join(SIMILARITIES)}, got {similarity!r}")
        self.similarity = similarity
        super().__init__(n_users, n_items, dim, init_std, **kw)

    #: score_pairs takes one [B, n_items] product and a gather once K * DENSE_PAIRS >= n_items: its backward
    #: (a dense matmul) beat gathering [B, K, d] rows (an embedding backward) 7x at K = 65, 1,682 items, d = 64
    DENSE_PAIRS = 64

    def tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The user and item tables the scores use (LightGCN: the propagated ones)."""
        return self.user, self.item

    def score(self, users: torch.Tensor) -> torch.Tensor:
        users = _check_ids(users, self.n_users, "users")
        u, v = self.tables()
        return self._full(F.embedding(users, u), v)

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        users = _check_ids(users, self.n_users, "users")
        items = _check_ids(items, self.n_items, "items")
        if items.dim() != 2 or items.shape[0] != users.shape[0]:
            raise ValueError(f"`items` must be [B, K] with B = len(users) = {users.shape[0]}, got {tuple(items.shape)}")
        u_tab, i_tab = self.tables()
        u = F.embedding(users, u_tab)
        if items.shape[1] * self.DENSE_PAIRS >= self.n_items:
            return self._full(u, i_tab).gather(1, items)
        return self._pair(u[:, None, :], F.embedding(items, i_tab))

    def _full(self, u, v):
        if self.similarity == "cosine":
            u, v = _unit(u), _unit(v)
        return u @ v.T

    def _pair(self, u, v):
        if self.similarity == "cosine":
            u, v = _unit(u), _unit(v)
        return (u * v).sum(-1)


def _unit_rows_(w: torch.Tensor, ball: bool) -> None:
    norm = w.norm(dim=1, keepdim=True)
    if ball:
        w.div_(norm.clamp(min=1.0))
    else:
        w.div_(norm.clamp(min=torch.finfo(w.dtype).tiny))


class CML(EmbeddingModel):
    """Collaborative metric learning, ``s(u, i) = −‖u − v_i‖²`` (Hsieh et al., WWW 2017).

    ``constraint="ball"`` renormalises rows with norm > 1 (the original's clipping); ``"sphere"``
    projects every row to norm 1.

    >>> m = CML(3, 5, dim=4, generator=torch.Generator().manual_seed(0))
    >>> bool((m.score(torch.tensor([1])) <= 0).all())
    True
    """

    def __init__(self, n_users: int, n_items: int, dim: int = 100, constraint: str = "ball",
                 init_std: float | None = None, **kw):
        if constraint not in ("ball", "sphere"):
            raise ValueError(f"`constraint` must be 'ball' or 'sphere', got {constraint!r}")
        self.constraint = constraint
        super().__init__(n_users, n_items, dim, 1.0 / math.sqrt(dim) if init_std is None else init_std, **kw)

    def _full(self, u, v):   # −‖u − v‖² against every item: the C = 1 case of the multi-vector scores
        return per_vector_scores(u[:, None, :], v, "distance")[:, 0]

    def _pair(self, u, v):   # u [B, 1, d], v [B, K, d]: the C = 1 case of the multi-vector pair scores
        return per_vector_scores(u, v, "distance")[:, 0]

    @torch.no_grad()
    def constrain_(self) -> None:
        _unit_rows_(self.user, self.constraint == "ball")
        _unit_rows_(self.item, self.constraint == "ball")


class SFCML(EmbeddingModel):
    """Sampling-free CML model: unit-sphere rows, ``s(u, i) = 2⟨u, v_i⟩`` (LibCML's SFCML).

    >>> m = SFCML(3, 5, dim=4, generator=torch.Generator().manual_seed(0))
    >>> torch.allclose(m.user.norm(dim=1), torch.ones(3))
    True
    """

    def __init__(self, n_users: int, n_items: int, dim: int = 256, init_std: float | None = None, **kw):
        super().__init__(n_users, n_items, dim, 1.0 / math.sqrt(dim) if init_std is None else init_std, **kw)

    def _full(self, u, v):
        return per_vector_scores(u[:, None, :], v, "inner")[:, 0]

    def _pair(self, u, v):
        return per_vector_scores(u, v, "inner")[:, 0]

    @torch.no_grad()
    def constrain_(self) -> None:
        _unit_rows_(self.user, ball=False)
        _unit_rows_(self.item, ball=False)


#: backbones by name (``--model`` accepts these and the recipes of :mod:`rankguard.recsys.recipes`)
MODELS: Registry[type[EmbeddingModel]] = Registry("model")
MODELS.register("mf", MF)
MODELS.register("cml", CML)
MODELS.register("cml-sphere", SFCML)   # SFCML's unit-sphere CML backbone
# DPCML lives in its own file and registers itself ("dpcml"); imported here so MODELS always holds it
import rankguard.recsys.dpcml  # noqa: E402,F401  (after MODELS and EmbeddingModel exist)
import rankguard.recsys.lightgcn  # noqa: E402,F401  (registers "lightgcn")
