"""Save and restore a `TrainState` (or any pytree of arrays) with orbax's CheckpointManager,
with a checksum of every array and every file, verified on restore.

    path = checkpoint.save("run/checkpoints", state, step=int(state.iteration), keep=2)
    like = jax.eval_shape(purea2c.init, jax.random.key(0), config)    # structure only
    state = checkpoint.restore("run/checkpoints", like)                 # latest step
    state, step, skipped = checkpoint.restore_latest_intact("run/checkpoints", like)
    removed = checkpoint.prune("run/checkpoints", keep=2)   # [Removed(step, fault), ...]

Layout: one directory per step, ``<directory>/<step>/``, holding the arrays (``state/``,
written by orbax's `CheckpointManager`, which saves under a temporary name and renames it to
``<step>`` when complete, and removes temporaries of interrupted saves) and ``meta.json``:
the path, shape, dtype and sha256 of every leaf, the size and sha256 of every file under
``state/``, the caller's ``metadata`` and a digest of all of it. A checkpoint is complete
once its ``meta.json`` is in place (written after orbax's commit, by an atomic replace).

Why ``meta.json`` is written by hand after orbax's commit rather than as an orbax item: the
file checksums can only be taken once orbax has finished every file, and orbax offers no
hook between its last write and its rename. For the same reason the newest-N retention is
done here after ``meta.json`` is in place, not by the manager's ``max_to_keep`` (which
deletes old steps before ``meta.json`` exists, so a crash in between would leave no complete
checkpoint when keep is 1), and an overwrite moves the old step aside until the new one is
complete (orbax refuses to overwrite a step). Retention (`prune`) counts intact checkpoints
only: the newest ``keep`` whose ``meta.json`` and files pass their checksums are kept, and
every other one, damaged or older, is removed and reported.

Integrity: `restore` checks the digest of ``meta.json``, the size and sha256 of every file,
and the sha256 of every restored array; anything wrong (a missing, truncated or altered
file, unreadable metadata) raises `CheckpointError` naming the checkpoint and the fault.
A damaged checkpoint is never returned. `restore_latest_intact` falls back to the newest
intact checkpoint and reports the ones it skipped. The per-file checksums are needed on top
of the per-array ones: orbax's OCDBT layout holds files and bytes that a restore never reads
(the per-process index and manifest, padding), so damage there would pass unnoticed by the
arrays alone. Checkpoints of format 1 (before checksums) are refused as damaged.

The functions are generic over the pytree: every leaf is stored under its tree path, so new
fields of `TrainState` need no change here. Typed PRNG keys (``jax.random.key``), which orbax
cannot store, are saved as their raw ``jax.random.key_data`` and wrapped again on restore.
Zero-size leaves (orbax refuses them) are recorded in ``meta.json`` and rebuilt as empty
arrays. Restoring gives bitwise the arrays that were saved.

This module saves, restores and prunes; `purea2c.checkpoint_integrity` holds what
``meta.json`` records and its checks.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import shutil
import uuid
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from purea2c.atomic import fsync_dir as _fsync_dir
from purea2c.atomic import write_atomically as _write_atomically
from purea2c.checkpoint_integrity import META as _META
from purea2c.checkpoint_integrity import STATE as _STATE
from purea2c.checkpoint_integrity import CheckpointError
from purea2c.checkpoint_integrity import FORMAT as _FORMAT
from purea2c.checkpoint_integrity import check_files as _check_files
from purea2c.checkpoint_integrity import check_structure as _check_structure
from purea2c.checkpoint_integrity import digest as _digest
from purea2c.checkpoint_integrity import files as _files
from purea2c.checkpoint_integrity import flatten as _flatten
from purea2c.checkpoint_integrity import is_key as _is_key
from purea2c.checkpoint_integrity import nest as _nest
from purea2c.checkpoint_integrity import read_meta as _read_meta
from purea2c.checkpoint_integrity import sha256 as _sha256
from purea2c.checkpoint_integrity import unnest as _unnest

__all__ = ["CheckpointError", "Removed", "all_steps", "check_settings", "latest_step",
           "load_metadata", "prune", "restore", "restore_latest_intact", "save", "verify"]

_ASIDE_PREFIX = ".old-"  # an overwritten step, kept until its replacement is complete
_REMOVED_PREFIX = ".removed-"  # a step being removed by `prune`

_log = logging.getLogger(__name__)


class Removed(NamedTuple):
    """A checkpoint that `prune` removed."""

    step: int
    fault: str | None  # why it was damaged (the `CheckpointError`); None: an intact one
    #                    older than the newest ``keep`` intact ones


def check_settings(*, keep: int | None = None,
                   directory: str | os.PathLike | None = None) -> None:
    """Raises ``ValueError`` for settings that `save` would refuse, so a caller can check
    them before any work: ``keep`` must be None or >= 1; ``directory`` (if given) must be a
    directory, or not exist yet, and be writable."""
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, (int, np.integer))
                             or keep < 1):
        raise ValueError(f"checkpoint keep must be an integer >= 1 or None, got {keep!r}")
    if directory is not None:
        directory = pathlib.Path(directory)
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"checkpoint directory {directory} exists and is not a directory")
        existing = next((p for p in [directory, *directory.absolute().parents] if p.exists()),
                        None)
        if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
            raise ValueError(f"checkpoint directory {directory}: {existing} is not writable")


def _manager(directory: pathlib.Path, *, read_only: bool) -> Any:
    import orbax.checkpoint as ocp

    # Saves are synchronous (a checkpoint is complete when `save` returns); a writer removes
    # the temporaries of interrupted saves when it opens the directory, a reader creates and
    # removes nothing (a training process may be saving next to it). A reader is not
    # orbax's `read_only` manager only because that one logs warnings at every restore.
    extra: dict[str, Any] = {}
    if jax.process_count() > 1:
        # The arrays are host copies, whole on the process that saves or reads them: a save
        # (the command line's process 0) and each process's read run alone, not at orbax's
        # barriers with every process. Orbax creates no folder for such a manager; `save`
        # has made it.
        me = jax.process_index()
        extra = dict(create=False, multiprocessing_options=ocp.options.MultiprocessingOptions(
            primary_host=me, active_processes={me}, barrier_sync_key_prefix=f"process{me}"))
    options = ocp.CheckpointManagerOptions(**{
        "create": not read_only, "cleanup_tmp_directories": not read_only,
        "enable_async_checkpointing": False, "max_to_keep": None, **extra})
    return ocp.CheckpointManager(directory, options=options, item_names=(_STATE,))


def all_steps(directory: str | os.PathLike) -> list[int]:
    """Steps of the complete checkpoints in ``directory`` (those with their ``meta.json``,
    whether intact or not), ascending (``[]`` if none)."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return []
    return sorted(int(p.name) for p in directory.iterdir()
                  if p.name.isdigit() and (p / _META).is_file())


