"""Stable-Baselines3 side of benchmarks/peers.py (runs in the sb3 venv).

speed: SB3 A2C at its default schedule (n_envs x n_steps=5, one full-batch update per
       rollout), MlpPolicy, CartPole-v1; steady-state env steps/s after a warm-up.
solve: rl-baselines3-zoo's A2C CartPole-v1 hyperparameters (n_envs 8, MlpPolicy,
       ent_coef 0.0, everything else SB3's defaults).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from stable_baselines3 import A2C  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402
from stable_baselines3.common.evaluation import evaluate_policy  # noqa: E402

import _worker_util as util  # noqa: E402

VERSIONS = ["stable-baselines3", "torch", "gymnasium", "numpy"]
ENV = "CartPole-v1"


def speed(p: dict) -> dict:
    n_envs, n_steps = p.get("n_envs", 8), p.get("n_steps", 5)
    per_rollout = n_envs * n_steps
    start = time.perf_counter()
    model = A2C("MlpPolicy", make_vec_env(ENV, n_envs=n_envs, seed=p.get("seed", 0)),
                n_steps=n_steps, seed=p.get("seed", 0), device="cpu", verbose=0)
    setup_s = time.perf_counter() - start
    model.learn(total_timesteps=util.steps_for(0, 0, per_rollout, p.get("warmup_steps", 2000)))
    probe = util.steps_for(0, 0, per_rollout, 2000)
    start = time.perf_counter()
    model.learn(total_timesteps=probe, reset_num_timesteps=False)
    rate = probe / (time.perf_counter() - start)
    timed = util.steps_for(rate, p.get("target_s", 3.0), per_rollout, probe)
    runs = []
    for _ in range(p.get("repeats", 1)):
        before = model.num_timesteps
        start = time.perf_counter()
        model.learn(total_timesteps=timed, reset_num_timesteps=False)
        runs.append((model.num_timesteps - before) / (time.perf_counter() - start))
    runs.sort()
    return {"steps_per_s": runs[len(runs) // 2], "steps_per_s_all": runs, "setup_s": setup_s,
            "timed_steps": timed, "torch_threads": torch.get_num_threads(),
            "schedule": {"n_envs": n_envs, "n_steps": n_steps, "policy": "MlpPolicy",
                         "optimizer": "RMSprop (SB3 default)"}}


def solve(p: dict) -> dict:
    seed = p["seed"]
    hyper = {"n_envs": 8, "policy": "MlpPolicy", "ent_coef": 0.0}  # rl-baselines3-zoo a2c.yml
    eval_env = make_vec_env(ENV, n_envs=10, seed=10_000 + seed)

    def make():
        env = make_vec_env(ENV, n_envs=hyper["n_envs"], seed=seed)
        return A2C(hyper["policy"], env, ent_coef=hyper["ent_coef"], seed=seed, device="cpu",
                   verbose=0)

    def train_chunk(model):
        model.learn(total_timesteps=p["eval_every"], reset_num_timesteps=False)
        return model

    def evaluate(model):
        returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=p["eval_episodes"],
                                     deterministic=True, return_episode_rewards=True)
        return [float(r) for r in returns]

    out = util.solve_loop(make, train_chunk, lambda m: int(m.num_timesteps), evaluate, p)
    out["hyperparameters"] = hyper
    out["torch_threads"] = torch.get_num_threads()
    return out


def main() -> None:
    p = util.params()
    if p.get("torch_threads"):
        torch.set_num_threads(p["torch_threads"])
    out = speed(p) if p["mode"] == "speed" else solve(p)
    out["versions"] = util.versions(VERSIONS)
    util.emit(out)


if __name__ == "__main__":
    main()
