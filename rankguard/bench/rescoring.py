"""Rescoring benchmark (issue #9): top-down TopPIC (a), bottom-up PIN with mokapot (b), loss speed (c), ξ and
the adaptive rank loss's form (d).

(a) **Top-down**: one model per loss and seed trained on ``toppic/train`` (9 files concatenated), then each
of the 17 ``toppic/test`` files scored and counted separately. PrSMs at 1 % FDR under two counting rules,
each named: q-values with (decoys + 1)/targets, q ≤ 0.01 (rankguard's rule everywhere else) and the origin
code's rule (the deepest 0-based rank with D/(T + 1) ≤ 0.01). Baselines: TopPIC's own E-value ranking
(counted by both rules; under the origin's rule it reproduces the TopPIC counts the origin reports) and the
origin's reported rescored counts (REFERENCES §9b, its rule only). Hyper-parameters per loss (model, lr,
epochs from :data:`TOPDOWN_GRID`) are chosen on **held-out training files** (:data:`TOPDOWN_VALIDATION`:
trained on the other 6, summed counts of both rules, mean over the seeds), never on the test files; the
chosen setting is then retrained on all 9. Goals (issue #9): ≥ TopPIC on every file and > TopPIC on every
file where TopPIC accepts any PrSM, under both rules; > the origin's reported count on most files under its
rule; 17-file totals side by side.

(b) **Bottom-up**: both shared PIN files, accepted PSMs and peptides at q ≤ 0.01 ((decoys + 1)/targets, after
target–decoy competition) for the best single feature, the ``svm`` (Percolator) baseline, rankguard with each
loss, and mokapot 0.10.0 with defaults (``read_pin`` + ``brew(rng=seed)``), seeds 1–3 for all. mokapot runs
in a subprocess of its own virtual environment, which the benchmark creates on first use
(:func:`ensure_mokapot_venv`, default ``.cache/rescoring/mokapot-venv``, git-ignored): mokapot needs
numpy < 2 and pandas < 3 and the project's environment is never downgraded. A mokapot run that raises
(e.g. "Failed to calibrate scores between folds") is recorded as a failure, not a crash. Wall time: reading
the file + rescoring (rankguard, in process; mokapot: ``read_pin`` + ``brew`` timed inside its process,
interpreter start and imports excluded). The pipeline defaults were chosen on these two files' own
cross-validated counts (see :class:`~rankguard.rescoring.pipeline.RescoreSettings`), so (b) is not a
held-out comparison; (a) is.

(c) **Loss speed**: one :class:`~rankguard.losses.AdaptiveRankLoss` step (forward + backward, float64 as
in the pipeline) with a memory of M = 10⁶ scores and a batch of B = 4,096, against the dense B×M form
(:func:`rankguard.bench.references.dense_adaptive_rank_step`) built in chunks of memory columns — a full
4,096 × 10⁶ matrix is never formed: only ``dense_chunks`` chunks are timed and the time is scaled by
chunks/timed (every chunk does identical work). The memory is sorted once when it is refreshed (epoch end);
that sort (:func:`~rankguard.functional.adaptive_rank.sort_memory`) is timed separately, not in the step.
Goals: speed-up ≥ 1000× over the chunked dense step; the step ≤ 0.1× one sort of the memory. Values
(loss, ∂/∂s, ∂/∂ξ) are checked against a complete dense step at M = ``check_memory``. Timed once (medians
of repeats), not per seed.

(d) **ξ and the loss's form** (issue #9 Build 1): the pipeline default of (b) on both PIN files, seeds 1–3,
with only the adaptive rank loss changed (:data:`LOSS_FORMS`): the note's ξ rule as written (the default), the
same rule at a ξ lr where it moves ξ, a floor on ξ, ξ fixed at ξ₀, and the origin code's form
(:data:`~rankguard.rescoring.pipeline.ORIGIN_CODE_FORM`); accepted PSMs and ξ after every epoch. The q-value
curves of rankguard's default, the best single feature and mokapot (this run's winners table) on the yeast
file, seed 1, go to ``OUT/rescoring_qvalues.png``, referenced from ``rescoring.md`` by its path from the
checkout root (``results/rescoring_qvalues.png``, as the README splice needs). ``--only-forms`` runs (d)
alone and merges it into an existing ``OUT/rescoring.json`` of the same sizes and seeds.

Run ``rankguard bench rescoring`` (1 torch thread; ``--quick``: tiny sizes, a subsample, no mokapot;
``--no-mokapot`` skips mokapot; ``--mokapot-venv DIR`` puts its environment elsewhere). mokapot's
environment alone: ``rankguard bench rescoring --mokapot-setup``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from rankguard.bench.harness import (MeasuredRun, default_results_dir, environment_line, publish, read_results,
                                     rel_diff, repo_root, standalone_main, time_interleaved)
from rankguard.bench.references import dense_adaptive_rank_step
from rankguard.functional.adaptive_rank import sort_memory
from rankguard.losses import AdaptiveRankLoss
from rankguard.metrics import qvalues
from rankguard.rescoring.pipeline import (ORIGIN_CODE_FORM, RescoreSettings, best_single_feature, origin_count,
                                          rescore, summarise)
from rankguard.rescoring.plots import QVALUE_GRID, accepted_curve, plot_qvalue_curves
from rankguard.rescoring.readers import MatchTable, concat_tables, read_matches
from rankguard.runs import markdown_table
from rankguard.stats import mean_std

DTYPE = torch.float64
XI = 0.2
SEEDS = (1, 2, 3)
PIN_FILES = ("pin/yeast_percolator.pin", "pin/mokapot_10k_psms.pin")
LOSS_ROWS = ("svm", "adaptive-rank", "bce", "auc")
TORCH_LOSSES = ("adaptive-rank", "bce", "auc")
DEFAULT_LOSS = "adaptive-rank"
MOKAPOT_LABEL = "mokapot 0.10.0"
FDR = 0.01

#: the origin's reported PrSMs at 1 % FDR under its own rule, (rescored, TopPIC), per test file (REFERENCES §9b,
#: Dwzie/AdaptiveRankLoss @a6311ff); keyed by a label and the part of the file name that identifies it
ORIGIN_REPORTED = {
    "F3_1": ("F3_1_ms2", 670, 655), "F4_1": ("F4_1_ms2", 232, 231), "F5_1": ("F5_1_ms2", 639, 614),
    "F6_1": ("F6_1_ms2", 757, 709), "FAIMS −10": ("CV_-10_", 149, 141), "FAIMS −20": ("CV_-20_", 645, 644),
    "FAIMS −50": ("CV_-50_", 547, 538), "Platelets F1AB_01": ("F1AB_01", 323, 310),
    "Platelets F1AB_02": ("F1AB_02", 265, 253), "Platelets F2AB_01": ("F2AB_01", 217, 217),
    "Platelets F2AB_02": ("F2AB_02", 224, 223), "TCx3_22": ("TCx3_22", 110, 62), "TCx3_23": ("TCx3_23", 162, 141),
    "TCx3_26": ("TCx3_26", 93, 79), "TCx3_27": ("TCx3_27", 129, 77), "TCx3_28": ("TCx3_28", 121, 104),
    "F1_1": ("F1_1_ms2", 10, 9),
}
#: training files held out to choose each loss's setting (one per lab series of toppic/train: the last
#: BM_sort and the last two TDQ_BC_Memory replicates); the test files are never used for choosing
TOPDOWN_VALIDATION = ("highCD10_techrep04", "Memory_techrep_04", "Memory_techrep_05")
#: the settings each torch loss chooses from on the held-out training files (model, lr, epochs)
TOPDOWN_GRID = tuple((m, lr, ep) for m in ("mlp", "linear") for lr in (1e-3, 3e-3, 1e-2) for ep in (20, 40, 80))
#: (d) the adaptive rank loss's ξ rule and form on the PIN files (issue #9 Build 1): label -> RescoreSettings
#: overrides of the pipeline default. The default ξ lr (1e-5, the origin's) barely moves ξ, so the rule is also
#: run at the model's lr (1e-2), where it drives ξ towards 0, and the floor is shown there, where it binds
XI_FLOOR = 0.1
FAST_XI_LR = 1e-2
LOSS_FORMS = (
    ("note form, ξ learnt by the rule as written (default)", {}),
    (f"note form, ξ learnt by the rule, ξ lr {FAST_XI_LR:g}", {"xi_lr": FAST_XI_LR}),
    (f"note form, ξ floor {XI_FLOOR:g}, ξ lr {FAST_XI_LR:g}", {"xi_lr": FAST_XI_LR, "xi_floor": XI_FLOOR}),
    (f"note form, ξ fixed at ξ₀ = {RescoreSettings.xi:g}", {"learn_xi": False}),
    ("origin code form (10⁴ normaliser, α not detached, memory ≤ 10⁴/class), ξ learnt", dict(ORIGIN_CODE_FORM)),
)
#: the file of the q-value plot (results/rescoring_qvalues.png), on the first seed
PLOT_FILE = PIN_FILES[0]
PLOT_NAME = "rescoring_qvalues.png"


@dataclass
class Sizes:
    memory: int = 1_000_000
    batch: int = 4_096
    chunk: int = 2_048           # dense: memory columns per chunk (B×chunk matrix)
    dense_chunks: int = 6        # dense: chunks timed, scaled to all
    check_memory: int = 40_000   # complete dense step for the value check
    repeats: int = 7             # step and sort repeats (median)
    dense_repeats: int = 3
    pin_rows: int | None = None  # (b): first rows of each file only (quick)
    pin_files: tuple = PIN_FILES
    seeds: tuple = SEEDS
    toppic_train: int | None = None   # (a): first files of toppic/train only (quick)
    toppic_test: int | None = None    # (a): first files of toppic/test only (quick)
    toppic_grid: tuple = TOPDOWN_GRID
    mokapot: bool = True


QUICK = Sizes(memory=20_000, batch=256, chunk=1_024, dense_chunks=2, check_memory=3_000, repeats=3,
              dense_repeats=1, pin_rows=1_500, pin_files=PIN_FILES[1:], seeds=(1,), toppic_train=3, toppic_test=1,
              toppic_grid=(("mlp", 1e-2, 2),), mokapot=False)


def _cell(values, digits: int = 0) -> str:
    """``mean ± sample std`` of the non-None ``values`` (``"-"`` for none; just the mean for one)."""
    vals = [v for v in values if v is not None]
    mean, std = mean_std(vals)
    if mean is None:
        return "-"
    fmt = f"{{:,.{digits}f}}"
    return fmt.format(mean) if std is None else f"{fmt.format(mean)} ± {fmt.format(std)}"


# ------------------------------------------------------------------------------------------------
# (c) loss speed
# ------------------------------------------------------------------------------------------------

def _problem(m: int, b: int, gen: torch.Generator):
    ym = torch.rand(m, generator=gen) < 0.5
    mem = torch.sigmoid(torch.randn(m, generator=gen, dtype=DTYPE) + ym.to(DTYPE))
    y = torch.rand(b, generator=gen) < 0.5
    s = torch.sigmoid(torch.randn(b, generator=gen, dtype=DTYPE) + y.to(DTYPE))
    return mem, ym, s, y


def _engine_step(loss: AdaptiveRankLoss, s: torch.Tensor, y: torch.Tensor):
    loss.xi.grad = None
    x = s.clone().requires_grad_(True)
    value = loss(x, y)
    value.backward()
    return value.detach(), x.grad, loss.xi.grad.clone()


def _dense_step(s, y, mem, ym, chunk, max_chunks=None):
    x = s.clone().requires_grad_(True)
    xi = torch.tensor(XI, dtype=DTYPE, requires_grad=True)
    value = dense_adaptive_rank_step(x, y, mem, ym, xi, chunk, max_chunks)
    return value, x.grad, xi.grad


def bench_loss_speed(sizes: Sizes, gen: torch.Generator) -> dict:
    mem, ym, s, y = _problem(sizes.check_memory, sizes.batch, gen)
    loss = AdaptiveRankLoss(XI)
    loss.set_memory(mem, ym)
    diff = max(rel_diff(a, b) for a, b in zip(_engine_step(loss, s, y), _dense_step(s, y, mem, ym, sizes.chunk)))

    mem, ym, s, y = _problem(sizes.memory, sizes.batch, gen)
    loss = AdaptiveRankLoss(XI)
    loss.set_memory(mem, ym)
    n_chunks = -(-sizes.memory // sizes.chunk)
    timed = min(sizes.dense_chunks, n_chunks)
    # engine warm-up (1 call) sorts the memory once, as the first batch after a refresh does
    dense = time_interleaved(lambda: _engine_step(loss, s, y),
                             lambda: _dense_step(s, y, mem, ym, sizes.chunk, timed),
                             sizes.repeats, sizes.dense_repeats, reference_warmup=0,
                             reference_scale=n_chunks / timed)
    sort = time_interleaved(lambda: _engine_step(loss, s, y), lambda: sort_memory(mem, ym),
                            sizes.repeats, sizes.repeats)
    return {
        "M": sizes.memory, "B": sizes.batch, "dtype": str(DTYPE).replace("torch.", ""),
        "step_s": dense.engine_median, "step_min_s": dense.engine_min,
        "dense_s": dense.reference_median, "dense_min_s": dense.reference_min,
        "speedup_vs_dense": dense.ratio, "goal_dense": ">= 1000x", "goal_dense_met": bool(dense.ratio >= 1000),
        "step_s_sort_run": sort.engine_median, "sort_s": sort.reference_median, "sort_min_s": sort.reference_min,
        "step_over_sort": sort.engine_median / sort.reference_median, "goal_sort": "step <= 0.1x sort",
        "goal_sort_met": bool(sort.engine_median <= 0.1 * sort.reference_median),
        "max_rel_diff": diff, "check_memory": sizes.check_memory,
        "dense_timed": f"{timed} of the {n_chunks} chunks of {sizes.chunk} memory columns (B×{sizes.chunk} "
                       f"matrices) timed, scaled by {n_chunks}/{timed}; every chunk does identical work",
        "engine_calls_per_sample": dense.engine_calls,
    }


# ------------------------------------------------------------------------------------------------
# mokapot 0.10.0 in its own virtual environment
# ------------------------------------------------------------------------------------------------

MOKAPOT_VERSION = "0.10.0"
#: mokapot 0.10.0's runtime needs, bounded where it breaks: it crashes on numpy 2 and pandas 3 (issue #9);
#: scikit-learn / numba / scipy bounds keep wheels that support numpy 1.26 on Python 3.11
MOKAPOT_REQUIREMENTS = ("numpy<2", "pandas<3", "scikit-learn<1.6", "numba<0.61", "scipy<1.14", "matplotlib",
                        "lxml", "joblib", "importlib-metadata")
#: installed with --no-deps: triqler 0.9.2 declares numpy >= 2, which mokapot cannot run on (REFERENCES §9);
#: mokapot only imports its ``qvality`` module
MOKAPOT_NO_DEPS = (f"mokapot=={MOKAPOT_VERSION}", "triqler==0.9.2")
MOKAPOT_TIMEOUT_S = 900
#: why mokapot's counts differ between runs of one seed (read in mokapot 0.10.0's brew.py and model.py)
MOKAPOT_SEED_NOTE = ("Why: `brew(psms, rng=seed)` builds its default `PercolatorModel()` with `rng=None`, whose "
                     "constructor draws the `KFold` seed of the inner C grid search from an unseeded generator; "
                     "`brew` sets `model.rng` only afterwards, so that split is fresh on every run (passing "
                     "`model=PercolatorModel(rng=seed)` makes repeated runs agree; checked on the yeast file, "
                     "not used here: the benchmark runs mokapot's defaults).")

#: runs inside the mokapot environment (numpy 1, no rankguard): ``python -c DRIVER PIN SEED [TABLE]``; prints one
#: JSON line; with TABLE, writes mokapot's winners (PSM and peptide level, targets and decoys) with their
#: score, q-value and label, for the q-value parity test
MOKAPOT_DRIVER = r'''
import json, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np, pandas as pd, mokapot
pin, seed = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter()
psms = mokapot.read_pin(pin)
t1 = time.perf_counter()
res, _ = mokapot.brew(psms, rng=seed)
t2 = time.perf_counter()
if len(sys.argv) > 3:
    parts = []
    for level in ("psms", "peptides"):
        for est, is_target in ((res.confidence_estimates, True), (res.decoy_confidence_estimates, False)):
            d = est[level]
            parts.append(pd.DataFrame({"level": level, "target": int(is_target), "score": d["mokapot score"],
                                       "q": d["mokapot q-value"]}))
    pd.concat(parts).to_csv(sys.argv[3], sep="\t", index=False, float_format="%.17g")
print(json.dumps({"psms": int(res.accepted["psms"]), "peptides": int(res.accepted["peptides"]),
                  "read_s": t1 - t0, "brew_s": t2 - t1, "mokapot": mokapot.__version__,
                  "numpy": np.__version__, "pandas": pd.__version__}))
'''


def default_mokapot_venv() -> Path:
    """``.cache/rescoring/mokapot-venv`` in the checkout (git-ignored), else under the working folder."""
    return (repo_root() or Path.cwd()) / ".cache" / "rescoring" / "mokapot-venv"


def venv_python(venv: str | os.PathLike) -> Path:
    return Path(venv) / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"


def mokapot_problem(venv: str | os.PathLike) -> str | None:
    """``None`` when ``venv`` runs mokapot 0.10.0, else one line saying why not."""
    py = venv_python(venv)
    if not py.exists():
        return f"no mokapot environment at {venv}"
    try:
        done = subprocess.run([str(py), "-c", "import mokapot; print(mokapot.__version__)"], capture_output=True,
                              text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as err:
        return f"{py}: {err}"
    if done.returncode != 0:
        return f"{py} cannot import mokapot: {_one_line(done.stderr)}"
    if done.stdout.strip() != MOKAPOT_VERSION:
        return f"{py} has mokapot {done.stdout.strip()}, not {MOKAPOT_VERSION}"
    return None


def ensure_mokapot_venv(venv: str | os.PathLike, log=print) -> str | None:
    """Create ``venv`` with mokapot 0.10.0 (:data:`MOKAPOT_REQUIREMENTS`, then :data:`MOKAPOT_NO_DEPS` with
    ``--no-deps``) unless it already runs it; the project's environment is never touched. Returns ``None``
    when mokapot runs, else one line saying why not (e.g. no network to the package index)."""
    if mokapot_problem(venv) is None:
        return None
    venv = Path(venv)
    log(f"creating the mokapot {MOKAPOT_VERSION} environment at {venv} (once; a few minutes)")
    py = str(venv_python(venv))
    steps = [[sys.executable, "-m", "venv", "--clear", str(venv)],
             [py, "-m", "pip", "install", "-q", "--disable-pip-version-check", *MOKAPOT_REQUIREMENTS],
             [py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", *MOKAPOT_NO_DEPS]]
    for cmd in steps:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.SubprocessError) as err:
            return f"{' '.join(cmd[:4])}…: {err}"
        if done.returncode != 0:
            return f"{' '.join(cmd[:4])}… failed: {_one_line(done.stderr)}"
    return mokapot_problem(venv)


def run_mokapot(venv: str | os.PathLike, pin: str | os.PathLike, seed: int, table: str | os.PathLike | None = None,
                timeout: float = MOKAPOT_TIMEOUT_S) -> dict:
    """mokapot 0.10.0 with defaults (``read_pin`` + ``brew(psms, rng=seed)``) on ``pin`` in a subprocess.

    Returns ``{"seed", "psms", "peptides", "wall_s" (read + brew), "brew_s", "process_s", "failed"}``; a run
    that raises (e.g. "Failed to calibrate scores between folds") or times out is recorded with ``failed`` =
    its last error line and ``None`` counts, never raised."""
    cmd = [str(venv_python(venv)), "-c", MOKAPOT_DRIVER, str(pin), str(seed)] + ([str(table)] if table else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "NUMBA_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)
    row = {"seed": seed, "psms": None, "peptides": None, "wall_s": None, "brew_s": None, "failed": None}
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        row["failed"] = f"timed out after {timeout:g} s"
        return row
    except OSError as err:
        row["failed"] = str(err)
        return row
    row["process_s"] = round(time.perf_counter() - t0, 1)
    if done.returncode != 0:
        row["failed"] = _one_line(done.stderr)
        return row
    try:
        out = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        row["failed"] = f"unreadable mokapot output: {_one_line(done.stdout)}"
        return row
    row.update(psms=out["psms"], peptides=out["peptides"], wall_s=round(out["read_s"] + out["brew_s"], 1),
               brew_s=round(out["brew_s"], 1), versions={k: out[k] for k in ("mokapot", "numpy", "pandas")})
    return row


def mokapot_table_path(cache: str | os.PathLike, pin: str | os.PathLike, seed: int) -> Path:
    """Where the benchmark leaves mokapot's winners table of ``pin`` for ``seed`` (read by the parity test)."""
    return Path(cache) / f"{Path(pin).stem}_seed{seed}_winners.tsv"
