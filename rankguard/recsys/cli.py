"""``rankguard recsys train`` and ``rankguard recsys evaluate``: thin wrappers over the trainer.

Choices (``--model``, ``--loss``, ``--sampler``, ``--optimizer``) are read from the registries.
A run is fully described by its ``config.json``: ``--config FILE`` replays one (flags given beside
it override), ``--resume DIR`` continues a killed run from its last checkpoint.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from rankguard.cli_args import finite_float, read_config, run_target
from rankguard.recsys.data import Split, load_dataset
from rankguard.recsys.splits import ratio_split

# flag dest -> TrainConfig field (the training flags that --config / --resume interact with)
_TRAIN_FLAGS = ("model", "loss", "sampler", "dataset", "protocol", "epochs", "dim", "lr", "margin", "batch_size",
                "weight_decay", "optimizer", "eval_every", "patience", "min_delta", "select_metric", "seed",
                "split_seed", "n_negatives", "pair_repeats", "cov_weight", "constraint", "vectors", "diversity", "vector_rule", "user_vectors",
                "diversity_form", "beta", "cold_start", "dropoutnet", "cold_candidates", "similarity", "layers",
                "temperature", "k_neg", "embedding_reg", "adv_lr", "adv_interval", "adv_passes", "adv_dim", "adv_reg",
                "dn_epochs", "dn_dropout", "dn_hidden", "dn_lr", "dn_users_per_step", "dn_items_per_step",
                "dn_joint_weight", "dn_inputs")
# flags stored in TrainConfig.sampler_options rather than as fields of their own
_SAMPLER_OPTION_FLAGS = ("beta",)


def load_split(dataset: str, seed: int = 1234) -> Split:
    """Registry name or path -> :class:`Split`; plain interactions are split 3:1:1 per user with ``seed``
    (self-splitting datasets — coat, ml-100k-popshift, ml-1m-popshift — split with ``seed`` themselves)."""
    data = load_dataset(dataset, split_seed=seed)
    if isinstance(data, Split):
        return data
    return ratio_split(data, seed=seed)


def _diversity(text: str) -> tuple[float, float, float]:
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"must be three numbers eta,delta1,delta2 (e.g. 10,0.05,0.25), got {text!r}")
    return values  # type: ignore[return-value]


def register(sub: argparse._SubParsersAction) -> None:
    from rankguard.recsys.objectives import LOSSES, sampler_names
    from rankguard.recsys.recipes import METRIC_KEYS, RECIPES, model_names
    from rankguard.training import OPTIMIZERS

    p = sub.add_parser("recsys", help="collaborative ranking: train and evaluate MF-BPR, CML, SFCML, DPCML, LightGCN, "
                                      "InfoNCE / AdvInfoNCE")
    p.set_defaults(_parser=p)
    rs = p.add_subparsers(dest="recsys_command", metavar="ACTION")

    recipes = "; ".join(f"{n} = {r.backbone} + {r.loss} + {r.sampler}" for n, r in RECIPES.items())
    t = rs.add_parser("train", help="train a model and write a run directory",
                      description="Train on a dataset (registry name or path to users.dat / a folder with "
                                  "users.dat + train/val/test.npz). Unset options take the recipe's defaults "
                                  f"(LibCML public config; ML-100K SFCML script for ml-100k-libcml). Recipes: {recipes}.")
    t.add_argument("--dataset", default=None, help="registry name (ml-100k-libcml, ml-1m, ...) or path")
    t.add_argument("--model", default=None, choices=model_names(), metavar="MODEL",
                   help=f"a recipe or a backbone: {', '.join(model_names())}")
    t.add_argument("--loss", default=None, choices=LOSSES.names(),
                   help="hinge/bpr/infonce/advinfonce on sampled negatives, squared/squared_hinge (and hinge) over all pairs")
    t.add_argument("--sampler", default=None, choices=sampler_names(),
                   help="negatives: a sampler, or 'all' = every (positive, unobserved) pair")
    t.add_argument("--beta", type=finite_float, default=None,
                   help="DiHarS: share of the hardest candidates averaged, the one-way pAUC bound FPR <= beta (default 0.1)")
    t.add_argument("--negatives", dest="n_negatives", type=int, default=None,
                   help="sampler count: negatives per pair (HarS: candidates)")
    t.add_argument("--pair-repeats", dest="pair_repeats", type=int, default=None, metavar="N",
                   help="sampled objectives: each training pair N times per epoch with fresh negatives (default 1; "
                        "the DPCML code's DPCML1 is --negatives 1 --pair-repeats 10)")
    t.add_argument("--protocol", choices=("standard", "authors"), default=None, help="evaluation protocol (default authors)")
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--dim", type=int, default=None)
    t.add_argument("--lr", type=finite_float, default=None)
    t.add_argument("--margin", type=finite_float, default=None)
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--weight-decay", type=finite_float, default=None)
    t.add_argument("--cov-weight", type=finite_float, default=None, help="CML covariance regulariser weight")
    t.add_argument("--constraint", choices=("ball", "sphere", "user-sphere"), default=None,
                   help="norm constraint: unit ball, unit sphere, or (DPCML) user vectors on the sphere + items in the ball")
    t.add_argument("--vectors", type=int, default=None, metavar="C", help="DPCML: vectors per user (default 5)")
    t.add_argument("--diversity", type=_diversity, default=None, metavar="ETA,D1,D2",
                   help="DPCML diversity regulariser weight and band (default 10,0.05,0.25)")
    t.add_argument("--vector-rule", choices=("fixed", "log2"), default=None,
                   help="DPCML vectors per user: fixed = C (BPA), log2 = min(C, max(1, floor(log2 |I_u|))) (APA)")
    t.add_argument("--user-vectors", choices=("free", "projected"), default=None,
                   help="DPCML user vectors: C free vectors, or projections P_c^T u of one embedding")
    t.add_argument("--diversity-form", choices=("paper", "pairs"), default=None,
                   help="DPCML regulariser: the paper's per-user band (default) or the authors' code's per-pair hinges")
    t.add_argument("--cold-start", default=None, metavar="KIND:FRAC",
                   help="hold out a seeded share of items or users as cold (items:0.2, users:0.2, or both "
                        "comma-separated) and train DropoutNet on side features (ml-100k)")
    t.add_argument("--dropoutnet", choices=("pre", "joint"), default=None,
                   help="with --cold-start: pre = backbone first, then DropoutNet on frozen embeddings (default); "
                        "joint = both trained together")
    t.add_argument("--cold-candidates", choices=("all", "cold"), default=None,
                   help="cold-item ranking over all items (default) or over cold items only")
    from rankguard.recsys.coldstart.dropoutnet import DEFAULTS as DN, INPUTS as DN_INPUTS, parse_hidden
    t.add_argument("--dn-epochs", type=int, default=None,
                   help=f"DropoutNet epochs, pre-training regime; the joint regime runs --epochs (default {DN.epochs})")
    t.add_argument("--dn-dropout", type=finite_float, default=None, metavar="RATE",
                   help=f"DropoutNet input dropout on the preference part (default {DN.dropout:g}, the DN paper's "
                        "rate; layer6ai-labs/DropoutNet --dropout 0.5)")
    t.add_argument("--dn-hidden", type=parse_hidden, default=None, metavar="H1,H2",
                   help="DropoutNet tower tanh layers, or none = linear (default 800,400: the DN paper's CiteULike "
                        "architecture, the authors' --model-select 800 400)")
    t.add_argument("--dn-lr", type=finite_float, default=None, help=f"DropoutNet Adam lr (default {DN.lr:g}, ours)")
    t.add_argument("--dn-users-per-step", type=int, default=None,
                   help=f"DropoutNet users per step (default {DN.users_per_step}, ours)")
    t.add_argument("--dn-items-per-step", type=int, default=None,
                   help=f"DropoutNet items scored per step, half from the users' positives (default {DN.items_per_step}, ours)")
    t.add_argument("--dn-joint-weight", type=finite_float, default=None,
                   help=f"joint regime: weight of DropoutNet's reproduction loss (default {DN.joint_weight:g})")
    t.add_argument("--dn-inputs", choices=DN_INPUTS, default=None,
                   help="DropoutNet tower inputs: both = preference + side features (default), preference = no side "
                        "features, features = side features only (the features-only baseline)")
    t.add_argument("--similarity", choices=("dot", "cosine"), default=None,
                   help="mf / lightgcn scores: inner product or cosine (default dot; cosine with --loss infonce/advinfonce)")
    t.add_argument("--layers", type=int, default=None, metavar="K", help="lightgcn: propagation layers (default 2)")
    t.add_argument("--temperature", type=finite_float, default=None, metavar="TAU",
                   help="infonce / advinfonce temperature (default 0.75, the AdvInfoNCE authors' Coat setting)")
    t.add_argument("--k-neg", type=finite_float, default=None,
                   help="advinfonce negative-mass factor k (default 64; k = 1 with uniform hardness = InfoNCE)")
    t.add_argument("--embedding-reg", type=finite_float, default=None,
                   help="batch L2 on the batch's free rows, reg * 0.5 * |rows|^2 / B (default 0; 1e-5 for lightgcn "
                        "and the contrastive losses)")
    t.add_argument("--adv-lr", type=finite_float, default=None, help="advinfonce: the hardness adversary's Adam lr (1e-2)")
    t.add_argument("--adv-interval", type=int, default=None,
                   help="advinfonce: an adversarial pass every this many epochs (15)")
    t.add_argument("--adv-passes", type=int, default=None,
                   help="advinfonce: at most this many adversarial passes, the KL budget (20)")
    t.add_argument("--adv-dim", type=int, default=None, help="advinfonce: hardness embedding size (64)")
    t.add_argument("--adv-reg", type=finite_float, default=None,
                   help="advinfonce: penalty on the hardness rows the adversary pays (1e-5)")
    t.add_argument("--optimizer", choices=OPTIMIZERS.names(), default=None)
    t.add_argument("--eval-every", type=int, default=None)
    t.add_argument("--patience", type=int, default=None,
                   help="evaluations without improvement before stopping (0 = never)")
    t.add_argument("--min-delta", type=finite_float, default=None,
                   help="the validation gain (a fraction: 1e-4 = 0.01 points) that resets --patience (0)")
    t.add_argument("--select-metric", choices=METRIC_KEYS, default=None)
    t.add_argument("--seed", type=int, default=None, help="training seed (default 0; the split uses --split-seed)")
    t.add_argument("--split-seed", type=int, default=None, help="seed of the 3:1:1 split for unsplit data (default 1234)")
    t.add_argument("--config", default=None, metavar="FILE", help="replay a run's config.json (flags given override it)")
    t.add_argument("--out", default=None, help="run directory to write (must be new or empty)")
    mode = t.add_mutually_exclusive_group()
    mode.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    mode.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR from its last checkpoint")
    t.set_defaults(func=run_train, _parser=t)

    tu = rs.add_parser("tune", help="grid search: one run per grid point, select on validation, write the best config",
                       description="Train one run (one seed) per point of --grid into OUT/runs/<point>/, select the "
                                   "point with the best validation --select-metric (test metrics are never looked "
                                   "at), write OUT/best_config.json (replay: rankguard recsys train --config "
                                   "OUT/best_config.json --out DIR), OUT/tuning.json and OUT/tuning.md. Training "
                                   "flags given here fix that field for every point. Re-running skips finished points.")
    for action in t._actions:  # the train flags, shared (as argparse's parents= does), so both stay in step
        if action.dest in _TRAIN_FLAGS:
            tu._add_action(action)
    tu.add_argument("--grid", nargs="+", required=True, metavar="KEY=V1,V2",
                    help="TrainConfig fields and their values, e.g. lr=0.01,0.05 margin=1,2 (sampler_options.beta=0.05,0.1)")
    tu.add_argument("--config", default=None, metavar="FILE", help="start from a run's config.json (flags override it)")
    tu.add_argument("--out", required=True, help="tuning folder (runs/, best_config.json, tuning.json, tuning.md)")
    tu.add_argument("--jobs", type=int, default=1, metavar="N",
                    help="train up to N grid points at once, one process and one torch thread each (default 1)")
    tu.set_defaults(func=run_tune, _parser=tu)

    e = rs.add_parser("evaluate", help="re-evaluate a run directory's checkpoint and print the table")
    e.add_argument("run_dir")
    e.add_argument("--stage", choices=("val", "test", "iid_test"), default="test",
                   help="iid_test: the in-distribution test of a shifted split (coat, *-popshift)")
    e.set_defaults(func=run_evaluate, _parser=e)


def _given(args: argparse.Namespace) -> dict[str, Any]:
    given = {k: getattr(args, k) for k in _TRAIN_FLAGS if getattr(args, k, None) is not None}
    for option in _SAMPLER_OPTION_FLAGS:   # flags that live in TrainConfig.sampler_options
        if option in given:
            given.setdefault("sampler_options", {})[option] = given.pop(option)
    return given


def config_from_args(args: argparse.Namespace):
    """The :class:`TrainConfig` the flags ask for: ``--config`` file ← flags, or recipe defaults ← flags."""
    from rankguard.recsys.recipes import TrainConfig, make_config

    given = _given(args)
    if args.config is not None:
        values = read_config(Path(args.config), "--config")
        options = {**values.get("sampler_options", {}), **given.pop("sampler_options", {})}
        values.update(given)
        values["sampler_options"] = options
        config = TrainConfig.from_dict(values, where=str(args.config))
    else:
        for flag in ("dataset", "model"):
            if flag not in given:
                raise ValueError(f"--{flag} is required (or replay a run with --config FILE / --resume DIR)")
        model, dataset = given.pop("model"), given.pop("dataset")
        config = make_config(model, dataset, **given)
    if Path(config.dataset).exists():  # stored absolute so the run replays from any folder
        config.dataset = str(Path(config.dataset).resolve())
    return config


def run_train(args: argparse.Namespace) -> int:
    from rankguard.recsys.recipes import TrainConfig
    from rankguard.recsys.trainer import convergence_warning, metrics_table, train

    target = run_target(args, _given(args), lambda: config_from_args(args),
                        lambda values, where: TrainConfig.from_dict(values, where=where))
    if target is None:
        return 0
    config, out, mode = target
    if config.cold_start:   # cold start (rankguard.recsys.coldstart): its own split and report
        from rankguard.recsys.coldstart import load_cold_split
        from rankguard.recsys.coldstart.train import cold_table

        result = train(config, load_cold_split(config.dataset, config.cold_start, seed=config.split_seed),
                       out=out, mode=mode)
        print(f"{config.method} + DropoutNet ({config.dropoutnet}) on {config.dataset}: test metrics (%):")
        print(cold_table(result), end="")
        print(f"run directory: {out}")
        return 0
    split = load_split(config.dataset, seed=config.split_seed)
    result = train(config, split, out=out, mode=mode)
    print(f"{config.method} on {config.dataset}: best epoch {result.best_epoch}; test metrics (%):")
    print(metrics_table(result.test_metrics), end="")
    if result.iid_metrics is not None:
        print("in-distribution test (%):")
        print(metrics_table(result.iid_metrics), end="")
    print(f"run directory: {out}")
    warning = convergence_warning(config, result)
    if warning:
        print(warning, file=sys.stderr)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from rankguard.recsys.evaluator import Evaluator
    from rankguard.recsys.trainer import METRIC_KEYS, load_run, metrics_table, score_fn_of

    config, model, _ = load_run(args.run_dir)
    if not config.dataset:
        raise ValueError(f"{args.run_dir}/config.json does not name the dataset")
    split = load_split(config.dataset, seed=config.split_seed)
    if (split.n_users, split.n_items) != (model.n_users, model.n_items):
        raise ValueError(f"dataset {config.dataset!r} has {split.n_users} users x {split.n_items} items but the "
                         f"checkpoint expects {model.n_users} x {model.n_items}")
    metrics = Evaluator(split, protocol=config.protocol, block_size=config.eval_block_size).evaluate(
        score_fn_of(model), stage=args.stage)
    print(f"{config.method} on {config.dataset} ({args.stage}, protocol {config.protocol}), metrics (%):")
    print(metrics_table({k: metrics[k] for k in METRIC_KEYS if k in metrics}), end="")
    return 0


def run_tune(args: argparse.Namespace) -> int:
    from rankguard.recsys.tune import apply_point, parse_grid, tune

    grid = parse_grid(args.grid)
    fixed = sorted(set(grid) & set(_given(args)))
    if fixed:
        raise ValueError(f"{', '.join('--' + k.replace('_', '-') for k in fixed)} is both fixed and in --grid; "
                         f"give it in one place")

    def point_config(params: dict[str, Any]):
        flags = {k: v for k, v in params.items() if k in _TRAIN_FLAGS}
        config = config_from_args(argparse.Namespace(**{**vars(args), **flags}))   # recipe defaults per point
        rest = {k: v for k, v in params.items() if k not in _TRAIN_FLAGS}
        return apply_point(config, rest) if rest else config

    tune(point_config, grid, args.out, jobs=args.jobs)   # prints each point's progress and the chosen one
    return 0
