"""One training iteration of an `Agent` (``purea2c.agent``), stage by stage: the pure
functions `Agent.run` scans.

    iteration  1. rollout  lax.scan over rollout_length env steps (`env_step`): pi samples A
                           and log pi(A|S), vmapped env step with purea2c's auto-reset (Box
                           actions clipped to the bounds; A itself is stored), n-step
                           tracer, masked buffer add. The rollout's action noise and env noise
                           (transition keys, reset states) are drawn before the scan, each in
                           one call
               2. learn    lax.scan over updates_per_iteration minibatches from the buffer
                           (their slots drawn in one call), `update`: SimpleTD update of v
                           (td_error from the pre-update v), then pi's policy-gradient update
                           weighted by td_error; torso sync; target net
               3. clear    the buffer (if clear_buffer); the observation statistics take in
                           the rollout's observations (if normalize_obs); this iteration's
                           metrics, with the count of skipped non-finite updates and a finite
                           flag

Rewards are scaled by the running return std inside the rollout (if normalize_reward).
With an ``axis_name`` (one agent over several devices, `purea2c.sharding`), gradients,
statistics and metrics are combined over that mesh axis. Each function takes the agent
first (its parts and its config: static fields fix the program, traced ones are inputs).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from purea2c import distributions, envs, networks, normalization, objectives, replay, tracing
from purea2c.config import Config
from purea2c.state import Metrics, OptStates, Params, TrainState


def network_input(config: Config, params: Params, obs: Any) -> Any:
    """What the networks see of observations ``[..., *obs_shape]``: normalised by
    ``params.obs_norm`` when ``config.normalize_obs`` (array observations only), else the
    observations themselves."""
    if config.normalize_obs:
        return normalization.normalize(params.obs_norm, obs, config.obs_clip)
    return obs


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


def env_step(s: Any, params: Params, carry: _RolloutCarry,
             noise: tuple[jax.Array, envs.StepNoise]) -> tuple[_RolloutCarry, jax.Array]:
    """One step of every env; emits the observations acted on, ``[num_envs, *obs_shape]``
    (for the observation statistics; None when they are off)."""
    config = s.config
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


class UpdateMetrics(NamedTuple):
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


def value_update(s: Any, carry: _LearnCarry, batch: tracing.Transition) -> OptStep:
    """SimpleTD: one optimizer step of v; ``aux`` is the td_error of the pre-update v, as
    handed to the policy update."""
    config = s.config
    params = carry.params
    v_next = s.nets.v.apply(carry.target_v, network_input(config, params, batch.next_obs))
    target = objectives.td_target(batch.reward, batch.discount, v_next)
    obs = network_input(config, params, batch.obs)

    def loss_fn(v_params):
        td = target - s.nets.v.apply(v_params, obs)
        return (objectives.value_loss(td, config.value_loss, config.huber_delta),
                objectives.td_error_signal(td, config.value_loss, config.huber_delta))

    return optimizer_step(s.v_opt, carry.params.v, carry.opt_state.v, loss_fn, s.axis_name)


def policy_update(s: Any, carry: _LearnCarry, batch: tracing.Transition,
                  td_error: jax.Array) -> OptStep:
    """VanillaPG (or PPO-clip): one optimizer step of pi weighted by the constant td_error;
    ``aux`` is ``(mean entropy, KL to the behaviour policy)``."""
    obs = network_input(s.config, carry.params, batch.obs)

    def loss_fn(pi_params):
        dist = s.nets.pi.apply(pi_params, obs)
        log_prob = distributions.log_prob(dist, batch.action)
        entropy = distributions.entropy(dist)
        loss = s.policy_loss(log_prob, batch.log_prob, td_error, entropy)
        kl = objectives.kl_to_behaviour(log_prob, batch.log_prob)
        return loss, (jnp.mean(entropy), kl)

    return optimizer_step(s.pi_opt, carry.params.pi, carry.opt_state.pi, loss_fn,
                          s.axis_name)


def update(s: Any, buffer: replay.ReplayState, carry: _LearnCarry,
           slots: jax.Array) -> tuple[_LearnCarry, UpdateMetrics]:
    config = s.config
    batch = replay.take(buffer, slots)
    v_step = value_update(s, carry, batch)
    td_error = v_step.aux
    pi_step = policy_update(s, carry, batch, td_error)
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
    entropy, kl, td_mean = s.pmean((*pi_step.aux, jnp.mean(td_error)))
    return new, UpdateMetrics(v_step.loss, pi_step.loss, entropy, td_mean,
                               pi_step.grad_norm, v_step.grad_norm, kl, skipped)


def all_finite(tree: Any) -> jax.Array:
    """bool []: every inexact leaf of ``tree`` is finite everywhere."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
              if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.ones((), bool)


# ------------------------------------------------------------------------------------------
# one iteration, run, train
# ------------------------------------------------------------------------------------------


def iteration(s: Any, state: TrainState, _: None) -> tuple[TrainState, Metrics]:
    """One iteration of the agent ``s`` (an `Agent`): rollout, learn, clear, metrics."""
    config = s.config
    key, key_act, key_env, key_learn = jax.random.split(state.key, 4)
    key_act, key_env, key_learn = (s.fold_device(k) for k in (key_act, key_env, key_learn))
    noise = (action_noise(s, key_act),
             envs.draw_step_noise(key_env, s.env, config.num_envs, config.rollout_length,
                                  config.resets_per_step or None))
    zero_f = jnp.zeros((), jnp.float32)
    rollout = _RolloutCarry(state.env, state.tracer, state.buffer,
                            jnp.zeros((), jnp.int32), zero_f, zero_f, state.reward_norm)
    rollout, observations = jax.lax.scan(
        functools.partial(env_step, s, state.params), rollout, noise)

    learn = _LearnCarry(state.params, state.target_v, state.opt_state)
    slots = replay.sample_indices(rollout.buffer, key_learn,
                                  (config.updates_per_iteration, config.batch_size))
    learn, update_metrics = jax.lax.scan(
        functools.partial(update, s, rollout.buffer), learn, slots)

    params = learn.params
    if config.normalize_obs:  # the next iteration acts and learns with the updated moments
        params = params._replace(obs_norm=normalization.update(params.obs_norm, observations,
                                                               s.axis_name))
    buffer = replay.clear(rollout.buffer) if config.clear_buffer else rollout.buffer
    env_steps = state.env_steps + s.psum(config.steps_per_iteration)  # all devices' envs
    rollout = rollout._replace(**s.psum(dict(episodes=rollout.episodes,
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


def action_noise(s: Any, key: jax.Array) -> jax.Array:
    """The rollout's action noise, ``[rollout_length, num_envs, ...]``, in one draw: Gumbel
    or normal noise per step, or for gSDE one standard-normal exploration matrix
    ``[F, d]`` per env, redrawn every ``sde_sample_freq`` steps (0: once per rollout)."""
    config = s.config
    spec, steps = s.action_spec, (config.rollout_length, config.num_envs)
    if spec.discrete or config.exploration != "gsde":
        return distributions.draw_noise(key, spec.discrete, (*steps, spec.num_actions))
    every = config.sde_sample_freq or config.rollout_length
    draws = -(-config.rollout_length // every)
    z = jax.random.normal(key, (draws, config.num_envs, config.hidden_sizes[-1],
                                spec.num_actions))
    return jnp.repeat(z, every, axis=0)[:config.rollout_length]


