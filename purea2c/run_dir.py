"""The run directory of ``purea2c train``: its file names, ``config.json`` and ``run.json``,
and loading a run's config and checkpointed state.

    runs/<env>-<timestamp>/
      config.json           every `Config` field (`config_from_json` rebuilds it)
      run.json              seeds, base seed, data-parallel devices, chunk length, command,
                            where it ran (versions, git commit, host, devices, XLA flags),
                            each session's start, end, duration and exit status, skipped
                            updates, status (and the divergence, if one stopped it)
      metrics.csv           one row per iteration and seed (long format), updated every chunk
      metrics.parquet       the same table, columnar (``pandas.read_parquet``)
      learning_curve.png    mean training return over seeds with a 95% band
      checkpoints/<iter>/   the whole vmapped `TrainState` (orbax, atomic), see checkpoint.py
      evaluation.json       greedy returns per seed (train's final evaluation, ``evaluate``)
      tensorboard/          scalars, with ``--tensorboard``
      render.gif            from ``purea2c render``

Every JSON file is strict JSON: non-finite floats are written as ``null``.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import json
import math
import os
import pathlib
import platform
import socket
import subprocess
import time
from typing import Any, NamedTuple, Sequence

import jax
import numpy as np

from purea2c import checkpoint, flags, sharding
from purea2c.config import Config
from purea2c.errors import RunError
from purea2c.training import init

CONFIG_JSON = "config.json"
RUN_JSON = "run.json"
METRICS_CSV = "metrics.csv"
METRICS_PARQUET = "metrics.parquet"
CURVE_PNG = "learning_curve.png"
CHECKPOINTS = "checkpoints"
EVALUATION_JSON = "evaluation.json"
TENSORBOARD = "tensorboard"
RENDER_GIF = "render.gif"

# Recorded in run.json; benchmarks record these and more.
VERSIONED = ("purea2c", "jax", "jaxlib", "flax", "optax", "chex", "numpy", "gymnax",
             "orbax-checkpoint", "brax", "jumanji", "craftax", "navix", "xminigrid")


class NoCheckpoint(RunError):
    """The run has no checkpoint yet."""


# ------------------------------------------------------------------------------------------
# JSON
# ------------------------------------------------------------------------------------------


def jsonable(obj: Any) -> Any:
    """``obj`` with non-finite floats as None and numpy/JAX scalars as Python numbers, so that
    ``json.dumps(..., allow_nan=False)`` accepts it."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.generic, np.ndarray, jax.Array)) and np.ndim(obj) == 0:
        obj = np.asarray(obj).item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: pathlib.Path, data: Any) -> None:
    """Writes ``data`` as strict JSON (NaN and inf as null), atomically (temporary name, then
    rename)."""
    text = json.dumps(jsonable(data), indent=2, allow_nan=False)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


def read_json(path: pathlib.Path) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise RunError(f"cannot read {path}: {' '.join(str(e).split())}") from e


