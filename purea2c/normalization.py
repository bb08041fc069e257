"""Running normalisation of observations and rewards (Stable-Baselines3's VecNormalize rules).

Observations. `Moments` holds the count, mean and M2 (sum of squared deviations from the
mean) of everything seen so far, per observation dimension. `update` merges a batch's
moments exactly (Chan, Golub & LeVeque's parallel formula), so updating with batches A then
B gives, up to rounding, the moments of A ++ B:

    n = n_a + n_b,   delta = mean_b - mean_a,
    mean = mean_a + delta * n_b / n,
    M2 = M2_a + M2_b + delta^2 * n_a * n_b / n.

`normalize` maps x to clip((x - mean) / sqrt(var + eps), -clip, +clip), var = M2 / n (the
population variance, as VecNormalize); before anything was seen (n = 0) it is the identity
up to the clip.

Across devices (one agent's envs split over a mesh axis), the batch moments combine by a
``psum`` of (count, sum, M2 about the global batch mean): with ``axis_name`` given,
`batch_moments` returns the moments of the union of every device's batch, identical on every
device, and the merge into the running moments is then the same on every device.

Rewards. Each env keeps its running discounted return ret <- gamma * ret + r (zeroed when
its episode ends); the returns of all envs update scalar `Moments` at every step, and the
reward is divided by sqrt(var(ret) + eps) and clipped, as VecNormalize does. Only the
rewards the learner sees are scaled; the episode returns reported stay raw.

Pure jax; every function works for one stream and batches with ``vmap``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

EPS = 1e-8  # VecNormalize's epsilon


class Moments(NamedTuple):
    """Running moments of a stream of arrays of one shape."""

    count: jax.Array  # float32 [], items seen
    mean: jax.Array  # float32 [*shape]
    m2: jax.Array  # float32 [*shape], sum of squared deviations from the mean


def init_moments(shape: tuple[int, ...]) -> Moments:
    """No items seen yet."""
    return Moments(jnp.zeros((), jnp.float32), jnp.zeros(shape, jnp.float32),
                   jnp.zeros(shape, jnp.float32))


def batch_moments(batch: jax.Array, event_ndim: int, axis_name: str | None = None) -> Moments:
    """The moments of ``batch [*batch_shape, *event_shape]`` over its leading axes (the last
    ``event_ndim`` axes are the item's). With ``axis_name``, of the union of the batches of
    every device along that mapped axis (a psum of count, sum and M2)."""
    batch = batch.astype(jnp.float32)
    axes = tuple(range(batch.ndim - event_ndim))
    count = jnp.asarray(float(math.prod(batch.shape[a] for a in axes)), jnp.float32)
    total = jnp.sum(batch, axis=axes)
    if axis_name is not None:
        count, total = jax.lax.psum((count, total), axis_name)
    mean = total / count
    m2 = jnp.sum(jnp.square(batch - _lead(mean, batch.ndim)), axis=axes)
    if axis_name is not None:
        m2 = jax.lax.psum(m2, axis_name)
    return Moments(count, mean, m2)


def merge(a: Moments, b: Moments) -> Moments:
    """The moments of the union of the items behind ``a`` and ``b`` (Chan et al.)."""
    count = a.count + b.count
    safe = jnp.maximum(count, 1.0)
    delta = b.mean - a.mean
    mean = a.mean + delta * (b.count / safe)
    m2 = a.m2 + b.m2 + jnp.square(delta) * (a.count * b.count / safe)
    return Moments(count, mean, m2)


def update(moments: Moments, batch: jax.Array, axis_name: str | None = None) -> Moments:
    """``moments`` merged with a batch ``[*batch_shape, *shape]`` of items of ``moments``'s
    shape."""
    return merge(moments, batch_moments(batch, moments.mean.ndim, axis_name))


def variance(moments: Moments) -> jax.Array:
    """The population variance M2 / n; 1 before any item was seen."""
    return jnp.where(moments.count > 0, moments.m2 / jnp.maximum(moments.count, 1.0), 1.0)


def normalize(moments: Moments, x: jax.Array, clip: jax.Array) -> jax.Array:
    """``clip((x - mean) / sqrt(var + eps), -clip, clip)`` for ``x [..., *shape]``."""
    x = x.astype(jnp.float32)
    z = (x - _lead(moments.mean, x.ndim)) / _lead(jnp.sqrt(variance(moments) + EPS), x.ndim)
    return jnp.clip(z, -clip, clip)


def _lead(a: jax.Array, ndim: int) -> jax.Array:
    """``a`` with leading unit axes up to rank ``ndim`` (explicit broadcasting)."""
    return a.reshape((1,) * (ndim - a.ndim) + a.shape)


class RewardNormState(NamedTuple):
    """VecNormalize's reward scaling state for ``num_envs`` envs."""

    returns: jax.Array  # float32 [num_envs], running discounted return of each env
    moments: Moments  # of the running returns (scalar items)


def init_reward_norm(num_envs: int) -> RewardNormState:
    return RewardNormState(jnp.zeros((num_envs,), jnp.float32), init_moments(()))


def normalize_reward(state: RewardNormState, reward: jax.Array, done: jax.Array,
                     gamma: jax.Array, clip: jax.Array,
                     axis_name: str | None = None) -> tuple[RewardNormState, jax.Array]:
    """One step of every env: ``reward, done [num_envs]`` -> (new state, scaled rewards).

    ret <- gamma * ret + r; the moments take in every env's ret; the reward becomes
    clip(r / sqrt(var(ret) + eps), -clip, clip); ret <- 0 where the episode ended."""
    returns = state.returns * gamma + reward
    moments = update(state.moments, returns, axis_name)
    scaled = jnp.clip(reward / jnp.sqrt(variance(moments) + EPS), -clip, clip)
    returns = jnp.where(done, 0.0, returns)
    return RewardNormState(returns, moments), scaled
