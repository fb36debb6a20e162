"""Cross-validated target–decoy rescoring on :mod:`rankguard.training` (the Percolator protocol, REFERENCES §9).

:func:`rescore` takes a :class:`~rankguard.rescoring.readers.MatchTable` and returns a score per row:

1. features standardised with the training rows' mean and standard deviation (constant columns → 0);
2. a model (``"linear"`` or ``"mlp"``: d → 16 → 1, ReLU) trained with a loss of :data:`LOSSES`
   (``adaptive-rank`` = :class:`~rankguard.losses.AdaptiveRankLoss` on sigmoid scores, its memory the
   end-of-epoch model's scores of the training rows, ξ in its own Adam group and projected; ``bce``;
   ``auc`` = :class:`~rankguard.losses.AUCLoss`; ``svm`` = the Percolator baseline: scikit-learn's linear
   SVM on targets at q ≤ 0.01 vs all decoys, refitted from the best single feature, C ∈ {0.1, 1, 10});
   the torch losses train, as Percolator does, on the targets at q ≤ 0.01 under the best single feature
   (the confident positives) against all decoys;
3. without separate training files, 3 folds split by spectrum: each fold is scored by a model trained on
   the other two, and each fold's scores are calibrated (Percolator's rule): ``(s − s₀.₀₁)/(s₀.₀₁ − m_D)``
   with s₀.₀₁ the lowest target score at q ≤ 0.01 within the fold and m_D the fold's median decoy score
   (when no target passes, s₀.₀₁ = the fold's highest decoy score);
4. with training files (``train=``), one model trained on them scores every row (the top-down protocol).

:func:`competition` keeps the best match per spectrum (ties: the first row); :func:`summarise` computes
q-values with (decoys + 1)/targets (:func:`rankguard.metrics.qvalues`, mokapot's q ≤ threshold) on the
winners and on the best match per peptide among them, and the origin code's count (deepest 0-based rank
with D/(T + 1) ≤ threshold). Deterministic for a seed: every draw comes from generators seeded by it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rankguard.losses import AdaptiveRankLoss, AUCLoss
from rankguard.metrics import qvalues
from rankguard.rescoring.readers import MatchTable
from rankguard.training import FitSettings, OptimizerSpec, PositiveShareBatchSampler, ScorerObjective, fit, seeded

__all__ = ["LOSSES", "MODELS", "ORIGIN_CODE_FORM", "RescoreSettings", "rescore", "competition", "summarise", "origin_count",
           "best_single_feature", "THRESHOLDS"]

LOSSES = ("adaptive-rank", "bce", "auc", "svm")
MODELS = ("linear", "mlp")
THRESHOLDS = (0.01, 0.05)
#: the origin code's form of the adaptive rank loss (Dwzie/AdaptiveRankLoss @a6311ff, REFERENCES §9b), as
#: :class:`RescoreSettings` fields: both sums divided by a constant 10⁴ instead of the pair counts, α_i not
#: detached, each batch compared with ≤ 10⁴ memory rows per class redrawn every batch
ORIGIN_CODE_FORM = {"normalizer": 1e4, "detach_alpha": False, "memory_subsample": 10_000}


@dataclass
class RescoreSettings:
    """Defaults: ξ₀ = 0.2 and margin lr 1e-5 are the origin code's (REFERENCES §9b); its 50 epochs and batch
    100 are cut to ``epochs=40`` and ``batch_size=256`` here (2 cores). ``model="mlp"`` and Adam ``lr=1e-2``
    (the origin: 1e-3) were chosen on the pipeline's own cross-validated counts of the two shared PIN files
    (adaptive-rank, seed 0; yeast / mokapot_10k PSMs at q ≤ 0.01): linear lr 1e-3, 20 epochs 907 / 230;
    lr 1e-2 1054 / 458; lr 3e-2 1064 / 423; lr 1e-2 50 epochs 1104 / 447; mlp lr 1e-2 20 epochs 1125 / 468;
    + 2 iterations 1127 / 487; mlp lr 1e-2 40 epochs 1174 / 511 (kept). ``iterations`` > 1 retrains on the
    confident targets under the previous model's scores (Percolator's iteration; not better here, so 1).

    The adaptive rank loss's form (:class:`~rankguard.losses.AdaptiveRankLoss`): ``xi_floor`` / ``learn_xi``
    (the note's rule ξ ← max(0, ξ − η∂L/∂ξ) by default), and the note's form by default —
    ``normalizer="pairs"``, ``detach_alpha=True``, ``memory_subsample=None``; :data:`ORIGIN_CODE_FORM` holds the
    origin code's (``normalizer=1e4``, ``detach_alpha=False``, ``memory_subsample=10_000``)."""

    loss: str = "adaptive-rank"
    model: str = "mlp"
    folds: int = 3
    epochs: int = 40
    batch_size: int = 256
    lr: float = 1e-2
    xi: float = 0.2
    xi_lr: float = 1e-5
    xi_floor: float = 0.0
    learn_xi: bool = True
    seed: int = 0
    train_fdr: float = 0.01
    iterations: int = 1
    normalizer: str | float = "pairs"
    detach_alpha: bool = True
    memory_subsample: int | None = None

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"`loss` must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.model not in MODELS:
            raise ValueError(f"`model` must be one of {', '.join(MODELS)}, got {self.model!r}")
        if not (isinstance(self.folds, int) and self.folds >= 2):
            raise ValueError(f"`folds` must be an integer >= 2, got {self.folds!r}")
        if self.memory_subsample is not None and not (isinstance(self.memory_subsample, int)
                                                      and self.memory_subsample >= 1):
            raise ValueError(f"`memory_subsample` must be None or an integer >= 1, got {self.memory_subsample!r}")
        if not (self.normalizer == "pairs" or (not isinstance(self.normalizer, str) and 0 < float(self.normalizer)
                                               < float("inf"))):
            raise ValueError(f"`normalizer` must be 'pairs' or a positive finite number, got {self.normalizer!r}")


# ------------------------------------------------------------------------------------------------
# competition, q-values and counts
# ------------------------------------------------------------------------------------------------

def competition(scores: np.ndarray, keys: list[str], seed: int = 0) -> np.ndarray:
    """Indices of the best-scoring row per key, in row order; ties broken by a permutation seeded by ``seed``
    (as mokapot does: with "first row wins", a feature equal for a spectrum's target and decoy, such as its
    mass, would pick whichever the file lists first — in the yeast file, the target).

    >>> competition(np.array([1.0, 3.0, 2.0]), ["a", "a", "b"]).tolist()
    [1, 2]
    """
    _, inverse = np.unique(np.asarray(keys, dtype=object).astype(str), return_inverse=True)
    tie_break = np.random.default_rng(seed).permutation(len(scores))
    order = np.lexsort((tie_break, -scores, inverse))   # by key, best score, then the seeded permutation
    first = np.ones(len(order), dtype=bool)
    first[1:] = inverse[order][1:] != inverse[order][:-1]
    return np.sort(order[first])


def origin_count(scores: np.ndarray, is_target: np.ndarray, threshold: float = 0.01) -> int:
    """The origin code's counter: sort by score (descending, stable), running FDR = D/(T + 1), and return the
    deepest 0-based rank where it is ≤ ``threshold`` (0 when none is).

    >>> origin_count(np.array([3.0, 2.0, 1.0]), np.array([True, True, False]), 0.01)
    1
    """
    order = np.argsort(-scores, kind="stable")
    t = np.cumsum(is_target[order])
    d = np.cumsum(~is_target[order])
    ok = np.nonzero(d / (t + 1.0) <= threshold)[0]
    return int(ok[-1]) if ok.size else 0


def _accepted(q: np.ndarray, is_target: np.ndarray, threshold: float) -> int:
    return int(np.sum((q <= threshold) & is_target))


def summarise(table: MatchTable, scores: np.ndarray, thresholds: tuple[float, ...] = THRESHOLDS) -> dict[str, Any]:
    """Competition + q-values: per-match and per-peptide q-values of the winners, and the counts.

    Returns a dict with ``psm_index``/``psm_q`` (winners and their q), ``peptide_index``/``peptide_q``,
    ``accepted_psms``/``accepted_peptides`` at 0.01 and ``by_threshold``.
    """
    win = competition(scores, table.spectrum)
    tgt = table.is_target[win]
    q = np.asarray(qvalues(scores[win], tgt))
    peptides = [table.peptides[i] for i in win]
    pep_local = competition(scores[win], peptides)
    pep = win[pep_local]
    q_pep = np.asarray(qvalues(scores[pep], table.is_target[pep]))
    by = {}
    for th in thresholds:
        by[f"{th:g}"] = {"psms": _accepted(q, tgt, th), "peptides": _accepted(q_pep, table.is_target[pep], th),
                         "origin_rule_psms": origin_count(scores[win], tgt, th)}
    return {"psm_index": win, "psm_q": q, "peptide_index": pep, "peptide_q": q_pep,
            "accepted_psms": _accepted(q, tgt, 0.01),
            "accepted_peptides": _accepted(q_pep, table.is_target[pep], 0.01), "by_threshold": by}


def best_single_feature(table: MatchTable, rows: np.ndarray | None = None) -> tuple[str, float, np.ndarray]:
    """(name, sign, scores) of the feature (either direction) accepting the most matches at q ≤ 0.01 after
    competition; ties go to the first feature, positive direction first."""
    rows = np.arange(len(table)) if rows is None else rows
    keys = [table.spectrum[i] for i in rows]
    best = (-1, "", 1.0)
    for k, name in enumerate(table.feature_names):
        for sign in (1.0, -1.0):
            s = sign * table.features[rows, k]
            win = competition(s, keys)
            n = _accepted(np.asarray(qvalues(s[win], table.is_target[rows][win])), table.is_target[rows][win], 0.01)
            if n > best[0]:
                best = (n, name, sign)
    k = table.feature_names.index(best[1])
    return best[1], best[2], best[2] * table.features[:, k]


# ------------------------------------------------------------------------------------------------
# training one model
# ------------------------------------------------------------------------------------------------

class _RescoringObjective(ScorerObjective):
    """ScorerObjective + ξ's optimizer group, its projection and the epoch-end memory refresh."""

    def __init__(self, features, labels, loss_fn, sampler, settings: RescoreSettings, sigmoid: bool):
        super().__init__(features, labels, loss_fn, sampler)
        self.settings, self.sigmoid = settings, sigmoid
        self.xi_history: list[float] = []

    def parameter_groups(self, model: nn.Module) -> dict[str, OptimizerSpec]:
        groups = {"model": OptimizerSpec(model.parameters(), "adam", lr=self.settings.lr)}
        if isinstance(self.loss_fn, AdaptiveRankLoss) and self.loss_fn.parameter_group():
            groups["xi"] = OptimizerSpec(self.loss_fn.parameter_group(), "adam", lr=self.settings.xi_lr)
        return groups

    def loss(self, model: nn.Module, idx: torch.Tensor):
        s = model(self.features[idx])[:, 0]
        if self.sigmoid:
            s = torch.sigmoid(s)
        return self.loss_fn(s, self.labels[idx], idx)

    def after_step(self, model: nn.Module, step: int) -> None:
        if isinstance(self.loss_fn, AdaptiveRankLoss):
            self.loss_fn.project_()

    def refresh_memory(self, model: nn.Module) -> None:
        with torch.no_grad():
            was = model.training
            model.eval()
            self.loss_fn.set_memory(torch.sigmoid(model(self.features)[:, 0]), self.labels)
            model.train(was)

    def on_epoch_end(self, model: nn.Module, epoch: int) -> None:
        if isinstance(self.loss_fn, AdaptiveRankLoss):
            self.refresh_memory(model)
            self.xi_history.append(float(self.loss_fn.xi.detach()))


def _make_model(d: int, kind: str, gen: torch.Generator) -> nn.Module:
    if kind == "linear":
        return seeded(lambda: nn.Linear(d, 1).double(), gen)
    return seeded(lambda: nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, 1)).double(), gen)


