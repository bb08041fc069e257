"""The agent a `Config` describes, built once: `Agent(config)`.

    agent = Agent(config)                  # env adapter, networks, optimizers, variants
    state = agent.init(key)                # a fresh TrainState            (pure)
    state, metrics = agent.run(state, 50)  # 50 more iterations            (pure)
    result = agent.train(key)              # init, then config.num_iterations iterations

Training (`purea2c.training`), sharding, the run loop, evaluation and rendering all build
their objects here, so a static config gives one and the same agent everywhere. The methods
are pure functions of their arguments and of the config, not jitted: `purea2c.init`,
`purea2c.run` and `purea2c.train` jit them with the backend's compiler options, and an
`Agent` built inside ``jax.vmap`` over a config's traced hyperparameters (learning rates,
gamma, ...) trains each setting. What an iteration does is in `purea2c.stages`.

Each variant a config chooses by name is resolved here once, from one table per choice:
`OPTIMIZERS`, `LR_SCHEDULES`, `POLICY_OBJECTIVES` (and `objectives.VALUE_LOSSES`).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from purea2c import envs, networks, normalization, objectives, replay, stages, tracing
from purea2c.config import Config
from purea2c.stages import network_input  # noqa: F401  (re-exported)
from purea2c.state import OptStates, Params, TrainResult, TrainState


def _linear(learning_rate: Any, config: Config) -> Any:
    return optax.linear_schedule(learning_rate, 0.0,
                                 config.num_iterations * config.updates_per_iteration)


# Config.lr_schedule -> the learning rate (a number or an optax schedule) of a base rate.
LR_SCHEDULES: dict[str, Callable[[Any, Config], Any]] = {
    "constant": lambda learning_rate, config: learning_rate,
    "linear": _linear,  # to 0 over the run's updates
}
# Config.optimizer -> the scaling of the clipped gradient. RMSprop is Stable-Baselines3 A2C's
# (PyTorch's): g / (sqrt(v) + eps), v from 0.
OPTIMIZERS: dict[str, Callable[[Any], optax.GradientTransformation]] = {
    "adam": optax.adam,
    "rmsprop": lambda lr: optax.rmsprop(lr, decay=0.99, eps=1e-5, eps_in_sqrt=False),
}


def _vanilla_pg(config: Config, log_prob: jax.Array, behaviour_log_prob: jax.Array,
                td_error: jax.Array, entropy: jax.Array) -> jax.Array:
    return objectives.vanilla_pg_loss(log_prob, td_error, entropy, config.entropy_coef)


def _ppo_clip(config: Config, log_prob: jax.Array, behaviour_log_prob: jax.Array,
              td_error: jax.Array, entropy: jax.Array) -> jax.Array:
    return objectives.ppo_clip_loss(log_prob, behaviour_log_prob, td_error, entropy,
                                    config.entropy_coef, config.ppo_epsilon)


# Config.policy_objective -> pi's loss(config, log pi, log pi_b, td_error, entropy).
POLICY_OBJECTIVES: dict[str, Callable[..., jax.Array]] = {
    "vanilla_pg": _vanilla_pg,
    "ppo_clip": _ppo_clip,
}


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
    under ``config.lr_schedule``, on the network's parameters raveled into one vector
    (``optax.flatten``: the same elementwise update, with one kernel per step of the
    optimizer instead of one per parameter leaf; the default program optimises to 45% fewer
    HLO instructions, benchmarks/results/program_ops_cpu.md)."""
    rate = LR_SCHEDULES[config.lr_schedule](learning_rate, config)
    return optax.flatten(optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                                     OPTIMIZERS[config.optimizer](rate)))


