"""``num_envs`` copies of an environment stepped with ``vmap``, with purea2c's auto-reset and
episode statistics, the same for every suite.

An adapter's ``step`` never resets (`purea2c.envs.core`). Here, an env whose step ended an
episode (terminated or truncated) continues from a fresh episode in the same call, and the
three things the learner needs stay apart:

- ``terminated``: the episode reached a terminal state; nothing is bootstrapped after it.
- ``truncated``: the time limit cut the episode; the return bootstraps from ``final_obs``.
- ``next_obs``: the observation the agent acts on next (the reset observation after an end).

The randomness a step consumes (the env's own transition key and the fresh episode it resets
to) can be drawn ahead for many steps at once (`draw_step_noise`, leaves
``[steps, envs]``) and handed to `step_with`: one vmapped ``reset`` per rollout instead of
one per step. Each step key splits into (transition key, reset key), as gymnax's own
``step`` splits it, so on gymnax the transitions, resets and flags are exactly gymnax's
(``tests/test_envs.py``).

A reset can cost far more than a step (Craftax generates a world: about 15 steps' worth), and
drawing one fresh episode per (step, env) then dominates the run. ``resets_per_step`` R below
``num_envs`` draws only R fresh episodes per step: the envs that end an episode at a step take
them in env order (the k-th ending env the k-th fresh episode, modulo R), so every env gets a
fresh episode of its own unless more than R envs end at the same step, when the extra ones
start from the same state as another (their later transitions differ: their keys do). The
default (R = ``num_envs``) is exact, and on gymnax bitwise gymnax's.

Observations are pytrees; every leaf is carried as float32 (a bool action mask stays bool).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from purea2c.envs.core import as_float


class EpisodeStats(NamedTuple):
    """Running statistics of the current episode of each env, ``[num_envs]``."""

    episode_return: jax.Array  # float32, undiscounted return so far
    episode_length: jax.Array  # int32, steps so far


class VecEnvState(NamedTuple):
    """State of ``num_envs`` environments: env state, current observation, statistics."""

    env_state: Any  # the adapter's state pytree, leaves [num_envs, ...]
    obs: Any  # observation pytree, leaves [num_envs, ...] (float32): what is acted on
    stats: EpisodeStats


class StepResult(NamedTuple):
    """What one vectorised step returns, all ``[num_envs, ...]``."""

    next_obs: Any  # float32, observation to act on next (after auto-reset)
    reward: jax.Array  # float32
    terminated: jax.Array  # bool
    truncated: jax.Array  # bool, False where terminated
    final_obs: Any  # float32, the observation the step reached (before any reset)
    episode_done: jax.Array  # bool, terminated | truncated
    episode_return: jax.Array  # float32, return of the episode that ended here (0 elsewhere)
    episode_length: jax.Array  # int32, length of the episode that ended here (0 elsewhere)


class StepNoise(NamedTuple):
    """The randomness of one vectorised step, drawn ahead (leaves ``[num_envs, ...]``, or
    ``[num_steps, num_envs, ...]`` from `draw_step_noise` with ``num_steps``)."""

    key: jax.Array  # keys of the envs' own transitions
    reset_obs: Any  # observation of the fresh episode an env resets to if this step ends one
    #                 (leading axis num_envs, or R with ``resets_per_step`` R: a shared pool)
    reset_state: Any  # its state


def reset(key: jax.Array, env: Any, num_envs: int) -> VecEnvState:
    """Resets ``num_envs`` environments with independent keys."""
    keys = jax.random.split(key, num_envs)
    obs, env_state = jax.vmap(env.reset)(keys)
    stats = EpisodeStats(
        episode_return=jnp.zeros((num_envs,), jnp.float32),
        episode_length=jnp.zeros((num_envs,), jnp.int32),
    )
    return VecEnvState(env_state, as_float(obs), stats)


def step_noise_from_keys(keys: jax.Array, env: Any,
                         resets_per_step: int | None = None) -> StepNoise:
    """The noise of steps with keys ``keys`` (any batch shape ``[..., num_envs]``): each key
    splits into (transition key, reset key), as gymnax's ``step`` splits it. With
    ``resets_per_step`` R below ``num_envs``, only the first R reset keys of each step are
    used: the fresh episodes are ``[..., R]``."""
    if not jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):  # raw uint32 keys [..., 2]
        keys = jax.random.wrap_key_data(keys)
    pairs = jax.vmap(jax.random.split)(keys.reshape(-1)).reshape(*keys.shape, 2)
    reset_keys = pairs[..., 1]
    if resets_per_step is not None and keys.ndim and resets_per_step < keys.shape[-1]:
        if resets_per_step < 1:
            raise ValueError(f"resets_per_step must be >= 1, got {resets_per_step}")
        reset_keys = reset_keys[..., :resets_per_step]
    obs, state = jax.vmap(env.reset)(reset_keys.reshape(-1))
    unflat = functools.partial(jax.tree.map,
                               lambda x: x.reshape(*reset_keys.shape, *x.shape[1:]))
    return StepNoise(pairs[..., 0], unflat(obs), unflat(state))


def draw_step_noise(key: jax.Array, env: Any, num_envs: int, num_steps: int | None = None,
                    resets_per_step: int | None = None) -> StepNoise:
    """Independent noise for ``num_envs`` envs (and ``num_steps`` steps, a leading axis),
    drawn in one call; ``resets_per_step`` (default ``num_envs``): fresh episodes per step,
    see the module's docstring."""
    shape = (num_envs,) if num_steps is None else (num_steps, num_envs)
    return step_noise_from_keys(jax.random.split(key, shape), env, resets_per_step)


