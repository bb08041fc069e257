"""Command line: ``purea2c train | evaluate | render`` (also ``python -m purea2c``).

``purea2c`` with no arguments (or with only flags) means ``purea2c train``: it trains the
default config, shows a progress bar and leaves a run directory

    runs/<env>-<timestamp>/
      config.json           every `Config` field (``Config(**json)`` rebuilds it, tuples as lists)
      run.json              seeds, base seed, chunk length, versions, command, status
      metrics.csv           one row per iteration and seed (long format), updated every chunk
      metrics.parquet       the same table, columnar (``pandas.read_parquet``)
      learning_curve.png    mean training return over seeds with a 95% band
      checkpoints/<iter>/   the whole vmapped `TrainState` (orbax, atomic), see checkpoint.py
      evaluation.json       greedy returns per seed (train's final evaluation, ``evaluate``)
      tensorboard/          scalars, with ``--tensorboard``
      render.gif            from ``purea2c render``

Training runs the compiled program in chunks: ``jit(vmap(init))`` once, then one compiled
``jit(vmap(run, num_iterations=chunk))`` program called repeatedly. Each chunk is a whole XLA
program (no host round-trip inside); between chunks the metrics come back to the host for
the progress bar and the files, and checkpoints are saved. A resumed run calls the same
chunk program on the restored state, so it finishes bitwise equal to an uninterrupted run.
"""

from __future__ import annotations

import argparse
import ast
import csv
import dataclasses
import datetime
import functools
import json
import math
import os
import pathlib
import shlex
import signal
import sys
import textwrap
import threading
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from purea2c import checkpoint
from purea2c.config import Config
from purea2c.evaluate import evaluate
from purea2c.training import compiler_options, init, run

_CONFIG_JSON = "config.json"
_RUN_JSON = "run.json"
_METRICS_CSV = "metrics.csv"
_METRICS_PARQUET = "metrics.parquet"
_CURVE_PNG = "learning_curve.png"
_CHECKPOINTS = "checkpoints"
_EVALUATION_JSON = "evaluation.json"
_TENSORBOARD = "tensorboard"
_RENDER_GIF = "render.gif"

# Environments gymnax 1.0.1 draws (gymnax.visualize.Visualizer). The classic-control ones are
# drawn by gymnasium's renderer (needs pygame: pip install "purea2c[render]").
_GYM_DRAWN = ("Acrobot-v1", "CartPole-v1", "Pendulum-v1", "MountainCar-v0",
              "MountainCarContinuous-v0")
_MPL_DRAWN = ("Catch-bsuite", "Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar",
              "Seaquest-MinAtar", "SpaceInvaders-MinAtar", "Pong-misc", "PointRobot-misc",
              "MetaMaze-misc", "FourRooms-misc")
DRAWABLE_ENVS = _GYM_DRAWN + _MPL_DRAWN

_EXIT_USAGE = 2


class CommandError(Exception):
    """A user-facing error: printed without a traceback, exit status 1."""


# ------------------------------------------------------------------------------------------
# Config fields as flags
# ------------------------------------------------------------------------------------------


class _FlagKind(NamedTuple):
    parse: Callable[[str], Any]  # one command-line token -> value
    is_bool: bool
    is_tuple: bool
    metavar: str