class Agent:
    """Everything a `Config` fixes, built once: the environment adapter and its action
    spec, the pi / v networks, both updaters, pi's loss, and ``axis_name`` (data
    parallelism: the mesh axis one agent's envs are split over, its gradients and statistics
    averaged over it; None on one device). ``init``, ``run`` and ``train`` are pure."""

    def __init__(self, config: Config, axis_name: str | None = None):
        self.config = config
        self.axis_name = axis_name
        self.env, self.action_spec, self.nets = make_networks(config)
        self.pi_opt = make_optimizer(config, config.pi_learning_rate)
        self.v_opt = make_optimizer(config, config.v_learning_rate)
        self.policy_loss = functools.partial(POLICY_OBJECTIVES[config.policy_objective],
                                             config)

    def __repr__(self) -> str:
        return f"Agent({self.config.env!r}, axis_name={self.axis_name!r})"

    # -- data parallelism ------------------------------------------------------------------

    def fold_device(self, key: jax.Array) -> jax.Array:
        """``key`` made different on each device of a data-parallel agent (unchanged on one
        device): for the randomness of the device's own envs and minibatches."""
        if self.axis_name is None or jax.lax.axis_size(self.axis_name) == 1:
            return key  # one device: exactly `train`'s randomness
        return jax.random.fold_in(key, jax.lax.axis_index(self.axis_name))

    def pmean(self, tree: Any) -> Any:
        """The mean of ``tree`` over a data-parallel agent's devices (itself on one)."""
        return tree if self.axis_name is None else jax.lax.pmean(tree, self.axis_name)

    def psum(self, tree: Any) -> Any:
        """The sum of ``tree`` over a data-parallel agent's devices (itself on one)."""
        return tree if self.axis_name is None else jax.lax.psum(tree, self.axis_name)

    # -- the run ---------------------------------------------------------------------------

    def init(self, key: jax.Array) -> TrainState:
        """A fresh `TrainState`: initial parameters, optimizer states, reset envs, empty
        tracer and buffer. ``key``: a typed or raw PRNG key."""
        config = self.config
        key, key_pi, key_v, key_env = jax.random.split(key, 4)
        key_env = self.fold_device(key_env)  # parameters start equal on every device
        env_state = envs.reset(key_env, self.env, config.num_envs)
        obs = jax.tree.map(lambda x: x[0], env_state.obs)
        obs_norm = normalization.init_moments(obs.shape) if config.normalize_obs else None
        params = Params(pi=self.nets.pi.init(key_pi, obs), v=self.nets.v.init(key_v, obs),
                        obs_norm=obs_norm)
        if config.shared_torso == "sync":
            params = Params(*networks.sync_torsos(params.pi, params.v, config.sync_weight),
                            obs_norm)
        spec = self.action_spec
        action = (jnp.zeros((), jnp.int32) if spec.discrete
                  else jnp.zeros((spec.num_actions,), jnp.float32))
        tracer = jax.vmap(lambda o: tracing.init(config.n_step, o, action))(env_state.obs)
        example = tracing.Transition(obs=obs, action=action, log_prob=jnp.zeros(()),
                                     reward=jnp.zeros(()), discount=jnp.zeros(()),
                                     next_obs=obs)
        return TrainState(
            params=params,
            target_v=params.v,
            opt_state=OptStates(pi=self.pi_opt.init(params.pi), v=self.v_opt.init(params.v)),
            env=env_state,
            tracer=tracer,
            buffer=replay.init(config.buffer_capacity, example),
            key=key,
            env_steps=jnp.zeros((), jnp.int32),
            iteration=jnp.zeros((), jnp.int32),
            reward_norm=normalization.init_reward_norm(config.num_envs)
            if config.normalize_reward else None,
        )

    def run(self, state: TrainState, num_iterations: int) -> tuple[TrainState, Any]:
        """``num_iterations`` (static) more iterations from ``state``; returns the new state
        and the per-iteration `Metrics` ``[num_iterations]``."""
        return jax.lax.scan(functools.partial(stages.iteration, self), state, None,
                            length=num_iterations)

    def train(self, key: jax.Array) -> TrainResult:
        """``init(key)``, then ``config.num_iterations`` iterations."""
        return TrainResult(*self.run(self.init(key), self.config.num_iterations))