def dist_versions(names: Sequence[str] = VERSIONED) -> dict[str, str | None]:
    """Installed versions of the distributions ``names`` (None when not installed)."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# ------------------------------------------------------------------------------------------
# config.json
# ------------------------------------------------------------------------------------------


def config_to_json(config: Config, fallback: Any = None) -> dict[str, Any]:
    """Every field of ``config`` as JSON values (tuples become lists, scalar arrays numbers).

    A value JSON cannot hold (an environment object, a batch of values) raises `RunError`,
    or is written as ``fallback(value)`` when ``fallback`` is given (e.g. ``repr``)."""
    out = {}
    for field in dataclasses.fields(Config):
        value = getattr(config, field.name)
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, (np.generic, np.ndarray, jax.Array)) and np.ndim(value) == 0:
            value = np.asarray(value).item()
        elif not isinstance(value, (str, int, float, bool, type(None))):
            if fallback is None:
                raise RunError(f"Config.{field.name}={value!r} cannot be written to "
                               f"{CONFIG_JSON}; the command line handles environments "
                               "given by an id ('suite/name')")
            value = fallback(value)
        out[field.name] = value
    return out


def config_from_json(data: Any, source: str = CONFIG_JSON) -> Config:
    """Inverse of `config_to_json`; fields missing from ``data`` take their defaults. A field
    of the wrong type (or null) or an invalid value raises `RunError` naming the field."""
    if not isinstance(data, dict):
        raise RunError(f"{source} must hold a JSON object of Config fields, got "
                       f"{type(data).__name__}")
    unknown = sorted(set(data) - set(flags.fields()))
    if unknown:
        raise RunError(f"{source} has fields this version of purea2c does not know: "
                       f"{unknown}")
    try:
        values = {name: flags.json_field_value(name, value) for name, value in data.items()}
        return Config(**values)
    except ValueError as e:
        raise RunError(f"{source}: {e}") from e


# ------------------------------------------------------------------------------------------
# run.json
# ------------------------------------------------------------------------------------------

# field -> smallest value (None: any int): the fields train, evaluate and render read back.
_RUN_FIELDS = {"seeds": 1, "seed": None, "chunk_iterations": 1}


# field -> smallest value: fields that may also be null or absent.
_OPTIONAL_RUN_FIELDS = {"data_parallel": 1}


def check_run_info(info: Any, source: str = RUN_JSON) -> dict[str, Any]:
    """``info`` (a parsed run.json) if the fields purea2c reads back have valid values, else
    `RunError` naming the field."""
    if not isinstance(info, dict):
        raise RunError(f"{source} must hold a JSON object, got {type(info).__name__}")
    fields = {**_RUN_FIELDS, **{name: minimum for name, minimum in _OPTIONAL_RUN_FIELDS.items()
                                if info.get(name) is not None}}
    for name, minimum in fields.items():
        value = info.get(name)
        rule = "an int" if minimum is None else f"an int >= {minimum}"
        if name in _OPTIONAL_RUN_FIELDS:
            rule += " or null"
        if isinstance(value, bool) or not isinstance(value, int) or (
                minimum is not None and value < minimum):
            raise RunError(f"{source}: field {name} must be {rule}, got {json.dumps(value)}")
    return info


def git_state(package_dir: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the git checkout the purea2c package was imported from
    (``dirty``: ``git status --porcelain`` lists a change or an untracked file); None when
    the package does not sit at the top of a git checkout (an installed wheel) or git is
    not there. ``package_dir``: another package's folder, for tests."""
    package = pathlib.Path(package_dir or pathlib.Path(__file__).parent).resolve()
    root = package.parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                                  text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if top is None or pathlib.Path(top.strip()).resolve() != root:
        return None  # not a checkout, or the package lies deeper (a venv inside a checkout)
    commit, status = git("rev-parse", "HEAD"), git("status", "--porcelain")
    if commit is None or status is None:
        return None
    return {"commit": commit.strip(), "dirty": bool(status.strip())}


def host_info() -> dict[str, Any]:
    """The host name, the run's process count and its devices (``"1 x cpu"``, ``"8 x NVIDIA
    H100 80GB HBM3"``: count and kind over all processes)."""
    kinds = collections.Counter(d.device_kind for d in jax.devices())
    return {"name": socket.gethostname(), "process_count": jax.process_count(),
            "device_count": jax.device_count(),
            "devices": [f"{count} x {kind}" for kind, count in sorted(kinds.items())]}


def provenance() -> dict[str, Any]:
    """Where a run comes from, as run.json records it: ``versions`` (Python, purea2c, the JAX
    stack, numpy and every environment suite, None when not installed; and the JAX
    backend), ``git`` (`git_state`), ``host`` (`host_info`) and ``xla_flags``
    (``$XLA_FLAGS``, None when unset)."""
    return {"versions": {"python": platform.python_version(), **dist_versions(),
                         "backend": jax.default_backend()},
            "git": git_state(), "host": host_info(),
            "xla_flags": os.environ.get("XLA_FLAGS")}


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    """The provenance of ``record`` (a run.json or `provenance`) as ``{label: value}``."""
    out: dict[str, Any] = {}
    for name, value in (record.get("versions") or {}).items():
        out[name] = value
    if "git" in record:
        git = record["git"] or {}
        out["git commit"], out["git dirty"] = git.get("commit"), git.get("dirty")
    for name, value in (record.get("host") or {}).items():
        out[name.replace("_", " ") if name != "name" else "host"] = value
    if "xla_flags" in record:
        out["XLA_FLAGS"] = record["xla_flags"]
    return out


