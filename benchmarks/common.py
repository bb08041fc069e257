"""Shared helpers of the benchmark scripts: machine record, timing, memory, result files.

Timing rule: compilation (``jax.jit(f).lower(...).compile()``) is timed apart from running;
a steady-state time is the median of several calls of the compiled executable, each clocked
with ``time.perf_counter`` (wall clock) after ``jax.block_until_ready`` on inputs and outputs.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import faulthandler
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import jax

import purea2c
from purea2c.run_dir import config_to_json, dist_versions

# These scripts time compilation: JAX's persistent cache is off in them and in the processes
# they start (a cached program would time as a load from disk), except where a script turns
# it on to measure it (peers.py's warm and cold solves).
os.environ.setdefault("PUREA2C_COMPILE_CACHE", "0")
if not purea2c.compile_cache.default_enabled():
    purea2c.enable_compile_cache(False)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parents[1]

VERSIONED = ("jax", "jaxlib", "flax", "optax", "gymnax", "chex", "orbax-checkpoint", "numpy")
# No single compilation or timed loop of these scripts takes minutes; past this the process
# is stuck (seen once: XLA's CPU thread pool wedged in block_until_ready) and is ended.
HANG_S = float(os.environ.get("PUREA2C_BENCH_HANG_S", 900))


# ------------------------------------------------------------------------------------------
# Command line and machine record
# ------------------------------------------------------------------------------------------


def base_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the flags every script has: ``--quick`` and ``--label``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, for a smoke run (well under 2 minutes)")
    parser.add_argument("--label", default=None,
                        help="suffix of the result files (default: jax.default_backend())")
    return parser


def result_label(args: argparse.Namespace) -> str:
    label = args.label or jax.default_backend()
    return f"{label}-quick" if args.quick and not label.endswith("quick") else label


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_revision() -> str | None:
    """The repository's commit (short hash, ``+dirty`` when tracked files are changed), or
    None outside a git checkout."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if rev.returncode != 0:
        return None
    return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def machine_info() -> dict[str, Any]:
    """Versions, devices, CPU, command line, git revision and date of this run."""
    versions = {"python": platform.python_version(), **dist_versions(VERSIONED)}
    try:
        import purea2c

        versions["purea2c"] = purea2c.__version__
    except ImportError:  # pragma: no cover
        versions["purea2c"] = None
    return {
        "versions": versions,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "device_kinds": sorted({d.device_kind for d in jax.devices()}),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "command": " ".join([sys.executable, *sys.argv]),
        "pythonpath": os.environ.get("PYTHONPATH"),
        "cwd": os.getcwd(),
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "git_revision": git_revision(),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


# ------------------------------------------------------------------------------------------
# Timing and memory
# ------------------------------------------------------------------------------------------


def peak_memory() -> dict[str, float | None]:
    """Peak memory so far: host RSS of this process (MiB, monotone over the process) and, on
    an accelerator, ``peak_bytes_in_use`` of the first device (MiB) when it reports it."""
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    out: dict[str, float | None] = {"peak_host_rss_mib": rss_kib / 1024, "peak_device_mib": None}
    device = jax.devices()[0]
    if device.platform != "cpu":
        try:
            stats = device.memory_stats() or {}
            if "peak_bytes_in_use" in stats:
                out["peak_device_mib"] = stats["peak_bytes_in_use"] / 2**20
        except Exception:  # pragma: no cover - backends without memory_stats
            pass
    return out


def _program_memory(compiled: Any) -> dict[str, float] | None:
    """XLA's own account of the program's buffers (arguments, outputs, temporaries), MiB."""
    try:
        ma = compiled.memory_analysis()
    except Exception:  # pragma: no cover
        return None
    if ma is None:
        return None
    fields = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes",
              "alias_size_in_bytes")
    out = {f.replace("_size_in_bytes", "_mib"): getattr(ma, f, 0) / 2**20 for f in fields}
    out["total_mib"] = out["argument_mib"] + out["output_mib"] + out["temp_mib"] - out["alias_mib"]
    return out


