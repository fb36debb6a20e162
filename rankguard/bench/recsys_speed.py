"""Speed: SFCML batch loss vs naive triplet enumeration, evaluator vs Cornac, epoch time per method (ML-1M).

    RANKGUARD_DATA=/work/shared/data rankguard bench recsys_speed [--quick] [--out DIR]

Writes ``results/recsys_speed.json`` and ``results/recsys_speed.md`` (``--quick``:
``recsys_speed_quick.*``). Timing through :func:`rankguard.bench.harness.time_interleaved`
(engine bursts alternated with the reference; medians, minima kept).

1. Loss: for batches of 256 ML-1M users x all items (float64 scores of an SFCML model), the
   sampling-free loss through the all-pairs engine vs the same mean over an explicit list of every
   (user, positive, negative) triplet (:func:`rankguard.bench.references.naive_triplet_loss`). The
   naive side processes the batch in chunks of users (memory) but covers the whole batch: its time
   is the real time for all triplets, not a scaled subset. Forward + backward.
2. Evaluator: all ML-1M users, all metrics, ``standard`` protocol (candidates exclude train and
   validation items: Cornac's rule) on one precomputed score matrix, vs Cornac 3.0.1's
   ``ranking_eval`` with P@5, R@5, NDCG@5, AUC, MAP, MRR on the same scores, when Cornac imports.
3. Epoch time of each method on ML-1M: :data:`TIMED_EPOCHS` epochs through the trainer's
   ``train(...)`` with validation only after the last one; ``epoch_seconds`` is the trainer's mean
   training time per epoch (evaluation excluded). ``steps`` = batches per epoch, ceil(training pairs /
   batch) for sampled objectives and ceil(users with a training item / batch) for all-pairs ones (SFCML).
"""

from __future__ import annotations

import argparse
import math
from typing import Any, Callable

import numpy as np
import torch

from rankguard.bench.harness import (MeasuredRun, default_results_dir, environment_line, rel_diff,
                                     standalone_main, time_interleaved, timed_call, write_results)
from rankguard.bench.references import naive_triplet_loss
from rankguard.functional.cml import sfcml_loss
from rankguard.recsys.cli import load_split
from rankguard.recsys.evaluator import Evaluator
from rankguard.recsys.models import SFCML
from rankguard.recsys.trainer import make_config, train
from rankguard.runs import markdown_table

EVAL_KEYS = ("P@5", "R@5", "NDCG@5", "AUC", "MAP", "MRR")
# (model, sampler) rows of the epoch-time table
EPOCH_METHODS: list[tuple[str, str | None]] = [("sfcml", None), ("mf-bpr", None), ("cml", "unis"), ("cml", "pops"),
                                               ("cml", "hars"), ("cml", "2sts")]
TIMED_EPOCHS = 2        # epochs per method in the epoch-time table (full run)
QUICK_EPOCH_METHODS = EPOCH_METHODS[:1]  # --quick: one SFCML epoch, to exercise the path


def method_name(config: Any) -> str:
    """A config's table name (``sfcml``, ``cml-unis`` …), whether ``config.method`` is a property,
    a plain attribute or a method — the one place this module reads it."""
    method = getattr(config, "method", None)
    if callable(method):
        method = method()
    if method:
        return str(method)
    sampler = getattr(config, "sampler", None)
    return f"{config.model}-{sampler}" if config.model == "cml" and sampler else str(config.model)


