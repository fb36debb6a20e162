"""Noisy-label classification as a recipe on the engine: config -> split, model, loss -> :func:`fit` -> run dir.

:func:`train` builds the split (:func:`~rankguard.classify.data.load_split`: clean test fold, noisy
train/validation pool), the model (:data:`~rankguard.classify.models.MODELS`, seeded; the MLP, or
the small CNN for CIFAR-10), the loss (:data:`~rankguard.classify.recipes.LOSSES`) inside a
:class:`~rankguard.training.ScorerObjective` (with ``augment``, the
:class:`~rankguard.classify.augment.AugmentedObjective`; its state — ALDR-KL's λ_i — is saved in
every checkpoint), one SGD optimizer, and validation = top-1 accuracy on the *noisy* validation
labels; :func:`rankguard.training.fit` runs the loop. A model with an ``eval_batch`` attribute (the
CNN: on 10,000 images at once it would need gigabytes of activations) is scored in chunks of that
many rows; others in one pass.

With a run directory it writes ``config.json`` and ``noise.json`` (the realised noise matrix and
the flipped positions of the training and validation sets) first, ``checkpoint.pt`` after every
epoch, and at the end ``history.json``, ``metrics.json`` (clean-test ``top1_accuracy`` and
``top5_accuracy``, validation metrics, the suspected-label ranking's precision/recall),
``suspected_labels.csv``, ``report.md``, ``curves.png`` and ``confusion_matrix.png``;
``status.json`` says ``running`` until then, ``complete`` after. ``mode="resume"`` continues from
the checkpoint (split and noise are rebuilt from the config's seeds, identically).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from rankguard.classify.augment import AugmentedObjective
from rankguard.classify.data import INPUT_SHAPES, ClassificationSplit, load_split, split_summary
from rankguard.classify.models import build_model
from rankguard.classify.recipes import LOSSES, ClassifyConfig
from rankguard.runs import RunDir, markdown_table
from rankguard.training import FitSettings, Generators, OptimizerSpec, ScorerObjective, fit_in_run

#: top-k accuracies reported (k larger than K is left out)
TOPK = (1, 5)


class ShuffledBatches:
    """One epoch = a fresh permutation of ``range(n)`` from ``generator``, cut into batches of
    ``batch_size`` (the last one smaller).

    >>> [len(b) for b in ShuffledBatches(5, 2, torch.Generator().manual_seed(0))]
    [2, 2, 1]
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator):
        self.n, self.batch_size, self.generator = n, batch_size, generator

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(torch.randperm(self.n, generator=self.generator).split(self.batch_size))


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = TOPK) -> dict[str, float]:
    """Share of rows whose label is among the k highest logits; ties count against (the label's rank
    is 1 + #{classes scoring ≥ it, other than itself}).

    >>> topk_accuracy(torch.tensor([[1.0, 2.0, 0.0], [1.0, 1.0, 0.0]]), torch.tensor([0, 0]), (1, 2))
    {'top1_accuracy': 0.0, 'top2_accuracy': 1.0}
    """
    sy = logits.gather(1, labels.long().unsqueeze(1))
    rank = (logits >= sy).sum(dim=1)              # includes the label itself
    return {f"top{k}_accuracy": float((rank <= k).double().mean()) for k in ks if k <= logits.shape[1]}


@contextlib.contextmanager
def per_example(loss_fn: nn.Module) -> Iterator[nn.Module]:
    """``loss_fn`` with ``reduction="none"`` and (if it has state) frozen, for reporting only."""
    previous = loss_fn.reduction
    loss_fn.reduction = "none"
    try:
        with (loss_fn.frozen() if hasattr(loss_fn, "frozen") else contextlib.nullcontext()):
            yield loss_fn
    finally:
        loss_fn.reduction = previous


@dataclass
class ClassifyResult:
    """What :func:`train` returns: the model holding the selected state, and the numbers."""

    model: nn.Module
    loss_fn: nn.Module
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    best_epoch: int
    split: ClassificationSplit
    suspects: dict[str, np.ndarray]
    resumed_from: int | None = None


