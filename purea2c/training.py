"""`init`, `run` and `train`: the whole A2C run as one XLA program.

    train = run(init(key, config), config, config.num_iterations)

    run:   lax.scan over iterations
             1. rollout  lax.scan over rollout_length env steps: pi samples A and log pi(A|S),
                         vmapped env step with purea2c's auto-reset (Box actions clipped to the
                         bounds; A itself is stored), n-step tracer, masked buffer add.
                         The rollout's action noise and env noise (transition keys, reset
                         states) are drawn before the scan, each in one call
             2. learn    lax.scan over updates_per_iteration minibatches from the buffer
                         (their slots drawn in one call):
                         SimpleTD update of v (td_error from the pre-update v), then VanillaPG
                         (or PPO-clip) update of pi weighted by td_error; torso sync; target net
             3. clear    the buffer (if clear_buffer); the observation statistics take in
                         the rollout's observations (if normalize_obs); this iteration's
                         metrics, with the count of skipped non-finite updates and a finite
                         flag

Rewards are scaled by the running return std inside the rollout (if normalize_reward).
With an ``axis_name`` (one agent over several devices, `purea2c.sharding`), gradients,
statistics and metrics are combined over that mesh axis.

Everything is a pure function of ``(key, config)``; static config fields fix the program,
traced ones are its inputs, so ``jax.vmap`` over keys or hyperparameters needs no edits.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from purea2c import distributions, envs, networks, normalization, objectives, replay, tracing
from purea2c.agent import Agent, Params, fold_device, make_agent, network_input, pmean, psum
from purea2c.config import Config


class OptStates(NamedTuple):
    """The optax states of the two updaters."""

    pi: optax.OptState
    v: optax.OptState


class TrainState(NamedTuple):
    """Everything a run carries from one iteration to the next."""

    params: Params
    target_v: Any  # Polyak-averaged copy of params.v (equal to it when no target network)
    opt_state: OptStates  # optax states of the two updaters
    env: envs.VecEnvState
    tracer: tracing.TracerState  # leaves [num_envs, ...]
    buffer: replay.ReplayState
    key: jax.Array  # the run's random key
    env_steps: jax.Array  # int32, env steps taken so far (all envs)
    iteration: jax.Array  # int32, iterations completed
    reward_norm: normalization.RewardNormState | None = None  # (Config.normalize_reward)


class Metrics(NamedTuple):
    """One value per iteration (a leading ``[num_iterations]`` axis after `run`)."""

    env_steps: jax.Array  # int32, env steps at the end of the iteration
    episodes: jax.Array  # int32, episodes that finished during the iteration
    episode_return: jax.Array  # float32, their mean undiscounted return (NaN if episodes == 0)
    episode_length: jax.Array  # float32, their mean length (NaN if episodes == 0)
    value_loss: jax.Array  # float32, mean over the iteration's updates
    policy_loss: jax.Array  # float32
    entropy: jax.Array  # float32, mean policy entropy on the minibatches
    td_error: jax.Array  # float32, mean td_error (as handed to the policy update)
    pi_grad_norm: jax.Array  # float32, global norm of pi's gradient, before clipping
    v_grad_norm: jax.Array  # float32, global norm of v's gradient, before clipping
    kl: jax.Array  # float32, KL(behaviour || pi) before each policy update, mean
    skipped_updates: jax.Array  # int32, updates skipped as non-finite (Config.skip_nonfinite)
    finite: jax.Array  # bool, every parameter and optimizer state finite after the iteration


class TrainResult(NamedTuple):
    state: TrainState
    metrics: Metrics


# ------------------------------------------------------------------------------------------
# init
# ------------------------------------------------------------------------------------------


def _init(key: jax.Array, config: Config, axis_name: str | None = None) -> TrainState:
    s = make_agent(config, axis_name)
    key, key_pi, key_v, key_env = jax.random.split(key, 4)
    key_env = fold_device(s, key_env)  # parameters start equal on every device, envs do not
    env_state = envs.reset(key_env, s.env, config.num_envs)
    obs = jax.tree.map(lambda x: x[0], env_state.obs)
    obs_norm = normalization.init_moments(obs.shape) if config.normalize_obs else None
    params = Params(pi=s.nets.pi.init(key_pi, obs), v=s.nets.v.init(key_v, obs),
                    obs_norm=obs_norm)
    if config.shared_torso == "sync":
        params = Params(*networks.sync_torsos(params.pi, params.v, config.sync_weight),
                        obs_norm)
    if s.action_spec.discrete:
        action = jnp.zeros((), jnp.int32)
    else:
        action = jnp.zeros((s.action_spec.num_actions,), jnp.float32)
    tracer = jax.vmap(lambda o: tracing.init(config.n_step, o, action))(env_state.obs)
    example = tracing.Transition(obs=obs, action=action, log_prob=jnp.zeros(()),
                                 reward=jnp.zeros(()), discount=jnp.zeros(()), next_obs=obs)
    return TrainState(
        params=params,
        target_v=params.v,
        opt_state=OptStates(pi=s.pi_opt.init(params.pi), v=s.v_opt.init(params.v)),
        env=env_state,
        tracer=tracer,
        buffer=replay.init(config.buffer_capacity, example),
        key=key,
        env_steps=jnp.zeros((), jnp.int32),
        iteration=jnp.zeros((), jnp.int32),
        reward_norm=normalization.init_reward_norm(config.num_envs)
        if config.normalize_reward else None,
    )


# ------------------------------------------------------------------------------------------
# 1. rollout
# ------------------------------------------------------------------------------------------


class _RolloutCarry(NamedTuple):
    env: envs.VecEnvState
    tracer: tracing.TracerState
    buffer: replay.ReplayState
    episodes: jax.Array  # int32
    return_sum: jax.Array  # float32
    length_sum: jax.Array  # float32
    reward_norm: normalization.RewardNormState | None


def _env_step(s: Agent, config: Config, params: Params, carry: _RolloutCarry,
              noise: tuple[jax.Array, envs.StepNoise]) -> tuple[_RolloutCarry, jax.Array]:
    """One step of every env; emits the observations acted on, ``[num_envs, *obs_shape]``
    (for the observation statistics; None when they are off)."""
    action_noise, env_noise = noise
    obs = carry.env.obs
    dist = s.nets.pi.apply(params.pi, network_input(config, params, obs))
    action = distributions.sample_with_noise(dist, action_noise)
    log_prob = distributions.log_prob(dist, action)
    env_state, res = envs.step_with(env_noise, s.env, carry.env,
                                    envs.env_action(s.action_spec, action))
    reward = res.reward * config.reward_scale
    reward_norm = carry.reward_norm
    if config.normalize_reward:
        reward_norm, reward = normalization.normalize_reward(
            reward_norm, reward, res.episode_done, config.gamma, config.reward_clip,
            s.axis_name)
    tracer, transition, valid = jax.vmap(tracing.step, in_axes=(0,) * 9 + (None,))(
        carry.tracer, obs, action, log_prob, reward, res.terminated, res.truncated,
        res.final_obs, res.next_obs, config.gamma)
    carry = _RolloutCarry(
        env=env_state,
        tracer=tracer,
        buffer=replay.add(carry.buffer, transition, valid),
        episodes=carry.episodes + jnp.sum(res.episode_done.astype(jnp.int32)),
        return_sum=carry.return_sum + jnp.sum(res.episode_return),
        length_sum=carry.length_sum + jnp.sum(res.episode_length.astype(jnp.float32)),
        reward_norm=reward_norm,
    )
    return carry, obs if config.normalize_obs else None


# ------------------------------------------------------------------------------------------
# 2. learn
# ------------------------------------------------------------------------------------------


class _LearnCarry(NamedTuple):
    params: Params
    target_v: Any
    opt_state: OptStates


class _UpdateMetrics(NamedTuple):
    value_loss: jax.Array
    policy_loss: jax.Array
    entropy: jax.Array
    td_error: jax.Array
    pi_grad_norm: jax.Array
    v_grad_norm: jax.Array
    kl: jax.Array
    skipped: jax.Array  # int32, 1 where a non-finite update was skipped


class OptStep(NamedTuple):
    """What one optimizer step of one network returns."""

    params: Any  # the updated parameters
    opt_state: optax.OptState
    loss: jax.Array  # float32, the loss at the parameters before the step
    aux: Any  # the loss function's auxiliary output
    grad_norm: jax.Array  # float32, global norm of the gradient, before clipping


def optimizer_step(opt: optax.GradientTransformation, params: Any, opt_state: optax.OptState,
                   loss_fn: Any, axis_name: str | None = None) -> OptStep:
    """One step of ``opt`` on ``loss_fn(params) -> (loss, aux)``. With ``axis_name`` (a
    data-parallel agent) the loss and gradient are averaged over that mesh axis first, so
    every device applies the same update."""
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    if axis_name is not None:
        loss, grads = jax.lax.pmean((loss, grads), axis_name)
    updates, opt_state = opt.update(grads, opt_state, params)
    return OptStep(optax.apply_updates(params, updates), opt_state, loss, aux,
                   optax.tree.norm(grads))


def _value_update(s: Agent, config: Config, carry: _LearnCarry,
                  batch: tracing.Transition) -> OptStep:
    """SimpleTD: one optimizer step of v; ``aux`` is the td_error of the pre-update v, as
    handed to the policy update."""
    params = carry.params
    v_next = s.nets.v.apply(carry.target_v, network_input(config, params, batch.next_obs))
    target = objectives.td_target(batch.reward, batch.discount, v_next)
    obs = network_input(config, params, batch.obs)

    def loss_fn(v_params):
        td = target - s.nets.v.apply(v_params, obs)
        return (objectives.value_loss(td, config.value_loss, config.huber_delta),
                objectives.td_error_signal(td, config.value_loss, config.huber_delta))

    return optimizer_step(s.v_opt, carry.params.v, carry.opt_state.v, loss_fn, s.axis_name)


def _policy_update(s: Agent, config: Config, carry: _LearnCarry, batch: tracing.Transition,
                   td_error: jax.Array) -> OptStep:
    """VanillaPG (or PPO-clip): one optimizer step of pi weighted by the constant td_error;
    ``aux`` is ``(mean entropy, KL to the behaviour policy)``."""
    obs = network_input(config, carry.params, batch.obs)

    def loss_fn(pi_params):
        dist = s.nets.pi.apply(pi_params, obs)
        log_prob = distributions.log_prob(dist, batch.action)
        entropy = distributions.entropy(dist)
        if config.policy_objective == "ppo_clip":
            loss = objectives.ppo_clip_loss(log_prob, batch.log_prob, td_error, entropy,
                                            config.entropy_coef, config.ppo_epsilon)
        else:
            loss = objectives.vanilla_pg_loss(log_prob, td_error, entropy, config.entropy_coef)
        kl = objectives.kl_to_behaviour(log_prob, batch.log_prob)
        return loss, (jnp.mean(entropy), kl)

    return optimizer_step(s.pi_opt, carry.params.pi, carry.opt_state.pi, loss_fn,
                          s.axis_name)


def _update(s: Agent, config: Config, buffer: replay.ReplayState, carry: _LearnCarry,
            slots: jax.Array) -> tuple[_LearnCarry, _UpdateMetrics]:
    batch = replay.take(buffer, slots)
    v_step = _value_update(s, config, carry, batch)
    td_error = v_step.aux
    pi_step = _policy_update(s, config, carry, batch, td_error)
    pi_params, v_params = pi_step.params, v_step.params
    if config.shared_torso == "sync":
        pi_params, v_params = networks.sync_torsos(pi_params, v_params, config.sync_weight)
    if config.use_target_network:
        target_v = optax.incremental_update(v_params, carry.target_v, config.target_tau)
    else:
        target_v = v_params
    new = _LearnCarry(Params(pi_params, v_params, carry.params.obs_norm), target_v,
                      OptStates(pi_step.opt_state, v_step.opt_state))
    # An empty buffer (only while the first n-1 steps fill the tracer) makes no update,
    # and neither does a non-finite one (unless config.skip_nonfinite is off).
    apply = buffer.size > 0
    skipped = jnp.zeros((), jnp.int32)
    if config.skip_nonfinite:
        finite = (jnp.isfinite(v_step.loss) & jnp.isfinite(pi_step.loss)
                  & jnp.isfinite(v_step.grad_norm) & jnp.isfinite(pi_step.grad_norm)
                  & all_finite((new.params, new.opt_state)))
        skipped = (apply & ~finite).astype(jnp.int32)
        apply = apply & finite
    new = jax.tree.map(lambda a, b: jnp.where(apply, a, b), new, carry)
    entropy, kl, td_mean = pmean(s, (*pi_step.aux, jnp.mean(td_error)))
    return new, _UpdateMetrics(v_step.loss, pi_step.loss, entropy, td_mean,
                               pi_step.grad_norm, v_step.grad_norm, kl, skipped)


def all_finite(tree: Any) -> jax.Array:
    """bool []: every inexact leaf of ``tree`` is finite everywhere."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
              if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.ones((), bool)