def latest_step(directory: str | os.PathLike) -> int | None:
    """The newest complete checkpoint's step (not checked for damage: see
    `restore_latest_intact`), or ``None`` if there is none."""
    steps = all_steps(directory)
    return steps[-1] if steps else None


def save(directory: str | os.PathLike, state: Any, step: int, *,
         metadata: dict[str, Any] | None = None, keep: int | None = None,
         overwrite: bool = False) -> pathlib.Path:
    """Writes ``state`` (any pytree of arrays, typically a `TrainState`, possibly with a
    leading seed axis) as checkpoint ``step`` of ``directory`` and returns its path.

    The write is atomic: the checkpoint appears complete or not at all, and a save that
    fails or is killed leaves the previous checkpoints as they were. ``metadata`` (JSON
    serialisable) is stored next to the arrays (see `load_metadata`). ``keep``, after the new
    one is complete, keeps the newest ``keep`` intact checkpoints (the new one among them)
    and removes the others, damaged or older (`prune`; each removal is logged on the
    ``purea2c.checkpoint`` logger, a damaged one as a warning); ``keep < 1`` raises
    ``ValueError`` before anything is written. An existing step raises ``FileExistsError``
    unless ``overwrite``.
    """
    step = int(step)
    if step < 0:
        raise ValueError(f"checkpoint step must be >= 0, got {step}")
    check_settings(keep=keep)
    arrays: dict[str, np.ndarray] = {}
    leaves = []
    for name, leaf in _flatten(state):
        leaf = jnp.asarray(leaf) if not isinstance(leaf, (np.ndarray, jax.Array)) else leaf
        key_impl = None
        if _is_key(leaf):
            key_impl = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
        leaf = np.asarray(leaf)
        leaves.append({"name": name, "shape": list(leaf.shape), "dtype": str(leaf.dtype),
                       "key_impl": key_impl, "sha256": _sha256(leaf)})
        if leaf.size > 0:
            arrays[name] = leaf
    meta = {"format": _FORMAT, "step": step, "leaves": leaves, "metadata": metadata or {}}
    json.dumps(meta)  # not serialisable: fail before writing anything

    directory = pathlib.Path(directory).absolute()  # orbax needs absolute paths
    final = directory / str(step)
    directory.mkdir(parents=True, exist_ok=True)
    _recover(directory)
    if final.exists() and not overwrite:
        raise FileExistsError(f"checkpoint {final} already exists")
    aside = None
    if final.exists():  # overwrite: move the old one aside until the new one is complete
        aside = directory / f"{_ASIDE_PREFIX}{step}-{uuid.uuid4().hex[:8]}"
        os.rename(final, aside)
    import orbax.checkpoint as ocp

    manager = _manager(directory, read_only=False)
    try:
        # force: save even below the newest step (orbax skips those by default), e.g. after
        # a resume that fell back past a damaged checkpoint.
        manager.save(step, args=ocp.args.Composite(
            **{_STATE: ocp.args.StandardSave(_nest(arrays) or {"_": np.zeros(1, np.uint8)})}),
            force=True)
        manager.wait_until_finished()
        meta["files"] = _files(final)
        meta["digest"] = _digest(meta)
        _write_atomically(final / _META, json.dumps(meta, indent=1))
        _fsync_dir(directory)
    except BaseException:
        manager.close()
        shutil.rmtree(final, ignore_errors=True)
        for tmp in directory.glob(f"{step}.*"):  # orbax's temporary, "<step>.orbax-..."
            shutil.rmtree(tmp, ignore_errors=True)
        if aside is not None:
            os.rename(aside, final)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    manager.close()
    if keep is not None:
        for removed in prune(directory, keep, intact=(step,)):
            if removed.fault is None:
                _log.info("removed checkpoint %s (older than the newest %s intact)",
                          directory / str(removed.step), keep)
            else:
                _log.warning("removed damaged checkpoint %s: %s",
                             directory / str(removed.step), removed.fault)
    return final


