"""Evaluation rollouts of a trained policy, independent of training: `evaluate` (returns of
fresh episodes), `make_policy` (a jitted policy for use outside training) and
`play` (the one episode loop, which rendering also plays on; `episode_returns` its returns,
also used by the benchmarks)."""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from purea2c import distributions, envs
from purea2c.config import Config
from purea2c.agent import Agent, Params, network_input


class Played(NamedTuple):
    """Fresh episodes played by `play`, ``E`` of them."""

    returns: jax.Array  # float32 [E], undiscounted, each until its episode ended
    lengths: jax.Array  # int32 [E], steps until and with the end (max_steps if none)
    first_state: Any  # the adapter's reset states, leaves [E, ...] (None unless keep_states)
    states: Any  # its states after each step, leaves [max_steps, E, ...] (or None)
    rewards: Any  # float32 [max_steps, E] (or None)


def play(key: jax.Array, env: Any, act: Callable[[Any, jax.Array], jax.Array],
         num_episodes: int, max_steps: int | None = None, keep_states: bool = False) -> Played:
    """The episode loop of evaluation and rendering: ``num_episodes`` fresh episodes of the
    adapter ``env`` played in parallel by ``act(obs [num_episodes, ...], key) -> actions``
    (what the env receives), as one ``lax.scan`` of ``max_steps`` steps (default: the env's
    ``max_episode_steps``); each episode counts until it ends (terminated or truncated).
    No auto-reset: an episode that ended is stepped on but no longer counted. The
    randomness is that of `purea2c.envs.step` (the same returns as stepping with it), and
    ``keep_states`` also returns every state (for drawing)."""
    if max_steps is None:
        max_steps = int(env.max_episode_steps)
    key, key_reset = jax.random.split(key)
    start = envs.reset(key_reset, env, num_episodes)

    def body(carry, _):
        env_state, obs, key, alive, total, length = carry
        key, key_act, key_env = jax.random.split(key, 3)
        transition = jax.vmap(jax.random.split)(jax.random.split(key_env, num_episodes))[:, 0]
        out = jax.vmap(env.step)(transition, env_state, act(obs, key_act))
        reward = out.reward.astype(jnp.float32)
        total = total + jnp.where(alive, reward, 0.0)
        length = length + alive.astype(jnp.int32)
        ended = jnp.logical_or(out.terminated.astype(bool), out.truncated.astype(bool))
        alive = jnp.logical_and(alive, jnp.logical_not(ended))
        kept = (out.state, reward) if keep_states else None
        return (out.state, envs.core.as_float(out.obs), key, alive, total, length), kept

    init = (start.env_state, start.obs, key, jnp.ones((num_episodes,), bool),
            jnp.zeros((num_episodes,), jnp.float32), jnp.zeros((num_episodes,), jnp.int32))
    (_, _, _, _, total, length), kept = jax.lax.scan(body, init, None, length=max_steps)
    if keep_states:
        return Played(total, length, start.env_state, *kept)
    return Played(total, length, None, None, None)


def episode_returns(key: jax.Array, env: Any,
                    act: Callable[[Any, jax.Array], jax.Array], num_episodes: int,
                    max_steps: int | None = None) -> jax.Array:
    """Undiscounted returns ``[num_episodes]`` of fresh episodes (`play`)."""
    return play(key, env, act, num_episodes, max_steps).returns


def _obs_norm(config: Config, params: Any) -> Any:
    """``params.obs_norm``, which a config with ``normalize_obs`` cannot act without."""
    obs_norm = getattr(params, "obs_norm", None)
    if config.normalize_obs and obs_norm is None:
        raise ValueError("config.normalize_obs is on but params carry no observation "
                         "statistics (params.obs_norm); pass state.params of the run")
    return obs_norm


