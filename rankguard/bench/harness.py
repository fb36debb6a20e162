"""The one benchmark harness: timing, environment capture, result files, mean ± std, README splicing.

Every benchmark under :mod:`rankguard.bench` uses these pieces and nothing else for them:

* **Timing** — :func:`timed_call` (one back-to-back burst, the only place that reads the clock for a
  measurement) and :func:`time_interleaved` (timeit-style engine bursts alternated with the reference,
  so a change of machine load hits both alike; medians are the headline, minima are kept too).
* **Environment** — :func:`environment` (python / torch / numpy versions, torch threads, CPU count,
  platform, git commit) and :class:`MeasuredRun` (adds the 1-minute load average before and after,
  and the wall time of the whole run).
* **Result files** — :func:`write_results` writes ``OUT/NAME.json`` (machines) and ``OUT/NAME.md``
  (people) through :func:`rankguard.runs.write_json` / :func:`rankguard.runs.atomic_write_text`;
  :func:`read_results` reads a previous JSON back (for benchmarks that merge rows);
  :func:`cached_record` keeps each (row, seed) result under ``.cache/bench/NAME`` so a killed run
  resumes (:func:`add_cache_arguments` / :func:`cache_from_args` give every benchmark the same flags).
* **Mean ± std over seeds** — :func:`summarize_seeds` and :func:`mean_std_cell`, both on
  :mod:`rankguard.stats` (the project's one convention: :data:`STD_NOTE`).
* **README splicing** — :func:`splice_readme` / :func:`update_readme`: README.md holds
  ``<!-- BEGIN results/NAME.md -->`` … ``<!-- END results/NAME.md -->`` blocks whose body is the
  results file, verbatim except that its headings are demoted under the README's section
  (``#`` → ``####``, ``##`` → ``#####``). Run as ``rankguard bench readme``.

>>> t = time_interleaved(lambda: sum(range(100)), lambda: sorted(range(1000)), 3, 2)
>>> t.engine_median > 0 and t.reference_median > 0 and len(t.engine_samples) == 3
True
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch

from rankguard.runs import atomic_write_text, write_json
from rankguard.stats import STD_DDOF, format_mean_std, mean_std

#: how every "± std" of a benchmark table is computed; say it in the table's caption
STD_NOTE = f"sample std (ddof={STD_DDOF})"

#: minimum length (s) of one timed burst of engine calls (timeit-style)
ENGINE_BURST_S = 0.05

# ---------------------------------------------------------------- timing


def timed_call(fn: Callable[[], Any], calls: int = 1) -> tuple[Any, float]:
    """Call ``fn`` ``calls`` times back to back; return ``(last result, mean seconds per call)``.

    >>> out, secs = timed_call(lambda: 2 + 2, calls=10)
    >>> out, secs >= 0
    (4, True)
    """
    if calls < 1:
        raise ValueError(f"`calls` must be >= 1, got {calls}")
    out = None
    t0 = time.perf_counter()
    for _ in range(calls):
        out = fn()
    return out, (time.perf_counter() - t0) / calls


@dataclass
class Timing:
    """Wall times (s) of an engine and (optionally) a reference; median = headline, min = least disturbed.

    ``engine_calls`` is the burst length (calls per engine sample); ``*_result`` are the last
    return values (for checking values without another run); reference fields are ``None`` when no
    reference was timed.
    """

    engine_median: float
    engine_min: float
    reference_median: float | None
    reference_min: float | None
    engine_calls: int
    engine_samples: list[float]
    reference_samples: list[float]
    engine_result: Any = field(default=None, repr=False, compare=False)
    reference_result: Any = field(default=None, repr=False, compare=False)

    @property
    def ratio(self) -> float | None:
        """reference_median / engine_median: a speed-up of medians (``None`` without a reference)."""
        return None if self.reference_median is None else self.reference_median / self.engine_median


def time_interleaved(engine_fn: Callable[[], Any], reference_fn: Callable[[], Any] | None = None,
                     engine_repeats: int = 5, reference_repeats: int = 1, *, engine_warmup: int = 1,
                     reference_warmup: int = 1, reference_scale: float = 1.0,
                     burst_s: float = ENGINE_BURST_S) -> Timing:
    """Time ``engine_fn`` (and ``reference_fn``), alternating their runs so load changes hit both.

    Order: ``engine_warmup`` untimed engine runs, ``reference_warmup`` untimed reference runs, then
    for k = 0, 1, … one engine sample (while k < ``engine_repeats``) and one reference run (while
    k < ``reference_repeats``). Like ``timeit``, one engine sample is the mean per call over a burst
    of back-to-back calls lasting at least ``burst_s``, its length set from the last warm-up run (a
    millisecond call timed alone right after a multi-second dense run mostly measures cold caches and
    sleeping worker threads); with ``engine_warmup=0`` every sample is a single call. A reference
    sample is one call, multiplied by ``reference_scale`` (a reference timed on a known fraction of
    its work).

    >>> t = time_interleaved(lambda: None, None, engine_repeats=2)
    >>> t.reference_median is None and t.ratio is None and len(t.engine_samples) == 2
    True
    """
    if engine_repeats < 1:
        raise ValueError(f"`engine_repeats` must be >= 1, got {engine_repeats}")
    if reference_fn is not None and reference_repeats < 1:
        raise ValueError(f"`reference_repeats` must be >= 1 when a reference is timed, got {reference_repeats}")
    calls = 1
    for _ in range(engine_warmup):
        _, secs = timed_call(engine_fn)
        calls = max(1, math.ceil(burst_s / max(secs, 1e-9)))
    ref_result = None
    if reference_fn is not None:
        for _ in range(reference_warmup):
            reference_fn()
    n_ref = reference_repeats if reference_fn is not None else 0
    eng, ref = [], []
    eng_result = None
    for k in range(max(engine_repeats, n_ref)):
        if k < engine_repeats:
            eng_result, secs = timed_call(engine_fn, calls)
            eng.append(secs)
        if k < n_ref:
            ref_result, secs = timed_call(reference_fn)  # type: ignore[arg-type]
            ref.append(secs * reference_scale)
    return Timing(statistics.median(eng), min(eng), statistics.median(ref) if ref else None,
                  min(ref) if ref else None, calls, eng, ref, eng_result, ref_result)


def rel_diff(a: torch.Tensor | float, b: torch.Tensor | float) -> float:
    """max|a − b| / max|b| (the absolute difference when b is all zero); scalars allowed.

    >>> rel_diff(torch.tensor([1.0, 2.1]), torch.tensor([1.0, 2.0]))  # doctest: +ELLIPSIS
    0.04999...
    """
    a = torch.as_tensor(a).detach().double()
    b = torch.as_tensor(b).detach().double()
    scale = float(b.abs().max())
    err = float((a - b).abs().max())
    return err / scale if scale > 0 else err


# ---------------------------------------------------------------- environment


def repo_root() -> Path | None:
    """The source checkout holding this package (``None`` for an installed copy)."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").exists() else None


