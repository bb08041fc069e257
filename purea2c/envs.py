"""Vectorised gymnax stepping with auto-reset and episode statistics.

gymnax 1.x ``step`` already resets a finished environment inside the call and returns
``terminated``, ``truncated`` and ``info["final_observation"]`` (the observation that ended the
episode). This module steps ``num_envs`` copies with ``vmap`` and keeps those three apart:

- ``terminated``: the episode reached a terminal state; nothing is bootstrapped after it.
- ``truncated``: the time limit cut the episode; the return bootstraps from
  ``final_obs``. A step that is both terminated and truncated counts as terminated only.
- ``next_obs``: the observation the agent acts on next (the reset observation after an end).

The randomness a step consumes (the env's own transition key and the fresh episode it resets
to) can be drawn ahead for many steps at once (`draw_step_noise`, leaves ``[steps, envs]``)
and handed to `step_with`. gymnax's ``step`` draws a key split and a reset inside every call;
on CPU each draw is a small loop of kernels, so training draws a whole rollout's worth in
one call instead. Given the same keys, `step_with` makes the same transitions, resets and
flags as gymnax's ``step`` (``tests/test_envs.py`` checks it against gymnax; floats agree up
to the rounding of two differently compiled programs).
"""

from __future__ import annotations

import functools
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


class StepNoise(NamedTuple):
    """The randomness of one vectorised step, drawn ahead (leaves ``[num_envs, ...]``, or
    ``[num_steps, num_envs, ...]`` from `draw_step_noise` with ``num_steps``)."""

    key: jax.Array  # keys of the envs' own transitions (gymnax's step_env)
    reset_obs: Any  # observation of the fresh episode an env resets to if this step ends one
    reset_state: Any  # its gymnax state; None (and reset_obs None) for envs with their own step


def _decomposable(env: Any) -> bool:
    """True when ``env.step`` is gymnax's own (step_env, then an auto-reset), so the reset
    can be drawn ahead; an env or wrapper with its own ``step`` is called as it is."""
    from gymnax.environments.environment import Environment

    return isinstance(env, Environment) and type(env).step is Environment.step


def step_noise_from_keys(keys: jax.Array, env: Any, env_params: Any) -> StepNoise:
    """The noise gymnax's ``step(keys[i], ...)`` would draw, for keys of any batch shape:
    each key splits into (transition key, reset key), as gymnax does."""
    if not jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):  # raw uint32 keys [..., 2]
        keys = jax.random.wrap_key_data(keys)
    if not _decomposable(env):
        return StepNoise(keys, None, None)
    pairs = jax.vmap(jax.random.split)(keys.reshape(-1))  # [K, 2]
    obs, state = jax.vmap(env.reset_env, in_axes=(0, None))(pairs[:, 1], env_params)
    unflat = functools.partial(jax.tree.map, lambda x: x.reshape(*keys.shape, *x.shape[1:]))
    return StepNoise(pairs[:, 0].reshape(keys.shape), unflat(obs), unflat(state))


def draw_step_noise(key: jax.Array, env: Any, env_params: Any, num_envs: int,
                    num_steps: int | None = None) -> StepNoise:
    """Independent noise for ``num_envs`` envs (and ``num_steps`` steps, a leading axis),
    drawn in one call."""
    shape = (num_envs,) if num_steps is None else (num_steps, num_envs)
    return step_noise_from_keys(jax.random.split(key, shape), env, env_params)


def _select(done: jax.Array, on_done: Any, otherwise: Any) -> Any:
    """Per env (leading axis): ``on_done`` where ``done``, else ``otherwise``."""
    def pick(a, b):
        return jnp.where(done.reshape(done.shape + (1,) * (b.ndim - done.ndim)), a, b)

    return jax.tree.map(pick, on_done, otherwise)


def step(
    key: jax.Array, env: Any, env_params: Any, state: VecEnvState, action: jax.Array
) -> tuple[VecEnvState, StepResult]:
    """Steps every environment once with ``action[i]``; finished ones reset in the same call."""
    noise = draw_step_noise(key, env, env_params, state.obs.shape[0])
    return step_with(noise, env, env_params, state, action)


def step_with(
    noise: StepNoise, env: Any, env_params: Any, state: VecEnvState, action: jax.Array
) -> tuple[VecEnvState, StepResult]:
    """`step` with its randomness given: ``noise`` from `draw_step_noise` (one step's slice)
    or `step_noise_from_keys`."""
    if noise.reset_state is None:
        next_obs, env_state, reward, terminated, truncated, info = jax.vmap(
            env.step, in_axes=(0, 0, 0, None)
        )(noise.key, state.env_state, action, env_params)
        final_obs = info["final_observation"]
    else:
        final_obs, stepped, reward, terminated, _ = jax.vmap(
            env.step_env, in_axes=(0, 0, 0, None)
        )(noise.key, state.env_state, action, env_params)
        truncated = jax.vmap(env.is_truncated, in_axes=(0, None))(stepped, env_params)
        ended = jnp.logical_or(terminated, truncated)
        env_state = _select(ended, noise.reset_state, stepped)
        next_obs = _select(ended, noise.reset_obs, final_obs)
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
        final_obs=final_obs.astype(jnp.float32),
        episode_done=done,
        episode_return=jnp.where(done, ep_return, 0.0),
        episode_length=jnp.where(done, ep_length, 0),
    )
    return VecEnvState(env_state, result.next_obs, stats), result
