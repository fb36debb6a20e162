"""Suspected-label report: rank training examples by how likely their label is wrong.

Three scores per training example i (given label y_i, final logits z_i), higher = more suspect:

- ``loss``: the run's own per-example training loss ℓ(z_i, y_i) — it sees the label.
- ``signed_confidence``: ALDR-KL's signal. κ_i = KL(softmax(f_i/λ) ‖ uniform)/log K ∈ [0, 1] is how
  confident the prediction is, whatever the label; for an ALDR-KL run it is read off the stored
  λ_i (κ_i = α(λ₀ − λ_i)/λ₀, the value of its last visit), for other runs it is the same closed form
  evaluated once on the final scores at λ = λ₀ = 10 (``softplus`` scores). κ alone cannot tell a
  wrong label from a right one, so it is signed by disagreement: +κ_i when argmax z_i ≠ y_i (a
  *confident disagreement*), −κ_i when the model agrees (confident agreement = least suspect).
- ``combined``: the mean of the two scores' percentile ranks (ties averaged), so a high loss with a
  confident disagreement comes first and a high loss on an uncertain prediction after it.

With injected noise, precision and recall of each ranking's top n (n = the true number of flipped
training labels) are reported; at n equal to the true count they coincide (both are hits / n), so
one number is shown for both, next to the AUROC of each score for "flipped vs not".

>>> s = {"loss": np.array([3.0, 0.1, 2.0]), "signed_confidence": np.array([0.9, -0.8, -0.1])}
>>> ranking_quality(s, np.array([True, False, False]))["loss"]["precision_at_n"]
1.0
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata

from rankguard.functional.ldr import kl_to_uniform, ldr_scores

#: λ at which a non-ALDR run's confidence is evaluated (ALDR-KL's λ₀ default)
CONFIDENCE_LAMBDA = 10.0


def confidence_from_scores(logits: torch.Tensor, lam: float = CONFIDENCE_LAMBDA) -> np.ndarray:
    """κ = KL(softmax(softplus-normalised z / λ) ‖ uniform)/log K per row, in [0, 1]."""
    with torch.no_grad():
        p = torch.softmax(ldr_scores(logits.double(), "softplus") / lam, dim=1)
        return (kl_to_uniform(p) / math.log(logits.shape[1])).numpy()


def confidence_from_aldr(lam: torch.Tensor, lam0: float, alpha: float) -> np.ndarray:
    """κ_i = α(λ₀ − λ_i)/λ₀ from ALDR-KL's stored λ_i (= KL/log K of its last update)."""
    return (alpha * (lam0 - lam.detach().double().cpu()) / lam0).clamp(0, 1).numpy()


def suspect_scores(logits: torch.Tensor, labels: np.ndarray, per_example_loss: np.ndarray,
                   confidence: np.ndarray) -> dict[str, np.ndarray]:
    """The three scores of the module docstring (and the predictions) for ``n`` training examples."""
    pred = logits.argmax(dim=1).numpy()
    disagree = pred != labels
    signed = np.where(disagree, confidence, -confidence)
    n = max(labels.size, 1)
    combined = 0.5 * (rankdata(per_example_loss) + rankdata(signed)) / n
    return {"loss": np.asarray(per_example_loss, dtype=np.float64), "signed_confidence": signed,
            "combined": combined, "confidence": confidence, "predicted": pred}


RANKINGS = ("loss", "signed_confidence", "combined")


def ranking_quality(scores: dict[str, np.ndarray], flipped: np.ndarray) -> dict[str, dict[str, float]]:
    """Precision (= recall) at n = #flipped and AUROC of each ranking in :data:`RANKINGS` present."""
    from rankguard.metrics import roc_auc

    n = int(flipped.sum())
    out: dict[str, dict[str, float]] = {}
    for name in RANKINGS:
        if name not in scores:
            continue
        s = scores[name]
        top = np.argsort(-s, kind="stable")[:n]
        hits = int(flipped[top].sum())
        out[name] = {"precision_at_n": hits / n if n else float("nan"), "recall_at_n": hits / n if n else float("nan"),
                     "auroc": float(roc_auc(s, flipped)) if 0 < n < flipped.size else float("nan")}
    return out


def suspects_csv(scores: dict[str, np.ndarray], labels: np.ndarray, rows: np.ndarray,
                 flipped: np.ndarray | None, clean: np.ndarray | None) -> str:
    """CSV text, one line per training example, most suspect (by ``combined``) first."""
    order = np.argsort(-scores["combined"], kind="stable")
    rank_loss = np.empty(labels.size, dtype=np.int64)
    rank_loss[np.argsort(-scores["loss"], kind="stable")] = np.arange(1, labels.size + 1)
    head = ["rank_combined", "rank_loss", "train_index", "dataset_row", "given_label", "predicted_label",
            "loss", "confidence", "signed_confidence", "combined"]
    if flipped is not None:
        head += ["label_was_flipped", "clean_label"]
    buf = io.StringIO()
    buf.write(",".join(head) + "\n")
    for r, i in enumerate(order, start=1):
        cells: list[Any] = [r, rank_loss[i], i, rows[i], labels[i], scores["predicted"][i],
                            f"{scores['loss'][i]:.6g}", f"{scores['confidence'][i]:.6g}",
                            f"{scores['signed_confidence'][i]:.6g}", f"{scores['combined'][i]:.6g}"]
        if flipped is not None:
            cells += [int(flipped[i]), clean[i]]
        buf.write(",".join(str(c) for c in cells) + "\n")
    return buf.getvalue()