# ------------------------------------------------------------------------------------------
# one iteration, run, train
# ------------------------------------------------------------------------------------------


def _iteration(s: Agent, config: Config, state: TrainState,
               _: None) -> tuple[TrainState, Metrics]:
    key, key_act, key_env, key_learn = jax.random.split(state.key, 4)
    key_act, key_env, key_learn = (fold_device(s, k) for k in (key_act, key_env, key_learn))
    noise = (_action_noise(s, config, key_act),
             envs.draw_step_noise(key_env, s.env, config.num_envs, config.rollout_length,
                                  config.resets_per_step or None))
    zero_f = jnp.zeros((), jnp.float32)
    rollout = _RolloutCarry(state.env, state.tracer, state.buffer,
                            jnp.zeros((), jnp.int32), zero_f, zero_f, state.reward_norm)
    rollout, observations = jax.lax.scan(
        functools.partial(_env_step, s, config, state.params), rollout, noise)

    learn = _LearnCarry(state.params, state.target_v, state.opt_state)
    slots = replay.sample_indices(rollout.buffer, key_learn,
                                  (config.updates_per_iteration, config.batch_size))
    learn, update_metrics = jax.lax.scan(
        functools.partial(_update, s, config, rollout.buffer), learn, slots)

    params = learn.params
    if config.normalize_obs:  # the next iteration acts and learns with the updated moments
        params = params._replace(obs_norm=normalization.update(params.obs_norm, observations,
                                                               s.axis_name))
    buffer = replay.clear(rollout.buffer) if config.clear_buffer else rollout.buffer
    env_steps = state.env_steps + psum(s, config.steps_per_iteration)  # all devices' envs
    rollout = rollout._replace(**psum(s, dict(episodes=rollout.episodes,
                                              return_sum=rollout.return_sum,
                                              length_sum=rollout.length_sum)))
    finished = rollout.episodes.astype(jnp.float32)
    nan = jnp.full((), jnp.nan, jnp.float32)
    means = jax.tree.map(jnp.mean, update_metrics._replace(skipped=None))
    metrics = Metrics(
        env_steps=env_steps,
        episodes=rollout.episodes,
        episode_return=jnp.where(finished > 0, rollout.return_sum / jnp.maximum(finished, 1), nan),
        episode_length=jnp.where(finished > 0, rollout.length_sum / jnp.maximum(finished, 1), nan),
        **{k: v for k, v in means._asdict().items() if k != "skipped"},
        skipped_updates=jnp.sum(update_metrics.skipped),
        finite=all_finite((params, learn.target_v, learn.opt_state)),
    )
    new_state = TrainState(
        params=params,
        target_v=learn.target_v,
        opt_state=learn.opt_state,
        env=rollout.env,
        tracer=rollout.tracer,
        buffer=buffer,
        key=key,
        env_steps=env_steps,
        iteration=state.iteration + 1,
        reward_norm=rollout.reward_norm,
    )
    return new_state, metrics


