"""The agent a config describes: environment, action spec, networks and optimizers.

Training, evaluation, `make_policy` and the benchmarks all build their objects here, so a
static config gives one and the same agent everywhere. Building is cheap and happens while
tracing (the objects are Python-level; nothing here is an array of the run).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import optax

from purea2c import envs, networks
from purea2c.config import Config


class Agent(NamedTuple):
    """Objects derived from the static part of a `Config`."""

    env: Any  # the gymnax environment
    env_params: Any  # its parameters
    action_spec: envs.ActionSpec
    nets: networks.Networks  # pi and v modules
    pi_opt: optax.GradientTransformation  # pi's updater: global-norm clip, then Adam
    v_opt: optax.GradientTransformation  # v's updater


def make_networks(config: Config) -> tuple[Any, Any, envs.ActionSpec, networks.Networks]:
    """``(env, env_params, action_spec, nets)``: the environment and the pi / v modules that
    the config's static fields describe (no optimizers)."""
    env, env_params = envs.make_env(config.env)
    spec = envs.action_spec(env, env_params)
    nets = networks.make_networks(
        envs.obs_shape(env, env_params), spec.discrete, spec.num_actions,
        hidden_sizes=config.hidden_sizes, activation=config.activation, torso=config.torso,
        cnn_channels=config.cnn_channels, cnn_kernel_size=config.cnn_kernel_size,
        log_std_init=config.log_std_init, obs_bounds=envs.obs_bounds(env, env_params)
        if config.scale_obs else None)
    return env, env_params, spec, nets


def make_agent(config: Config) -> Agent:
    """The `Agent` of ``config``: environment, action spec, networks and both updaters."""
    env, env_params, spec, nets = make_networks(config)
    pi_opt = optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                         optax.adam(config.pi_learning_rate))
    v_opt = optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                        optax.adam(config.v_learning_rate))
    return Agent(env, env_params, spec, nets, pi_opt, v_opt)
