"""Jumanji's own A2C trainer (``jumanji.training``, the ``jumanji[train]`` extra) on one task,
for benchmarks/learning.py: the same-run anchor of the Jumanji rows. Runs in its own venv
(jumanji 1.1.2 with its train extra: dm-haiku, rlax, hydra-core 1.3).

Builds the trainer exactly as ``jumanji/training/train.py`` does (``setup_env``,
``setup_agent``, ``setup_evaluators``, ``setup_training_state`` from the Hydra config composed
with ``env=<name> agent=a2c``; the env's own settings in ``configs/env/<name>.yaml``), then
runs its learner steps (``agent.run_epoch``: ``n_steps`` x ``total_batch_size`` env steps
each) for ``total_timesteps`` env steps, rounded up to whole learner steps, in
``curve_points`` equal epochs. After each epoch its stochastic evaluator plays
``curve_episodes`` episodes (the curve); at the end its greedy and stochastic evaluators play
``eval_episodes`` episodes each. One seed per process (the trainer's ``seed``). Prints one
``RESULT_JSON`` line.

    python jumanji_a2c_worker.py '{"env": "snake", "seed": 0, "total_timesteps": 262144,
                                   "eval_episodes": 100}'
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hydra  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import jumanji.training  # noqa: E402
import numpy as np  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from jumanji.training.setup_train import (setup_agent, setup_env, setup_evaluators,  # noqa: E402
                                          setup_training_state)

import _worker_util as util  # noqa: E402

# jumanji 1.1.2's trainer calls jax.device_put_replicated, which jax 0.10 removed: the same
# value stacked once per device, as pmap takes it (the drop-in of JAX's pmap migration guide).
def _replicated(x, devices):
    return jax.tree_util.tree_map(lambda a: jnp.stack([jnp.asarray(a)] * len(devices)), x)


jax.device_put_replicated = _replicated

VERSIONS = ["jumanji", "jax", "jaxlib", "dm-haiku", "rlax", "optax", "hydra-core", "numpy"]


def compose(env: str, seed: int, eval_episodes: int):
    config_dir = os.path.join(os.path.dirname(jumanji.training.__file__), "configs")
    with hydra.initialize_config_dir(config_dir=config_dir, version_base=None):
        return hydra.compose("config.yaml", overrides=[
            f"env={env}", "agent=a2c", f"seed={seed}", "logger.type=terminal",
            f"env.evaluation.eval_total_batch_size={eval_episodes}",
            f"env.evaluation.greedy_eval_total_batch_size={eval_episodes}"])


def main() -> None:
    p = util.params()
    seed, budget = int(p.get("seed", 0)), int(p["total_timesteps"])
    eval_episodes, points = int(p.get("eval_episodes", 100)), int(p.get("curve_points", 16))
    curve_episodes = int(p.get("curve_episodes", 64))
    cfg = compose(p["env"], seed, eval_episodes)
    training = cfg.env.training
    per_step = int(training.n_steps) * int(training.total_batch_size)
    learner_steps = max(1, math.ceil(budget / per_step))
    points = max(1, min(points, learner_steps))
    per_epoch = math.ceil(learner_steps / points)
    points = math.ceil(learner_steps / per_epoch)

    start = time.perf_counter()
    key, init_key = jax.random.split(jax.random.PRNGKey(cfg.seed))
    env = setup_env(cfg)
    agent = setup_agent(cfg, env)
    stochastic_eval, greedy_eval = setup_evaluators(cfg, agent)
    _, curve_eval = setup_evaluators(compose(p["env"], seed, curve_episodes), agent)
    state = setup_training_state(env, agent, init_key)

    @functools.partial(jax.pmap, axis_name="devices")  # as train.py (one device here)
    def epoch(state):
        state, metrics = jax.lax.scan(lambda s, _: agent.run_epoch(s), state, None, per_epoch)
        return state, jax.tree_util.tree_map(jnp.mean, metrics)

    compiled = epoch.lower(state).compile()
    compile_s = time.perf_counter() - start
    train_s, steps, curve = 0.0, [], []
    for i in range(points):
        t = time.perf_counter()
        state, _ = jax.block_until_ready(compiled(state))
        train_s += time.perf_counter() - t
        key, k = jax.random.split(key)
        metrics = curve_eval.run_evaluation(state.params_state, k)
        steps.append((i + 1) * per_epoch * per_step)
        curve.append(float(np.asarray(metrics["episode_return"]).reshape(-1)[0]))
        print(f"{steps[-1]} steps: stochastic return {curve[-1]:.2f}", file=sys.stderr,
              flush=True)
    t = time.perf_counter()
    key, k_greedy, k_sampled = jax.random.split(key, 3)
    greedy = greedy_eval.run_evaluation(state.params_state, k_greedy)
    sampled = stochastic_eval.run_evaluation(state.params_state, k_sampled)
    eval_s = time.perf_counter() - t
    first = lambda m, name: float(np.asarray(m[name]).reshape(-1)[0])  # noqa: E731
    util.emit({
        "env": p["env"], "registered_version": cfg.env.registered_version, "seed": seed,
        "env_steps": points * per_epoch * per_step, "requested_timesteps": budget,
        "learner_steps": points * per_epoch, "compile_s": compile_s, "train_s": train_s,
        "eval_s": eval_s, "eval_episodes": eval_episodes,
        "greedy": first(greedy, "episode_return"), "sampled": first(sampled, "episode_return"),
        "greedy_length": first(greedy, "episode_length"),
        "curve_steps": steps, "curve_returns": curve, "curve_episodes": curve_episodes,
        "hyperparameters": {**{k: OmegaConf.to_container(cfg.env[k])
                               for k in ("network", "training", "a2c")},
                            "source": f"jumanji/training/configs/env/{p['env']}.yaml"},
        "versions": util.versions(VERSIONS), "devices": [str(d) for d in jax.devices()]})


if __name__ == "__main__":
    main()
