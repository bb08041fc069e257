"""The n-step tracer: a streaming window over the last n steps of ONE environment.

Each call to `step` appends the step ``t`` just taken and emits the transition that starts
``n - 1`` steps earlier, at ``j = t - n + 1``, which is now complete::

    R(n) = sum_{k=0}^{K} gamma^k r_{j+k}      K = n-1, or the first k where the episode ended
    I(n) = gamma^n,      S_next = S_{t+1}            no episode end in the window
           0,            (S_next unused)             terminated at step j+K
           gamma^(K+1),  S_next = final obs of j+K   truncated at step j+K

The first ``n - 1`` emissions of a fresh tracer are padding (``valid=False``); after that
every step emits one valid transition, so no transition is lost. The window lives in
`TracerState` and is carried across rollouts. Batch over environments with ``jax.vmap``.
Observations may be pytrees of arrays (each leaf is windowed alike).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp


class Transition(NamedTuple):
    """A finished n-step transition (leaves may carry leading batch dims)."""

    obs: Any  # S_j, float32 [*obs_shape] (or a pytree of arrays)
    action: jax.Array  # A_j
    log_prob: jax.Array  # float32, log pi_behaviour(A_j|S_j)
    reward: jax.Array  # float32, R(n)
    discount: jax.Array  # float32, I(n)
    next_obs: Any  # float32 [*obs_shape], S_next


class TracerState(NamedTuple):
    """The last n steps of one env; index 0 is the oldest."""

    obs: Any  # [n, *obs_shape] S_t (the observation acted on)
    action: jax.Array  # [n]
    log_prob: jax.Array  # [n] float32
    reward: jax.Array  # [n] float32
    terminated: jax.Array  # [n] bool
    truncated: jax.Array  # [n] bool
    final_obs: Any  # [n, *obs_shape] observation reached by step t
    count: jax.Array  # int32 scalar, filled slots, saturates at n


def init(n: int, obs: Any, action: jax.Array) -> TracerState:
    """An empty window of length ``n`` for one env; ``obs`` and ``action`` give shapes/dtypes."""
    def slots(tree: Any) -> Any:
        return jax.tree.map(lambda x: jnp.zeros((n, *jnp.shape(x)), jnp.asarray(x).dtype),
                            tree)

    return TracerState(
        obs=slots(obs),
        action=slots(action),
        log_prob=jnp.zeros((n,), jnp.float32),
        reward=jnp.zeros((n,), jnp.float32),
        terminated=jnp.zeros((n,), bool),
        truncated=jnp.zeros((n,), bool),
        final_obs=slots(obs),
        count=jnp.zeros((), jnp.int32),
    )


def step(
    state: TracerState,
    obs: jax.Array,
    action: jax.Array,
    log_prob: jax.Array,
    reward: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    final_obs: jax.Array,
    next_obs: jax.Array,
    gamma: jax.Array,
) -> tuple[TracerState, Transition, jax.Array]:
    """Appends step t and emits the transition starting at t-n+1.

    Args (one env, no batch dim): ``obs`` S_t, ``action`` A_t, ``log_prob`` log pi(A_t|S_t),
    ``reward`` r_t, ``terminated``/``truncated`` of step t (not both), ``final_obs`` the
    observation step t reached, ``next_obs`` S_{t+1} (the reset observation after an end),
    ``gamma`` the discount (may be traced).

    Returns ``(state, transition, valid)``; ``valid`` is False while the window fills.
    """
    chex.assert_rank([log_prob, reward, terminated, truncated], 0)
    chex.assert_trees_all_equal_shapes(obs, final_obs, next_obs,
                                       jax.tree.map(lambda w: w[0], state.obs))
    chex.assert_equal_shape([action, state.action[0]])
    def push(window: Any, x: Any) -> Any:
        return jax.tree.map(lambda w, v: jnp.concatenate(
            [w[1:], jnp.asarray(v, w.dtype)[None]], axis=0), window, x)

    state = TracerState(
        obs=push(state.obs, obs),
        action=push(state.action, action),
        log_prob=push(state.log_prob, log_prob),
        reward=push(state.reward, reward),
        terminated=push(state.terminated, terminated),
        truncated=push(state.truncated, truncated),
        final_obs=push(state.final_obs, final_obs),
        count=jnp.minimum(state.count + 1, state.reward.shape[0]),
    )
    n = state.reward.shape[0]
    gamma = jnp.asarray(gamma, jnp.float32)
    done = jnp.logical_or(state.terminated, state.truncated)  # [n]
    # alive[k]: no episode end strictly before slot k.
    alive = jnp.cumprod(jnp.concatenate([jnp.ones((1,), jnp.float32),
                                         1.0 - done[:-1].astype(jnp.float32)]))
    powers = gamma ** jnp.arange(n, dtype=jnp.float32)
    ret = jnp.sum(powers * state.reward * alive)

    any_done = jnp.any(done)
    first = jnp.argmax(done)  # index of the first end (0 when none; masked by any_done)
    discount = jnp.where(
        any_done,
        jnp.where(state.terminated[first], 0.0, gamma ** (first + 1).astype(jnp.float32)),
        gamma ** n,
    )
    s_next = jax.tree.map(lambda f, o: jnp.where(any_done, f[first], jnp.asarray(o, f.dtype)),
                          state.final_obs, next_obs)
    transition = Transition(
        obs=jax.tree.map(lambda o: o[0], state.obs),
        action=state.action[0],
        log_prob=state.log_prob[0],
        reward=ret,
        discount=discount.astype(jnp.float32),
        next_obs=s_next,
    )
    return state, transition, state.count >= n
