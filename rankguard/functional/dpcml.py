"""Multi-vector (DPCML) scoring and the diversity regulariser, as pure tensor functions.

Diversity-promoting CML (Bao et al., NeurIPS 2022) gives user ``u`` vectors ``g_u^1 .. g_u^C`` of
which the first ``C_u`` are *active* (``active [B, C]`` bool; ``None`` = all). With item vectors
``g_v``::

    d(u, v) = min_{c active} ‖g_u^c − g_v‖²          score s(u, v) = −d(u, v)

``metric="inner"`` is the unit-sphere form ``s(u, v) = max_{c active} 2⟨g_u^c, g_v⟩``, which equals
``2 − d(u, v)`` when every row has norm 1 (SFCML's score, Bao et al., TPAMI 2023): the constant
shift changes no ranking and no pair loss, and with ``C = 1`` it is SFCML's score to the bit.

Diversity of a user's active vectors and its band penalty (the paper's form, Eq. 8)::

    δ_u = 1/(2 C_u (C_u − 1)) Σ_{c1 ≠ c2} ‖g_u^{c1} − g_u^{c2}‖²        (ordered pairs, C_u ≥ 2)
    ψ(u) = max(0, δ₁ − δ_u) + max(0, δ_u − δ₂)

``form="pairs"`` is the authors' code (statusrank/DPCML @c686b3f ``regularization_loss_barrier``):
the hinges applied to every ordered pair's squared distance ``q = ‖g^{c1} − g^{c2}‖²`` —
``Σ_{c1≠c2} [max(0, δ₁ − q) + max(0, q − δ₂)] / C²`` per user, i.e. the mean over the ``C × C`` grid
with the diagonal (and pairs with an inactive vector) counting as zero.

Ties in the min/max over vectors: the lowest vector index wins (``torch.min`` convention) and
receives the whole gradient.
"""

from __future__ import annotations

import torch

from rankguard._validation import check_choice, check_reduction
from rankguard.functional.reduction import reduce_loss

METRICS = ("distance", "inner")
DIVERSITY_FORMS = ("paper", "pairs")


def _check_vectors(user_vectors: torch.Tensor, active: torch.Tensor | None) -> torch.Tensor:
    if not isinstance(user_vectors, torch.Tensor) or not user_vectors.is_floating_point():
        raise TypeError("`user_vectors` must be a floating-point tensor [B, C, d]")
    if user_vectors.dim() != 3:
        raise ValueError(f"`user_vectors` must be [B, C, d], got shape {tuple(user_vectors.shape)}")
    b, c, _ = user_vectors.shape
    if active is None:
        return torch.ones(b, c, dtype=torch.bool, device=user_vectors.device)
    if not isinstance(active, torch.Tensor) or active.dtype != torch.bool:
        raise TypeError("`active` must be a boolean tensor [B, C]")
    if tuple(active.shape) != (b, c):
        raise ValueError(f"`active` must be [B, C] = {(b, c)}, got {tuple(active.shape)}")
    if b and not bool(active[:, 0].all()):
        raise ValueError("`active` must keep vector 0 of every user (C_u >= 1)")
    return active


