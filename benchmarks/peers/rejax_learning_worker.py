"""rejax side of benchmarks/learning.py: rejax's PPO on one MinAtar game or suite task (rejax venv
of benchmarks/peers.py: rejax 0.1.3, gymnax 0.0.9).

Trains rejax PPO on ``seeds`` seeds at once (``jax.vmap`` of rejax's ``train`` over the seed
keys, jitted as one program; compile time measured apart) for ``total_timesteps`` env steps per
seed, rounded up to whole PPO iterations. Then each seed's final policy plays
``eval_episodes`` fresh episodes greedily (argmax of the logits) and as many by sampling, with
the same evaluation keys for both modes. Prints one ``RESULT_JSON`` line.

    python rejax_learning_worker.py '{"env": "Breakout-MinAtar", "seeds": 2,
                                      "total_timesteps": 50000, "eval_episodes": 100}'

Hyperparameters: rejax's own MinAtar PPO settings, the ``ppo`` section of
``benchmark/breakout_1m.yaml`` in the rejax repository (github.com/keraJLi/rejax, the same file
at tag v0.1.3 and on main). It is the only MinAtar config rejax ships (its ``configs/`` folder
holds gymnax classic control, brax and navix configs only), so it is used for all four games;
the file's ``total_timesteps`` (1M) and ``eval_freq`` are replaced by the budget asked for and
by the curve recording below. The network is what that config implies: rejax PPO's default
separate actor and critic MLPs, hidden layers (64, 64), with the config's tanh activation, on
the flattened 10x10xC observation (the config names no CNN for PPO; it does for DQN).
Observations and rewards are not normalised (the config leaves ``normalize_observations``
commented out).

Training curve: rejax's PPO keeps no episode statistics, so the env is wrapped to carry, per
parallel env, its running return and the sum and count of the returns of the episodes that have
ended; rejax's evaluation callback, called after every PPO iteration (``eval_freq`` = one
iteration), returns those counters instead of running evaluation episodes. Differences between
iterations give the mean return of the training episodes (sampled actions) that ended in each
iteration, NaN (null) where none ended -- the quantity purea2c's curve records.

The games are gymnax 0.0.9's (rejax 0.1.3 needs gymnax < 1.0). Against gymnax 1.0 (purea2c's
environment): episodes end at ``max_steps_in_episode`` (1000; Freeway 2500) as ``done`` rather
than as truncation; Breakout, Asterix and Freeway play alike; SpaceInvaders differs in two
places: an episode starts with aliens in columns 2-8 (1.0, and later waves in both: 2-7), and
an enemy bullet ends the episode when it reaches the player's position before the move (1.0:
after it).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gymnax  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import struct  # noqa: E402
from rejax import PPO  # noqa: E402

import _worker_util as util  # noqa: E402
from rejax_worker import make_evaluator  # noqa: E402

VERSIONS = ["rejax", "jax", "jaxlib", "flax", "optax", "gymnax", "distrax", "numpy", "brax",
            "craftax", "navix"]
SOURCE = ("rejax benchmark/breakout_1m.yaml, section ppo (github.com/keraJLi/rejax, tag "
          "v0.1.3); total_timesteps and eval_freq replaced")
# rejax benchmark/breakout_1m.yaml, section ppo, less env, total_timesteps and eval_freq.
MINATAR_PPO: dict[str, Any] = {
    "agent_kwargs": {"activation": "tanh"}, "num_envs": 32, "num_steps": 32, "num_epochs": 4,
    "num_minibatches": 4, "learning_rate": 0.00025674088686342003, "max_grad_norm": 1.0,
    "gamma": 0.995, "gae_lambda": 0.95, "clip_eps": 0.2, "ent_coef": 0.01, "vf_coef": 0.5,
}
NETWORK = ("separate actor and critic MLPs, hidden (64, 64), tanh (rejax PPO's default "
           "hidden_layer_sizes), on the flattened observation")


class TallyState(struct.PyTreeNode):
    inner: Any
    running: jax.Array  # return of the episode in progress
    ended_sum: jax.Array  # sum of the returns of the episodes that have ended
    ended_count: jax.Array  # how many have ended


class Wrapper:
    """Everything is the wrapped env's unless a subclass says otherwise."""

    def __init__(self, env: Any):
        self.env = env

    def __getattr__(self, name: str) -> Any:
        # "env" is not set yet when copy.deepcopy builds the object without __init__; and a
        # dunder (``__deepcopy__``: Brax's env defines one) must not come from the wrapped env.
        if name == "env" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.env, name)


