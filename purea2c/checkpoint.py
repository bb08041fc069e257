"""Save and restore a `TrainState` (or any pytree of arrays) with orbax-checkpoint.

    path = checkpoint.save("run/checkpoints", state, step=int(state.iteration))
    like = jax.eval_shape(purea2c.init, jax.random.key(0), config)    # structure only
    state = checkpoint.restore("run/checkpoints", like)                 # latest step

Layout: one directory per step, ``<directory>/<step>/``, holding the arrays (``state/``,
written by orbax) and ``meta.json`` (the path, shape and dtype of every leaf, and the
caller's ``metadata``). A save is written under a hidden temporary name and renamed to
``<step>`` only when complete; a rename is atomic on POSIX filesystems, so a crash during a
save leaves the previous checkpoints untouched and never a half-written ``<step>``.

The functions are generic over the pytree: every leaf is stored under its tree path, so new
fields of `TrainState` need no change here. Typed PRNG keys (``jax.random.key``), which orbax
cannot store, are saved as their raw ``jax.random.key_data`` and wrapped again on restore.
Zero-size leaves (orbax refuses them) are recorded in ``meta.json`` and rebuilt as empty
arrays. Restoring gives bitwise the arrays that were saved.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import uuid
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

_STATE = "state"
_META = "meta.json"
_TMP_PREFIX = ".tmp-"
_FORMAT = 1


def _is_key(x: Any) -> bool:
    return jax.dtypes.issubdtype(getattr(x, "dtype", np.float32), jax.dtypes.prng_key)


def _path_name(path: tuple) -> str:
    """A readable, unique name for a tree path, e.g. ``params/pi/params/torso/kernel``."""
    parts = []
    for entry in path:
        if isinstance(entry, jax.tree_util.GetAttrKey):
            parts.append(entry.name)
        elif isinstance(entry, jax.tree_util.DictKey):
            parts.append(str(entry.key))
        elif isinstance(entry, jax.tree_util.SequenceKey):
            parts.append(str(entry.idx))
        elif isinstance(entry, jax.tree_util.FlattenedIndexKey):
            parts.append(str(entry.key))
        else:  # pragma: no cover - future key kinds
            parts.append(str(entry))
    if any("/" in p or not p for p in parts):
        raise ValueError(f"checkpoint: cannot name the tree path {parts} (a key is empty or "
                         "contains '/')")
    return "/".join(parts)


def _flatten(tree: Any) -> list[tuple[str, Any]]:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    named = [(_path_name(path), leaf) for path, leaf in leaves]
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        raise ValueError("checkpoint: two leaves of the pytree have the same path name")
    return named


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"a/b": x}`` -> ``{"a": {"b": x}}`` (orbax stores nested dicts by their keys)."""
    out: dict[str, Any] = {}
    for name, value in flat.items():
        node = out
        *parents, last = name.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def _unnest(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        name = f"{prefix}/{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_unnest(v, name))
        else:
            out[name] = v
    return out


def all_steps(directory: str | os.PathLike) -> list[int]:
    """Steps of the complete checkpoints in ``directory``, ascending (``[]`` if none)."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return []
    return sorted(int(p.name) for p in directory.iterdir()
                  if p.name.isdigit() and (p / _META).is_file())


def latest_step(directory: str | os.PathLike) -> int | None:
    """The newest complete checkpoint's step, or ``None`` if there is none."""
    steps = all_steps(directory)
    return steps[-1] if steps else None


def save(directory: str | os.PathLike, state: Any, step: int, *,
         metadata: dict[str, Any] | None = None, keep: int | None = None,
         overwrite: bool = False) -> pathlib.Path:
    """Writes ``state`` (any pytree of arrays, typically a `TrainState`, possibly with a
    leading seed axis) as checkpoint ``step`` of ``directory`` and returns its path.

    The write is atomic: the checkpoint appears complete or not at all. ``metadata`` (JSON
    serialisable) is stored next to the arrays (see `load_metadata`). ``keep`` deletes the
    oldest checkpoints beyond that many, after the new one is in place. An existing step
    raises ``FileExistsError`` unless ``overwrite``.
    """
    import orbax.checkpoint as ocp

    step = int(step)
    if step < 0:
        raise ValueError(f"checkpoint step must be >= 0, got {step}")
    if keep is not None and keep < 1:
        raise ValueError(f"keep must be >= 1 or None, got {keep}")
    directory = pathlib.Path(directory).absolute()
    final = directory / str(step)
    if final.exists() and not overwrite:
        raise FileExistsError(f"checkpoint {final} already exists")
    directory.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(directory)

    arrays: dict[str, Any] = {}
    leaves = []
    for name, leaf in _flatten(state):
        leaf = jnp.asarray(leaf) if not isinstance(leaf, (np.ndarray, jax.Array)) else leaf
        key_impl = None
        if _is_key(leaf):
            key_impl = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
        info = {"name": name, "shape": list(np.shape(leaf)), "dtype": str(leaf.dtype),
                "key_impl": key_impl}
        leaves.append(info)
        if np.size(leaf) > 0:
            arrays[name] = leaf
    meta = {"format": _FORMAT, "step": step, "leaves": leaves, "metadata": metadata or {}}

    tmp = directory / f"{_TMP_PREFIX}{step}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(tmp / _STATE, _nest(arrays))
        checkpointer.wait_until_finished()
        checkpointer.close()
        with open(tmp / _META, "w") as f:
            json.dump(meta, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        if final.exists():  # overwrite: move the old one aside, then swap in the new one
            old = directory / f"{_TMP_PREFIX}old-{step}-{uuid.uuid4().hex[:8]}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
        _fsync_dir(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    if keep is not None:
        for old_step in all_steps(directory)[:-keep]:
            shutil.rmtree(directory / str(old_step), ignore_errors=True)
    return final


def load_metadata(directory: str | os.PathLike, step: int | None = None) -> dict[str, Any]:
    """The ``metadata`` dict saved with checkpoint ``step`` (default: the latest)."""
    return _read_meta(_step_dir(directory, step))["metadata"]


def restore(directory: str | os.PathLike, like: Any = None, step: int | None = None) -> Any:
    """Reads checkpoint ``step`` (default: the latest) of ``directory``.

    ``like`` gives the pytree structure, shapes and dtypes to restore into: a state of the
    same configuration, or its abstract version, e.g.
    ``jax.eval_shape(purea2c.init, jax.random.key(0), config)`` (for N vmapped seeds, the
    ``eval_shape`` of ``jax.vmap(purea2c.init, in_axes=(0, None))`` on N keys). A checkpoint
    that does not match ``like`` raises ``ValueError`` naming the differing leaves. Without
    ``like``, a nested dict of arrays keyed by the saved paths is returned (keys as raw data).
    """
    import orbax.checkpoint as ocp

    path = _step_dir(directory, step)
    meta = _read_meta(path)
    checkpointer = ocp.StandardCheckpointer()
    try:
        stored = _unnest(checkpointer.restore(path / _STATE)) if any(
            int(np.prod(leaf["shape"])) > 0 for leaf in meta["leaves"]) else {}
    finally:
        checkpointer.close()
    values: dict[str, Any] = {}
    for info in meta["leaves"]:
        name = info["name"]
        if int(np.prod(info["shape"])) == 0:
            values[name] = np.zeros(info["shape"], info["dtype"])
        else:
            values[name] = np.asarray(stored[name])
    if like is None:
        return _nest(values)

    saved = {info["name"]: info for info in meta["leaves"]}
    expected = _flatten(like)
    names = [name for name, _ in expected]
    problems = []
    missing = sorted(set(names) - set(saved))
    unexpected = sorted(set(saved) - set(names))
    if missing:
        problems.append(f"missing from the checkpoint: {missing}")
    if unexpected:
        problems.append(f"in the checkpoint but not in `like`: {unexpected}")
    leaves = []
    for name, target in expected:
        if name not in saved:
            continue
        value = values[name]
        if _is_key(target):
            impl = saved[name]["key_impl"]
            if impl is None:
                problems.append(f"{name}: `like` has a PRNG key, the checkpoint raw "
                                f"{value.dtype}")
                continue
            restored = jax.random.wrap_key_data(jnp.asarray(value), impl=impl)
        else:
            restored = jnp.asarray(value)
        if restored.shape != tuple(target.shape) or restored.dtype != target.dtype:
            problems.append(f"{name}: checkpoint {restored.dtype}{list(restored.shape)}, "
                            f"expected {target.dtype}{list(target.shape)}")
            continue
        leaves.append(restored)
    if problems:
        raise ValueError(f"checkpoint {path} does not match the expected state (was it saved "
                         "with another configuration or number of seeds?):\n  "
                         + "\n  ".join(problems))
    return jax.tree.unflatten(jax.tree.structure(like), leaves)


def _step_dir(directory: str | os.PathLike, step: int | None) -> pathlib.Path:
    directory = pathlib.Path(directory).absolute()  # orbax needs absolute paths
    if step is None:
        step = latest_step(directory)
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {directory}")
    path = directory / str(int(step))
    if not (path / _META).is_file():
        raise FileNotFoundError(f"no checkpoint at step {step} in {directory}; "
                                f"steps: {all_steps(directory)}")
    return path


def _read_meta(path: pathlib.Path) -> dict[str, Any]:
    with open(path / _META) as f:
        meta = json.load(f)
    if meta.get("format") != _FORMAT:
        raise ValueError(f"{path}: unknown checkpoint format {meta.get('format')!r}")
    return meta


def _remove_stale_temporaries(directory: pathlib.Path) -> None:
    """Deletes what an interrupted save left behind; puts back a checkpoint that an
    interrupted overwrite had moved aside."""
    for p in sorted(directory.iterdir()):
        if p.name.startswith(_TMP_PREFIX + "old-"):
            step = p.name[len(_TMP_PREFIX + "old-"):].split("-")[0]
            if not (directory / step).exists() and (p / _META).is_file():
                os.rename(p, directory / step)
                continue
        if p.name.startswith(_TMP_PREFIX):
            shutil.rmtree(p, ignore_errors=True)


def _fsync_dir(directory: pathlib.Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
