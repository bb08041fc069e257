"""Vectorised gymnax stepping with auto-reset and episode statistics.

gymnax 1.x ``step`` already resets a finished environment inside the call and returns
``terminated``, ``truncated`` and ``info["final_observation"]`` (the observation that ended the
episode). This module steps ``num_envs`` copies with ``vmap`` and keeps those three apart:

- ``terminated``: the episode reached a terminal state; nothing is bootstrapped after it.
- ``truncated``: the time limit cut the episode; the return bootstraps from
  ``final_obs``. A step that is both terminated and truncated counts as terminated only.
- ``next_obs``: the observation the agent acts on next (the reset observation after an end).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class EpisodeStats(NamedTuple):
    """Running statistics of the current episode of each env, ``[num_envs]``."""

    episode_return: jax.Array  # float32, undiscounted return so far
    episode_length: jax.Array  # int32, steps so far


class VecEnvState(NamedTuple):
    """State of ``num_envs`` environments: gymnax state, current observation, statistics."""

    env_state: Any  # gymnax EnvState pytree, leaves [num_envs, ...]
    obs: jax.Array  # [num_envs, *obs_shape] float32, the observation to act on
    stats: EpisodeStats


class StepResult(NamedTuple):
    """What one vectorised step returns, all ``[num_envs, ...]``."""

    next_obs: jax.Array  # float32, observation to act on next (after auto-reset)
    reward: jax.Array  # float32
    terminated: jax.Array  # bool
    truncated: jax.Array  # bool, False where terminated
    final_obs: jax.Array  # float32, the observation the step reached (before any reset)
    episode_done: jax.Array  # bool, terminated | truncated
    episode_return: jax.Array  # float32, return of the episode that ended here (0 elsewhere)
    episode_length: jax.Array  # int32, length of the episode that ended here (0 elsewhere)


def make_env(env: Any) -> tuple[Any, Any]:
    """Returns ``(env, env_params)`` for a registered gymnax name or a gymnax-API object."""
    if isinstance(env, str):
        import gymnax

        return gymnax.make(env)
    return env, env.default_params


class ActionSpec(NamedTuple):
    """What the policy head must produce (static, numpy-valued)."""

    discrete: bool
    num_actions: int  # discrete: number of actions; Box: d, the action dimension
    low: np.ndarray | None  # Box: lower bounds [d] (None when discrete)
    high: np.ndarray | None  # Box: upper bounds [d]


def action_spec(env: Any, env_params: Any) -> ActionSpec:
    """The action space as an `ActionSpec`; raises ValueError for other space types."""
    with jax.ensure_compile_time_eval():  # the bounds are constants, even inside jit
        space = env.action_space(env_params)
        return _action_spec(space)


def _action_spec(space: Any) -> ActionSpec:
    from gymnax.environments import spaces

    if isinstance(space, spaces.Discrete):
        return ActionSpec(True, int(space.n), None, None)
    if isinstance(space, spaces.Box):
        shape = tuple(space.shape)
        if len(shape) != 1:
            raise ValueError(f"Box action spaces of shape (d,) are supported; got {shape}")
        low = np.broadcast_to(np.asarray(space.low, np.float32), shape).copy()
        high = np.broadcast_to(np.asarray(space.high, np.float32), shape).copy()
        return ActionSpec(False, shape[0], low, high)
    raise ValueError(f"action space {space!r} is neither Discrete nor Box")


def num_actions(env: Any, env_params: Any) -> int:
    return action_spec(env, env_params).num_actions


def obs_shape(env: Any, env_params: Any) -> tuple[int, ...]:
    return tuple(env.observation_space(env_params).shape)


def obs_bounds(env: Any, env_params: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` of the observation space, as numpy arrays of its shape."""
    with jax.ensure_compile_time_eval():  # the bounds are constants, even inside jit
        space = env.observation_space(env_params)
        shape = tuple(space.shape)
        return (np.broadcast_to(np.asarray(space.low, np.float64), shape),
                np.broadcast_to(np.asarray(space.high, np.float64), shape))


def env_action(spec: ActionSpec, action: jax.Array) -> jax.Array:
    """The action handed to the environment: Box actions clipped to the bounds."""
    if spec.discrete:
        return action
    low = jnp.broadcast_to(spec.low, action.shape)
    high = jnp.broadcast_to(spec.high, action.shape)
    return jnp.clip(action, low, high)


def reset(key: jax.Array, env: Any, env_params: Any, num_envs: int) -> VecEnvState:
    """Resets ``num_envs`` environments with independent keys."""
    keys = jax.random.split(key, num_envs)
    obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(keys, env_params)
    stats = EpisodeStats(
        episode_return=jnp.zeros((num_envs,), jnp.float32),
        episode_length=jnp.zeros((num_envs,), jnp.int32),
    )
    return VecEnvState(env_state, obs.astype(jnp.float32), stats)


def step(
    key: jax.Array, env: Any, env_params: Any, state: VecEnvState, action: jax.Array
) -> tuple[VecEnvState, StepResult]:
    """Steps every environment once with ``action[i]``; finished ones reset in the same call."""
    num_envs = state.obs.shape[0]
    keys = jax.random.split(key, num_envs)
    next_obs, env_state, reward, terminated, truncated, info = jax.vmap(
        env.step, in_axes=(0, 0, 0, None)
    )(keys, state.env_state, action, env_params)
    reward = reward.astype(jnp.float32)
    terminated = terminated.astype(bool)
    truncated = jnp.logical_and(truncated.astype(bool), jnp.logical_not(terminated))
    done = jnp.logical_or(terminated, truncated)

    ep_return = state.stats.episode_return + reward
    ep_length = state.stats.episode_length + 1
    stats = EpisodeStats(
        episode_return=jnp.where(done, 0.0, ep_return),
        episode_length=jnp.where(done, 0, ep_length),
    )
    result = StepResult(
        next_obs=next_obs.astype(jnp.float32),
        reward=reward,
        terminated=terminated,
        truncated=truncated,
        final_obs=info["final_observation"].astype(jnp.float32),
        episode_done=done,
        episode_return=jnp.where(done, ep_return, 0.0),
        episode_length=jnp.where(done, ep_length, 0),
    )
    return VecEnvState(env_state, result.next_obs, stats), result