def _train_torch(x: np.ndarray, y: np.ndarray, settings: RescoreSettings, gen: torch.Generator,
                 info: dict[str, Any]) -> nn.Module:
    X = torch.from_numpy(x)
    Y = torch.from_numpy(y.astype(np.float64))
    model = _make_model(x.shape[1], settings.model, gen)
    if settings.loss == "adaptive-rank":
        loss_fn: Any = AdaptiveRankLoss(settings.xi, learn_xi=settings.learn_xi, xi_floor=settings.xi_floor,
                                        normalizer=settings.normalizer, detach_alpha=settings.detach_alpha,
                                        memory_subsample=settings.memory_subsample, generator=gen)
        sigmoid = True
    elif settings.loss == "auc":
        auc = AUCLoss()
        loss_fn, sigmoid = (lambda s, t, idx: auc(s, t)), False   # AUCLoss takes no row index
    else:
        loss_fn, sigmoid = (lambda s, t, idx: F.binary_cross_entropy_with_logits(s, t)), False
    n_pos = int(Y.sum())
    share = max(1, min(settings.batch_size - 1, round(settings.batch_size * n_pos / len(Y))))
    sampler = PositiveShareBatchSampler(Y, settings.batch_size, share, generator=gen)
    objective = _RescoringObjective(X, Y, loss_fn, sampler, settings, sigmoid)
    if isinstance(loss_fn, AdaptiveRankLoss):
        objective.refresh_memory(model)        # initial memory: the untrained model's scores
    fit(model, objective, FitSettings(epochs=settings.epochs, desc=f"rescore {settings.loss}"), log=None)
    if objective.xi_history:
        info.setdefault("xi_by_epoch", []).append(objective.xi_history)
    model.eval()
    return model


