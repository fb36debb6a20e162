"""Recommendation recipes: a backbone + a loss + a sampler + defaults with their source.

``--model`` names a **recipe** (``sfcml``, ``cml``, ``mf-bpr`` …) or a bare **backbone** of
:data:`rankguard.recsys.models.MODELS` (``mf``, ``cml``, ``cml-sphere``); ``--loss`` and
``--sampler`` override the recipe's parts. Everything a run needs ends up in one flat
:class:`TrainConfig`, saved as the run's ``config.json`` — which alone replays the run
(``rankguard recsys train --config FILE --out DIR``).

Adding a recipe is one ``RECIPES.register(...)`` line; adding a backbone, loss or sampler is one file
plus one registry line (see the README's development section).

Defaults follow the authors' public configs: LibCML (statusrank/LibCML @35e5c43) — Adagrad, lr 0.05,
weight decay 1e-5, batches of 256, dim 100, margin 1.0; :data:`DATASET_PRESETS` their ML-100K SFCML
script — margin 2.0, dim 256, 300 epochs.

SFCML model selection follows LibCML's ``train_example.py``: validate after *every* epoch, keep the
state with the best validation AUC (strict improvement), never stop early (``eval_every=1``,
``patience=0``, ``select_metric="AUC"``). Selecting on validation P@3 every 5 epochs with early
stopping instead picks an early, noisy P@3 peak (epochs 45–118 on ML-100K) while validation AUC is
still rising at epoch ~300; that choice, not the loss or the model, was the gap to the paper's table
(see ``results/recsys_quality.md``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from rankguard.recsys.evaluator import PROTOCOLS
from rankguard.recsys.models import MODELS
from rankguard.recsys.objectives import ALL_PAIRS, LOSSES, check_loss_sampler
from rankguard.registry import Registry
from rankguard.training.objective import OPTIMIZERS

METRIC_KEYS = ("P@3", "R@3", "NDCG@3", "P@5", "R@5", "NDCG@5", "MAP", "MRR", "AUC", "Recall@20", "NDCG@20")


@dataclass(frozen=True)
class Recipe:
    """A named method: its parts and the defaults (with the source they come from)."""

    backbone: str
    loss: str
    sampler: str
    defaults: dict[str, Any]
    source: str
    #: table names carry the sampler (``cml-hars``) when the sampler is the method's main choice
    name_sampler: bool = False


RECIPES: Registry[Recipe] = Registry("recipe")
_CML_DEFAULTS = dict(dim=100, margin=1.0, constraint="ball", batch_size=256, n_negatives=10, lr=0.05)
RECIPES.register("sfcml", Recipe(
    "cml-sphere", "squared", ALL_PAIRS,
    dict(dim=100, margin=1.0, batch_size=256, lr=0.05, optimizer="adagrad", weight_decay=1e-5,
         select_metric="AUC", eval_every=1, patience=0),
    "LibCML train_example.py argparse defaults (dim 100, margin 1.0, batch 256 users, lr 0.05, weight decay "
    "1e-5), OPT_DICTS['SFCML'] = Adagrad, model/SFCML.py's squared all-pairs loss; best validation AUC every "
    "epoch, no early stop"))
RECIPES.register("cml", Recipe(
    "cml", "hinge", "unis", _CML_DEFAULTS,
    "CML baselines as run in the DPCML/LibCML comparison: unit-ball clipping, margin 1.0, 10 negatives",
    name_sampler=True))
_MF_BPR = Recipe("mf", "bpr", "unis", dict(dim=100, batch_size=256, n_negatives=1, lr=0.05),
                 "MF-BPR (Rendle et al. 2009): one uniform negative per pair, no norm constraint")
RECIPES.register("mf-bpr", _MF_BPR)
RECIPES.register("mf", _MF_BPR)
# a bare backbone given as --model trains with the CML-style sampled hinge unless --loss says otherwise
_BARE = Recipe("", "hinge", "unis", _CML_DEFAULTS, "bare backbone: sampled triplet hinge (CML defaults)",
               name_sampler=True)

#: dataset-specific presets: LibCML shells/SFCML.sh for ML-100K (lr 5e-2, margin 2.0, dim 256, 300 epochs)
DATASET_PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    ("ml-100k-libcml", "sfcml"): dict(margin=2.0, dim=256, epochs=300),
}


def model_names() -> list[str]:
    """Everything ``--model`` accepts: recipes and bare backbones."""
    return sorted(set(RECIPES.names()) | set(MODELS.names()))


def recipe_of(model: str) -> Recipe:
    """The recipe ``--model NAME`` means (a bare backbone gets :data:`_BARE` with that backbone)."""
    if model in RECIPES:
        return RECIPES.get(model)
    if model in MODELS:
        return dataclasses.replace(_BARE, backbone=str(model).lower())
    raise KeyError(f"unknown model {model!r}; known: {', '.join(model_names())}")


@dataclass
class TrainConfig:
    """Everything a run needs; saved as ``config.json`` (which alone replays the run).

    ``batch_size`` counts users for the all-pairs objective and (user, positive) pairs for sampled
    ones. ``n_negatives`` is the sampler's count (negatives per pair; HarS: candidates).
    ``patience`` counts evaluations (not epochs) without improvement of ``select_metric``;
    0 disables early stopping. ``select_metric``: ``"P@3"`` (DPCML's choice) or ``"AUC"`` (LibCML's).
    ``dataset`` is a registry name or an absolute path; ``split_seed`` seeds the 3:1:1 split of
    data that has no fixed split.
    """

    model: str = "sfcml"
    backbone: str = "cml-sphere"
    loss: str = "squared"
    sampler: str = ALL_PAIRS
    dataset: str = ""
    protocol: str = "authors"
    split_seed: int = 1234
    dim: int = 100
    margin: float = 1.0
    constraint: str = "ball"
    cov_weight: float = 0.0
    n_negatives: int = 10
    sampler_options: dict[str, Any] = field(default_factory=dict)
    optimizer: str = "adagrad"
    lr: float = 0.05
    weight_decay: float = 1e-5
    batch_size: int = 256
    epochs: int = 100
    eval_every: int = 5
    patience: int = 10
    select_metric: str = "P@3"
    seed: int = 0
    eval_block_size: int = 1024

    def __post_init__(self) -> None:
        recipe_of(self.model)
        MODELS.get(self.backbone)
        OPTIMIZERS.get(self.optimizer)
        check_loss_sampler(self.loss, self.sampler)
        for name in ("dim", "batch_size", "epochs", "eval_every", "n_negatives", "eval_block_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be an integer >= 1, got {value!r}")
        for name in ("patience", "seed", "split_seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be an integer >= 0, got {value!r}")
        for name, low, strict in (("lr", 0.0, True), ("margin", 0.0, False), ("weight_decay", 0.0, False),
                                  ("cov_weight", 0.0, False)):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
                and (value > low if strict else value >= low)
            if not ok:
                raise ValueError(f"--{name.replace('_', '-')} must be a finite number {'>' if strict else '>='} "
                                 f"{low:g}, got {value!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if self.select_metric not in METRIC_KEYS:
            raise ValueError(f"--select-metric must be one of {', '.join(METRIC_KEYS)}, got {self.select_metric!r}")
        if self.constraint not in ("ball", "sphere"):
            raise ValueError(f"--constraint must be 'ball' or 'sphere', got {self.constraint!r}")

    @property
    def method(self) -> str:
        """Short name for tables: ``sfcml``, ``mf-bpr``, ``cml-unis``, ``cml-unis+bpr`` …"""
        recipe = recipe_of(self.model)
        name = self.model
        if recipe.name_sampler or self.sampler != recipe.sampler:
            name += f"-{self.sampler}"
        if self.loss != recipe.loss:
            name += f"+{self.loss}"
        return name

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "config") -> "TrainConfig":
        """Rebuild from ``config.json`` content; unknown keys raise naming ``where``."""
        known = {f.name for f in dataclasses.fields(cls)}
        informational = {"method", "n_users", "n_items", "rankguard", "data_notes"}
        unknown = sorted(set(values) - known - informational)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**{k: v for k, v in values.items() if k in known})


def make_config(model: str, dataset: str | None = None, **overrides: Any) -> TrainConfig:
    """Recipe defaults ← dataset preset ← explicit ``overrides`` (``None`` values ignored).

    ``--loss`` given without ``--sampler`` takes the loss's own sampler when it has one
    (``squared`` → ``all``), else the recipe's.

    >>> make_config("sfcml", "ml-100k-libcml").margin, make_config("sfcml", "ml-100k-libcml", margin=1.5).margin
    (2.0, 1.5)
    >>> c = make_config("sfcml"); (c.select_metric, c.eval_every, c.patience, c.sampler)   # LibCML's rule
    ('AUC', 1, 0, 'all')
    >>> make_config("cml", sampler="hars").method, make_config("cml", loss="squared").sampler
    ('cml-hars', 'all')
    """
    recipe = recipe_of(model)
    given = {k: v for k, v in overrides.items() if v is not None}
    values: dict[str, Any] = dict(recipe.defaults)
    values.update(DATASET_PRESETS.get((str(dataset), str(model).lower()), {}))
    values.update(given)
    values.setdefault("backbone", recipe.backbone)
    values.setdefault("loss", recipe.loss)
    if "sampler" not in values:
        implied = LOSSES.get(values["loss"]).default_sampler if "loss" in given else None
        values["sampler"] = implied or recipe.sampler
    if dataset is not None:
        values["dataset"] = str(dataset)
    return TrainConfig(model=str(model).lower(), **values)