def _select(done: jax.Array, on_done: Any, otherwise: Any) -> Any:
    """Per env (leading axis): ``on_done`` where ``done``, else ``otherwise``."""
    def pick(a, b):
        return jnp.where(done.reshape(done.shape + (1,) * (b.ndim - done.ndim)), a, b)

    return jax.tree.map(pick, on_done, otherwise)


def step(key: jax.Array, env: Any, state: VecEnvState,
         action: jax.Array) -> tuple[VecEnvState, StepResult]:
    """Steps every environment once with ``action[i]``; finished ones reset in the same call."""
    noise = draw_step_noise(key, env, state.stats.episode_length.shape[0])
    return step_with(noise, env, state, action)


def step_with(noise: StepNoise, env: Any, state: VecEnvState,
              action: jax.Array) -> tuple[VecEnvState, StepResult]:
    """`step` with its randomness given: ``noise`` from `draw_step_noise` (one step's slice)
    or `step_noise_from_keys`."""
    out = jax.vmap(env.step)(noise.key, state.env_state, action)
    reward = out.reward.astype(jnp.float32)
    terminated = out.terminated.astype(bool)
    truncated = jnp.logical_and(out.truncated.astype(bool), jnp.logical_not(terminated))
    done = jnp.logical_or(terminated, truncated)
    final_obs = as_float(out.obs)
    reset_state, reset_obs = noise.reset_state, as_float(noise.reset_obs)
    pool = jax.tree.leaves(reset_obs)[0].shape[0]
    if pool != done.shape[0]:  # a shared pool: the k-th env that ends takes fresh episode k
        slot = jnp.mod(jnp.cumsum(done.astype(jnp.int32)) - 1, pool)
        reset_state, reset_obs = jax.tree.map(lambda x: x[slot], (reset_state, reset_obs))
    env_state = _select(done, reset_state, out.state)
    next_obs = _select(done, reset_obs, final_obs)

    ep_return = state.stats.episode_return + reward
    ep_length = state.stats.episode_length + 1
    stats = EpisodeStats(
        episode_return=jnp.where(done, 0.0, ep_return),
        episode_length=jnp.where(done, 0, ep_length),
    )
    result = StepResult(
        next_obs=next_obs,
        reward=reward,
        terminated=terminated,
        truncated=truncated,
        final_obs=final_obs,
        episode_done=done,
        episode_return=jnp.where(done, ep_return, 0.0),
        episode_length=jnp.where(done, ep_length, 0),
    )
    return VecEnvState(env_state, next_obs, stats), result