def _parse_literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _with_none(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse_or_none(text: str) -> Any:
        return None if text.lower() == "none" else parse(text)
    return parse_or_none


def _field_default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return field.default_factory()  # type: ignore[misc]
    return None


def _flag_kind(field: dataclasses.Field) -> _FlagKind:
    """How a command-line value of this Config field is parsed: from the type of its default
    value, else from its annotation (``int``, ``float``, ``bool``, ``str``, ``tuple[int, ...]``,
    optionally ``| None``)."""
    default = _field_default(field)
    annotation = field.type if isinstance(field.type, str) else str(field.type)
    optional = "None" in annotation

    def scalar(value: Any, text: str) -> tuple[Callable[[str], Any], str]:
        if isinstance(value, bool) or (value is None and text == "bool"):
            return _parse_bool, "BOOL"
        if isinstance(value, int) or (value is None and text == "int"):
            return int, "INT"
        if isinstance(value, float) or (value is None and text == "float"):
            return float, "FLOAT"
        if isinstance(value, str) or (value is None and text == "str"):
            return str, "STR"
        return _parse_literal, "VALUE"

    if isinstance(default, bool) or (default is None and annotation.split("|")[0].strip()
                                      == "bool"):
        return _FlagKind(_parse_bool, True, False, "")
    if isinstance(default, tuple) or annotation.startswith("tuple"):
        element = default[0] if isinstance(default, tuple) and default else None
        inner = annotation[annotation.find("[") + 1:].split(",")[0].strip() \
            if "[" in annotation else ""
        parse, metavar = scalar(element, inner)
        return _FlagKind(parse, False, True, metavar)
    base = annotation.split("|")[0].strip()
    parse, metavar = scalar(default, base)
    if optional:
        parse = _with_none(parse)
    return _FlagKind(parse, False, False, metavar)


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _is_traced(field: dataclasses.Field) -> bool:
    return bool(field.metadata.get("pytree_node", True))


def _format_default(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value) if value else "(empty)"
    return str(value)


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per `Config` field (``--pi-learning-rate``; ``--clear-buffer`` /
    ``--no-clear-buffer`` for bools; ``--hidden-sizes 64 64`` for tuples), with the field's
    documentation as help. Unset flags stay ``None`` so a preset's values are kept."""
    group = parser.add_argument_group(
        "Config fields", _wrap(
        "Each flag sets one field of purea2c.Config; fields left unset take the preset's "
        "value, else the default shown. 'static' fields fix the compiled program's shapes "
        "and code paths; 'traced' hyperparameters are program inputs (vmappable in the "
        "Python API)."))
    for field in dataclasses.fields(Config):
        kind = _flag_kind(field)
        flag = "--" + field.name.replace("_", "-")
        doc = field.metadata.get("doc", "").strip()
        role = "traced" if _is_traced(field) else "static"
        help_text = f"{doc} [default: {_format_default(_field_default(field))}; {role}]"
        help_text = help_text.replace("%", "%%")
        dest = f"config__{field.name}"
        if kind.is_bool:
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction,
                               default=None, help=help_text)
        elif kind.is_tuple:
            group.add_argument(flag, dest=dest, type=kind.parse, nargs="*", default=None,
                               metavar=kind.metavar, help=help_text)
        else:
            group.add_argument(flag, dest=dest, type=kind.parse, default=None,
                               metavar=kind.metavar, help=help_text)
        if "_" in field.name:  # also accept the Python spelling, --pi_learning_rate
            alias = "--" + field.name
            if kind.is_bool:
                group.add_argument(alias, dest=dest, action=argparse.BooleanOptionalAction,
                                   default=None, help=argparse.SUPPRESS)
            else:
                group.add_argument(alias, dest=dest, type=kind.parse,
                                   nargs="*" if kind.is_tuple else None, default=None,
                                   help=argparse.SUPPRESS)


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The Config fields given on the command line, ``{name: value}``."""
    out = {}
    for field in dataclasses.fields(Config):
        value = getattr(args, f"config__{field.name}", None)
        if value is None:
            continue
        out[field.name] = tuple(value) if isinstance(value, list) else value
    return out


def make_config(preset: str | None, overrides: dict[str, Any]) -> Config:
    """The config a ``train`` command line describes. Without ``preset``, the preset named
    after the environment is used when there is one (tuned settings), else the defaults."""
    if preset is None:
        env = overrides.get("env", _field_default(_fields()["env"]))
        if isinstance(env, str) and env in Config.preset_names():
            preset = env
    if preset is None:
        return Config(**overrides)
    return Config.preset(preset, **overrides)


def _fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(Config)}


def config_to_json(config: Config) -> dict[str, Any]:
    """Every field of ``config`` as JSON values (tuples become lists)."""
    out = {}
    for field in dataclasses.fields(Config):
        value = getattr(config, field.name)
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, (np.generic, np.ndarray, jax.Array)):
            value = np.asarray(value).item()
        elif not isinstance(value, (str, int, float, bool, type(None))):
            raise CommandError(f"Config.{field.name}={value!r} cannot be written to "
                               f"{_CONFIG_JSON}; the command line handles environments "
                               "given by their gymnax name")
        out[field.name] = value
    return out


def config_from_json(data: dict[str, Any]) -> Config:
    """Inverse of `config_to_json`; fields missing from ``data`` take their defaults."""
    fields = _fields()
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise CommandError(f"{_CONFIG_JSON} has fields this version of purea2c does not know: "
                           f"{unknown}")
    return Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


# ------------------------------------------------------------------------------------------
# Run directory
# ------------------------------------------------------------------------------------------


def _write_json(path: pathlib.Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def _read_json(path: pathlib.Path) -> Any:
    with open(path) as f:
        return json.load(f)


def default_run_dir(env: str, root: str = "runs") -> pathlib.Path:
    """``runs/<env>-<YYYYmmdd-HHMMSS>`` (with a suffix if that exists)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = pathlib.Path(root) / f"{env}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def load_run(run_dir: str | os.PathLike) -> tuple[Config, dict[str, Any]]:
    """``(config, run_info)`` of a run directory written by ``purea2c train``."""
    run_dir = pathlib.Path(run_dir)
    if not (run_dir / _CONFIG_JSON).is_file() or not (run_dir / _RUN_JSON).is_file():
        raise CommandError(f"{run_dir} is not a purea2c run directory (no {_CONFIG_JSON} and "
                           f"{_RUN_JSON}); make one with: purea2c train --out {run_dir}")
    try:
        config = config_from_json(_read_json(run_dir / _CONFIG_JSON))
    except ValueError as e:
        raise CommandError(f"{run_dir / _CONFIG_JSON}: {e}") from e
    return config, _read_json(run_dir / _RUN_JSON)


def _abstract_state(config: Config, num_seeds: int) -> Any:
    keys = jax.random.split(jax.random.key(0), num_seeds)
    return jax.eval_shape(jax.vmap(init, in_axes=(0, None)), keys, config)


def load_state(run_dir: str | os.PathLike, step: int | None = None) -> tuple[Config, dict, Any]:
    """``(config, run_info, state)``: the run's checkpoint ``step`` (default: the latest),
    a `TrainState` with a leading ``[seeds]`` axis."""
    config, info = load_run(run_dir)
    ckpt_dir = pathlib.Path(run_dir) / _CHECKPOINTS
    if checkpoint.latest_step(ckpt_dir) is None:
        raise CommandError(f"{run_dir} has no checkpoint yet")
    try:
        state = checkpoint.restore(ckpt_dir, _abstract_state(config, info["seeds"]), step)
    except FileNotFoundError as e:
        raise CommandError(str(e)) from e
    return config, info, state


def seed_params(state: Any, index: int) -> Any:
    """The parameters of one seed of a vmapped state."""
    return jax.tree.map(lambda x: x[index], state.params)


# ------------------------------------------------------------------------------------------
# Metrics: CSV (appended every chunk), parquet, learning curve, TensorBoard
# ------------------------------------------------------------------------------------------