# ------------------------------------------------------------------------------------------------
# (b) bottom-up PIN rescoring
# ------------------------------------------------------------------------------------------------

def _head(table: MatchTable, n: int | None) -> MatchTable:
    """The first ``n`` rows of ``table`` (quick runs only)."""
    if n is None or n >= len(table):
        return table
    cut = lambda v: v[:n] if isinstance(v, (np.ndarray, list)) else v  # noqa: E731
    return dataclasses.replace(table, **{f: cut(getattr(table, f)) for f in
                                         ("spec_ids", "is_target", "spectrum", "features", "peptides", "proteins",
                                          "source")}, extra={k: cut(v) for k, v in table.extra.items()})


def _method_name(loss: str) -> str:
    return "svm (Percolator baseline)" if loss == "svm" else f"rankguard {loss}"


def bench_pin(sizes: Sizes, data: Path, mokapot_venv: str | None, cache: Path | None, log=print) -> list[dict]:
    """One row per (file, method, seed); ``failed`` holds the error line of a run that raised."""
    rows = []
    for rel in sizes.pin_files:
        t0 = time.perf_counter()
        table = _head(read_matches(data / rel), sizes.pin_rows)
        read_s = time.perf_counter() - t0
        name = Path(rel).name
        t0 = time.perf_counter()
        feat, sign, fs = best_single_feature(table)
        base = summarise(table, fs)
        rows.append({"file": name, "method": f"best single feature ({'' if sign > 0 else '−'}{feat})", "seed": None,
                     "psms": base["accepted_psms"], "peptides": base["accepted_peptides"],
                     "wall_s": round(read_s + time.perf_counter() - t0, 1), "failed": None})
        for seed in sizes.seeds:
            for loss in LOSS_ROWS:
                row = {"file": name, "method": _method_name(loss), "seed": seed, "psms": None, "peptides": None,
                       "wall_s": None, "failed": None}
                t0 = time.perf_counter()
                try:
                    scores, info = rescore(table, RescoreSettings(loss=loss, seed=seed))
                    res = summarise(table, scores)
                except Exception as exc:   # recorded, like mokapot's failures; the benchmark goes on
                    row["failed"] = f"{type(exc).__name__}: {exc}"
                else:
                    row.update(psms=res["accepted_psms"], peptides=res["accepted_peptides"],
                               xi_last=[h[-1] for h in info.get("xi_by_epoch") or []] or None)
                row["wall_s"] = round(read_s + time.perf_counter() - t0, 1)
                rows.append(row)
            if mokapot_venv is not None:
                out = mokapot_table_path(cache, rel, seed) if cache is not None else None
                if out is not None:
                    out.parent.mkdir(parents=True, exist_ok=True)
                m = run_mokapot(mokapot_venv, data / rel, seed, out)
                log(f"mokapot {name} seed {seed}: " + (f"FAILED: {m['failed']}" if m["failed"] else
                                                        f"{m['psms']} PSMs, {m['peptides']} peptides, {m['wall_s']} s"))
                rows.append({"file": name, "method": MOKAPOT_LABEL, **m})
        if mokapot_venv is not None and sizes.seeds:
            # mokapot is not reproducible for a fixed rng (observed here): the first seed once more, kept apart
            m = run_mokapot(mokapot_venv, data / rel, sizes.seeds[0])
            rows.append({"file": name, "method": f"{MOKAPOT_LABEL}, seed {sizes.seeds[0]} run again", **m})
    return rows


