"""Stable-Baselines3 side of benchmarks/learning.py (runs in the sb3 venv of benchmarks/peers.py).

Trains SB3 A2C on one (environment, seed) with rl-baselines3-zoo's hyperparameters
(`hyperparams/a2c.yml`), records the training episodes (Monitor returns against the timestep
at which each ended), then evaluates the final policy over ``eval_episodes`` episodes
deterministically and by sampling, on the same evaluation seeds, with the VecNormalize
statistics frozen (``training=False, norm_reward=False``). Prints one ``RESULT_JSON`` line.

    python sb3_learning_worker.py '{"env": "Pendulum-v1", "seed": 0, "eval_episodes": 100}'
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from stable_baselines3 import A2C  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402
from stable_baselines3.common.evaluation import evaluate_policy  # noqa: E402
from stable_baselines3.common.vec_env import VecNormalize  # noqa: E402

import _worker_util as util  # noqa: E402

VERSIONS = ["stable-baselines3", "torch", "gymnasium", "numpy"]


def linear(start: float):
    return lambda progress_remaining: progress_remaining * start


# rl-baselines3-zoo hyperparams/a2c.yml. "normalize" is VecNormalize with the algorithm's
# gamma (the zoo passes gamma on to VecNormalize).
ZOO = {
    "CartPole-v1": dict(n_envs=8, n_timesteps=500_000, normalize=False,
                        kwargs=dict(ent_coef=0.0)),
    "Acrobot-v1": dict(n_envs=16, n_timesteps=500_000, normalize=True,
                       kwargs=dict(ent_coef=0.0)),
    "MountainCar-v0": dict(n_envs=16, n_timesteps=1_000_000, normalize=True,
                           kwargs=dict(ent_coef=0.0)),
    "Pendulum-v1": dict(n_envs=8, n_timesteps=1_000_000, normalize=True, kwargs=dict(
        ent_coef=0.0, max_grad_norm=0.5, n_steps=8, gae_lambda=0.9, vf_coef=0.4, gamma=0.9,
        use_rms_prop=True, normalize_advantage=False, learning_rate="lin_7e-4", use_sde=True,
        policy_kwargs=dict(log_std_init=-2, ortho_init=False))),
    "MountainCarContinuous-v0": dict(n_envs=4, n_timesteps=100_000, normalize=True, kwargs=dict(
        n_steps=100, ent_coef=0.0, use_sde=True, sde_sample_freq=16,
        policy_kwargs=dict(log_std_init=0.0, ortho_init=False))),
}


class EpisodeLog(BaseCallback):
    """(timestep at the end of the episode, Monitor return) of every training episode."""

    def __init__(self):
        super().__init__()
        self.steps: list[int] = []
        self.returns: list[float] = []

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                self.steps.append(int(self.num_timesteps))
                self.returns.append(float(info["episode"]["r"]))
        return True


def main() -> None:
    p = util.params()
    torch.set_num_threads(p.get("torch_threads", 1))
    env_id, seed = p["env"], p["seed"]
    zoo = ZOO[env_id]
    kwargs = dict(zoo["kwargs"])
    if kwargs.get("learning_rate") == "lin_7e-4":
        kwargs["learning_rate"] = linear(7e-4)
    total = p.get("total_timesteps") or zoo["n_timesteps"]
    gamma = kwargs.get("gamma", 0.99)

    start = time.perf_counter()
    env = make_vec_env(env_id, n_envs=zoo["n_envs"], seed=seed)
    if zoo["normalize"]:
        env = VecNormalize(env, gamma=gamma)
    model = A2C("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **kwargs)
    log = EpisodeLog()
    model.learn(total_timesteps=total, callback=log)
    train_s = time.perf_counter() - start

    def evaluate(deterministic: bool) -> list[float]:
        # The same evaluation seeds for both modes: a fresh env seeded alike each time.
        eval_env = make_vec_env(env_id, n_envs=10, seed=100_000 + 1000 * seed)
        if zoo["normalize"]:
            eval_env = VecNormalize(eval_env, gamma=gamma, training=False, norm_reward=False)
            eval_env.obs_rms = env.obs_rms.copy()
        returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=p["eval_episodes"],
                                     deterministic=deterministic, return_episode_rewards=True)
        return [float(r) for r in returns]

    start = time.perf_counter()
    greedy = evaluate(True)
    sampled = evaluate(False)
    eval_s = time.perf_counter() - start
    util.emit({
        "env": env_id, "seed": seed, "env_steps": int(model.num_timesteps),
        "train_s": train_s, "eval_s": eval_s,
        "greedy_mean": float(np.mean(greedy)), "sampled_mean": float(np.mean(sampled)),
        "greedy_returns": greedy, "sampled_returns": sampled,
        "curve_steps": log.steps, "curve_returns": log.returns,
        "hyperparameters": json.loads(json.dumps(zoo, default=repr)),
        "torch_threads": torch.get_num_threads(), "versions": util.versions(VERSIONS)})


if __name__ == "__main__":
    main()
