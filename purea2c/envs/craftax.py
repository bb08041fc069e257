"""Craftax adapter: ``craftax/<name>`` for the four environments of craftax 1.6.x.

Ids: ``Craftax-Classic-Symbolic-v1`` (observation float32 ``[1345]``, 17 actions),
``Craftax-Symbolic-v1`` (float32 ``[8268]``, 43 actions), ``Craftax-Classic-Pixels-v1``
(float32 ``[63, 63, 3]`` in [0, 1], 17 actions) and ``Craftax-Pixels-v1`` (float32
``[130, 110, 3]``, 43 actions). Observations are kept as craftax gives them. The envs are
made by craftax's own factory (``craftax.craftax_env.make_craftax_env_from_name(name,
auto_reset=False)``); the pixel ones load (and on first use write) craftax's texture cache.

``reset`` is the env's ``reset_env`` (world generation) and ``step`` its ``step_env``, the
step without any reset, so the observation of an ending step is the final one. Both take
the protocol's typed key as the raw ``uint32`` key craftax is written for
(``jax.random.key_data``): the same key gives the same world and transition as craftax
called with the raw key, and the state (which stores a key, ``state_rng``) holds only
plain arrays. Weak types in craftax's state (Classic builds it from Python scalars) are made
strong (Python scalars become arrays), so reset's and step's states are the same pytree of
arrays with the same dtypes.

End signals. Craftax reports one ``done`` = ``is_terminal(state, params)`` =
``game_logic.is_game_over`` (after the step, on the stepped state; ``info["discount"]`` is 0
then). It ORs:

- Classic (``craftax/craftax_classic/game_logic.py``, lines 5-13): ``state.timestep >=
  params.max_timesteps`` (``done_steps``), the player standing in lava, ``player_health <=
  0``;
- Craftax (``craftax/craftax/game_logic.py``, lines 4-9): ``done_steps``, ``player_health <=
  0``, the boss beaten (``has_beaten_boss``: ``boss_progress >= num_levels - 1``,
  ``craftax/craftax/util/game_logic_utils.py`` line 28).

``state.timestep`` counts the steps taken (``craftax_step`` adds 1, Classic
``game_logic.py`` line 1705, Craftax line 3084; reset sets 0), so the time limit ends step
number ``max_timesteps``. The adapter maps:

- ``terminated`` = ``is_terminal`` of the stepped state under the same parameters with no
  time limit (``max_timesteps`` = int32 max): death, lava or the won game, whatever the
  step count, the time limit's own step included;
- ``truncated`` = ``done and not terminated``: the time limit reached by a living player.

``max_episode_steps`` = ``params.max_timesteps`` (10,000 for Classic, 100,000 for Craftax).
Keyword arguments of `make` replace fields of craftax's ``EnvParams``
(``max_timesteps=1000``). craftax's ``info`` (achievements, score) is not passed on.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from craftax.craftax_env import make_craftax_env_from_name

from purea2c.envs.core import ActionSpec, ArraySpec, EnvError, EnvStep

_IDS = (
    "Craftax-Classic-Pixels-v1",
    "Craftax-Classic-Symbolic-v1",
    "Craftax-Pixels-v1",
    "Craftax-Symbolic-v1",
)
_NO_LIMIT = int(np.iinfo(np.int32).max)  # a max_timesteps no step count reaches


def ids() -> list[str]:
    return sorted(_IDS)


def make(name: str, **kwargs: Any) -> "CraftaxEnv":
    if name not in _IDS:
        raise EnvError(f"unknown craftax environment {name!r}; craftax has {ids()}")
    env = make_craftax_env_from_name(name, auto_reset=False)
    return CraftaxEnv(env, _replace_params(env.default_params, name, kwargs), name)


def _replace_params(params: Any, name: str, kwargs: dict[str, Any]) -> Any:
    """``params`` with the fields in ``kwargs`` replaced; `EnvError` for an unknown field or
    a value of the wrong kind."""
    fields = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    for key, value in sorted(kwargs.items()):
        if key not in fields:
            raise EnvError(f"craftax/{name} takes no keyword {key!r}; its parameters are "
                           f"{list(fields)}")
        _check_value(name, key, fields[key], value)
    return params.replace(**kwargs)


def _check_value(name: str, key: str, default: Any, value: Any) -> None:
    if isinstance(default, tuple):  # fractal_noise_angles: a tuple of 4 (ints or None)
        ok = isinstance(value, tuple) and len(value) == len(default)
    elif isinstance(default, (bool, np.bool_)):
        ok = isinstance(value, (bool, np.bool_))
    elif isinstance(default, (int, np.integer)):
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    else:
        ok = (isinstance(value, (int, float, np.integer, np.floating))
              and not isinstance(value, (bool, np.bool_)))
    if key == "max_timesteps":
        ok = ok and 1 <= value <= _NO_LIMIT - 1
    if not ok:
        want = ("an int >= 1" if key == "max_timesteps"
                else f"of type {type(default).__name__} (default {default!r})")
        raise EnvError(f"craftax/{name}: {key}={value!r} is not {want}")


def _raw_key(key: jax.Array) -> jax.Array:
    """The raw uint32 key craftax is written for (a raw key passes as it is)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key


def _strong(tree: Any) -> Any:
    """``tree`` with every leaf a strongly typed array (craftax's Classic state holds Python
    scalars and weakly typed arrays when traced; jit would return them as int32 / float32 /
    bool arrays)."""
    def strong(x: Any) -> jax.Array:
        x = jnp.asarray(x)
        return jnp.asarray(x, x.dtype)

    return jax.tree.map(strong, tree)


def _observation_spec(space: Any) -> ArraySpec:
    shape = tuple(int(d) for d in space.shape)
    low = np.broadcast_to(np.asarray(space.low, np.float64), shape)
    high = np.broadcast_to(np.asarray(space.high, np.float64), shape)
    return ArraySpec(shape, np.dtype(space.dtype), low, high)


class CraftaxEnv:
    """A craftax environment (no auto-reset) and its parameters behind the protocol of
    `purea2c.envs.core`. Observation: float32 ``[D]`` (Symbolic) or ``[H, W, 3]`` (Pixels);
    action: int32 ``[]``; state: craftax's ``EnvState``."""

    suite = "craftax"

    def __init__(self, env: Any, params: Any, name: str):
        self.env, self.params, self.name = env, params, name
        self._no_limit = params.replace(max_timesteps=_NO_LIMIT)
        self.action_spec = ActionSpec(True, int(env.num_actions), None, None)
        self.observation_spec = _observation_spec(env.observation_space(params))
        self.max_episode_steps = int(params.max_timesteps)

    def reset(self, key: jax.Array) -> tuple[jax.Array, Any]:
        obs, state = self.env.reset_env(_raw_key(key), self.params)
        return obs, _strong(state)

    def step(self, key: jax.Array, state: Any, action: jax.Array) -> EnvStep:
        obs, state, reward, done, _ = self.env.step_env(_raw_key(key), state, action,
                                                        self.params)
        terminated = jnp.asarray(self.env.is_terminal(state, self._no_limit), bool)
        truncated = jnp.logical_and(jnp.asarray(done, bool), jnp.logical_not(terminated))
        return EnvStep(obs, _strong(state), jnp.asarray(reward, jnp.float32), terminated,
                       truncated)

    def __repr__(self) -> str:
        return f"CraftaxEnv({self.name})"
