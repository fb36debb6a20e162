"""Recommendation recipes: a backbone + a loss + a sampler + defaults with their source.

``--model`` names a **recipe** (``sfcml``, ``cml``, ``mf-bpr``, ``dpcml`` …) or a bare **backbone** of
:data:`rankguard.recsys.models.MODELS` (``mf``, ``cml``, ``cml-sphere``); ``--loss`` and
``--sampler`` override the recipe's parts. Everything a run needs ends up in one flat
:class:`TrainConfig`, saved as the run's ``config.json`` — which alone replays the run
(``rankguard recsys train --config FILE --out DIR``).

Adding a recipe is one ``RECIPES.register(...)`` line; adding a backbone, loss or sampler is one file
plus one registry line (see the README's development section).

Defaults follow the authors' public configs: LibCML (statusrank/LibCML @35e5c43) — Adagrad, lr 0.05,
weight decay 1e-5, batches of 256, dim 100, margin 1.0; :data:`DATASET_PRESETS` their ML-100K SFCML
script — margin 2.0, dim 256, 300 epochs.

SFCML model selection follows LibCML's ``train_example.py`` in its metric: keep the state with the
best validation AUC. Selecting on validation P@3 instead picks an early, noisy P@3 peak (epochs
45–118 on ML-100K) while validation AUC is still rising at epoch ~300; that choice, not the loss or
the model, was the gap to the paper's table (see ``results/recsys_quality.md``). LibCML's *loop*
(validate every epoch for a fixed budget, never stop early, Adagrad lr 0.05) is the
``ml-100k-libcml`` preset; at lr 0.05 its best validation AUC came at the last epoch of every budget
tried on ML-1M and CiteULike-t (60–120 epochs, ``results/recsys_quality_*``). The recipe's defaults run
until validation AUC gains at most 0.01 points in 30 epochs (validation every 5 epochs, patience 6,
``min_delta`` 1e-4, at most 1,000 epochs) at Adagrad lr 0.5, the fastest-converging of
{0.05, 0.2, 0.5} on validation AUC (``results/tuning/sfcml_*_converged*``; checked on the four
shared datasets by ``rankguard bench recsys_defaults``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rankguard.functional.dpcml import DIVERSITY_FORMS
from rankguard.recsys.dpcml import CONSTRAINTS, USER_VECTORS, VECTOR_RULES, check_diversity
from rankguard.recsys.coldstart.dropoutnet import DEFAULTS as _DN, INPUTS as DN_INPUTS, check_hidden as check_dn_hidden
from rankguard.cli_args import check_int_flags, check_number_flags
from rankguard.recsys.evaluator import PROTOCOLS
from rankguard.recsys.models import MODELS, SIMILARITIES
from rankguard.recsys.objectives import ALL_PAIRS, LOSSES, check_loss_sampler
from rankguard.registry import Registry
from rankguard.samplers import SAMPLERS
from rankguard.training.objective import OPTIMIZERS

METRIC_KEYS = ("P@3", "R@3", "NDCG@3", "P@5", "R@5", "NDCG@5", "MAP", "MRR", "AUC", "Recall@20", "NDCG@20")
#: the same top-K metrics on tail items only (outside the 20% most popular by training count; see the Evaluator)
TAIL_KEYS = ("tail_P@3", "tail_R@3", "tail_NDCG@3", "tail_P@5", "tail_R@5", "tail_NDCG@5", "tail_R@20", "tail_NDCG@20")


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
#: CML (Hsieh et al. 2017) as LibCML runs it (unit ball, margin 1.0, 10 negatives, Adagrad lr 0.05); ours: the
#: stopping rule -- validation P@3 every 5 epochs until it gains <= 0.1 points in 30 epochs (patience 6,
#: min_delta 1e-3, at most 500 epochs) -- so that the flagless run converges (on ML-100K it stops at epoch
#: 115 with its best at 100, where the earlier 100-epoch budget ended on its best epoch)
#: the P@3 stopping rule shared by the cml, mf-bpr and dpcml recipes (each sets its own epoch cap)
_P3_UNTIL_CONVERGED = dict(eval_every=5, patience=6, min_delta=1e-3)
_CML_DEFAULTS = dict(dim=100, margin=1.0, constraint="ball", batch_size=256, n_negatives=10, lr=0.05,
                     epochs=500, **_P3_UNTIL_CONVERGED)
#: LibCML's loop (train_example.py): Adagrad lr 0.05, validation AUC every epoch, no early stop
_LIBCML_LOOP = dict(lr=0.05, select_metric="AUC", eval_every=1, patience=0, min_delta=0.0)
RECIPES.register("sfcml", Recipe(
    "cml-sphere", "squared", ALL_PAIRS,
    dict(dim=100, margin=1.0, batch_size=256, lr=0.5, optimizer="adagrad", weight_decay=1e-5,
         select_metric="AUC", eval_every=5, patience=6, min_delta=1e-4, epochs=1000),
    "LibCML train_example.py argparse defaults (dim 100, margin 1.0, batch 256 users, weight decay 1e-5), "
    "OPT_DICTS['SFCML'] = Adagrad, model/SFCML.py's squared all-pairs loss, best validation AUC; ours: lr 0.5 "
    "(LibCML 0.05) and validation every 5 epochs until AUC gains <= 0.01 points in 30 epochs (patience 6, "
    "min_delta 1e-4, at most 1,000 epochs), chosen so that the flagless run converges on the four shared "
    "datasets (module docstring)"))
RECIPES.register("cml", Recipe(
    "cml", "hinge", "unis", _CML_DEFAULTS,
    "CML baselines as run in the DPCML/LibCML comparison: unit-ball clipping, margin 1.0, 10 negatives",
    name_sampler=True))
_MF_BPR = Recipe("mf", "bpr", "unis", dict(dim=100, batch_size=256, n_negatives=1, lr=0.05, epochs=500,
                                           **_P3_UNTIL_CONVERGED),
                 "MF-BPR (Rendle et al. 2009): one uniform negative per pair, no norm constraint; cml's stopping "
                 "rule (with the engine's loop -- 100 epochs, patience 10, any gain counting -- ML-1M ended at best "
                 "epoch 90 of 100)")
RECIPES.register("mf-bpr", _MF_BPR)
RECIPES.register("mf", _MF_BPR)
# DPCML (Bao et al., NeurIPS 2022): the authors' scripts and parse_args defaults (statusrank/DPCML @c686b3f)
#: the authors' loop (train_best.py): best validation P@3 every epoch for 100 epochs, no early stop
DPCML_AUTHORS_LOOP = dict(epochs=100, eval_every=1, patience=0, min_delta=0.0)
#: ours, so that the flagless run converges: cml's rule (validation P@3 every 5 epochs until it gains <= 0.1
#: points in 30 epochs, at most 300 epochs); the authors' 100 epochs end on a still-rising model on CiteULike-t
_DPCML_DEFAULTS = dict(dim=100, margin=1.0, vectors=5, constraint="user-sphere", optimizer="adam", lr=1e-3,
                       weight_decay=0.0, batch_size=256, n_negatives=10, select_metric="P@3",
                       epochs=300, **_P3_UNTIL_CONVERGED)
RECIPES.register("dpcml", Recipe(
    "dpcml", "hinge", "hars", dict(_DPCML_DEFAULTS, diversity=(10.0, 0.05, 0.25)),
    "DPCML2 (hardest of S = 10 uniform candidates by the nearest-vector distance): statusrank/DPCML @c686b3f "
    "shells/run.sh HarCML on Steam-200k (margin 1.0, lr 1e-3, C = 5, d = 100, reg η = 10, m1 δ₁ = 0.05, "
    "m2 δ₂ = 0.25, 100 epochs; η, δ₁, δ₂ in the paper's grid η ∈ {10,20,30}, δ₁ ∈ {0,.05,.1,.2,.5}, "
    "δ₂ ∈ {.1,.25,.35,.5,.8}; the paper uses the same grid for ML-1M), utils.parse_args (Adam, batch 256, "
    "max_norm 1, 10 negatives), user vectors to norm 1 / items in the unit ball; the paper's mean-over-triplets "
    "loss (the code sums); ours: cml's stopping rule instead of train_best.py's 100 epochs with validation "
    "every epoch (DPCML_AUTHORS_LOOP)"))
RECIPES.register("dpcml1", Recipe(
    "dpcml", "hinge", "unis", dict(_DPCML_DEFAULTS, diversity=(10.0, 0.1, 0.35)),
    "DPCML1 (10 uniform negatives per pair, each its own triplet): statusrank/DPCML @c686b3f shells/run.sh "
    "COCML on Steam-200k (margin 1.0, lr 1e-3, C = 5, d = 100, η = 10, δ₁ = 0.1, δ₂ = 0.35, 100 epochs), "
    "otherwise as dpcml. A batch here is 256 (user, positive) pairs with their 10 negatives (2,560 triplets); "
    "the code's UniformSampler makes each negative its own dataset row and batches 256 triplets, i.e. 10x "
    "the Adam steps per epoch"))
RECIPES.register("dpcml-sf", Recipe(
    "dpcml", "squared", ALL_PAIRS,
    dict(RECIPES.get("sfcml").defaults, vectors=5, constraint="sphere", diversity=(10.0, 0.05, 0.25)),
    "DPCML-SF, a combination no paper built: SFCML's exact all-pairs squared loss and the sfcml recipe's "
    "training settings (Adagrad, weight decay 1e-5, best validation AUC, run until it stops rising; not "
    "tuned for DPCML-SF) over DPCML's nearest-vector scores, C = 5 vectors on the unit sphere (score "
    "max_c 2<g_u^c, v>), DPCML2's diversity control"))
RECIPES.register("lightgcn", Recipe(
    "lightgcn", "bpr", "unis",
    dict(dim=64, layers=2, optimizer="adam", lr=1e-3, weight_decay=0.0, batch_size=2048, n_negatives=1,
         embedding_reg=1e-5, epochs=2000, eval_every=5, patience=10, select_metric="Recall@20", protocol="standard"),
    "LightGCN (He et al., SIGIR 2020) with BPR as the AdvInfoNCE authors run it (LehengTHU/AdvInfoNCE @e7c0416 "
    "parse.py: embed_size 64, n_layers 2, Adam lr 1e-3 (Coat script), batch 2048, regs 1e-5 on the batch's free "
    "rows, one uniform negative, validation Recall@20 every 5 epochs, patience 10 evaluations, 2000 epochs); "
    "LightGCN's own paper: 3 layers, reg 1e-4"))
# a bare backbone given as --model trains with the CML-style sampled hinge unless --loss says otherwise
_BARE = Recipe("", "hinge", "unis", _CML_DEFAULTS, "bare backbone: sampled triplet hinge (CML defaults)",
               name_sampler=True)

#: dataset-specific presets: LibCML shells/SFCML.sh for ML-100K (lr 5e-2, margin 2.0, dim 256, 300 epochs)
#: in LibCML's loop (validation AUC every epoch, no early stop)
DATASET_PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    ("ml-100k-libcml", "sfcml"): dict(_LIBCML_LOOP, margin=2.0, dim=256, epochs=300),
    ("ml-100k-libcml", "dpcml-sf"): dict(_LIBCML_LOOP, margin=2.0, dim=256, epochs=300),   # SFCML's ML-100K script
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
    ``patience`` counts evaluations (not epochs) without an improvement of ``select_metric`` by more
    than ``min_delta`` (fractions: 1e-4 = 0.01 points); 0 disables early stopping. ``select_metric``: ``"P@3"`` (DPCML's choice) or ``"AUC"`` (LibCML's).
    ``dataset`` is a registry name or an absolute path; ``split_seed`` seeds the 3:1:1 split of
    data that has no fixed split.

    DPCML only (backbone ``dpcml``, :mod:`rankguard.recsys.dpcml`): ``vectors`` = C user vectors;
    ``diversity`` = (η, δ₁, δ₂) of the diversity regulariser (default: the authors' DPCML2 script,
    η = 10, δ₁ = 0.05, δ₂ = 0.25); ``vector_rule`` ``fixed`` (BPA, C_u = C) or ``log2`` (APA,
    C_u = min(C, max(1, ⌊log₂|I_u|⌋)), our reading); ``user_vectors`` ``free`` or ``projected``
    (e_u^c = P_cᵀu); ``diversity_form`` ``paper`` (ψ on δ_u, batch users) or ``pairs`` (the authors'
    code: per-pair hinges over the whole user table); ``constraint`` may also be ``user-sphere``
    (the authors': user vectors to norm 1, items in the unit ball).
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
    #: sampled objectives: each training pair this many times per epoch (the DPCML code's DPCML1: 10 triplets
    #: per pair, one negative each, batches of 256 triplets = --negatives 1 --pair-repeats 10)
    pair_repeats: int = 1
    sampler_options: dict[str, Any] = field(default_factory=dict)
    optimizer: str = "adagrad"
    lr: float = 0.05
    weight_decay: float = 1e-5
    batch_size: int = 256
    epochs: int = 100
    eval_every: int = 5
    patience: int = 10
    min_delta: float = 0.0
    select_metric: str = "P@3"
    seed: int = 0
    eval_block_size: int = 1024
    vectors: int = 5
    diversity: tuple[float, float, float] = (10.0, 0.05, 0.25)
    vector_rule: str = "fixed"
    user_vectors: str = "free"
    diversity_form: str = "paper"
    #: cold start (issue #8, :mod:`rankguard.recsys.coldstart`): "" = off, "items:0.2", "users:0.2", both
    cold_start: str = ""
    #: DropoutNet regime with --cold-start: "pre" (backbone first, then DN on frozen embeddings) or "joint"
    dropoutnet: str = "pre"
    #: cold-item candidates: "all" (warm and cold items ranked together) or "cold" (cold items only)
    cold_candidates: str = "all"
    #: inner-product backbones (mf, lightgcn): "dot" or "cosine" scores
    similarity: str = "dot"
    #: LightGCN propagation layers K
    layers: int = 2
    #: InfoNCE / AdvInfoNCE temperature τ and AdvInfoNCE's negative-mass factor k
    temperature: float = 0.75
    k_neg: float = 64.0
    #: batch L2 on the free rows of the batch, embedding_reg · ½‖rows‖² / B (LightGCN's / AdvInfoNCE's regs)
    embedding_reg: float = 0.0
    #: AdvInfoNCE adversary: Adam lr, an adversarial pass every adv_interval epochs, at most adv_passes of
    #: them (the KL budget), hardness tables of adv_dim, penalty adv_reg · ½‖hardness rows‖² / B
    adv_lr: float = 1e-2
    adv_interval: int = 15
    adv_passes: int = 20
    adv_dim: int = 64
    adv_reg: float = 1e-5
    #: DropoutNet with --cold-start (:class:`rankguard.recsys.coldstart.dropoutnet.DropoutNetSettings` holds
    #: the defaults and their sources): input dropout rate (0.5, the DN paper's), tower hidden sizes, epochs
    #: (pre-training regime), Adam lr, users / items per step, the joint regime's reproduction weight, inputs
    dn_dropout: float = _DN.dropout
    dn_hidden: tuple[int, ...] = _DN.hidden
    dn_epochs: int = _DN.epochs
    dn_lr: float = _DN.lr
    dn_users_per_step: int = _DN.users_per_step
    dn_items_per_step: int = _DN.items_per_step
    dn_joint_weight: float = _DN.joint_weight
    dn_inputs: str = _DN.inputs

    def __post_init__(self) -> None:
        recipe_of(self.model)
        MODELS.get(self.backbone)
        OPTIMIZERS.get(self.optimizer)
        check_loss_sampler(self.loss, self.sampler)
        if not isinstance(self.sampler_options, dict):
            raise TypeError(f"`sampler_options` must be a dict, got {type(self.sampler_options).__name__}")
        if self.sampler_options:
            if self.sampler == ALL_PAIRS:
                raise ValueError(f"sampler options {sorted(self.sampler_options)} given, but --sampler all samples nothing")
            SAMPLERS.get(self.sampler).check_options(**self.sampler_options)
        check_int_flags(self, ("dim", "batch_size", "epochs", "eval_every", "n_negatives", "eval_block_size",
                               "pair_repeats"), 1)
        check_int_flags(self, ("patience", "seed", "split_seed", "layers", "adv_passes"), 0)
        check_int_flags(self, ("adv_interval", "adv_dim"), 1)
        check_number_flags(self, ("lr", "temperature", "k_neg", "adv_lr"), strict=True)
        check_number_flags(self, ("margin", "weight_decay", "cov_weight", "embedding_reg", "adv_reg", "min_delta"))
        if self.similarity not in SIMILARITIES:
            raise ValueError(f"--similarity must be one of {', '.join(SIMILARITIES)}, got {self.similarity!r}")
        if self.similarity != "dot" and self.backbone not in INNER_PRODUCT_BACKBONES:
            raise ValueError(f"--similarity {self.similarity} applies to --model {'/'.join(INNER_PRODUCT_BACKBONES)} "
                             f"only (this run's backbone is {self.backbone!r}, a distance model)")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if self.select_metric not in METRIC_KEYS:
            raise ValueError(f"--select-metric must be one of {', '.join(METRIC_KEYS)}, got {self.select_metric!r}")
        self._check_dpcml()
        if self.cold_start:
            from rankguard.recsys.coldstart.splits import parse_cold_start
            parse_cold_start(self.cold_start)
        if self.dropoutnet not in ("", "pre", "joint"):
            raise ValueError(f"--dropoutnet must be pre or joint, got {self.dropoutnet!r}")
        if self.cold_candidates not in ("all", "cold"):
            raise ValueError(f"--cold-candidates must be all or cold, got {self.cold_candidates!r}")
        check_int_flags(self, ("dn_epochs", "dn_users_per_step", "dn_items_per_step"), 1)
        check_number_flags(self, ("dn_lr",), strict=True)
        check_number_flags(self, ("dn_dropout", "dn_joint_weight"))
        if self.dn_dropout > 1.0:
            raise ValueError(f"--dn-dropout must be a rate in [0, 1], got {self.dn_dropout!r}")
        self.dn_hidden = check_dn_hidden(self.dn_hidden, "--dn-hidden")
        if self.dn_inputs not in DN_INPUTS:
            raise ValueError(f"--dn-inputs must be one of {', '.join(DN_INPUTS)}, got {self.dn_inputs!r}")

    def _check_dpcml(self) -> None:
        dpcml = self.backbone == "dpcml"
        if self.constraint not in (CONSTRAINTS if dpcml else ("ball", "sphere")):
            raise ValueError(f"--constraint must be one of {', '.join(CONSTRAINTS if dpcml else ('ball', 'sphere'))}"
                             f"{'' if dpcml else ' (user-sphere: --model dpcml only)'}, got {self.constraint!r}")
        if isinstance(self.vectors, bool) or not isinstance(self.vectors, int) or self.vectors < 1:
            raise ValueError(f"--vectors must be an integer >= 1, got {self.vectors!r}")
        if isinstance(self.diversity, str):
            raise ValueError(f"--diversity must be three numbers eta,delta1,delta2, got {self.diversity!r}")
        self.diversity = check_diversity(self.diversity if isinstance(self.diversity, (list, tuple)) else [self.diversity])
        for flag, value, valid in (("--vector-rule", self.vector_rule, VECTOR_RULES),
                                   ("--user-vectors", self.user_vectors, USER_VECTORS),
                                   ("--diversity-form", self.diversity_form, DIVERSITY_FORMS)):
            if value not in valid:
                raise ValueError(f"{flag} must be one of {', '.join(valid)}, got {value!r}")
        if dpcml and self.cov_weight:
            raise ValueError("--cov-weight (CML's covariance regulariser) is not defined for --model dpcml; "
                             "its regulariser is --diversity")

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


#: the TrainConfig fields only the DPCML backbone reads
DPCML_FIELDS = ("vectors", "diversity", "vector_rule", "user_vectors", "diversity_form")
#: backbones scoring by inner product (``--similarity`` applies); ``--layers`` applies to lightgcn only
INNER_PRODUCT_BACKBONES = ("mf", "lightgcn")
#: the fields only an adversarial loss (advinfonce) reads
ADVERSARY_FIELDS = ("adv_lr", "adv_interval", "adv_passes", "adv_dim", "adv_reg")
#: dataset-level defaults (under every recipe): the shifted test sets are evaluated as the AdvInfoNCE
#: authors do — full ranking with other splits' items masked (``standard``; under ``authors`` Recall@20
#: would need >= 20 test items per user and Coat users have 16 test ratings), selection on Recall@20
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    name: dict(protocol="standard", select_metric="Recall@20")
    for name in ("coat", "ml-100k-popshift", "ml-1m-popshift")
}


def make_config(model: str, dataset: str | None = None, **overrides: Any) -> TrainConfig:
    """Recipe defaults ← dataset preset ← explicit ``overrides`` (``None`` values ignored).

    ``--loss`` given without ``--sampler`` takes the loss's own sampler when it has one
    (``squared`` → ``all``), else the recipe's.

    >>> make_config("sfcml", "ml-100k-libcml").margin, make_config("sfcml", "ml-100k-libcml", margin=1.5).margin
    (2.0, 1.5)
    >>> c = make_config("sfcml"); (c.select_metric, c.eval_every, c.patience, c.min_delta, c.lr)   # until converged
    ('AUC', 5, 6, 0.0001, 0.5)
    >>> c = make_config("sfcml", "ml-100k-libcml"); (c.eval_every, c.patience, c.lr, c.epochs)   # LibCML's loop
    (1, 0, 0.05, 300)
    >>> c = make_config("cml"); (c.eval_every, c.patience, c.min_delta, c.epochs)   # until P@3 stops rising
    (5, 6, 0.001, 500)
    >>> make_config("cml", sampler="hars").method, make_config("cml", loss="squared").sampler
    ('cml-hars', 'all')
    >>> c = make_config("dpcml"); (c.backbone, c.sampler, c.n_negatives, c.vectors, c.diversity, c.constraint)
    ('dpcml', 'hars', 10, 5, (10.0, 0.05, 0.25), 'user-sphere')
    >>> c = make_config("dpcml"); (c.eval_every, c.patience, c.min_delta, c.epochs)
    (5, 6, 0.001, 300)
    """
    recipe = recipe_of(model)
    given = {k: v for k, v in overrides.items() if v is not None}
    backbone = given.get("backbone", recipe.backbone)
    loss = given.get("loss", recipe.loss)
    for fields, applies, where in ((DPCML_FIELDS, backbone == "dpcml", "--model dpcml"),
                                   (("layers",), backbone == "lightgcn", "--model lightgcn"),
                                   (ADVERSARY_FIELDS, LOSSES.get(loss).adversarial, "--loss advinfonce")):
        misplaced = sorted(k for k in fields if k in given and not applies)
        if misplaced:
            raise ValueError(f"{', '.join('--' + k.replace('_', '-') for k in misplaced)} applies to {where} "
                             f"only (this run: backbone {backbone!r}, loss {loss!r})")
    values: dict[str, Any] = dict(recipe.defaults)
    if loss != recipe.loss:   # --loss infonce on an MF recipe: the loss's own published settings
        values.update(LOSSES.get(loss).defaults)
    values.update(DATASET_DEFAULTS.get(Path(str(dataset)).name if dataset else "", {}))
    values.update(DATASET_PRESETS.get((str(dataset), str(model).lower()), {}))
    values.update(given)
    values.setdefault("backbone", recipe.backbone)
    values.setdefault("loss", recipe.loss)
    if "sampler" not in values:
        implied = LOSSES.get(values["loss"]).default_sampler if "loss" in given else None
        values["sampler"] = implied or recipe.sampler
    if "n_negatives" not in given and values["sampler"] != ALL_PAIRS:
        own = SAMPLERS.get(values["sampler"]).default_count   # e.g. DiHarS: S = 100 candidates
        if own is not None:
            values["n_negatives"] = own
    if dataset is not None:
        values["dataset"] = str(dataset)
    return TrainConfig(model=str(model).lower(), **values)