def verify(directory: str | os.PathLike, step: int) -> None:
    """Raises `CheckpointError` if checkpoint ``step`` of ``directory`` is damaged or
    incomplete: its ``meta.json`` unreadable or not matching its digest, a file missing or
    not matching its size and sha256. The arrays are not read (`restore` also checks each
    array's sha256), so this costs one read of the files."""
    path = _step_dir(directory, step)
    _check_files(path, _read_meta(path))


def prune(directory: str | os.PathLike, keep: int,
          intact: tuple[int, ...] = ()) -> list[Removed]:
    """Keeps the newest ``keep`` intact checkpoints of ``directory`` and removes every other
    complete one: damaged ones (`verify` fails) wherever they are, and intact ones older than
    the kept ones. Returns what it removed, newest first. Steps in ``intact`` are taken as
    intact without a check (a checkpoint just saved). A step directory without its
    ``meta.json`` (a save under way or interrupted) is left alone."""
    if keep is None:
        raise ValueError("prune: keep must be an integer >= 1 (how many intact checkpoints "
                         "to keep), got None")
    check_settings(keep=keep)
    directory = pathlib.Path(directory).absolute()
    removed: list[Removed] = []
    kept = 0
    for step in reversed(all_steps(directory)):
        if kept >= keep:
            removed.append(Removed(step, None))
            continue
        if step not in intact:
            try:
                verify(directory, step)
            except CheckpointError as err:
                removed.append(Removed(step, " ".join(str(err).split())))
                continue
        kept += 1
    for step, _ in removed:
        # renamed first, so that an interrupted removal leaves no half checkpoint under
        # its step (`_recover` deletes the rest)
        doomed = directory / f"{_REMOVED_PREFIX}{step}-{uuid.uuid4().hex[:8]}"
        os.rename(directory / str(step), doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    if removed:
        _fsync_dir(directory)
    return removed


def load_metadata(directory: str | os.PathLike, step: int | None = None) -> dict[str, Any]:
    """The ``metadata`` dict saved with checkpoint ``step`` (default: the latest). Raises
    `CheckpointError` if its ``meta.json`` is damaged (the arrays are not checked)."""
    return _read_meta(_step_dir(directory, step))["metadata"]


def restore(directory: str | os.PathLike, like: Any = None, step: int | None = None) -> Any:
    """Reads checkpoint ``step`` (default: the latest) of ``directory``.

    ``like`` gives the pytree structure, shapes and dtypes to restore into: a state of the
    same configuration, or its abstract version, e.g.
    ``jax.eval_shape(purea2c.init, jax.random.key(0), config)`` (for N vmapped seeds, the
    ``eval_shape`` of ``jax.vmap(purea2c.init, in_axes=(0, None))`` on N keys). Without
    ``like``, a nested dict of arrays keyed by the saved paths is returned (keys as raw data).

    Raises ``FileNotFoundError`` if there is no such checkpoint; `CheckpointError` if it is
    damaged or incomplete (a file missing, truncated or altered, a leaf's checksum wrong,
    unreadable ``meta.json``): nothing of it is returned; a plain ``ValueError`` naming the
    differing leaves if it is intact but does not match ``like``.
    """
    path = _step_dir(directory, step)
    meta = _read_meta(path)
    _check_files(path, meta)
    saved = {info["name"]: info for info in meta["leaves"]}
    if like is not None:
        _check_structure(path, saved, like)
    values = _read_arrays(path, meta)
    if like is None:
        return _nest(values)
    leaves = []
    for name, target in _flatten(like):
        value = jnp.asarray(values[name])
        leaves.append(jax.random.wrap_key_data(value, impl=saved[name]["key_impl"])
                      if _is_key(target) else value)
    return jax.tree.unflatten(jax.tree.structure(like), leaves)


def restore_latest_intact(directory: str | os.PathLike, like: Any = None
                          ) -> tuple[Any, int, list[tuple[int, str]]]:
    """``(state, step, skipped)``: the newest checkpoint of ``directory`` that restores
    intact, its step, and ``(step, reason)`` for each newer one that was damaged (newest
    first). ``FileNotFoundError`` if there is no checkpoint, `CheckpointError` (listing the
    faults) if none is intact; a ``like`` that does not match raises ``ValueError`` at once
    (a configuration error, not damage, so older checkpoints are not tried)."""
    directory = pathlib.Path(directory)
    # Every step directory orbax committed, also those without their meta.json (a save
    # killed after orbax's commit, or a deleted file), so that the report names them.
    steps = sorted(int(p.name) for p in directory.iterdir()
                   if p.name.isdigit() and p.is_dir()) if directory.is_dir() else []
    if not steps:
        raise FileNotFoundError(f"no checkpoint in {directory.absolute()}")
    skipped: list[tuple[int, str]] = []
    for step in reversed(steps):
        try:
            return restore(directory, like, step), step, skipped
        except CheckpointError as err:
            skipped.append((step, str(err)))
    raise CheckpointError(f"no intact checkpoint in {pathlib.Path(directory).absolute()}:\n  "
                          + "\n  ".join(reason for _, reason in skipped))


def _step_dir(directory: str | os.PathLike, step: int | None) -> pathlib.Path:
    directory = pathlib.Path(directory).absolute()  # orbax needs absolute paths
    if step is None:
        step = latest_step(directory)
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {directory}")
    path = directory / str(int(step))
    if not path.is_dir():
        raise FileNotFoundError(f"no checkpoint at step {step} in {directory}; "
                                f"steps: {all_steps(directory)}")
    return path


def _read_arrays(path: pathlib.Path, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    """Every leaf of the checkpoint as a numpy array (keys as raw data), each checked
    against its saved sha256."""
    import orbax.checkpoint as ocp

    infos = meta["leaves"]
    target = {info["name"]: np.empty(info["shape"], jnp.dtype(info["dtype"]))
              for info in infos if int(np.prod(info["shape"])) > 0}
    stored: dict[str, Any] = {}
    if target:
        manager = _manager(path.parent, read_only=True)
        try:
            restored = manager.restore(int(path.name), args=ocp.args.Composite(
                **{_STATE: ocp.args.StandardRestore(_nest(target))}))
            stored = _unnest(restored[_STATE])
        except Exception as err:  # orbax / tensorstore: many types, long messages
            # tensorstore's messages run to kilobytes of specs: keep the first clause
            first = (str(err).strip().splitlines() or [""])[0].split(" [tensorstore")[0]
            raise CheckpointError(f"checkpoint {path} is damaged: orbax could not read its "
                                  f"arrays ({type(err).__name__}: {first[:240]})") from err
        finally:
            manager.close()
    values = {}
    for info in infos:
        name = info["name"]
        value = (np.asarray(stored[name]) if name in target else
                 np.zeros(info["shape"], jnp.dtype(info["dtype"])))
        if (list(value.shape) != info["shape"] or str(value.dtype) != info["dtype"]
                or _sha256(value) != info["sha256"]):
            raise CheckpointError(f"checkpoint {path} is damaged: leaf {name} fails its "
                                  f"sha256 checksum (restored {value.dtype}"
                                  f"{list(value.shape)})")
        values[name] = value
    return values


def _recover(directory: pathlib.Path) -> None:
    """Puts back a checkpoint that an interrupted overwrite had moved aside, and deletes
    step directories that an interrupted save left without their ``meta.json`` and what an
    interrupted `prune` left (orbax's own temporaries are removed by the manager)."""
    for p in sorted(directory.iterdir()):
        if p.name.startswith(_REMOVED_PREFIX):
            shutil.rmtree(p, ignore_errors=True)
        elif p.name.startswith(_ASIDE_PREFIX):
            step = p.name[len(_ASIDE_PREFIX):].split("-")[0]
            if not (directory / step / _META).is_file() and (p / _META).is_file():
                shutil.rmtree(directory / step, ignore_errors=True)
                os.rename(p, directory / step)
            else:
                shutil.rmtree(p, ignore_errors=True)
        elif p.name.isdigit() and p.is_dir() and not (p / _META).exists():
            shutil.rmtree(p, ignore_errors=True)
