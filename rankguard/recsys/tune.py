"""Grid search for a recommendation recipe, selecting on validation only: ``rankguard recsys tune``.

Every grid point is one ordinary training run (:func:`rankguard.recsys.trainer.train`, one seed)
written to ``OUT/runs/<point>/``; the point with the largest validation ``select_metric`` at its
best epoch (the run's ``best_val``) wins — test metrics are written by each run but never looked
at here. Ties go to the earlier point in grid order; a point whose value is NaN (no user
qualifies) or whose training diverged never wins.

Written to ``OUT``: ``best_config.json`` (the winner's complete ``config.json``:
``rankguard recsys train --config OUT/best_config.json --out X`` replays it), ``tuning.json``
(per point: parameters, run folder, validation metrics at the best epoch, best and last evaluated
epoch, ``best_is_last`` — the run used its whole budget and the selected epoch was its last
evaluation, i.e. it may not have converged) and ``tuning.md`` (the same for people).

Resumable: a point whose run folder is complete (or recorded a divergence) is read back, not
re-run; an interrupted one continues from its checkpoint; a folder holding a run of a different
config is refused.

>>> parse_grid(["lr=0.01,0.05", "margin=1,2"])
{'lr': [0.01, 0.05], 'margin': [1.0, 2.0]}
>>> [p.name for p in grid_points(parse_grid(["lr=0.01,0.05", "dim=8"]))]
['lr=0.01_dim=8', 'lr=0.05_dim=8']
>>> parse_grid(["diversity=10:0.05:0.25,0.04:0:0.25"])
{'diversity': [(10.0, 0.05, 0.25), (0.04, 0.0, 0.25)]}
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from rankguard.recsys.recipes import TrainConfig
from rankguard.runs import RunDir, atomic_write_text, markdown_table, write_json

#: fields that define the comparison itself (data, split, seed, protocol, criterion), never tuned
NOT_TUNABLE = ("dataset", "split_seed", "protocol", "select_metric", "seed", "eval_block_size")
#: ``sampler_options.NAME=…`` tunes one sampler option (DiHarS: ``sampler_options.beta``)
OPTION_PREFIX = "sampler_options."
_INFORMATIONAL = ("method", "n_users", "n_items", "rankguard", "data_notes")


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


def _tuple_items(kind: Any) -> tuple[Any, ...] | None:
    """The element types of a fixed-length numeric tuple field (``diversity: tuple[float, float,
    float]``), else ``None``."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) is tuple and args and Ellipsis not in args and all(a in (int, float) for a in args):
        return args
    return None


def tunable_keys() -> list[str]:
    """The grid keys :func:`parse_grid` accepts: the int / float / str TrainConfig fields and the
    fixed-length numeric tuples (``diversity``, components joined by ``:``), less :data:`NOT_TUNABLE`
    (plus ``sampler_options.NAME``)."""
    types = _field_types()
    return sorted(f.name for f in dataclasses.fields(TrainConfig)
                  if f.name not in NOT_TUNABLE and (types[f.name] in (int, float, str) or _tuple_items(types[f.name])))