def summarise_pin(rows: list[dict]) -> list[dict]:
    """Per (file, method): mean ± std of PSMs / peptides / wall over the seeds that ran, failures, per seed."""
    out: dict[tuple, dict] = {}
    for r in rows:
        key = (r["file"], r["method"])
        s = out.setdefault(key, {"file": r["file"], "method": r["method"], "psms": [], "peptides": [], "wall_s": [],
                                 "seeds": [], "failures": []})
        s["seeds"].append(r["seed"])
        if r.get("failed"):
            s["failures"].append({"seed": r["seed"], "error": r["failed"]})
        else:
            s["psms"].append(r["psms"])
            s["peptides"].append(r["peptides"])
            s["wall_s"].append(r["wall_s"])
    return list(out.values())


def pin_goals(summary: list[dict]) -> list[dict]:
    """Issue #9 (b): rankguard's default (mean over seeds) ≥ mokapot's best seed, in no more (mean) wall time,
    and never failing where mokapot fails; one entry per file."""
    goals = []
    for f in dict.fromkeys(s["file"] for s in summary):
        by = {s["method"]: s for s in summary if s["file"] == f}
        rg, mk = by.get(_method_name(DEFAULT_LOSS)), by.get(MOKAPOT_LABEL)
        if rg is None or mk is None or not mk["psms"]:
            goals.append({"file": f, "met": None, "why": "mokapot did not run" if mk is None else
                          "mokapot failed on every seed" if not mk["psms"] else "no rankguard rows"})
            continue
        rg_mean = mean_std(rg["psms"])[0] if rg["psms"] else None
        best = max(mk["psms"])
        counts_ok = rg_mean is not None and rg_mean >= best
        wall_ok = bool(rg["wall_s"]) and mean_std(rg["wall_s"])[0] <= mean_std(mk["wall_s"])[0]
        fail_ok = not rg["failures"]
        goals.append({"file": f, "rankguard_psms_mean": rg_mean, "mokapot_best_psms": best,
                      "mokapot_failures": len(mk["failures"]), "rankguard_failures": len(rg["failures"]),
                      "rankguard_wall_mean": mean_std(rg["wall_s"])[0] if rg["wall_s"] else None,
                      "mokapot_wall_mean": mean_std(mk["wall_s"])[0], "counts_met": counts_ok,
                      "wall_met": wall_ok, "never_fails_met": fail_ok, "met": counts_ok and wall_ok and fail_ok})
    return goals