class EpisodeTally(Wrapper):
    """A gymnax (0.0.x API) environment whose state also counts the episodes that ended and
    sums their returns. The wrapped env resets itself when an episode ends, as gymnax envs do;
    everything else is the wrapped env's."""

    def reset(self, key, params=None):
        obs, inner = self.env.reset(key, params)
        zero = jnp.zeros((), jnp.float32)
        return obs, TallyState(inner, zero, zero, jnp.zeros((), jnp.int32))

    def step(self, key, state, action, params=None):
        obs, inner, reward, done, info = self.env.step(key, state.inner, action, params)
        ret = state.running + reward.astype(jnp.float32)
        state = TallyState(inner, jnp.where(done, 0.0, ret),
                           state.ended_sum + jnp.where(done, ret, 0.0),
                           state.ended_count + done.astype(jnp.int32))
        return obs, state, reward, done, info


def tally_callback(algo, ts, rng):
    """Replaces rejax's evaluation callback: reads the counters, plays no episodes."""
    return ts.global_step, ts.env_state.ended_sum, ts.env_state.ended_count


# rejax configs/brax/hopper.yaml, section ppo ("# tuned"), less env, total_timesteps and
# eval_freq (github.com/keraJLi/rejax, main).
HOPPER_PPO: dict[str, Any] = {
    "agent_kwargs": {"activation": "tanh"}, "num_envs": 32, "num_steps": 32, "num_epochs": 9,
    "num_minibatches": 2, "learning_rate": 0.00025674088686342003, "max_grad_norm": 1.0,
    "gamma": 0.995, "gae_lambda": 0.95, "clip_eps": 0.2, "ent_coef": 0.01, "vf_coef": 0.5,
    "normalize_observations": True,
}
HOPPER_SOURCE = ("rejax configs/brax/hopper.yaml, section ppo (github.com/keraJLi/rejax); "
                 "total_timesteps and eval_freq replaced")
# navix's own rejax baseline for DoorKey-8x8 (navix repository, baselines/rejax/configs/
# navix_doorkey_8x8_1m.yaml, section ppo), less env, total_timesteps and eval_freq; navix
# reports a mean return of 0.99 at 262k steps with it (32 seeds).
NAVIX_DOORKEY_PPO: dict[str, Any] = {
    "agent_kwargs": {"activation": "tanh"}, "num_envs": 16, "num_steps": 128, "num_epochs": 2,
    "num_minibatches": 1, "learning_rate": 0.0003, "max_grad_norm": 1.0, "gamma": 0.95,
    "gae_lambda": 0.9, "clip_eps": 0.2, "ent_coef": 0.01, "vf_coef": 0.5,
    "normalize_observations": False,
}
NAVIX_SOURCE = ("navix baselines/rejax/configs/navix_doorkey_8x8_1m.yaml, section ppo "
                "(github.com/epignatelli/navix); total_timesteps and eval_freq replaced")