def _parse_value(key: str, text: str, kind: Any) -> Any:
    def bad(what: str) -> ValueError:
        return ValueError(f"--grid {key}: {text!r} is not {what}")

    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise bad("an integer") from None
    if kind is float:
        try:
            value = float(text)
        except ValueError:
            raise bad("a number") from None
        if not math.isfinite(value):
            raise bad("a finite number")
        return value
    if kind is str:
        return text
    items = _tuple_items(kind) if kind is not None else None
    if items is not None:   # diversity=10:0.05:0.25 — one tuple per comma-separated value
        parts = text.split(":")
        if len(parts) != len(items):
            raise bad(f"{len(items)} numbers joined by ':' (e.g. {':'.join(['1'] * len(items))})")
        return tuple(_parse_value(key, part.strip(), item) for part, item in zip(parts, items))
    # a sampler option: an integer, a number or a word, as written
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["lr=0.01,0.05", "margin=1,2"]`` -> ``{"lr": [0.01, 0.05], "margin": [1.0, 2.0]}``.

    Keys are :class:`~rankguard.recsys.recipes.TrainConfig` field names (see :func:`tunable_keys`)
    or ``sampler_options.NAME``; values are parsed as the field's type. An unknown key, a repeated
    key or a value of the wrong type is a one-line ``ValueError``.
    """
    types = _field_types()
    valid = tunable_keys()
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = str(item).partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key or not values.strip():
            raise ValueError(f"--grid {item!r}: expected KEY=V1,V2,... (e.g. lr=0.01,0.05)")
        if key.startswith(OPTION_PREFIX):
            if not key[len(OPTION_PREFIX):].isidentifier():
                raise ValueError(f"--grid {key}: expected sampler_options.NAME with NAME an identifier")
            kind = None
        elif key in NOT_TUNABLE:
            raise ValueError(f"--grid {key}: not tunable here (it defines the comparison: data, split, seed, "
                             f"protocol, criterion); fix it for every point with its flag or --config")
        elif key in types and key not in valid:
            raise ValueError(f"--grid {key}: a {getattr(types[key], '__name__', types[key])} field cannot be "
                             f"gridded (values are split at commas); fix it with its flag or --config")
        elif key not in valid:
            raise ValueError(f"--grid: unknown key {key!r}; valid: {', '.join(valid)}, {OPTION_PREFIX}NAME")
        else:
            kind = types[key]
        if key in grid:
            raise ValueError(f"--grid {key}: given twice; list all its values once (e.g. {key}=a,b)")
        parsed = [_parse_value(key, v.strip(), kind) for v in values.split(",")]
        if len(set(map(repr, parsed))) != len(parsed):
            raise ValueError(f"--grid {key}: a value is listed twice in {values!r}")
        grid[key] = parsed
    return grid


@dataclass(frozen=True)
class GridPoint:
    """One grid point: its folder name (``lr=0.01_margin=1``) and its parameters."""

    name: str
    params: dict[str, Any]


def _format(value: Any) -> str:
    if isinstance(value, tuple):
        return ":".join(_format(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def grid_points(grid: dict[str, list[Any]]) -> list[GridPoint]:
    """The Cartesian product in grid order (the last key varies fastest); an empty grid is one point."""
    points = []
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values))
        raw = "_".join(f"{k}={_format(v)}" for k, v in params.items()) or "default"
        points.append(GridPoint(re.sub(r"[^A-Za-z0-9.=+_-]", "-", raw), params))
    names = [p.name for p in points]
    if len(set(names)) != len(names):
        raise ValueError(f"--grid: two points share the folder name {next(n for n in names if names.count(n) > 1)!r}")
    return points


def apply_point(config: TrainConfig, params: dict[str, Any]) -> TrainConfig:
    """``config`` with the point's fields set (``sampler_options.NAME`` merged into the options)."""
    values = config.to_dict()
    options = dict(values.get("sampler_options") or {})
    for key, value in params.items():
        if key.startswith(OPTION_PREFIX):
            options[key[len(OPTION_PREFIX):]] = value
        else:
            values[key] = value
    values["sampler_options"] = options
    return TrainConfig.from_dict(values, where="--grid")


@dataclass
class PointResult:
    """What one grid point gave (read back from its run folder)."""

    name: str
    params: dict[str, Any]
    run_dir: str
    status: str                      # "complete" or "diverged"
    reused: bool
    val: dict[str, float | None] = field(default_factory=dict)
    best_epoch: int | None = None
    last_eval_epoch: int | None = None
    epochs_run: int | None = None
    #: the point's epoch budget (``epochs_run`` below it = ended by early stopping)
    epochs: int | None = None
    error: str | None = None

    @property
    def best_is_last(self) -> bool:
        """Used its whole budget with the best validation at the last evaluation (an early-stopped run
        converged by its rule, even when tiny gains below ``min_delta`` made its last state the best)."""
        from rankguard.recsys.trainer import best_is_last

        stopped_early = self.epochs is not None and self.epochs_run is not None and self.epochs_run < self.epochs
        return self.status == "complete" and best_is_last(self.best_epoch, self.last_eval_epoch, stopped_early)


