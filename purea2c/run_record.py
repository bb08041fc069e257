"""A run's record, ``run.json``: what the run is (seeds, base seed, data-parallel devices,
chunk length, command, preset), where it comes from (`provenance`: versions, git commit,
host, devices, XLA flags), its status, and every ``purea2c train`` session on it
(`Session`: command, start, end, duration, exit status, iterations, and on resume what
differs from the record, `environment_changes`). `check_run_info` checks the fields that
train, evaluate and render read back. `purea2c.run_dir` holds the rest of the run directory.
"""

from __future__ import annotations

import collections
import datetime
import json
import os
import pathlib
import platform
import socket
import subprocess
import time
from typing import Any, Sequence

import jax

from purea2c.config import Config
from purea2c.errors import RunError
from purea2c.json_files import write_json

RUN_JSON = "run.json"

# Recorded in run.json; benchmarks record these and more.
VERSIONED = ("purea2c", "jax", "jaxlib", "flax", "optax", "chex", "numpy", "gymnax",
             "orbax-checkpoint", "brax", "jumanji", "craftax", "navix", "xminigrid")

# field -> smallest value (None: any int): the fields train, evaluate and render read back.
_RUN_FIELDS = {"seeds": 1, "seed": None, "chunk_iterations": 1}


# field -> smallest value: fields that may also be null or absent.
_OPTIONAL_RUN_FIELDS = {"data_parallel": 1}


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
