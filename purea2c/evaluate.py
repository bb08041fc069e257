"""Evaluation rollouts of a trained policy, independent of training."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from purea2c import distributions, envs, networks
from purea2c.config import Config


def _evaluate(key: jax.Array, config: Config, params: Any, num_episodes: int, greedy: bool,
              max_steps: int | None) -> jax.Array:
    env, env_params = envs.make_env(config.env)
    if max_steps is None:
        max_steps = int(env_params.max_steps_in_episode)
    nets = networks.make_networks(envs.num_actions(env, env_params), config.hidden_sizes,
                                  config.activation)
    key, key_reset = jax.random.split(key)
    state = envs.reset(key_reset, env, env_params, num_episodes)

    def body(carry, _):
        state, key, alive, total = carry
        key, key_act, key_env = jax.random.split(key, 3)
        logits = nets.pi.apply(params.pi, state.obs)
        if greedy:
            action = distributions.categorical_mode(logits)
        else:
            action = distributions.categorical_sample(key_act, logits)
        state, res = envs.step(key_env, env, env_params, state, action)
        total = total + jnp.where(alive, res.reward, 0.0)
        alive = jnp.logical_and(alive, jnp.logical_not(res.episode_done))
        return (state, key, alive, total), None

    init = (state, key, jnp.ones((num_episodes,), bool), jnp.zeros((num_episodes,), jnp.float32))
    (_, _, _, total), _ = jax.lax.scan(body, init, None, length=max_steps)
    return total


@functools.partial(jax.jit, static_argnames=("num_episodes", "greedy", "max_steps"))
def evaluate(key: jax.Array, config: Config, params: Any, num_episodes: int = 100,
             greedy: bool = True, max_steps: int | None = None) -> jax.Array:
    """Undiscounted returns ``[num_episodes]`` of the policy ``params.pi`` on fresh episodes.

    ``greedy=True`` acts with ``argmax_a pi(a|s)``, ``False`` samples from pi. Each episode
    runs until it ends or for ``max_steps`` (default: the env's ``max_steps_in_episode``).
    """
    return _evaluate(key, config, params, num_episodes, greedy, max_steps)
