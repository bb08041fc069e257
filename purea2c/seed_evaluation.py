"""Evaluation of every seed of a vmapped run: greedy (or sampled) returns on fresh episodes,
refused for non-finite parameters, and the summary ``evaluation.json`` holds."""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np

from purea2c.config import Config
from purea2c.errors import RunError
from purea2c.evaluation import evaluate


def nonfinite_seeds(params: Any) -> list[int]:
    """Seeds (leading axis of every leaf) whose parameters hold a NaN or inf."""
    bad = None
    for leaf in jax.tree.leaves(params):
        x = np.asarray(leaf)
        if not np.issubdtype(x.dtype, np.inexact):
            continue
        seed_bad = ~np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1)
        bad = seed_bad if bad is None else bad | seed_bad
    return [] if bad is None else [int(s) for s in np.flatnonzero(bad)]


def check_finite(params: Any, what: str) -> None:
    """`RunError` naming the seeds if ``params`` (seeds on the leading axis) are not finite."""
    bad = nonfinite_seeds(params)
    if bad:
        raise RunError(f"{what}: the parameters of seed{'s' * (len(bad) > 1)} "
                       f"{', '.join(map(str, bad[:8]))}{' ...' if len(bad) > 8 else ''} "
                       "are not finite (NaN or inf); evaluation refused")


def evaluate_seeds(config: Config, params: Any, num_episodes: int, seed: int,
                   greedy: bool = True) -> np.ndarray:
    """Returns ``[seeds, num_episodes]`` of each seed's policy on fresh episodes; episode
    keys ``split(fold_in(key(seed), 1), seeds)``."""
    num_seeds = jax.tree.leaves(params)[0].shape[0]
    keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), 1), num_seeds)
    return np.asarray(_evaluate_program(num_episodes, greedy)(keys, config, params))


@functools.lru_cache(maxsize=None)
def _evaluate_program(num_episodes: int, greedy: bool) -> Any:
    return jax.jit(jax.vmap(
        lambda key, config, params: evaluate(key, config, params, num_episodes=num_episodes,
                                             greedy=greedy), in_axes=(0, None, 0)))


def summarize(returns: np.ndarray, num_episodes: int,
              greedy: bool) -> tuple[dict[str, Any], list[str]]:
    """``(summary, lines)``: the summary written to evaluation.json and the lines printed."""
    returns = np.asarray(returns, np.float64) + 0.0  # no "-0" in the report
    per_seed = returns.mean(axis=1)
    mode = "greedy" if greedy else "sampled"
    lines = []
    if len(per_seed) == 1:
        lines.append(f"{mode} evaluation over {num_episodes} episodes: mean return "
                     f"{per_seed[0]:.1f} (min {returns.min():.0f}, max {returns.max():.0f})")
    else:
        if len(per_seed) <= 16:
            lines += [f"  seed {s:>3}: mean return {r:8.1f}" for s, r in enumerate(per_seed)]
        lines.append(
            f"{mode} evaluation over {num_episodes} episodes per seed: mean return "
            f"{per_seed.mean():.1f} over {len(per_seed)} seeds (per-seed min "
            f"{per_seed.min():.1f}, median {np.median(per_seed):.1f}, max {per_seed.max():.1f})")
    summary = {"mode": mode, "num_episodes": num_episodes,
               "mean_return": float(per_seed.mean()),
               "mean_return_per_seed": [float(r) for r in per_seed]}
    return summary, lines
