"""The A2C losses: SimpleTD for v, VanillaPG (or PPO-clip) for pi. Pure jax.

Every function takes per-sample arrays ``[B]`` and returns a scalar mean (or per-sample
values where noted), so the same code serves a minibatch or a single stream. Ranks and
shapes are checked with chex where the arrays come in (at trace time: no cost at run time).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def td_target(reward: jax.Array, discount: jax.Array, v_next: jax.Array) -> jax.Array:
    """``G = R(n) + I(n) * v_targ(S_next)``, with the gradient stopped; ``[B]``."""
    chex.assert_rank([reward, discount, v_next], 1)
    chex.assert_equal_shape([reward, discount, v_next])
    return jax.lax.stop_gradient(reward + discount * v_next)


def _mse(td: jax.Array, huber_delta: jax.Array) -> jax.Array:
    return jnp.mean(0.5 * td**2)


def _huber(td: jax.Array, huber_delta: jax.Array) -> jax.Array:
    abs_td = jnp.abs(td)
    quad = jnp.minimum(abs_td, huber_delta)
    return jnp.mean(0.5 * quad**2 + huber_delta * (abs_td - quad))


# Config.value_loss -> (the mean loss of td = G - v(S), the td_error handed to the policy
# update: minus the loss's derivative in v(S); per sample).
VALUE_LOSSES = {
    "mse": (_mse, lambda td, huber_delta: td),
    "huber": (_huber, lambda td, huber_delta: jnp.clip(td, -huber_delta, huber_delta)),
}


def _value_loss_pair(kind: str) -> tuple:
    if kind not in VALUE_LOSSES:
        raise ValueError(f"unknown value loss {kind!r}")
    return VALUE_LOSSES[kind]


def value_loss(td: jax.Array, kind: str, huber_delta: jax.Array) -> jax.Array:
    """Mean TD loss of ``td = G - v(S)``; ``'mse'``: 0.5 td^2, ``'huber'``: 0.5 td^2 inside
    ``[-delta, delta]`` and ``delta (|td| - delta/2)`` outside."""
    chex.assert_rank(td, 1)
    return _value_loss_pair(kind)[0](td, huber_delta)


def td_error_signal(td: jax.Array, kind: str, huber_delta: jax.Array) -> jax.Array:
    """The td_error handed to the policy update: minus the loss's derivative in v(S).

    For mse this is ``td`` itself; for huber it is ``clip(td, -delta, delta)`` (as coax's
    SimpleTD with its default huber loss). Per-sample, ``[B]``.
    """
    chex.assert_rank(td, 1)
    return _value_loss_pair(kind)[1](td, huber_delta)


def vanilla_pg_loss(log_prob: jax.Array, td_error: jax.Array, entropy: jax.Array,
                    entropy_coef: jax.Array) -> jax.Array:
    """``-mean(td_error * log pi(A|S)) - beta * mean(H[pi(.|S)])``, td_error held constant."""
    chex.assert_rank([log_prob, td_error, entropy], 1)
    chex.assert_equal_shape([log_prob, td_error, entropy])
    adv = jax.lax.stop_gradient(td_error)
    return -jnp.mean(adv * log_prob) - entropy_coef * jnp.mean(entropy)


def ppo_clip_loss(log_prob: jax.Array, behaviour_log_prob: jax.Array, td_error: jax.Array,
                  entropy: jax.Array, entropy_coef: jax.Array, epsilon: jax.Array) -> jax.Array:
    """``-mean(min(rho A, clip(rho, 1-eps, 1+eps) A)) - beta mean(H)``, ``rho = pi/pi_b``."""
    chex.assert_rank([log_prob, behaviour_log_prob, td_error, entropy], 1)
    chex.assert_equal_shape([log_prob, behaviour_log_prob, td_error, entropy])
    adv = jax.lax.stop_gradient(td_error)
    ratio = jnp.exp(log_prob - behaviour_log_prob)
    surrogate = jnp.minimum(ratio * adv, jnp.clip(ratio, 1.0 - epsilon, 1.0 + epsilon) * adv)
    return -jnp.mean(surrogate) - entropy_coef * jnp.mean(entropy)


def kl_to_behaviour(log_prob: jax.Array, behaviour_log_prob: jax.Array) -> jax.Array:
    """Estimate of KL(pi_b || pi) from actions sampled by pi_b: ``mean((rho - 1) - log rho)``,
    ``rho = pi(A|S) / pi_b(A|S)`` (unbiased and never negative)."""
    chex.assert_equal_shape([log_prob, behaviour_log_prob])
    log_ratio = log_prob - behaviour_log_prob
    return jnp.mean(jnp.expm1(log_ratio) - log_ratio)
