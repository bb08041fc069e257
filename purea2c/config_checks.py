"""The checks behind `Config`'s rules: each raises ``ValueError`` naming the field, the
value and the rule (`fail`). Integers and their int32 bound (`check_int`), concrete numbers
(`check_float`; traced values and the placeholders JAX builds while flattening pass),
choices, ``env_kwargs`` as sorted pairs (`kwargs_pairs`), the environment against the
static fields (`check_env`), and the memory a run needs against the machine's
(`memory_estimate`, `check_memory`). Which field obeys which rule is `purea2c.config`'s
``_validate``, beside the fields.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from typing import Any, NoReturn

import jax
import numpy as np

# The program counts env steps, iterations and updates in int32.
INT32_MAX = 2**31 - 1


def _concrete(value: Any) -> np.ndarray | None:
    """The value as a numpy array if it is a concrete number (or array of them), else None."""
    if isinstance(value, jax.core.Tracer):
        return None
    if isinstance(value, (numbers.Number, np.ndarray, np.generic, jax.Array)):
        try:
            return np.asarray(value)
        except Exception:  # pragma: no cover - e.g. deleted buffers
            return None
    return None


def traced_fields(cls: type) -> list[str]:
    """The traced (pytree leaf) fields of the dataclass ``cls``."""
    return [f.name for f in dataclasses.fields(cls) if f.metadata.get("pytree_node", True)]


def is_placeholder(cfg: Any) -> bool:
    """Whether ``cfg`` is a structure JAX builds while flattening (its traced leaves are all
    sentinels or None, none a number or a tracer), not a user's config."""
    return not any(isinstance(getattr(cfg, name), (numbers.Number, np.ndarray, np.generic,
                                                   jax.Array, jax.core.Tracer))
                   for name in traced_fields(type(cfg)))


def fail(field: str, value: Any, rule: str) -> NoReturn:
    raise ValueError(f"Config.{field}={value!r} is invalid: {rule}")


def check_int(cfg: Any, field: str, minimum: int, maximum: int = INT32_MAX) -> None:
    value = getattr(cfg, field)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        fail(field, value, f"must be a Python int >= {minimum}")
    if value < minimum:
        fail(field, value, f"must be >= {minimum}")
    if value > maximum:
        fail(field, value, f"must be <= {maximum:,} (the program counts in int32)")


def check_float(cfg: Any, field: str, rule: str, ok) -> None:
    value = getattr(cfg, field)
    arr = _concrete(value)
    if arr is None:
        # A tracer, or a placeholder the pytree machinery builds while flattening (then no
        # traced field holds a number: see is_placeholder).
        if isinstance(value, (str, bool, tuple, list, dict)) or (
                not isinstance(value, jax.core.Tracer) and not is_placeholder(cfg)):
            fail(field, value, "must be a number")
        return
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        fail(field, value, "must be a real number")
    if not (np.all(np.isfinite(arr)) and np.all(ok(arr))):
        fail(field, value, rule)


def check_choice(cfg: Any, field: str, choices: tuple) -> None:
    value = getattr(cfg, field)
    if value not in choices:
        fail(field, value, f"must be one of {choices}")


def kwargs_pairs(kwargs: Any) -> tuple[tuple[str, Any], ...]:
    """``env_kwargs`` as sorted ``(name, value)`` pairs (hashable, so the config stays a
    static pytree), from a dict or a list of pairs (as config.json holds them)."""
    try:
        pairs = dict(kwargs).items()
    except (TypeError, ValueError):
        fail("env_kwargs", kwargs, "must be a dict of keyword arguments (or (name, value) "
                                   "pairs)")
    if not isinstance(kwargs, dict):  # pairs: a keyword given twice would silently drop one
        names = [pair[0] for pair in kwargs]
        twice = sorted({str(n) for n in names if names.count(n) > 1})
        if twice:
            fail("env_kwargs", kwargs, f"keyword {', '.join(map(repr, twice))} is given more "
                                       "than once")
    out = []
    for name, value in sorted(pairs, key=lambda p: str(p[0])):
        if not isinstance(name, str) or not name.isidentifier():
            fail("env_kwargs", kwargs, f"keyword {name!r} is not a Python identifier")
        if isinstance(value, list):
            value = tuple(value)
        try:
            hash(value)
        except TypeError:
            fail("env_kwargs", kwargs, f"the value of {name!r} must be hashable "
                                       "(a number, string, bool, None or tuple)")
        out.append((name, value))
    return tuple(out)


