"""Navix adapter: ``navix/<name>`` for the names of navix's registry (``Navix-Empty-5x5-v0``,
``Navix-DoorKey-8x8-v0``, ...).

navix's ``Environment.step`` resets lazily: stepping a timestep whose ``step_type`` says the
episode ended returns the next episode's first timestep, a dead step per episode. The
adapter never uses it: ``step`` is the env's ``_step``, the transition ``step`` runs when the
episode has not ended, so every adapter step is a real transition and the observation of an
ending step is the final one.

End signals, from the ``step_type`` of the timestep ``_step`` returns
(``navix/environments/environment.py``, ``Environment.termination`` and
``navix/terminations.py``, ``check_truncation``: ``clip(truncated + 2 * terminated, 0, 2)``):

- 2 (``StepType.TERMINATION``: the env's ``termination_fn``, e.g. the goal reached, lava,
  a ball hit) -> ``terminated``; it wins when the time limit falls on the same step;
- 1 (``StepType.TRUNCATION``: ``t >= max_steps``) -> ``truncated``;
- 0 (``StepType.TRANSITION``) -> neither.

The state is navix's ``Timestep`` (its ``State`` carries navix's own PRNG key, split from
the reset key, which its stochastic transitions advance; the step ``key`` is not used).
Two changes keep it a fixed, lean pytree: no leaf is weak-typed (reset's
``info["return"]`` is), and, unless the observation function draws RGB images, its
rendering cache (RGB tiles of the whole grid, 12 kB of the 13 kB on 8x8, which only
``observations.rgb`` and ``observations.rgb_first_person`` read) is replaced by an empty
one, so that neither vmapped resets nor the auto-reset's selects move it.

navix's code broadcasts arrays of different ranks (``states.py``), so its calls run under
``jax.numpy_rank_promotion("allow")`` whatever the global setting is.

Observations are what the env's ``observation_fn`` gives, in its shape and dtype (by
default ``observations.symbolic``: the whole grid, ``uint8 [height, width, 3]``). Actions
are discrete, one per entry of the env's ``action_set`` (7 by default, MiniGrid's).
``max_episode_steps`` is the env's ``max_steps``.

Keyword arguments of `make` go to ``navix.make`` (``max_steps=50``,
``observation_fn=navix.observations.symbolic_first_person``, ...).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import jax
import jax.numpy as jnp
import navix
from navix import observations
from navix.environments.environment import Environment, StepType, Timestep
from navix.rendering.cache import RenderingCache

from purea2c.envs.core import ActionSpec, EnvError, EnvStep, spec_of

# navix's observation functions that do not read the rendering cache (only the RGB ones,
# ``rgb`` and ``rgb_first_person``, do): with these the cache is dropped from the state.
_NOT_RENDERING = (observations.none, observations.categorical,
                  observations.categorical_first_person, observations.symbolic,
                  observations.symbolic_first_person)


def ids() -> list[str]:
    return sorted(navix.registry())


def make(name: str, **kwargs: Any) -> "NavixEnv":
    if name not in navix.registry():
        raise EnvError(f"unknown navix environment {name!r}; navix has e.g. "
                       f"{ids()[:6]} (all: purea2c.envs.ids('navix'))")
    known = _keywords(type(navix.make(name)))
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise EnvError(f"navix/{name} takes no keyword {unknown[0]!r}; it takes {known}")
    max_steps = kwargs.get("max_steps", 1)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise EnvError(f"navix/{name}: max_steps must be an int >= 1, got {max_steps!r}")
    try:
        env = navix.make(name, **kwargs)
    except TypeError as err:  # a keyword the registered constructor sets itself
        raise EnvError(f"navix/{name}: {err}") from None
    return NavixEnv(env, name)


def _keywords(cls: type) -> list[str]:
    """The keywords ``navix.make`` passes on to an env class: ``Environment.create``'s and
    the class's fields, less the grid's size (which the id fixes)."""
    create = [p for p, v in inspect.signature(cls.create).parameters.items()
              if v.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    fields = [f.name for f in dataclasses.fields(cls)]
    return sorted((set(create) | set(fields)) - {"height", "width"})


def _strong(tree: Any) -> Any:
    """``tree`` with no weak-typed leaves (reset's ``info["return"]`` is one; a scan's
    carry then keeps one type)."""
    return jax.tree.map(lambda x: jnp.array(x, dtype=x.dtype), tree)


def _empty_cache(cache: RenderingCache) -> RenderingCache:
    patches = cache.patches
    return cache.replace(patches=jnp.zeros((0, *patches.shape[1:]), patches.dtype))


class NavixEnv:
    """A navix environment behind the protocol of `purea2c.envs.core`."""

    suite = "navix"

    def __init__(self, env: Environment, name: str):
        self.env, self.name = env, name
        self._drop_cache = env.observation_fn in _NOT_RENDERING
        self.action_spec = ActionSpec(True, len(env.action_set), None, None)
        obs, _ = jax.eval_shape(self.reset, jax.random.key(0))
        self.observation_spec = spec_of(obs)
        self.max_episode_steps = int(env.max_steps)

    def _lean(self, timestep: Timestep) -> Timestep:
        """The state the adapter keeps: no weak-typed leaves, no unread rendering cache."""
        if self._drop_cache:
            state = timestep.state
            timestep = timestep.replace(state=state.replace(cache=_empty_cache(state.cache)))
        return _strong(timestep)

    def reset(self, key: jax.Array) -> tuple[jax.Array, Timestep]:
        with jax.numpy_rank_promotion("allow"):  # navix's code relies on it
            timestep = self.env.reset(jax.random.key_data(key))
        timestep = self._lean(timestep)
        return timestep.observation, timestep

    def step(self, key: jax.Array, state: Timestep, action: jax.Array) -> EnvStep:
        del key  # navix's transitions draw from the key in its own state
        with jax.numpy_rank_promotion("allow"):
            timestep = self.env._step(state, jnp.asarray(action, jnp.int32))
        timestep = self._lean(timestep)
        terminated = timestep.step_type == StepType.TERMINATION
        truncated = timestep.step_type == StepType.TRUNCATION
        return EnvStep(timestep.observation, timestep,
                       jnp.asarray(timestep.reward, jnp.float32), terminated, truncated)

    def __repr__(self) -> str:
        return f"NavixEnv({self.name})"