def environment_changes(info: dict[str, Any],
                        current: dict[str, Any] | None = None) -> list[str]:
    """What differs between the environment recorded in run.json ``info`` and ``current``
    (default: `provenance` now), e.g. ``["jax 0.10.2 -> 0.10.3", "host a -> b"]``; only
    what the record holds is compared (a run.json of an older purea2c holds less)."""
    recorded, now = _flat(info), _flat(provenance() if current is None else current)

    def text(value: Any) -> str:
        if isinstance(value, list):
            return ", ".join(map(str, value)) or "none"
        return "none" if value is None else str(value)

    return [f"{label} {text(value)} -> {text(now.get(label))}"
            for label, value in recorded.items() if now.get(label) != value]


def new_run_info(config: Config, num_seeds: int, seed: int, chunk: int, preset: str | None,
                 command: str, data_parallel: int | None = None) -> dict[str, Any]:
    """The run.json of a new run (status "created"), with its `provenance`.
    ``data_parallel``: the device count of one agent trained over several devices (None for
    independent seeds)."""
    return {
        "seeds": num_seeds,
        "seed": seed,
        "data_parallel": data_parallel,
        "chunk_iterations": min(chunk, config.num_iterations),
        "num_iterations": config.num_iterations,
        "env_steps_per_seed": config.num_iterations * config.steps_per_iteration,
        "preset": preset,
        "keys": f"jax.random.split(jax.random.key({seed}), {num_seeds})",
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": command,
        **provenance(),
        "status": "created",
    }


def set_status(run_dir: pathlib.Path, info: dict[str, Any], status: str) -> None:
    info["status"] = status
    write_json(run_dir / RUN_JSON, info)


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


class Session:
    """One ``purea2c train`` process on a run, recorded in run.json ``info``: on creation a
    ``sessions`` entry (command, start and, for a resumed run, `environment_changes`
    against the record; `reached` adds its first and last iteration), and the run's
    ``started`` if unset (a ``divergence`` that stopped the previous session moves into
    that session's entry); `end` adds the end time, duration and exit status to the entry
    and to the run (``ended``, ``exit_status``, ``duration_s`` summed over its sessions)
    and writes run.json when ``write`` (process 0)."""

    def __init__(self, run_dir: pathlib.Path, info: dict[str, Any], command: str,
                 resumed: bool, write: bool = True):
        self.run_dir, self.info, self.write = run_dir, info, write
        self.start = time.perf_counter()
        self.changes = environment_changes(info) if resumed else []
        self.entry: dict[str, Any] = {"command": command, "started": _now(),
                                      "from_iteration": None, "to_iteration": None}
        if resumed:
            self.entry["changes"] = self.changes
        info.setdefault("started", self.entry["started"])
        if "divergence" in info and info.get("sessions"):  # an earlier session's
            info["sessions"][-1]["divergence"] = info.pop("divergence")
        info.setdefault("sessions", []).append(self.entry)
        self.ended = False

    def reached(self, iteration: int) -> None:
        """The session's iteration: the first call sets where it started, each call where
        it is (``from_iteration``, ``to_iteration``)."""
        if self.entry["from_iteration"] is None:
            self.entry["from_iteration"] = iteration
        self.entry["to_iteration"] = iteration

    def end(self, exit_status: int, error: str | None = None) -> None:
        """Records the session's end; ``error``: what stopped it, for a run whose status
        still says it is running (the status becomes ``failed: <error>``)."""
        if self.ended:
            return
        self.ended = True
        self.entry.update(ended=_now(), duration_s=round(time.perf_counter() - self.start, 3),
                          exit_status=exit_status)
        info = self.info
        info.update(ended=self.entry["ended"], exit_status=exit_status,
                    duration_s=round(sum(s.get("duration_s") or 0.0
                                         for s in info["sessions"]), 3))
        if error is not None and info.get("status") in ("created", "running"):
            info["status"] = f"failed: {error}"
        if self.write:
            try:
                write_json(self.run_dir / RUN_JSON, info)
            except OSError:
                pass  # the command's own error (if any) has been reported; nothing to add


# ------------------------------------------------------------------------------------------
# the directory
# ------------------------------------------------------------------------------------------


def env_name(config: Config) -> str:
    return config.env if isinstance(config.env, str) else type(config.env).__name__


