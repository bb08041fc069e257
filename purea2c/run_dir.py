"""The run directory of ``purea2c train``: its layout and file names, ``config.json``, and
loading a run's config and checkpointed state.

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

Every JSON file is strict JSON: non-finite floats are written as ``null``
(`purea2c.json_files`). What run.json records, and the sessions that update it, are
`purea2c.run_record`'s; this module holds the layout, config.json and loading a run.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import pathlib
from typing import Any, NamedTuple

import jax
import numpy as np

from purea2c import checkpoint, flags, mesh_run
from purea2c.config import Config
from purea2c.errors import RunError
from purea2c.json_files import jsonable, read_json, write_json
from purea2c.run_record import (RUN_JSON, VERSIONED, Session, check_run_info, dist_versions,
                                environment_changes, git_state, host_info, new_run_info,
                                provenance, set_status)
from purea2c.training import init

__all__ = [  # the run.json and JSON names are re-exported from their modules
    "CHECKPOINTS", "CONFIG_JSON", "CURVE_PNG", "EVALUATION_JSON", "METRICS_CSV",
    "METRICS_PARQUET", "NoCheckpoint", "RENDER_GIF", "RUN_JSON", "Restored", "Session",
    "TENSORBOARD", "VERSIONED", "abstract_state", "check_run_info", "config_from_json",
    "config_to_json", "default_run_dir", "dist_versions", "env_name", "environment_changes",
    "git_state", "host_info", "is_run_dir", "jsonable", "load_run", "load_state",
    "new_dir_problem", "new_run_info", "provenance", "read_json", "restore_state",
    "seed_params", "set_status", "write_json"]

CONFIG_JSON = "config.json"
METRICS_CSV = "metrics.csv"
METRICS_PARQUET = "metrics.parquet"
CURVE_PNG = "learning_curve.png"
CHECKPOINTS = "checkpoints"
EVALUATION_JSON = "evaluation.json"
TENSORBOARD = "tensorboard"
RENDER_GIF = "render.gif"


class NoCheckpoint(RunError):
    """The run has no checkpoint yet."""


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
    one agent over ``data_parallel`` devices, as `mesh_run.MeshRun` checkpoints it, when
    that is given."""
    if data_parallel is not None:
        return mesh_run.data_parallel_abstract_state(config, data_parallel)
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