def env_shapes(cfg: Any) -> tuple[tuple[int, ...], int]:
    """``(observation shape, number of actions or action dimension)`` of a config's env
    (a pytree observation counts as one vector of all its elements)."""
    env = _make_env(cfg)
    leaves = jax.tree.leaves(env.observation_spec)
    shape = tuple(leaves[0].shape) if len(leaves) == 1 else (sum(x.size for x in leaves),)
    return shape, env.action_spec.num_actions


def _make_env(cfg: Any) -> Any:
    from purea2c import envs

    try:
        return envs.make(cfg.env, **dict(cfg.env_kwargs))
    except envs.EnvError as err:
        fail("env", cfg.env, str(err))


def memory_estimate(cfg: Any, obs_shape: tuple[int, ...], num_actions: int) -> int:
    obs = math.prod(obs_shape)
    features = obs
    params = 0
    activations = 0  # floats of one sample's forward pass through one network
    if (cfg.torso == "cnn") or (cfg.torso == "auto" and len(obs_shape) == 3):
        channels = obs_shape[2] if len(obs_shape) == 3 else 1
        pixels = obs // channels
        for out in cfg.cnn_channels:
            params += cfg.cnn_kernel_size ** 2 * channels * out + out
            activations += pixels * (cfg.cnn_kernel_size ** 2 * channels + out)
            channels = out
        features = pixels * channels
    for width in cfg.hidden_sizes:
        params += features * width + width
        activations += width
        features = width
    params += features * (num_actions + 1) + num_actions + 1  # both heads
    params *= 2  # pi and v
    floats = (
        5 * params  # parameters, gradients, two optimizer moments, target copy
        + cfg.buffer_capacity * (2 * obs + num_actions + 3)
        + cfg.num_envs * (cfg.n_step + 2) * (obs + num_actions + 4)
        + cfg.rollout_length * cfg.num_envs * (2 * obs + num_actions)
        + 2 * 3 * cfg.batch_size * (activations + obs)  # forward and backward, pi and v
    )
    return 4 * floats


def machine_memory() -> int | None:
    """Physical memory of this machine in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return None


def _check_memory(cfg: Any, num_seeds: int = 1) -> None:
    total = machine_memory()
    if total is None:
        return
    estimate = cfg.memory_estimate(num_seeds)
    if estimate > total:
        fail("hidden_sizes" if _params_dominate(cfg) else "buffer_capacity",
             cfg.hidden_sizes if _params_dominate(cfg) else cfg.buffer_capacity,
             f"the training program would need at least {estimate / 2**30:,.1f} GiB "
             f"({num_seeds} seed{'s' * (num_seeds > 1)}); this machine has "
             f"{total / 2**30:,.1f} GiB")


def _params_dominate(cfg: Any) -> bool:
    widths = (*cfg.hidden_sizes, *cfg.cnn_channels)
    return max(widths, default=0) ** 2 > cfg.buffer_capacity


def check_memory(cfg: Any, num_seeds: int) -> None:
    """Raises ``ValueError`` when ``num_seeds`` vmapped seeds of ``cfg`` cannot fit in this
    machine's memory (see `Config.memory_estimate`)."""
    _check_memory(cfg, num_seeds)


def check_env(cfg: Any) -> None:
    """The env can be made and its spaces suit the static fields (see `purea2c.envs`)."""
    from purea2c import envs

    env = _make_env(cfg)
    label = cfg.env if isinstance(cfg.env, str) else repr(cfg.env)
    spec = env.action_spec
    if cfg.exploration == "gsde" and spec.discrete:
        fail("exploration", cfg.exploration,
             f"'gsde' needs Box actions; {label} has discrete ones")
    obs_spec, mask = envs.split_mask(env.observation_spec)
    if mask is not None and not spec.discrete:
        fail("env", label, "an action mask needs discrete actions")
    leaves = jax.tree.leaves(obs_spec)
    if not leaves:
        fail("env", label, "its observation has no arrays")
    array_obs = isinstance(obs_spec, envs.ArraySpec)
    for field in ("normalize_obs", "scale_obs"):
        if getattr(cfg, field) and not array_obs:
            fail(field, True, f"needs an array observation; {label}'s is a pytree "
                              f"({sorted(obs_spec) if isinstance(obs_spec, dict) else obs_spec})")
    if cfg.torso == "cnn" and not any(len(x.shape) in (2, 3) for x in leaves):
        fail("torso", cfg.torso, f"'cnn' needs observations of shape (H, W) or (H, W, C); "
                                 f"{label} has "
                                 f"{', '.join(str(tuple(x.shape)) for x in leaves)}")
