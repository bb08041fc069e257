"""JAX's persistent compilation cache, on by default: compiled programs kept on disk, so
that a second process running the same program skips most of its compile time.

``import purea2c`` turns it on (`use_default_compile_cache`) in `compile_cache_dir`, for
every program the process compiles, purea2c's and the caller's alike, unless

- ``PUREA2C_COMPILE_CACHE=0`` (or ``false``, ``no``, ``off``) is in the environment, or
- the user already chose a folder (``JAX_COMPILATION_CACHE_DIR`` or
  ``jax.config.update("jax_compilation_cache_dir", ...)``), which is kept.

``purea2c.enable_compile_cache(False)`` turns purea2c's cache off again, and
``purea2c.enable_compile_cache()`` on, at any time: a switch of the process, not of a
`Config`. The command line's ``--no-compile-cache`` is the same switch. The folder is not
bounded (JAX's default; a compiled training program is a few MB): delete it to reclaim the
space. JAX's size bound (``jax_compilation_cache_max_size``) is not set, because its
eviction fails on entries written without it, such as an earlier purea2c's.
"""

from __future__ import annotations

import os
import pathlib

import jax
from jax.experimental.compilation_cache import compilation_cache

ENV_SWITCH = "PUREA2C_COMPILE_CACHE"
_OFF = {"0", "false", "no", "off"}
_ours: str | None = None  # the folder purea2c set, if it set one


def compile_cache_dir() -> pathlib.Path:
    """Where purea2c keeps compiled programs: ``$PUREA2C_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/purea2c/jax`` (default ``~/.cache/purea2c/jax``)."""
    if os.environ.get("PUREA2C_CACHE_DIR"):
        return pathlib.Path(os.environ["PUREA2C_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "purea2c" / "jax"


def _writable(directory: pathlib.Path) -> bool:
    """Whether ``directory`` exists writable or could be made (its nearest existing parent
    is writable). JAX makes the folder at its first compilation, not here."""
    path = directory
    while not path.exists():
        if path.parent == path:
            return False
        path = path.parent
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def _set_dir(path: str | None) -> None:
    jax.config.update("jax_compilation_cache_dir", path)
    # A process that compiled before this point decided then that it had no cache; forget
    # that decision, so the folder is used from the next compilation on.
    compilation_cache.reset_cache()


def enable_compile_cache(enabled: bool = True) -> pathlib.Path | None:
    """Turns purea2c's persistent compilation cache on (default) or off for this process;
    returns the folder in use, or ``None`` when none is.

    On: every program compiled from now on is stored in and read from `compile_cache_dir`,
    whatever its compile time or size (JAX's own thresholds would skip purea2c's small
    programs). A folder the user set (``JAX_COMPILATION_CACHE_DIR``) is kept as it is.
    Off: the folder purea2c set is unset; a user's own folder is left alone. An unwritable
    folder means no cache; compiling still works."""
    global _ours
    current = jax.config.jax_compilation_cache_dir
    user_set = bool(current) and current != _ours
    if not enabled:
        if current and not user_set:
            _set_dir(None)
        _ours = None
        return pathlib.Path(current) if user_set else None
    if user_set:
        return pathlib.Path(current)
    directory = compile_cache_dir()
    if not _writable(directory):
        return None
    if current != str(directory):
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
        _ours = str(directory)
        _set_dir(_ours)
    return directory


def default_enabled() -> bool:
    """Whether the environment leaves the default cache on (``$PUREA2C_COMPILE_CACHE``)."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in _OFF


def use_default_compile_cache() -> pathlib.Path | None:
    """What ``import purea2c`` does: `enable_compile_cache` unless the environment says
    ``PUREA2C_COMPILE_CACHE=0``."""
    return enable_compile_cache() if default_enabled() else None
