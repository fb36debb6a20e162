"""``rankguard demo``: BCE vs AUC loss vs AP loss on small scikit-learn tasks, side by side.

What it does, in one pass per (dataset, loss, seed):

1. load a binary task shipped with scikit-learn, split it once (stratified, ``split_seed``) and
   standardise the features with the training mean and standard deviation;
2. train a small scorer (linear or one-hidden-layer MLP) with :func:`rankguard.training.train_scorer`,
   on batches from :class:`~rankguard.training.PositiveShareBatchSampler` (the same batches for
   every loss, so only the loss differs; the seed fixes both the initial weights and the batches);
3. score the test split and compute :func:`rankguard.metrics.roc_auc` and
   :func:`rankguard.metrics.average_precision`.

Then it writes a run directory: ``config.json`` (written first), ``metrics.json`` (rewritten
atomically after every run), ``predictions.npz`` (test scores of every run, to recompute any
metric), ``report.md``, ``pr_curve.png`` and ``roc_curve.png``. A failing run is recorded with
its error and the demo continues with the next one.

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
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rankguard.progress import progress
from rankguard.runs import RunDir, atomic_write, markdown_table
from rankguard.seeding import make_generators
from rankguard.training import LossFn, PositiveShareBatchSampler, ignore_index, train_scorer

LOSS_NAMES: dict[str, str] = {"bce": "BCE", "auc": "AUCLoss", "ap": "APLoss"}


# --------------------------------------------------------------------------- configuration

@dataclass
class AUCLossSettings:
    """Settings of :class:`rankguard.losses.AUCLoss` (square-hinge pairwise surrogate, margin 1)."""
    surrogate: str = "squared_hinge"
    margin: float = 1.0


@dataclass
class APLossSettings:
    """Settings of :class:`rankguard.losses.APLoss` (SOAP): margin 0.6 and gamma 0.1 on sigmoid
    scores, as in the Adversarial-AP code (Li, Tong, Yang, NeurIPS 2023; REFERENCES.md §2)."""
    margin: float = 0.6
    gamma: float = 0.1
    surrogate: str = "squared_hinge"


@dataclass
class DemoConfig:
    """Everything one demo run depends on; saved as ``config.json`` and loadable with :meth:`from_dict`.

    Batches hold ``positives_per_batch`` positives out of ``batch_size`` (the Adversarial-AP
    code uses 64 of 128; halved here for data sets of a few hundred rows).
    """
    datasets: tuple[str, ...] = ("breast_cancer", "digits_imbalanced")
    losses: tuple[str, ...] = ("bce", "auc", "ap")
    seeds: tuple[int, ...] = (0, 1, 2)
    model: str = "mlp"              # "linear" or "mlp" (one hidden ReLU layer)
    hidden: int = 32
    epochs: int = 30
    lr: float = 1e-2                # Adam
    weight_decay: float = 1e-4
    batch_size: int = 64
    positives_per_batch: int = 32
    test_fraction: float = 0.3
    split_seed: int = 0             # fixes the train/test split (and the digits subsampling)
    digits_positive_class: int = 8
    digits_positive_rate: float = 0.05
    num_threads: int = 1            # torch threads while training; see run_demo
    auc: AUCLossSettings = field(default_factory=AUCLossSettings)
    ap: APLossSettings = field(default_factory=APLossSettings)

    def __post_init__(self) -> None:
        self.datasets, self.losses, self.seeds = tuple(self.datasets), tuple(self.losses), tuple(self.seeds)
        unknown = [d for d in self.datasets if d not in DATASETS]
        if unknown or not self.datasets:
            raise ValueError(f"`datasets` must be a non-empty subset of {sorted(DATASETS)}, got {list(self.datasets)}")
        unknown = [name for name in self.losses if name not in LOSS_NAMES]
        if unknown or not self.losses:
            raise ValueError(f"`losses` must be a non-empty subset of {list(LOSS_NAMES)}, got {list(self.losses)}")
        if not self.seeds:
            raise ValueError("`seeds` must hold at least one seed")
        if self.model not in ("linear", "mlp"):
            raise ValueError(f"`model` must be 'linear' or 'mlp', got {self.model!r}")
        if self.num_threads < 1:
            raise ValueError(f"`num_threads` must be >= 1, got {self.num_threads}")
        if self.epochs < 1:
            raise ValueError(f"`epochs` must be >= 1, got {self.epochs}")
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"`test_fraction` must lie in (0, 1), got {self.test_fraction}")
        if not 0 < self.digits_positive_rate < 1:
            raise ValueError(f"`digits_positive_rate` must lie in (0, 1), got {self.digits_positive_rate}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DemoConfig":
        """Rebuild a config from ``config.json``'s content."""
        d = dict(d)
        d["auc"] = AUCLossSettings(**d.get("auc", {}))
        d["ap"] = APLossSettings(**d.get("ap", {}))
        return cls(**d)

    @classmethod
    def quick(cls, **overrides: Any) -> "DemoConfig":
        """A tiny configuration for smoke tests: 2 seeds, 2 epochs, a narrow MLP."""
        base: dict[str, Any] = dict(seeds=(0, 1), epochs=2, hidden=8)
        base.update(overrides)
        return cls(**base)