@contextlib.contextmanager
def watchdog(what: str, seconds: float = HANG_S):
    """Ends the process (exit status 3, with every thread's Python stack on stderr) if the
    block does not finish within ``seconds``, so an unattended run cannot hang forever."""
    def fire():
        sys.stderr.write(
            f"\n[watchdog] {what} has not finished after {seconds:.0f} s; the process looks "
            "stuck (XLA's CPU thread pool can wedge; XLA_FLAGS="
            "--xla_cpu_multi_thread_eigen=false avoids it at some speed). Exiting.\n")
        faulthandler.dump_traceback(all_threads=True)
        os._exit(3)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def compile_fn(fn: Callable, *args: Any) -> tuple[Any, dict[str, float]]:
    """Traces, lowers and compiles ``fn`` for ``args``; returns the executable and the times
    (``trace_lower_s``, ``xla_compile_s``, ``compile_s`` = both)."""
    jitted = fn if hasattr(fn, "lower") else jax.jit(fn)
    with watchdog("compiling"):
        start = time.perf_counter()
        lowered = jitted.lower(*args)
        mid = time.perf_counter()
        compiled = lowered.compile()
        end = time.perf_counter()
    return compiled, {"trace_lower_s": mid - start, "xla_compile_s": end - mid,
                      "compile_s": end - start}


def time_calls(compiled: Callable, *args: Any, repeats: int = 5,
               warmup: int = 1) -> dict[str, Any]:
    """Calls ``compiled(*args)`` ``warmup`` times untimed, then ``repeats`` times timed.

    Returns ``run_s`` (median), ``run_s_all``, ``first_call_s`` and the last output.
    """
    first = None
    times = []
    out = None
    with watchdog("a timed run"):
        jax.block_until_ready(args)
        for _ in range(warmup):
            start = time.perf_counter()
            jax.block_until_ready(compiled(*args))
            first = first if first is not None else time.perf_counter() - start
        for _ in range(repeats):
            jax.block_until_ready(args)
            start = time.perf_counter()
            out = compiled(*args)
            jax.block_until_ready(out)
            times.append(time.perf_counter() - start)
    return {"run_s": statistics.median(times), "run_s_all": times, "first_call_s": first,
            "output": out}


def benchmark(fn: Callable, *args: Any, repeats: int = 5, warmup: int = 1) -> dict[str, Any]:
    """`compile_fn` then `time_calls`, plus the program's memory and the peak memory after."""
    compiled, compile_times = compile_fn(fn, *args)
    timed = time_calls(compiled, *args, repeats=repeats, warmup=warmup)
    return {**compile_times, **timed, "program_memory": _program_memory(compiled),
            **peak_memory()}


# ------------------------------------------------------------------------------------------
# purea2c training throughput (shared by throughput.py, ceiling.py and the peers worker)
# ------------------------------------------------------------------------------------------


def _train_fn(num_seeds: int | None) -> Callable:
    import purea2c

    if num_seeds is None:
        return purea2c.train
    return jax.jit(jax.vmap(purea2c.train, in_axes=(0, None)),
                   compiler_options=purea2c.compiler_options())


def _train_keys(num_seeds: int | None) -> jax.Array:
    key = jax.random.key(0)
    return key if num_seeds is None else jax.random.split(key, num_seeds)


def calibrated_benchmark(build: Callable[[int], tuple[Callable, tuple]], probe_units: int,
                         target_s: float | None, repeats: int = 5,
                         max_units: int | None = None) -> dict[str, Any]:
    """`benchmark` of ``fn(*args) = build(units)`` where ``units`` (a static size such as loop
    iterations) is chosen so one call lasts about ``target_s`` seconds, from a short probe at
    ``probe_units``. ``target_s=None`` benchmarks ``build(probe_units)`` directly. The result
    has ``units`` and, when calibrated, ``calibration``."""
    if target_s is None:
        fn, args = build(probe_units)
        return {**benchmark(fn, *args, repeats=repeats), "units": probe_units,
                "calibration": None}
    fn, args = build(probe_units)
    compiled, times = compile_fn(fn, *args)
    probe_s = time_calls(compiled, *args, repeats=2, warmup=1)["run_s"]
    units = max(probe_units, int(probe_units * target_s / max(probe_s, 1e-7)))
    if max_units is not None:
        units = max(1, min(units, max_units))
    calibration = {"probe_units": probe_units, "probe_compile_s": times["compile_s"],
                   "probe_run_s": probe_s, "target_s": target_s}
    if units == probe_units:  # the probe is the program: a second compile would hit the cache
        timed = time_calls(compiled, *args, repeats=repeats)
        res = {**times, **timed, "program_memory": _program_memory(compiled), **peak_memory()}
    else:
        fn, args = build(units)
        res = benchmark(fn, *args, repeats=repeats)
    return {**res, "units": units, "calibration": calibration}


