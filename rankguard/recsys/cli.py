"""``rankguard recsys train`` and ``rankguard recsys evaluate``: thin wrappers over the trainer."""

from __future__ import annotations

import argparse
from pathlib import Path


from rankguard.recsys.data import Split, load_dataset
from rankguard.recsys.splits import ratio_split
from rankguard.samplers import SAMPLERS


def load_split(dataset: str, seed: int = 1234) -> Split:
    """Registry name or path -> :class:`Split`; plain interactions are split 3:1:1 per user with ``seed``."""
    data = load_dataset(dataset)
    if isinstance(data, Split):
        return data
    return ratio_split(data, seed=seed)


def register(sub: argparse._SubParsersAction) -> None:
    from rankguard.recsys.trainer import METRIC_KEYS, MODEL_CHOICES, OPTIMIZERS

    p = sub.add_parser("recsys", help="collaborative ranking: train and evaluate MF-BPR, CML, SFCML")
    p.set_defaults(_parser=p)
    rs = p.add_subparsers(dest="recsys_command", metavar="ACTION")

    t = rs.add_parser("train", help="train a model and write a run directory",
                      description="Train on a dataset (registry name or path to users.dat / a folder with "
                                  "users.dat + train/val/test.npz). Unset options take the model's defaults "
                                  "(LibCML public config; ML-100K SFCML script for ml-100k-libcml).")
    t.add_argument("--dataset", required=True, help="registry name (ml-100k-libcml, ml-1m, ...) or path")
    t.add_argument("--model", required=True, choices=MODEL_CHOICES)
    t.add_argument("--sampler", choices=sorted(SAMPLERS), default=None, help="negative sampler for --model cml")
    t.add_argument("--protocol", choices=("standard", "authors"), default="authors")
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--dim", type=int, default=None)
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--margin", type=float, default=None)
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--weight-decay", type=float, default=None)
    t.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default=None)
    t.add_argument("--surrogate", choices=("squared", "hinge", "squared_hinge"), default=None,
                   help="SFCML loss (squared = the authors' form)")
    t.add_argument("--eval-every", type=int, default=None)
    t.add_argument("--patience", type=int, default=None, help="evaluations without improvement before stopping")
    t.add_argument("--select-metric", choices=METRIC_KEYS, default=None)
    t.add_argument("--seed", type=int, default=0, help="training seed (the split of unsplit data uses --split-seed)")
    t.add_argument("--split-seed", type=int, default=1234, help="seed of the 3:1:1 split for unsplit data")
    t.add_argument("--out", required=True, help="run directory to write")
    t.set_defaults(func=run_train, _parser=t)

    e = rs.add_parser("evaluate", help="re-evaluate a run directory's checkpoint and print the table")
    e.add_argument("run_dir")
    e.add_argument("--stage", choices=("val", "test"), default="test")
    e.set_defaults(func=run_evaluate, _parser=e)


def run_train(args: argparse.Namespace) -> int:
    from rankguard.recsys.trainer import make_config, metrics_table, train

    if args.sampler is not None and args.model != "cml":
        raise ValueError(f"--sampler applies to --model cml only (got --model {args.model})")
    config = make_config(args.model, args.dataset, sampler=args.sampler, protocol=args.protocol, epochs=args.epochs,
                         dim=args.dim, lr=args.lr, margin=args.margin, batch_size=args.batch_size,
                         weight_decay=args.weight_decay, optimizer=args.optimizer, surrogate=args.surrogate,
                         eval_every=args.eval_every, patience=args.patience, select_metric=args.select_metric,
                         seed=args.seed, extra={"split_seed": args.split_seed})
    split = load_split(args.dataset, seed=args.split_seed)
    # a path is stored absolute so that `recsys evaluate DIR` works from any folder
    dataset = str(Path(args.dataset).resolve()) if Path(args.dataset).exists() else str(args.dataset)
    result = train(config, split, out=args.out, dataset=dataset)
    print(f"{config.method} on {args.dataset}: best epoch {result.best_epoch}; test metrics (%):")
    print(metrics_table(result.test_metrics), end="")
    print(f"run directory: {Path(args.out)}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from rankguard.recsys.evaluator import Evaluator
    from rankguard.recsys.trainer import METRIC_KEYS, load_run, metrics_table, score_fn_of

    config, model, run_config = load_run(args.run_dir)
    dataset = run_config.get("dataset")
    if not dataset:
        raise ValueError(f"{args.run_dir}/config.json does not name the dataset")
    split = load_split(dataset, seed=int(config.extra.get("split_seed", 1234)))
    if (split.n_users, split.n_items) != (model.n_users, model.n_items):
        raise ValueError(f"dataset {dataset!r} has {split.n_users} users x {split.n_items} items but the "
                         f"checkpoint expects {model.n_users} x {model.n_items}")
    metrics = Evaluator(split, protocol=config.protocol, block_size=config.eval_block_size).evaluate(
        score_fn_of(model), stage=args.stage)
    print(f"{config.method} on {dataset} ({args.stage}, protocol {config.protocol}), metrics (%):")
    print(metrics_table({k: metrics[k] for k in METRIC_KEYS if k in metrics}), end="")
    return 0
