"""Action distributions: sample, exact log-probability, entropy, mode.

Written for one batch of logits ``[..., num_actions]``; pure jax.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def categorical_sample(key: jax.Array, logits: jax.Array) -> jax.Array:
    """Samples ``a ~ softmax(logits)``; ``logits [..., A]`` -> ``int32 [...]``."""
    return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


def categorical_log_prob(logits: jax.Array, action: jax.Array) -> jax.Array:
    """Exact ``log pi(a|s) = logits[a] - logsumexp(logits)``; ``[..., A], [...] -> [...]``."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return jnp.take_along_axis(log_p, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def categorical_entropy(logits: jax.Array) -> jax.Array:
    """``H = -sum_a pi(a) log pi(a)``; ``[..., A] -> [...]``."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)


def categorical_mode(logits: jax.Array) -> jax.Array:
    """The greedy action ``argmax_a logits[a]``; ``[..., A] -> int32 [...]``."""
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
