"""``rankguard classify train``: a noisy-label classification run (thin wrapper over the trainer).

A run is fully described by its ``config.json``: ``--config FILE`` replays one (flags given beside it
override), ``--resume DIR`` continues a killed run from its last checkpoint, ``--overwrite``
replaces the run in ``--out``. Errors are one line naming the flag (``rankguard --debug`` for the
traceback). Choices are read from the registries.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

# the --config/--resume contract and its helpers are shared with `rankguard recsys train`
from rankguard.cli_args import finite_float, read_config, run_target

# flag dest -> ClassifyConfig field
_FIELDS = ("dataset", "loss", "noise", "model", "hidden", "epochs", "batch_size", "optimizer", "lr", "momentum",
           "weight_decay", "eval_every", "patience", "seed", "split_seed", "noise_seed", "fold", "folds",
           "val_fraction", "augment", "max_train")
# flag dest -> loss option name (stored in ClassifyConfig.loss_options)
_LOSS_OPTIONS = {"margin": "margin", "lam": "lam", "lam0": "lam0", "alpha": "alpha", "beta": "beta", "q": "q",
                 "temperature": "temperature", "smoothing": "smoothing", "gamma": "gamma"}


def register(sub: argparse._SubParsersAction) -> None:
    from rankguard.classify.data import CLASSIFY_DATASETS
    from rankguard.classify.models import MODELS
    from rankguard.classify.recipes import LOSSES
    from rankguard.training import OPTIMIZERS

    p = sub.add_parser("classify", help="multi-class learning under label noise: LDR-KL, ALDR-KL and baselines")
    p.set_defaults(_parser=p)
    cs = p.add_subparsers(dest="classify_command", metavar="ACTION")
    losses = "; ".join(f"{n} ({r.source})" for n, r in ((n, LOSSES.get(n)) for n in LOSSES.names()))
    t = cs.add_parser("train", help="train a classifier on noisy labels and write a run directory",
                      description="Inject label noise into the training pool, train, select on the noisy "
                                  "validation split, report clean-test top-1/top-5 accuracy and a suspected-label "
                                  f"ranking. Losses: {losses}.")
    t.add_argument("--dataset", default=None, choices=CLASSIFY_DATASETS.names())
    t.add_argument("--loss", default=None, choices=LOSSES.names())
    t.add_argument("--noise", default=None, metavar="SPEC",
                   help="none, uniform:RATE (label -> one of the other classes w.p. RATE) or pairflip:RATE (y -> y+1 mod K)")
    t.add_argument("--model", default=None, choices=MODELS.names(),
                   help="default: cnn for [3, 32, 32] images (cifar10, a CPU-sized stand-in for the paper's ResNet), "
                        "mlp otherwise")
    t.add_argument("--hidden", type=int, nargs="+", default=None, metavar="WIDTH",
                   help="mlp: hidden widths (default 128 128); cnn: conv channels per block (default 32 64 128)")
    t.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="image datasets: random crop (padding 4) + horizontal flip of training batches (default off)")
    t.add_argument("--max-train", type=int, default=None, metavar="N",
                   help="use a stratified subsample of N rows of the training pool (train + validation), for quick runs")
    t.add_argument("--epochs", type=int, default=None, help="default 100 (the paper's tabular runs)")
    t.add_argument("--batch-size", type=int, default=None, help="default 64")
    t.add_argument("--optimizer", choices=OPTIMIZERS.names(), default=None, help="default sgd (momentum 0.9)")
    t.add_argument("--lr", type=finite_float, default=None, help="default 0.05")
    t.add_argument("--momentum", type=finite_float, default=None)
    t.add_argument("--weight-decay", type=finite_float, default=None)
    t.add_argument("--eval-every", type=int, default=None)
    t.add_argument("--patience", type=int, default=None, help="evaluations without improvement before stopping (0 = never)")
    t.add_argument("--seed", type=int, default=None, help="training seed (default 0); also the noise seed unless --noise-seed")
    t.add_argument("--split-seed", type=int, default=None, help="seed of the test fold and validation split (default 0)")
    t.add_argument("--noise-seed", type=int, default=None)
    t.add_argument("--fold", type=int, default=None, help="test fold of --folds (digits, letter; default 0)")
    t.add_argument("--folds", type=int, default=None, help="stratified folds (default 5)")
    t.add_argument("--val-fraction", type=finite_float, default=None, help="noisy validation share of the pool (0.2)")
    g = t.add_argument_group("loss options (each applies to the losses that declare it)")
    g.add_argument("--margin", type=finite_float, default=None, help="ldr-kl, aldr-kl: c (0.1)")
    g.add_argument("--lam", type=finite_float, default=None, help="ldr-kl: λ (10)")
    g.add_argument("--lam0", type=finite_float, default=None, help="aldr-kl: λ₀ (10)")
    g.add_argument("--alpha", type=finite_float, default=None, help="aldr-kl: α (2); sce: α, the CE weight (0.1)")
    g.add_argument("--beta", type=finite_float, default=None, help="sce: β, the reverse-CE weight (1)")
    g.add_argument("--q", type=finite_float, default=None, help="gce: q (0.7)")
    g.add_argument("--temperature", type=finite_float, default=None, help="ce: T (1)")
    g.add_argument("--smoothing", type=finite_float, default=None, help="ls: ε (0.1)")
    g.add_argument("--gamma", type=finite_float, default=None, help="focal: γ (2)")
    t.add_argument("--config", default=None, metavar="FILE", help="replay a run's config.json (flags given override it)")
    t.add_argument("--out", default=None, help="run directory to write (must be new or empty)")
    mode = t.add_mutually_exclusive_group()
    mode.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    mode.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR from its last checkpoint")
    t.set_defaults(func=run_train, _parser=t)


def _given(args: argparse.Namespace) -> dict[str, Any]:
    given = {k: getattr(args, k) for k in _FIELDS if getattr(args, k, None) is not None}
    options = {name: getattr(args, dest) for dest, name in _LOSS_OPTIONS.items() if getattr(args, dest, None) is not None}
    if options:
        given["loss_options"] = options
    return given


def config_from_args(args: argparse.Namespace):
    """``--config`` file ← flags, or the defaults ← flags (``--dataset`` and ``--loss`` required)."""
    from rankguard.classify.recipes import ClassifyConfig

    given = _given(args)
    if args.config is not None:
        values = read_config(Path(args.config), "--config")
        if "loss" in given and given["loss"] != values.get("loss"):
            values["loss_options"] = {}   # another loss: the file's options belong to the old one
        values["loss_options"] = {**values.get("loss_options", {}), **given.pop("loss_options", {})}
        values.update(given)
        return ClassifyConfig.from_dict(values, where=str(args.config))
    for flag in ("dataset", "loss"):
        if flag not in given:
            raise ValueError(f"--{flag} is required (or replay a run with --config FILE / --resume DIR)")
    return ClassifyConfig(**given)


def run_train(args: argparse.Namespace) -> int:
    from rankguard.classify.recipes import ClassifyConfig
    from rankguard.classify.trainer import train

    target = run_target(args, _given(args), lambda: config_from_args(args),
                        lambda values, where: ClassifyConfig.from_dict(values, where=where))
    if target is None:
        return 0
    config, out, mode = target
    result = train(config, out=out, mode=mode)
    m = result.metrics
    top5 = f", top-5 {100 * m['top5_accuracy']:.2f}%" if "top5_accuracy" in m else ""
    print(f"{config.loss} on {config.dataset} (noise {config.noise}): clean test top-1 "
          f"{100 * m['top1_accuracy']:.2f}%{top5}; selected epoch {result.best_epoch}")
    ranks = m["suspected_labels"].get("rankings")
    if ranks:
        print("suspected labels, precision = recall at the true noise count: "
              + ", ".join(f"{k} {100 * v['precision_at_n']:.1f}%" for k, v in ranks.items()))
    print(f"run directory: {out}")
    return 0