@dataclass
class TuneResult:
    """The outcome of :func:`tune`: every point, the chosen one and its config."""

    select_metric: str
    points: list[PointResult]
    chosen: PointResult
    best_config: dict[str, Any]


def _selectable(value: float | None) -> float:
    return value if value is not None and math.isfinite(value) else -math.inf


def _comparable(values: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in values.items() if k not in _INFORMATIONAL}
    return TrainConfig.from_dict(out).to_dict()


def _read_point(point: GridPoint, run: RunDir, metric: str, reused: bool) -> PointResult:
    info = run.load_json("status.json")
    base = dict(name=point.name, params=point.params, run_dir=str(run.path), reused=reused)
    if info.get("status") == "failed":
        return PointResult(status="diverged", error=str(info.get("error", "")), **base)
    from rankguard.recsys.trainer import last_eval_epoch

    history = run.load_json("history.json")
    evals = [h for h in history if "val" in h]
    best_epoch = int(info["best_epoch"])
    val = next((h["val"] for h in evals if h["epoch"] == best_epoch), {})
    return PointResult(status="complete", val={k: (v if v is not None and math.isfinite(v) else None)
                                                for k, v in val.items()},
                       best_epoch=best_epoch, last_eval_epoch=last_eval_epoch(history),
                       epochs_run=int(info.get("epochs_run", history[-1]["epoch"] if history else 0)),
                       epochs=int(run.load_json("config.json")["epochs"]), **base)


def _is_divergence(info: dict[str, Any]) -> bool:
    return info.get("status") == "failed" and str(info.get("error", "")).startswith("TrainingDiverged")


def _train_point(config: TrainConfig, split: Any, path: str, mode: str, name: str, quiet: bool) -> None:
    """One grid point's run in a worker process (``tune(jobs > 1)``); a divergence is recorded in the
    run folder, as in the sequential loop, and read back by the parent."""
    import torch

    from rankguard.recsys.trainer import train
    from rankguard.training.engine import TrainingDiverged

    torch.set_num_threads(1)
    point_log = None if quiet else (lambda line: print(f"  [{name}] {line}", flush=True))
    try:
        train(config, split, out=path, mode=mode, log=point_log)
    except TrainingDiverged as exc:
        if point_log:
            point_log(f"diverged: {exc}")