def _train_svm(x: np.ndarray, y: np.ndarray, keys: list[str], settings: RescoreSettings, init: np.ndarray):
    from sklearn.svm import LinearSVC
    scores = init
    w = None
    for _ in range(3):
        win = competition(scores, keys)
        q = np.full(len(scores), 1.0)
        q[win] = np.asarray(qvalues(scores[win], y[win]))
        pos = y & (q <= settings.train_fdr)
        if pos.sum() < 2:
            pos = y & (scores >= np.quantile(scores[y], 0.9))
        rows = pos | ~y
        best = None
        for c in (0.1, 1.0, 10.0):
            svm = LinearSVC(C=c, class_weight={0: 1.0, 1: 1.0}, dual=False, random_state=settings.seed)
            svm.fit(x[rows], pos[rows].astype(int))
            s = svm.decision_function(x)
            win = competition(s, keys)
            n = _accepted(np.asarray(qvalues(s[win], y[win])), y[win], settings.train_fdr)
            if best is None or n > best[0]:
                best = (n, svm)
        w = best[1]
        scores = w.decision_function(x)
    return w


def _predict(model: Any, x: np.ndarray) -> np.ndarray:
    if isinstance(model, nn.Module):
        with torch.no_grad():
            return model(torch.from_numpy(x))[:, 0].numpy().astype(np.float64)
    return model.decision_function(x).astype(np.float64)


