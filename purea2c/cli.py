"""Command line: ``python -m purea2c`` (or ``purea2c``) trains the default config and reports."""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from purea2c.config import Config
from purea2c.evaluate import evaluate
from purea2c.train import train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="purea2c", description="Train A2C on a gymnax environment (defaults: CartPole-v1).")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the run")
    parser.add_argument("--env", default=Config().env, help="gymnax environment name")
    parser.add_argument("--total-timesteps", type=int, default=Config().total_timesteps,
                        help="env steps of the whole run")
    parser.add_argument("--eval-episodes", type=int, default=100,
                        help="greedy evaluation episodes after training")
    args = parser.parse_args(argv)

    config = Config(env=args.env, total_timesteps=args.total_timesteps)
    key_train, key_eval = jax.random.split(jax.random.key(args.seed))
    print(f"purea2c: training {config.env} for {config.num_iterations * config.steps_per_iteration}"
          f" env steps ({config.num_envs} envs, seed {args.seed}) on {jax.default_backend()}")
    start = time.perf_counter()
    compiled = train.lower(key_train, config).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    result = jax.block_until_ready(compiled(key_train, config))
    run_s = time.perf_counter() - start
    m = result.metrics
    steps = int(m.env_steps[-1])
    print(f"compile {compile_s:.1f} s, run {run_s:.1f} s ({steps / run_s:,.0f} env steps/s)")
    returns = np.asarray(m.episode_return)
    for i in np.linspace(0, len(returns) - 1, 9).astype(int):
        window = returns[max(0, i - 7): i + 1]
        recent = np.nanmean(window) if np.any(np.isfinite(window)) else float("nan")
        print(f"  env steps {int(m.env_steps[i]):>9,}  mean training return {recent:7.1f}")
    eval_returns = np.asarray(evaluate(key_eval, config, result.state.params,
                                       num_episodes=args.eval_episodes))
    print(f"greedy evaluation over {args.eval_episodes} episodes: mean return "
          f"{eval_returns.mean():.1f} (min {eval_returns.min():.0f}, max {eval_returns.max():.0f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
