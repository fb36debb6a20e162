"""The sampler interface and the vectorised rejection step every sampler shares.

A sampler holds the training matrix (users x items, CSR) and one ``numpy.random.Generator``.
For a batch of ``(user, positive)`` pairs it returns negative item ids ``[B, S]`` that are
never among the user's training positives. Rejection sampling is done for the whole batch at
once: draw, look every ``u * n_items + j`` key up in the sorted array of training keys
(``np.searchsorted``), redraw only the rejects. After a few rounds the (rare) leftovers are
drawn exactly from the user's restricted distribution with a small dense table, so the result
follows ``q_u(j) ∝ w_j · [j ∉ P_u]`` exactly (``w`` = the sampler's base item weights).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch

# score_fn(users [B], items [B, C]) -> model scores [B, C] (higher = closer); used by samplers that
# pick among candidates by how hard they are. It is called without gradient.
CandidateScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_REJECTION_ROUNDS = 8


def _as_csr(train: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    if not sp.issparse(train):
        raise TypeError(f"`train` must be a scipy sparse users x items matrix, got {type(train).__name__}")
    csr = sp.csr_matrix(train, dtype=np.float64, copy=True)
    csr.sum_duplicates()
    csr.eliminate_zeros()
    csr.sort_indices()
    return csr


class NegativeSampler:
    """Base class: subclasses set :meth:`item_weights` and, if needed, override :meth:`sample`.

    Parameters
    ----------
    train : scipy sparse matrix [n_users, n_items]
        Training interactions; any stored non-zero is a positive.
    generator : numpy.random.Generator
        The run's random source (see :func:`rankguard.seeding.make_generators`).
    n_negatives : int
        ``S``, negatives returned per ``(user, positive)`` pair.
    """

    name = "base"
    #: True when :meth:`sample` needs ``score_fn`` (the model's scores of candidates).
    needs_scores = False

    def __init__(self, train, generator: np.random.Generator, n_negatives: int = 10):
        if not isinstance(generator, np.random.Generator):
            raise TypeError(f"`generator` must be a numpy.random.Generator, got {type(generator).__name__}")
        if int(n_negatives) < 1:
            raise ValueError(f"`n_negatives` must be >= 1, got {n_negatives}")
        self.train = _as_csr(train)
        self.rng = generator
        self.n_negatives = int(n_negatives)
        self.n_users, self.n_items = self.train.shape
        counts = np.diff(self.train.indptr)
        full = np.flatnonzero(counts >= self.n_items)
        if full.size:
            raise ValueError(f"`train`: user {int(full[0])} has every item as a positive; no negative exists")
        rows = np.repeat(np.arange(self.n_users, dtype=np.int64), counts)
        # row-major order + sorted indices => keys are sorted
        self._keys = rows * self.n_items + self.train.indices.astype(np.int64)
        w = np.asarray(self.item_weights(), dtype=np.float64)
        if w.shape != (self.n_items,) or np.any(w < 0) or not np.all(np.isfinite(w)):
            raise ValueError("item weights must be finite, non-negative, one per item")
        self.weights = w
        self._cdf = np.cumsum(w)
        # each user must have some weight outside its positives, else rejection never ends
        # per-user weight of its positives (bincount, not add.reduceat: that fails when trailing users have none)
        pos_mass = np.bincount(rows, weights=w[self.train.indices], minlength=self.train.shape[0])
        stuck = np.flatnonzero(self._cdf[-1] - pos_mass <= 1e-12 * self._cdf[-1])
        if stuck.size:
            raise ValueError(f"{self.name}: user {int(stuck[0])} has zero sampling weight outside its positives")

    #: the trainer's ``--negatives`` default for this sampler when not given (``None``: the recipe's)
    default_count: int | None = None

    @classmethod
    def check_options(cls, **options) -> None:
        """Validate ``sampler_options`` (the extra keyword arguments) before any data is loaded.

        The default accepts exactly the constructor's extra keyword parameters; a sampler with
        value constraints overrides this (DiHarS checks ``beta``).
        """
        import inspect

        allowed = set(inspect.signature(cls.__init__).parameters) - {"self", "train", "generator", "n_negatives",
                                                                        "n_candidates"}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ValueError(f"sampler option(s) {', '.join(unknown)} not accepted by {cls.name}; "
                             f"accepted: {', '.join(sorted(allowed)) or 'none'}")

    @classmethod
    def from_count(cls, train, generator: np.random.Generator, count: int, **options) -> "NegativeSampler":
        """Build from the trainer's one count flag (``--negatives``): negatives per pair by default;
        a sampler whose count means something else (HarS: candidates) overrides this."""
        return cls(train, generator, n_negatives=count, **options)

    # -- pieces -------------------------------------------------------------------------
    def item_weights(self) -> np.ndarray:
        """Unnormalised base weights ``w_j`` over items (uniform by default)."""
        return np.ones(self.n_items)

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean array, same shape as ``items``: is ``items[b, k]`` a training positive of ``users[b]``."""
        items = np.asarray(items, dtype=np.int64)
        users = np.asarray(users, dtype=np.int64).reshape(-1, *([1] * (items.ndim - 1)))
        keys = users * self.n_items + items
        if self._keys.size == 0:
            return np.zeros(keys.shape, dtype=bool)
        pos = np.minimum(np.searchsorted(self._keys, keys), self._keys.size - 1)
        return self._keys[pos] == keys

    def _draw_base(self, size) -> np.ndarray:
        u = self.rng.random(size) * self._cdf[-1]
        return np.minimum(np.searchsorted(self._cdf, u, side="right"), self.n_items - 1)

    def draw(self, users: np.ndarray, n: int) -> np.ndarray:
        """``[B, n]`` independent draws from ``q_u(j) ∝ w_j [j ∉ P_u]`` for each user in ``users``."""
        users = np.asarray(users, dtype=np.int64)
        out = self._draw_base((users.size, n))
        bad = self.is_positive(users, out)
        for _ in range(_REJECTION_ROUNDS):
            if not bad.any():
                return out
            r, c = np.nonzero(bad)
            out[r, c] = self._draw_base(r.size)
            bad[r, c] = self.is_positive(users[r], out[r, c][:, None])[:, 0]
        if bad.any():  # exact fallback for the few leftovers: dense restricted table per reject
            r, c = np.nonzero(bad)
            cdf = np.cumsum(self.negative_distribution(users[r]), axis=1)
            u = self.rng.random(r.size) * cdf[:, -1]
            out[r, c] = np.minimum((cdf <= u[:, None]).sum(axis=1), self.n_items - 1)
        return out

    def sample(self, users: np.ndarray, pos_items: np.ndarray,
               score_fn: CandidateScoreFn | None = None) -> np.ndarray:
        """Negatives ``[B, S]`` for the pairs ``(users[b], pos_items[b])``; none is a training positive."""
        users = np.asarray(users, dtype=np.int64)
        return self.draw(users, self.n_negatives)

    def pick_hardest(self, users: np.ndarray, candidates: np.ndarray, score_fn: CandidateScoreFn | None,
                     k: int) -> np.ndarray:
        """Keep, per row, the ``k`` candidates with the largest model score (smallest distance)."""
        if score_fn is None:
            raise ValueError(f"{self.name} needs `score_fn` (model scores of the candidates)")
        with torch.no_grad():
            s = score_fn(torch.from_numpy(users), torch.from_numpy(candidates))
        top = torch.topk(s, k, dim=1).indices.numpy()
        return np.take_along_axis(candidates, top, axis=1)

    def negative_distribution(self, users: np.ndarray) -> np.ndarray:
        """Exact ``q_u(j)`` for each user, ``[len(users), n_items]`` (rows sum to 1, zero on positives)."""
        users = np.asarray(users, dtype=np.int64)
        q = np.broadcast_to(self.weights, (users.size, self.n_items)).copy()
        r, c = self.train[users].nonzero()
        q[r, c] = 0.0
        return q / q.sum(axis=1, keepdims=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_users={self.n_users}, n_items={self.n_items}, n_negatives={self.n_negatives})"
