"""Drawing a trained policy: one episode played as a compiled scan, its frames drawn as
gymnax's visualizer draws the environment, written as a GIF.

    episode = render_gif(config, seed_params(state, 0), "policy.gif")

Works for the environments in `DRAWABLE_ENVS`: classic control (through gymnasium's
renderer, which needs pygame: ``pip install "purea2c[render]"``), Catch, MinAtar, Pong,
PointRobot, MetaMaze and FourRooms (matplotlib).
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from purea2c.config import Config
from purea2c.errors import RunError

# Environments gymnax 1.0.1 draws (gymnax.visualize.Visualizer). The classic-control ones are
# drawn by gymnasium's renderer (needs pygame: pip install "purea2c[render]").
_GYM_DRAWN = ("Acrobot-v1", "CartPole-v1", "Pendulum-v1", "MountainCar-v0",
              "MountainCarContinuous-v0")
_MPL_DRAWN = ("Catch-bsuite", "Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar",
              "Seaquest-MinAtar", "SpaceInvaders-MinAtar", "Pong-misc", "PointRobot-misc",
              "MetaMaze-misc", "FourRooms-misc")
DRAWABLE_ENVS = _GYM_DRAWN + _MPL_DRAWN


class Episode(NamedTuple):
    states: list  # gymnax env states, the reset state first
    rewards: np.ndarray  # [len(states) - 1]

    @property
    def total_return(self) -> float:
        return float(self.rewards.sum())


def play_episode(config: Config, params: Any, key: jax.Array, greedy: bool = True,
                 max_steps: int | None = None) -> Episode:
    """One episode of ``params.pi`` (a single seed's parameters) in the config's gymnax
    environment, run as one compiled scan; returns its env states for drawing."""
    from purea2c import envs
    from purea2c.evaluate import make_policy

    env, env_params = envs.make_env(config.env)
    if max_steps is None:
        max_steps = int(env_params.max_steps_in_episode)
    policy = make_policy(config, params, greedy=greedy)

    @jax.jit
    def rollout(key):
        key, key_reset = jax.random.split(key)
        obs, state = env.reset(key_reset, env_params)

        def body(carry, _):
            obs, state, key, done = carry
            key, key_act, key_step = jax.random.split(key, 3)
            action = policy(obs, None if greedy else key_act)
            obs2, state2, reward, terminated, _ = env.step_env(key_step, state, action,
                                                               env_params)
            ended = jnp.logical_or(terminated, env.is_truncated(state2, env_params))
            return (obs2, state2, key, jnp.logical_or(done, ended)), (state2, reward, done)

        _, (states, rewards, done_before) = jax.lax.scan(
            body, (obs, state, key, jnp.zeros((), bool)), None, length=max_steps)
        return state, states, rewards, done_before

    first, states, rewards, done_before = jax.device_get(rollout(key))
    length = int(np.sum(~np.asarray(done_before)))  # steps taken until (and with) the end
    seq = [first] + [jax.tree.map(lambda x, t=t: x[t], states) for t in range(length)]
    return Episode(seq, np.asarray(rewards[:length], np.float64))


def _frames_gym(env_name: str, env_params: Any, states: list) -> tuple[list[np.ndarray], float]:
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    import gymnasium as gym
    from gymnax.visualize import vis_gym

    try:
        gym_env = gym.make(env_name, render_mode="rgb_array")
        gym_env.reset(seed=0)
    except gym.error.DependencyNotInstalled as e:
        raise RunError(f"drawing {env_name} needs pygame: pip install 'purea2c[render]' "
                           f"({e})") from e
    try:
        unwrapped = gym_env.unwrapped
        vis_gym.set_gym_params(unwrapped, env_name, env_params)
        frames = []
        for state in states:
            unwrapped.state = vis_gym.get_gym_state(state, env_name)
            if env_name == "Pendulum-v1":
                unwrapped.last_u = np.asarray(state.last_u, dtype=np.float64)
            frames.append(np.asarray(gym_env.render()))
        fps = float(gym_env.metadata.get("render_fps", 30))
    finally:
        gym_env.close()
    return frames, fps


def _frames_matplotlib(env: Any, env_params: Any, states: list,
                       rewards: np.ndarray) -> tuple[list[np.ndarray], float]:
    import matplotlib.pyplot as plt
    from gymnax.visualize import Visualizer

    returns = np.concatenate([[0.0], np.cumsum(rewards)])
    vis = Visualizer(env, env_params, states, returns)
    try:
        vis.init()
        frames = []
        for t in range(len(states)):
            vis.update(t)
            vis.fig.canvas.draw()
            frames.append(np.asarray(vis.fig.canvas.buffer_rgba())[..., :3].copy())
    finally:
        plt.close(vis.fig)
    return frames, 1000.0 / vis.interval


def draw_frames(config: Config, episode: Episode) -> tuple[list[np.ndarray], float]:
    """RGB frames ``[H, W, 3]`` of an episode and their frame rate, drawn as gymnax's
    visualizer draws the environment. Raises `RunError` for environments it cannot draw."""
    from purea2c import envs

    env, env_params = envs.make_env(config.env)
    name = getattr(env, "name", type(env).__name__)
    if name in _GYM_DRAWN:
        return _frames_gym(name, env_params, episode.states)
    if name in _MPL_DRAWN:
        return _frames_matplotlib(env, env_params, episode.states, episode.rewards)
    raise RunError(f"gymnax cannot draw {name}: its visualizer draws only "
                       f"{', '.join(DRAWABLE_ENVS)}")


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
    path = pathlib.Path(path)
    tmp = path.with_name(path.name + ".tmp.gif")
    frames_p[0].save(tmp, save_all=True, append_images=frames_p[1:], duration=duration,
                     loop=0)
    os.replace(tmp, path)
    return path


def render_gif(config: Config, params: Any, path: str | os.PathLike,
               key: jax.Array | None = None, greedy: bool = True,
               max_steps: int | None = None, scale: float = 1.0) -> Episode:
    """Plays one episode of ``params`` (one seed's `Params`) and writes it as a GIF to
    ``path``; returns the episode. Works for the environments in `DRAWABLE_ENVS`."""
    from purea2c import envs

    env, _ = envs.make_env(config.env)
    name = getattr(env, "name", type(env).__name__)
    if name not in DRAWABLE_ENVS:
        raise RunError(f"gymnax cannot draw {name}: its visualizer draws only "
                           f"{', '.join(DRAWABLE_ENVS)}")
    key = jax.random.key(0) if key is None else key
    episode = play_episode(config, params, key, greedy=greedy, max_steps=max_steps)
    frames, fps = draw_frames(config, episode)
    write_gif(frames, path, fps, scale=scale)
    return episode
