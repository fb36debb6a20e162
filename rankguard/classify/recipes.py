"""Classification recipes: the losses by name (:data:`LOSSES`, with defaults and sources) and :class:`ClassifyConfig`.

A run is ``model (MLP, or the small CNN for CIFAR-10) + loss + SGD`` on a noisy split; every choice is a field of
:class:`ClassifyConfig`, whose ``config.json`` replays the run. Loss options (``loss_options``) are
checked against the loss's declared options, so a flag that does not apply to ``--loss`` is an error.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from rankguard.cli_args import check_int_flags, check_number_flags
from rankguard.losses.ldr import (ALDRKLLoss, CrossEntropyLoss, FocalLoss, GCELoss, LabelSmoothingLoss, LDRKLLoss,
                                  MAELoss, SCELoss)
from rankguard.registry import Registry


@dataclass(frozen=True)
class LossRecipe:
    """A loss: its class, its options with defaults (and their source), and whether it keeps per-sample state."""

    cls: Callable[..., nn.Module]
    defaults: dict[str, Any]
    source: str
    per_sample: bool = False

    def build(self, options: dict[str, Any], num_samples: int) -> nn.Module:
        kwargs = {**self.defaults, **options}
        return self.cls(num_samples, **kwargs) if self.per_sample else self.cls(**kwargs)


LOSSES: Registry[LossRecipe] = Registry("loss")
LOSSES.register("ce", LossRecipe(CrossEntropyLoss, {"temperature": 1.0}, "cross-entropy"))
LOSSES.register("ls", LossRecipe(LabelSmoothingLoss, {"smoothing": 0.1}, "Szegedy et al., CVPR 2016"))
LOSSES.register("focal", LossRecipe(FocalLoss, {"gamma": 2.0}, "Lin et al., ICCV 2017"))
LOSSES.register("gce", LossRecipe(GCELoss, {"q": 0.7}, "Zhang & Sabuncu, NeurIPS 2018"))
LOSSES.register("sce", LossRecipe(SCELoss, {"alpha": 0.1, "beta": 1.0}, "Wang et al., ICCV 2019 (CIFAR-10 settings)"))
LOSSES.register("mae", LossRecipe(MAELoss, {}, "Ghosh et al., AAAI 2017"))
LOSSES.register("ldr-kl", LossRecipe(LDRKLLoss, {"margin": 0.1, "lam": 10.0},
                                     "Zhu, Ying, Yang, ICML 2023 (c = 0.1, λ = 10; REFERENCES.md §7)"))
LOSSES.register("aldr-kl", LossRecipe(ALDRKLLoss, {"margin": 0.1, "lam0": 10.0, "alpha": 2.0},
                                      "Zhu, Ying, Yang, ICML 2023 (c = 0.1, λ₀ = 10, α = 2; REFERENCES.md §7)",
                                      per_sample=True))


@dataclass
class ClassifyConfig:
    """Everything a classification run depends on; defaults follow REFERENCES.md §7 (the paper's
    tabular protocol: 100 epochs, SGD with momentum 0.9, batch 64) where it states them.

    ``lr`` (0.05), ``weight_decay`` (5e-4), the MLP width and the 20% noisy validation split are our
    choices (not stated there). ``noise_seed`` ``None`` means "the training seed". Selection keeps the
    epoch with the best ``top1_accuracy`` on the *noisy* validation split.

    ``model`` ``None`` is resolved here, so ``config.json`` always names one:
    :func:`~rankguard.classify.models.default_model` of the dataset's input shape (``cnn`` for
    CIFAR-10's ``[3, 32, 32]``, ``mlp`` otherwise); ``hidden`` ``None`` becomes that model's default
    (MLP widths 128 128, CNN channels 32 64 128). ``augment`` (image datasets only) turns on
    :func:`~rankguard.classify.augment.random_crop_flip` for training batches; ``max_train`` caps
    the training pool (train + validation) at a stratified subsample of that many rows.
    """

    dataset: str = "digits"
    loss: str = "ce"
    noise: str = "none"
    model: str | None = None
    hidden: list[int] | None = None
    loss_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 100
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    eval_every: int = 1
    patience: int = 0
    seed: int = 0
    split_seed: int = 0
    noise_seed: int | None = None
    fold: int = 0
    folds: int = 5
    val_fraction: float = 0.2
    augment: bool = False
    max_train: int | None = None

    def __post_init__(self) -> None:
        from rankguard.classify.data import INPUT_SHAPES
        from rankguard.classify.models import MODELS, default_hidden, default_model

        if self.model is None:
            self.model = default_model(INPUT_SHAPES.get(self.dataset))
        if self.model not in MODELS:
            raise ValueError(f"--model must be one of {', '.join(MODELS.names())}, got {self.model!r}")
        if self.hidden is None:
            self.hidden = default_hidden(self.model)
        if not isinstance(self.augment, bool):
            raise ValueError(f"--augment must be true or false, got {self.augment!r}")
        if self.augment and self.dataset not in INPUT_SHAPES:
            raise ValueError(f"--augment crops and flips images; --dataset {self.dataset} is not an image dataset "
                             f"(image datasets: {', '.join(INPUT_SHAPES)})")
        recipe = LOSSES.get(self.loss)
        unknown = sorted(set(self.loss_options) - set(recipe.defaults))
        if unknown:
            allowed = ", ".join("--" + k.replace("_", "-") for k in recipe.defaults) or "none"
            raise ValueError(f"{', '.join('--' + k.replace('_', '-') for k in unknown)} does not apply to --loss "
                             f"{self.loss} (its options: {allowed})")
        if self.noise_seed is None:
            self.noise_seed = self.seed
        check_int_flags(self, ("epochs", "batch_size", "eval_every"), 1)
        check_int_flags(self, ("patience", "seed", "split_seed"), 0)
        if self.max_train is not None:
            check_int_flags(self, ("max_train",), 2)
        check_number_flags(self, ("lr",), strict=True)
        check_number_flags(self, ("momentum", "weight_decay"))

    @property
    def resolved_loss_options(self) -> dict[str, Any]:
        return {**LOSSES.get(self.loss).defaults, **self.loss_options}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "config") -> "ClassifyConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return cls(**values)
