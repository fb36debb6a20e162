"""``rankguard demo``: BCE vs AUC loss vs AP loss on small scikit-learn tasks, tuned alike, side by side.

A recipe on the training engine (:func:`rankguard.training.fit`); per dataset of the registry
(:data:`rankguard.data.DATASETS`):

1. load the binary task, split it once into stratified train / validation / test parts (fixed
   by ``split_seed``) and standardise the features with the training mean and standard deviation;
2. **tune every loss alike on the validation split**: for each setting of the loss's grid
   (learning rate, and the margin for AUCLoss / APLoss) and each seed, train a small scorer
   (linear or one-hidden-layer MLP) on the same budget — the same epochs, batches
   (:class:`~rankguard.training.PositiveShareBatchSampler`), model and initial weights for every
   loss at a given seed — keeping the epoch with the best validation AP (``select_metric``);
   the setting with the highest mean validation AP over the seeds wins (the first in grid
   order on ties);
3. score the **test** split once per (dataset, loss, seed), with the chosen setting's models
   only, and compute :func:`rankguard.metrics.roc_auc` and :func:`rankguard.metrics.average_precision`.

It writes a run directory: ``config.json`` (written first), ``metrics.json`` (rewritten
atomically after every training run: the tuning trials with their validation scores, the chosen
settings, the test metrics), ``predictions.npz`` (test scores of every run, to recompute any
metric), ``report.md``, ``pr_curve.png`` and ``roc_curve.png``. A failing run is recorded with
its error and the demo continues with the next one.

Randomness: ``Generators(seed).torch`` draws the initial weights (:func:`~rankguard.training.seeded`)
and then the batches; ``split_seed`` draws the split (and the digits subsampling). No global
random state is read or written.

Library entry point: :func:`run_demo`; the CLI is a thin wrapper (:func:`register`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rankguard.progress import progress
from rankguard.runs import RunDir, atomic_write, markdown_table
from rankguard.stats import format_mean_std, mean_std
from rankguard.training import (FitResult, FitSettings, Generators, LossFn, OptimizerSpec,
                                PositiveShareBatchSampler, ScorerObjective, fit, ignore_index, seeded)

LOSS_NAMES: dict[str, str] = {"bce": "BCE", "auc": "AUCLoss", "ap": "APLoss"}

#: the validation metric that picks the epoch inside a run and the setting of the grid
SELECT_METRIC = "ap"


# --------------------------------------------------------------------------- configuration

def _floats(values: Any, name: str) -> tuple[float, ...]:
    out = tuple(float(v) for v in values)
    if not out or not all(np.isfinite(v) and v > 0 for v in out):
        raise ValueError(f"`{name}` must be a non-empty list of positive numbers, got {list(values)}")
    return out


@dataclass
class AUCLossSettings:
    """:class:`rankguard.losses.AUCLoss` settings; ``margins`` is the grid tuned on validation.

    Around LibAUC's margin 1.0 (AUCMLoss), halved and doubled.
    """
    surrogate: str = "squared_hinge"
    margins: tuple[float, ...] = (0.5, 1.0, 2.0)

    def __post_init__(self) -> None:
        self.margins = _floats(self.margins, "auc.margins")


@dataclass
class APLossSettings:
    """:class:`rankguard.losses.APLoss` (SOAP) settings; ``margins`` is the grid tuned on validation.

    Around margin 0.6, with gamma 0.1 on sigmoid scores, as in the Adversarial-AP code (Li, Tong,
    Yang, NeurIPS 2023; REFERENCES.md §2).
    """
    margins: tuple[float, ...] = (0.3, 0.6, 1.0)
    gamma: float = 0.1
    surrogate: str = "squared_hinge"

    def __post_init__(self) -> None:
        self.margins = _floats(self.margins, "ap.margins")


def _default_dataset_options() -> dict[str, dict[str, Any]]:
    return {"digits_imbalanced": {"positive_class": 8, "positive_rate": 0.05}}


@dataclass
class DemoConfig:
    """Everything one demo run depends on; saved as ``config.json`` and loadable with :meth:`from_dict`.

    ``lrs`` (Adam learning rates) and the losses' ``margins`` form each loss's tuning grid; every
    loss gets the same budget: ``epochs`` epochs of the same batches on the same model. Batches
    hold ``positives_per_batch`` positives out of ``batch_size`` (the Adversarial-AP code uses 64
    of 128; halved here for data sets of a few hundred rows).

    The learning-rate grid {0.01, 0.03, 0.1} is a shrunk and shifted form of {0.001, 0.003, 0.01,
    0.03}: with that grid, 30 epochs and 3 seeds the default demo took 2.5 minutes (2 minutes of
    CPU) on a shared 2-core machine; no loss strictly preferred 0.001 or 0.003 on validation (on breast cancer they only tied
    at validation AP 1.0), while on digits every loss chose the top edge 0.03. Three points keep the
    default demo near 2 minutes. ``datasets`` are names in
    :data:`rankguard.data.DATASETS` (binary tabular tasks); ``dataset_options`` go to their loaders.
    """
    datasets: tuple[str, ...] = ("breast_cancer", "digits_imbalanced")
    losses: tuple[str, ...] = ("bce", "auc", "ap")
    seeds: tuple[int, ...] = (0, 1, 2)
    model: str = "mlp"              # "linear" or "mlp" (one hidden ReLU layer)
    hidden: int = 32
    epochs: int = 30
    lrs: tuple[float, ...] = (1e-2, 3e-2, 1e-1)   # Adam; tuned on validation (see the docstring)
    weight_decay: float = 1e-4
    batch_size: int = 64
    positives_per_batch: int = 32
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    split_seed: int = 0             # fixes the train/validation/test split (and the digits subsampling)
    dataset_options: dict[str, dict[str, Any]] = field(default_factory=_default_dataset_options)
    num_threads: int = 1            # torch threads while training; see run_demo
    auc: AUCLossSettings = field(default_factory=AUCLossSettings)
    ap: APLossSettings = field(default_factory=APLossSettings)

    def __post_init__(self) -> None:
        from rankguard.data import DATASETS

        self.datasets, self.losses = tuple(self.datasets), tuple(self.losses)
        self.seeds, self.lrs = tuple(int(s) for s in self.seeds), _floats(self.lrs, "lrs")
        tabular = [n for n in DATASETS.names() if DATASETS.get(n).kind == "tabular"]
        unknown = [d for d in self.datasets if d not in tabular]
        if unknown or not self.datasets or len(set(self.datasets)) < len(self.datasets):
            raise ValueError(f"`datasets` must be distinct tabular datasets of the registry ({', '.join(tabular)}), "
                             f"got {list(self.datasets)}")
        unknown = [name for name in self.losses if name not in LOSS_NAMES]
        if unknown or not self.losses or len(set(self.losses)) < len(self.losses):
            raise ValueError(f"`losses` must be a non-empty subset of {list(LOSS_NAMES)}, got {list(self.losses)}")
        if not self.seeds or len(set(self.seeds)) < len(self.seeds):
            raise ValueError(f"`seeds` must hold at least one seed, all distinct; got {list(self.seeds)}")
        if self.model not in ("linear", "mlp"):
            raise ValueError(f"`model` must be 'linear' or 'mlp', got {self.model!r}")
        if self.num_threads < 1:
            raise ValueError(f"`num_threads` must be >= 1, got {self.num_threads}")
        if self.epochs < 1:
            raise ValueError(f"`epochs` must be >= 1, got {self.epochs}")
        for name in ("val_fraction", "test_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"`{name}` must lie in (0, 1), got {getattr(self, name)}")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(f"`val_fraction` + `test_fraction` must be < 1 (the rest trains), got "
                             f"{self.val_fraction} + {self.test_fraction}")
        for name, options in self.dataset_options.items():
            allowed = set(DATASETS.get(name).options) - {"rng"} if name in DATASETS else set()
            if set(options) - allowed:
                raise ValueError(f"`dataset_options[{name!r}]` may set {sorted(allowed)}, got {sorted(options)} "
                                 f"(the rng comes from `split_seed`)")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DemoConfig":
        """Rebuild a config from ``config.json``'s content."""
        d = dict(d)
        d["auc"] = AUCLossSettings(**d.get("auc", {}))
        d["ap"] = APLossSettings(**d.get("ap", {}))
        return cls(**d)

    @classmethod
    def quick(cls, **overrides: Any) -> "DemoConfig":
        """A tiny configuration for smoke tests: 2 seeds, 2 epochs, a narrow MLP, a one-point grid."""
        base: dict[str, Any] = dict(seeds=(0, 1), epochs=2, hidden=8, lrs=(1e-2,),
                                    auc=AUCLossSettings(margins=(1.0,)), ap=APLossSettings(margins=(0.6,)))
        base.update(overrides)
        return cls(**base)

    def grid(self, loss: str) -> list[dict[str, float]]:
        """The settings tuned for ``loss``, in the order ties are broken: lr outer, margin inner.

        >>> DemoConfig(lrs=(0.01, 0.1)).grid("bce")
        [{'lr': 0.01}, {'lr': 0.1}]
        """
        margins = {"auc": self.auc.margins, "ap": self.ap.margins}.get(loss)
        if margins is None:
            return [{"lr": lr} for lr in self.lrs]
        return [{"lr": lr, "margin": m} for lr in self.lrs for m in margins]