# ------------------------------------------------------------------------------------------------
# (d) ξ and the loss's form on the PIN files; the q-value plot
# ------------------------------------------------------------------------------------------------

def _xi_path(xi_by_epoch: list[list[float]], xi0: float) -> list[float]:
    """ξ₀ then ξ after each epoch, the mean over the folds' models."""
    return [xi0] + [float(np.mean(col)) for col in zip(*xi_by_epoch)]


def _mokapot_curve(cache: Path | None, rel: str, seed: int) -> np.ndarray | None:
    """mokapot's accepted target PSMs on :data:`QVALUE_GRID` from the winners table this run's mokapot left
    (``None`` when there is none)."""
    path = mokapot_table_path(cache, rel, seed) if cache is not None else None
    if path is None or not path.exists():
        return None
    q, target = [], []
    with open(path) as fh:
        head = fh.readline().rstrip("\n").split("\t")
        i_level, i_target, i_q = head.index("level"), head.index("target"), head.index("q")
        for line in fh:
            f = line.rstrip("\n").split("\t")
            if f[i_level] == "psms":
                q.append(float(f[i_q]))
                target.append(f[i_target] == "1")
    return accepted_curve(np.array(q), np.array(target, dtype=bool))


def bench_forms(sizes: Sizes, data: Path, cache: Path | None, with_mokapot: bool, log=print) -> dict:
    """The ξ rule as written vs a floor vs ξ fixed, and the note's form vs the origin code's (:data:`LOSS_FORMS`),
    on the PIN files, seeds as (b); ξ after every epoch; plus the q-value curves of :data:`PLOT_FILE` (else
    the first file) and the first seed (rankguard's default, the best single feature and, when this run's
    mokapot left its table, mokapot)."""
    rows, plot, class_sizes = [], None, {}
    plot_file = PLOT_FILE if PLOT_FILE in sizes.pin_files else sizes.pin_files[0]
    for rel in sizes.pin_files:
        table = _head(read_matches(data / rel), sizes.pin_rows)
        name = Path(rel).name
        n_t = int(table.is_target.sum())
        # the origin's subsample (≤ 10⁴ rows per class) binds only when a class of the memory is larger
        class_sizes[name] = {"targets": n_t, "decoys": len(table) - n_t}
        for seed in sizes.seeds:
            for k, (label, overrides) in enumerate(LOSS_FORMS):
                settings = dataclasses.replace(RescoreSettings(seed=seed), **overrides)
                t0 = time.perf_counter()
                scores, info = rescore(table, settings)
                res = summarise(table, scores)
                xi = info.get("xi_by_epoch") or []
                rows.append({"file": name, "form": label, "seed": seed, "overrides": overrides,
                             "psms": res["accepted_psms"], "peptides": res["accepted_peptides"],
                             "xi_path": _xi_path(xi, settings.xi), "xi_final_by_fold": [h[-1] for h in xi],
                             "wall_s": round(time.perf_counter() - t0, 1)})
                log(f"(d) {name} seed {seed} {label}: {res['accepted_psms']} PSMs, ξ {settings.xi:g} -> "
                    f"{rows[-1]['xi_path'][-1]:.4g}")
                if k == 0 and rel == plot_file and seed == sizes.seeds[0] and plot is None:
                    feat, sign, fs = best_single_feature(table)
                    base = summarise(table, fs)
                    curves = {f"rankguard {DEFAULT_LOSS} (default)":
                              accepted_curve(res["psm_q"], table.is_target[res["psm_index"]]),
                              f"best single feature ({'' if sign > 0 else '−'}{feat})":
                              accepted_curve(base["psm_q"], table.is_target[base["psm_index"]])}
                    mk = _mokapot_curve(cache, rel, seed) if with_mokapot and sizes.pin_rows is None else None
                    if mk is not None:
                        curves[f"{MOKAPOT_LABEL} (seed {seed})"] = mk
                    plot = {"file": name, "seed": seed, "grid": QVALUE_GRID.tolist(),
                            "curves": {c: v.tolist() for c, v in curves.items()}}
    return {"rows": rows, "class_sizes": class_sizes,
            "xi0": RescoreSettings.xi, "xi_lr": RescoreSettings.xi_lr, "xi_floor": XI_FLOOR, "fast_xi_lr": FAST_XI_LR,
            "origin_code_form": dict(ORIGIN_CODE_FORM), "plot": plot}


