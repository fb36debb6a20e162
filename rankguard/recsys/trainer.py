"""One training loop for every collaborative-ranking recipe (MF-BPR, CML + sampler, SFCML).

A recipe = a model (:mod:`rankguard.recsys.models`) + an objective that knows how to cut an epoch
into batches and turn a batch into a loss:

* :class:`SampledPairObjective` — batches of training pairs ``(u, i⁺)``, negatives from a sampler
  (:mod:`rankguard.samplers`), CML triplet hinge or BPR;
* :class:`AllPairsObjective` — batches of users, the sampling-free loss over all of each user's
  (positive, unobserved) pairs (SFCML).

:func:`train` runs epochs, validates every ``eval_every`` epochs with the
:class:`~rankguard.recsys.evaluator.Evaluator`, keeps the best state by ``select_metric``, stops
after ``patience`` evaluations without improvement, and writes a run directory.

Defaults (:data:`MODEL_DEFAULTS`) follow the authors' public configs: LibCML (statusrank/LibCML
@35e5c43) — Adagrad, lr 0.05, weight decay 1e-5, batches of 256, dim 100, margin 1.0; and
:data:`DATASET_PRESETS` their ML-100K SFCML script — margin 2.0, dim 256, 300 epochs.

SFCML model selection follows LibCML's ``train_example.py``: validate after *every* epoch, keep the
state with the best validation AUC (strict improvement), never stop early (``eval_every=1``,
``patience=0``, ``select_metric="AUC"``). Selecting on validation P@3 every 5 epochs with early
stopping instead picks an early, noisy P@3 peak (epochs 45–118 on ML-100K) while validation AUC is
still rising at epoch ~300; that choice, not the loss or the model, was the gap to the paper's table
(see ``results/recsys_quality.md``).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import scipy.sparse as sp
import torch

from rankguard.functional.cml import bpr_loss, covariance_regularizer, sfcml_loss, triplet_hinge_loss
from rankguard.progress import progress
from rankguard.recsys.data import Split
from rankguard.recsys.evaluator import Evaluator
from rankguard.recsys.models import CML, MF, SFCML, EmbeddingModel
from rankguard.runs import RunDir, atomic_write, markdown_table
from rankguard.samplers import SAMPLERS, NegativeSampler, make_sampler
from rankguard.seeding import make_generators

MODEL_CHOICES = ("mf-bpr", "cml", "sfcml")
METRIC_KEYS = ("P@3", "R@3", "NDCG@3", "P@5", "R@5", "NDCG@5", "MAP", "MRR", "AUC", "Recall@20", "NDCG@20")


@dataclass
class TrainConfig:
    """Everything a run needs; saved as ``config.json``. See :data:`MODEL_DEFAULTS` for per-model values.

    ``batch_size`` counts users for SFCML and (user, positive) pairs for sampled objectives.
    ``patience`` counts evaluations (not epochs) without improvement of ``select_metric``;
    0 disables early stopping. ``select_metric``: ``"P@3"`` (DPCML's choice) or ``"AUC"`` (LibCML's).
    """

    model: str = "sfcml"
    sampler: str = "unis"
    dim: int = 100
    margin: float = 1.0
    surrogate: str = "squared"
    constraint: str = "ball"
    cov_weight: float = 0.0
    n_negatives: int = 10
    optimizer: str = "adagrad"
    lr: float = 0.05
    weight_decay: float = 1e-5
    batch_size: int = 256
    epochs: int = 100
    eval_every: int = 5
    patience: int = 10
    select_metric: str = "P@3"
    protocol: str = "authors"
    seed: int = 0
    eval_block_size: int = 1024
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model not in MODEL_CHOICES:
            raise ValueError(f"`model` must be one of {', '.join(MODEL_CHOICES)}, got {self.model!r}")
        if self.model == "cml" and self.sampler not in SAMPLERS:
            raise ValueError(f"`sampler` must be one of {', '.join(sorted(SAMPLERS))}, got {self.sampler!r}")
        for name in ("dim", "batch_size", "epochs", "eval_every", "n_negatives"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"`lr` must be > 0, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"`optimizer` must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.select_metric not in METRIC_KEYS:
            raise ValueError(f"`select_metric` must be one of {', '.join(METRIC_KEYS)}, got {self.select_metric!r}")

    @property
    def method(self) -> str:
        """Short name for tables: ``sfcml``, ``mf-bpr``, ``cml-unis`` …"""
        return f"cml-{self.sampler}" if self.model == "cml" else self.model


# per-model defaults (LibCML public config unless noted)
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    # LibCML train_example.py argparse defaults (dim 100, margin 1.0, batch 256 users, lr 0.05, weight
    # decay 1e-5), OPT_DICTS['SFCML'] = Adagrad, model/SFCML.py's squared all-pairs loss; its train loop
    # evaluates validation every epoch, keeps the best validation AUC and never stops early.
    "sfcml": dict(dim=100, margin=1.0, surrogate="squared", batch_size=256, lr=0.05, optimizer="adagrad",
                  weight_decay=1e-5, select_metric="AUC", eval_every=1, patience=0),
    # CML baselines as run in the DPCML/LibCML comparison: unit-ball clipping, margin 1.0, 10 negatives
    "cml": dict(dim=100, margin=1.0, constraint="ball", batch_size=256, n_negatives=10, lr=0.05),
    # MF-BPR: one uniform negative per pair, no norm constraint
    "mf-bpr": dict(dim=100, batch_size=256, n_negatives=1, lr=0.05, sampler="unis"),
}
# dataset-specific presets: LibCML shells/SFCML.sh for ML-100K (lr 5e-2, margin 2.0, dim 256, 300 epochs)
DATASET_PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    ("ml-100k-libcml", "sfcml"): dict(margin=2.0, dim=256, epochs=300),
}
OPTIMIZERS = {"adagrad": torch.optim.Adagrad, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}


def make_config(model: str, dataset: str | None = None, **overrides: Any) -> TrainConfig:
    """Defaults for ``model`` ← dataset preset ← explicit ``overrides`` (``None`` values ignored).

    >>> make_config("sfcml", "ml-100k-libcml").margin, make_config("sfcml", "ml-100k-libcml", margin=1.5).margin
    (2.0, 1.5)
    >>> c = make_config("sfcml"); (c.select_metric, c.eval_every, c.patience)   # LibCML's selection rule
    ('AUC', 1, 0)
    """
    if model not in MODEL_DEFAULTS:
        raise ValueError(f"`model` must be one of {', '.join(MODEL_CHOICES)}, got {model!r}")
    values: dict[str, Any] = dict(MODEL_DEFAULTS[model])
    values.update(DATASET_PRESETS.get((str(dataset), model), {}))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(model=model, **values)


def build_model(config: TrainConfig, n_users: int, n_items: int,
                generator: torch.Generator | None = None) -> EmbeddingModel:
    """The model a config names (shapes from the data)."""
    if config.model == "sfcml":
        return SFCML(n_users, n_items, dim=config.dim, generator=generator)
    if config.model == "cml":
        return CML(n_users, n_items, dim=config.dim, constraint=config.constraint, generator=generator)
    return MF(n_users, n_items, dim=config.dim, generator=generator)


def _dense_rows(matrix: sp.csr_matrix, users: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(matrix[users].toarray() > 0)


def _candidate_scores(model: EmbeddingModel):
    """Scores of sampled candidates ``[B, C]``: gathered item rows for few candidates (HarS, C = 10),
    one ``[B, n_items]`` matmul and a gather when ``C`` is a sizeable share of the catalogue (the
    "hardest" 2stS variant, C = 300)."""
    def fn(users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            if items.shape[1] * 8 < model.n_items:
                return model.score_pairs(users, items)
            return model.score(users).gather(1, items)

    def item_embeddings(items: torch.Tensor) -> torch.Tensor:  # 2stS "spreadout" weights items by ⟨v_i⁺, v_j⟩
        with torch.no_grad():
            return model.item[items]
    fn.item_embeddings = item_embeddings  # type: ignore[attr-defined]
    return fn


class SampledPairObjective:
    """Batches of training pairs ``(u, i⁺)`` (each once per epoch), negatives from ``sampler``.

    ``loss="hinge"``: CML ``max(0, λ − (s⁺ − s⁻))`` averaged over the ``[B, S]`` triplets, plus
    ``cov_weight`` × covariance regulariser on the batch's user and item rows; ``loss="bpr"``: BPR.
    """

    def __init__(self, train: sp.csr_matrix, sampler: NegativeSampler, loss: str = "hinge",
                 margin: float = 1.0, cov_weight: float = 0.0):
        if loss not in ("hinge", "bpr"):
            raise ValueError(f"`loss` must be 'hinge' or 'bpr', got {loss!r}")
        coo = sp.coo_matrix(train)
        self.users = coo.row.astype(np.int64)
        self.items = coo.col.astype(np.int64)
        self.sampler, self.loss_kind, self.margin, self.cov_weight = sampler, loss, margin, cov_weight

    def batches(self, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
        order = rng.permutation(self.users.size)
        return iter(np.array_split(order, max(1, -(-order.size // batch_size))))

    def loss(self, model: EmbeddingModel, batch: np.ndarray) -> torch.Tensor:
        users, pos = self.users[batch], self.items[batch]
        neg = self.sampler.sample(users, pos, _candidate_scores(model) if self.sampler.needs_scores else None)
        u_t = torch.from_numpy(users)
        items = torch.from_numpy(np.concatenate([pos[:, None], neg], axis=1))
        s = model.score_pairs(u_t, items)
        if self.loss_kind == "bpr":
            return bpr_loss(s[:, 0], s[:, 1:])
        loss = triplet_hinge_loss(s[:, 0], s[:, 1:], self.margin)
        if self.cov_weight:
            rows = torch.cat([model.user[u_t], model.item[items.flatten()]])
            loss = loss + self.cov_weight * covariance_regularizer(rows)
        return loss


class AllPairsObjective:
    """Batches of users; per user the SFCML loss over all (positive, unobserved) pairs."""

    def __init__(self, train: sp.csr_matrix, margin: float = 1.0, surrogate: str = "squared"):
        self.train = sp.csr_matrix(train)
        self.active = np.flatnonzero(np.diff(self.train.indptr) > 0)
        self.margin, self.surrogate = margin, surrogate

    def batches(self, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
        order = self.active[rng.permutation(self.active.size)]
        return iter(np.array_split(order, max(1, -(-order.size // batch_size))))

    def loss(self, model: EmbeddingModel, batch: np.ndarray) -> torch.Tensor:
        scores = model.score(torch.from_numpy(batch))
        return sfcml_loss(scores, _dense_rows(self.train, batch), self.margin, self.surrogate)


def build_objective(config: TrainConfig, train: sp.csr_matrix, rng: np.random.Generator):
    """The objective (and its sampler, if any) a config names."""
    if config.model == "sfcml":
        return AllPairsObjective(train, config.margin, config.surrogate), None
    name = "unis" if config.model == "mf-bpr" else config.sampler
    kwargs: dict[str, Any] = {}
    if name in ("unis", "pops") or config.model == "mf-bpr":
        kwargs["n_negatives"] = config.n_negatives
    elif name == "2sts":  # DPCML's SpreadoutSampler: item-item distance-weighted stage two
        kwargs["n_negatives"] = config.n_negatives
        kwargs["stage_two"] = "spreadout"
        kwargs.update(config.extra.get("sampler_kwargs", {}))
    else:  # hars: the closest of n_negatives uniform candidates, one triplet per pair
        kwargs["n_candidates"] = config.n_negatives
    sampler = make_sampler(name, train, rng, **kwargs)
    loss = "bpr" if config.model == "mf-bpr" else "hinge"
    return SampledPairObjective(train, sampler, loss, config.margin, config.cov_weight), sampler


@dataclass
class TrainResult:
    """What :func:`train` returns: the model holding the best state, metrics and history."""

    model: EmbeddingModel
    test_metrics: dict[str, float]
    best_val: dict[str, float]
    best_epoch: int
    history: list[dict[str, float]]
    epoch_seconds: float
    diagnostics: dict[str, Any]


def score_fn_of(model: EmbeddingModel):
    """``users -> scores [B, n_items]`` without gradient, in eval mode (what the Evaluator calls)."""
    def fn(users: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.score(users)
    return fn


def train_one_epoch(model: EmbeddingModel, objective: Any, optimizer: torch.optim.Optimizer, batch_size: int,
                    rng: np.random.Generator, where: str = "") -> tuple[float, int]:
    """One pass over ``objective``'s batches: loss, step, re-apply the model's norm constraint.

    Returns ``(sum of batch losses, number of steps)``; a non-finite loss raises
    ``FloatingPointError`` naming ``where`` (never a silent NaN).
    """
    model.train()
    total, steps = 0.0, 0
    for batch in objective.batches(batch_size, rng):
        loss = objective.loss(model, batch)
        if not bool(torch.isfinite(loss)):
            raise FloatingPointError(f"loss became {float(loss.detach())} at {where}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.constrain_()
        total += float(loss.detach())
        steps += 1
    return total, steps


def train(config: TrainConfig, split: Split, out: str | os.PathLike | None = None,
          dataset: str = "", diagnostics: bool = True, log=print) -> TrainResult:
    """Train the model ``config`` names on ``split.train``; select on ``split.val``; test on ``split.test``.

    Writes (when ``out`` is given) ``config.json``, ``history.json``, ``checkpoint.pt`` (best state,
    atomic), ``metrics.json`` (test metrics as fractions, keys :data:`METRIC_KEYS`) and ``report.md``.

    >>> import numpy as np, scipy.sparse as sp
    >>> rng = np.random.default_rng(0); m = (rng.random((20, 30)) < 0.3).astype(np.float32)
    >>> from rankguard.recsys.splits import ratio_split; from rankguard.recsys.data import Interactions
    >>> split = ratio_split(Interactions(sp.csr_matrix(m)), seed=0)
    >>> r = train(make_config("sfcml", epochs=2, eval_every=1, dim=8), split, diagnostics=False, log=None)
    >>> sorted(r.test_metrics)[:3], len(r.history)
    (['AUC', 'MAP', 'MRR'], 2)
    """
    torch_gen, rng = make_generators(config.seed)
    train_m = sp.csr_matrix(split.train)
    model = build_model(config, split.n_users, split.n_items, torch_gen)
    objective, sampler = build_objective(config, train_m, rng)
    opt_cls = OPTIMIZERS[config.optimizer]
    optimizer = opt_cls(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    evaluator = Evaluator(split, protocol=config.protocol, block_size=config.eval_block_size)
    run = RunDir(out) if out is not None else None
    if run is not None:
        run.save_json("config.json", {"dataset": dataset, "n_users": split.n_users, "n_items": split.n_items,
                                      "method": config.method, **dataclasses.asdict(config)})

    best_value, best_state, best_epoch, best_val = -np.inf, copy.deepcopy(model.state_dict()), 0, {}
    history: list[dict[str, float]] = []
    bad_evals, train_seconds, epochs_run = 0, 0.0, 0
    for epoch in progress(range(1, config.epochs + 1), desc=f"train {config.method}", total=config.epochs):
        t0 = time.perf_counter()
        total, steps = train_one_epoch(model, objective, optimizer, config.batch_size, rng, f"epoch {epoch} ({config.method})")
        train_seconds += time.perf_counter() - t0
        epochs_run = epoch
        if epoch % config.eval_every and epoch != config.epochs:
            continue
        model.eval()
        val = evaluator.evaluate(score_fn_of(model), stage="val")
        history.append({"epoch": epoch, "loss": total / max(steps, 1), **{k: val[k] for k in METRIC_KEYS if k in val}})
        value = val[config.select_metric]
        if log:
            log(f"epoch {epoch}: loss {total / max(steps, 1):.5f}  val {config.select_metric} {value:.4f}")
        if not np.isfinite(value) and log:
            log(f"warning: val {config.select_metric} is {value} (no user qualifies under protocol "
                f"{config.protocol!r}); model selection keeps the first state")
        if best_epoch == 0 or value > best_value:  # the first evaluation always sets a checkpoint
            best_value, best_epoch, best_val = value, epoch, dict(val)
            best_state = copy.deepcopy(model.state_dict())
            bad_evals = 0
            if run is not None:
                checkpoint = {"config": dataclasses.asdict(config), "n_users": split.n_users,
                              "n_items": split.n_items, "epoch": epoch, "state_dict": best_state}
                atomic_write(run.file("checkpoint.pt"), lambda fh: torch.save(checkpoint, fh))
        else:
            bad_evals += 1
            if config.patience and bad_evals >= config.patience:
                if log:
                    log(f"early stop at epoch {epoch}: no {config.select_metric} gain in {bad_evals} evaluations")
                break
    model.load_state_dict(best_state)
    model.eval()
    test = evaluator.evaluate(score_fn_of(model), stage="test")
    test_metrics = {k: float(test[k]) for k in METRIC_KEYS if k in test}
    diag: dict[str, Any] = {}
    if diagnostics:
        from rankguard.recsys.diagnostics import effective_sample_size, pair_distribution_tv
        diag["effective_sample_size"] = effective_sample_size(train_m)
        diag["sampling_tv"] = pair_distribution_tv(train_m, sampler,
                                                   _candidate_scores(model) if sampler is not None else None)
    result = TrainResult(model, test_metrics, best_val, best_epoch, history,
                         train_seconds / max(epochs_run, 1), diag)
    if run is not None:
        run.save_json("history.json", history)
        # NaN = no user qualifies for that metric (e.g. @20 needs >= 20 test items under "authors"): JSON null
        run.save_json("metrics.json", {k: (v if np.isfinite(v) else None) for k, v in test_metrics.items()})
        run.save_text("report.md", render_report(config, dataset, result))
    return result


def metrics_table(metrics: dict[str, float]) -> str:
    """Markdown table of the metrics in percent (metrics.json keeps fractions)."""
    keys = [k for k in METRIC_KEYS if k in metrics]
    cells = [f"{100 * metrics[k]:.2f}" if metrics[k] is not None and np.isfinite(metrics[k]) else "n/a" for k in keys]
    return markdown_table(keys, [cells])


def render_report(config: TrainConfig, dataset: str, result: TrainResult) -> str:
    """The run's ``report.md``: test metrics, selection, timing, diagnostics."""
    lines = [f"# {config.method} on {dataset or 'data'}", "",
             f"Protocol `{config.protocol}`; best validation {config.select_metric} "
             f"{100 * result.best_val.get(config.select_metric, float('nan')):.2f} at epoch {result.best_epoch}; "
             f"{result.epoch_seconds:.3f} s per training epoch.", "", "## Test metrics (%)", "",
             metrics_table(result.test_metrics)]
    d = result.diagnostics
    if d:
        ess, tv = d["effective_sample_size"], d["sampling_tv"]
        lines += ["## Generalization diagnostics", "",
                  "Effective sample size Ñ_u = (√(1/n⁺ + 1/n⁻))⁻² over training users:", "",
                  markdown_table(["users", "mean", "median", "min"],
                                 [[ess["users"], f"{ess['mean']:.2f}", f"{ess['median']:.2f}", f"{ess['min']:.2f}"]]),
                  f"Total-variation distance between the trained-on (positive, negative) pair distribution and "
                  f"the per-user uniform one: **{tv['tv']:.4f}** ({tv['method']}); user weighting alone "
                  f"contributes {tv['user_weighting_tv']:.4f}. (0 for the sampling-free SFCML objective.)", ""]
    return "\n".join(lines)


def load_run(path: str | os.PathLike) -> tuple[TrainConfig, EmbeddingModel, dict[str, Any]]:
    """Rebuild the best model of a run directory from ``checkpoint.pt``; returns (config, model, run config)."""
    run = RunDir(path)
    ckpt_path = run.file("checkpoint.pt")
    if not ckpt_path.exists():
        raise FileNotFoundError(f"{ckpt_path}: no checkpoint (is {path} a `rankguard recsys train` run directory?)")
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    config = TrainConfig(**ckpt["config"])
    model = build_model(config, ckpt["n_users"], ckpt["n_items"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    run_config = run.load_json("config.json") if run.file("config.json").exists() else {}
    return config, model, run_config