def per_vector_scores(user_vectors: torch.Tensor, item_vectors: torch.Tensor,
                      metric: str = "distance") -> torch.Tensor:
    """Scores of every user vector: ``−‖g^c − v‖²`` or ``2⟨g^c, v⟩``, ``[B, C, N]`` or ``[B, C, K]``.

    ``item_vectors [N, d]`` (every item for each user; the distance expands as ‖g‖² + ‖v‖² − 2⟨g, v⟩
    with one ``[B·C, d] @ [d, N]`` matmul, clamped at 0; 3.0 -> 0.9 s for B·C = 5,120 user vectors against
    CiteULike-t's 25,975 items, d = 100, one thread, against the out-of-place expansion) or ``[B, K, d]`` (``K`` items per user; the
    same expansion with one batched ``[C, d] @ [d, K]`` matmul per user — forward + backward 7.6 ms ->
    3.1 ms for B = 256, C = 5, K = 11, d = 100 on one thread against exact differences, which
    materialise ``[B, C, K, d]``). Memory: ``B·C·N`` (full) or ``B·C·K`` (pairs) elements.
    CML's and SFCML's pair scores are this function with ``C = 1``.

    >>> per_vector_scores(torch.zeros(1, 2, 2), torch.tensor([[1.0, 0.0]])).tolist()
    [[[-1.0], [-1.0]]]
    """
    check_choice(metric, METRICS, "metric")
    b, c, d = user_vectors.shape
    if item_vectors.dim() == 2:
        if item_vectors.shape[1] != d:
            raise ValueError(f"`item_vectors` must be [N, {d}], got {tuple(item_vectors.shape)}")
        g = user_vectors.reshape(b * c, d)
        if metric == "inner":
            out = 2.0 * (g @ item_vectors.T)
        else:  # ‖g‖² − 2⟨g, v⟩ in the GEMM's accumulator, then + ‖v‖² and the clamp (rounding can make a
            # tiny distance negative) in place: one pass over [B·C, N] after the matmul instead of four
            out = torch.addmm((g * g).sum(1, keepdim=True), g, item_vectors.T, alpha=-2.0)
            out = out.add_((item_vectors * item_vectors).sum(1)).clamp_(min=0.0).neg_()
        return out.view(b, c, -1)
    if item_vectors.dim() != 3 or item_vectors.shape[0] != b or item_vectors.shape[2] != d:
        raise ValueError(f"`item_vectors` must be [N, {d}] or [B, K, {d}] with B = {b}, got {tuple(item_vectors.shape)}")
    gv = torch.bmm(user_vectors, item_vectors.transpose(1, 2))            # [B, C, K]
    if metric == "inner":
        return 2.0 * gv
    return -((user_vectors * user_vectors).sum(-1)[:, :, None] + (item_vectors * item_vectors).sum(-1)[:, None, :]
             - 2.0 * gv).clamp(min=0.0)


def multi_vector_scores(user_vectors: torch.Tensor, item_vectors: torch.Tensor, active: torch.Tensor | None = None,
                        metric: str = "distance", return_nearest: bool = False):
    """``s(u, v) = max_{c active} s_c(u, v)``: ``−min_c ‖g_u^c − g_v‖²`` (or ``max_c 2⟨g_u^c, g_v⟩``).

    Shapes: ``user_vectors [B, C, d]``, ``item_vectors [N, d]`` (-> ``[B, N]``) or ``[B, K, d]``
    (-> ``[B, K]``), ``active [B, C]`` bool or ``None``. Inactive vectors never win (masked to
    −inf) and get no gradient. With ``return_nearest`` also the winning vector index (long).

    >>> g = torch.tensor([[[0.0, 0.0], [2.0, 0.0]]]); v = torch.tensor([[1.5, 0.0], [-1.0, 0.0]])
    >>> multi_vector_scores(g, v).tolist()
    [[-0.25, -1.0]]
    >>> multi_vector_scores(g, v, active=torch.tensor([[True, False]])).tolist()
    [[-2.25, -1.0]]
    """
    active = _check_vectors(user_vectors, active)
    s = per_vector_scores(user_vectors, item_vectors, metric)
    if not bool(active.all()):
        s = s.masked_fill(~active[:, :, None], -torch.inf)
    if not return_nearest and not (s.requires_grad and torch.is_grad_enabled()):
        return s.amax(dim=1)            # the same values, without the index bookkeeping (~7x faster)
    best, index = torch.max(s, dim=1)   # max_c −d_c = −min_c d_c exactly (negation is exact)
    return (best, index) if return_nearest else best


def min_vector_distance(user_vectors: torch.Tensor, item_vectors: torch.Tensor,
                        active: torch.Tensor | None = None) -> torch.Tensor:
    """``d(u, v) = min_{c active} ‖g_u^c − g_v‖²``; shapes as :func:`multi_vector_scores`.

    >>> min_vector_distance(torch.tensor([[[0.0], [2.0]]]), torch.tensor([[1.5]])).tolist()
    [[0.25]]
    """
    return -multi_vector_scores(user_vectors, item_vectors, active, "distance")


def nearest_vector(user_vectors: torch.Tensor, item_vectors: torch.Tensor, active: torch.Tensor | None = None,
                   metric: str = "distance") -> torch.Tensor:
    """Index of the active vector that scores each item (the ``argmin_c`` of the distance), long.

    >>> nearest_vector(torch.tensor([[[0.0], [2.0]]]), torch.tensor([[1.5], [-1.0]])).tolist()
    [[1, 0]]
    """
    with torch.no_grad():
        return multi_vector_scores(user_vectors, item_vectors, active, metric, return_nearest=True)[1]