def write_qvalue_plot(forms: dict, path: Path) -> Path | None:
    """``path`` from ``forms['plot']`` (curves on its grid); ``None`` when there is no plot."""
    p = forms.get("plot")
    if not p:
        return None
    title = f"{p['file']}, seed {p['seed']}"
    return plot_qvalue_curves({k: np.asarray(v) for k, v in p["curves"].items()}, path, "PSMs",
                              grid=np.asarray(p["grid"]), title=title)


def _forms_markdown(forms: dict, seeds: list) -> list[str]:
    rows_in = forms["rows"]
    run_line = (f"Run alone (`--only-forms`, {forms['wall_s']} s; {environment_line(forms['environment'])}) and "
                "merged into the whole run's results. " if forms.get("merged") else "")
    origin = forms["origin_code_form"]
    big = {f: max(c.values()) for f, c in forms["class_sizes"].items()}
    sub = origin["memory_subsample"]
    lines = [
        "## The adaptive rank loss: the ξ rule and the loss's form (bottom-up, PIN files)",
        "",
        run_line + f"The pipeline default (b) with only the loss changed; seeds {', '.join(map(str, seeds))}, PSMs at q ≤ 0.01 "
        "(mean ± sample std). ∂L/∂ξ ≥ 0 always, so the note's rule ξ ← max(0, ξ − η ∂L/∂ξ) (ξ in its own Adam "
        f"group, ξ₀ = {forms['xi0']:g}) can only shrink ξ. ξ is the mean over the 3 folds' models, then over the "
        f"seeds. At the default ξ lr {forms['xi_lr']:g} (the origin's) ξ hardly moves, so a floor of "
        f"{forms['xi_floor']:g} could never bind there (that run would equal the rule's); the rule and the floor "
        f"are also run at ξ lr {forms['fast_xi_lr']:g}, where the rule drives ξ towards 0. The origin code's form: "
        f"both sums divided by {origin['normalizer']:g} instead of the pair counts, α_i not detached, memory "
        f"subsampled to ≤ {sub:,} rows per class every batch"
        + ("" if any(v > sub for v in big.values()) else
           f" — no class of these files has more than {sub:,} rows (largest: "
           + ", ".join(f"{f} {v:,}" for f, v in big.items()) + "), so the subsample never binds here")
        + "; its memory is the pipeline's (the end-of-epoch model's scores of the training rows).",
        "",
    ]
    table = []
    for f in dict.fromkeys(r["file"] for r in rows_in):
        for label in dict.fromkeys(r["form"] for r in rows_in if r["file"] == f):
            rs = [r for r in rows_in if r["file"] == f and r["form"] == label]
            paths = np.array([r["xi_path"] for r in rs])
            mid = min(10, paths.shape[1] - 1)
            finals = [x for r in rs for x in r["xi_final_by_fold"]]
            table.append([f, label, _cell([r["psms"] for r in rs], 1), ", ".join(str(r["psms"]) for r in rs),
                          _cell([r["peptides"] for r in rs], 1),
                          f"{paths[0, 0]:.3g} → {paths[:, 1].mean():.4g} → {paths[:, mid].mean():.4g} → "
                          f"{paths[:, -1].mean():.4g}",
                          f"{min(finals):.4g}–{max(finals):.4g}" if finals else "-",
                          _cell([r["wall_s"] for r in rs], 1)])
    n_ep = len(rows_in[0]["xi_path"]) - 1 if rows_in else 0
    lines += [markdown_table(["file", "form", "PSMs", "PSMs per seed", "peptides",
                              f"ξ: start → epoch 1 → {min(10, n_ep)} → {n_ep}", "final ξ (min–max, folds × seeds)",
                              "wall (s)"], table)]
    if forms.get("plot"):
        p = forms["plot"]
        lines += ["", f"Accepted target PSMs against the q-value threshold, {p['file']}, seed {p['seed']} "
                      f"({', '.join(p['curves'])}):", "",
                  f"![q-value curves, {p['file']} seed {p['seed']}](results/{PLOT_NAME})"]
    return lines + [""]


# ------------------------------------------------------------------------------------------------
# (a) top-down TopPIC rescoring
# ------------------------------------------------------------------------------------------------

def file_label(path: str | os.PathLike) -> str:
    """The short label of a toppic/test file (:data:`ORIGIN_REPORTED`'s keys), else its stem."""
    name = Path(path).name
    for label, (part, _, _) in ORIGIN_REPORTED.items():
        if part in name:
            return label
    return Path(path).stem.replace("_ms2_toppic_prsm", "")