def _action_noise(s: Agent, config: Config, key: jax.Array) -> jax.Array:
    """The rollout's action noise, ``[rollout_length, num_envs, ...]``, in one draw: Gumbel
    or normal noise per step, or for gSDE one standard-normal exploration matrix
    ``[F, d]`` per env, redrawn every ``sde_sample_freq`` steps (0: once per rollout)."""
    spec, steps = s.action_spec, (config.rollout_length, config.num_envs)
    if spec.discrete or config.exploration != "gsde":
        return distributions.draw_noise(key, spec.discrete, (*steps, spec.num_actions))
    every = config.sde_sample_freq or config.rollout_length
    draws = -(-config.rollout_length // every)
    z = jax.random.normal(key, (draws, config.num_envs, config.hidden_sizes[-1],
                                spec.num_actions))
    return jnp.repeat(z, every, axis=0)[:config.rollout_length]


def _run(state: TrainState, config: Config, num_iterations: int,
         axis_name: str | None = None) -> tuple[TrainState, Metrics]:
    s = make_agent(config, axis_name)
    return jax.lax.scan(functools.partial(_iteration, s, config), state, None,
                        length=num_iterations)


def _train(key: jax.Array, config: Config, axis_name: str | None = None) -> TrainResult:
    state, metrics = _run(_init(key, config, axis_name), config, config.num_iterations,
                          axis_name)
    return TrainResult(state, metrics)


# ------------------------------------------------------------------------------------------
# compilation
# ------------------------------------------------------------------------------------------

# XLA options per backend. On CPU, LLVM optimises XLA's generated kernels at -O1 instead of
# -O2: the default program compiled in 4.6 s instead of 5.9 s in fresh processes, and ran
# at the same speed within the noise of this machine, because its heavy work is in library
# matmuls (benchmarks/compile_time.py, NOTES.md). Other backends keep XLA's defaults.
COMPILER_OPTIONS: dict[str, dict[str, Any]] = {"cpu": {"xla_backend_optimization_level": 1}}


def strip_weak_types(tree: Any) -> Any:
    """Same values, no weak types: a restored state and a fresh one (``init`` leaves a
    weak-typed leaf, ``run`` does not) then have equal avals, so one program serves both.
    Typed PRNG keys pass unchanged. Works on host arrays and inside a program."""
    return jax.tree.map(lambda x: x if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
                        else jnp.array(x, dtype=x.dtype), tree)


def compiler_options() -> dict[str, Any] | None:
    """The XLA options purea2c compiles with on the default backend (``None``: XLA's own)."""
    return COMPILER_OPTIONS.get(jax.default_backend())


class _Jit:
    """``jax.jit(fn, **kw)`` with `compiler_options` of the backend in use at the first call
    (not at import, which would fix JAX's platform too early). Calls, ``.lower`` and
    ``.trace`` go to the jitted function. Called on tracers (inside the caller's ``jit``,
    ``vmap`` or ``grad``) it is a plain ``jax.jit``: the caller's program has its own
    options."""

    def __init__(self, fn: Any, **jit_kwargs: Any):
        functools.update_wrapper(self, fn)
        self._fn, self._kwargs = fn, jit_kwargs
        self._plain = jax.jit(fn, **jit_kwargs)
        self._jitted: dict[str, Any] = {}

    def _get(self) -> Any:
        backend = jax.default_backend()
        if backend not in self._jitted:
            self._jitted[backend] = jax.jit(self._fn, compiler_options=compiler_options(),
                                            **self._kwargs)
        return self._jitted[backend]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        traced = any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves((args, kwargs)))
        if traced:
            return self._plain(*args, **kwargs)
        # One dtype for the traced hyperparameters, whatever scalar type they came as: one
        # compilation per static configuration.
        args = tuple(a.canonical() if isinstance(a, Config) else a for a in args)
        return self._get()(*args, **kwargs)

    def lower(self, *args: Any, **kwargs: Any) -> Any:
        return self._get().lower(*args, **kwargs)

    def trace(self, *args: Any, **kwargs: Any) -> Any:
        return self._get().trace(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # the rest of jax.jit's API (eval_shape, ...)
        # Not set yet (copy, pickle), or a dunder that introspection asks of any callable
        # (``jax.vmap`` reads ``__code__``): answering through `_get` would pick the backend,
        # and a module that wraps `init` or `run` at import would then start JAX's backends
        # before ``jax.distributed.initialize`` can run.
        if name in ("_fn", "_kwargs", "_plain", "_jitted") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._get(), name)


def _jit(fn: Any = None, **jit_kwargs: Any) -> Any:
    if fn is None:
        return functools.partial(_jit, **jit_kwargs)
    return _Jit(fn, **jit_kwargs)


@_jit
def init(key: jax.Array, config: Config) -> TrainState:
    """A fresh `TrainState`: initial parameters, optimizer states, reset envs, empty tracer
    and buffer. ``key`` is a typed or raw PRNG key; ``config`` a `Config`."""
    return _init(key, config)


@_jit(static_argnums=2)
def run(state: TrainState, config: Config, num_iterations: int) -> tuple[TrainState, Metrics]:
    """Continues a run by ``num_iterations`` (static) iterations; returns the new state and
    the per-iteration metrics ``[num_iterations]``. ``init`` then several ``run`` calls give
    the same result as one ``train`` call of the same total length."""
    return _run(state, config, num_iterations)


@_jit
def train(key: jax.Array, config: Config) -> TrainResult:
    """Trains for ``config.num_iterations`` iterations from ``key``; pure and deterministic.

    Works plainly, under ``jax.jit``, and under ``jax.vmap`` over keys or over traced
    hyperparameters of ``config``. Returns `TrainResult` (final state, metrics
    ``[num_iterations]``).
    """
    return _train(key, config)