def default_results_dir() -> Path:
    """``results/`` of the checkout when run from one, else ``./results``."""
    root = repo_root()
    return root / "results" if root is not None else Path("results")


def loadavg_1min() -> float | None:
    """The 1-minute load average, rounded to 0.01 (``None`` where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def git_commit() -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the checkout (dirty: tracked files differ from the
    commit), or ``None`` outside a git checkout or without git."""
    root = repo_root()
    if root is None:
        return None
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": sha, "dirty": bool(status.strip())} if sha else None


def environment(**extra: Any) -> dict[str, Any]:
    """What a timing depends on: versions, threads, CPUs, platform, git commit, current load.

    ``extra`` entries (e.g. ``dtype="float32"``) are added as given.

    >>> env = environment(dtype="float32")
    >>> sorted(set(env) - {"dtype"})  # doctest: +NORMALIZE_WHITESPACE
    ['cpu_count', 'git', 'loadavg_1min_before', 'machine', 'numpy', 'platform', 'python', 'threads', 'torch']
    """
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "machine": f"{platform.machine()} {platform.processor() or platform.system()}".strip(),
            "platform": platform.platform(), "git": git_commit(), "loadavg_1min_before": loadavg_1min(),
            **extra}


class MeasuredRun:
    """Context manager around a whole benchmark run: :attr:`environment` at the start, then on exit
    ``loadavg_1min_after`` added to it and :attr:`wall_s` (seconds, 0.1 s) set.

    >>> with MeasuredRun() as run:
    ...     _ = sum(range(10))
    >>> "loadavg_1min_after" in run.environment and run.wall_s >= 0
    True
    """

    def __init__(self, **extra: Any):
        self.environment = environment(**extra)
        self.wall_s: float | None = None
        self._t0 = 0.0

    def __enter__(self) -> "MeasuredRun":
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.mark()

    def mark(self) -> None:
        """Set :attr:`wall_s` and ``loadavg_1min_after`` now (a benchmark that writes its files after
        every row calls this before each write, so no file says "None after")."""
        self.wall_s = round(time.perf_counter() - self._t0, 1)
        self.environment["loadavg_1min_after"] = loadavg_1min()