def _evaluate(key: jax.Array, config: Config, params: Any, num_episodes: int, greedy: bool,
              max_steps: int | None) -> jax.Array:
    params = Params(params.pi, None, _obs_norm(config, params))
    agent = Agent(config)
    return episode_returns(
        key, agent.env,
        lambda obs, k: _act(config, agent.nets, agent.action_spec, params, obs, k, greedy),
        num_episodes, max_steps)


def _act(config: Config, nets: Any, spec: envs.ActionSpec, params: Params, obs: Any,
         key: jax.Array | None, greedy: bool) -> jax.Array:
    """The action the environment receives (Box actions clipped to the bounds), from the
    observations as the networks see them (normalised when ``config.normalize_obs``)."""
    dist = nets.pi.apply(params.pi, network_input(config, params, obs))
    action = distributions.mode(dist) if greedy else distributions.sample(dist, key)
    return envs.env_action(spec, action)


@functools.partial(jax.jit, static_argnames=("num_episodes", "greedy", "max_steps"))
def evaluate(key: jax.Array, config: Config, params: Any, num_episodes: int = 100,
             greedy: bool = True, max_steps: int | None = None) -> jax.Array:
    """Undiscounted returns ``[num_episodes]`` of the policy ``params.pi`` on fresh episodes.

    ``params`` is a `Params` (``state.params``: pi's variables and, when
    ``config.normalize_obs``, the observation statistics it acts with).
    ``greedy=True`` acts with the mode of pi (argmax for discrete actions, the Gaussian's mean
    for Box actions), ``False`` samples from pi (for gSDE, from its per-state marginal). Each episode runs until it ends or for
    ``max_steps`` (default: the env's ``max_episode_steps``).
    """
    for name, value in (("num_episodes", num_episodes), ("max_steps", max_steps)):
        if value is None and name == "max_steps":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"evaluate: {name}={value!r} is invalid: must be an int >= 1")
    return _evaluate(key, config, params, num_episodes, greedy, max_steps)


def make_policy(config: Config, params: Any, greedy: bool = True
                ) -> Callable[..., jax.Array]:
    """A jitted ``policy(obs, key=None) -> action`` of the trained ``params.pi``, for driving
    an environment outside training (a gymnasium env, a robot loop).

    ``obs`` is one observation ``[*obs_shape]`` or a batch ``[B, *obs_shape]`` (numpy or jax;
    for pytree observations, a pytree of such arrays, all with or all without the batch);
    the action is ``int32 []`` / ``[B]`` for discrete spaces and ``float32 [d]`` / ``[B, d]``
    clipped to the bounds for Box spaces. ``greedy=True`` takes the mode of pi and ignores
    ``key``; ``greedy=False`` samples and needs a ``key``.
    """
    agent = Agent(config)
    spec, nets = agent.action_spec, agent.nets
    obs_spec = agent.env.observation_spec
    acting = jax.tree.map(jnp.asarray, Params(params.pi, None, _obs_norm(config, params)))

    @jax.jit
    def _policy(acting: Params, obs: Any, key: jax.Array | None) -> jax.Array:
        if jax.tree.structure(obs) != jax.tree.structure(obs_spec):
            raise ValueError(f"observation of structure {jax.tree.structure(obs)}; expected "
                             f"{jax.tree.structure(obs_spec)}")
        obs = envs.core.as_float(obs)
        for x, leaf in zip(jax.tree.leaves(obs), jax.tree.leaves(obs_spec)):
            shape = tuple(leaf.shape)
            if x.ndim not in (len(shape), len(shape) + 1) or \
                    x.shape[x.ndim - len(shape):] != shape:
                raise ValueError(f"observation of shape {x.shape}; expected {shape} or "
                                 f"[batch, *{shape}]")
        return _act(config, nets, spec, acting, obs, key, greedy)

    def policy(obs: Any, key: jax.Array | None = None) -> jax.Array:
        if not greedy and key is None:
            raise ValueError("a sampling policy (greedy=False) needs a key: policy(obs, key)")
        return _policy(acting, obs, None if greedy else key)

    return policy
