"""The environment protocol: what the pipeline needs from any environment, of any suite.

An environment is one object (an adapter) with

- ``observation_spec``: a pytree of `ArraySpec` (one leaf per observation array);
- ``action_spec``: an `ActionSpec` (discrete, or a Box of shape ``(d,)`` with bounds);
- ``max_episode_steps``: int, the longest an episode can last (evaluation runs this long);
- ``reset(key) -> (obs, state)``: a fresh episode, pure;
- ``step(key, state, action) -> EnvStep``: one raw step, pure, **no auto-reset**.

An `EnvStep` keeps the two ends of an episode apart: ``terminated`` (a true end, nothing is
bootstrapped after it) and ``truncated`` (a time limit: the return bootstraps from
``obs``), booleans, never both true. ``obs`` is what the step reached, so at an end it is
the final observation, never the next episode's first. purea2c's own auto-reset
(`purea2c.envs.vector`) sits on top, the same for every suite.

Observations are arrays or pytrees of arrays. A dict observation may hold an
``"action_mask"`` leaf (bool ``[num_actions]``): the policy samples only allowed actions,
and the networks' torsos never see it (`split_mask`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

ACTION_MASK = "action_mask"


class EnvError(ValueError):
    """An environment id, keyword or object that purea2c cannot use; the message says why."""


class EnvStep(NamedTuple):
    """One raw step of one environment."""

    obs: Any  # pytree of arrays: the observation the step reached (the final one at an end)
    state: Any  # the environment's state after the step
    reward: jax.Array  # float32 []
    terminated: jax.Array  # bool [], a true end: no bootstrap
    truncated: jax.Array  # bool [], a time limit: bootstrap from obs; never with terminated


@dataclasses.dataclass(frozen=True)
class ArraySpec:
    """Shape, dtype and (optional) bounds of one observation array. Not a pytree node, so a
    pytree of specs has one `ArraySpec` per leaf."""

    shape: tuple[int, ...]
    dtype: Any
    low: np.ndarray | None = dataclasses.field(default=None, compare=False)
    high: np.ndarray | None = dataclasses.field(default=None, compare=False)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


class ActionSpec(NamedTuple):
    """What the policy head must produce (static, numpy-valued)."""

    discrete: bool
    num_actions: int  # discrete: number of actions; Box: d, the action dimension
    low: np.ndarray | None  # Box: lower bounds [d] (None when discrete)
    high: np.ndarray | None  # Box: upper bounds [d]


def box_spec(low: Any, high: Any, shape: tuple[int, ...]) -> ActionSpec:
    """A Box `ActionSpec` of shape ``(d,)``; raises ValueError for other shapes."""
    shape = tuple(int(d) for d in shape)
    if len(shape) != 1:
        raise ValueError(f"Box action spaces of shape (d,) are supported; got {shape}")
    low = np.broadcast_to(np.asarray(low, np.float32), shape).copy()
    high = np.broadcast_to(np.asarray(high, np.float32), shape).copy()
    return ActionSpec(False, shape[0], low, high)


@runtime_checkable
class Env(Protocol):
    """The protocol every adapter follows (see the module docstring)."""

    observation_spec: Any
    action_spec: ActionSpec
    max_episode_steps: int

    def reset(self, key: jax.Array) -> tuple[Any, Any]: ...

    def step(self, key: jax.Array, state: Any, action: jax.Array) -> EnvStep: ...


def env_action(spec: ActionSpec, action: jax.Array) -> jax.Array:
    """The action handed to the environment: Box actions clipped to the bounds."""
    if spec.discrete:
        return action
    low = jnp.broadcast_to(spec.low, action.shape)
    high = jnp.broadcast_to(spec.high, action.shape)
    return jnp.clip(action, low, high)


def split_mask(obs: Any) -> tuple[Any, jax.Array | None]:
    """``(what the torsos see, action mask or None)``: a dict observation's
    ``"action_mask"`` leaf is taken out; anything else passes whole."""
    if isinstance(obs, dict) and ACTION_MASK in obs:
        rest = {k: v for k, v in obs.items() if k != ACTION_MASK}
        return rest, obs[ACTION_MASK]
    return obs, None


def spec_of(value: Any) -> Any:
    """A pytree of `ArraySpec` with the shapes and dtypes of an observation pytree."""
    return jax.tree.map(lambda x: ArraySpec(tuple(x.shape), np.dtype(x.dtype)), value)


def as_float(obs: Any) -> Any:
    """The observation as the pipeline carries it: float32 leaves, except a bool action
    mask."""
    def cast(path, x):
        if path and getattr(path[-1], "key", None) == ACTION_MASK:
            return jnp.asarray(x, bool)
        return jnp.asarray(x, jnp.float32)

    return jax.tree_util.tree_map_with_path(cast, obs)
