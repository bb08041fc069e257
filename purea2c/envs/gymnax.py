"""gymnax adapter: ``gymnax/<name>`` (or a bare gymnax name) and gymnax-API env objects.

gymnax 1.x's ``step`` resets a finished episode inside the call; the adapter never uses it.
``step`` is the env's ``step_env`` (whose ``done`` is termination only) with the time limit
read by ``is_truncated``, so the observation of an ending step is the final one. A gymnax
object that overrides ``step`` itself (a wrapper) cannot be split that way: its ``step`` is
called and the final observation is read from ``info["final_observation"]``; the state it
resets to is then replaced by purea2c's own auto-reset like any other.

Keyword arguments of `make` replace fields of the env's parameters
(``max_steps_in_episode=200``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from purea2c.envs.deferred_imports import deferred

with deferred():  # gymnax's plotting imports wait until something draws
    import gymnax
    from gymnax.environments import spaces
    from gymnax.environments.environment import Environment

from purea2c.envs.core import ActionSpec, ArraySpec, EnvError, EnvStep, box_spec
from purea2c.envs.registry import GYMNAX_DRAWN_BY_GYMNASIUM as _GYM_DRAWN
from purea2c.envs.registry import GYMNAX_DRAWN_BY_MATPLOTLIB as _MPL_DRAWN

_DRAWABLE = _GYM_DRAWN + _MPL_DRAWN
from purea2c.errors import RunError

GYMNAX_API = ("reset", "step", "action_space", "observation_space", "default_params")
# Made only by downloading a data set, which purea2c does not do.
_DOWNLOADING = ("MNISTBandit-bsuite",)


def ids() -> list[str]:
    return sorted(name for name in gymnax.registered_envs if name not in _DOWNLOADING)


def make(name: str, **kwargs: Any) -> "GymnaxEnv":
    if name in _DOWNLOADING:
        raise EnvError(f"gymnax/{name} downloads a data set when it is made, which purea2c "
                       "does not do; pass an env object that holds its data instead")
    if name not in gymnax.registered_envs:
        raise EnvError(f"unknown environment {name!r} in gymnax; registered gymnax "
                       f"environments: {ids()}")
    env, params = gymnax.make(name)
    return GymnaxEnv(env, _replace_params(params, name, kwargs), name)


def _replace_params(params: Any, name: str, kwargs: dict[str, Any]) -> Any:
    if not kwargs:
        return params
    known = [f.name for f in dataclasses.fields(params)]
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise EnvError(f"gymnax/{name} takes no keyword {unknown[0]!r}; its parameters are "
                       f"{known}")
    for key, value in sorted(kwargs.items()):
        _check_value(name, key, getattr(params, key), value)
    return params.replace(**kwargs)


def _check_value(name: str, key: str, default: Any, value: Any) -> None:
    """`EnvError` for a value of another kind than the parameter's default: a bool for a
    bool, an int for an int (``max_steps_in_episode`` >= 1), a real number for a float
    (array parameters are not checked here)."""
    is_bool = isinstance(value, (bool, np.bool_))
    if isinstance(default, (bool, np.bool_)):
        ok, want = is_bool, "a bool"
    elif isinstance(default, (int, np.integer)):
        ok, want = isinstance(value, (int, np.integer)) and not is_bool, "an int"
        if key == "max_steps_in_episode":
            ok, want = ok and value >= 1, "an int >= 1"
    elif isinstance(default, (float, np.floating)):
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not is_bool \
            and not (isinstance(value, (float, np.floating)) and np.isnan(value))
        want = "a real number"
    else:
        return
    if not ok:
        raise EnvError(f"gymnax/{name}: {key}={value!r} is not {want} (default {default!r})")


def is_gymnax_object(env: Any) -> bool:
    return all(hasattr(env, name) for name in GYMNAX_API)


def wrap(env: Any) -> "GymnaxEnv":
    """An object with the gymnax 1.x API, with its default parameters."""
    return GymnaxEnv(env, env.default_params, type(env).__name__)


def _decomposable(env: Any) -> bool:
    """True when ``env.step`` is gymnax's own (step_env, then its auto-reset)."""
    return isinstance(env, Environment) and type(env).step is Environment.step


def _action_spec(space: Any) -> ActionSpec:
    if isinstance(space, spaces.Discrete):
        return ActionSpec(True, int(space.n), None, None)
    if isinstance(space, spaces.Box):
        return box_spec(space.low, space.high, tuple(space.shape))
    raise EnvError(f"its action space is not supported: {space!r} is neither Discrete nor "
                   "Box")


def _observation_spec(space: Any) -> ArraySpec:
    shape = tuple(int(d) for d in space.shape)
    low = high = None
    if hasattr(space, "low") and hasattr(space, "high"):
        low = np.broadcast_to(np.asarray(space.low, np.float64), shape)
        high = np.broadcast_to(np.asarray(space.high, np.float64), shape)
    return ArraySpec(shape, np.dtype(getattr(space, "dtype", np.float32)), low, high)


class GymnaxEnv:
    """A gymnax environment and its parameters behind the protocol of `purea2c.envs.core`."""

    suite = "gymnax"

    def __init__(self, env: Any, params: Any, name: str):
        self.env, self.params, self.name = env, params, name
        self._own_step = not _decomposable(env)
        with jax.ensure_compile_time_eval():  # the bounds are constants, even inside jit
            self.action_spec = _action_spec(env.action_space(params))
            self.observation_spec = _observation_spec(env.observation_space(params))
        self.max_episode_steps = int(params.max_steps_in_episode)

    def reset(self, key: jax.Array) -> tuple[jax.Array, Any]:
        return self.env.reset(key, self.params)

    def step(self, key: jax.Array, state: Any, action: jax.Array) -> EnvStep:
        if self._own_step:
            _, state, reward, terminated, truncated, info = self.env.step(
                key, state, action, self.params)
            obs = info["final_observation"]
        else:
            obs, state, reward, terminated, _ = self.env.step_env(key, state, action,
                                                                  self.params)
            truncated = self.env.is_truncated(state, self.params)
        terminated = jnp.asarray(terminated, bool)
        truncated = jnp.logical_and(jnp.asarray(truncated, bool), ~terminated)
        return EnvStep(obs, state, jnp.asarray(reward, jnp.float32), terminated, truncated)

    def can_draw(self) -> bool:
        return self.name in _DRAWABLE

    def draw(self, states: list, rewards: np.ndarray) -> tuple[list[np.ndarray], float]:
        """RGB frames ``[H, W, 3]`` of an episode's states and their frame rate, drawn as
        gymnax's visualizer draws the environment (`_DRAWABLE`)."""
        if self.name in _GYM_DRAWN:
            return _frames_gym(self.name, self.params, states)
        if self.name in _MPL_DRAWN:
            return _frames_matplotlib(self.env, self.params, states, rewards)
        raise RunError(f"gymnax cannot draw {self.name}: its visualizer draws only "
                       f"{', '.join(_DRAWABLE)}")

    def __repr__(self) -> str:
        return f"GymnaxEnv({self.name})"


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