# rejax ships no Craftax config. The Craftax baselines' PPO (Craftax paper, Matthews et al.
# 2024; Craftax_Baselines ppo.py): lr 2e-4, 4 epochs, 8 minibatches, gamma 0.99, GAE 0.8, clip
# 0.2, entropy 0.01, value 0.5, grad norm 1.0, with two changes for a 1M budget on a CPU: 64
# envs x 64 steps per iteration instead of 1024 x 64 (which would make 15 updates in 1M
# steps), and hidden layers (256, 256) tanh (the size of purea2c's Craftax preset) instead of
# 512-wide ones.
CRAFTAX_PPO: dict[str, Any] = {
    "agent_kwargs": {"activation": "tanh", "hidden_layer_sizes": (256, 256)}, "num_envs": 64,
    "num_steps": 64, "num_epochs": 4, "num_minibatches": 8, "learning_rate": 2e-4,
    "max_grad_norm": 1.0, "gamma": 0.99, "gae_lambda": 0.8, "clip_eps": 0.2, "ent_coef": 0.01,
    "vf_coef": 0.5,
}
CRAFTAX_SOURCE = ("the Craftax baselines' PPO settings (Craftax paper; Craftax_Baselines "
                  "ppo.py) with 64 envs x 64 steps instead of 1024 x 64 and hidden layers "
                  "(256, 256) instead of 512-wide")


def settings(env_name: str) -> tuple[dict[str, Any], str, str]:
    """(PPO settings, their source, the network) for ``env_name``."""
    if env_name.startswith("brax/"):
        return HOPPER_PPO, HOPPER_SOURCE, ("separate actor and critic MLPs (64, 64), tanh, "
                                           "Gaussian policy, running observation "
                                           "normalisation")
    if env_name.startswith("craftax/"):
        return CRAFTAX_PPO, CRAFTAX_SOURCE, "separate actor and critic MLPs (256, 256), tanh"
    if env_name.startswith("navix/"):
        return NAVIX_DOORKEY_PPO, NAVIX_SOURCE, ("separate actor and critic MLPs (64, 64), "
                                                 "tanh, on the flattened observation")
    return MINATAR_PPO, SOURCE, NETWORK


def make_env(env_name: str):
    """gymnax 0.0.9's env for a bare name; rejax's compat layer (``rejax.compat.create``)
    for ``suite/name`` (Brax through ``brax.envs.create`` with its episode and auto-reset
    wrappers, Craftax with its own auto-reset)."""
    if "/" not in env_name:
        return gymnax.make(env_name)
    from rejax.compat import create
    env, env_params = create(env_name)
    if env_name.startswith("craftax/"):
        # rejax 0.1.3 wraps Craftax's parameters in a class whose __getattr__ recurses
        # without end under copy.deepcopy (which PPO.create applies to its arguments); the
        # wrapper only adds max_steps_in_episode (= max_timesteps), which this worker's
        # evaluation reads from max_timesteps instead. Craftax's own parameters are used.
        env_params = env.default_params
        # Craftax's spaces are its own classes, which rejax does not recognise (it would take
        # the 17 discrete actions for a Box): the same spaces as gymnax's.
        env = GymnaxSpaces(env)
    return env, env_params


class GymnaxSpaces(Wrapper):
    """An env whose action and observation spaces are given as gymnax 0.0.9's classes
    (Discrete with the same ``n``; Box with the same bounds, shape and dtype); everything
    else is the wrapped env's."""

    def reset(self, key, params=None):
        return self.env.reset(key, params)

    def step(self, key, state, action, params=None):
        return self.env.step(key, state, action, params)

    def action_space(self, params=None):
        space = self.env.action_space(params)
        if hasattr(space, "n"):
            return gymnax.environments.spaces.Discrete(int(space.n))
        return space

    def observation_space(self, params=None):
        space = self.env.observation_space(params)
        return gymnax.environments.spaces.Box(space.low, space.high, space.shape, space.dtype)


def make_algo(env_name: str, total_timesteps: int):
    env, env_params = make_env(env_name)
    ppo = dict(settings(env_name)[0])
    ppo["agent_kwargs"] = dict(ppo["agent_kwargs"])
    per_iteration = ppo["num_envs"] * ppo["num_steps"]
    iterations = max(1, math.ceil(total_timesteps / per_iteration))
    algo = PPO.create(env=EpisodeTally(env), env_params=env_params, **ppo,
                      total_timesteps=iterations * per_iteration, eval_freq=per_iteration,
                      skip_initial_evaluation=True)
    return algo.replace(eval_callback=tally_callback), env, env_params, iterations