def _forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)``, in chunks of ``model.eval_batch`` rows if the model sets it (the mode is the caller's)."""
    chunk = getattr(model, "eval_batch", None)
    if chunk is None or x.shape[0] <= chunk:
        return model(x)
    return torch.cat([model(part) for part in x.split(chunk)])


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return _forward(model, x)


def train(config: ClassifyConfig, out: str | os.PathLike | None = None, mode: str = "new",
          log: Callable[[str], None] | None = print, split: ClassificationSplit | None = None) -> ClassifyResult:
    """Train as the module docstring says; ``split`` (if given) replaces the one the config describes.

    >>> r = train(ClassifyConfig(dataset="digits", loss="aldr-kl", noise="uniform:0.2", epochs=2), log=None)
    >>> sorted(k for k in r.metrics if k.startswith("top")), r.best_epoch in (1, 2)
    (['top1_accuracy', 'top5_accuracy'], True)
    """
    if split is None:
        split = load_split(config.dataset, config.noise, fold=config.fold, folds=config.folds,
                           val_fraction=config.val_fraction, split_seed=config.split_seed,
                           noise_seed=int(config.noise_seed), max_train=config.max_train)
    gens = Generators(config.seed)
    x_tr, y_tr = torch.from_numpy(split.x_train), torch.from_numpy(split.y_train)
    x_va, y_va = torch.from_numpy(split.x_val), torch.from_numpy(split.y_val)
    model = build_model(config.model, x_tr.shape[1], split.n_classes, gens.torch, config.hidden)
    recipe = LOSSES.get(config.loss)
    loss_fn = recipe.build(config.loss_options, num_samples=y_tr.numel())
    batches = ShuffledBatches(y_tr.numel(), config.batch_size, gens.torch)
    if config.augment:
        objective = AugmentedObjective(x_tr, y_tr, loss_fn, batches, INPUT_SHAPES[config.dataset], gens.torch)
    else:
        objective = ScorerObjective(x_tr, y_tr, loss_fn, batches)
    options = {"momentum": config.momentum} if config.optimizer == "sgd" else {}
    optimizers = {"model": OptimizerSpec(model.parameters(), config.optimizer, config.lr, config.weight_decay,
                                         options=options)}

    def validate(m: nn.Module) -> dict[str, float]:
        return topk_accuracy(_forward(m, x_va), y_va) if y_va.numel() else {"top1_accuracy": float("nan")}

    run = RunDir.for_run(out, mode) if out is not None else None
    if run is not None:
        if mode != "resume":
            run.save_json("config.json", config.to_dict())
            noise = split.noise.to_dict()
            noise.pop("flipped")
            run.save_json("noise.json", {**noise, "train_flipped": split.train_flipped.tolist(),
                                         "val_flipped": np.flatnonzero(split.y_val != split.y_val_clean).tolist(),
                                         "train_rows": split.train_rows.tolist(), "notes": split.notes})
        run.mark("running")
    settings = FitSettings(epochs=config.epochs, eval_every=config.eval_every, patience=config.patience,
                           select_metric="top1_accuracy", desc=f"train {config.loss}",
                           divergence_hint=f"lower the learning rate (--lr, now {config.lr:g})")
    fitted = fit_in_run(run, "rankguard classify train", model, objective, settings, optimizers=optimizers,
                        validate=validate, generators=gens, resume=mode == "resume",
                        extra_state={"config": config.to_dict()}, log=log)

    test_logits = _logits(model, torch.from_numpy(split.x_test))
    metrics: dict[str, Any] = topk_accuracy(test_logits, torch.from_numpy(split.y_test))
    metrics["val_noisy"] = dict(fitted.best_metrics)
    metrics["val_clean_top1_accuracy"] = topk_accuracy(_logits(model, x_va), torch.from_numpy(split.y_val_clean),
                                                       (1,))["top1_accuracy"] if y_va.numel() else None
    metrics.update(best_epoch=fitted.best_epoch, epochs_run=fitted.epochs_run,
                   epoch_seconds=fitted.epoch_seconds, **split_summary(split))
    suspects = report_suspects(model, loss_fn, split, config, metrics)
    result = ClassifyResult(model, loss_fn, metrics, fitted.history, fitted.best_epoch, split, suspects,
                            fitted.resumed_from)
    if run is not None:
        write_run_files(run, config, result, test_logits)
        run.mark("complete", best_epoch=fitted.best_epoch, epochs_run=fitted.epochs_run)
    return result


def report_suspects(model: nn.Module, loss_fn: nn.Module, split: ClassificationSplit, config: ClassifyConfig,
                    metrics: dict[str, Any]) -> dict[str, np.ndarray]:
    """Scores of :mod:`rankguard.classify.suspects` for the training set; with injected noise, the
    rankings' precision / recall at the true noise count go into ``metrics["suspected_labels"]``."""
    from rankguard.classify.suspects import (confidence_from_aldr, confidence_from_scores, ranking_quality,
                                             suspect_scores)

    x, y = torch.from_numpy(split.x_train), torch.from_numpy(split.y_train)
    logits = _logits(model, x)
    with per_example(loss_fn) as f:
        losses = f(logits, y, torch.arange(y.numel())).double().numpy()
    if hasattr(loss_fn, "lam0"):
        kappa, source = confidence_from_aldr(loss_fn.lam, loss_fn.lam0, loss_fn.alpha), "ALDR-KL λ_i buffer"
    else:
        kappa, source = confidence_from_scores(logits), "closed form at λ = 10 on the final scores"
    scores = suspect_scores(logits, split.y_train, losses, kappa)
    flipped = split.y_train != split.y_train_clean
    info: dict[str, Any] = {"confidence_from": source, "n_train": int(y.numel()), "n_flipped": int(flipped.sum())}
    if flipped.any():
        info["rankings"] = ranking_quality(scores, flipped)
    metrics["suspected_labels"] = info
    return scores


def write_run_files(run: RunDir, config: ClassifyConfig, result: ClassifyResult, test_logits: torch.Tensor) -> None:
    """history.json, metrics.json, suspected_labels.csv, report.md, curves.png, confusion_matrix.png."""
    from rankguard.classify.plots import confusion_matrix, plot_confusion_matrix
    from rankguard.classify.suspects import suspects_csv
    from rankguard.plots import plot_training_curves

    split = result.split
    flipped = split.y_train != split.y_train_clean
    injected = config.noise != "none"
    run.save_json("history.json", result.history)
    run.save_json("metrics.json", result.metrics)
    run.save_text("suspected_labels.csv", suspects_csv(result.suspects, split.y_train, split.train_rows,
                                                       flipped if injected else None,
                                                       split.y_train_clean if injected else None))
    title = f"{config.loss} on {config.dataset}, noise {config.noise}"
    plot_training_curves(result.history, run.file("curves.png"), "top1_accuracy", title=title + " (noisy validation)")
    cm = confusion_matrix(split.y_test, test_logits.argmax(dim=1).numpy(), split.n_classes)
    plot_confusion_matrix(cm, run.file("confusion_matrix.png"), title=title + ": clean test set")
    run.save_text("report.md", render_report(config, result))


def render_report(config: ClassifyConfig, result: ClassifyResult) -> str:
    """The run's ``report.md``: test accuracy, selection, data notes, suspected-label quality."""
    m = result.metrics
    lines = [f"# {config.loss} on {config.dataset}, noise {config.noise}", "",
             f"Clean test top-1 **{100 * m['top1_accuracy']:.2f}%**"
             + (f", top-5 {100 * m['top5_accuracy']:.2f}%" if "top5_accuracy" in m else "")
             + f"; selected epoch {result.best_epoch} by noisy-validation top-1 "
               f"({100 * m['val_noisy'].get('top1_accuracy', float('nan')):.2f}%)."
             + (f" Resumed after epoch {result.resumed_from - 1}." if result.resumed_from else ""), "",
             "## Data", "", *[f"- {n}" for n in result.split.notes], ""]
    sl = m["suspected_labels"]
    if "rankings" in sl:
        rows = [[name, f"{100 * q['precision_at_n']:.2f}", f"{q['auroc']:.4f}"] for name, q in sl["rankings"].items()]
        lines += ["## Suspected labels", "",
                  f"{sl['n_flipped']} of {sl['n_train']} training labels were flipped. Precision = recall of each "
                  f"ranking's top {sl['n_flipped']} (%), and AUROC for flipped vs kept; confidence from the "
                  f"{sl['confidence_from']}. Full list: `suspected_labels.csv`.", "",
                  markdown_table(["ranking", "precision = recall @ n", "AUROC"], rows)]
    lines += ["![training curves](curves.png)", "", "![confusion matrix](confusion_matrix.png)", ""]
    return "\n".join(lines)
