"""Shared by the test modules (``from helpers import ...``; pyproject puts tests/ on the path).

Tree equality, in two strengths:

- by value (default): the same tree structure, and every leaf ``np.array_equal`` to its
  counterpart (same shape, equal values, NaN equal to NaN; key arrays by their key data);
- ``bitwise=True``: the same structure, and every leaf the same dtype, shape and bytes (key
  arrays: the same implementation and key data), as a saved and restored state must be.

And the requirements of pyproject.toml with the versions installed (tests/test_versions.py,
and the header of every test run).
"""

from __future__ import annotations

import platform
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
import numpy as np
from packaging.requirements import Requirement


def _is_key(x: Any) -> bool:
    return jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)


def leaf_bits(x: Any) -> tuple:
    """dtype, shape and raw bytes of an array (a key array: its implementation and the bits
    of its key data)."""
    if _is_key(x):
        return ("key", str(jax.random.key_impl(x)), leaf_bits(jax.random.key_data(x)))
    x = np.asarray(x)
    return (str(x.dtype), x.shape, x.tobytes())


def _values(x: Any) -> np.ndarray:
    return np.asarray(jax.random.key_data(x) if _is_key(x) else x)


def tree_difference(a: Any, b: Any, *, bitwise: bool = False) -> str | None:
    """None when ``a`` and ``b`` are equal trees (see the module docstring), else what differs
    first: the structures, or the path of the first unequal leaf."""
    if jax.tree.structure(a) != jax.tree.structure(b):
        return f"tree structures differ: {jax.tree.structure(a)} != {jax.tree.structure(b)}"
    for (path, x), y in zip(jax.tree_util.tree_flatten_with_path(a)[0], jax.tree.leaves(b)):
        if bitwise:
            equal = leaf_bits(x) == leaf_bits(y)
        else:
            equal = _is_key(x) == _is_key(y) and np.array_equal(_values(x), _values(y),
                                                                 equal_nan=True)
        if not equal:
            return f"leaf {jax.tree_util.keystr(path) or '(root)'} differs"
    return None


def trees_equal(a: Any, b: Any, *, bitwise: bool = False) -> bool:
    """Whether ``a`` and ``b`` have the same structure and equal leaves."""
    return tree_difference(a, b, bitwise=bitwise) is None


def assert_trees_equal(a: Any, b: Any, *, bitwise: bool = False) -> None:
    """Raises an AssertionError naming the first difference between ``a`` and ``b``."""
    difference = tree_difference(a, b, bitwise=bitwise)
    assert difference is None, difference


# ------------------------------------------------------------------------------------------
# Versions: pyproject's requirements and what is installed
# ------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def pyproject_requirements(extras: tuple[str, ...] = ("test",)) -> list[Requirement]:
    """pyproject.toml's dependencies and those of ``extras``, whose markers hold here."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [*project["dependencies"],
             *(line for extra in extras for line in project["optional-dependencies"][extra])]
    return [req for req in map(Requirement, lines)
            if req.marker is None or req.marker.evaluate({"extra": ""})]


def installed_versions(requirements: list[Requirement],
                       also: tuple[str, ...] = ("jaxlib", "numpy")) -> dict[str, str | None]:
    """Python's version and the installed version of each requirement and of ``also``
    (None: not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in [req.name for req in requirements] + list(also):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
