"""LightGCN backbone (He et al., SIGIR 2020): embeddings smoothed over the user–item graph.

With the training matrix ``R [n_users, n_items]`` (binary), degrees ``d_u = Σ_i R_ui``,
``d_i = Σ_u R_ui`` and the symmetric-normalised bipartite adjacency

    Â = [[0, R̃], [R̃ᵀ, 0]],   R̃ = D_u^{-1/2} R D_i^{-1/2}   (a node of degree 0 gets 0),

layer ``k`` is ``E^{(k+1)} = Â E^{(k)}`` from the free embeddings ``E^{(0)} = [P; Q]``, and the
model's embeddings are the layer mean ``Ē = (1/(K+1)) Σ_{k=0..K} E^{(k)}``. Propagation is two
sparse products per layer (``R̃ Q^{(k)}`` and ``R̃ᵀ P^{(k)}``): never a dense graph. Scores are
``⟨ē_u, ē_i⟩`` or their cosine (``similarity``, as for :class:`~rankguard.recsys.models.MF`).

Training propagates once per batch (the gradient flows through the graph); without gradient
(evaluation, candidate scoring) the propagated tables are cached until a parameter changes, so
the blocked evaluator propagates once per evaluation, not once per block.

Defaults: ``layers = 2`` and Xavier-normal init, as the AdvInfoNCE authors run LightGCN
(LehengTHU/AdvInfoNCE @e7c0416, ``n_layers 2``, ``nn.init.xavier_normal_``: std √(2/(n + d)) per
table); LightGCN's own paper uses 3 layers and N(0, 0.1).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch

from rankguard.recsys.models import MF, MODELS


def normalized_adjacency(train: sp.spmatrix) -> sp.csr_matrix:
    """``R̃ = D_u^{-1/2} R D_i^{-1/2}`` of the binarised training matrix (zero degree -> 0 row/column).

    >>> r = normalized_adjacency(sp.csr_matrix(np.array([[1, 1], [0, 1]])))
    >>> np.round(r.toarray(), 4).tolist()
    [[0.7071, 0.5], [0.0, 0.7071]]
    """
    r = sp.csr_matrix(train, dtype=np.float64, copy=True)
    r.data[:] = 1.0
    r.sum_duplicates()
    r.data[:] = 1.0

    def inv_sqrt(deg: np.ndarray) -> np.ndarray:
        out = np.zeros_like(deg, dtype=np.float64)
        out[deg > 0] = 1.0 / np.sqrt(deg[deg > 0])
        return out

    du = inv_sqrt(np.asarray(r.sum(axis=1)).ravel())
    di = inv_sqrt(np.asarray(r.sum(axis=0)).ravel())
    out = sp.csr_matrix(sp.diags(du) @ r @ sp.diags(di))
    out.sort_indices()
    return out


def _torch_sparse(m: sp.csr_matrix, dtype: torch.dtype) -> torch.Tensor:
    coo = sp.coo_matrix(m)
    index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(index, torch.from_numpy(coo.data).to(dtype), size=m.shape,
                                   check_invariants=True).coalesce()


class LightGCN(MF):
    """LightGCN over the training graph (module docstring); ``train`` = the training matrix.

    >>> r = sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32))
    >>> m = LightGCN(2, 3, dim=4, layers=2, train=r, generator=torch.Generator().manual_seed(0))
    >>> m.score(torch.tensor([0, 1])).shape
    torch.Size([2, 3])
    """

    def __init__(self, n_users: int, n_items: int, dim: int = 64, layers: int = 2, train: sp.spmatrix | None = None,
                 similarity: str = "dot", init_std: float | None = None, **kw):
        if isinstance(layers, bool) or not isinstance(layers, (int, np.integer)) or layers < 0:
            raise ValueError(f"`layers` must be an integer >= 0, got {layers!r}")
        self.layers = int(layers)
        item_std = math.sqrt(2.0 / (n_items + dim)) if init_std is None else init_std
        user_std = math.sqrt(2.0 / (n_users + dim)) if init_std is None else init_std
        super().__init__(n_users, n_items, dim, item_std, similarity=similarity, user_init_std=user_std, **kw)
        self._graph: tuple[sp.csr_matrix, sp.csr_matrix] | None = None
        self._torch_graph: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor]] = {}
        self._cache: tuple[tuple, torch.Tensor, torch.Tensor] | None = None
        if train is not None:
            self.set_graph(train)

    def set_graph(self, train: sp.spmatrix) -> None:
        """Use ``train [n_users, n_items]`` as the propagation graph (called by the constructor)."""
        if tuple(train.shape) != (self.n_users, self.n_items):
            raise ValueError(f"`train` must be [n_users, n_items] = {(self.n_users, self.n_items)}, "
                             f"got {tuple(train.shape)}")
        r = normalized_adjacency(train)
        self._graph = (r, sp.csr_matrix(r.T))
        self._torch_graph, self._cache = {}, None

    def _operators(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        if self._graph is None:
            raise RuntimeError("LightGCN has no training graph: build it with train=<the training matrix> "
                               "(or call set_graph(train))")
        if dtype not in self._torch_graph:
            self._torch_graph[dtype] = (_torch_sparse(self._graph[0], dtype), _torch_sparse(self._graph[1], dtype))
        return self._torch_graph[dtype]

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer-mean embeddings ``(ē_users [n_users, d], ē_items [n_items, d])``."""
        key = (self.user._version, self.item._version, self.user.data_ptr(), self.item.data_ptr())
        caching = not torch.is_grad_enabled()
        if caching and self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2]
        r, rt = self._operators(self.user.dtype)
        u, i = self.user, self.item
        sum_u, sum_i = u, i
        for _ in range(self.layers):
            u, i = torch.sparse.mm(r, i), torch.sparse.mm(rt, u)
            sum_u, sum_i = sum_u + u, sum_i + i
        out_u, out_i = sum_u / (self.layers + 1), sum_i / (self.layers + 1)
        self._cache = (key, out_u, out_i) if caching else None
        return out_u, out_i

    def tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.propagate()

    def _load_from_state_dict(self, *args, **kwargs):  # loaded weights: the cached propagation is stale
        self._cache = None
        super()._load_from_state_dict(*args, **kwargs)


MODELS.register("lightgcn", LightGCN)