def tune(base: TrainConfig | Callable[[dict[str, Any]], TrainConfig], grid: dict[str, list[Any]],
         out: str | os.PathLike, split: Any = None, log: Callable[[str], None] | None = print,
         jobs: int = 1) -> TuneResult:
    """Train every point of ``grid`` into ``out/runs/<point>/``; pick the best validation ``select_metric``.

    ``jobs > 1`` trains up to ``jobs`` points at once, each in its own process with one torch thread
    (spawned, so no thread pool is inherited); every run is the same as in a sequential tuning (its
    own seeded generators, its own folder), and the selection reads the finished folders back.

    ``base``: the fixed config (each point = :func:`apply_point`), or a function ``params -> TrainConfig``
    (the CLI passes one that re-applies recipe defaults, so a point may change ``model``).
    ``split``: the data (default: loaded from the config's ``dataset`` and ``split_seed``).
    Returns a :class:`TuneResult`; writes ``best_config.json``, ``tuning.json``, ``tuning.md`` to ``out``.

    >>> import numpy as np, scipy.sparse as sp, tempfile
    >>> from rankguard.recsys.data import Interactions; from rankguard.recsys.splits import ratio_split
    >>> from rankguard.recsys.recipes import make_config
    >>> m = (np.random.default_rng(0).random((20, 30)) < 0.3).astype(np.float32)
    >>> split = ratio_split(Interactions(sp.csr_matrix(m)), seed=0)
    >>> r = tune(make_config("cml", epochs=2, dim=8, protocol="standard"), {"lr": [0.01, 0.1]}, tempfile.mkdtemp(),
    ...          split, log=None)
    >>> [p.name for p in r.points], r.chosen.name in ("lr=0.01", "lr=0.1")
    (['lr=0.01', 'lr=0.1'], True)
    """
    from rankguard.recsys.cli import load_split
    from rankguard.recsys.trainer import train
    from rankguard.training.engine import TrainingDiverged

    points = grid_points(grid)
    build = base if callable(base) else (lambda params: apply_point(base, params))
    configs = [build(p.params) for p in points]        # every config is checked before any training
    first = configs[0]
    for c in configs[1:]:
        for name in NOT_TUNABLE:
            if getattr(c, name) != getattr(first, name):
                raise ValueError(f"grid points differ in {name} ({getattr(first, name)!r} vs {getattr(c, name)!r}); "
                                 f"a tuning compares runs on the same data, seed and criterion")
    metric = first.select_metric
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ValueError(f"--out {root}: is a file; name a folder for the tuning")
    runs_root = root / "runs"
    if split is None:
        split = load_split(first.dataset, seed=first.split_seed)

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"--jobs must be an integer >= 1, got {jobs!r}")
    plans = [_plan_point(RunDir(runs_root / point.name), config) for point, config in zip(points, configs)]
    todo = [(point, config, run, mode) for point, config, (run, mode) in zip(points, configs, plans) if mode]
    parallel = jobs > 1 and len(todo) > 1
    if parallel:
        import concurrent.futures
        import multiprocessing

        if log:
            log(f"training {len(todo)} point(s), {min(jobs, len(todo))} at a time (one torch thread each): "
                f"{', '.join(p.name for p, *_ in todo)}")
        with concurrent.futures.ProcessPoolExecutor(min(jobs, len(todo)),
                                                    mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_train_point, config, split, str(run.path), mode, point.name, log is None)
                       for point, config, run, mode in todo]
            for future in futures:
                future.result()   # an error other than divergence stops the tuning, as it would sequentially
    trained_now = {point.name for point, *_ in todo} if parallel else set()
    results: list[PointResult] = []
    for i, (point, config) in enumerate(zip(points, configs), 1):
        run, mode = _plan_point(RunDir(runs_root / point.name), config)
        if not mode:
            reused = point.name not in trained_now
            if log and reused:
                log(f"[{i}/{len(points)}] {point.name}: finished before ({run.load_json('status.json')['status']}); "
                    f"reusing {run.path}")
            results.append(_read_point(point, run, metric, reused=reused))
            continue
        if log:
            log(f"[{i}/{len(points)}] {point.name}: training ({'resumed' if mode == 'resume' else 'new run'}) "
                f"into {run.path}")
        point_log = (lambda line, _n=point.name: log(f"  [{_n}] {line}")) if log else None
        try:
            train(config, split, out=run.path, mode=mode, log=point_log)
        except TrainingDiverged as exc:
            if log:
                log(f"  [{point.name}] diverged: {exc}")
        results.append(_read_point(point, run, metric, reused=False))

    done = [r for r in results if r.status == "complete"]
    if not any(math.isfinite(_selectable(r.val.get(metric))) for r in done):
        raise ValueError(f"no grid point has a finite validation {metric} (all diverged or no user qualifies); "
                         f"see {runs_root}")
    chosen = max(done, key=lambda r: _selectable(r.val.get(metric)))   # max keeps the first of ties
    best_config = RunDir(chosen.run_dir, create=False).load_json("config.json")
    result = TuneResult(metric, results, chosen, best_config)
    write_json(root / "best_config.json", best_config)
    write_json(root / "tuning.json", _tuning_json(result, first, grid))
    atomic_write_text(root / "tuning.md", render_tuning(result, first, grid))
    if log:
        log(f"chosen: {chosen.name} (validation {metric} {_fmt_pct(chosen.val.get(metric))}); "
            f"config in {root / 'best_config.json'}")
    return result