def _counts(scores: np.ndarray, is_target: np.ndarray) -> dict[str, int]:
    """PrSMs at 1 % FDR under both rules (one PrSM per spectrum in TopPIC output: no competition needed)."""
    q = np.asarray(qvalues(scores, is_target))
    return {"q": int(np.sum((q <= FDR) & is_target)), "origin": origin_count(scores, is_target, FDR)}


def _toppic_scores(table: MatchTable) -> np.ndarray:
    """TopPIC's own ranking: E-value, lower is better."""
    return -np.log10(np.maximum(table.extra["e_value"], 1e-300))


def _score_files(tables: list[MatchTable], train: MatchTable, settings: RescoreSettings) -> list[dict[str, int]]:
    """Train once on ``train``, score every table (standardised with the training rows), count each apart."""
    scores, _ = rescore(concat_tables(tables), settings, train=train)
    out, start = [], 0
    for t in tables:
        out.append(_counts(scores[start:start + len(t)], t.is_target))
        start += len(t)
    return out


def _settings(loss: str, seed: int, choice: tuple | None) -> RescoreSettings:
    if choice is None:
        return RescoreSettings(loss=loss, seed=seed)
    model, lr, epochs = choice
    return RescoreSettings(loss=loss, seed=seed, model=model, lr=lr, epochs=epochs)


def bench_toppic(sizes: Sizes, data: Path, log=print) -> dict:
    train_files = sorted((data / "toppic" / "train").glob("*.xml"))[:sizes.toppic_train]
    test_files = sorted((data / "toppic" / "test").glob("*.xml"))[:sizes.toppic_test]
    if not train_files or not test_files:
        raise FileNotFoundError(f"{data / 'toppic'}: needs train/*.xml and test/*.xml (REFERENCES §9b)")
    train_tables = [read_matches(f) for f in train_files]
    test_tables = [read_matches(f) for f in test_files]
    held = [i for i, f in enumerate(train_files) if any(k in f.name for k in TOPDOWN_VALIDATION)]
    if not held or len(held) == len(train_files):
        held = [len(train_files) - 1]       # quick subsets: the last training file
    fit_part = concat_tables([t for i, t in enumerate(train_tables) if i not in held])
    val_tables = [train_tables[i] for i in held]
    train_all = concat_tables(train_tables)

    # choose each torch loss's setting on the held-out training files
    validation: dict[str, list[dict]] = {}
    chosen: dict[str, tuple | None] = {"svm": None}
    for loss in TORCH_LOSSES:
        cands = []
        for choice in sizes.toppic_grid:
            per_seed = []
            for seed in sizes.seeds:
                c = _score_files(val_tables, fit_part, _settings(loss, seed, choice))
                per_seed.append(sum(x["q"] + x["origin"] for x in c))
            cands.append({"model": choice[0], "lr": choice[1], "epochs": choice[2], "val_counts": per_seed,
                          "val_mean": mean_std(per_seed)[0]})
        best = max(range(len(cands)), key=lambda k: (cands[k]["val_mean"], -k))
        chosen[loss] = sizes.toppic_grid[best]
        validation[loss] = cands
        log(f"top-down {loss}: chose {chosen[loss]} on the held-out training files "
            f"({cands[best]['val_mean']:.1f} PrSMs, both rules summed)")

    files = []
    for f, t in zip(test_files, test_tables):
        label = file_label(f)
        c = _counts(_toppic_scores(t), t.is_target)
        rep = ORIGIN_REPORTED.get(label)
        files.append({"file": f.name, "label": label, "prsms": len(t), "targets": int(t.is_target.sum()),
                      "toppic_q": c["q"], "toppic_origin": c["origin"],
                      "origin_reported": rep[1] if rep else None, "origin_reported_toppic": rep[2] if rep else None})
    runs: dict[str, dict[str, list]] = {}
    for loss in LOSS_ROWS:
        per_file_q = [[] for _ in files]
        per_file_o = [[] for _ in files]
        wall = []
        for seed in sizes.seeds:
            t0 = time.perf_counter()
            counts = _score_files(test_tables, train_all, _settings(loss, seed, chosen[loss]))
            wall.append(round(time.perf_counter() - t0, 1))
            for k, c in enumerate(counts):
                per_file_q[k].append(c["q"])
                per_file_o[k].append(c["origin"])
        runs[loss] = {"q": per_file_q, "origin": per_file_o, "wall_s": wall}
    return {"train_files": [f.name for f in train_files], "test_files": [f.name for f in test_files],
            "validation_files": [train_files[i].name for i in held], "grid": [list(g) for g in sizes.toppic_grid],
            "validation": validation, "chosen": {k: (list(v) if v else "defaults (no grid)") for k, v in chosen.items()},
            "files": files, "runs": runs, "goals": toppic_goals(files, runs)}


def toppic_goals(files: list[dict], runs: dict) -> dict:
    """Issue #9 (a) for the default loss, per seed: ≥ TopPIC on every file and > TopPIC where TopPIC accepts
    any PrSM (both rules); > the origin's reported count on most files (its rule); shortfalls listed."""
    r = runs[DEFAULT_LOSS]
    shortfalls = []
    for rule, key in (("q", "toppic_q"), ("origin", "toppic_origin")):
        for k, f in enumerate(files):
            ours = r[rule][k]
            if min(ours) < f[key] or (f[key] > 0 and min(ours) <= f[key]):
                shortfalls.append({"file": f["label"], "rule": rule, "versus": "TopPIC", "baseline": f[key],
                                   "rankguard": ours})
    above_origin = [k for k, f in enumerate(files) if f["origin_reported"] is not None
                    and mean_std(r["origin"][k])[0] > f["origin_reported"]]
    n_rep = sum(f["origin_reported"] is not None for f in files)
    for k, f in enumerate(files):
        if f["origin_reported"] is not None and k not in above_origin:
            shortfalls.append({"file": f["label"], "rule": "origin", "versus": "origin reported",
                               "baseline": f["origin_reported"], "rankguard": r["origin"][k]})
    toppic_met = not any(s["versus"] == "TopPIC" for s in shortfalls)
    return {"loss": DEFAULT_LOSS, "toppic_every_file_met": toppic_met,
            "above_origin_files": len(above_origin), "origin_files": n_rep,
            "above_origin_most_met": bool(n_rep) and len(above_origin) > n_rep / 2, "shortfalls": shortfalls}


# ------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------

def _seed_totals(per_file: list[list[int]]) -> list[int]:
    return [int(sum(col)) for col in zip(*per_file)] if per_file else []


def _yes(flag) -> str:
    return "n/a" if flag is None else ("yes" if flag else "NO")