def make_policy_evaluator(algo, env, env_params, num_episodes: int):
    """rejax_worker's ``evaluate``, taking the train state: greedy is the argmax of the logits
    (discrete) or the Gaussian's mean clipped to the action range; else a sample (rejax's
    ``act``). Observations are normalised by the run's statistics where the settings
    normalise them, as rejax's ``make_act`` does."""
    normalize = getattr(algo, "normalize_observations", False)
    low_high = getattr(algo.actor, "action_range", None)

    def act(ts, obs, key, greedy):
        if normalize:
            obs = algo.normalize_obs(ts.obs_rms_state, obs)
        params = ts.actor_ts.params
        if not greedy:
            return algo.actor.apply(params, obs, key, method="act")
        dist = algo.actor.apply(params, obs, method=lambda m, o: m._action_dist(o))
        if low_high is None:
            return jnp.argmax(dist.logits, axis=-1)
        return jnp.clip(dist.mean(), low_high[0], low_high[1])

    return make_evaluator(algo, env, env_params, num_episodes, act)


def curve(steps: np.ndarray, ended_sum: np.ndarray, ended_count: np.ndarray):
    """Per seed and iteration, the mean return of the training episodes that ended in that
    iteration (None where none did), and their count. Inputs: ``[seeds, iters(, envs)]``."""
    total = ended_sum.astype(np.float64).sum(-1)
    count = ended_count.astype(np.int64).sum(-1)
    zero = np.zeros((total.shape[0], 1))
    d_total = np.diff(total, axis=1, prepend=zero)
    d_count = np.diff(count, axis=1, prepend=zero.astype(np.int64))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(d_count > 0, d_total / np.maximum(d_count, 1), np.nan)
    returns = [[None if not math.isfinite(v) else float(v) for v in row] for row in mean]
    return steps[0].astype(int).tolist(), returns, d_count.tolist()


def main() -> None:
    p = util.params()
    env_name, num_seeds = p["env"], int(p.get("seeds", 16))
    eval_episodes = int(p.get("eval_episodes", 100))
    algo, env, env_params, iterations = make_algo(env_name, int(p["total_timesteps"]))
    keys = jax.random.split(jax.random.PRNGKey(int(p.get("seed", 0))), num_seeds)

    train = jax.jit(jax.vmap(algo.train))
    start = time.perf_counter()
    compiled = train.lower(keys).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    ts, (steps, ended_sum, ended_count) = jax.block_until_ready(compiled(keys))
    train_s = time.perf_counter() - start

    evaluate = make_policy_evaluator(algo, env, env_params, eval_episodes)
    evaluate = jax.jit(jax.vmap(evaluate, in_axes=(0, 0, None)), static_argnums=2)
    # The same evaluation keys for both modes.
    eval_keys = jax.random.split(jax.random.PRNGKey(int(p.get("seed", 0)) + 1), num_seeds)
    start = time.perf_counter()
    greedy = np.asarray(evaluate(ts, eval_keys, True), np.float64)
    sampled = np.asarray(evaluate(ts, eval_keys, False), np.float64)
    eval_s = time.perf_counter() - start

    curve_steps, curve_returns, curve_episodes = curve(
        np.asarray(steps), np.asarray(ended_sum), np.asarray(ended_count))
    util.emit({
        "env": env_name, "seeds": num_seeds, "env_steps": int(np.asarray(ts.global_step)[0]),
        "requested_timesteps": int(p["total_timesteps"]), "iterations": iterations,
        "compile_s": compile_s, "train_s": train_s, "eval_s": eval_s,
        "eval_episodes": eval_episodes,
        "greedy_per_seed": greedy.mean(-1).tolist(), "sampled_per_seed": sampled.mean(-1).tolist(),
        "curve_steps": curve_steps, "curve_returns": curve_returns,
        "curve_episodes": curve_episodes,
        "hyperparameters": {**settings(env_name)[0], "source": settings(env_name)[1],
                            "network": settings(env_name)[2]},
        "versions": util.versions(VERSIONS), "devices": [str(d) for d in jax.devices()]})


if __name__ == "__main__":
    main()
