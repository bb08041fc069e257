"""Does every preset learn? Trains `Config.preset(env)` on 16 seeds per environment (vmapped:
one compiled program per environment), evaluates each final policy greedily and by sampling
(100 episodes each, the same evaluation keys for both), and compares with Stable-Baselines3
A2C at rl-baselines3-zoo's settings (classic control), rejax's PPO at the same budget
(MinAtar), a uniform-random policy and published figures. CartPole-v1 is also evaluated at
the zoo's 500k (the same seeds trained again for that budget).

    python benchmarks/learning.py                          # every environment below
    python benchmarks/learning.py Pendulum-v1 Acrobot-v1   # some; others keep their rows
    python benchmarks/learning.py --sb3-seeds MountainCar-v0=8,Pendulum-v1=8   # SB3 seeds
    python benchmarks/learning.py --sb3-seeds 0            # no SB3
    python benchmarks/learning.py --rejax-seeds 0          # no rejax
    python benchmarks/learning.py --quick                  # 2 seeds, tiny budgets; writes
                                                           # only under /tmp

SB3 runs in the venv that benchmarks/peers.py installs (``--cache``, installed when missing),
one process per (env, seed) through ``benchmarks/peers/sb3_learning_worker.py``, 2 at a time,
after purea2c's runs. rejax's PPO runs on the MinAtar games in the rejax venv of
benchmarks/peers.py through ``benchmarks/peers/rejax_learning_worker.py`` (``--rejax-seeds``
seeds vmapped in one process, at the step budget of purea2c's preset for that game), right
after purea2c's run of the game. Results accumulate in benchmarks/results/learning.json (one
entry per environment, replaced when that environment is rerun); learning.md and
learning/<env>.png are rebuilt from it. Learning curves are the per-iteration mean return
of the episodes that finished during training (sampled actions), smoothed and averaged over
seeds as ``purea2c train`` draws them (`purea2c.plots`), with a 95% band (mean +- 1.96
standard errors over seeds); SB3's Monitor returns are smoothed over the same share of the
run and overlaid, and so are rejax's (the mean return of the training episodes that ended in
each PPO iteration).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import common
import purea2c
from purea2c import envs, plots
from purea2c.evaluation import episode_returns

GYMNAX_ENVS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1",
               "MountainCarContinuous-v0", "Catch-bsuite", "Breakout-MinAtar",
               "Asterix-MinAtar", "SpaceInvaders-MinAtar", "Freeway-MinAtar"]
# The other suites (each a preset of the same name).
SUITE_ENVS = ["navix/Navix-Empty-5x5-v0", "navix/Navix-Empty-6x6-v0",
              "navix/Navix-DoorKey-8x8-v0", "xminigrid/MiniGrid-Empty-5x5",
              "xminigrid/MiniGrid-Empty-6x6", "xminigrid/MiniGrid-DoorKey-8x8",
              "brax/inverted_pendulum", "brax/hopper", "jumanji/Snake-v1",
              "jumanji/Game2048-v1",
              "craftax/Craftax-Classic-Symbolic-v1"]
ENVS = GYMNAX_ENVS + SUITE_ENVS
# Gymnasium's reward_threshold ("solved"); bsuite Catch: every episode caught (+1). Navix:
# reward 1 at the goal, so the mean return is the share of episodes that reach it; the
# issue's targets: XLand-MiniGrid's "0.8+" (its debug config), Brax inverted_pendulum 950.
THRESHOLDS = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0, "MountainCar-v0": -110.0,
              "MountainCarContinuous-v0": 90.0, "navix/Navix-Empty-5x5-v0": 0.95,
              "navix/Navix-Empty-6x6-v0": 0.95, "navix/Navix-DoorKey-8x8-v0": 0.95,
              "xminigrid/MiniGrid-Empty-5x5": 0.8, "xminigrid/MiniGrid-Empty-6x6": 0.8,
              "xminigrid/MiniGrid-DoorKey-8x8": 0.8, "brax/inverted_pendulum": 950.0}
# Seeds per environment where not NUM_SEEDS: Craftax steps at ~14k/s here even at random
# (benchmarks/results/throughput_suites_cpu.md), so 16 seeds at 1M steps would take about
# an hour and a half of this CPU. (Brax's hopper, at ~5.3k/s, took 31 minutes of training
# for purea2c's 16; rejax's PPO keeps 4, REJAX_SEEDS.)
SEEDS = {"craftax/Craftax-Classic-Symbolic-v1": 4}
# Evaluation episodes where not EVAL_EPISODES (each runs to the episode limit in the scan).
# (Snake's episodes last up to 4,000 steps, Game2048's up to the adapter's 10,000, hopper's
# 1,000: 32 per seed keep the evaluation within minutes on this CPU.)
EPISODES = {"craftax/Craftax-Classic-Symbolic-v1": 8, "jumanji/Snake-v1": 32,
            "jumanji/Game2048-v1": 32, "brax/hopper": 32}
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
    "navix/Navix-Empty-5x5-v0": "Empty-6x6: 1.00 at 262k (rejax PPO, 32 seeds) [N]",
    "navix/Navix-Empty-6x6-v0": "1.00 at 262k, 0.97 at 1.05M (rejax PPO, 32 seeds) [N]",
    "navix/Navix-DoorKey-8x8-v0": ("0.99 at 262k, 1.00 at 1.05M (rejax PPO, 32 seeds) [N]; "
                                   "navix's own reruns of that config: 0.00 at 262k, "
                                   "≤ 0.05 at 1.05M (1 and 5 seeds) [N2]"),
    "xminigrid/MiniGrid-Empty-5x5": "none published [X]",
    "xminigrid/MiniGrid-Empty-6x6": "\"should be 0.8+\" at 100k (PPO debug config) [X]",
    "xminigrid/MiniGrid-DoorKey-8x8": "none published [X]",
    "brax/inverted_pendulum": "no published curve; 1000 is the cap",
    "brax/hopper": "about 1,000 at 5M (PureJaxRL's PPO, one seed) [P]",
    "jumanji/Snake-v1": "Jumanji's A2C: curves only as figures, 256M steps [J]",
    "jumanji/Game2048-v1": "Jumanji's A2C: curves only as figures, 96M steps [J]",
    "craftax/Craftax-Classic-Symbolic-v1": "16.9 of 22 (PPO, 100M, 8 seeds) [C]",
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
    "[N] navix repository, `baselines/rejax/*.json`: rejax's PPO, 32 seeds, evaluations at "
    "0 / 262k / 524k / 786k / 1.05M steps (the column headers of its `baselines.md` are "
    "wrong; the JSON files hold these steps).",
    "[N2] navix repository, `baselines/rejax/results.bkp/…DoorKey-8x8-v0_ppo_1_0_1753886847…"
    "json` (1 seed) and `results.bkp.2/…DoorKey-8x8-v0_ppo_5_0_1754061974….json` (5 seeds), "
    "both from 2025 with the same PPO config as [N]: mean return 0.00 at every evaluation "
    "of the 1-seed run; 0.00 at 262k and 0.00 to 0.05 per seed at 1.05M in the 5-seed run "
    "(most episodes end at the 100-step limit).",
    "[X] XLand-MiniGrid publishes no PPO curve for the MiniGrid tasks; its debug config "
    "says MiniGrid-Empty-6x6 \"should be 0.8+\" after 100k steps (64 envs). Reward is "
    "1 - 0.9 t/T at the goal.",
    "[J] Jumanji paper (arXiv 2306.09884): its A2C trainer's curves, as figures only; its "
    "default configs train Snake for 256M and Game2048 for 96M env steps, one seed.",
    "[P] PureJaxRL (luchris429/purejaxrl), its Brax PPO on hopper: about 1,000 episode return "
    "at 5M steps, one seed, read from its figure.",
    "[C] Craftax paper: PPO 16.9 of a 22 maximum at 100M steps on Craftax-Classic-Symbolic "
    "(8 seeds).",
    "Thresholds: Gymnasium's `reward_threshold` (gymnasium/envs/__init__.py); Navix 0.95 "
    "(the goal reached in 95% of episodes); XLand-MiniGrid 0.8 (its debug config's bar); "
    "Brax inverted_pendulum 950 of the 1000 cap.",
]
NUM_SEEDS = 16
EVAL_EPISODES = 100
# Longer budgets, trained again from the same keys after the preset's row: (env steps, the
# first k of the row's seeds or None for all, the row's label). CartPole's preset budget is
# below the zoo's 500k; hopper's 5M is the second budget, beside rejax's PPO (whose
# seeds there: the fewest of --rejax-seeds, REJAX_SEEDS and k).
EXTENDED = {"CartPole-v1": (500_000, None, "same seeds, zoo's budget"),
            "brax/hopper": (5_000_000, 4, "first 4 of these seeds, 5M")}
# Pendulum's target: mean over seeds >= -170 and every seed >= -250.
PENDULUM_TARGET = (-170.0, -250.0)
SB3_ENVS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1",
            "MountainCarContinuous-v0"]
SB3_BUDGET = {"CartPole-v1": 500_000, "Acrobot-v1": 500_000, "MountainCar-v0": 1_000_000,
              "Pendulum-v1": 1_000_000, "MountainCarContinuous-v0": 100_000}
SB3_WORKER = Path(__file__).resolve().parent / "peers" / "sb3_learning_worker.py"
REJAX_ENVS = ["Breakout-MinAtar", "Asterix-MinAtar", "SpaceInvaders-MinAtar", "Freeway-MinAtar",
              "craftax/Craftax-Classic-Symbolic-v1", "brax/hopper", "navix/Navix-DoorKey-8x8-v0"]
REJAX_WORKER = Path(__file__).resolve().parent / "peers" / "rejax_learning_worker.py"
# rejax's seeds where fewer than purea2c's: through rejax's compat layer Craftax auto-resets
# the gymnax way, generating a fresh world at every step of every env (about 600 env steps/s
# here, against purea2c's 4k with its reset pool), so one seed at 1M already takes ~30 min.
REJAX_SEEDS = {"craftax/Craftax-Classic-Symbolic-v1": 1, "brax/hopper": 4}
# Jumanji's own A2C trainer (jumanji[train]) beside purea2c: its config name per task.
JUMANJI_ENVS = {"jumanji/Snake-v1": "snake", "jumanji/Game2048-v1": "game_2048"}
JUMANJI_WORKER = Path(__file__).resolve().parent / "peers" / "jumanji_a2c_worker.py"


def random_returns(key: jax.Array, env_name: str, num_episodes: int) -> np.ndarray:
    """Undiscounted returns of a uniform-random policy (Box: uniform within the bounds)."""
    env = envs.make(env_name)
    spec = env.action_spec

    def act(obs, key):
        if spec.discrete:  # uniform over the allowed actions where the env gives a mask
            mask = envs.split_mask(obs)[1]
            if mask is None:
                return jax.random.randint(key, (num_episodes,), 0, spec.num_actions)
            return jax.random.categorical(key, jnp.where(mask, 0.0, -1e9))
        return jax.random.uniform(key, (num_episodes, spec.num_actions), minval=spec.low,
                                  maxval=spec.high)

    run = jax.jit(lambda k: episode_returns(k, env, act, num_episodes))
    return np.asarray(run(key))


def seed_stats(per_seed: np.ndarray, threshold: float | None) -> dict[str, Any]:
    per_seed = np.asarray(per_seed, np.float64)
    return dict(mean=float(per_seed.mean()), std=float(per_seed.std()),
                min=float(per_seed.min()), per_seed=per_seed.tolist(), seeds=len(per_seed),
                solved=None if threshold is None else int((per_seed >= threshold).sum()))


def row_config(name: str, quick: bool) -> purea2c.Config:
    """The row's config: the preset (``--quick``: two iterations of it)."""
    config = purea2c.Config.preset(name)
    return config.replace(total_timesteps=config.steps_per_iteration * 2) if quick else config