def _toppic_markdown(a: dict, seeds: tuple) -> list[str]:
    files, runs = a["files"], a["runs"]
    losses = list(runs)
    lines = [
        "## Top-down: TopPIC PrSMs, trained on toppic/train, each test file scored separately",
        "",
        f"One model per loss and seed (seeds {', '.join(map(str, seeds))}; cells mean ± sample std) trained on the "
        f"{len(a['train_files'])} files of toppic/train; each loss's model, lr and epochs chosen from "
        f"{len(a['grid'])} settings on held-out training files ({', '.join(a['validation_files'])}; trained on the "
        "others; summed PrSMs of both rules), never on the test files: "
        + "; ".join(f"{k} {'/'.join(map(str, v)) if isinstance(v, list) else v}" for k, v in a["chosen"].items())
        + ". TopPIC = its own E-value ranking, counted here by the same rules.",
        "",
        "### (D + 1)/T q-values, q ≤ 0.01",
        "",
        "No threshold passes before 100 targets under this rule, so small files count 0 for everyone.",
        "",
    ]
    rows = []
    for k, f in enumerate(files):
        rows.append([f["label"], f"{f['targets']:,} / {f['prsms']:,}", f"{f['toppic_q']:,}"]
                    + [_cell(runs[m]["q"][k]) for m in losses])
    rows.append(["**total**", f"{sum(f['targets'] for f in files):,} / {sum(f['prsms'] for f in files):,}",
                 f"{sum(f['toppic_q'] for f in files):,}"] + [_cell(_seed_totals(runs[m]["q"])) for m in losses])
    lines += [markdown_table(["file", "targets / PrSMs", "TopPIC"] + [f"rankguard {m}" if m != "svm" else "svm"
                                                                       for m in losses], rows)]
    lines += ["### The origin's rule: the deepest rank with D/(T + 1) ≤ 0.01", "",
              "TopPIC recomputed (E-value order, this rule) next to the TopPIC and rescored counts the origin "
              "reports (REFERENCES §9b).", ""]
    rows = []
    for k, f in enumerate(files):
        rep = lambda v: "-" if v is None else f"{v:,}"  # noqa: E731
        rows.append([f["label"], f"{f['toppic_origin']:,}", rep(f["origin_reported_toppic"]), rep(f["origin_reported"])]
                    + [_cell(runs[m]["origin"][k]) for m in losses])
    tot = lambda key: sum(f[key] or 0 for f in files)  # noqa: E731
    rows.append(["**total**", f"{tot('toppic_origin'):,}", f"{tot('origin_reported_toppic'):,}",
                 f"{tot('origin_reported'):,}"] + [_cell(_seed_totals(runs[m]["origin"])) for m in losses])
    lines += [markdown_table(["file", "TopPIC", "TopPIC (origin reported)", "origin reported"]
                             + [f"rankguard {m}" if m != "svm" else "svm" for m in losses], rows)]
    g = a["goals"]
    lines += [f"Goals (rankguard {g['loss']}, every seed): ≥ TopPIC on every file and > TopPIC where TopPIC accepts "
              f"any PrSM, both rules — {_yes(g['toppic_every_file_met'])}; > the origin's reported count on most "
              f"files (its rule, mean over seeds) — {_yes(g['above_origin_most_met'])} ({g['above_origin_files']} of "
              f"{g['origin_files']} files)."]
    if g["shortfalls"]:
        lines += ["", "Shortfalls (rankguard per seed vs the baseline):", ""]
        lines += [f"- {s['file']}, {'q-value' if s['rule'] == 'q' else 'origin'} rule: {s['rankguard']} vs "
                  f"{s['versus']} {s['baseline']}" for s in g["shortfalls"]]
    wall = "; ".join(f"{m} {_cell(runs[m]['wall_s'], 1)} s" for m in losses)
    lines += ["", f"Training on all 9 files + scoring the 17 (per seed): {wall}.", ""]
    return lines


def _pin_markdown(report: dict) -> list[str]:
    s = report["settings"]
    seeds = report["seeds"]
    mk = report.get("mokapot") or {}
    lines = [
        "## Bottom-up PIN rescoring",
        "",
        f"Accepted at q ≤ 0.01 ((decoys + 1)/targets, after target–decoy competition), seeds "
        f"{', '.join(map(str, seeds))} (mean ± sample std; the best single feature has no seed), "
        f"{s['folds']}-fold CV by spectrum; pipeline defaults: model {s['model']}, {s['epochs']} epochs, "
        f"batch {s['batch_size']}, lr {s['lr']:g}, {s['iterations']} Percolator iteration(s). These defaults were "
        "chosen on these two files' own cross-validated counts with seed 0 (not held out; seeds 1–3 here). "
        "Wall = reading the file + rescoring, 1 thread; mokapot's is its `read_pin` + `brew` inside its own process (interpreter start and "
        "imports excluded). "
        + (f"mokapot 0.10.0 ran with defaults (`brew(rng=seed)`) in its own environment ({mk['versions']})."
           if mk.get("ran") else f"mokapot was not run: {mk.get('why', 'disabled')}."),
        "",
    ]
    rows = []
    for r in report["pin_summary"]:
        per_seed = ", ".join("failed" if any(f["seed"] == sd for f in r["failures"]) else str(v)
                             for sd, v in zip(r["seeds"], _fill(r)))
        fails = "; ".join(f"seed {f['seed']}: {f['error']}" for f in r["failures"]) or "-"
        rows.append([r["file"], r["method"], _cell(r["psms"], 1 if len(r["psms"]) > 1 else 0),
                     per_seed if r["seeds"] != [None] else "-", _cell(r["peptides"], 1 if len(r["peptides"]) > 1 else 0),
                     _cell(r["wall_s"], 1), fails])
    lines += [markdown_table(["file", "method", "PSMs", "PSMs per seed", "peptides", "wall (s)", "failures"], rows)]
    for g in report["pin_goals"]:
        if g["met"] is None:
            lines.append(f"- {g['file']}: goal not checked ({g['why']}).")
            continue
        lines.append(
            f"- {g['file']}: rankguard {DEFAULT_LOSS} {g['rankguard_psms_mean']:.1f} PSMs (mean) vs mokapot's best seed "
            f"{g['mokapot_best_psms']} — {_yes(g['counts_met'])}; wall {g['rankguard_wall_mean']:.1f} s vs "
            f"{g['mokapot_wall_mean']:.1f} s — {_yes(g['wall_met'])}; failures {g['rankguard_failures']} vs mokapot's "
            f"{g['mokapot_failures']} — {_yes(g['never_fails_met'])}.")
    return lines + [""]


def _fill(r: dict) -> list:
    """The per-seed PSM counts aligned with ``r['seeds']`` (None for a failed seed)."""
    failed = {f["seed"] for f in r["failures"]}
    it = iter(r["psms"])
    return [None if sd in failed else next(it) for sd in r["seeds"]]


def to_markdown(report: dict) -> str:
    c = report["loss_speed"]
    env = report["environment"]
    lines = [
        "# Rescoring benchmark",
        "",
        ("QUICK sizes, not the real benchmark. " if report["quick"] else "")
        + f"Whole run: {report['wall_s']} s. " + environment_line(env),
        "",
    ]
    if report.get("toppic"):
        lines += _toppic_markdown(report["toppic"], tuple(report["seeds"]))
    lines += _pin_markdown(report)
    if report.get("forms"):
        lines += _forms_markdown(report["forms"], report["seeds"])
    lines += [
        "## Adaptive rank loss speed",
        "",
        f"One AdaptiveRankLoss step (forward + backward, {c['dtype']}) with a memory of M = {c['M']:,} scores and a "
        f"batch of B = {c['B']:,}; median of {report['sizes']['repeats']} samples (dense: "
        f"{report['sizes']['dense_repeats']}), timed once (no seeds). Dense = the B×M pair form in chunks: "
        f"{c['dense_timed']}. The memory sort happens once per refresh (epoch end) and is timed on its own.",
        "",
        markdown_table(["row", "engine step (s)", "reference (s)", "ratio", "goal", "met"], [
            ["step vs chunked dense", f"{c['step_s']:.4g}", f"{c['dense_s']:.4g}",
             f"{c['speedup_vs_dense']:.4g}x faster", c["goal_dense"], "yes" if c["goal_dense_met"] else "NO"],
            ["step vs one sort of the memory", f"{c['step_s_sort_run']:.4g}", f"{c['sort_s']:.4g}",
             f"step = {c['step_over_sort']:.3g}x sort", c["goal_sort"], "yes" if c["goal_sort_met"] else "NO"],
        ]),
        f"Max rel diff engine vs complete dense step (loss, ∂/∂s, ∂/∂ξ) at M = {c['check_memory']:,}, "
        f"B = {c['B']:,}: {c['max_rel_diff']:.2e}.",
    ]
    notes = list(report.get("notes", []))
    if (report.get("mokapot") or {}).get("ran"):
        notes.append(MOKAPOT_SEED_NOTE)
    lines += (["", "Notes:", ""] + [f"- {n}" for n in notes]) if notes else []
    return "\n".join(lines) + "\n"


