"""Does every preset learn? Trains `Config.preset(env)` on 16 seeds per environment (vmapped:
one compiled program per environment), evaluates each final policy greedily, and compares
with a uniform-random policy and with published figures.

    python benchmarks/learning.py                          # every environment below
    python benchmarks/learning.py Pendulum-v1 Acrobot-v1   # some; others keep their rows
    python benchmarks/learning.py --quick                  # 2 seeds, tiny budget, no files

Results accumulate in benchmarks/results/learning.json (one entry per environment, replaced
when that environment is rerun); learning.md and learning/<env>.png are rebuilt from it.
Learning curves are the per-iteration mean return of the episodes that finished during
training (sampled actions), smoothed and averaged over seeds as ``purea2c train`` draws
them (`purea2c.plots`), with a 95% band (mean +- 1.96 standard errors over seeds).
"""

from __future__ import annotations

import json
import time
from typing import Any

import jax
import numpy as np

import common
import purea2c
from purea2c import envs, plots
from purea2c.evaluate import episode_returns

ENVS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1",
        "MountainCarContinuous-v0", "Catch-bsuite", "Breakout-MinAtar", "Asterix-MinAtar",
        "SpaceInvaders-MinAtar", "Freeway-MinAtar"]
# Gymnasium's reward_threshold ("solved"); bsuite Catch: every episode caught (+1).
THRESHOLDS = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0, "MountainCar-v0": -110.0,
              "MountainCarContinuous-v0": 90.0}
# Published figures (see the sources in PUBLISHED_SOURCES). Not like for like: budgets and
# algorithms differ, and each is one run or a single number.
PUBLISHED = {
    "CartPole-v1": ("500.0 ± 0.0 (A2C, 500k) [Z]; 500 (PPO) [G]"),
    "Acrobot-v1": ("-83.4 ± 17.2 (A2C, 500k) [Z]; -80 (PPO) [G]"),
    "MountainCar-v0": ("-111.3 ± 24.1 (A2C, 1M) [Z]; -118 (PPO) [G]"),
    "Pendulum-v1": ("-163.0 ± 103.2 (A2C, 1M) [Z]; -130 (PPO) [G]"),
    "MountainCarContinuous-v0": ("91.2 ± 0.3 (A2C, 100k) [Z]; 92 (PPO) [G]"),
    "Catch-bsuite": "1 (PPO, max possible) [G]",
    "Breakout-MinAtar": "28 (PPO, 10M) [G]; random 0.5 [M]",
    "Asterix-MinAtar": "15 (PPO, 10M) [G]",
    "SpaceInvaders-MinAtar": "131 (PPO, 10M) [G]",
    "Freeway-MinAtar": "58 (PPO, 10M) [G]",
}
PUBLISHED_SOURCES = [
    "[Z] rl-baselines3-zoo `benchmark.md` (DLR-RM/rl-baselines3-zoo), A2C rows: mean ± std "
    "of episode returns of one trained run, deterministic evaluation, at the budget shown.",
    "[G] gymnax `README.md` (RobertTLange/gymnax), \"Ckpt (Return)\" column: the return of "
    "gymnax's PPO checkpoints, one number; their training budgets are those of gymnax-blines' "
    "`agents/<env>/ppo.yaml` (150k CartPole, 500k Acrobot/MountainCar, 1M Pendulum/"
    "MountainCarContinuous, 10M MinAtar, 100k Catch).",
    "[M] MinAtar `README.md` (kenjyoung/MinAtar): a random policy's mean return on Breakout "
    "over 1000 episodes.",
    "Thresholds: Gymnasium's `reward_threshold` (gymnasium/envs/__init__.py).",
]
NUM_SEEDS = 16


def random_returns(key: jax.Array, env_name: str, num_episodes: int) -> np.ndarray:
    """Undiscounted returns of a uniform-random policy (Box: uniform within the bounds)."""
    env, params = envs.make_env(env_name)
    spec = envs.action_spec(env, params)

    def act(obs, key):
        if spec.discrete:
            return jax.random.randint(key, (num_episodes,), 0, spec.num_actions)
        return jax.random.uniform(key, (num_episodes, spec.num_actions), minval=spec.low,
                                  maxval=spec.high)

    run = jax.jit(lambda k: episode_returns(k, env, params, act, num_episodes))
    return np.asarray(run(key))