def default_run_dir(env: str, root: str = "runs") -> pathlib.Path:
    """``runs/<env>-<YYYYmmdd-HHMMSS>`` (with a suffix if that exists); an id's ``/``
    becomes ``-`` (``runs/brax-inverted_pendulum-...``)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = pathlib.Path(root) / f"{env.replace('/', '-')}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def is_run_dir(path: pathlib.Path) -> bool:
    return (path / RUN_JSON).is_file()


def new_dir_problem(path: pathlib.Path) -> str | None:
    """Why a new run cannot be written to ``path`` (None if it can): it must be a new or
    empty folder that this process can write to."""
    if path.exists():
        if not path.is_dir():
            return f"{path} exists and is not a folder"
        if is_run_dir(path):
            return (f"{path} already holds a run; continue it with "
                    f"`purea2c train --resume {path}` or choose another --out")
        if any(path.iterdir()):
            return (f"{path} exists and is not a purea2c run directory (it holds other files); "
                    "choose a new or empty folder")
        return None if _writable(path) else f"{path} is not writable"
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot create {path}: {parent} is not a folder"
    if not _writable(parent):
        return f"cannot create {path}: {parent} is not writable"
    return None


def _writable(folder: pathlib.Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def load_run(run_dir: str | os.PathLike) -> tuple[Config, dict[str, Any]]:
    """``(config, run_info)`` of a run directory written by ``purea2c train``."""
    run_dir = pathlib.Path(run_dir)
    if not (run_dir / CONFIG_JSON).is_file() or not (run_dir / RUN_JSON).is_file():
        raise RunError(f"{run_dir} is not a purea2c run directory (no {CONFIG_JSON} and "
                       f"{RUN_JSON}); make one with: purea2c train --out {run_dir}")
    config = config_from_json(read_json(run_dir / CONFIG_JSON), str(run_dir / CONFIG_JSON))
    info = check_run_info(read_json(run_dir / RUN_JSON), str(run_dir / RUN_JSON))
    return config, info


def abstract_state(config: Config, num_seeds: int, data_parallel: int | None = None) -> Any:
    """Shapes and dtypes of a fresh vmapped `TrainState` (``jax.eval_shape``, no compile); of
    one agent over ``data_parallel`` devices, as `sharding.MeshRun` checkpoints it, when
    that is given."""
    if data_parallel is not None:
        return sharding.data_parallel_abstract_state(config, data_parallel)
    keys = jax.random.split(jax.random.key(0), num_seeds)
    return jax.eval_shape(jax.vmap(init, in_axes=(0, None)), keys, config)


class Restored(NamedTuple):
    state: Any  # a vmapped `TrainState`
    step: int  # its iteration
    skipped: list[tuple[int, str]]  # (step, fault) of newer checkpoints that were damaged


def restore_state(run_dir: pathlib.Path, config: Config, num_seeds: int,
                  step: int | None = None, data_parallel: int | None = None) -> Restored:
    """The run's checkpoint ``step`` as a vmapped `TrainState`; by default the newest intact
    one (damaged newer ones are skipped and listed). ``data_parallel``: the device count of a
    run of one agent over several devices (run.json's field), whose state holds each device's
    envs and buffer. A damaged or missing checkpoint, or one that does not match the config,
    raises `RunError`; none at all raises `NoCheckpoint`."""
    ckpt_dir = pathlib.Path(run_dir) / CHECKPOINTS
    if checkpoint.latest_step(ckpt_dir) is None:
        raise NoCheckpoint(f"{run_dir} has no checkpoint yet")
    like = abstract_state(config, num_seeds, data_parallel)
    try:
        if step is None:
            return Restored(*checkpoint.restore_latest_intact(ckpt_dir, like))
        return Restored(checkpoint.restore(ckpt_dir, like, step), step, [])
    except FileNotFoundError as e:
        if step is None:
            raise NoCheckpoint(f"{run_dir} has no checkpoint yet") from e
        raise RunError(" ".join(str(e).split())) from e
    except ValueError as e:  # checkpoint.CheckpointError (damage) or a mismatched state
        raise RunError(" ".join(str(e).split())) from e


def load_state(run_dir: str | os.PathLike, step: int | None = None) -> tuple[Config, dict, Any]:
    """``(config, run_info, state)``: the run's checkpoint ``step`` (default: the newest
    intact one), a `TrainState` with a leading ``[seeds]`` axis."""
    config, info = load_run(run_dir)
    return config, info, restore_state(pathlib.Path(run_dir), config, info["seeds"], step,
                                       info.get("data_parallel")).state


def seed_params(state: Any, index: int) -> Any:
    """The parameters of one seed of a vmapped state."""
    return jax.tree.map(lambda x: x[index], state.params)
