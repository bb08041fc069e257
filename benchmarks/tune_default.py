"""The sweep that chose `purea2c.Config()`'s defaults for CartPole-v1, run with purea2c itself.

Each static variant (a shape or schedule change) is one compiled program, vmapped over a grid
of traced hyperparameters times 16 seeds; every final policy is then evaluated greedily on
100 episodes. A variant "solves" when at least 15 of 16 seeds reach a mean return >= 475.

    python benchmarks/tune_default.py                # the recorded sweep
    python benchmarks/tune_default.py --quick        # 2 seeds, tiny budget (smoke test)

Writes results/tune_default.{json,md} (through `benchmarks.common.write_results`, with the
command, versions, date and machine); ``--quick`` writes nothing.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import purea2c  # noqa: E402
from benchmarks import common  # noqa: E402

NAME = "tune_default"
SOLVED = 475.0

# The recorded sweep, in the order it was run. Each stage: (title, base overrides, static
# variants [(name, overrides)], traced grid {field: values}, seed of the 16 training keys).
# The starting point was n_step=8, both learning rates 1e-3, 131_072 env steps.
START = dict(n_step=8, pi_learning_rate=1e-3, v_learning_rate=1e-3, entropy_coef=0.01,
             total_timesteps=131_072)
STAGES = [
    ("1. learning rates and entropy at the starting budget", START, [("n=8 T=131072", {})],
     {"pi_learning_rate": [3e-4, 1e-3, 3e-3], "v_learning_rate": [1e-3, 3e-3],
      "entropy_coef": [0.0, 0.01]}, 0),
    ("2. smaller budgets, faster value learning", START,
     [(f"n=8 T={t}", {"total_timesteps": t}) for t in (49_152, 65_536, 98_304)],
     {"pi_learning_rate": [3e-4, 1e-3], "v_learning_rate": [3e-3, 1e-2],
      "entropy_coef": [0.0, 0.01]}, 0),
    ("3. n-step length and update passes", START,
     [(f"{name} T={t}", dict(total_timesteps=t, **o)) for t in (65_536, 98_304)
      for name, o in (("n=4", dict(n_step=4)), ("n=16", dict(n_step=16)),
                      ("n=8 2x128", dict(num_passes=2, batch_size=128)))],
     {"pi_learning_rate": [3e-4, 1e-3], "v_learning_rate": [1e-2],
      "entropy_coef": [0.0, 0.01]}, 0),
] + [
    (f"4. the chosen settings on held-out seeds ({seed})", {},
     [(f"n=16 T={t}", {"total_timesteps": t}) for t in (65_536, 81_920, 98_304)],
     {"entropy_coef": [0.01]}, seed)
    for seed in (1000, 2000, 3000)
]


def training_score(episode_return) -> np.ndarray:
    """Each run's mean training episode return (sampled actions) over the last quarter of its
    iterations, NaN gaps (iterations where no episode ended) left out: ``[..., iterations]``
    -> ``[...]``."""
    r = np.asarray(episode_return)
    return np.nanmean(r[..., (3 * r.shape[-1]) // 4:], axis=-1)


def sweep(base: purea2c.Config, variants, grid, num_seeds: int, eval_episodes: int,
          seed: int = 0, threshold: float | None = SOLVED, score: str = "greedy"):
    """Trains every variant x grid point x seed (one program per variant) and scores each run:
    ``score="greedy"`` evaluates its final policy greedily over ``eval_episodes`` episodes,
    ``"training"`` takes its training return over the last quarter (`training_score`), for
    environments whose greedy evaluation is slow or not what is tuned. Returns one row per
    (variant, grid point)."""
    if score not in ("greedy", "training"):
        raise ValueError(f"score must be 'greedy' or 'training', not {score!r}")
    names = list(grid)
    combos = list(itertools.product(*(grid[n] for n in names)))
    rows = []
    for vname, overrides in variants:
        config = base.replace(**overrides)
        hp = {n: jnp.asarray([c[i] for c in combos], jnp.float32) for i, n in enumerate(names)}
        seeds = jax.random.split(jax.random.key(seed), num_seeds)

        def one(values, key):
            return purea2c.train(key, config.replace(**values))

        def all_runs(hp, seeds):
            per_combo = jax.vmap(lambda v: jax.vmap(lambda k: one(v, k))(seeds))
            return per_combo(hp)

        fn = jax.jit(all_runs)
        t0 = time.perf_counter()
        compiled = fn.lower(hp, seeds).compile()
        t_compile = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(hp, seeds))
        t_run = time.perf_counter() - t0

        if score == "training":
            returns = training_score(out.metrics.episode_return)  # [combos, seeds]
        else:
            eval_keys = jax.random.split(jax.random.key(seed + 1), num_seeds)
            evaluate = jax.vmap(jax.vmap(
                lambda k, p: purea2c.evaluate(k, config, p, num_episodes=eval_episodes),
                in_axes=(0, 0)), in_axes=(None, 0))
            returns = np.asarray(evaluate(eval_keys, out.state.params)).mean(-1)
        steps = config.num_iterations * config.steps_per_iteration
        for ci, combo in enumerate(combos):
            r = returns[ci]
            rows.append(dict(
                variant=vname, overrides=overrides, seed=seed,
                **{n: float(v) for n, v in zip(names, combo)},
                total_timesteps=steps, seeds=num_seeds, score=score,
                solved=None if threshold is None else int((r >= threshold).sum()),
                mean_eval=float(r.mean()), min_eval=float(r.min()),
                compile_s=t_compile, run_s=t_run,
            ))
            print(f"{vname:>24} {dict(zip(names, combo))} solved {rows[-1]['solved']}/"
                  f"{num_seeds} mean {r.mean():6.1f} min {r.min():6.1f} "
                  f"(compile {t_compile:.1f}s run {t_run:.1f}s for {len(combos)}x{num_seeds} runs)",
                  flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        sweep(purea2c.Config(total_timesteps=4096), [("quick", {})],
              {"pi_learning_rate": [1e-3]}, 2, 5)
        return 0
    machine = common.machine_info()
    lines = [f"Solved = final greedy evaluation >= {SOLVED} (mean of 100 episodes); "
             "16 seeds per row; one compiled program per variant, vmapped over the grid "
             "and the seeds. Defaults chosen: `Config()` = "
             f"`{purea2c.Config()!r}`."]
    record = dict(default=repr(purea2c.Config()), stages=[])
    for title, base_overrides, variants, grid, seed in STAGES:
        print(f"== {title}", flush=True)
        rows = sweep(purea2c.Config(**base_overrides), variants, grid, 16, 100, seed=seed)
        record["stages"].append(dict(title=title, base=base_overrides, rows=rows))
        cols = ["variant", *grid, "solved", "mean_eval", "min_eval", "run_s"]
        lines += ["", f"## {title}", "", f"Base: `{base_overrides or 'Config()'}`, "
                  f"training seeds from key {seed}.", "",
                  "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for r in rows:
            lines.append("| " + " | ".join(
                f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")
    common.write_results(NAME, record, "\n".join(lines), machine=machine,
                         title="Sweep for the CartPole-v1 defaults")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