class _MetricsLog:
    """Per-iteration metrics of every seed, in memory and in ``metrics.csv``.

    The CSV has one row per (iteration, seed); floats are written with ``repr`` so they read
    back bitwise. On resume, rows past the checkpoint are dropped.
    """

    def __init__(self, run_dir: pathlib.Path, fields: tuple[str, ...],
                 dtypes: dict[str, np.dtype], num_seeds: int, keep_iterations: int):
        self.path = run_dir / _METRICS_CSV
        self.fields = fields
        self.dtypes = dtypes
        self.num_seeds = num_seeds
        self.blocks: list[dict[str, np.ndarray]] = []  # each {name: [seeds, iters]}
        columns = ["iteration", "seed", *fields]
        kept: list[list[str]] = []
        if self.path.exists() and keep_iterations > 0:
            with open(self.path, newline="") as f:
                reader = csv.reader(f)
                header = next(reader, None)
                if header != columns:
                    raise CommandError(f"{self.path} has columns {header}, expected {columns}")
                kept = [row for row in reader if int(row[0]) <= keep_iterations]
            if len(kept) != keep_iterations * num_seeds:
                raise CommandError(f"{self.path} holds {len(kept)} rows up to iteration "
                                   f"{keep_iterations}, expected {keep_iterations * num_seeds}")
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            writer.writerows(kept)
        os.replace(tmp, self.path)
        if kept:
            block = {}
            for j, name in enumerate(fields):
                values = np.array([self._parse(row[2 + j], name) for row in kept],
                                  dtype=dtypes[name])
                block[name] = values.reshape(keep_iterations, num_seeds).T
            self.blocks.append(block)
        self.iterations = keep_iterations
        self._file = open(self.path, "a", newline="")
        self._writer = csv.writer(self._file)

    def _parse(self, text: str, name: str) -> Any:
        kind = np.dtype(self.dtypes[name]).kind
        if kind == "b":
            return text in ("1", "True", "true")
        return int(text) if kind in "iu" else float(text)

    @staticmethod
    def _format(value: Any) -> str:
        if isinstance(value, (np.floating, float)):
            return repr(float(value))
        if isinstance(value, (np.bool_, bool)):
            return str(int(value))
        return str(int(value))

    def append(self, metrics: dict[str, np.ndarray]) -> None:
        """``metrics``: ``{name: [seeds, iters]}`` of the iterations after the current ones."""
        count = next(iter(metrics.values())).shape[1]
        rows = []
        for i in range(count):
            for s in range(self.num_seeds):
                rows.append([str(self.iterations + i + 1), str(s)]
                            + [self._format(metrics[name][s, i]) for name in self.fields])
        self._writer.writerows(rows)
        self._file.flush()
        self.blocks.append(metrics)
        self.iterations += count

    def arrays(self) -> dict[str, np.ndarray]:
        """``{name: [seeds, iterations]}`` of everything logged."""
        if not self.blocks:
            return {name: np.zeros((self.num_seeds, 0), self.dtypes[name]) for name in self.fields}
        return {name: np.concatenate([b[name] for b in self.blocks], axis=1)
                for name in self.fields}

    def tail(self, width: int) -> dict[str, np.ndarray]:
        """``{name: [seeds, <= width]}`` of the last ``width`` iterations."""
        blocks, count = [], 0
        for block in reversed(self.blocks):
            if count >= width:
                break
            blocks.append(block)
            count += next(iter(block.values())).shape[1]
        return {name: np.concatenate([b[name] for b in reversed(blocks)], axis=1)[:, -width:]
                for name in self.fields}

    def columns(self) -> dict[str, np.ndarray]:
        """The long table: ``iteration``, ``seed`` and one column per metric."""
        arrays = self.arrays()
        iters = np.repeat(np.arange(1, self.iterations + 1, dtype=np.int64), self.num_seeds)
        seeds = np.tile(np.arange(self.num_seeds, dtype=np.int64), self.iterations)
        out = {"iteration": iters, "seed": seeds}
        out.update({name: arrays[name].T.reshape(-1) for name in self.fields})
        return out

    def write_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.path.with_name(_METRICS_PARQUET)
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(pa.table(self.columns()), tmp)
        os.replace(tmp, path)

    def close(self) -> None:
        self._file.close()


def _windowed_return(returns: np.ndarray, episodes: np.ndarray | None,
                     width: int) -> np.ndarray:
    """Mean return of the episodes that finished in the last ``width`` iterations, per
    iteration ``[seeds, iters]`` (NaN where none finished). Iterations are weighted by their
    episode count when it is known."""
    finite = np.isfinite(returns)
    weight = np.where(finite, episodes if episodes is not None else 1, 0).astype(np.float64)
    total = np.where(finite, returns, 0.0) * weight
    csum_t = np.cumsum(total, axis=-1)
    csum_w = np.cumsum(weight, axis=-1)
    shifted_t = np.zeros_like(csum_t)
    shifted_w = np.zeros_like(csum_w)
    shifted_t[..., width:] = csum_t[..., :-width]
    shifted_w[..., width:] = csum_w[..., :-width]
    w = csum_w - shifted_w
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(w > 0, (csum_t - shifted_t) / np.maximum(w, 1e-12), np.nan)