def environment_line(env: Mapping[str, Any]) -> str:
    """One Markdown sentence naming the environment of ``env`` (as :class:`MeasuredRun` fills it)."""
    git = env.get("git") or {}
    commit = f"commit {git['commit'][:10]}{' + local changes' if git.get('dirty') else ''}" if git else "no git commit"
    return (f"Python {env['python']}, torch {env['torch']}, numpy {env['numpy']}; {env['threads']} torch "
            f"thread(s), {env['cpu_count']} CPUs ({env['machine']}); {commit}; 1-minute load average "
            f"{env.get('loadavg_1min_before')} before, {env.get('loadavg_1min_after')} after.")


# ---------------------------------------------------------------- result files


def write_results(out: str | os.PathLike, name: str, payload: Any, markdown: str) -> tuple[Path, Path]:
    """Write ``OUT/NAME.json`` (``payload``) and ``OUT/NAME.md`` (``markdown``), each atomically.

    >>> import tempfile; d = tempfile.mkdtemp()
    >>> [p.name for p in write_results(d, "demo", {"x": 1}, "# Demo\\n")]
    ['demo.json', 'demo.md']
    """
    out = Path(out)
    return write_json(out / f"{name}.json", payload), atomic_write_text(out / f"{name}.md", markdown)


def publish(out: str | os.PathLike, name: str, payload: Any, markdown: str) -> int:
    """:func:`write_results`, then print the table and where it went; returns 0 (a benchmark's exit code)."""
    json_path, md_path = write_results(out, name, payload, markdown)
    print(markdown)
    print(f"wrote {json_path} and {md_path}")
    return 0