# --------------------------------------------------------------------------- data

@dataclass
class Task:
    """A standardised binary task: ``x_* [n, d]`` float32, ``y_* [n]`` float32 in {0, 1}."""
    name: str
    description: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"description": self.description, "n_features": int(self.x_train.shape[1])}
        for part in ("train", "val", "test"):
            y = getattr(self, f"y_{part}")
            out.update({f"n_{part}": int(y.numel()), f"{part}_positives": int(y.sum())})
        out["test_positive_rate"] = out["test_positives"] / out["n_test"]
        return out


def stratified_split(labels: np.ndarray, val_fraction: float, test_fraction: float, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted train, validation and test row indices, stratified by class.

    Each class c of ``n_c`` rows gives ``round(test_fraction * n_c)`` test rows and
    ``round(val_fraction * n_c)`` validation rows, drawn from one permutation by ``rng``; the
    rest train.

    >>> tr, va, te = stratified_split(np.array([1] * 5 + [0] * 10), 0.2, 0.2, np.random.default_rng(0))
    >>> len(tr), len(va), len(te), int(np.isin(va, range(5)).sum())
    (9, 3, 3, 1)
    """
    labels = np.asarray(labels)
    val, test = [], []
    for c in np.unique(labels):  # two classes: a loop over classes, not samples
        members = rng.permutation(np.flatnonzero(labels == c))
        n_test, n_val = round(test_fraction * members.size), round(val_fraction * members.size)
        test.append(members[:n_test])
        val.append(members[n_test:n_test + n_val])
    val_idx, test_idx = np.sort(np.concatenate(val)), np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(labels.size), np.r_[val_idx, test_idx]), val_idx, test_idx


def load_task(name: str, cfg: DemoConfig) -> Task:
    """Load registry dataset ``name``, split it (stratified, ``cfg.split_seed``), standardise on train."""
    from rankguard.data import DATASETS, load

    rng = np.random.default_rng(cfg.split_seed)
    options = dict(cfg.dataset_options.get(name, {}))
    if "rng" in DATASETS.get(name).options:
        options["rng"] = rng  # the subsampling draws first, then the split, from one generator
    data = load(name, **options)
    if not np.isin(data.y, (0, 1)).all() or np.unique(data.y).size != 2:
        raise ValueError(f"dataset {name!r} has labels {np.unique(data.y)[:10].tolist()}; the demo needs a "
                         f"binary task with labels 0 and 1")
    train, val, test = stratified_split(data.y, cfg.val_fraction, cfg.test_fraction, rng)
    mean, std = data.x[train].mean(0), data.x[train].std(0)
    std[std == 0] = 1.0  # constant pixels (digits' borders) stay zero instead of becoming NaN
    x = (data.x - mean) / std

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.float32)
    return Task(name, data.description, t(x[train]), t(data.y[train]), t(x[val]), t(data.y[val]),
                t(x[test]), t(data.y[test]))


# --------------------------------------------------------------------------- model, losses, one run

def make_model(cfg: DemoConfig, n_features: int, generator: torch.Generator) -> nn.Module:
    """A linear scorer or a one-hidden-layer ReLU MLP with one output (a logit), initialised from ``generator``.

    Built with :func:`rankguard.training.seeded`, so constructing it draws nothing from torch's global generator.

    >>> g = lambda: torch.Generator().manual_seed(0)
    >>> a, b = make_model(DemoConfig(), 4, g()), make_model(DemoConfig(), 4, g())
    >>> all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    True
    """
    if cfg.model == "linear":
        return seeded(lambda: nn.Linear(n_features, 1), generator)
    return seeded(lambda: nn.Sequential(nn.Linear(n_features, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 1)),
                  generator)


def make_loss(name: str, cfg: DemoConfig, num_samples: int, margin: float | None = None) -> LossFn:
    """The loss ``name`` in the engine's ``(scores, labels, index)`` form; all take raw logits.

    ``margin`` is the grid point being tried (AUCLoss, APLoss); BCE has none.
    """
    if name == "bce":
        return ignore_index(F.binary_cross_entropy_with_logits)
    if margin is None:
        raise ValueError(f"loss {name!r} needs a `margin`")
    if name == "auc":
        from rankguard.losses import AUCLoss  # imported here: a missing loss fails its runs only
        return ignore_index(AUCLoss(surrogate=cfg.auc.surrogate, margin=margin))
    if name == "ap":
        from rankguard.losses import APLoss
        return APLoss(num_samples=num_samples, margin=margin, gamma=cfg.ap.gamma, surrogate=cfg.ap.surrogate)
    raise ValueError(f"`loss` must be one of {list(LOSS_NAMES)}, got {name!r}")


def _scores(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(x)[:, 0].double().numpy()


def train_run(task: Task, loss_name: str, setting: dict[str, float], seed: int, cfg: DemoConfig
              ) -> tuple[nn.Module, FitResult]:
    """Train one scorer on ``task``'s train split; it holds its best epoch by validation AP afterwards.

    ``Generators(seed).torch`` draws the initial weights and then the batches, so at a given seed
    every loss and every setting starts from the same weights and sees the same batches. The test
    split is not touched.
    """
    from rankguard.metrics import average_precision, roc_auc

    gens = Generators(seed)
    model = make_model(cfg, task.x_train.shape[1], gens.torch)
    loss_fn = make_loss(loss_name, cfg, task.y_train.numel(), setting.get("margin"))
    sampler = PositiveShareBatchSampler(task.y_train, cfg.batch_size, cfg.positives_per_batch, generator=gens.torch)
    objective = ScorerObjective(task.x_train, task.y_train, loss_fn, sampler)
    y_val = task.y_val.numpy()

    def validate(m: nn.Module) -> dict[str, float]:
        s = _scores(m, task.x_val)
        return {"ap": average_precision(s, y_val), "auc": roc_auc(s, y_val)}

    settings = FitSettings(epochs=cfg.epochs, select_metric=SELECT_METRIC,
                           desc=f"{task.name}/{LOSS_NAMES[loss_name]}/{_setting_text(setting)}/seed {seed}",
                           divergence_hint=f"lower the learning rate (now {setting['lr']:g})")
    result = fit(model, objective, settings,
                 optimizers={"model": OptimizerSpec(model.parameters(), "adam", setting["lr"], cfg.weight_decay)},
                 validate=validate, generators=gens, log=None)
    return model, result


def _setting_text(setting: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in setting.items())


def choose_setting(trials: list[dict[str, Any]]) -> int | None:
    """Index of the trial with the highest ``val_ap_mean`` among those where every seed trained.

    Ties go to the first in grid order; ``None`` when no trial completed.

    >>> choose_setting([{"val_ap_mean": 0.5, "errors": {}}, {"val_ap_mean": 0.7, "errors": {}},
    ...                 {"val_ap_mean": 0.9, "errors": {"0": "boom"}}, {"val_ap_mean": 0.7, "errors": {}}])
    1
    """
    best = None
    for i, t in enumerate(trials):
        if t["errors"] or t["val_ap_mean"] is None:
            continue
        if best is None or t["val_ap_mean"] > trials[best]["val_ap_mean"]:
            best = i
    return best


# --------------------------------------------------------------------------- results

def aggregate(runs: list[dict[str, Any]], cfg: DemoConfig) -> dict[str, dict[str, dict[str, Any]]]:
    """Per dataset and loss: mean and sample std (ddof = 1; ``None`` with fewer than 2 seeds) of test AUC and AP."""
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for d in cfg.datasets:
        for loss in cfg.losses:
            mine = [r for r in runs if r["dataset"] == d and r["loss"] == loss]
            if not mine:
                continue
            ok = [r for r in mine if "error" not in r]
            entry: dict[str, Any] = {"n_ok": len(ok), "n_failed": len(mine) - len(ok)}
            for metric in ("auc", "ap"):
                entry[f"{metric}_mean"], entry[f"{metric}_std"] = mean_std(r[metric] for r in ok)
            summary.setdefault(d, {})[loss] = entry
    return summary


def format_table(metrics: dict[str, Any]) -> str:
    """Markdown table: one row per dataset and loss with the tuned setting, validation AP and test
    AUC / AP as mean ± sample std over seeds; the best test mean per dataset is bold."""
    rows = []
    for d, per_loss in metrics["summary"].items():
        best = {m: max((e[f"{m}_mean"] for e in per_loss.values() if e[f"{m}_mean"] is not None), default=None)
                for m in ("auc", "ap")}
        rate = metrics["datasets"].get(d, {}).get("test_positive_rate")
        for loss, e in per_loss.items():
            ok = [r for r in metrics["runs"] if r["dataset"] == d and r["loss"] == loss and "error" not in r]
            tuning = metrics["tuning"].get(d, {}).get(loss, {})
            chosen = _setting_text(tuning["chosen"]) if tuning.get("chosen") else "none"
            if tuning.get("n_tied", 1) > 1:  # e.g. validation AP 1.0 everywhere: the grid order decided
                chosen += f" (first of {tuning['n_tied']} tied)"
            cells = [chosen, format_mean_std(r["val_ap"] for r in ok) if ok else "failed"]
            for m in ("auc", "ap"):
                if e[f"{m}_mean"] is None:
                    cells.append("failed")
                    continue
                text = format_mean_std(r[m] for r in ok)
                cells.append(f"**{text}**" if e[f"{m}_mean"] == best[m] else text)
            seeds = f"{e['n_ok']}" + (f" ({e['n_failed']} failed)" if e["n_failed"] else "")
            rows.append([d, "" if rate is None else f"{rate:.1%}", LOSS_NAMES[loss], *cells, seeds])
    return markdown_table(["dataset", "test positives", "loss", "tuned on validation", "val AP",
                           "test AUC", "test AP", "seeds"], rows)


def _grid_text(cfg: DemoConfig) -> str:
    parts = [f"lr ∈ {{{', '.join(f'{v:g}' for v in cfg.lrs)}}} for every loss"]
    if "auc" in cfg.losses:
        parts.append(f"AUCLoss margin ∈ {{{', '.join(f'{v:g}' for v in cfg.auc.margins)}}}")
    if "ap" in cfg.losses:
        parts.append(f"APLoss margin ∈ {{{', '.join(f'{v:g}' for v in cfg.ap.margins)}}}")
    return "; ".join(parts)


def _report(cfg: DemoConfig, table: str, metrics: dict[str, Any], plots: list[str]) -> str:
    runs, datasets = metrics["runs"], metrics["datasets"]
    failed = [r for r in runs if "error" in r]
    trial_errors = [(d, loss, t, seed, err) for d, per_loss in metrics["tuning"].items()
                    for loss, tuning in per_loss.items() for t in tuning["trials"]
                    for seed, err in t["errors"].items()]
    split = f"{1 - cfg.val_fraction - cfg.test_fraction:.0%}/{cfg.val_fraction:.0%}/{cfg.test_fraction:.0%}"
    lines = [
        "# rankguard demo: BCE vs AUC loss vs AP loss, tuned alike on validation", "",
        "## What was run", "",
        *[f"- **{d}**: {info['description']}; {info['n_train']} train / {info['n_val']} validation / "
          f"{info['n_test']} test rows ({info['val_positives']} validation and {info['test_positives']} test "
          f"positives), {info['n_features']} standardised features."
          for d, info in datasets.items()],
        f"- Stratified {split} train/validation/test split fixed by split seed {cfg.split_seed}; features "
        f"standardised with the training mean and std.",
        f"- The same budget for every loss: {'linear scorer' if cfg.model == 'linear' else f'MLP ({cfg.hidden} hidden ReLU units)'}, "
        f"Adam with weight decay {cfg.weight_decay:g}, {cfg.epochs} epochs of batches of {cfg.batch_size} with "
        f"{cfg.positives_per_batch} positives; at a given seed every loss and setting starts from the same "
        f"weights and sees the same batches. Each run keeps its epoch with the best validation AP.",
        f"- Losses: BCE (binary cross-entropy on logits); AUCLoss ({cfg.auc.surrogate}); APLoss (SOAP, "
        f"{cfg.ap.surrogate}, gamma {cfg.ap.gamma:g}).",
        f"- Tuning grid: {_grid_text(cfg)}. The chosen setting of each (dataset, loss) has the highest "
        f"mean validation AP over seeds {', '.join(map(str, cfg.seeds))} (first in grid order on ties); "
        f"the test split is scored once per seed, with the chosen setting only.",
        f"- Seeds: {', '.join(map(str, cfg.seeds))}. Wall time {metrics['seconds']:.1f} s.", "",
        "## Test AUC and AP (mean ± sample std (ddof=1) over seeds)", "", table,
        "How to read it: *tuned on validation* is the setting chosen on the validation split (\"first "
        "of n tied\": n settings reached the same mean validation AP and the grid order decided); *val "
        "AP* is its mean validation AP (the selection criterion, so optimistic). Higher is better; bold "
        "marks the best test mean per dataset (differences within one std are not meaningful), and a "
        "random ranking scores AUC 0.5 and AP equal to the test positive rate. The split is the same "
        "for every seed, so the std measures training randomness (initial weights, batches), not "
        "test-set sampling.", "",
    ]
    if failed:
        lines += ["## Failed runs", "",
                  *[f"- {r['dataset']} / {LOSS_NAMES[r['loss']]} / seed {r['seed']}: {r['error']}" for r in failed], ""]
    if trial_errors:
        lines += ["## Failed tuning runs (their setting could not be chosen)", "",
                  *[f"- {d} / {LOSS_NAMES[loss]} / {_setting_text(t['setting'])} / seed {seed}: {err}"
                    for d, loss, t, seed, err in trial_errors], ""]
    if plots:
        lines += [f"## Curves (seed {cfg.seeds[0]})", "", *[f"![{p}]({p})" for p in plots], ""]
    return "\n".join(lines)


@dataclass
class DemoResult:
    """What :func:`run_demo` produced: the run directory, the metrics dict, the Markdown table."""
    out_dir: Path
    metrics: dict[str, Any]
    table: str

    @property
    def n_failed(self) -> int:
        return sum("error" in r for r in self.metrics["runs"])


def run_demo(cfg: DemoConfig, out_dir: str | os.PathLike, mode: str = "new") -> DemoResult:
    """Tune and train every (dataset, loss) of ``cfg``, test the chosen setting per seed, write the run directory.

    ``mode`` is :meth:`rankguard.runs.RunDir.for_run`'s: ``"new"`` refuses a folder that holds
    files, ``"overwrite"`` replaces an earlier run in it.

    Returns a :class:`DemoResult`. ``metrics["tuning"][dataset][loss]`` holds the grid's trials
    (``setting``, per-seed ``val_ap`` and ``best_epoch``, ``val_ap_mean``, ``errors``) and the
    ``chosen`` setting; ``metrics["runs"]`` one record per (dataset, loss, seed) of the chosen
    setting with ``lr`` (and ``margin``), ``best_epoch``, ``val_ap``, test ``auc`` and ``ap``,
    ``train_loss`` (per epoch), or ``error`` when it failed (the other runs still happen);
    ``metrics["summary"][dataset][loss]`` the aggregates.

    >>> import tempfile
    >>> cfg = DemoConfig.quick(datasets=("breast_cancer",), losses=("bce",), seeds=(0,), epochs=1)
    >>> res = run_demo(cfg, tempfile.mkdtemp())
    >>> sorted(p.name for p in res.out_dir.iterdir())[:3], res.n_failed
    (['config.json', 'curves.png', 'metrics.json'], 0)
    """
    start = time.perf_counter()
    run_dir = RunDir.for_run(out_dir, mode)
    run_dir.save_json("config.json", cfg)  # first, so even a crash leaves what was asked for
    # Models and batches this small run fastest on one thread: with more, per-op thread start-up
    # dominates, and on a busy 2-core machine it was 20-40x slower. Restored on exit.
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.num_threads)
    try:
        return _run_demo(cfg, run_dir, start)
    finally:
        torch.set_num_threads(threads)


def _run_demo(cfg: DemoConfig, run_dir: RunDir, start: float) -> DemoResult:
    metrics: dict[str, Any] = {"status": "running", "select_metric": f"validation {SELECT_METRIC.upper()}",
                               "datasets": {}, "tuning": {}, "runs": [], "summary": {},
                               "environment": {"python": sys.version.split()[0], "torch": torch.__version__,
                                               "numpy": np.__version__}}
    predictions: dict[str, np.ndarray] = {}
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    total = sum(len(cfg.grid(loss)) for loss in cfg.losses) * len(cfg.seeds) * len(cfg.datasets)
    tick = progress(range(total), desc="demo", total=total, leave=True)

    def save() -> None:
        metrics["summary"] = aggregate(metrics["runs"], cfg)
        run_dir.save_json("metrics.json", metrics)

    for d in cfg.datasets:
        try:
            task: Task | None = load_task(d, cfg)
        except Exception as exc:  # every run of d reports it; the other datasets still run
            task, load_error = None, f"loading {d} failed: {type(exc).__name__}: {exc}"
        else:
            metrics["datasets"][d] = task.summary()
            predictions[f"{d}/labels"] = task.y_test.numpy().astype(np.int8)
        for loss in cfg.losses:
            if task is None:
                for seed in cfg.seeds:
                    metrics["runs"].append({"dataset": d, "loss": loss, "seed": seed, "error": f"RuntimeError: {load_error}"})
                    _skip(tick, len(cfg.grid(loss)))
                save()
                continue
            models = _tune(task, loss, cfg, metrics, tick, save)
            _test(task, loss, models, cfg, metrics, predictions, curves)
            save()
            atomic_write(run_dir.file("predictions.npz"), lambda fh: np.savez(fh, **predictions))
    _skip(tick, None)

    plots = _plot(curves, run_dir, metrics, cfg.seeds[0])
    plots += _plot_training(metrics, run_dir, cfg.seeds[0])
    metrics["status"] = "complete"
    metrics["seconds"] = round(time.perf_counter() - start, 2)
    save()
    table = format_table(metrics)
    run_dir.save_text("report.md", _report(cfg, table, metrics, plots))
    return DemoResult(run_dir.path, metrics, table)


def _skip(tick: Iterator[int], n: int | None) -> None:
    """Advance the progress bar by ``n`` runs (by all that are left with ``None``)."""
    for done, _ in enumerate(tick, start=1):
        if done == n:
            return


def _tune(task: Task, loss: str, cfg: DemoConfig, metrics: dict[str, Any], tick: Iterator[int],
          save: Callable[[], None]) -> dict[int, nn.Module] | str:
    """Train every setting of ``cfg.grid(loss)`` at every seed; record the trials and the chosen setting.

    Returns the chosen setting's trained models by seed (only the best setting so far is kept in
    memory), or the reason no setting could be chosen.
    """
    trials: list[dict[str, Any]] = []
    tuning = {"grid": cfg.grid(loss), "seeds": list(cfg.seeds), "trials": trials, "chosen": None}
    metrics["tuning"].setdefault(task.name, {})[loss] = tuning
    kept: dict[int, nn.Module] = {}
    for setting in cfg.grid(loss):
        trial: dict[str, Any] = {"setting": setting, "val_ap": {}, "best_epoch": {}, "train_loss": {}, "val_ap_curve": {},
                                 "seconds": {}, "errors": {}, "val_ap_mean": None}
        trials.append(trial)
        models: dict[int, nn.Module] = {}
        for seed in cfg.seeds:
            t0 = time.perf_counter()
            try:
                model, result = train_run(task, loss, setting, seed, cfg)
            except Exception as exc:  # one broken run must not lose the others
                trial["errors"][str(seed)] = f"{type(exc).__name__}: {exc}"
                print(f"rankguard demo: {task.name} / {LOSS_NAMES[loss]} / {_setting_text(setting)} / seed {seed} "
                      f"failed: {trial['errors'][str(seed)]}", file=sys.stderr)
            else:
                models[seed] = model
                trial["val_ap"][str(seed)] = result.best_value
                trial["best_epoch"][str(seed)] = result.best_epoch
                trial["train_loss"][str(seed)] = [r["loss"] for r in result.history]
                trial["val_ap_curve"][str(seed)] = [r["val"][SELECT_METRIC] for r in result.history]
            trial["seconds"][str(seed)] = round(time.perf_counter() - t0, 3)
            next(tick, None)
            save()
        trial["val_ap_mean"] = mean_std(trial["val_ap"].values())[0]
        if choose_setting(trials) == len(trials) - 1:
            kept = models  # the new leader; the previous leader's models are dropped
    chosen = choose_setting(trials)
    if chosen is None:
        first = next(iter(trials[0]["errors"].values()), "no error recorded")
        return f"no setting of the tuning grid trained on every seed (first error: {first})"
    best = trials[chosen]["val_ap_mean"]
    tuning.update(chosen=trials[chosen]["setting"], chosen_val_ap_mean=best,
                  n_tied=sum(not t["errors"] and t["val_ap_mean"] == best for t in trials))
    return kept


def _test(task: Task, loss: str, models: dict[int, nn.Module] | str, cfg: DemoConfig, metrics: dict[str, Any],
          predictions: dict[str, np.ndarray], curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]) -> None:
    """Score the test split once per seed with the chosen setting's models; one run record per seed."""
    from rankguard.metrics import average_precision, roc_auc

    tuning = metrics["tuning"][task.name][loss]
    y_test = task.y_test.numpy()
    for seed in cfg.seeds:
        record: dict[str, Any] = {"dataset": task.name, "loss": loss, "seed": seed}
        try:
            if isinstance(models, str):
                raise RuntimeError(models)
            trial = next(t for t in tuning["trials"] if t["setting"] == tuning["chosen"])
            scores = _scores(models[seed], task.x_test)
            record.update(tuning["chosen"])
            record.update(best_epoch=trial["best_epoch"][str(seed)], val_ap=trial["val_ap"][str(seed)],
                          auc=roc_auc(scores, y_test), ap=average_precision(scores, y_test),
                          train_loss=trial["train_loss"][str(seed)], seconds=trial["seconds"][str(seed)])
            predictions[f"{task.name}/{loss}/seed{seed}"] = scores
            if seed == cfg.seeds[0]:
                curves.setdefault(task.name, {})[LOSS_NAMES[loss]] = (scores, y_test)
        except Exception as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
            record["traceback"] = traceback.format_exc(limit=-3)
            print(f"rankguard demo: {task.name} / {LOSS_NAMES[loss]} / seed {seed} failed: {record['error']}",
                  file=sys.stderr)
        metrics["runs"].append(record)


