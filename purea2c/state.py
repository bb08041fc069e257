"""What a training run carries and reports: `Params`, `OptStates`, `TrainState`, `Metrics`,
`TrainResult` (NamedTuples: pytrees whose leaves are arrays)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import optax

from purea2c import envs, normalization, replay, tracing


class Params(NamedTuple):
    """What acting needs: the two networks' variables and the observation statistics."""

    pi: Any  # flax variables of the policy
    v: Any  # flax variables of the value function
    obs_norm: normalization.Moments | None = None  # running observation moments
    # (None unless Config.normalize_obs)


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
