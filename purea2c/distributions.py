"""Action distributions: sample, exact log-probability, entropy, mode.

Two families, each a NamedTuple of arrays (so a pytree, fine under ``jit``/``vmap``):

- `Categorical` (discrete actions): ``logits [..., A]``; actions ``int32 [...]``.
- `Gaussian` (Box actions of shape ``(d,)``): a diagonal Gaussian, ``mean`` and ``log_std``
  both ``[..., d]``; actions ``float32 [..., d]``. Log-probabilities and
  entropies sum over the action dimensions. The distribution is over the *unclipped* action:
  the environment receives the sample clipped to its bounds (`envs.env_action`), and the
  log-probability is that of the sample itself, so it is exact for what was drawn.

`sample`, `log_prob`, `entropy` and `mode` dispatch on the family (a Python-level choice, made
while tracing). Pure jax.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Union

import chex
import jax
import jax.numpy as jnp

_LOG_2PI = math.log(2.0 * math.pi)


class Categorical(NamedTuple):
    logits: jax.Array  # [..., A]


class Gaussian(NamedTuple):
    mean: jax.Array  # [..., d]
    log_std: jax.Array  # [..., d], or any shape that broadcasts to mean's


class StateDependentGaussian(NamedTuple):
    """gSDE's action distribution given a state (Raffin et al. 2021, generalized
    state-dependent exploration): the action is ``mean + features @ theta`` with
    ``theta [F, d] ~ N(0, exp(feature_log_std)^2)`` drawn per env and held for several steps.
    Given the state, each action dimension j is then Gaussian with variance
    ``sum_i features_i^2 exp(2 feature_log_std_ij)``, independent across j: ``log_std`` holds
    that marginal, so `log_prob` and `entropy` are those of a `Gaussian` and exact for the
    action that was drawn."""

    mean: jax.Array  # [..., d]
    log_std: jax.Array  # [..., d], the marginal log-std given the state (see gsde_log_std)
    features: jax.Array  # [..., F], the policy's last hidden features (gradient stopped)
    feature_log_std: jax.Array  # [F, d], the log-std of the exploration matrix's entries


Distribution = Union[Categorical, Gaussian, StateDependentGaussian]


# --- categorical ----------------------------------------------------------------------------


def categorical_log_prob(logits: jax.Array, action: jax.Array) -> jax.Array:
    """Exact ``log pi(a|s) = logits[a] - logsumexp(logits)``; ``[..., A], [...] -> [...]``."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    # A one-hot select rather than a gather: its gradient is a select, not a scatter.
    one_hot = jax.nn.one_hot(action, logits.shape[-1], dtype=bool)
    return jnp.sum(jnp.where(one_hot, log_p, 0.0), axis=-1)