def _pair_distances(user_vectors: torch.Tensor) -> torch.Tensor:
    """``q[b, c1, c2] = ‖g_b^{c1} − g_b^{c2}‖²`` as ``‖g^{c1}‖² + ‖g^{c2}‖² − 2⟨g^{c1}, g^{c2}⟩`` from one
    batched ``[C, d] @ [d, C]`` Gram product per user, clamped at 0, diagonal exactly 0. Exact
    differences materialise ``[B, C, C, d]``: over a whole ML-1M user table (the ``pairs`` form,
    6,034 × 5 × 5 × 100) that was ~15 M elements forward and backward every step."""
    gram = torch.bmm(user_vectors, user_vectors.transpose(1, 2))                  # [B, C, C]
    sq = torch.diagonal(gram, dim1=1, dim2=2)                                      # [B, C]
    q = (sq[:, :, None] + sq[:, None, :] - 2.0 * gram).clamp(min=0.0)
    off = ~torch.eye(user_vectors.shape[1], dtype=torch.bool, device=user_vectors.device)
    return q * off


def vector_diversity(user_vectors: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
    """``δ_u = 1/(2 C_u (C_u − 1)) Σ_{c1≠c2 active} ‖g_u^{c1} − g_u^{c2}‖²`` per user, ``[B]``; 0 where C_u < 2.

    >>> float(vector_diversity(torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])))   # 2·2 / (2·2·1)
    1.0
    """
    active = _check_vectors(user_vectors, active)
    both = active[:, :, None] & active[:, None, :]
    q = _pair_distances(user_vectors) * both
    c_u = active.sum(1).to(user_vectors.dtype)
    denom = 2.0 * c_u * (c_u - 1.0)
    return torch.where(c_u >= 2, q.sum((1, 2)) / denom.clamp(min=1.0), torch.zeros_like(c_u))


def diversity_penalty(user_vectors: torch.Tensor, delta1: float, delta2: float, active: torch.Tensor | None = None,
                      form: str = "paper", reduction: str = "mean") -> torch.Tensor:
    """DPCML's diversity regulariser (see the module docstring for both forms).

    ``form="paper"``: ``ψ(u) = max(0, δ₁ − δ_u) + max(0, δ_u − δ₂)``; ``"mean"``/``"sum"`` run over
    the users with ``C_u ≥ 2`` (0 if there are none); ``"none"`` gives ``[B]`` (0 where C_u < 2).
    ``form="pairs"`` (the authors' code): per user ``Σ_{c1≠c2} [max(0, δ₁ − q) + max(0, q − δ₂)] / C²``
    over active pairs; ``"mean"`` averages over all ``B`` users (the code's mean over ``[B, C, C]``).

    Shapes: ``user_vectors [B, C, d]``, ``active [B, C]`` bool or ``None`` -> scalar or ``[B]``.

    >>> g = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])         # δ_u = 1; q = 2 on both ordered pairs: 2·1.5 / 4
    >>> float(diversity_penalty(g, 0.1, 0.5)), float(diversity_penalty(g, 0.1, 0.5, form="pairs"))
    (0.5, 0.75)
    """
    check_choice(form, DIVERSITY_FORMS, "form")
    check_reduction(reduction)
    delta1, delta2 = float(delta1), float(delta2)
    if not 0.0 <= delta1 <= delta2:
        raise ValueError(f"`delta1`, `delta2` must satisfy 0 <= delta1 <= delta2, got {delta1}, {delta2}")
    active = _check_vectors(user_vectors, active)
    if form == "pairs":
        c = user_vectors.shape[1]
        off = ~torch.eye(c, dtype=torch.bool, device=user_vectors.device)
        pairs = active[:, :, None] & active[:, None, :] & off
        q = _pair_distances(user_vectors)
        hinge = (torch.relu(delta1 - q) + torch.relu(q - delta2)) * pairs
        return reduce_loss(hinge.sum((1, 2)) / (c * c), reduction)
    delta = vector_diversity(user_vectors, active)
    eligible = active.sum(1) >= 2
    psi = (torch.relu(delta1 - delta) + torch.relu(delta - delta2)) * eligible
    return reduce_loss(psi, reduction, count=eligible.sum())
