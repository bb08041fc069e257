"""The agent a config describes: environment, action spec, networks and optimizers.

Training, evaluation, `make_policy` and the benchmarks all build their objects here, so a
static config gives one and the same agent everywhere. Building is cheap and happens while
tracing (the objects are Python-level; nothing here is an array of the run).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import optax

from purea2c import envs, networks, normalization
from purea2c.config import Config


class Params(NamedTuple):
    """What acting needs: the two networks' variables and the observation statistics."""

    pi: Any  # flax variables of the policy
    v: Any  # flax variables of the value function
    obs_norm: normalization.Moments | None = None  # running observation moments
    # (None unless Config.normalize_obs)


class Agent(NamedTuple):
    """Objects derived from the static part of a `Config`."""

    env: Any  # the environment adapter (purea2c.envs protocol)
    action_spec: envs.ActionSpec
    nets: networks.Networks  # pi and v modules
    pi_opt: optax.GradientTransformation  # pi's updater: global-norm clip, then Adam/RMSprop
    v_opt: optax.GradientTransformation  # v's updater
    axis_name: str | None = None  # data parallelism: the mesh axis one agent's envs are split
    # over (gradients and statistics are averaged over it); None on one device


def fold_device(agent: Agent, key: jax.Array) -> jax.Array:
    """``key`` made different on each device of a data-parallel agent (unchanged on one
    device): for the randomness of the device's own envs and minibatches."""
    if agent.axis_name is None or jax.lax.axis_size(agent.axis_name) == 1:
        return key  # one device: exactly `train`'s randomness
    return jax.random.fold_in(key, jax.lax.axis_index(agent.axis_name))


def pmean(agent: Agent, tree: Any) -> Any:
    """The mean of ``tree`` over a data-parallel agent's devices (itself on one device)."""
    return tree if agent.axis_name is None else jax.lax.pmean(tree, agent.axis_name)


def psum(agent: Agent, tree: Any) -> Any:
    """The sum of ``tree`` over a data-parallel agent's devices (itself on one device)."""
    return tree if agent.axis_name is None else jax.lax.psum(tree, agent.axis_name)


def make_env(config: Config) -> Any:
    """The environment adapter of ``config`` (``config.env`` with ``config.env_kwargs``)."""
    return envs.make(config.env, **dict(config.env_kwargs))


def make_networks(config: Config) -> tuple[Any, envs.ActionSpec, networks.Networks]:
    """``(env, action_spec, nets)``: the environment and the pi / v modules that the
    config's static fields describe (no optimizers)."""
    env = make_env(config)
    spec = env.action_spec
    obs_spec = env.observation_spec
    nets = networks.make_networks(
        obs_spec, spec.discrete, spec.num_actions,
        hidden_sizes=config.hidden_sizes, activation=config.activation, torso=config.torso,
        cnn_channels=config.cnn_channels, cnn_kernel_size=config.cnn_kernel_size,
        log_std_init=config.log_std_init,
        obs_bounds=(obs_spec.low, obs_spec.high) if config.scale_obs else None,
        exploration=config.exploration)
    return env, spec, nets


def make_optimizer(config: Config, learning_rate: Any) -> optax.GradientTransformation:
    """One updater: global-norm clipping, then Adam or RMSprop at ``learning_rate`` (traced)
    under ``config.lr_schedule``."""
    if config.lr_schedule == "linear":
        total_updates = config.num_iterations * config.updates_per_iteration
        learning_rate = optax.linear_schedule(learning_rate, 0.0, total_updates)
    if config.optimizer == "rmsprop":
        # Stable-Baselines3 A2C's RMSprop (PyTorch's): g / (sqrt(v) + eps), v from 0.
        scale = optax.rmsprop(learning_rate, decay=0.99, eps=1e-5, eps_in_sqrt=False)
    else:
        scale = optax.adam(learning_rate)
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), scale)


def make_agent(config: Config, axis_name: str | None = None) -> Agent:
    """The `Agent` of ``config``: environment, action spec, networks and both updaters.
    ``axis_name``: the mesh axis of a data-parallel agent (see `purea2c.sharding`)."""
    env, spec, nets = make_networks(config)
    return Agent(env, spec, nets, make_optimizer(config, config.pi_learning_rate),
                 make_optimizer(config, config.v_learning_rate), axis_name)


def network_input(config: Config, params: Params, obs: Any) -> Any:
    """What the networks see of observations ``[..., *obs_shape]``: normalised by
    ``params.obs_norm`` when ``config.normalize_obs`` (array observations only), else the
    observations themselves."""
    if config.normalize_obs:
        return normalization.normalize(params.obs_norm, obs, config.obs_clip)
    return obs