def row_keys(num_seeds: int) -> jax.Array:
    return jax.random.split(jax.random.key(0), num_seeds)


def run_env(name: str, num_seeds: int, eval_episodes: int, quick: bool) -> dict[str, Any]:
    config = row_config(name, quick)
    keys = row_keys(num_seeds)
    train = jax.jit(jax.vmap(purea2c.train, in_axes=(0, None)))
    with common.watchdog(f"compile {name}", 3600):
        t0 = time.perf_counter()
        compiled = train.lower(keys, config).compile()
        compile_s = time.perf_counter() - t0
    with common.watchdog(f"train {name}", 3 * 3600):
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(keys, config))
        run_s = time.perf_counter() - t0
    greedy, sampled, eval_s = evaluator(name, config, num_seeds, eval_episodes)(
        out.state.params)
    rand = random_returns(jax.random.key(2), name, 100)
    m = out.metrics
    entry = dict(
        env=name, format=2, config=common.config_record(config), seeds=num_seeds,
        eval_episodes=eval_episodes, env_steps=int(m.env_steps[0, -1]),
        compile_s=compile_s, run_s=run_s, eval_s=eval_s, greedy=greedy, sampled=sampled,
        threshold=THRESHOLDS.get(name),
        random_mean=float(rand.mean()), random_std=float(rand.std()),
        curve_steps=np.asarray(m.env_steps[0]).tolist(),
        curve_returns=np.asarray(m.episode_return).tolist(),  # [seeds, iterations], NaN gaps
        published=PUBLISHED.get(name),
    )
    if name in EXTENDED:
        entry["extended"] = run_extended(name, config, keys, eval_episodes, quick)
    return entry