def run_env(name: str, num_seeds: int, eval_episodes: int, quick: bool) -> dict[str, Any]:
    config = purea2c.Config.preset(name)
    if quick:
        config = config.replace(total_timesteps=config.steps_per_iteration * 2)
    keys = jax.random.split(jax.random.key(0), num_seeds)
    train = jax.jit(jax.vmap(purea2c.train, in_axes=(0, None)))
    with common.watchdog(f"compile {name}", 3600):
        t0 = time.perf_counter()
        compiled = train.lower(keys, config).compile()
        compile_s = time.perf_counter() - t0
    with common.watchdog(f"train {name}", 3 * 3600):
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(keys, config))
        run_s = time.perf_counter() - t0
    eval_keys = jax.random.split(jax.random.key(1), num_seeds)
    evaluate = jax.jit(jax.vmap(lambda k, p: purea2c.evaluate(k, config, p,
                                                              num_episodes=eval_episodes)))
    per_seed = np.asarray(evaluate(eval_keys, out.state.params)).mean(-1)  # [seeds]
    rand = random_returns(jax.random.key(2), name, 100)
    m = out.metrics
    threshold = THRESHOLDS.get(name)
    return dict(
        env=name, config=common.config_record(config), seeds=num_seeds,
        eval_episodes=eval_episodes, env_steps=int(m.env_steps[0, -1]),
        compile_s=compile_s, run_s=run_s,
        eval_mean=float(per_seed.mean()), eval_std=float(per_seed.std()),
        eval_per_seed=per_seed.tolist(),
        solved=None if threshold is None else int((per_seed >= threshold).sum()),
        threshold=threshold,
        random_mean=float(rand.mean()), random_std=float(rand.std()),
        curve_steps=np.asarray(m.env_steps[0]).tolist(),
        curve_returns=np.asarray(m.episode_return).tolist(),  # [seeds, iterations], NaN gaps
        published=PUBLISHED.get(name),
    )


def plot(entry: dict[str, Any]) -> str:
    plt = common.pyplot()
    steps = np.asarray(entry["curve_steps"])
    returns = np.asarray(entry["curve_returns"], np.float64)  # NaN (null) gaps
    fig, ax = plt.subplots(figsize=(6, 3.6))
    plots.draw_learning_curve(ax, steps, returns, None, max(1, len(steps) // 50),
                              label=f"purea2c, mean of {entry['seeds']} seeds",
                              band_label="95% band over seeds")
    ax.axhline(entry["random_mean"], color="grey", ls="--", label="uniform random policy")
    if entry["threshold"] is not None:
        ax.axhline(entry["threshold"], color="green", ls=":", label="solve threshold")
    ax.set_xlabel("env steps (per seed)")
    ax.set_ylabel("training episode return")
    ax.set_title(entry["env"])
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = common.RESULTS_DIR / "learning" / f"{entry['env']}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path.relative_to(common.RESULTS_DIR))


def markdown(record: dict[str, Any]) -> str:
    lines = [
        "Each row: `Config.preset(env)` trained on 16 seeds in one vmapped program, then "
        "each seed's final policy evaluated greedily (mean return over the episodes shown); "
        "mean ± std over seeds. *Random*: a uniform-random policy, 100 episodes. *Solved*: "
        "seeds whose evaluation reaches the threshold. Wall-clock is for all 16 seeds together "
        "on this machine; compile apart from run.", "",
        "| env | purea2c (greedy eval) | solved | random policy | published | env steps / seed "
        "| compile s | run s | curve |",
        "|---|---|---|---|---|---|---|---|---|"]
    for name in ENVS:
        e = record["envs"].get(name)
        if e is None:
            continue
        solved = "–" if e["solved"] is None else f"{e['solved']}/{e['seeds']} (≥ {e['threshold']:g})"
        lines.append(
            f"| {name} | {e['eval_mean']:.1f} ± {e['eval_std']:.1f} ({e['eval_episodes']} ep) "
            f"| {solved} | {e['random_mean']:.1f} ± {e['random_std']:.1f} | {e['published']} "
            f"| {e['env_steps']:,} | {e['compile_s']:.1f} | {e['run_s']:.1f} "
            f"| [png]({e['plot']}) |")
    lines += ["", "Sources of the published figures:", ""] + [f"- {s}" for s in PUBLISHED_SOURCES]
    lines += ["", "Runs (command, date, load):", ""]
    for name in ENVS:
        e = record["envs"].get(name)
        if e is not None:
            lines.append(f"- {name}: `{e['command']}` at {e['date_utc']}, load average at start "
                         f"{e['load']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("envs", nargs="*", default=ENVS, help="environments (default: all)")
    args = parser.parse_args(argv)
    path = common.RESULTS_DIR / "learning.json"
    record = json.loads(path.read_text()) if path.exists() else {"envs": {}}
    for env in args.envs:
        if env not in ENVS:
            raise SystemExit(f"{env!r} is not one of {ENVS}")
        episodes = 32 if "MinAtar" in env else 100
        entry = run_env(env, 2 if args.quick else NUM_SEEDS, 4 if args.quick else episodes,
                        args.quick)
        machine = common.machine_info()
        entry.update(command=machine["command"], date_utc=machine["date_utc"],
                     load=machine["load_average_at_start"], versions=machine["versions"])
        entry["plot"] = plot(entry) if not args.quick else None
        record["envs"][env] = entry
        print(f"{env}: eval {entry['eval_mean']:.1f} ± {entry['eval_std']:.1f}, random "
              f"{entry['random_mean']:.1f}, solved {entry['solved']}, compile "
              f"{entry['compile_s']:.1f}s, run {entry['run_s']:.1f}s", flush=True)
        if not args.quick:  # a smoke run writes nothing
            path.write_text(json.dumps(common._jsonable(record), indent=1))
            (common.RESULTS_DIR / "learning.md").write_text(
                f"# Learning results\n\n{markdown(record)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
