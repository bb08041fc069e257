"""The JSON files of a run (config.json, run.json, evaluation.json): strict JSON, where
non-finite floats are ``null``, written atomically (`purea2c.atomic`)."""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any

import jax
import numpy as np

from purea2c.atomic import write_atomically
from purea2c.errors import RunError


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
    """Writes ``data`` as strict JSON (NaN and inf as null), atomically (`write_atomically`:
    readers see the old file or the new one)."""
    write_atomically(path, json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n")


def read_json(path: pathlib.Path) -> Any:
    """The parsed file; `RunError` naming it when it cannot be read or parsed."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise RunError(f"cannot read {path}: {' '.join(str(e).split())}") from e