def _nanmean(x: np.ndarray, axis: int | None = None) -> Any:
    finite = np.isfinite(x)
    count = finite.sum(axis=axis)
    total = np.where(finite, x, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def plot_learning_curve(arrays: dict[str, np.ndarray], path: str | os.PathLike, title: str,
                        width: int) -> None:
    """Writes a PNG of the training return: the mean over seeds of a ``width``-iteration
    running mean, and a 95% confidence band of that mean (1.96 standard errors) when there
    are several seeds."""
    from matplotlib.figure import Figure

    returns = np.asarray(arrays["episode_return"], np.float64)
    episodes = arrays.get("episodes")
    steps = np.asarray(arrays["env_steps"][0], np.float64)
    smooth = _windowed_return(returns, episodes, width)
    num_seeds = smooth.shape[0]
    mean = _nanmean(smooth, axis=0)
    fig = Figure(figsize=(7, 4.2), dpi=110)
    ax = fig.add_subplot()
    ax.plot(steps, mean, lw=1.8,
            label=f"mean over {num_seeds} seeds" if num_seeds > 1 else "seed 0")
    if num_seeds > 1:
        count = np.isfinite(smooth).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            var = _nanmean((smooth - mean) ** 2, axis=0) * count / np.maximum(count - 1, 1)
            half = 1.96 * np.sqrt(var / np.maximum(count, 1))
        ax.fill_between(steps, mean - half, mean + half, alpha=0.3, lw=0,
                        label="95% CI of the mean")
    ax.set_xlabel("env steps (per seed)")
    ax.set_ylabel(f"training episode return\n(running mean, {width} iterations)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    tmp = pathlib.Path(path).with_name(pathlib.Path(path).name + ".tmp.png")
    fig.savefig(tmp)
    os.replace(tmp, path)


class _TensorBoard:
    def __init__(self, logdir: pathlib.Path, purge_step: int | None):
        try:
            from tensorboardX import SummaryWriter
        except ImportError as e:
            raise CommandError("--tensorboard needs tensorboardX: "
                               "pip install 'purea2c[tensorboard]'") from e
        self.writer = SummaryWriter(logdir=str(logdir), purge_step=purge_step)

    def add(self, metrics: dict[str, np.ndarray]) -> None:
        steps = metrics["env_steps"][0]
        for i in range(steps.shape[0]):
            for name, values in metrics.items():
                if name == "env_steps":
                    continue
                value = float(_nanmean(np.asarray(values[:, i], np.float64)))
                if math.isfinite(value):
                    self.writer.add_scalar(f"train/{name}", value, int(steps[i]))
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


# ------------------------------------------------------------------------------------------
# Progress
# ------------------------------------------------------------------------------------------


class _Progress:
    """A rich progress bar on a terminal; plain lines every 10% otherwise."""

    def __init__(self, total: int, done: int, num_seeds: int, enabled: bool):
        from rich.console import Console

        self.console = Console()
        self.total, self.num_seeds = total, num_seeds
        self.start_done, self.start_time = done, time.perf_counter()
        self.rich = None
        self.plain = enabled and not self.console.is_terminal
        self.next_report = 0.0
        if enabled and self.console.is_terminal:
            from rich import progress as rp

            self.rich = rp.Progress(
                rp.TextColumn("[bold]training"), rp.BarColumn(),
                rp.TextColumn("{task.completed:>,.0f}/{task.total:,.0f} env steps"),
                rp.TextColumn("return [cyan]{task.fields[ret]}"),
                rp.TextColumn("{task.fields[rate]}"),
                rp.TimeElapsedColumn(), rp.TextColumn("eta"), rp.TimeRemainingColumn(),
                console=self.console)
            self.task = self.rich.add_task("train", total=total, completed=done, ret="  -  ",
                                           rate="")
            self.rich.start()
        elif self.plain:
            self.next_report = (math.floor(10 * done / total) + 1) / 10

    def update(self, done: int, recent_return: float) -> None:
        elapsed = time.perf_counter() - self.start_time
        rate = (done - self.start_done) * self.num_seeds / max(elapsed, 1e-9)
        ret = f"{recent_return:7.1f}" if math.isfinite(recent_return) else "   -   "
        if self.rich is not None:
            self.rich.update(self.task, completed=done, ret=ret, rate=f"{rate:,.0f} steps/s")
        elif self.plain and (done / self.total >= self.next_report or done == self.total):
            print(f"  env steps {done:>11,}/{self.total:,} ({100 * done / self.total:3.0f}%)  "
                  f"recent return {ret}  {rate:>11,.0f} steps/s", flush=True)
            while self.next_report <= done / self.total:
                self.next_report += 0.1

    def close(self) -> None:
        if self.rich is not None:
            self.rich.stop()
            self.rich = None


# ------------------------------------------------------------------------------------------
# Signals: Ctrl-C / SIGTERM stop at the next chunk boundary
# ------------------------------------------------------------------------------------------


class _StopRequest:
    """Installs SIGINT and SIGTERM handlers (main thread only) that ask the training loop to
    save and exit at the next chunk boundary; a second Ctrl-C aborts at once."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signum is None:
            self.signum = signum
            print(f"\n{signal.Signals(signum).name}: saving a checkpoint after this chunk "
                  "(Ctrl-C again to abort without saving)", file=sys.stderr, flush=True)

    def __enter__(self) -> "_StopRequest":
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


# ------------------------------------------------------------------------------------------
# train
# ------------------------------------------------------------------------------------------


def auto_chunk_iterations(num_iterations: int, target_chunks: int = 100) -> int:
    """The largest divisor of ``num_iterations`` that gives at least ``target_chunks`` chunks
    (every chunk then has the same length, so one compiled program serves them all)."""
    target = max(1, num_iterations // target_chunks)
    return max(d for d in range(1, target + 1) if num_iterations % d == 0)


# The chunk program: ``num_iterations`` (static) iterations of every seed. Compiled once per
# chunk length with ``.lower(...).compile()`` and called for every chunk.
_vmapped_run = jax.jit(jax.vmap(run, in_axes=(0, None, None)), static_argnums=2)
_vmapped_init = jax.jit(jax.vmap(init, in_axes=(0, None)))


def _strip_weak_types(tree: Any) -> Any:
    """Same values, no weak types: a restored state and a fresh one then have equal avals."""
    return jax.tree.map(lambda x: x if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
                        else jnp.array(x, dtype=x.dtype), tree)


def _to_numpy(metrics: Any) -> dict[str, np.ndarray]:
    host = jax.device_get(metrics)
    return {name: np.asarray(value) for name, value in host._asdict().items()}


def _recent_return(arrays_tail: dict[str, np.ndarray]) -> float:
    r = _windowed_return(np.asarray(arrays_tail["episode_return"], np.float64),
                         arrays_tail.get("episodes"), arrays_tail["episode_return"].shape[1])
    return float(_nanmean(r[:, -1])) if r.size else float("nan")


def _evaluate_seeds(config: Config, params: Any, num_episodes: int, seed: int,
                    greedy: bool = True) -> np.ndarray:
    """Returns ``[seeds, num_episodes]`` of each seed's policy on fresh episodes."""
    num_seeds = jax.tree.leaves(params)[0].shape[0]
    keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), 1), num_seeds)
    return np.asarray(_evaluate_program(num_episodes, greedy)(keys, config, params))


@functools.lru_cache(maxsize=None)
def _evaluate_program(num_episodes: int, greedy: bool) -> Any:
    return jax.jit(jax.vmap(
        lambda key, config, params: evaluate(key, config, params, num_episodes=num_episodes,
                                             greedy=greedy), in_axes=(0, None, 0)))


