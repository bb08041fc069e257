"""A checkpoint's integrity record, ``meta.json``: what it holds and how it is checked.

``meta.json`` lists every leaf of the saved pytree under its tree path (`flatten`), with its
shape, dtype, PRNG key implementation and the sha256 of its bytes; the size and sha256 of
every file orbax wrote under ``state/`` (`files`); the caller's metadata; and a ``digest``
of all of it (`digest`). `read_meta` refuses a record that is missing, unreadable, of
another format or not matching its digest; `check_files` refuses files that are missing or
altered; `check_structure` names the leaves where a checkpoint and the expected state
differ. Every refusal of damage is a `CheckpointError` naming the checkpoint and the fault.
`purea2c.checkpoint` saves and restores with these.
"""

from __future__ import annotations

import functools
import hashlib
import json
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

STATE = "state"  # the folder of orbax's files in a step
META = "meta.json"
FORMAT = 2


class CheckpointError(ValueError):
    """A checkpoint on disk is damaged or incomplete; the message names its path and the
    fault (which file or leaf, what is wrong)."""


def is_key(x: Any) -> bool:
    """Whether ``x`` is a typed PRNG key array (saved as its raw key data)."""
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


def flatten(tree: Any) -> list[tuple[str, Any]]:
    """``[(tree path name, leaf), ...]`` of a pytree, in its flattening order."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    named = [(_path_name(path), leaf) for path, leaf in leaves]
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        raise ValueError("checkpoint: two leaves of the pytree have the same path name")
    return named


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"a/b": x}`` -> ``{"a": {"b": x}}`` (orbax stores nested dicts by their keys)."""
    out: dict[str, Any] = {}
    for name, value in flat.items():
        node = out
        *parents, last = name.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def unnest(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        name = f"{prefix}/{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(unnest(v, name))
        else:
            out[name] = v
    return out


def sha256(array: np.ndarray) -> str:
    """sha256 of an array's raw bytes in C order."""
    return hashlib.sha256(np.ascontiguousarray(array).reshape(-1).view(np.uint8)).hexdigest()


def file_sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def files(step_dir: pathlib.Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file under ``<step>/state/``, by path relative to the step."""
    return {str(p.relative_to(step_dir)): {"size": p.stat().st_size, "sha256": file_sha256(p)}
            for p in sorted((step_dir / STATE).rglob("*")) if p.is_file()}


def digest(meta: dict[str, Any]) -> str:
    body = {k: v for k, v in meta.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def read_meta(path: pathlib.Path) -> dict[str, Any]:
    try:
        with open(path / META, "rb") as f:
            meta = json.loads(f.read().decode())
    except FileNotFoundError as err:
        raise CheckpointError(f"checkpoint {path} is incomplete: {META} is missing (the "
                              "save was interrupted, or the file was deleted)") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"checkpoint {path} is damaged: {META} is unreadable "
                              f"({type(err).__name__}: {err})") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(f"checkpoint {path}: {META} has format {found!r}, expected "
                              f"{FORMAT} (damaged, or written by another purea2c version)")
    missing = {"leaves", "files", "metadata", "digest"} - set(meta)
    if missing:
        raise CheckpointError(f"checkpoint {path} is damaged: {META} lacks "
                              f"{sorted(missing)}")
    if meta["digest"] != digest(meta):
        raise CheckpointError(f"checkpoint {path} is damaged: {META} does not match its "
                              "digest (the file was altered)")
    return meta


def check_files(path: pathlib.Path, meta: dict[str, Any]) -> None:
    for name, info in meta["files"].items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"checkpoint {path} is damaged: file {name} is missing")
        size = file.stat().st_size
        if size != info["size"]:
            raise CheckpointError(f"checkpoint {path} is damaged: file {name} has {size} "
                                  f"bytes, {info['size']} were saved (truncated or altered)")
        if file_sha256(file) != info["sha256"]:
            raise CheckpointError(f"checkpoint {path} is damaged: file {name} fails its "
                                  "sha256 checksum (its bytes were altered)")


def check_structure(path: pathlib.Path, saved: dict[str, dict], like: Any) -> None:
    """Raises ``ValueError`` naming the leaves where the checkpoint and ``like`` differ."""
    expected = flatten(like)
    names = [name for name, _ in expected]
    problems = []
    missing = sorted(set(names) - set(saved))
    unexpected = sorted(set(saved) - set(names))
    if missing:
        problems.append(f"missing from the checkpoint: {missing}")
    if unexpected:
        problems.append(f"in the checkpoint but not in `like`: {unexpected}")
    for name, target in expected:
        if name not in saved:
            continue
        info = saved[name]
        found = jax.ShapeDtypeStruct(tuple(info["shape"]), jnp.dtype(info["dtype"]))
        if is_key(target):
            if info["key_impl"] is None:
                problems.append(f"{name}: `like` has a PRNG key, the checkpoint raw "
                                f"{found.dtype}")
                continue
            found = jax.eval_shape(functools.partial(jax.random.wrap_key_data,
                                                     impl=info["key_impl"]), found)
        if found.shape != tuple(target.shape) or found.dtype != target.dtype:
            problems.append(f"{name}: checkpoint {found.dtype}{list(found.shape)}, "
                            f"expected {target.dtype}{list(target.shape)}")
    if problems:
        raise ValueError(f"checkpoint {path} does not match the expected state (was it saved "
                         "with another configuration or number of seeds?):\n  "
                         + "\n  ".join(problems))