def _grid_text(grid: tuple) -> str:
    axes = [list(dict.fromkeys(g[k] for g in grid)) for k in range(3)]
    return (f"model {'/'.join(axes[0])} × lr {'/'.join(f'{v:g}' for v in axes[1])} × "
            f"{'/'.join(map(str, axes[2]))} epochs")


def run_benchmark(sizes: Sizes, data: Path, quick: bool = False, mokapot_venv: str | None = None,
                  cache: Path | None = None, log=print) -> dict:
    """All three parts; ``mokapot_venv`` None = mokapot not run (``sizes.mokapot`` False or no environment)."""
    gen = torch.Generator().manual_seed(0)
    mokapot: dict = {"ran": False, "why": "quick run" if quick else "--no-mokapot"}
    if sizes.mokapot and mokapot_venv is not None:
        problem = ensure_mokapot_venv(mokapot_venv, log)
        if problem:
            mokapot = {"ran": False, "why": problem}
            log(f"mokapot not run: {problem}")
            mokapot_venv = None
        else:
            mokapot = {"ran": True, "venv": str(mokapot_venv)}
    else:
        mokapot_venv = None
    with MeasuredRun(dtype=str(DTYPE).replace("torch.", "")) as measured:
        t0 = time.perf_counter()
        toppic = bench_toppic(sizes, data, log)
        log(f"(a) top-down: {time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        pin = bench_pin(sizes, data, mokapot_venv, cache, log)
        log(f"(b) bottom-up: {time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        forms = bench_forms(sizes, data, cache, mokapot_venv is not None, log)
        forms["wall_s"] = round(time.perf_counter() - t0, 1)
        log(f"(d) ξ and the loss's form: {forms['wall_s']:.0f} s")
        t0 = time.perf_counter()
        speed = bench_loss_speed(sizes, gen)
        log(f"(c) speed: {time.perf_counter() - t0:.0f} s")
    if mokapot["ran"]:
        versions = next((r["versions"] for r in pin if r.get("versions")), {})
        mokapot["versions"] = ", ".join(f"{k} {v}" for k, v in versions.items())
    summary = summarise_pin(pin)
    notes = [f"Budget: the whole run took {measured.wall_s / 60:.1f} min on {torch.get_num_threads()} torch thread(s) "
             f"(limit 40 min); no grid was shrunk: the top-down grid is {len(sizes.toppic_grid)} settings "
             f"({_grid_text(sizes.toppic_grid)}) per torch loss and seed."]
    if mokapot["ran"]:
        notes.append(f"mokapot 0.10.0 is not reproducible for a fixed `rng` here: the 'run again' rows repeat seed "
                     f"{sizes.seeds[0]} (same file, environment and seed) and are not in the goal checks.")
    return {"benchmark": "rescoring", "quick": quick, "seeds": list(sizes.seeds),
            "environment": measured.environment, "wall_s": measured.wall_s, "sizes": asdict(sizes),
            "settings": {k: v for k, v in RescoreSettings().__dict__.items() if k != "seed"},
            "mokapot": mokapot, "toppic": toppic, "pin": pin, "pin_summary": summary, "pin_goals": pin_goals(summary),
            "forms": forms, "loss_speed": speed, "notes": notes}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="tiny sizes (seconds), no mokapot, for smoke tests")
    p.add_argument("--out", default=str(default_results_dir()),
                   help="folder for rescoring.json and rescoring.md (default: the checkout's results/)")
    p.add_argument("--data", default=os.environ.get("RANKGUARD_DATA", "../shared/data"),
                   help="data folder holding pin/ and toppic/ (default: $RANKGUARD_DATA or ../shared/data)")
    p.add_argument("--mokapot-venv", default=str(default_mokapot_venv()),
                   help="mokapot 0.10.0's own virtual environment, created when missing "
                        "(default: .cache/rescoring/mokapot-venv in the checkout)")
    p.add_argument("--no-mokapot", action="store_true", help="do not run mokapot")
    p.add_argument("--mokapot-setup", action="store_true", help="only create the mokapot environment, then exit")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 = steadiest on a shared 2-core box)")
    p.add_argument("--only-forms", action="store_true",
                   help="run only (d), the ξ rule and the loss's form, and merge it into the existing "
                        "OUT/rescoring.json (same sizes and seeds), then rewrite rescoring.md and the plot")


def run(args: argparse.Namespace) -> int:
    if args.mokapot_setup:
        problem = ensure_mokapot_venv(args.mokapot_venv)
        if problem:
            print(f"rankguard bench rescoring: {problem}", file=sys.stderr)
            return 1
        print(f"mokapot {MOKAPOT_VERSION} runs in {args.mokapot_venv}")
        return 0
    torch.set_num_threads(args.threads)
    sizes = QUICK if args.quick else Sizes()
    if args.no_mokapot:
        sizes = dataclasses.replace(sizes, mokapot=False)
    venv = args.mokapot_venv
    cache = Path(venv).parent / "mokapot-tables"
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if args.only_forms:
        report = read_results(args.out, "rescoring")
        if report is None or report.get("quick") != args.quick or report.get("seeds") != list(sizes.seeds):
            print(f"rankguard bench rescoring --only-forms: {Path(args.out) / 'rescoring.json'} is missing or holds "
                  f"another run ({'quick' if args.quick else 'full'} sizes, seeds {list(sizes.seeds)} needed); "
                  "run the whole benchmark", file=sys.stderr)
            return 1
        with MeasuredRun(dtype=str(DTYPE).replace("torch.", "")) as measured:
            forms = bench_forms(sizes, Path(args.data), cache, bool((report.get("mokapot") or {}).get("ran")), log)
        forms.update(wall_s=round(measured.wall_s, 1), environment=measured.environment, merged=True)
        report["forms"] = forms
    else:
        report = run_benchmark(sizes, Path(args.data), quick=args.quick, mokapot_venv=venv, cache=cache, log=log)
    write_qvalue_plot(report["forms"], Path(args.out) / PLOT_NAME)
    return publish(args.out, "rescoring", report, to_markdown(report))


def main(argv: list[str] | None = None) -> int:
    return standalone_main("rescoring", __doc__, add_arguments, run, argv)