def measure_training(config: Any, num_seeds: int | None = None, target_s: float | None = 3.0,
                     repeats: int = 5, max_timesteps: int | None = None) -> dict[str, Any]:
    """Compile time and steady-state env steps/s of ``purea2c.train`` for ``config``.

    ``num_seeds=None``: one agent, ``purea2c.train``; an int: ``jit(vmap(train))`` over that
    many keys. ``target_s``: when given, ``total_timesteps`` is first calibrated (in whole
    iterations, at most ``max_timesteps``) so one call lasts about that long; ``None`` keeps
    ``config``'s. The value used is recorded.
    """
    per_iter = config.steps_per_iteration
    agents = num_seeds or 1
    fn, keys = _train_fn(num_seeds), _train_keys(num_seeds)

    def build(iters: int) -> tuple[Callable, tuple]:
        return fn, (keys, config.replace(total_timesteps=iters * per_iter))

    if target_s is None:
        probe = config.num_iterations
    else:
        probe = max(2, math.ceil(65_536 / (per_iter * agents)))
    res = calibrated_benchmark(build, probe, target_s, repeats,
                               None if max_timesteps is None else max_timesteps // per_iter)
    out = res.pop("output")
    steps_per_agent = res["units"] * per_iter
    final_return = jax.device_get(out.metrics.episode_return[..., -1])
    res.update(
        num_seeds=agents,
        vmapped=num_seeds is not None,
        total_timesteps=steps_per_agent,
        steps_per_agent=steps_per_agent,
        num_iterations=res["units"],
        per_agent_steps_per_s=steps_per_agent / res["run_s"],
        aggregate_steps_per_s=agents * steps_per_agent / res["run_s"],
        final_train_return_mean=float(jax.numpy.nanmean(final_return)),
    )
    return res


def config_record(config: Any) -> dict[str, Any]:
    """The config's fields as plain JSON values (a value JSON cannot hold as its repr)."""
    return config_to_json(config, fallback=repr)


# ------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 3) -> str:
    """Compact number formatting for tables: 12.3k, 4.56M, 0.123."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # nan, inf
    a = abs(value)
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{value / div:.{digits}g}{suffix}"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}"


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    columns = list(columns or (rows[0].keys() if rows else []))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else str(obj)
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        return _jsonable(obj.item())
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


def results_dir() -> Path:
    """The folder result files go to: ``$PUREA2C_RESULTS_DIR`` when set (e.g. a smoke run into
    a temporary folder), else ``benchmarks/results``."""
    folder = os.environ.get("PUREA2C_RESULTS_DIR")
    return Path(folder) if folder else RESULTS_DIR


def _stem(name: str, label: str | None) -> str:
    return name if label is None else f"{name}_{label}"


def load_results(name: str, label: str | None = None) -> dict[str, Any] | None:
    """The record `write_results` last wrote for ``name`` (and ``label``), or None: for
    scripts that add to their results run by run (one entry per environment)."""
    path = results_dir() / f"{_stem(name, label)}.json"
    return json.loads(path.read_text()) if path.exists() else None


_META = ("benchmark", "label", "machine")


def write_results(name: str, record: dict[str, Any], markdown: str, *,
                  label: str | None = None, machine: dict[str, Any] | None = None,
                  title: str | None = None) -> tuple[Path, Path]:
    """Writes ``<results_dir()>/<name>[_<label>].json`` and ``.md``; every script's results go
    through here.

    The JSON holds ``benchmark``, ``label`` and ``machine`` (`machine_info`: command,
    versions, git revision, date, devices and CPU; taken now when not given), then
    ``record``'s fields (a record read back with `load_results` keeps its fields, and gets
    this run's machine). The Markdown file is ``# title`` (default ``name (label)``), a
    header with the same command, machine, date and versions, then ``markdown``.
    """
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    machine = machine or machine_info()
    stem = _stem(name, label)
    json_path, md_path = folder / f"{stem}.json", folder / f"{stem}.md"
    body = {k: v for k, v in record.items() if k not in _META}
    json_path.write_text(json.dumps(_jsonable({"benchmark": name, "label": label,
                                               "machine": machine, **body}), indent=1))
    v = machine["versions"]
    versions = ", ".join(f"{k} {v.get(k)}" for k in ("python", "purea2c", *VERSIONED))
    revision = machine.get("git_revision")
    header = (f"# {title or (name if label is None else f'{name} ({label})')}\n\n"
              f"`{machine['command']}`"
              + (f" at revision {revision}" if revision else "")
              + f" on {machine['cpu_model']} ({machine['cpu_count']} cores), devices "
              f"{', '.join(machine['devices'])}; {machine['date_utc']}\n\n{versions}\n\n")
    md_path.write_text(header + markdown.rstrip() + "\n")
    return json_path, md_path


def plot_path(name: str, label: str | None, what: str) -> Path:
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{_stem(name, label)}_{what}.png"


def pyplot():
    """matplotlib's pyplot with a file-only backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