def bench_loss(split, n_batches: int, batch: int, chunk: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    model = SFCML(split.n_users, split.n_items, dim=100, generator=torch.Generator().manual_seed(0),
                  dtype=torch.float64)
    rows = []
    train_m = split.train.tocsr()
    for b in range(n_batches):
        users = rng.choice(split.n_users, size=batch, replace=False)
        with torch.no_grad():
            base = model.score(torch.from_numpy(users))
        pos = torch.from_numpy(train_m[users].toarray() > 0)
        n_trip = int((pos.sum(1) * (~pos).sum(1)).sum())

        def forward_backward(loss_fn: Callable[[torch.Tensor], torch.Tensor]):
            s = base.clone().requires_grad_(True)
            loss = loss_fn(s)
            loss.backward()
            return float(loss.detach()), s.grad

        t = time_interleaved(lambda: forward_backward(lambda s: sfcml_loss(s, pos, margin=1.0)),
                             lambda: forward_backward(lambda s: naive_triplet_loss(s, pos, 1.0, chunk)),
                             repeats, 1, reference_warmup=0)
        (v_e, g_e), (v_n, g_n) = t.engine_result, t.reference_result
        rows.append({"batch": b, "users": batch, "items": split.n_items, "triplets": n_trip,
                     "engine_s": t.engine_median, "naive_s": t.reference_median, "speedup": t.ratio,
                     "engine_min_s": t.engine_min, "engine_calls_per_sample": t.engine_calls,
                     "loss_engine": v_e, "loss_naive": v_n, "value_rel_err": rel_diff(v_e, v_n),
                     "grad_max_rel_err": rel_diff(g_e, g_n)})
        print(f"loss batch {b}: {n_trip / 1e6:.1f}M triplets, engine {1e3 * t.engine_median:.2f} ms, naive "
              f"{t.reference_median:.2f} s, x{t.ratio:.0f}, rel err {rows[-1]['value_rel_err']:.1e}", flush=True)
    return {"rows": rows, "median_speedup": float(np.median([r["speedup"] for r in rows])),
            "forward_and_backward": True, "dtype": "float64", "naive_chunk_users": chunk,
            "engine_repeats": repeats, "naive_repeats": 1}


def cornac_runner(split, scores: np.ndarray) -> tuple[dict, Callable[[], Any] | None, Callable[[], Any] | None]:
    """``(info, all_metrics_fn, mrr_alone_fn)`` of Cornac's ``ranking_eval`` on fixed ``scores``;
    the functions are ``None`` (and ``info["reason"]`` says why) when Cornac does not import."""
    try:
        import cornac
        from cornac.data import Dataset
        from cornac.eval_methods import ranking_eval
        from cornac.metrics import AUC, MAP, MRR, NDCG, Precision, Recall
        from cornac.models import Recommender
    except Exception as exc:  # not installed, or broken under numpy 2
        return {"available": False, "reason": f"{type(exc).__name__}: {exc}"}, None, None

    uid = {u: u for u in range(split.n_users)}
    iid = {i: i for i in range(split.n_items)}

    def ds(m):
        c = m.tocoo()
        return Dataset.build(list(zip(c.row.tolist(), c.col.tolist(), [1.0] * c.nnz)), global_uid_map=uid,
                             global_iid_map=iid)
    train_set, val_set, test_set = ds(split.train), ds(split.val), ds(split.test)
    inv_u = np.empty(len(train_set.uid_map), dtype=np.int64)
    for raw, idx in train_set.uid_map.items():
        inv_u[idx] = raw
    inv_i = np.empty(len(train_set.iid_map), dtype=np.int64)
    for raw, idx in train_set.iid_map.items():
        inv_i[idx] = raw

    class Fixed(Recommender):
        def __init__(self):
            super().__init__(name="fixed-scores", trainable=False)

        def score(self, user_idx, item_idx=None):
            row = scores[inv_u[user_idx]][inv_i]
            return row if item_idx is None else row[item_idx]

    model = Fixed()
    model.fit(train_set)
    metrics = [Precision(k=5), Recall(k=5), NDCG(k=5), AUC(), MAP(), MRR()]
    return ({"available": True, "version": cornac.__version__},
            lambda: ranking_eval(model, metrics, train_set, test_set, val_set=val_set)[0],
            lambda: ranking_eval(model, [MRR()], train_set, test_set, val_set=val_set)[0])


def bench_eval(split, repeats: int) -> dict:
    model = SFCML(split.n_users, split.n_items, dim=100, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        scores = model.score(torch.arange(split.n_users)).double()
    ev = Evaluator(split, protocol="standard")
    corn, cornac_all, cornac_mrr = cornac_runner(split, scores.numpy())
    t = time_interleaved(lambda: ev.evaluate_scores(scores, "test"), cornac_all, repeats, 1, reference_warmup=0)
    ours = t.engine_result
    out = {"users": split.n_users, "items": split.n_items, "ours_seconds": t.engine_median,
           "ours_min_seconds": t.engine_min, "ours_repeats": repeats,
           "ours": {k: float(v) for k, v in ours.items() if k in EVAL_KEYS}}
    if cornac_all is not None:
        mrr_alone, mrr_secs = timed_call(cornac_mrr)
        corn.update({"seconds": t.reference_median, "values": dict(zip(EVAL_KEYS, map(float, t.reference_result))),
                     "mrr_alone": float(mrr_alone[0]), "mrr_alone_seconds": mrr_secs})
        out["speedup_vs_cornac"] = t.ratio
        out["abs_diff"] = {k: abs(out["ours"][k] - corn["values"][k]) for k in corn["values"]}
        out["mrr_abs_diff_cornac_alone"] = abs(out["ours"]["MRR"] - corn["mrr_alone"])
    out["cornac"] = corn
    print(f"evaluator: ours {t.engine_median:.3f} s; cornac {corn.get('seconds', 'n/a')}", flush=True)
    return out


def _steps_per_epoch(config: Any, split) -> int:
    # all-pairs objectives (sampler "all", SFCML) batch users with a training item; the others batch pairs
    all_pairs = getattr(config, "sampler", None) == "all" or config.model == "sfcml"
    train_m = split.train.tocsr()
    count = int((np.diff(train_m.indptr) > 0).sum()) if all_pairs else int(train_m.nnz)
    return math.ceil(count / config.batch_size)


def bench_epochs(split, methods: list[tuple[str, str | None]], epochs: int) -> list[dict]:
    """Mean training seconds per epoch of each (model, sampler), measured through ``train``."""
    rows = []
    for model_name, sampler in methods:
        cfg = make_config(model_name, sampler=sampler, epochs=epochs, eval_every=epochs, patience=0, seed=0)
        result = train(cfg, split, diagnostics=False, log=None)
        name = method_name(cfg)
        rows.append({"method": name, "epoch_seconds": result.epoch_seconds, "epochs": epochs,
                     "steps": _steps_per_epoch(cfg, split), "batch_size": cfg.batch_size})
        print(f"epoch {name}: {result.epoch_seconds:.2f} s (mean of {epochs})", flush=True)
    return rows


def to_markdown(result: dict) -> str:
    L, E, env = result["loss"], result["evaluator"], result["environment"]
    md = [f"# Collaborative ranking speed: {result['dataset']} ({E['users']} users x {E['items']} items)", "",
          f"Written by `rankguard bench recsys_speed`" + (" (QUICK smoke run, not a result)" if result["quick"] else "")
          + f"; {result['torch_threads']} torch thread(s) on a shared CPU box (other jobs may run: absolute times "
          "are noisy, ratios less so). Engine and reference runs alternate; engine times are medians of "
          "timeit-style bursts. " + environment_line(env), "",
          "## SFCML batch loss (forward + backward, float64) vs naive enumeration of every triplet", "",
          markdown_table(["batch", "users", "triplets", "engine ms", "naive s", "speed-up", "value rel err",
                          "grad max rel err"],
                         [[r["batch"], r["users"], f"{r['triplets']:,}", f"{1e3 * r['engine_s']:.2f}",
                           f"{r['naive_s']:.2f}", f"{r['speedup']:.0f}x", f"{r['value_rel_err']:.1e}",
                           f"{r['grad_max_rel_err']:.1e}"] for r in L["rows"]]),
          f"Median speed-up: **{L['median_speedup']:.0f}x** (goal >= 2000x).", "",
          "## Evaluator: all users, standard protocol (exclude train + validation), same score matrix", ""]
    c = E["cornac"]
    if c.get("available"):
        keys = list(c["values"])
        md += [markdown_table(["", "seconds"] + keys,
                              [["rankguard", f"{E['ours_seconds']:.3f}"] + [f"{E['ours'][k]:.6f}" for k in keys],
                               [f"Cornac {c['version']}", f"{c['seconds']:.3f}"] + [f"{c['values'][k]:.6f}" for k in keys]]),
               f"Speed-up vs Cornac: **{E['speedup_vs_cornac']:.1f}x** (goal >= 15x). Largest difference over "
               f"P/R/NDCG@5, AUC, MAP: {max(v for k, v in E['abs_diff'].items() if k != 'MRR'):.2e}; MRR differs by "
               f"{E['abs_diff']['MRR']:.2e} because Cornac ranks only the top max(k) items when @k metrics share the "
               f"call (users without a hit there get MRR 0). Cornac's MRR computed alone: "
               f"{c['mrr_alone']:.6f} (difference to ours {E['mrr_abs_diff_cornac_alone']:.2e}).", ""]
    else:
        md += [f"rankguard: {E['ours_seconds']:.3f} s. Cornac not available: {c['reason']}", ""]
    if result["epochs"]:
        md += ["## One training epoch per method", "",
               f"Mean training time per epoch over {result['epochs'][0]['epochs']} epoch(s) through the trainer "
               "(evaluation excluded).", "",
               markdown_table(["method", "seconds", "steps", "batch"],
                              [[r["method"], f"{r['epoch_seconds']:.2f}", r["steps"], r["batch_size"]]
                               for r in result["epochs"]])]
    return "\n".join(md)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="ml-1m")
    p.add_argument("--quick", action="store_true", help="1 small batch, one SFCML epoch: a smoke run")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--epochs", type=int, default=TIMED_EPOCHS, help="epochs timed per method in the epoch table")
    p.add_argument("--out", default=str(default_results_dir()), help="results folder (default: the checkout's results/)")


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    split = load_split(args.dataset)
    print(f"{args.dataset}: {split.n_users} users x {split.n_items} items, train nnz {split.train.nnz}", flush=True)
    with MeasuredRun() as measured:
        loss = bench_loss(split, n_batches=1 if args.quick else 3, batch=32 if args.quick else 256,
                          chunk=32, repeats=3 if args.quick else 10)
        evaluator = bench_eval(split, repeats=1 if args.quick else 3)
        epochs = bench_epochs(split, QUICK_EPOCH_METHODS if args.quick else EPOCH_METHODS,
                              1 if args.quick else args.epochs)
    env = measured.environment
    result = {"dataset": args.dataset, "torch_threads": args.threads, "quick": args.quick,
              "machine": env["machine"], "torch": env["torch"], "environment": env, "wall_s": measured.wall_s,
              "loss": loss, "evaluator": evaluator, "epochs": epochs}
    json_path, md_path = write_results(args.out, "recsys_speed_quick" if args.quick else "recsys_speed",
                                       result, to_markdown(result))
    print(f"wrote {json_path} and {md_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return standalone_main("recsys_speed", __doc__, add_arguments, run, argv)