def _report_evaluation(returns: np.ndarray, num_episodes: int, greedy: bool) -> dict[str, Any]:
    returns = np.asarray(returns, np.float64) + 0.0  # no "-0" in the report
    per_seed = returns.mean(axis=1)
    mode = "greedy" if greedy else "sampled"
    if len(per_seed) == 1:
        print(f"{mode} evaluation over {num_episodes} episodes: mean return {per_seed[0]:.1f} "
              f"(min {returns.min():.0f}, max {returns.max():.0f})")
    else:
        if len(per_seed) <= 16:
            for s, r in enumerate(per_seed):
                print(f"  seed {s:>3}: mean return {r:8.1f}")
        print(f"{mode} evaluation over {num_episodes} episodes per seed: mean return "
              f"{per_seed.mean():.1f} over {len(per_seed)} seeds (per-seed min "
              f"{per_seed.min():.1f}, median {np.median(per_seed):.1f}, max {per_seed.max():.1f})")
    return {"mode": mode, "num_episodes": num_episodes,
            "mean_return": float(per_seed.mean()),
            "mean_return_per_seed": [float(r) for r in per_seed]}


def _open_run(args: argparse.Namespace, parser: argparse.ArgumentParser
              ) -> tuple[pathlib.Path, Config, dict[str, Any]]:
    """``(run_dir, config, run_info)``: a new run directory from the flags, or the one that
    ``--resume`` names with its saved settings."""
    overrides = config_overrides(args)
    if args.resume is not None:
        given = [f"--{k.replace('_', '-')}" for k in overrides]
        given += [flag for flag, value in (("--seeds", args.seeds), ("--seed", args.seed),
                                           ("--preset", args.preset), ("--out", args.out),
                                           ("--chunk-iterations", args.chunk_iterations))
                  if value is not None]
        if given:
            parser.error(f"--resume continues a run with its saved settings; drop {given}")
        run_dir = pathlib.Path(args.resume)
        config, info = load_run(run_dir)
        return run_dir, config, info

    try:
        config = make_config(args.preset, overrides)
    except ValueError as e:
        parser.error(str(e))
    num_seeds = 1 if args.seeds is None else args.seeds
    seed = 0 if args.seed is None else args.seed
    if num_seeds < 1:
        parser.error(f"--seeds must be >= 1, got {num_seeds}")
    chunk = args.chunk_iterations or auto_chunk_iterations(config.num_iterations)
    if chunk < 1:
        parser.error(f"--chunk-iterations must be >= 1, got {chunk}")
    run_dir = pathlib.Path(args.out) if args.out else default_run_dir(_env_name(config))
    if (run_dir / _RUN_JSON).exists():
        parser.error(f"{run_dir} already holds a run; continue it with "
                     f"`purea2c train --resume {run_dir}` or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_json(run_dir / _CONFIG_JSON, config_to_json(config))
    argv = sys.argv[1:] if args.argv is None else args.argv
    info = {
        "seeds": num_seeds,
        "seed": seed,
        "chunk_iterations": min(chunk, config.num_iterations),
        "num_iterations": config.num_iterations,
        "env_steps_per_seed": config.num_iterations * config.steps_per_iteration,
        "preset": args.preset,
        "keys": f"jax.random.split(jax.random.key({seed}), {num_seeds})",
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": shlex.join(["purea2c", *argv]),
        "versions": _versions(),
        "status": "created",
    }
    _write_json(run_dir / _RUN_JSON, info)
    return run_dir, config, info


def _env_name(config: Config) -> str:
    return config.env if isinstance(config.env, str) else type(config.env).__name__


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    run_dir, config, info = _open_run(args, parser)
    num_seeds, seed, chunk = info["seeds"], info["seed"], info["chunk_iterations"]
    num_iterations = config.num_iterations
    ckpt_dir = run_dir / _CHECKPOINTS
    env_name = _env_name(config)
    total_steps = num_iterations * config.steps_per_iteration

    with _StopRequest() as stop:
        start = time.perf_counter()
        resume_step = checkpoint.latest_step(ckpt_dir) if args.resume is not None else None
        if resume_step is not None:
            like = _abstract_state(config, num_seeds)
            state = checkpoint.restore(ckpt_dir, like, resume_step)
            print(f"purea2c: resuming {run_dir} at iteration {resume_step}/{num_iterations}"
                  + (" (already finished)" if resume_step >= num_iterations else ""))
        else:
            keys = jax.random.split(jax.random.key(seed), num_seeds)
            state = _vmapped_init(keys, config)
            resume_step = 0
            verb = "restarting" if args.resume is not None else "training"
            print(f"purea2c: {verb} {env_name}, {num_seeds} seed{'s' * (num_seeds > 1)} x "
                  f"{total_steps:,} env steps ({config.num_envs} envs each) on "
                  f"{jax.default_backend()} -> {run_dir}")
        state = _strip_weak_types(state)
        programs: dict[int, Any] = {}

        def program(length: int) -> Any:
            if length not in programs:
                programs[length] = _vmapped_run.lower(state, config, length).compile(
                    compiler_options())
            return programs[length]

        print("compiling the training program ... ", end="", flush=True)
        program(chunk)
        metric_info = programs[chunk].out_info[1]
        fields = tuple(metric_info._fields)
        dtypes = {name: np.dtype(getattr(metric_info, name).dtype) for name in fields}
        print(f"{time.perf_counter() - start:.1f} s ({num_iterations} iterations "
              f"in chunks of {chunk}" + ("" if num_iterations % chunk == 0 else
                                         f" + one of {num_iterations % chunk}") + ")", flush=True)

        log = _MetricsLog(run_dir, fields, dtypes, num_seeds, resume_step)
        # On resume, TensorBoard drops the events logged after the checkpoint (steps are
        # env steps per seed).
        tensorboard = _TensorBoard(run_dir / _TENSORBOARD,
                                   resume_step * config.steps_per_iteration + 1
                                   if args.resume is not None else None) \
            if args.tensorboard else None
        width = max(1, math.ceil(num_iterations / 50), min(chunk, num_iterations))
        progress = _Progress(total_steps, resume_step * config.steps_per_iteration,
                             num_seeds, enabled=not args.no_progress)
        info["status"] = "running"
        _write_json(run_dir / _RUN_JSON, info)

        iteration = resume_step
        saved = resume_step if resume_step > 0 else None
        last_save = time.perf_counter()
        run_start = time.perf_counter()

        def save() -> None:
            nonlocal saved, last_save
            if saved == iteration:
                return
            checkpoint.save(ckpt_dir, state, iteration, keep=args.keep_checkpoints,
                            metadata={"iteration": iteration, "seeds": num_seeds,
                                      "env_steps": iteration * config.steps_per_iteration})
            log.write_parquet()
            saved, last_save = iteration, time.perf_counter()

        try:
            while iteration < num_iterations and stop.signum is None:
                length = min(chunk, num_iterations - iteration)
                state, metrics = program(length)(state, config)
                host = _to_numpy(metrics)
                iteration += length
                log.append(host)
                if tensorboard is not None:
                    tensorboard.add(host)
                progress.update(iteration * config.steps_per_iteration,
                                _recent_return(log.tail(width)))
                if (args.checkpoint_interval <= 0
                        or time.perf_counter() - last_save >= args.checkpoint_interval
                        or iteration == num_iterations):
                    save()
            jax.block_until_ready(state)
            run_s = time.perf_counter() - run_start
            progress.close()
            if iteration > 0:
                save()
                plot_learning_curve(log.arrays(), run_dir / _CURVE_PNG,
                                    f"A2C on {env_name}", width)
        finally:
            progress.close()
            log.close()
            if tensorboard is not None:
                tensorboard.close()

        if stop.signum is not None and iteration < num_iterations:
            info["status"] = f"interrupted at iteration {iteration}"
            _write_json(run_dir / _RUN_JSON, info)
            where = f"checkpoint saved in {ckpt_dir}" if iteration > 0 else \
                "stopped before the first chunk, nothing to save"
            print(f"stopped at iteration {iteration}/{num_iterations}; {where}. Continue with: "
                  f"purea2c train --resume {run_dir}", flush=True)
            return 128 + stop.signum

    info["status"] = "finished"
    _write_json(run_dir / _RUN_JSON, info)
    steps_done = (iteration - resume_step) * config.steps_per_iteration * num_seeds
    print(f"trained {steps_done:,} env steps in {run_s:.1f} s "
          f"({steps_done / max(run_s, 1e-9):,.0f} env steps/s incl. checkpoints)")
    if args.eval_episodes > 0:
        returns = _evaluate_seeds(config, state.params, args.eval_episodes, seed)
        summary = _report_evaluation(returns, args.eval_episodes, greedy=True)
        _write_json(run_dir / _EVALUATION_JSON, {**summary, "step": iteration})
    print(f"run directory: {run_dir}")
    return 0


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("purea2c", "jax", "jaxlib", "flax", "optax", "gymnax", "orbax-checkpoint"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    out["backend"] = jax.default_backend()
    return out


# ------------------------------------------------------------------------------------------
# evaluate
# ------------------------------------------------------------------------------------------


def _evaluate_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    config, info, state = load_state(args.run_dir, args.step)
    step = int(np.asarray(state.iteration).reshape(-1)[0])
    print(f"purea2c: evaluating {args.run_dir} (iteration {step}/{config.num_iterations}, "
          f"{info['seeds']} seed{'s' * (info['seeds'] > 1)})")
    returns = _evaluate_seeds(config, state.params, args.episodes, args.seed,
                              greedy=not args.sample)
    summary = _report_evaluation(returns, args.episodes, greedy=not args.sample)
    _write_json(pathlib.Path(args.run_dir) / _EVALUATION_JSON, {**summary, "step": step})
    return 0


# ------------------------------------------------------------------------------------------
# render
# ------------------------------------------------------------------------------------------


class Episode(NamedTuple):
    states: list  # gymnax env states, the reset state first
    rewards: np.ndarray  # [len(states) - 1]

    @property
    def total_return(self) -> float:
        return float(self.rewards.sum())


def play_episode(config: Config, params: Any, key: jax.Array, greedy: bool = True,
                 max_steps: int | None = None) -> Episode:
    """One episode of ``params.pi`` (a single seed's parameters) in the config's gymnax
    environment, run as one compiled scan; returns its env states for drawing."""
    from purea2c import envs
    from purea2c.evaluate import make_policy

    env, env_params = envs.make_env(config.env)
    if max_steps is None:
        max_steps = int(env_params.max_steps_in_episode)
    policy = make_policy(config, params, greedy=greedy)

    @jax.jit
    def rollout(key):
        key, key_reset = jax.random.split(key)
        obs, state = env.reset(key_reset, env_params)

        def body(carry, _):
            obs, state, key, done = carry
            key, key_act, key_step = jax.random.split(key, 3)
            action = policy(obs, None if greedy else key_act)
            obs2, state2, reward, terminated, _ = env.step_env(key_step, state, action,
                                                               env_params)
            ended = jnp.logical_or(terminated, env.is_truncated(state2, env_params))
            return (obs2, state2, key, jnp.logical_or(done, ended)), (state2, reward, done)

        _, (states, rewards, done_before) = jax.lax.scan(
            body, (obs, state, key, jnp.zeros((), bool)), None, length=max_steps)
        return state, states, rewards, done_before

    first, states, rewards, done_before = jax.device_get(rollout(key))
    length = int(np.sum(~np.asarray(done_before)))  # steps taken until (and with) the end
    seq = [first] + [jax.tree.map(lambda x, t=t: x[t], states) for t in range(length)]
    return Episode(seq, np.asarray(rewards[:length], np.float64))


def _frames_gym(env_name: str, env_params: Any, states: list) -> tuple[list[np.ndarray], float]:
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    import gymnasium as gym
    from gymnax.visualize import vis_gym

    try:
        gym_env = gym.make(env_name, render_mode="rgb_array")
        gym_env.reset(seed=0)
    except gym.error.DependencyNotInstalled as e:
        raise CommandError(f"drawing {env_name} needs pygame: pip install 'purea2c[render]' "
                           f"({e})") from e
    try:
        unwrapped = gym_env.unwrapped
        vis_gym.set_gym_params(unwrapped, env_name, env_params)
        frames = []
        for state in states:
            unwrapped.state = vis_gym.get_gym_state(state, env_name)
            if env_name == "Pendulum-v1":
                unwrapped.last_u = np.asarray(state.last_u, dtype=np.float64)
            frames.append(np.asarray(gym_env.render()))
        fps = float(gym_env.metadata.get("render_fps", 30))
    finally:
        gym_env.close()
    return frames, fps


def _frames_matplotlib(env: Any, env_params: Any, states: list,
                       rewards: np.ndarray) -> tuple[list[np.ndarray], float]:
    import matplotlib.pyplot as plt
    from gymnax.visualize import Visualizer

    returns = np.concatenate([[0.0], np.cumsum(rewards)])
    vis = Visualizer(env, env_params, states, returns)
    try:
        vis.init()
        frames = []
        for t in range(len(states)):
            vis.update(t)
            vis.fig.canvas.draw()
            frames.append(np.asarray(vis.fig.canvas.buffer_rgba())[..., :3].copy())
    finally:
        plt.close(vis.fig)
    return frames, 1000.0 / vis.interval


def draw_frames(config: Config, episode: Episode) -> tuple[list[np.ndarray], float]:
    """RGB frames ``[H, W, 3]`` of an episode and their frame rate, drawn as gymnax's
    visualizer draws the environment. Raises `CommandError` for environments it cannot draw."""
    from purea2c import envs

    env, env_params = envs.make_env(config.env)
    name = getattr(env, "name", type(env).__name__)
    if name in _GYM_DRAWN:
        return _frames_gym(name, env_params, episode.states)
    if name in _MPL_DRAWN:
        return _frames_matplotlib(env, env_params, episode.states, episode.rewards)
    raise CommandError(f"gymnax cannot draw {name}: its visualizer draws only "
                       f"{', '.join(DRAWABLE_ENVS)}")


def write_gif(frames: list[np.ndarray], path: str | os.PathLike, fps: float,
              scale: float = 1.0) -> pathlib.Path:
    """Writes RGB frames as a looping GIF (one shared palette, so it is quick and small)."""
    from PIL import Image

    if not frames:
        raise ValueError("no frames to write")
    images = [Image.fromarray(np.asarray(f, np.uint8)) for f in frames]
    if scale != 1.0:
        size = (max(1, round(images[0].width * scale)), max(1, round(images[0].height * scale)))
        images = [im.resize(size, Image.Resampling.BILINEAR) for im in images]
    picks = [images[0], images[len(images) // 2], images[-1]]
    sample = Image.new("RGB", (picks[0].width, picks[0].height * len(picks)))
    for i, im in enumerate(picks):
        sample.paste(im, (0, i * im.height))
    palette = sample.quantize(colors=128, dither=Image.Dither.NONE)
    frames_p = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    duration = max(20, int(round(1000 / fps / 10)) * 10)  # GIF delays are in 10 ms units
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp.gif")
    frames_p[0].save(tmp, save_all=True, append_images=frames_p[1:], duration=duration,
                     loop=0)
    os.replace(tmp, path)
    return path


def render_gif(config: Config, params: Any, path: str | os.PathLike,
               key: jax.Array | None = None, greedy: bool = True,
               max_steps: int | None = None, scale: float = 1.0) -> Episode:
    """Plays one episode of ``params`` (one seed's `Params`) and writes it as a GIF to
    ``path``; returns the episode. Works for the environments in `DRAWABLE_ENVS`."""
    from purea2c import envs

    env, _ = envs.make_env(config.env)
    name = getattr(env, "name", type(env).__name__)
    if name not in DRAWABLE_ENVS:
        raise CommandError(f"gymnax cannot draw {name}: its visualizer draws only "
                           f"{', '.join(DRAWABLE_ENVS)}")
    key = jax.random.key(0) if key is None else key
    episode = play_episode(config, params, key, greedy=greedy, max_steps=max_steps)
    frames, fps = draw_frames(config, episode)
    write_gif(frames, path, fps, scale=scale)
    return episode


def _render_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    config, info, state = load_state(args.run_dir, args.step)
    if not 0 <= args.seed_index < info["seeds"]:
        parser.error(f"--seed-index must be in [0, {info['seeds']}), got {args.seed_index}")
    out = pathlib.Path(args.out) if args.out else pathlib.Path(args.run_dir) / _RENDER_GIF
    start = time.perf_counter()
    episode = render_gif(config, seed_params(state, args.seed_index), out,
                         key=jax.random.key(args.seed), greedy=not args.sample,
                         max_steps=args.max_steps, scale=args.scale)
    print(f"wrote {out}: seed {args.seed_index}, {len(episode.states) - 1} steps, return "
          f"{episode.total_return:.1f} ({time.perf_counter() - start:.1f} s)")
    return 0


# ------------------------------------------------------------------------------------------
# parser and main
# ------------------------------------------------------------------------------------------

_EXAMPLES = """\
examples:
  purea2c                                   train CartPole-v1 on the defaults (= purea2c train)
  purea2c train --seeds 16 --out runs/cp    16 seeds vmapped in one program
  purea2c train --preset coax_a2c           the coax A2C example's settings
  purea2c train --env Acrobot-v1 --pi-learning-rate 3e-4 --hidden-sizes 128 128
  purea2c train --resume runs/cp            continue an interrupted run (Ctrl-C / SIGTERM save)
  purea2c evaluate runs/cp --episodes 100   mean return of each seed's policy
  purea2c render runs/cp                    runs/cp/render.gif of the trained policy
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows the defaults of the run flags and keeps the examples' line breaks (descriptions
    are wrapped by `_wrap`)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.dest.startswith("config__") or action.default is None
                or action.default is False
                or action.default is argparse.SUPPRESS or "[default" in text):
            return text
        return text + " [default: %(default)s]"


def _wrap(text: str) -> str:
    """Paragraphs filled to 88 columns (argparse keeps them as they are)."""
    return "\n\n".join(textwrap.fill(p, width=88, break_on_hyphens=False)
                       for p in text.split("\n\n"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="purea2c", formatter_class=_Formatter, epilog=_EXAMPLES,
        description=_wrap("A2C in pure JAX: a whole training run (any number of seeds) is "
                          "one XLA program. Without a command, `purea2c [flags]` is "
                          "`purea2c train [flags]`; `purea2c COMMAND --help` describes each "
                          "command."))
    from purea2c import __version__

    parser.add_argument("--version", action="version", version=f"purea2c {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    train = sub.add_parser(
        "train", formatter_class=_Formatter, epilog=_EXAMPLES,
        help="train (the default command); writes a run directory",
        description=_wrap(
            "Train A2C on a gymnax environment and write a run directory: config.json, "
            "run.json, metrics.csv and metrics.parquet (one row per iteration and seed), "
            "learning_curve.png, checkpoints/ and evaluation.json."
            "\n\nThe compiled program runs in chunks of iterations; a progress bar shows env "
            "steps and the recent mean training return. Ctrl-C or SIGTERM saves a checkpoint "
            "at the end of the current chunk and exits (status 128 + signal number); "
            "`purea2c train --resume RUN_DIR` then finishes bitwise as an uninterrupted run "
            "would."))
    run_group = train.add_argument_group("run")
    run_group.add_argument("--seeds", type=int, default=None, metavar="N",
                           help="independent seeds trained together, vmapped in one program "
                                "[default: 1]")
    run_group.add_argument("--seed", type=int, default=None,
                           help="base seed; seed i trains from "
                                "jax.random.split(jax.random.key(SEED), N)[i] [default: 0]")
    run_group.add_argument("--preset", default=None, choices=Config.preset_names(),
                           help="start from a named Config preset (Config.preset); default: "
                                "the preset named after --env if there is one, else the "
                                "Config defaults")
    run_group.add_argument("--out", default=None, metavar="DIR",
                           help="run directory [default: runs/<env>-<timestamp>]")
    run_group.add_argument("--resume", default=None, metavar="RUN_DIR",
                           help="continue the run in RUN_DIR from its latest checkpoint, with "
                                "its saved config, seeds and chunking")
    run_group.add_argument("--chunk-iterations", type=int, default=None, metavar="K",
                           help="iterations per compiled chunk (progress and checkpoints "
                                "happen between chunks) [default: the largest divisor of the "
                                "iteration count that gives >= 100 chunks]")
    run_group.add_argument("--checkpoint-interval", type=float, default=60.0, metavar="SECONDS",
                           help="save a checkpoint after the first chunk that ends this long "
                                "after the previous save (0: after every chunk); the end of "
                                "training and Ctrl-C/SIGTERM always save")
    run_group.add_argument("--keep-checkpoints", type=int, default=2, metavar="K",
                           help="keep the newest K checkpoints")
    run_group.add_argument("--eval-episodes", type=int, default=100, metavar="N",
                           help="greedy evaluation episodes per seed after training (0: skip)")
    run_group.add_argument("--tensorboard", action="store_true",
                           help="also write TensorBoard scalars (mean over seeds) to "
                                "RUN_DIR/tensorboard (needs purea2c[tensorboard])")
    run_group.add_argument("--no-progress", action="store_true",
                           help="no progress bar or progress lines")
    add_config_flags(train)

    ev = sub.add_parser(
        "evaluate", formatter_class=_Formatter,
        help="mean return of a trained run over N episodes",
        description=_wrap("Evaluate every seed of a run on fresh episodes (greedy actions "
                          "unless --sample), print the mean returns and write "
                          "RUN_DIR/evaluation.json."))
    ev.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of `purea2c train`")
    ev.add_argument("--episodes", type=int, default=100, metavar="N",
                    help="episodes per seed")
    ev.add_argument("--sample", action="store_true",
                    help="sample actions from pi instead of taking its mode")
    ev.add_argument("--seed", type=int, default=0, help="seed of the evaluation episodes")
    ev.add_argument("--step", type=int, default=None,
                    help="checkpoint (iteration) to evaluate [default: the latest]")

    rd = sub.add_parser(
        "render", formatter_class=_Formatter,
        help="a GIF of the trained policy (environments gymnax can draw)",
        description=_wrap("Play one episode of a trained policy and write it as a GIF. Works "
                          "for the environments gymnax's visualizer draws: "
                          + ", ".join(DRAWABLE_ENVS) + " (classic control needs pygame: "
                          "pip install 'purea2c[render]')."))
    rd.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of `purea2c train`")
    rd.add_argument("--out", default=None, metavar="FILE.gif",
                    help="output file [default: RUN_DIR/render.gif]")
    rd.add_argument("--seed-index", type=int, default=0, metavar="I",
                    help="which of the run's seeds to play")
    rd.add_argument("--seed", type=int, default=0, help="seed of the episode")
    rd.add_argument("--sample", action="store_true",
                    help="sample actions from pi instead of taking its mode")
    rd.add_argument("--max-steps", type=int, default=None, metavar="T",
                    help="stop after T steps [default: the env's episode limit]")
    rd.add_argument("--scale", type=float, default=1.0,
                    help="resize the frames by this factor")
    rd.add_argument("--step", type=int, default=None,
                    help="checkpoint (iteration) to play [default: the latest]")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``purea2c`` and ``python -m purea2c``; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0].startswith("-")
                         and args_list[0] not in ("-h", "--help", "--version")):
        args_list = ["train", *args_list]
    parser = build_parser()
    args = parser.parse_args(args_list)
    args.argv = argv if argv is None else list(argv)
    subparser = parser._subparsers._group_actions[0].choices[args.command]  # type: ignore
    handler = {"train": _train, "evaluate": _evaluate_command,
               "render": _render_command}[args.command]
    try:
        return handler(args, subparser)
    except CommandError as e:
        print(f"purea2c {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