@contextlib.contextmanager
def results_lock(out: str | os.PathLike, name: str) -> Iterator[None]:
    """Hold an exclusive lock on ``OUT/.NAME.lock`` (``fcntl.flock``) for a read-merge-write of
    ``OUT/NAME.*``, so two benchmark processes adding rows to one table (each on its own core) never
    drop each other's rows. Blocks while the other holds it; released on exit, even on error.

    >>> import tempfile; d = tempfile.mkdtemp()
    >>> with results_lock(d, "demo"): write_results(d, "demo", {"x": 1}, "")[0].name
    'demo.json'
    """
    import fcntl

    Path(out).mkdir(parents=True, exist_ok=True)
    with open(Path(out) / f".{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_results(out: str | os.PathLike, name: str) -> dict[str, Any] | None:
    """``OUT/NAME.json`` as a dict, or ``None`` when there is none yet."""
    path = Path(out) / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def cached_record(cache: Path | None, key: str, make: Callable[[], dict[str, Any]], plan: Mapping[str, Any],
                  log: Callable[[str], Any] | None = print) -> dict[str, Any]:
    """``CACHE/KEY.json`` if it exists and was made with the same ``plan`` (compared as sorted JSON),
    else ``make()`` with ``"plan"`` added, written atomically before it is returned. ``cache=None``
    keeps nothing. A benchmark calls this once per (row, seed), so a killed run loses only the seed
    in progress and a changed setting (``plan``) is never served from an old record.

    >>> import tempfile; d = Path(tempfile.mkdtemp()); calls = []
    >>> make = lambda: calls.append(1) or {"P@3": 0.25}
    >>> [cached_record(d, "row-seed0", make, {"lr": 0.1}, None)["P@3"] for _ in range(2)], len(calls)
    ([0.25, 0.25], 1)
    >>> _ = cached_record(d, "row-seed0", make, {"lr": 0.2}, None); len(calls)   # another plan: made again
    2
    """
    path = cache / f"{key}.json" if cache is not None else None
    if path is not None and path.exists():
        record = json.loads(path.read_text())
        if json.dumps(record.get("plan"), sort_keys=True) == json.dumps(plan, sort_keys=True):
            if log is not None:
                log(f"{key}: read back from {path}")
            return record
    record = {**make(), "plan": plan}
    if path is not None:
        write_json(path, record)
    return record


def add_cache_arguments(p: argparse.ArgumentParser, name: str) -> None:
    """``--cache DIR`` and ``--no-cache``, the same in every benchmark that keeps (row, seed) records."""
    p.add_argument("--cache", default=None, help=f"per-(row, seed) results (default .cache/bench/{name})")
    p.add_argument("--no-cache", action="store_true", help="train everything, keep nothing")


def cache_from_args(args: argparse.Namespace, name: str) -> Path | None:
    """The cache folder :func:`add_cache_arguments` asked for (``None`` with ``--no-cache``)."""
    if args.no_cache:
        return None
    return Path(args.cache) if args.cache else (repo_root() or Path.cwd()) / ".cache" / "bench" / name


# ---------------------------------------------------------------- mean ± std over seeds


def finite_or_none(value: float | None) -> float | None:
    """``float(value)``, or ``None`` for ``None`` / NaN / ±inf (JSON ``null``: "no user qualifies")."""
    return float(value) if value is not None and np.isfinite(value) else None


def summarize_seeds(per_seed: Sequence[Mapping[str, float | None]], keys: Iterable[str]
                    ) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """``(mean, std)`` dicts over seeds for each key, by :func:`rankguard.stats.mean_std`
    (:data:`STD_NOTE`; std ``None`` for one seed); seeds where a key is ``None`` are left out of it.

    >>> summarize_seeds([{"AUC": 0.8}, {"AUC": 0.9}, {"AUC": None}], ["AUC"])  # doctest: +ELLIPSIS
    ({'AUC': 0.85...}, {'AUC': 0.0707...})
    """
    mean: dict[str, float | None] = {}
    std: dict[str, float | None] = {}
    for k in keys:
        m, s = mean_std([r[k] for r in per_seed if r.get(k) is not None])
        mean[k], std[k] = finite_or_none(m), finite_or_none(s)
    return mean, std


def mean_std_cell(values: Iterable[float | None], digits: int = 2, scale: float = 100.0) -> str:
    """Table cell ``"m ± s"`` (``"m"`` for one value, ``"n/a"`` for none) of the non-``None`` values.

    >>> mean_std_cell([0.1, 0.2, None])
    '15.00 ± 7.07'
    """
    return format_mean_std([v for v in values if v is not None], digits=digits, scale=scale)


# ---------------------------------------------------------------- README splicing

README_BLOCK = re.compile(r"(<!-- BEGIN (results/[\w.-]+\.md) -->\n)(.*?)(<!-- END \2 -->)", re.S)


@dataclass
class SpliceReport:
    """What :func:`update_readme` did: blocks refreshed, results files missing, whether it wrote."""

    refreshed: list[str]
    missing: list[str]
    changed: bool


def _demote_headings(body: str) -> str:
    body = re.sub(r"^# ", "#### ", body, flags=re.M)
    return re.sub(r"^## ", "##### ", body, flags=re.M)


def splice_readme(text: str, root: str | os.PathLike) -> tuple[str, SpliceReport]:
    """Fill every ``<!-- BEGIN results/NAME.md -->`` … ``<!-- END results/NAME.md -->`` block of
    ``text`` with ``ROOT/results/NAME.md`` (headings demoted two levels; nothing else changed).

    A block whose file is missing is left as it was and listed in the report's ``missing``.

    >>> import tempfile, pathlib; d = pathlib.Path(tempfile.mkdtemp()); (d / "results").mkdir()
    >>> _ = (d / "results" / "t.md").write_text("# T\\n| a |\\n")
    >>> new, rep = splice_readme("x\\n<!-- BEGIN results/t.md -->\\nold\\n<!-- END results/t.md -->\\ny", d)
    >>> print(new)
    x
    <!-- BEGIN results/t.md -->
    #### T
    | a |
    <!-- END results/t.md -->
    y
    """
    root = Path(root)
    refreshed: list[str] = []
    missing: list[str] = []

    def fill(m: re.Match) -> str:
        src = root / m.group(2)
        if not src.is_file():
            missing.append(m.group(2))
            return m.group(0)
        refreshed.append(m.group(2))
        return m.group(1) + _demote_headings(src.read_text()).rstrip("\n") + "\n" + m.group(4)

    new = README_BLOCK.sub(fill, text)
    return new, SpliceReport(refreshed, missing, new != text)


def update_readme(readme: str | os.PathLike, root: str | os.PathLike | None = None) -> SpliceReport:
    """Splice the results files into ``readme`` in place (atomically, only if something changed);
    ``results/`` is looked up under ``root`` (default: the README's folder)."""
    readme = Path(readme)
    if not readme.is_file():
        raise FileNotFoundError(f"{readme}: no such README (pass --readme PATH)")
    text = readme.read_text()
    new, report = splice_readme(text, readme.parent if root is None else root)
    if report.changed:
        atomic_write_text(readme, new)
    return report


# ---------------------------------------------------------------- command-line glue


def standalone_main(name: str, doc: str | None, add_arguments: Callable[[argparse.ArgumentParser], None],
                    run: Callable[[argparse.Namespace], int], argv: list[str] | None = None) -> int:
    """``main(argv)`` of a benchmark module: the same flags as ``rankguard bench NAME``."""
    parser = argparse.ArgumentParser(prog=f"rankguard bench {name}", description=(doc or name).strip().splitlines()[0])
    add_arguments(parser)
    return int(run(parser.parse_args(argv)) or 0)