# --------------------------------------------------------------------------- data

@dataclass
class Task:
    """A standardised binary task: ``x_* [n, d]`` float32, ``y_* [n]`` float32 in {0, 1}."""
    name: str
    description: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def summary(self) -> dict[str, Any]:
        n_pos = int(self.y_test.sum())
        return {"description": self.description, "n_features": int(self.x_train.shape[1]),
                "n_train": int(self.y_train.numel()), "train_positives": int(self.y_train.sum()),
                "n_test": int(self.y_test.numel()), "test_positives": n_pos,
                "test_positive_rate": n_pos / int(self.y_test.numel())}


def _breast_cancer(cfg: DemoConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    from sklearn.datasets import load_breast_cancer
    data = load_breast_cancer()
    # scikit-learn codes malignant as 0; the class of interest (positive) is malignant
    return data.data, (data.target == 0), "Wisconsin breast cancer, malignant (positive) vs benign"


def _digits_imbalanced(cfg: DemoConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    from sklearn.datasets import load_digits
    data = load_digits()
    y = data.target == cfg.digits_positive_class
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    rate = cfg.digits_positive_rate
    keep_pos = min(pos.size, round(rate / (1 - rate) * neg.size))
    keep = np.sort(np.r_[rng.choice(pos, size=keep_pos, replace=False), neg])
    return (data.data[keep], y[keep],
            f"8x8 digits, digit {cfg.digits_positive_class} vs rest, positives subsampled to "
            f"{keep_pos}/{keep.size} ({keep_pos / keep.size:.1%})")


DATASETS: dict[str, Callable[[DemoConfig, np.random.Generator], tuple[np.ndarray, np.ndarray, str]]] = {
    "breast_cancer": _breast_cancer,
    "digits_imbalanced": _digits_imbalanced,
}


def stratified_split(labels: np.ndarray, test_fraction: float, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and test row indices; each class contributes ``round(test_fraction * n_c)`` test rows.

    >>> tr, te = stratified_split(np.array([1, 1, 0, 0, 0, 0]), 0.5, np.random.default_rng(0))
    >>> len(tr), len(te)
    (3, 3)
    """
    test = []
    for c in np.unique(labels):  # two classes: a loop over classes, not samples
        members = rng.permutation(np.flatnonzero(labels == c))
        test.append(members[: round(test_fraction * members.size)])
    test_idx = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(labels.size), test_idx), test_idx


def load_task(name: str, cfg: DemoConfig) -> Task:
    """Load dataset ``name``, split it (stratified, ``cfg.split_seed``) and standardise on the train part."""
    _, rng = make_generators(cfg.split_seed)
    x, y, description = DATASETS[name](cfg, rng)
    train, test = stratified_split(y, cfg.test_fraction, rng)
    mean, std = x[train].mean(0), x[train].std(0)
    std[std == 0] = 1.0  # constant pixels (digits' borders) stay zero instead of becoming NaN
    x = (x - mean) / std

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.float32)
    return Task(name, description, t(x[train]), t(y[train]), t(x[test]), t(y[test]))


# --------------------------------------------------------------------------- model and losses

def make_model(cfg: DemoConfig, n_features: int) -> nn.Module:
    """A linear scorer or a one-hidden-layer ReLU MLP with one output (a logit)."""
    if cfg.model == "linear":
        return nn.Linear(n_features, 1)
    return nn.Sequential(nn.Linear(n_features, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 1))


def make_loss(name: str, cfg: DemoConfig, num_samples: int) -> LossFn:
    """The loss ``name`` in the engine's ``(scores, labels, index)`` form; all take raw logits."""
    if name == "bce":
        return ignore_index(F.binary_cross_entropy_with_logits)
    if name == "auc":
        from rankguard.losses import AUCLoss  # imported here: a missing loss fails its runs only
        return ignore_index(AUCLoss(surrogate=cfg.auc.surrogate, margin=cfg.auc.margin))
    if name == "ap":
        from rankguard.losses import APLoss
        return APLoss(num_samples=num_samples, margin=cfg.ap.margin, gamma=cfg.ap.gamma,
                      surrogate=cfg.ap.surrogate)
    raise ValueError(f"`loss` must be one of {list(LOSS_NAMES)}, got {name!r}")


def train_and_score(task: Task, loss_name: str, seed: int, cfg: DemoConfig) -> tuple[np.ndarray, list[float]]:
    """Train one scorer; return its test scores ``[n_test]`` (float64) and per-epoch train losses.

    ``make_generators(seed)`` is called first, so for a given seed every loss starts from the
    same weights and sees the same batches.
    """
    torch_gen, _ = make_generators(seed)
    model = make_model(cfg, task.x_train.shape[1])
    loss_fn = make_loss(loss_name, cfg, task.y_train.numel())
    sampler = PositiveShareBatchSampler(task.y_train, cfg.batch_size, cfg.positives_per_batch, generator=torch_gen)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history = train_scorer(model, loss_fn, task.x_train, task.y_train, optimizer=optimizer,
                           batch_sampler=sampler, epochs=cfg.epochs,
                           desc=f"{task.name}/{LOSS_NAMES[loss_name]}/seed {seed}")
    model.eval()
    with torch.no_grad():
        scores = model(task.x_test)[:, 0]
    return scores.double().numpy(), history


# --------------------------------------------------------------------------- results

def aggregate(runs: list[dict[str, Any]], cfg: DemoConfig) -> dict[str, dict[str, dict[str, Any]]]:
    """Per dataset and loss: mean and sample std (ddof = 1; ``None`` with fewer than 2 seeds) of AUC and AP."""
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for d in cfg.datasets:
        for loss in cfg.losses:
            mine = [r for r in runs if r["dataset"] == d and r["loss"] == loss]
            ok = [r for r in mine if "error" not in r]
            entry: dict[str, Any] = {"n_ok": len(ok), "n_failed": len(mine) - len(ok)}
            for metric in ("auc", "ap"):
                vals = np.array([r[metric] for r in ok], dtype=np.float64)
                entry[f"{metric}_mean"] = float(vals.mean()) if vals.size else None
                entry[f"{metric}_std"] = float(vals.std(ddof=1)) if vals.size > 1 else None
            summary.setdefault(d, {})[loss] = entry
    return summary


def format_table(summary: dict[str, dict[str, dict[str, Any]]], datasets: dict[str, dict[str, Any]]) -> str:
    """Markdown table: one row per dataset and loss, mean ± std; the best mean per dataset is bold."""
    rows = []
    for d, per_loss in summary.items():
        best = {m: max((e[f"{m}_mean"] for e in per_loss.values() if e[f"{m}_mean"] is not None), default=None)
                for m in ("auc", "ap")}
        rate = datasets.get(d, {}).get("test_positive_rate")
        for loss, e in per_loss.items():
            cells = []
            for m in ("auc", "ap"):
                mean, std = e[f"{m}_mean"], e[f"{m}_std"]
                if mean is None:
                    cells.append("failed")
                    continue
                text = f"{mean:.4f}" + (f" ± {std:.4f}" if std is not None else "")
                cells.append(f"**{text}**" if mean == best[m] else text)
            seeds = f"{e['n_ok']}" + (f" ({e['n_failed']} failed)" if e["n_failed"] else "")
            rows.append([d, "" if rate is None else f"{rate:.1%}", LOSS_NAMES[loss], *cells, seeds])
    return markdown_table(["dataset", "test positives", "loss", "test AUC", "test AP", "seeds"], rows)


def _report(cfg: DemoConfig, table: str, datasets: dict[str, Any], runs: list[dict[str, Any]],
            plots: list[str], seconds: float) -> str:
    failed = [r for r in runs if "error" in r]
    lines = [
        "# rankguard demo: BCE vs AUC loss vs AP loss", "",
        "## What was run", "",
        *[f"- **{d}**: {info['description']}; {info['n_train']} train / {info['n_test']} test rows "
          f"({info['test_positives']} test positives), {info['n_features']} standardised features."
          for d, info in datasets.items()],
        f"- Model: {'linear' if cfg.model == 'linear' else f'MLP ({cfg.hidden} hidden ReLU units)'}; "
        f"Adam, lr {cfg.lr}, weight decay {cfg.weight_decay}, {cfg.epochs} epochs.",
        f"- Batches of {cfg.batch_size} with {cfg.positives_per_batch} positives (same batches and initial "
        f"weights for every loss at a given seed); stratified {1 - cfg.test_fraction:.0%}/"
        f"{cfg.test_fraction:.0%} split fixed by split seed {cfg.split_seed}.",
        f"- Losses: BCE (binary cross-entropy on logits); AUCLoss ({cfg.auc.surrogate}, margin "
        f"{cfg.auc.margin}); APLoss (SOAP, {cfg.ap.surrogate}, margin {cfg.ap.margin}, gamma {cfg.ap.gamma}).",
        f"- Seeds: {', '.join(map(str, cfg.seeds))}. Wall time {seconds:.1f} s.", "",
        "## Test AUC and AP (mean ± sample std over seeds)", "", table,
        "How to read it: higher is better for both columns; bold marks the best mean per dataset "
        "(differences within one std are not meaningful), and a random ranking scores AUC 0.5 and "
        "AP equal to the test positive rate. The split is the same for every seed, so the std "
        "measures training randomness (initial weights, batches), not test-set sampling.", "",
    ]
    if failed:
        lines += ["## Failed runs", "",
                  *[f"- {r['dataset']} / {LOSS_NAMES[r['loss']]} / seed {r['seed']}: {r['error']}" for r in failed], ""]
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


def run_demo(cfg: DemoConfig, out_dir: str | os.PathLike) -> DemoResult:
    """Train every (dataset, loss, seed) of ``cfg``, evaluate on the test split, write the run directory.

    Returns a :class:`DemoResult`; ``metrics["runs"]`` holds one record per run with ``auc``,
    ``ap``, ``train_loss`` (per epoch) and ``seconds``, or ``error`` when that run failed (the
    other runs still happen). ``metrics["summary"][dataset][loss]`` holds the aggregates.

    >>> import tempfile
    >>> cfg = DemoConfig.quick(datasets=("breast_cancer",), losses=("bce",), seeds=(0,), epochs=1)
    >>> res = run_demo(cfg, tempfile.mkdtemp())
    >>> sorted(p.name for p in res.out_dir.iterdir())[:3], res.n_failed
    (['config.json', 'metrics.json', 'pr_curve.png'], 0)
    """
    start = time.perf_counter()
    # Models and batches this small run fastest on one thread: with more, per-op thread start-up
    # dominates, and on a busy 2-core machine it was 20-40x slower. Restored on exit.
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.num_threads)
    try:
        return _run_demo(cfg, out_dir, start)
    finally:
        torch.set_num_threads(threads)


def _run_demo(cfg: DemoConfig, out_dir: str | os.PathLike, start: float) -> DemoResult:
    run_dir = RunDir(out_dir)
    run_dir.save_json("config.json", cfg)  # first, so even a crash leaves what was asked for
    metrics: dict[str, Any] = {"status": "running", "datasets": {}, "runs": [], "summary": {},
                               "environment": {"python": sys.version.split()[0], "torch": torch.__version__,
                                               "numpy": np.__version__}}
    predictions: dict[str, np.ndarray] = {}
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    jobs = [(d, loss, seed) for d in cfg.datasets for seed in cfg.seeds for loss in cfg.losses]
    tasks: dict[str, Task | str] = {}
    for d, loss, seed in progress(jobs, desc="demo", total=len(jobs), leave=True):
        record: dict[str, Any] = {"dataset": d, "loss": loss, "seed": seed}
        t0 = time.perf_counter()
        try:
            if d not in tasks:
                try:
                    tasks[d] = load_task(d, cfg)
                except Exception as exc:  # remember the failure: every run of d reports it
                    tasks[d] = f"loading {d} failed: {type(exc).__name__}: {exc}"
                else:
                    metrics["datasets"][d] = tasks[d].summary()
                    predictions[f"{d}/labels"] = tasks[d].y_test.numpy().astype(np.int8)
            task = tasks[d]
            if isinstance(task, str):
                raise RuntimeError(task)
            scores, history = train_and_score(task, loss, seed, cfg)
            from rankguard.metrics import average_precision, roc_auc
            record.update(auc=roc_auc(scores, task.y_test), ap=average_precision(scores, task.y_test),
                          train_loss=history)
            predictions[f"{d}/{loss}/seed{seed}"] = scores
            if seed == cfg.seeds[0]:
                curves.setdefault(d, {})[LOSS_NAMES[loss]] = (scores, task.y_test.numpy())
        except Exception as exc:  # one broken run must not lose the others
            record["error"] = f"{type(exc).__name__}: {exc}"
            record["traceback"] = traceback.format_exc(limit=-3)
            print(f"rankguard demo: {d} / {LOSS_NAMES[loss]} / seed {seed} failed: {record['error']}",
                  file=sys.stderr)
        record["seconds"] = round(time.perf_counter() - t0, 3)
        metrics["runs"].append(record)
        metrics["summary"] = aggregate(metrics["runs"], cfg)
        run_dir.save_json("metrics.json", metrics)
        atomic_write(run_dir.file("predictions.npz"), lambda fh: np.savez(fh, **predictions))

    plots = _plot(curves, run_dir, metrics, cfg.seeds[0])
    metrics["status"] = "complete"
    metrics["seconds"] = round(time.perf_counter() - start, 2)
    run_dir.save_json("metrics.json", metrics)
    table = format_table(metrics["summary"], metrics["datasets"])
    run_dir.save_text("report.md", _report(cfg, table, metrics["datasets"], metrics["runs"], plots,
                                           metrics["seconds"]))
    return DemoResult(run_dir.path, metrics, table)


def _plot(curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], run_dir: RunDir,
          metrics: dict[str, Any], seed: int) -> list[str]:
    """Write pr_curve.png and roc_curve.png; a plotting error is recorded, not raised."""
    if not curves:
        return []
    from rankguard.metrics import average_precision, roc_auc
    from rankguard.plots import plot_pr_curves, plot_roc_curves

    written = []
    for name, plot, metric, label in [("pr_curve.png", plot_pr_curves, average_precision, "AP"),
                                      ("roc_curve.png", plot_roc_curves, roc_auc, "AUC")]:
        labels = {d: {loss: f"{label} {metric(s, y):.3f}" for loss, (s, y) in lines.items()}
                  for d, lines in curves.items()}
        try:
            plot(curves, run_dir.file(name), title=f"{'Precision-recall' if label == 'AP' else 'ROC'} "
                 f"curves on the test split (seed {seed})", metric_labels=labels)
            written.append(name)
        except Exception as exc:
            metrics.setdefault("plot_errors", {})[name] = f"{type(exc).__name__}: {exc}"
    return written


# --------------------------------------------------------------------------- command line

def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` sub-command to the ``rankguard`` parser."""
    p = sub.add_parser(
        "demo", help="train BCE, AUC loss and AP loss on small sklearn tasks and compare test AUC / AP",
        description="Train a small scorer with BCE, AUCLoss and APLoss on scikit-learn's breast-cancer "
                    "data and an imbalanced digits task (digit 8 vs rest, 5% positives); print test "
                    "AUC / AP (mean ± std over seeds) and write a run directory with config.json, "
                    "metrics.json, predictions.npz, report.md, pr_curve.png and roc_curve.png.")
    p.add_argument("--seeds", type=int, default=None, metavar="N", help="number of seeds 0..N-1 (default 3)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs per run (default 30)")
    p.add_argument("--datasets", type=_csv, default=None,
                   help=f"comma-separated subset of {','.join(DATASETS)} (default: all)")
    p.add_argument("--losses", type=_csv, default=None,
                   help=f"comma-separated subset of {','.join(LOSS_NAMES)} (default: all)")
    p.add_argument("--model", choices=("linear", "mlp"), default=None, help="scorer (default mlp)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 0.01)")
    p.add_argument("--out", default=None, metavar="DIR", help="run directory (default runs/demo-<timestamp>)")
    p.add_argument("--quick", action="store_true", help="tiny settings for a smoke test (2 seeds, 2 epochs)")
    p.set_defaults(func=run, _parser=p)


def config_from_args(args: argparse.Namespace) -> DemoConfig:
    """Build the :class:`DemoConfig` the command-line options ask for (``--quick`` first, then overrides)."""
    overrides: dict[str, Any] = {}
    if args.seeds is not None:
        if args.seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
        overrides["seeds"] = tuple(range(args.seeds))
    for name in ("epochs", "datasets", "losses", "model", "lr"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
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
    result = run_demo(cfg, out)
    print(result.table, end="")
    print(f"\nrun directory: {result.out_dir}")
    if result.n_failed:
        print(f"rankguard demo: {result.n_failed} run(s) failed; see {result.out_dir / 'metrics.json'}",
              file=sys.stderr)
        return 1
    return 0
