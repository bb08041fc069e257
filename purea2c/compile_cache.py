"""The command line's persistent compilation cache: compiled programs kept on disk, so that
a second run of the same program skips most of its compile time (``--no-compile-cache``
turns it off)."""

from __future__ import annotations

import os
import pathlib

import jax


def compile_cache_dir() -> pathlib.Path:
    """Where the command line keeps compiled programs: ``$PUREA2C_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/purea2c/jax`` (default ``~/.cache/purea2c/jax``)."""
    if os.environ.get("PUREA2C_CACHE_DIR"):
        return pathlib.Path(os.environ["PUREA2C_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "purea2c" / "jax"


def enable_compile_cache() -> None:
    """JAX's persistent compilation cache in `compile_cache_dir`, for every program (the
    same as ``jax.config.update("jax_compilation_cache_dir", ...)`` in Python). A
    cache directory the user already set (``JAX_COMPILATION_CACHE_DIR``) is kept."""
    if jax.config.jax_compilation_cache_dir:
        return
    try:
        directory = compile_cache_dir()
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # no cache where none can be written; compiling still works
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