def categorical_entropy(logits: jax.Array) -> jax.Array:
    """``H = -sum_a pi(a) log pi(a)``; ``[..., A] -> [...]``."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)


# The logit of a masked action: exp(MASKED_LOGIT - max) is exactly 0 in float32, so a masked
# action is never sampled nor the mode, and log pi and the entropy are the masked
# distribution's (0 * MASKED_LOGIT = 0 in the entropy sum, where -inf would give NaN).
MASKED_LOGIT = -1e9


def masked(dist: Categorical, mask: jax.Array | None) -> Categorical:
    """The categorical restricted to the allowed actions ``mask [..., A]`` (bool; None: all
    allowed). Every masked action gets probability 0; the others are renormalised."""
    if mask is None:
        return dist
    return Categorical(jnp.where(mask, dist.logits, MASKED_LOGIT))


def categorical_mode(logits: jax.Array) -> jax.Array:
    """The greedy action ``argmax_a logits[a]``; ``[..., A] -> int32 [...]``."""
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)


# --- diagonal Gaussian ------------------------------------------------------------------------


def _event_axes(x: jax.Array, event_ndim: int) -> tuple[int, ...]:
    return tuple(range(x.ndim - event_ndim, x.ndim))


def gaussian_log_prob(mean: jax.Array, log_std: jax.Array, action: jax.Array,
                      event_ndim: int = 1) -> jax.Array:
    """Exact ``log N(a; mean, diag(exp(2 log_std)))``, summed over the last ``event_ndim``
    axes (the action dimensions)."""
    z = (action - mean) * jnp.exp(-log_std)
    per_dim = -0.5 * (z * z + _LOG_2PI) - log_std
    return jnp.sum(per_dim, axis=_event_axes(per_dim, event_ndim))


def gaussian_entropy(log_std: jax.Array, event_ndim: int = 1) -> jax.Array:
    """``H = sum_i (log_std_i + (1 + log 2 pi) / 2)`` over the last ``event_ndim`` axes."""
    per_dim = log_std + 0.5 * (1.0 + _LOG_2PI)
    return jnp.sum(per_dim, axis=_event_axes(per_dim, event_ndim))


def gsde_log_std(features: jax.Array, feature_log_std: jax.Array) -> jax.Array:
    """The marginal log-std of ``features @ theta``, ``theta_ij ~ N(0, exp(2 l_ij))``:
    ``0.5 log(features^2 @ exp(2 l) + 1e-6)`` (the 1e-6 as Stable-Baselines3's gSDE);
    ``[..., F], [F, d] -> [..., d]``."""
    variance = jnp.square(features) @ jnp.exp(2.0 * feature_log_std)
    return 0.5 * jnp.log(variance + 1e-6)


# --- dispatch ---------------------------------------------------------------------------------


def sample(dist: Distribution, key: jax.Array) -> jax.Array:
    """One action per state. A `StateDependentGaussian` draws a fresh exploration matrix for
    each state (its marginal), as at a step where gSDE redraws."""
    if isinstance(dist, StateDependentGaussian):
        return sample_with_noise(dist, jax.random.normal(key, gsde_noise_shape(dist)))
    discrete = isinstance(dist, Categorical)
    shape = dist.logits.shape if discrete else dist.mean.shape
    return sample_with_noise(dist, draw_noise(key, discrete, shape))


def gsde_noise_shape(dist: StateDependentGaussian) -> tuple[int, ...]:
    """``[..., F, d]``: one standard-normal exploration matrix per state of ``dist``."""
    return (*dist.features.shape, dist.mean.shape[-1])


def draw_noise(key: jax.Array, discrete: bool, shape: tuple[int, ...]) -> jax.Array:
    """The noise `sample_with_noise` turns into actions, drawn ahead (for many steps in one
    call): standard Gumbel for a Categorical, standard normal for a Gaussian; ``shape`` is
    that of the logits or the mean."""
    if discrete:
        return jax.random.gumbel(key, shape)
    return jax.random.normal(key, shape)


def sample_with_noise(dist: Distribution, noise: jax.Array) -> jax.Array:
    """A sample from ``dist`` given `draw_noise`'s noise: ``argmax(logits + gumbel)`` (the
    Gumbel-max trick, as ``jax.random.categorical``) or ``mean + exp(log_std) * eps``. For a
    `StateDependentGaussian` the noise is a standard-normal ``z [..., F, d]`` and the action
    ``mean + features @ (exp(feature_log_std) * z)``."""
    if isinstance(dist, StateDependentGaussian):
        chex.assert_rank(noise, dist.features.ndim + 1)
        std = jnp.exp(dist.feature_log_std)
        theta = std.reshape((1,) * (noise.ndim - std.ndim) + std.shape) * noise
        return dist.mean + jnp.einsum("...i,...ij->...j", dist.features, theta)
    if isinstance(dist, Categorical):
        chex.assert_equal_shape([dist.logits, noise])
        return jnp.argmax(dist.logits + noise, axis=-1).astype(jnp.int32)
    chex.assert_equal_shape([dist.mean, noise])
    return dist.mean + jnp.exp(jnp.broadcast_to(dist.log_std, dist.mean.shape)) * noise


def log_prob(dist: Distribution, action: jax.Array) -> jax.Array:
    """Exact ``log pi(action)``, ``[...]``: ``action`` is ``int [...]`` for a `Categorical`
    over ``[..., A]``, ``float [..., d]`` for the Gaussians."""
    if isinstance(dist, Categorical):
        chex.assert_shape(action, dist.logits.shape[:-1])
        return categorical_log_prob(dist.logits, action)
    chex.assert_equal_shape([action, dist.mean])
    log_std = jnp.broadcast_to(dist.log_std, dist.mean.shape)
    return gaussian_log_prob(dist.mean, log_std, action, 1)


def entropy(dist: Distribution) -> jax.Array:
    if isinstance(dist, Categorical):
        return categorical_entropy(dist.logits)
    log_std = jnp.broadcast_to(dist.log_std, dist.mean.shape)
    return gaussian_entropy(log_std, 1)


def mode(dist: Distribution) -> jax.Array:
    """The greedy action: argmax of the logits, or the Gaussian's mean."""
    if isinstance(dist, Categorical):
        return categorical_mode(dist.logits)
    return dist.mean