def _plot(curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], run_dir: RunDir,
          metrics: dict[str, Any], seed: int) -> list[str]:
    """Write pr_curve.png and roc_curve.png; a plotting error is recorded, not raised."""
    if not curves:
        return []
    from rankguard.metrics import average_precision, roc_auc

    written = []
    for name, plot_name, metric, label in [("pr_curve.png", "plot_pr_curves", average_precision, "AP"),
                                           ("roc_curve.png", "plot_roc_curves", roc_auc, "AUC")]:
        labels = {d: {loss: f"{label} {metric(s, y):.3f}" for loss, (s, y) in lines.items()}
                  for d, lines in curves.items()}
        try:
            import rankguard.plots  # inside the try: a broken plotting module costs the plots only
            plot = getattr(rankguard.plots, plot_name)
            plot(curves, run_dir.file(name), title=f"{'Precision-recall' if label == 'AP' else 'ROC'} "
                 f"curves on the test split (seed {seed}, settings tuned on validation)", metric_labels=labels)
            written.append(name)
        except Exception as exc:
            metrics.setdefault("plot_errors", {})[name] = f"{type(exc).__name__}: {exc}"
    return written


def _plot_training(metrics: dict[str, Any], run_dir: RunDir, seed: int) -> list[str]:
    """Write curves.png: training loss and validation AP per epoch of each chosen setting (first seed)."""
    histories = {}
    for d, per_loss in metrics["tuning"].items():
        for loss, tuning in per_loss.items():
            trial = next((t for t in tuning["trials"] if t["setting"] == tuning["chosen"]), None)
            if trial is None or str(seed) not in trial["train_loss"]:
                continue
            histories[f"{d} / {LOSS_NAMES[loss]}"] = [
                {"epoch": e + 1, "loss": loss_value, "val": {SELECT_METRIC: val}}
                for e, (loss_value, val) in enumerate(zip(trial["train_loss"][str(seed)], trial["val_ap_curve"][str(seed)]))]
    if not histories:
        return []
    try:
        from rankguard.plots import plot_training_curves
        plot_training_curves(histories, run_dir.file("curves.png"), SELECT_METRIC,
                             title=f"Training curves of the chosen settings (seed {seed})")
    except Exception as exc:
        metrics.setdefault("plot_errors", {})["curves.png"] = f"{type(exc).__name__}: {exc}"
        return []
    return ["curves.png"]


