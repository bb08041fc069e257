"""XLand-MiniGrid adapter: ``xminigrid/<name>`` for xminigrid's ``MiniGrid-*`` ids
(``MiniGrid-Empty-5x5``, ``MiniGrid-DoorKey-5x5``, ...).

``xminigrid.make`` returns ``(env, env_params)``; ``env.step(params, timestep, action)`` does
not reset (only xminigrid's ``GymAutoResetWrapper`` does, and it would lose the final
observation: it is not used), so an ending step's observation is the final one.

End signals, from the dm_env-style ``TimeStep`` ``env.step`` returns
(``xminigrid/environment.py``, ``Environment.step``): ``step_type`` is ``LAST`` when the
goal is reached or ``step_num == max_steps``, and ``discount`` is 0 exactly when the goal
is reached, 1 otherwise:

- ``LAST`` with ``discount == 0`` (the goal: ``check_goal``) -> ``terminated`` (it wins
  when the time limit falls on the same step);
- ``LAST`` with ``discount == 1`` (``step_num == max_steps``) -> ``truncated``;
- ``MID`` -> neither.

The reward is ``1 - 0.9 * step_num / max_steps`` on reaching the goal, 0 otherwise. The
state is xminigrid's ``TimeStep`` (whose ``State`` holds the grid, the agent, the goal and
rules, and the step counter) with float32 reward and discount and no weak-typed leaves;
the env's parameters are static and live in the adapter. xminigrid's steps draw no
randomness: the step ``key`` is not used.

Observations are the agent's view, ``uint8 [view_size, view_size, 2]`` (tile, colour;
``view_size`` is 7 by default). Actions are discrete: 6 (forward, turn right, turn left,
pick up, put down, toggle). ``max_episode_steps`` is the params' ``max_steps``.

Some of xminigrid's code broadcasts arrays of different ranks (``MiniGrid-LockedRoom``'s
reset), so its calls run under ``jax.numpy_rank_promotion("allow")`` whatever the global
setting is.

Keyword arguments of `make` replace fields of the env's parameters: ``max_steps=50`` (the
time limit), ``view_size=5``. The ``XLand-MiniGrid-*`` ids need a ruleset from a benchmark
that xminigrid downloads (``xminigrid.load_benchmark``), which purea2c does not do: `make`
rejects them and `ids` does not list them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import xminigrid
from xminigrid.types import StepType, TimeStep

from purea2c.envs.core import ActionSpec, EnvError, EnvStep, spec_of

# Ids whose environments need a ruleset from a downloaded benchmark.
_NEEDS_BENCHMARK = "XLand-"
# Fields of the params that the id fixes (the grid's size) or that purea2c never reads.
_FIXED = ("height", "width", "render_mode")


def ids() -> list[str]:
    return sorted(name for name in xminigrid.registered_environments()
                  if not name.startswith(_NEEDS_BENCHMARK))


def make(name: str, **kwargs: Any) -> "XMiniGridEnv":
    if name.startswith(_NEEDS_BENCHMARK) and name in xminigrid.registered_environments():
        raise EnvError(f"xminigrid/{name} needs a ruleset from a benchmark that xminigrid "
                       "downloads (xminigrid.load_benchmark), which purea2c does not fetch; "
                       "the MiniGrid-* ids need none")
    if name not in ids():
        raise EnvError(f"unknown xminigrid environment {name!r}; xminigrid has e.g. "
                       f"{ids()[:6]} (all: purea2c.envs.ids('xminigrid'))")
    env, params = xminigrid.make(name)
    known = sorted(f.name for f in dataclasses.fields(params) if f.name not in _FIXED)
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise EnvError(f"xminigrid/{name} takes no keyword {unknown[0]!r}; it takes {known}")
    for key in ("max_steps", "view_size"):
        value = kwargs.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise EnvError(f"xminigrid/{name}: {key} must be an int >= 1, got {value!r}")
    return XMiniGridEnv(env, params.replace(**kwargs), name)


def _strong(tree: Any) -> Any:
    """``tree`` with no weak-typed leaves (reset's and step's states then match)."""
    return jax.tree.map(lambda x: jnp.array(x, dtype=x.dtype), tree)


def _canonical(timestep: TimeStep) -> TimeStep:
    return _strong(timestep.replace(reward=jnp.asarray(timestep.reward, jnp.float32),
                                    discount=jnp.asarray(timestep.discount, jnp.float32)))


class XMiniGridEnv:
    """An xminigrid environment and its (static) parameters behind the protocol of
    `purea2c.envs.core`."""

    suite = "xminigrid"

    def __init__(self, env: Any, params: Any, name: str):
        self.env, self.params, self.name = env, params, name
        self.action_spec = ActionSpec(True, int(env.num_actions(params)), None, None)
        obs, _ = jax.eval_shape(self.reset, jax.random.key(0))
        self.observation_spec = spec_of(obs)
        self.max_episode_steps = int(params.max_steps)

    def reset(self, key: jax.Array) -> tuple[jax.Array, TimeStep]:
        with jax.numpy_rank_promotion("allow"):  # some of xminigrid's code relies on it
            timestep = self.env.reset(self.params, jax.random.key_data(key))
        timestep = _canonical(timestep)
        return timestep.observation, timestep

    def step(self, key: jax.Array, state: TimeStep, action: jax.Array) -> EnvStep:
        del key  # xminigrid's steps are deterministic
        with jax.numpy_rank_promotion("allow"):
            timestep = self.env.step(self.params, state, jnp.asarray(action, jnp.int32))
        timestep = _canonical(timestep)
        last = timestep.step_type == StepType.LAST
        terminated = jnp.logical_and(last, timestep.discount == 0.0)
        truncated = jnp.logical_and(last, timestep.discount != 0.0)
        return EnvStep(timestep.observation, timestep, timestep.reward, terminated,
                       truncated)

    def __repr__(self) -> str:
        return f"XMiniGridEnv({self.name})"
