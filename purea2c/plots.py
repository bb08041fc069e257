"""Learning curves: the running mean of training returns, its mean over seeds with a 95%
band, and the PNG that ``purea2c train`` writes (benchmarks/learning.py draws the same)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from purea2c.atomic import write_atomically


def nanmean(x: np.ndarray, axis: int | None = None) -> Any:
    """Mean of the finite values (NaN where there are none), without numpy's warning."""
    finite = np.isfinite(x)
    count = finite.sum(axis=axis)
    total = np.where(finite, x, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def running_mean_return(returns: np.ndarray, episodes: np.ndarray | None,
                        width: int) -> np.ndarray:
    """Mean return of the episodes that finished in the last ``width`` iterations, per
    iteration ``[seeds, iters]`` (NaN where none finished). ``returns[s, i]`` is the mean
    return of the ``episodes[s, i]`` episodes that finished in iteration i (NaN if none);
    iterations are weighted by that count, or equally when ``episodes`` is None:

        smooth[s, i] = sum_j w[s, j] r[s, j] / sum_j w[s, j],  j in (i - width, i], r finite
    """
    finite = np.isfinite(returns)
    weight = np.where(finite, episodes if episodes is not None else 1, 0).astype(np.float64)
    total = np.where(finite, returns, 0.0) * weight
    csum_t = np.cumsum(total, axis=-1)
    csum_w = np.cumsum(weight, axis=-1)
    shifted_t = np.zeros_like(csum_t)
    shifted_w = np.zeros_like(csum_w)
    shifted_t[..., width:] = csum_t[..., :-width]
    shifted_w[..., width:] = csum_w[..., :-width]
    w = csum_w - shifted_w
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(w > 0, (csum_t - shifted_t) / np.maximum(w, 1e-12), np.nan)


def mean_and_band(smooth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Over seeds (axis 0) of ``[seeds, iters]``: the mean of the finite values and the half
    width of its 95% confidence band, 1.96 standard errors (sample std, ddof=1)."""
    mean = nanmean(smooth, axis=0)
    count = np.isfinite(smooth).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = nanmean((smooth - mean) ** 2, axis=0) * count / np.maximum(count - 1, 1)
        half = 1.96 * np.sqrt(var / np.maximum(count, 1))
    return mean, half


def draw_learning_curve(ax: Any, steps: np.ndarray, returns: np.ndarray,
                        episodes: np.ndarray | None, width: int, label: str | None = None,
                        band_label: str = "95% CI of the mean") -> None:
    """Draws on ``ax`` the mean over seeds of the ``width``-iteration running mean return
    and, with several seeds, its 95% band. ``returns``, ``episodes``: ``[seeds, iters]``;
    ``steps``: ``[iters]``."""
    smooth = running_mean_return(np.asarray(returns, np.float64), episodes, width)
    num_seeds = smooth.shape[0]
    mean, half = mean_and_band(smooth)
    if label is None:
        label = f"mean over {num_seeds} seeds" if num_seeds > 1 else "seed 0"
    ax.plot(steps, mean, lw=1.8, label=label)
    if num_seeds > 1:
        ax.fill_between(steps, mean - half, mean + half, alpha=0.3, lw=0, label=band_label)


def plot_learning_curve(arrays: dict[str, np.ndarray], path: str | os.PathLike, title: str,
                        width: int) -> None:
    """Writes a PNG of the training return: the mean over seeds of a ``width``-iteration
    running mean, and a 95% confidence band of that mean (1.96 standard errors) when there
    are several seeds. ``arrays``: ``{metric: [seeds, iters]}`` with ``episode_return``,
    ``env_steps`` and (optionally) ``episodes``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2), dpi=110)
    ax = fig.add_subplot()
    draw_learning_curve(ax, np.asarray(arrays["env_steps"][0], np.float64),
                        arrays["episode_return"], arrays.get("episodes"), width)
    ax.set_xlabel("env steps (per seed)")
    ax.set_ylabel(f"training episode return\n(running mean, {width} iterations)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    write_atomically(path, lambda f: fig.savefig(f, format="png"))