def _plan_point(run: RunDir, config: TrainConfig) -> tuple[RunDir, str]:
    """``(run, mode)``: ``mode`` = ``""`` when the folder holds a finished (or diverged) run of this
    config, else how to train it (``new``, ``resume``, ``overwrite``); a folder holding another
    config is refused."""
    status_file, config_file = run.file("status.json"), run.file("config.json")
    if config_file.is_file():
        stored = _comparable(run.load_json("config.json"))
        mine = config.to_dict()
        differ = sorted(k for k in mine if stored.get(k) != mine[k])
        if differ:
            raise ValueError(f"{run.path} holds a run of another config ({', '.join(f'{k} {stored.get(k)!r} vs {mine[k]!r}' for k in differ)}); "
                             f"choose another --out or delete that folder")
    info = run.load_json("status.json") if status_file.is_file() else {}
    if info.get("status") == "complete" or _is_divergence(info):
        return run, ""
    return run, ("resume" if config_file.is_file() and info.get("status") in ("running", "interrupted") else
                 "overwrite" if config_file.is_file() or status_file.is_file() else "new")


def _tuning_json(result: TuneResult, first: TrainConfig, grid: dict[str, list[Any]]) -> dict[str, Any]:
    return {
        "select_metric": result.select_metric,
        "selection": "largest validation select_metric at each run's best epoch; ties: earlier grid point",
        "dataset": first.dataset, "seed": first.seed, "grid": grid,
        "chosen": result.chosen.name, "chosen_value": result.chosen.val.get(result.select_metric),
        "points": [{"name": r.name, "params": r.params, "run_dir": r.run_dir, "status": r.status, "reused": r.reused,
                    "best_epoch": r.best_epoch, "last_eval_epoch": r.last_eval_epoch, "epochs_run": r.epochs_run,
                    "best_is_last": r.best_is_last, "val": r.val, "error": r.error} for r in result.points],
        "unconverged": [r.name for r in result.points if r.best_is_last],
    }


def _fmt_pct(value: float | None) -> str:
    return f"{100 * value:.2f}" if value is not None and math.isfinite(value) else "n/a"


def render_tuning(result: TuneResult, first: TrainConfig, grid: dict[str, list[Any]]) -> str:
    """``tuning.md``: one row per point (validation metrics in %), the chosen one marked."""
    metric = result.select_metric
    keys = [metric] + [k for k in ("P@3", "NDCG@3", "MAP", "MRR", "AUC") if k != metric]
    rows = []
    for r in result.points:
        mark = "**chosen**" if r is result.chosen else ("diverged" if r.status == "diverged" else "")
        warn = "best = last evaluation" if r.best_is_last else ""
        rows.append([r.name, *[_fmt_pct(r.val.get(k)) for k in keys], r.best_epoch if r.best_epoch else "–",
                     r.epochs_run if r.epochs_run else "–", ", ".join(x for x in (mark, warn) if x)])
    unconverged = [r.name for r in result.points if r.best_is_last]
    spans = [f"`{k}` ∈ {{" + ", ".join(map(_format, v)) + "}" for k, v in grid.items()]
    lines = [f"# Tuning {first.method} on {first.dataset or 'data'}", "",
             f"Grid: {'; '.join(spans) or 'none'}; "
             f"seed {first.seed}; selection on validation {metric} (best epoch of each run), never on test.", "",
             f"Chosen: **{result.chosen.name}** (validation {metric} {_fmt_pct(result.chosen.val.get(metric))}); "
             f"replay with `rankguard recsys train --config best_config.json --out DIR`.", "",
             "## Validation metrics at each run's best epoch (%)", "",
             markdown_table(["point", *keys, "best epoch", "epochs run", "note"], rows)]
    if unconverged:
        lines += ["", f"Warning: {len(unconverged)} point(s) had their best validation {metric} at the last "
                      f"evaluation and may not have converged (more --epochs?): {', '.join(unconverged)}."]
    return "\n".join(lines) + "\n"
