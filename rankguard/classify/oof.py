"""Out-of-fold predictions on the (noisy) training set, and the suspected-label rankings they give.

:func:`out_of_fold_logits` partitions the training set of a :class:`~rankguard.classify.data.ClassificationSplit`
into ``folds`` stratified folds (stratified by the *noisy* labels, the only ones a user has; seeded),
trains the configured model and loss (:func:`rankguard.classify.trainer.train`, same epochs,
learning rate, loss options and noisy-validation epoch selection) on the other folds and predicts
the held-out one; every training example gets logits from a model that never saw its label.

:func:`oof_suspect_quality` ranks the training examples on those logits exactly as the in-sample
report does (:mod:`rankguard.classify.suspects`: the run's loss, ALDR-KL's confidence signed by
disagreement, both combined) and, when cleanlab is installed (the ``bench`` extra), runs
``cleanlab.filter.find_label_issues`` on ``softmax(logits)`` of the *same* predictions. For a
held-out example the loss is the fold's loss function built fresh for the held-out set (ALDR-KL:
λ_i from one closed-form update at λ₀, the value it would get on its first visit), and the
confidence is κ = KL(softmax(f/λ₀) ‖ uniform)/log K with λ₀ the run's (10 for non-ALDR runs).

>>> from rankguard.classify.data import load_split
>>> from rankguard.classify.recipes import ClassifyConfig
>>> s = load_split("digits", "uniform:0.4")
>>> z = out_of_fold_logits(ClassifyConfig(dataset="digits", loss="ce", noise="uniform:0.4", epochs=1), s, folds=2)
>>> z.shape == (s.y_train.size, 10)
True
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from rankguard.classify.data import ClassificationSplit
from rankguard.classify.recipes import LOSSES, ClassifyConfig

#: cleanlab's own default number of cross-validation folds (``cv_n_folds``)
OOF_FOLDS = 5


def fold_split(split: ClassificationSplit, train_part: np.ndarray, held: np.ndarray) -> ClassificationSplit:
    """``split`` with training rows ``train_part`` and "test" rows ``held`` (positions in the training set;
    the held-out labels kept are the *noisy* ones: no clean label is looked at). Validation is unchanged."""
    return dataclasses.replace(
        split, x_train=split.x_train[train_part], y_train=split.y_train[train_part],
        y_train_clean=split.y_train_clean[train_part], train_rows=split.train_rows[train_part],
        x_test=split.x_train[held], y_test=split.y_train[held], test_rows=split.train_rows[held])


def out_of_fold_logits(config: ClassifyConfig, split: ClassificationSplit, folds: int = OOF_FOLDS,
                       seed: int | None = None) -> np.ndarray:
    """Logits ``[n_train, K]`` (float64) of every training example from the fold model that held it out.

    Folds: ``StratifiedKFold(folds, shuffle=True, random_state=seed)`` on the noisy training labels
    (``seed`` defaults to ``config.seed``); each fold model is ``train(config, split=…)``.
    """
    from sklearn.model_selection import StratifiedKFold

    from rankguard.classify.trainer import _logits, train

    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"`folds` must be an integer >= 2, got {folds!r}")
    y = split.y_train
    counts = np.bincount(y, minlength=split.n_classes)
    if counts[counts > 0].min() < folds:
        raise ValueError(f"`folds` = {folds} exceeds the smallest class count of the noisy training labels "
                         f"({int(counts[counts > 0].min())}); use fewer folds")
    seed = config.seed if seed is None else seed
    out = np.full((y.size, split.n_classes), np.nan)
    for train_part, held in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(y, y):
        result = train(config, log=None, split=fold_split(split, train_part, held))
        out[held] = _logits(result.model, torch.from_numpy(split.x_train[held])).double().numpy()
    return out


def oof_per_example_loss(config: ClassifyConfig, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The configured loss of each held-out example (a fresh loss object; ALDR-KL: one update from λ₀)."""
    from rankguard.classify.trainer import per_example

    z, y = torch.from_numpy(logits), torch.from_numpy(labels)
    loss_fn = LOSSES.get(config.loss).build(config.loss_options, num_samples=int(y.numel()))
    with per_example(loss_fn) as f:
        return f(z, y, torch.arange(y.numel())).double().numpy()


def cleanlab_available() -> bool:
    """Whether cleanlab (the ``bench`` extra: ``pip install rankguard[bench]``) can be imported."""
    try:
        import cleanlab.filter  # noqa: F401
    except ImportError:
        return False
    return True


def cleanlab_quality(pred_probs: np.ndarray, labels: np.ndarray, flipped: np.ndarray) -> dict[str, Any]:
    """cleanlab's ``find_label_issues`` (defaults: ``filter_by="prune_by_noise_rate"``) on ``pred_probs``:
    its flagged set's precision and recall, and — at the true count n, as rankguard's rankings are
    scored — the precision of cleanlab's own ranking (``rank.get_label_quality_scores``, self-confidence:
    the order ``find_label_issues`` returns its issues in)."""
    if not cleanlab_available():
        raise ImportError("cleanlab is not installed; it is a benchmark extra: pip install -c constraints.txt "
                          "'rankguard[bench]' (or pip install cleanlab)")
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    issues = np.asarray(find_label_issues(labels, pred_probs), dtype=bool)
    n, hits = int(flipped.sum()), int((issues & flipped).sum())
    quality = get_label_quality_scores(labels, pred_probs)
    top = np.argsort(quality, kind="stable")[:n]
    return {"n_flagged": int(issues.sum()),
            "precision": hits / int(issues.sum()) if issues.any() else float("nan"),
            "recall": hits / n if n else float("nan"),
            "self_confidence_precision_at_n": int(flipped[top].sum()) / n if n else float("nan")}


def softmax_np(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a float64 ``[n, K]`` array (max-subtracted)."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def oof_suspect_quality(config: ClassifyConfig, split: ClassificationSplit, folds: int = OOF_FOLDS,
                        seed: int | None = None, with_cleanlab: bool | None = None) -> dict[str, Any]:
    """Precision (= recall) at the true noise count of rankguard's rankings on out-of-fold logits, and
    cleanlab's on the same predictions (``with_cleanlab`` None = when installed). Needs injected noise."""
    from rankguard.classify.suspects import confidence_from_scores, ranking_quality, suspect_scores
    from rankguard.functional.ldr import LDR_LAMBDA

    flipped = split.y_train != split.y_train_clean
    if not flipped.any():
        raise ValueError("oof_suspect_quality needs injected noise (no training label was flipped)")
    logits = out_of_fold_logits(config, split, folds, seed)
    losses = oof_per_example_loss(config, logits, split.y_train)
    lam0 = float(config.resolved_loss_options.get("lam0", LDR_LAMBDA))
    kappa = confidence_from_scores(torch.from_numpy(logits), lam=lam0)
    scores = suspect_scores(torch.from_numpy(logits), split.y_train, losses, kappa)
    out: dict[str, Any] = {"folds": folds, "n_train": int(flipped.size), "n_flipped": int(flipped.sum()),
                           "confidence_lambda": lam0,
                           "oof_top1_vs_given": float(np.mean(scores["predicted"] == split.y_train)),
                           "rankings": ranking_quality(scores, flipped)}
    if with_cleanlab is None:
        with_cleanlab = cleanlab_available()
    if with_cleanlab:
        import cleanlab

        out["cleanlab"] = {"version": cleanlab.__version__,
                           **cleanlab_quality(softmax_np(logits), split.y_train, flipped)}
    return out