def evaluator(name: str, config: purea2c.Config, num_seeds: int, eval_episodes: int):
    """``both(params)``: every seed's greedy and sampled mean return (as ``seed_stats``) and
    the seconds taken, with the same evaluation keys for both modes and for every budget."""
    eval_keys = jax.random.split(jax.random.key(1), num_seeds)

    def one(k, p, greedy):
        return purea2c.evaluate(k, config, p, num_episodes=eval_episodes, greedy=greedy)

    evaluate = jax.jit(jax.vmap(one, in_axes=(0, 0, None)), static_argnums=2)
    threshold = THRESHOLDS.get(name)

    def both(params) -> tuple[dict, dict, float]:
        t0 = time.perf_counter()
        g = np.asarray(evaluate(eval_keys, params, True)).mean(-1)
        s = np.asarray(evaluate(eval_keys, params, False)).mean(-1)
        return seed_stats(g, threshold), seed_stats(s, threshold), time.perf_counter() - t0

    return both


def run_extended(name: str, config: purea2c.Config, keys: jax.Array, eval_episodes: int,
                 quick: bool) -> dict[str, Any]:
    """The row's first seeds (``EXTENDED``) trained again from their keys for the longer budget
    (a learning-rate schedule then spans that run), evaluated as the row is."""
    budget, seeds, label = EXTENDED[name]
    keys = keys[:seeds]
    target = budget if not quick else 4 * config.steps_per_iteration
    iterations = -(-target // config.steps_per_iteration)
    longer = config.replace(total_timesteps=iterations * config.steps_per_iteration)
    train = jax.jit(jax.vmap(purea2c.train, in_axes=(0, None)))
    with common.watchdog(f"train {name} longer", 4 * 3600):
        t0 = time.perf_counter()
        out = jax.block_until_ready(train(keys, longer))
        wall_s = time.perf_counter() - t0
    g, s, eval_s = evaluator(name, config, keys.shape[0], eval_episodes)(out.state.params)
    m = out.metrics
    return dict(label=label, seeds=int(keys.shape[0]), env_steps=int(m.env_steps[0, -1]),
                iterations=iterations, wall_s=wall_s, eval_s=eval_s, greedy=g, sampled=s,
                curve_steps=np.asarray(m.env_steps[0]).tolist(),
                curve_returns=np.asarray(m.episode_return).tolist())


# ------------------------------------------------------------------------------------------
# Stable-Baselines3 A2C (zoo settings), one subprocess per (env, seed)
# ------------------------------------------------------------------------------------------


def peer_python(peer: str, cache: Path, install: bool) -> Path | None:
    """The interpreter of ``peer``'s venv (benchmarks/peers.py), installed first if asked."""
    sys.path.insert(0, str(common.REPO_ROOT))
    from benchmarks import peers  # noqa: E402  (its own copy of common; harmless)

    if install:
        rec = peers.install_peer(peer, cache, "python3")
        if not rec["ok"]:
            print(f"[{peer}] install failed: {rec['attempts'][-1]['log']}", flush=True)
            return None
    py = peers.venv_python(cache, peer)
    return py if py.exists() else None


def sb3_job(python: Path, params: dict, log_dir: Path, timeout: float) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the peer's venv must not see purea2c's environment
    from benchmarks import peers

    log = log_dir / f"sb3_{params['env']}_seed{params['seed']}.log"
    out = peers.run_worker(python, SB3_WORKER, params, timeout, log, env)
    if "error" in out:
        out["seed"] = params["seed"]
    return out


def sb3_summary(name: str, runs: list[dict], wall_s: float) -> dict[str, Any]:
    ok = [r for r in runs if "error" not in r]
    threshold = THRESHOLDS.get(name)
    out: dict[str, Any] = dict(seeds=len(ok), errors=[r["error"] for r in runs if "error" in r],
                               wall_s=wall_s, parallel=2)
    if not ok:
        return out
    out.update(
        env_steps=ok[0]["env_steps"], hyperparameters=ok[0]["hyperparameters"],
        versions=ok[0]["versions"], torch_threads=ok[0]["torch_threads"],
        eval_episodes=len(ok[0]["greedy_returns"]),
        train_s_per_seed=[r["train_s"] for r in ok], eval_s_per_seed=[r["eval_s"] for r in ok],
        greedy=seed_stats(np.array([r["greedy_mean"] for r in ok]), threshold),
        sampled=seed_stats(np.array([r["sampled_mean"] for r in ok]), threshold),
        curves=[dict(steps=r["curve_steps"], returns=r["curve_returns"]) for r in ok])
    return out


def sb3_curve(curves: list[dict], budget: int, points: int = 200) -> tuple[np.ndarray, ...]:
    """Per seed, on a grid of env steps, the mean return of the training episodes that ended
    in the last budget/50 steps (as purea2c's curve uses a window of 1/50 of the run)."""
    grid = np.linspace(budget / points, budget, points)
    width = budget / 50
    smooth = np.full((len(curves), points), np.nan)
    for i, c in enumerate(curves):
        steps, rets = np.asarray(c["steps"], float), np.asarray(c["returns"], float)
        for j, g in enumerate(grid):
            sel = (steps > g - width) & (steps <= g)
            if sel.any():
                smooth[i, j] = rets[sel].mean()
    mean, half = plots.mean_and_band(smooth)
    return grid, mean, half


# ------------------------------------------------------------------------------------------
# rejax PPO (MinAtar), all seeds vmapped in one subprocess
# ------------------------------------------------------------------------------------------


def rejax_run(python: Path, name: str, seeds: int, budget: int, eval_episodes: int,
              log_dir: Path, timeout: float, tag: str = "") -> dict[str, Any]:
    """Trains rejax's PPO on ``seeds`` seeds for ``budget`` env steps each (rounded up to whole
    PPO iterations) and returns the entry stored under the env's ``"rejax"`` key."""
    from benchmarks import peers

    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the peer's venv must not see purea2c's environment
    params = {"env": name, "seeds": seeds, "total_timesteps": budget,
              "eval_episodes": eval_episodes, "seed": 0}
    out = peers.run_worker(python, REJAX_WORKER, params, timeout,
                           log_dir / f"rejax_{name.replace('/', '_')}{tag}.log", env)
    if "error" in out:
        return dict(seeds=0, errors=[out["error"]], log=out.get("log"))
    threshold = THRESHOLDS.get(name)
    return dict(
        seeds=out["seeds"], errors=[], env_steps=out["env_steps"], budget=budget,
        iterations=out["iterations"], eval_episodes=out["eval_episodes"],
        compile_s=out["compile_s"], run_s=out["train_s"], eval_s=out["eval_s"],
        process_wall_s=out["process_wall_s"], hyperparameters=out["hyperparameters"],
        versions=out["versions"],
        greedy=seed_stats(np.array(out["greedy_per_seed"]), threshold),
        sampled=seed_stats(np.array(out["sampled_per_seed"]), threshold),
        curve_steps=out["curve_steps"], curve_returns=out["curve_returns"],
        curve_episodes=out["curve_episodes"], log=out.get("log"))


def report_rejax(env: str, rejax: dict) -> None:
    if not rejax["seeds"]:
        print(f"{env} rejax error: {rejax['errors'][0]}", flush=True)
        return
    g, s = rejax["greedy"], rejax["sampled"]
    print(f"{env} rejax PPO ({rejax['seeds']} seeds, {rejax['env_steps']} steps): greedy "
          f"{g['mean']:.1f} ± {g['std']:.1f}, sampled {s['mean']:.1f} ± {s['std']:.1f}; "
          f"compile {rejax['compile_s']:.1f}s, run {rejax['run_s']:.1f}s, evaluation "
          f"{rejax['eval_s']:.1f}s", flush=True)


def rejax_curve(rejax: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """rejax's per-iteration returns smoothed as purea2c's are (a running mean over 1/50 of the
    run, iterations weighted equally), then the mean over seeds and its 95% band."""
    steps = np.asarray(rejax["curve_steps"], np.float64)
    returns = np.array([[np.nan if r is None else r for r in row]
                        for row in rejax["curve_returns"]], np.float64)
    smooth = plots.running_mean_return(returns, None, max(1, len(steps) // 50))
    mean, half = plots.mean_and_band(smooth)
    return steps, mean, half


def jumanji_run(python: Path, name: str, seeds: int, budget: int, eval_episodes: int,
                log_dir: Path, timeout: float) -> dict[str, Any]:
    """Jumanji's A2C trainer on ``name`` for ``budget`` env steps (rounded up to whole
    learner steps), one process per seed, one after another; the entry stored under the env's
    ``"jumanji_a2c"`` key."""
    from benchmarks import peers

    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the peer's venv must not see purea2c's environment
    runs, errors = [], []
    for seed in range(seeds):
        params = {"env": JUMANJI_ENVS[name], "seed": seed, "total_timesteps": budget,
                  "eval_episodes": eval_episodes, "curve_points": 16, "curve_episodes": 64}
        out = peers.run_worker(python, JUMANJI_WORKER, params, timeout,
                               log_dir / f"jumanji_{JUMANJI_ENVS[name]}_seed{seed}.log", env)
        if "error" in out:
            errors.append(out["error"])
        else:
            runs.append(out)
            print(f"{name} Jumanji A2C seed {seed}: greedy {out['greedy']:.1f}, sampled "
                  f"{out['sampled']:.1f} ({out['env_steps']} steps, train {out['train_s']:.0f}"
                  f" s)", flush=True)
    if not runs:
        return dict(seeds=0, errors=errors)
    first = runs[0]
    return dict(
        seeds=len(runs), errors=errors, env_steps=first["env_steps"], budget=budget,
        learner_steps=first["learner_steps"], eval_episodes=eval_episodes,
        compile_s=float(np.mean([r["compile_s"] for r in runs])),
        run_s=float(np.sum([r["train_s"] for r in runs])),
        eval_s=float(np.sum([r["eval_s"] for r in runs])),
        hyperparameters=first["hyperparameters"], versions=first["versions"],
        greedy=seed_stats(np.array([r["greedy"] for r in runs]), None),
        sampled=seed_stats(np.array([r["sampled"] for r in runs]), None),
        curve_steps=first["curve_steps"], curve_returns=[r["curve_returns"] for r in runs],
        curve_episodes=first["curve_episodes"])


# ------------------------------------------------------------------------------------------
# Plots and the table
# ------------------------------------------------------------------------------------------


def plot(entry: dict[str, Any], out_dir: Path) -> str:
    plt = common.pyplot()
    steps = np.asarray(entry["curve_steps"])
    returns = np.asarray(entry["curve_returns"], np.float64)  # NaN (null) gaps
    ext = entry.get("extended")
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    plots.draw_learning_curve(ax, steps, returns, None, max(1, len(steps) // 50),
                              label=f"purea2c, mean of {entry['seeds']} seeds",
                              band_label="purea2c 95% band over seeds")
    if ext:  # the same seeds trained for the longer budget
        ext_steps = np.asarray(ext["curve_steps"])
        label = f"purea2c trained for {ext['env_steps']:,} steps"
        if "seeds" in ext:
            label += f", mean of {ext['seeds']} seeds"
        plots.draw_learning_curve(ax, ext_steps, np.asarray(ext["curve_returns"], np.float64),
                                  None, max(1, len(ext_steps) // 50), label=label,
                                  band_label="its 95% band")
        xr = ext.get("rejax") or {}
        if xr.get("seeds"):
            steps_r, mean, half = rejax_curve(xr)
            ax.plot(steps_r, mean, lw=1.5, color="tab:pink",
                    label=f"rejax PPO trained for {xr['env_steps']:,} steps, mean of "
                          f"{xr['seeds']} seeds")
            if xr["seeds"] > 1:
                ax.fill_between(steps_r, mean - half, mean + half, color="tab:pink",
                                alpha=0.2, lw=0, label="its 95% band")
    sb3 = entry.get("sb3") or {}
    if sb3.get("curves"):
        grid, mean, half = sb3_curve(sb3["curves"], sb3["env_steps"])
        ax.plot(grid, mean, lw=1.5, color="tab:red",
                label=f"SB3 A2C (zoo), mean of {sb3['seeds']} seeds")
        if sb3["seeds"] > 1:
            ax.fill_between(grid, mean - half, mean + half, color="tab:red", alpha=0.2, lw=0,
                            label="SB3 95% band over seeds")
    rejax = entry.get("rejax") or {}
    if rejax.get("seeds"):
        steps_r, mean, half = rejax_curve(rejax)
        ax.plot(steps_r, mean, lw=1.5, color="tab:purple",
                label=f"rejax PPO, mean of {rejax['seeds']} seeds")
        if rejax["seeds"] > 1:
            ax.fill_between(steps_r, mean - half, mean + half, color="tab:purple", alpha=0.2,
                            lw=0, label="rejax 95% band over seeds")
    jumanji = entry.get("jumanji_a2c") or {}
    if jumanji.get("seeds"):
        returns = np.asarray(jumanji["curve_returns"], np.float64)
        mean, half = plots.mean_and_band(returns)
        ax.plot(jumanji["curve_steps"], mean, lw=1.5, color="tab:orange", marker=".",
                label=f"Jumanji A2C (its trainer), mean of {jumanji['seeds']} seeds "
                      f"({jumanji['curve_episodes']} sampled evaluation episodes a point)")
        if jumanji["seeds"] > 1:
            ax.fill_between(jumanji["curve_steps"], mean - half, mean + half,
                            color="tab:orange", alpha=0.2, lw=0,
                            label="Jumanji A2C 95% band over seeds")
    ax.axhline(entry["random_mean"], color="grey", ls="--", label="uniform random policy")
    if entry["threshold"] is not None:
        ax.axhline(entry["threshold"], color="green", ls=":", label="solve threshold")
    ax.set_xlabel("env steps (per seed)")
    ax.set_ylabel("training episode return\n(sampled actions)")
    ax.set_title(entry["env"])
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out_dir / "learning" / f"{entry['env']}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path.relative_to(out_dir))


def _cell(stats: dict | None, name: str, threshold: float | None) -> str:
    if not stats or not stats.get("seeds"):
        return "–"
    digits = 2 if max(abs(stats["mean"]), stats["std"]) < 2 else 1  # returns in [0, 1]
    text = f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"
    if name == "Pendulum-v1":
        ok = stats["mean"] >= PENDULUM_TARGET[0] and stats["min"] >= PENDULUM_TARGET[1]
        text += f", min {stats['min']:.1f} ({'met' if ok else 'not met'})"
    elif threshold is not None:
        text += f", {stats['solved']}/{stats['seeds']}"
    return text


def _target(name: str, threshold: float | None) -> str:
    if name == "Pendulum-v1":
        return f"mean ≥ {PENDULUM_TARGET[0]:g}, every seed ≥ {PENDULUM_TARGET[1]:g}"
    if name == "Catch-bsuite":
        return "1 (every episode caught)"
    return "–" if threshold is None else f"≥ {threshold:g}"


def _sb3_cells(sb3: dict | None, name: str, threshold: float | None) -> tuple[str, str]:
    if not sb3 or not sb3.get("seeds"):
        return "–", "–"
    g = _cell(sb3["greedy"], name, threshold) + f" ({sb3['seeds']} seeds)"
    return g, _cell(sb3["sampled"], name, threshold)


def _rejax_cells(rejax: dict | None, label: str = "") -> tuple[str, str]:
    if not rejax or not rejax.get("seeds"):
        return "–", "–"
    return (label + _cell(rejax["greedy"], "", None) + f" ({rejax['seeds']} seeds)",
            _cell(rejax["sampled"], "", None))


def markdown(record: dict[str, Any]) -> str:
    lines = [
        "Each purea2c row: `Config.preset(env)` trained on 16 seeds (Craftax: 4) in one "
        "vmapped program; "
        "each seed's final policy evaluated over 100 episodes (MinAtar 32, Snake, Game2048 "
        "and hopper 32, Craftax 8) greedily (the mode of the "
        "policy) and by sampling (`purea2c.evaluate(..., greedy=False)`), with the same "
        "evaluation keys for both; mean ± std over seeds of the per-seed mean return, then "
        "*k/n*: seeds whose mean reaches the threshold. Pendulum-v1 has no threshold: "
        "the cell gives the mean ± std and the worst seed, and whether the target (mean ≥ -170, "
        "every seed ≥ -250) is met. CartPole-v1's preset budget is 98,304 steps; the second "
        "CartPole row trains the same 16 seeds for the zoo's 500k (the preset's linear "
        "learning-rate decay then spans the longer run).", "",
        "SB3 columns: Stable-Baselines3 A2C with rl-baselines3-zoo's `hyperparams/a2c.yml` "
        "settings at the zoo's budget, one process per seed, 2 processes at a time, "
        "`torch.set_num_threads(1)`; the final model evaluated over 100 episodes "
        "deterministically and by sampling on the same evaluation seeds, VecNormalize "
        "statistics frozen (`training=False, norm_reward=False`). Its seed count is given in "
        "the cell (fewer seeds where 16 did not fit the time of the run). *Random*: a "
        "uniform-random policy, 100 episodes.", "",
        "rejax columns (MinAtar): rejax 0.1.3's PPO with rejax's own MinAtar settings (the "
        "`ppo` section of its `benchmark/breakout_1m.yaml`: 32 envs × 32 steps, 4 epochs × 4 "
        "minibatches, lr 2.57e-4, γ 0.995, GAE 0.95, clip 0.2, entropy 0.01, grad norm 1; "
        "actor and critic MLPs 64-64 tanh), trained in the same run right after purea2c on "
        "the same game for purea2c's budget per seed (rounded up to whole iterations of "
        "1,024 steps), all seeds vmapped in one program, and evaluated like purea2c "
        "(greedy: argmax of the logits; sampled; the same number of episodes, the same keys "
        "for both modes). Its games are gymnax 0.0.9's (rejax needs gymnax < 1.0): "
        "Breakout, Asterix and Freeway play as in purea2c's gymnax 1.0; in SpaceInvaders an "
        "episode there starts with 28 aliens instead of 24 and an enemy bullet is checked "
        "against the player's position before the move.", "",
        "rejax on the other suites: the same PPO through rejax's compat layer "
        "(`rejax.compat.create`: Brax's own episode and auto-reset wrappers, Craftax's own "
        "auto-reset), with rejax's tuned `configs/brax/hopper.yaml` settings for Brax "
        "(32 envs × 32 steps, 9 epochs × 2 minibatches, observation normalisation) and for "
        "Craftax the Craftax baselines' PPO settings with 64 envs × 64 steps and (256, 256) "
        "tanh layers (the worker's docstring has them); greedy is the Gaussian's mean for "
        "Brax.", "",
        "Jumanji rows: the peer column is Jumanji's own A2C trainer (`jumanji.training`, "
        "`env=<task> agent=a2c`, its configs unchanged), one process per seed, trained for "
        "purea2c's budget (rounded up to whole learner steps) and evaluated by its own "
        "greedy and stochastic evaluators over the same number of episodes.", "",
        "| env | budget | purea2c greedy (mean ± std, solved) | purea2c sampled "
        "| SB3 greedy (seeds, solved) | SB3 sampled | peer greedy: rejax PPO or Jumanji A2C "
        "(seeds) | peer sampled | random | published | target |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in ENVS:
        e = record["envs"].get(name)
        if e is None:
            continue
        th = e.get("threshold")
        rand = _cell(dict(mean=e["random_mean"], std=e["random_std"], seeds=1), "", None)
        if e.get("format") != 2:  # an entry of the earlier run: greedy only
            solved = "" if e.get("solved") is None else f", {e['solved']}/{e['seeds']}"
            lines.append(
                f"| {name} (from the earlier run, preset unchanged) | {e['env_steps']:,} "
                f"| {e['eval_mean']:.1f} ± {e['eval_std']:.1f}{solved} "
                f"({e['eval_episodes']} ep) | – | – | – | – | – | {rand} "
                f"| {e['published']} | {_target(name, th)} |")
            continue
        ext = e.get("extended")
        sb3 = e.get("sb3")
        g, s = _sb3_cells(sb3 if not ext else None, name, th)
        rg, rs = _rejax_cells(e.get("rejax"))
        if e.get("jumanji_a2c"):
            rg, rs = _rejax_cells(e["jumanji_a2c"], "Jumanji A2C: ")
        lines.append(
            f"| {name} | {e['env_steps']:,} | {_cell(e['greedy'], name, th)} "
            f"| {_cell(e['sampled'], name, th)} | {g} | {s} | {rg} | {rs} | {rand} "
            f"| {e['published']} | {_target(name, th)} |")
        if ext:
            g, s = _sb3_cells(sb3, name, th)
            rg, rs = _rejax_cells(ext.get("rejax"))
            label = ext.get("label", "same seeds, zoo's budget")
            lines.append(
                f"| {name} ({label}) | {ext['env_steps']:,} "
                f"| {_cell(ext['greedy'], name, th)} | {_cell(ext['sampled'], name, th)} "
                f"| {g} | {s} | {rg} | {rs} | {rand} | {e['published']} "
                f"| {_target(name, th)} |")
    lines += ["", "Curves: `learning/<env>.png` (training episode returns with sampled "
              "actions, running mean over 1/50 of the run, mean over seeds and 95% band; SB3's "
              "Monitor returns overlaid for the classic-control environments, rejax PPO's "
              "training episodes for MinAtar).", "",
              "Sources of the published figures:", ""] + [f"- {s}" for s in PUBLISHED_SOURCES]
    lines += ["", "Wall clock per environment (this machine, 2 CPU cores; purea2c: 16 seeds "
              "together; SB3: all its seeds, 2 processes at a time; rejax: all its seeds "
              "together, one process):", ""]
    for name in ENVS:
        e = record["envs"].get(name)
        if e is None:
            continue
        if e.get("format") != 2:
            lines.append(f"- {name}: purea2c compile {e['compile_s']:.1f} s, run "
                         f"{e['run_s']:.1f} s (earlier run)")
            continue
        text = (f"- {name}: purea2c compile {e['compile_s']:.1f} s, run {e['run_s']:.1f} s, "
                f"evaluation {e['eval_s']:.1f} s")
        sb3 = e.get("sb3")
        if sb3 and sb3.get("seeds"):
            text += (f"; SB3 {sb3['seeds']} seeds {sb3['wall_s']:.0f} s (median "
                     f"{float(np.median(sb3['train_s_per_seed'])):.0f} s training per seed)")
        if sb3 and sb3.get("errors"):
            text += f"; SB3 errors: {sb3['errors'][0][:200]!r}"
        rejax = e.get("rejax")
        if rejax and rejax.get("seeds"):
            text += (f"; rejax PPO {rejax['seeds']} seeds: compile {rejax['compile_s']:.1f} s, "
                     f"run {rejax['run_s']:.1f} s, evaluation {rejax['eval_s']:.1f} s")
        if rejax and rejax.get("errors"):
            text += f"; rejax error: {rejax['errors'][0][:200]!r}"
        jumanji = e.get("jumanji_a2c")
        if jumanji and jumanji.get("seeds"):
            text += (f"; Jumanji A2C {jumanji['seeds']} seeds (one process each): compile "
                     f"{jumanji['compile_s']:.1f} s per seed, run {jumanji['run_s']:.1f} s, "
                     f"evaluation {jumanji['eval_s']:.1f} s")
        if jumanji and jumanji.get("errors"):
            text += f"; Jumanji A2C error: {jumanji['errors'][0][:200]!r}"
        ext = e.get("extended")
        if ext:
            seeds = f" ({ext['seeds']} seeds)" if "seeds" in ext else ""
            text += f"; trained to {ext['env_steps']:,}{seeds}: {ext['wall_s']:.1f} s " \
                    "(compile included)"
            if "eval_s" in ext:
                text += f", evaluation {ext['eval_s']:.1f} s"
            xr = ext.get("rejax") or {}
            if xr.get("seeds"):
                text += (f", rejax PPO {xr['seeds']} seeds: compile {xr['compile_s']:.1f} s, "
                         f"run {xr['run_s']:.1f} s, evaluation {xr['eval_s']:.1f} s")
        lines.append(text)
    lines += ["", "Runs (command, date, versions):", ""]
    for name in ENVS:
        e = record["envs"].get(name)
        if e is None:
            continue
        v = e.get("versions", {})
        text = (f"- {name}: `{e['command']}` at {e['date_utc']}, load average at start "
                f"{e['load']}")
        if e.get("format") == 2:
            text += (f"; jax {v.get('jax')}, purea2c {v.get('purea2c')} "
                     f"(git {e.get('git_revision')})")
            sb3v = (e.get("sb3") or {}).get("versions")
            if sb3v:
                text += (f"; stable-baselines3 {sb3v.get('stable-baselines3')}, torch "
                         f"{sb3v.get('torch')}, gymnasium {sb3v.get('gymnasium')}")
            rv = (e.get("rejax") or {}).get("versions")
            if rv:
                text += (f"; rejax {rv.get('rejax')} (jax {rv.get('jax')}, flax "
                         f"{rv.get('flax')}, gymnax {rv.get('gymnax')})")
            jv = (e.get("jumanji_a2c") or {}).get("versions")
            if jv:
                text += (f"; jumanji {jv.get('jumanji')} (jax {jv.get('jax')}, dm-haiku "
                         f"{jv.get('dm-haiku')}, rlax {jv.get('rlax')})")
            for key, label in (("rejax", "rejax PPO"), ("jumanji_a2c", "Jumanji A2C")):
                earlier = (e.get(key) or {}).get("from_run")
                if earlier:  # the peer's column kept from an earlier run of the same budget
                    text += f"; {label} column from an earlier run: {earlier}"
            ext = e.get("extended") or {}
            if "command" in ext:  # the longer budget, run apart from the row
                text += (f"; the {ext['env_steps']:,}-step row: `{ext['command']}` at "
                         f"{ext['date_utc']} (git {ext['git_revision']}), load average at "
                         f"start {ext['load']}")
            if (ext.get("rejax") or {}).get("from_run"):
                text += f"; its rejax PPO column: {ext['rejax']['from_run']}"
        lines.append(text)
    return "\n".join(lines)


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=common.REPO_ROOT,
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "purea2c"],
                               cwd=common.REPO_ROOT, capture_output=True, text=True).stdout
        return rev + ("-dirty" if dirty.strip() else "")
    except OSError:
        return "unknown"


def parse_sb3_seeds(text: str, default: int) -> dict[str, int]:
    """``"8"`` or ``"MountainCar-v0=4,Pendulum-v1=4"`` (others: the default)."""
    out = {name: default for name in SB3_ENVS}
    for part in filter(None, text.split(",")):
        if "=" in part:
            name, n = part.split("=")
            if name not in out:
                raise SystemExit(f"--sb3-seeds: {name!r} is not one of {SB3_ENVS}")
            out[name] = int(n)
        else:
            out = {name: int(part) for name in SB3_ENVS}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("envs", nargs="*", default=ENVS, help="environments (default: all)")
    parser.add_argument("--sb3-seeds", default="16",
                        help="SB3 seeds: N for every environment, or ENV=N,... (the rest 16); "
                             "0 skips SB3 (default 16; quick 2)")
    parser.add_argument("--sb3-parallel", type=int, default=2,
                        help="SB3 processes at a time (default 2)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "purea2c-peers",
                        help="folder of the peers' virtual environments (benchmarks/peers.py)")
    parser.add_argument("--rejax-seeds", type=int, default=16,
                        help="seeds of rejax's PPO beside purea2c on each MinAtar game, at "
                             "purea2c's preset budget; 0 skips rejax (default 16; quick 2)")
    parser.add_argument("--jumanji-seeds", type=int, default=4,
                        help="seeds of Jumanji's own A2C trainer beside purea2c on each "
                             "Jumanji task, at purea2c's preset budget, one process each; 0 "
                             "skips it (default 4; quick 1)")
    parser.add_argument("--extended-only", action="store_true",
                        help="only the longer budgets (EXTENDED: CartPole's 500k, hopper's "
                             "5M) of rows already in learning.json, for purea2c and rejax, "
                             "kept beside the row; SB3 and Jumanji are not run")
    parser.add_argument("--skip-install", action="store_true",
                        help="use the sb3 and rejax venvs already in the cache; install "
                             "nothing")
    args = parser.parse_args(argv)
    quick = args.quick
    out_dir = Path("/tmp/purea2c-learning-quick") if quick else common.results_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "learning.json"
    record = json.loads(path.read_text()) if path.exists() else {"envs": {}}
    if quick and not record["envs"] and (common.RESULTS_DIR / "learning.json").exists():
        record = json.loads((common.RESULTS_DIR / "learning.json").read_text())
    for env in args.envs:
        if env not in ENVS:
            raise SystemExit(f"{env!r} is not one of {ENVS}")
        if args.extended_only and (env not in EXTENDED
                                   or record["envs"].get(env, {}).get("format") != 2):
            raise SystemExit(f"--extended-only: {env!r} has no longer budget (EXTENDED: "
                             f"{list(EXTENDED)}) or no row in {path} to extend")
    if args.extended_only:
        args.sb3_seeds, args.jumanji_seeds = "0", 0
    sb3_seeds = parse_sb3_seeds("2" if quick and args.sb3_seeds == "16" else args.sb3_seeds, 16)
    # The cheapest first, so that an interrupted run still has the most environments.
    sb3_envs = sorted([e for e in args.envs if e in SB3_ENVS and sb3_seeds[e] > 0],
                      key=lambda e: SB3_BUDGET[e] * sb3_seeds[e])
    python = peer_python("sb3", args.cache, not args.skip_install) if sb3_envs else None
    if sb3_envs and python is None:
        print("[sb3] no sb3 venv: SB3 columns skipped", flush=True)
        sb3_envs = []
    rejax_seeds = 2 if quick and args.rejax_seeds == 16 else args.rejax_seeds
    rejax_envs = [e for e in args.envs if e in REJAX_ENVS] if rejax_seeds > 0 else []
    rejax_py = peer_python("rejax", args.cache, not args.skip_install) if rejax_envs else None
    if rejax_envs and rejax_py is None:
        print("[rejax] no rejax venv: rejax columns skipped", flush=True)
        rejax_envs = []
    jumanji_seeds = 1 if quick and args.jumanji_seeds == 4 else args.jumanji_seeds
    jumanji_envs = [e for e in args.envs if e in JUMANJI_ENVS] if jumanji_seeds > 0 else []
    jumanji_py = (peer_python("jumanji", args.cache, not args.skip_install)
                  if jumanji_envs else None)
    if jumanji_envs and jumanji_py is None:
        print("[jumanji] no jumanji venv: Jumanji A2C columns skipped", flush=True)
        jumanji_envs = []
    log_dir = out_dir / "learning-logs" if quick else \
        args.cache / "logs" / f"learning-{int(time.time())}"
    log_dir.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    machine = common.machine_info()
    revision = git_revision()

    def save() -> None:
        with lock:
            for e in record["envs"].values():
                if e.get("format") == 2 and e["env"] in args.envs:
                    e["plot"] = plot(e, out_dir)
            path.write_text(json.dumps(common._jsonable(record), indent=1))
            (out_dir / "learning.md").write_text(f"# Learning results\n\n{markdown(record)}\n")

    run_record = dict(command=machine["command"], date_utc=machine["date_utc"],
                      load=machine["load_average_at_start"], versions=machine["versions"],
                      git_revision=revision)
    for env in args.envs:
        if args.extended_only:  # the row as it is; its longer budget run again beside it
            entry = record["envs"][env]
            config = row_config(env, quick)
            if not quick and common.config_record(config) != entry["config"]:
                raise SystemExit(f"--extended-only: {env}'s preset differs from its row's "
                                 "config; run the row again first")
            entry["extended"] = run_extended(env, config, row_keys(entry["seeds"]),
                                             entry["eval_episodes"], quick)
            entry["extended"].update(run_record)
        else:
            episodes = 32 if "MinAtar" in env else EPISODES.get(env, EVAL_EPISODES)
            entry = run_env(env, 2 if quick else SEEDS.get(env, NUM_SEEDS),
                            4 if quick else episodes, quick)
            entry.update(run_record, sb3=None, rejax=None, jumanji_a2c=None)
            with lock:
                record["envs"][env] = entry
            g, s = entry["greedy"], entry["sampled"]
            print(f"{env}: greedy {g['mean']:.1f} ± {g['std']:.1f} (solved {g['solved']}), "
                  f"sampled {s['mean']:.1f} ± {s['std']:.1f} (solved {s['solved']}), min "
                  f"greedy {g['min']:.1f}; compile {entry['compile_s']:.1f}s, run "
                  f"{entry['run_s']:.1f}s", flush=True)
        if "extended" in entry:
            x = entry["extended"]
            print(f"{env} at {x['env_steps']}: greedy {x['greedy']['mean']:.1f} "
                  f"({x['greedy']['solved']}), sampled {x['sampled']['mean']:.1f} "
                  f"({x['sampled']['solved']}), {x['wall_s']:.1f}s", flush=True)
        save()
        if env in rejax_envs and not args.extended_only:  # after purea2c's run, not beside
            # it: no shared cores
            preset = purea2c.Config.preset(env)
            budget = preset.steps_per_iteration * 2 if quick else preset.total_timesteps
            rejax = rejax_run(rejax_py, env, min(rejax_seeds, entry["seeds"],
                                                 REJAX_SEEDS.get(env, rejax_seeds)), budget,
                              entry["eval_episodes"], log_dir, 4 * 3600)
            entry["rejax"] = rejax
            report_rejax(env, rejax)
            save()
        if env in rejax_envs and "extended" in entry:  # its longer budget, as the row's
            x = entry["extended"]
            steps = purea2c.Config.preset(env).steps_per_iteration
            x["rejax"] = rejax_run(rejax_py, env, min(rejax_seeds, x["seeds"],
                                                      REJAX_SEEDS.get(env, rejax_seeds)),
                                   4 * steps if quick else EXTENDED[env][0],
                                   entry["eval_episodes"], log_dir, 6 * 3600, tag="_extended")
            report_rejax(env, x["rejax"])
            save()

        if env in jumanji_envs:  # after purea2c's run, as rejax
            preset = purea2c.Config.preset(env)
            budget = 5120 if quick else preset.total_timesteps
            jumanji = jumanji_run(jumanji_py, env, jumanji_seeds, budget,
                                  entry["eval_episodes"], log_dir, 4 * 3600)
            entry["jumanji_a2c"] = jumanji
            if jumanji["seeds"]:
                g, s = jumanji["greedy"], jumanji["sampled"]
                print(f"{env} Jumanji A2C ({jumanji['seeds']} seeds, {jumanji['env_steps']} "
                      f"steps): greedy {g['mean']:.1f} ± {g['std']:.1f}, sampled "
                      f"{s['mean']:.1f} ± {s['std']:.1f}", flush=True)
            else:
                print(f"{env} Jumanji A2C error: {jumanji['errors'][0]}", flush=True)
            save()

    # SB3 after purea2c (so purea2c's timings are not shared with SB3's processes).
    for env in sb3_envs:
        params = [{"env": env, "seed": seed, "eval_episodes": 4 if quick else EVAL_EPISODES,
                   "torch_threads": 1, **({"total_timesteps": 2000} if quick else {})}
                  for seed in range(sb3_seeds[env])]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.sb3_parallel) as pool:
            runs = list(pool.map(lambda p: sb3_job(python, p, log_dir, 3600), params))
        summary = sb3_summary(env, runs, time.perf_counter() - t0)
        record["envs"][env]["sb3"] = summary
        if summary.get("seeds"):
            g, s = summary["greedy"], summary["sampled"]
            print(f"{env} SB3 ({summary['seeds']} seeds, {summary['wall_s']:.0f}s): greedy "
                  f"{g['mean']:.1f} ± {g['std']:.1f} (solved {g['solved']}), sampled "
                  f"{s['mean']:.1f} (solved {s['solved']}), min greedy {g['min']:.1f}",
                  flush=True)
        for err in summary["errors"][:2]:
            print(f"{env} SB3 error: {err}", flush=True)
        save()
    print(f"wrote {out_dir / 'learning.md'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