# --------------------------------------------------------------------------- command line

def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _csv_floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in _csv(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` sub-command to the ``rankguard`` parser."""
    d = DemoConfig.__dataclass_fields__
    p = sub.add_parser(
        "demo", help="tune BCE, AUC loss and AP loss alike on small sklearn tasks and compare test AUC / AP",
        description="Train a small scorer with BCE, AUCLoss and APLoss on scikit-learn's breast-cancer "
                    "data and an imbalanced digits task (digit 8 vs rest, 5% positives). Each loss gets "
                    "its learning rate (and margin) tuned on a validation split with the same budget; "
                    "print test AUC / AP (mean ± std over seeds) and write a run directory with "
                    "config.json, metrics.json, predictions.npz, report.md, pr_curve.png and roc_curve.png.")
    p.add_argument("--seeds", type=int, default=None, metavar="N", help="number of seeds 0..N-1 (default 3)")
    p.add_argument("--epochs", type=int, default=None, help=f"training epochs per run (default {d['epochs'].default})")
    p.add_argument("--datasets", type=_csv, default=None,
                   help="comma-separated tabular datasets of the registry (default: breast_cancer,digits_imbalanced)")
    p.add_argument("--losses", type=_csv, default=None,
                   help=f"comma-separated subset of {','.join(LOSS_NAMES)} (default: all)")
    p.add_argument("--model", choices=("linear", "mlp"), default=None, help="scorer (default mlp)")
    p.add_argument("--lr", type=_csv_floats, default=None, metavar="LR[,LR...]",
                   help="Adam learning rate(s) tuned on validation (default 0.01,0.03,0.1)")
    p.add_argument("--out", default=None, metavar="DIR", help="run directory (default runs/demo-<timestamp>)")
    p.add_argument("--overwrite", action="store_true", help="replace the earlier run in --out")
    p.add_argument("--quick", action="store_true",
                   help="tiny settings for a smoke test (2 seeds, 2 epochs, a one-point grid)")
    p.set_defaults(func=run, _parser=p)


def config_from_args(args: argparse.Namespace) -> DemoConfig:
    """Build the :class:`DemoConfig` the command-line options ask for (``--quick`` first, then overrides)."""
    overrides: dict[str, Any] = {}
    if args.seeds is not None:
        if args.seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
        overrides["seeds"] = tuple(range(args.seeds))
    for name in ("epochs", "datasets", "losses", "model"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.lr is not None:
        overrides["lrs"] = args.lr
    return DemoConfig.quick(**overrides) if args.quick else DemoConfig(**overrides)


def _default_out() -> Path:
    base = Path("runs") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    out = Path(args.out) if args.out else _default_out()
    result = run_demo(cfg, out, mode="overwrite" if args.overwrite else "new")
    print(result.table, end="")
    print(f"\nrun directory: {result.out_dir}")
    if result.n_failed:
        print(f"rankguard demo: {result.n_failed} run(s) failed; see {result.out_dir / 'metrics.json'}",
              file=sys.stderr)
        return 1
    return 0
