"""Drawing a trained policy: one episode played as a compiled scan, its frames drawn by the
environment's adapter (``env.draw(states, rewards)``), written as a GIF.

    episode = render_gif(config, seed_params(state, 0), "policy.gif")

Works for the environments whose adapter draws: gymnax's `DRAWABLE_ENVS` (classic control
through gymnasium's renderer, which needs pygame: ``pip install "purea2c[render]"``; Catch,
MinAtar, Pong, PointRobot, MetaMaze and FourRooms through matplotlib).
"""

from __future__ import annotations

import functools
import os
import pathlib
from typing import Any, NamedTuple

import jax
import numpy as np

from purea2c import atomic
from purea2c.config import Config
from purea2c.errors import RunError

from purea2c.envs.registry import GYMNAX_DRAWN_BY_GYMNASIUM, GYMNAX_DRAWN_BY_MATPLOTLIB

DRAWABLE_ENVS = GYMNAX_DRAWN_BY_GYMNASIUM + GYMNAX_DRAWN_BY_MATPLOTLIB


class Episode(NamedTuple):
    states: list  # the adapter's env states, the reset state first
    rewards: np.ndarray  # [len(states) - 1]

    @property
    def total_return(self) -> float:
        return float(self.rewards.sum())


def play_episode(config: Config, params: Any, key: jax.Array, greedy: bool = True,
                 max_steps: int | None = None) -> Episode:
    """One episode of ``params.pi`` (a single seed's parameters) in the config's
    environment, played by `purea2c.evaluation.play` as one compiled scan; returns its env
    states for drawing."""
    from purea2c.agent import Agent
    from purea2c.evaluation import make_policy, play

    env = Agent(config).env
    policy = make_policy(config, params, greedy=greedy)
    played = jax.device_get(jax.jit(lambda k: play(
        k, env, lambda obs, k_act: policy(obs, None if greedy else k_act), 1, max_steps,
        keep_states=True))(key))
    length = int(played.lengths[0])  # steps taken until (and with) the end
    one = functools.partial(jax.tree.map, lambda x: x[0])
    seq = [one(played.first_state)] + [jax.tree.map(lambda x, t=t: x[t, 0], played.states)
                                        for t in range(length)]
    return Episode(seq, np.asarray(played.rewards[:length, 0], np.float64))


def draw_frames(config: Config, episode: Episode) -> tuple[list[np.ndarray], float]:
    """RGB frames ``[H, W, 3]`` of an episode and their frame rate, drawn by the
    environment's adapter. Raises `RunError` for environments it cannot draw."""
    from purea2c.agent import Agent

    return _drawer(Agent(config).env)(episode.states, episode.rewards)


def _drawer(env: Any) -> Any:
    """The adapter's ``draw(states, rewards) -> (frames, fps)``; `RunError` if it has none
    or cannot draw this environment."""
    draw = getattr(env, "draw", None)
    can = getattr(env, "can_draw", lambda: draw is not None)
    if draw is None or not can():
        raise RunError(f"{getattr(env, 'suite', 'purea2c')} cannot draw "
                       f"{getattr(env, 'name', repr(env))}: purea2c draws gymnax's "
                       f"{', '.join(DRAWABLE_ENVS)}")
    return draw


def write_gif(frames: list[np.ndarray], path: str | os.PathLike, fps: float,
              scale: float = 1.0) -> pathlib.Path:
    """Writes RGB frames as a looping GIF (one shared palette, so it is quick and small)."""
    from PIL import Image

    if not frames:
        raise ValueError("no frames to write")
    images = [Image.fromarray(np.asarray(f, np.uint8)) for f in frames]
    if scale != 1.0:
        size = (max(1, round(images[0].width * scale)), max(1, round(images[0].height * scale)))
        images = [im.resize(size, Image.Resampling.BILINEAR) for im in images]
    picks = [images[0], images[len(images) // 2], images[-1]]
    sample = Image.new("RGB", (picks[0].width, picks[0].height * len(picks)))
    for i, im in enumerate(picks):
        sample.paste(im, (0, i * im.height))
    palette = sample.quantize(colors=128, dither=Image.Dither.NONE)
    frames_p = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    duration = max(20, int(round(1000 / fps / 10)) * 10)  # GIF delays are in 10 ms units
    return atomic.write_atomically(path, lambda f: frames_p[0].save(
        f, format="GIF", save_all=True, append_images=frames_p[1:], duration=duration, loop=0))


def render_gif(config: Config, params: Any, path: str | os.PathLike,
               key: jax.Array | None = None, greedy: bool = True,
               max_steps: int | None = None, scale: float = 1.0) -> Episode:
    """Plays one episode of ``params`` (one seed's `Params`) and writes it as a GIF to
    ``path``; returns the episode. Works for the environments whose adapter draws."""
    from purea2c.agent import Agent

    _drawer(Agent(config).env)
    key = jax.random.key(0) if key is None else key
    episode = play_episode(config, params, key, greedy=greedy, max_steps=max_steps)
    frames, fps = draw_frames(config, episode)
    write_gif(frames, path, fps, scale=scale)
    return episode