def _confident_rows(y: np.ndarray, keys: list[str], scores: np.ndarray, fdr: float) -> np.ndarray:
    """Percolator's training set: targets at q ≤ ``fdr`` under ``scores`` (after competition) and all decoys;
    when fewer than 10 targets pass, the best 10% of targets instead."""
    win = competition(scores, keys)
    q = np.ones(len(scores))
    q[win] = np.asarray(qvalues(scores[win], y[win]))
    pos = y & (q <= fdr)
    if pos.sum() < 10:
        pos = y & (scores >= np.quantile(scores[y], 0.9))
    return np.nonzero(pos | ~y)[0]


def _fit(x, y, keys, settings, gen, info, init_scores):
    if settings.loss == "svm":
        return _train_svm(x, y, keys, settings, init_scores)
    scores, model = init_scores, None
    for _ in range(max(1, settings.iterations)):
        # Percolator's iteration: the confident targets under the latest model's scores of the training rows
        rows = _confident_rows(y, keys, scores, settings.train_fdr)
        model = _train_torch(x[rows], y[rows], settings, gen, info)
        scores = _predict(model, x)
    return model


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mean = train.mean(0)
    std = train.std(0)
    std[std == 0] = 1.0
    return [(a - mean) / std for a in (train,) + others]


def _calibrate(scores: np.ndarray, is_target: np.ndarray, keys: list[str], fdr: float) -> np.ndarray:
    win = competition(scores, keys)
    q = np.asarray(qvalues(scores[win], is_target[win]))
    passing = scores[win][(q <= fdr) & is_target[win]]
    decoys = scores[~is_target]
    top = passing.min() if passing.size else (decoys.max() if decoys.size else scores.max())
    median = np.median(decoys) if decoys.size else scores.min()
    scale = top - median
    return (scores - top) / (scale if scale > 0 else 1.0)


def rescore(table: MatchTable, settings: RescoreSettings | None = None, train: MatchTable | None = None
            ) -> tuple[np.ndarray, dict[str, Any]]:
    """Scores for every row of ``table`` and a dict of run facts (best feature, folds, ξ history, wall time).

    With ``train`` given, one model trained on it scores ``table``; otherwise ``settings.folds`` folds by
    spectrum (see the module docstring). Returns ``(scores [N] float64, info)``.
    """
    settings = settings or RescoreSettings()
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    info: dict[str, Any] = {"settings": settings.__dict__.copy()}
    scores = np.zeros(len(table))
    if train is not None:
        if train.feature_names != table.feature_names:
            raise ValueError("the training files' features differ from the scored files'")
        xtr, xte = _standardise(train.features, table.features)
        name, sign, init = best_single_feature(train)
        model = _fit(xtr, train.is_target, train.spectrum, settings, gen, info, init)
        scores = _predict(model, xte)
        info["protocol"] = "train once, score separately"
    else:
        spectra, inverse = np.unique(np.asarray(table.spectrum, dtype=object).astype(str), return_inverse=True)
        fold_of_spectrum = rng.permutation(len(spectra)) % settings.folds
        fold = fold_of_spectrum[inverse]
        for k in range(settings.folds):
            tr, te = np.nonzero(fold != k)[0], np.nonzero(fold == k)[0]
            xtr, xte = _standardise(table.features[tr], table.features[te])
            keys_tr = [table.spectrum[i] for i in tr]
            _, _, init = best_single_feature(table, tr)
            model = _fit(xtr, table.is_target[tr], keys_tr, settings, gen, info, init[tr])
            raw = _predict(model, xte)
            scores[te] = _calibrate(raw, table.is_target[te], [table.spectrum[i] for i in te], settings.train_fdr)
        info["protocol"] = f"{settings.folds}-fold cross-validation by spectrum, calibrated"
    info["wall_s"] = time.perf_counter() - t0
    return scores, info
