"""Jumanji adapter: ``jumanji/<name>`` for the single-agent, discrete-action environments of
jumanji 1.1.x.

``make(name, **kwargs)`` calls ``jumanji.make(name, **kwargs)`` (keywords go to the env's
constructor, e.g. ``time_limit=100`` for Snake), which returns the bare env in 1.1.2
(``jumanji/registration.py``: ``make`` returns ``env_fn(*args, **env_fn_kwargs)``, no
wrapper); the adapter steps it with jumanji's own ``step``, never with jumanji's
``AutoResetWrapper``. One keyword is purea2c's own: ``max_episode_steps`` (see below).

Stepping. Jumanji's ``state, timestep = env.reset(key)`` takes a raw uint32 key (the
adapter hands it ``jax.random.key_data(key)``); ``state, timestep = env.step(state, action)``
takes no key (the env keeps one in its state), so the key of `JumanjiEnv.step` is unused.
The adapter's state is a `JumanjiState`: jumanji's state and purea2c's step counter.

End signals (``timestep.step_type == LAST`` ends an episode in jumanji):

- generic rule: a LAST step with ``discount == 0`` (jumanji's ``termination()``) is
  ``terminated``; one with ``discount > 0`` (``truncation()``) is ``truncated``;
- envs that end their time limit with ``termination()`` (discount 0, the pattern below):
  a LAST step where the env's ``state.step_count`` reached ``env.time_limit`` and none of the
  env's true ends happened on that step is ``truncated``; any other LAST step (a true end,
  also one on the limit's very step) is ``terminated``. Checked in the 1.1.2 source
  (``jumanji/environments/...``):

  - Snake (``routing/snake/env.py:223``: ``done = ~is_valid | snake_completed |
    (step_count >= self.time_limit)``): true ends are an invalid move (out of the grid or
    into the body: ``~state.action_mask[action]``) and a snake filling the grid;
  - Maze (``routing/maze/env.py:246-250``): no action left, or the target reached;
  - PacMan (``routing/pac_man/env.py:273-277``): the player dead, or no pellet left;
  - SlidingTilePuzzle (``logic/sliding_tile_puzzle/env.py:124,146``): the puzzle solved;
  - Sokoban (``routing/sokoban/env.py:233-236``): the level complete.

  Tetris, RubiksCube, MMST, Cleaner, RobotWarehouse and SearchAndRescue follow the same
  pattern, but their actions are not supported (below); Connector and LevelBasedForaging use
  ``truncation()`` properly. Game2048 (``logic/game_2048/env.py:213``: ``done =
  ~jnp.any(action_mask)``, no move left) has no time limit: its only end is a termination.
  CVRP, GraphColoring, Knapsack and TSP have no time limit and end with ``termination()``
  only (task done or an invalid action). A registered env not listed here (a later jumanji)
  gets the generic rule.
- purea2c's own time limit: ``truncated`` when the step count reaches
  ``max_episode_steps`` (and the step did not terminate).

``max_episode_steps`` (the attribute) is the longest an episode can last: the smaller of the
``max_episode_steps`` keyword and the env's own bound, which is ``env.time_limit`` (Snake
4000, Maze rows*cols, PacMan 1000, SlidingTilePuzzle 500, Sokoban 120), or the bound that
every valid step progresses toward the end (TSP ``num_cities``, Knapsack ``num_items``,
GraphColoring ``num_nodes``, CVRP ``2 * num_nodes``: a depot visit never follows a depot
visit). Game2048 has no bound (an action the mask forbids leaves the board unchanged, the
episode goes on): the keyword's default, ``DEFAULT_MAX_EPISODE_STEPS = 10_000`` steps, then
truncates it, so evaluation and training never wait forever.

Observations: jumanji's observation NamedTuple becomes a dict keyed by field name (a nested
NamedTuple, e.g. Maze's ``agent_position: Position(row, col)``, a nested dict); every leaf
keeps jumanji's shape and dtype (Snake: ``grid`` float32 [12, 12, 5], ``step_count`` int32
[], ``action_mask`` bool [4]; Game2048: ``board`` int32 [4, 4], ``action_mask`` bool [4]).
``action_mask`` is jumanji's own mask (bool [num_actions]). Leaves that are not numeric or
bool arrays would be dropped (`JumanjiEnv.dropped` names them); none is, in the envs that
work. ``timestep.extras`` is not part of the observation.

Actions: a ``specs.DiscreteArray`` is discrete (``num_values`` actions); a float
``specs.BoundedArray`` of shape ``(d,)`` a Box. ``MultiDiscreteArray`` (and integer
``BoundedArray``) actions, other Box shapes and non-scalar (multi-agent) rewards raise
`EnvError` at make time. In jumanji 1.1.2 the ids that work are `ids()`: CVRP-v1,
Game2048-v1, GraphColoring-v1, Knapsack-v1, Maze-v0, PacMan-v1, SlidingTilePuzzle-v0,
Snake-v1, TSP-v1; Sokoban-v0 works with an offline ``generator=`` (its default one downloads
a data set); the rest are in ``UNSUPPORTED`` with the reason.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import jumanji
import numpy as np
from jumanji import specs
from jumanji.environments import (CVRP, TSP, GraphColoring, Knapsack, Maze, PacMan,
                                  SlidingTilePuzzle, Snake, Sokoban)
from jumanji.types import StepType

from purea2c.envs.core import ACTION_MASK, ActionSpec, EnvError, EnvStep, box_spec, spec_of

# Game2048 (and any env with neither a time limit nor a known bound) is truncated here.
DEFAULT_MAX_EPISODE_STEPS = 10_000
# Made only by downloading a data set (its default generator), which purea2c does not do;
# the keyword that replaces it.
DOWNLOADING = {"Sokoban-v0": "generator"}
# The registered ids of jumanji 1.1.2 that `make` refuses (its checks of the action and reward
# specs), and why; `ids` leaves them out without making each.
_MULTI_DISCRETE = "its action spec is a MultiDiscreteArray"
UNSUPPORTED = {
    "BinPack-v2": _MULTI_DISCRETE,
    "Cleaner-v0": _MULTI_DISCRETE + " (one action per agent)",
    "Connector-v3": _MULTI_DISCRETE + " (one action per agent), rewards per agent",
    "FlatPack-v0": _MULTI_DISCRETE,
    "JobShop-v0": _MULTI_DISCRETE + " (one action per machine)",
    "LevelBasedForaging-v0": _MULTI_DISCRETE + " (one action per agent), rewards per agent",
    "MMST-v0": _MULTI_DISCRETE + " (one action per agent)",
    "Minesweeper-v0": _MULTI_DISCRETE,
    "MultiCVRP-v0": "its action spec is an int16 BoundedArray (one node per vehicle)",
    "RobotWarehouse-v0": _MULTI_DISCRETE + " (one action per agent)",
    "RubiksCube-partly-scrambled-v0": _MULTI_DISCRETE,
    "RubiksCube-v0": _MULTI_DISCRETE,
    "SearchAndRescue-v0": "its action spec is a BoundedArray of shape (2, 2) (one per "
                          "agent), rewards per agent",
    "Sudoku-v0": _MULTI_DISCRETE,
    "Sudoku-very-easy-v0": _MULTI_DISCRETE,
    "Tetris-v0": _MULTI_DISCRETE,
}


class JumanjiState(NamedTuple):
    """The adapter's state: jumanji's and the number of steps taken in the episode."""

    env_state: Any  # jumanji's state (a chex dataclass of arrays, its own key included)
    step_count: jax.Array  # int32 [], steps since reset


# A true end other than the time limit, read from (env, state, action, next_state): bool [].
TrueEnd = Callable[[Any, Any, jax.Array, Any], jax.Array]


def _snake_end(env: Any, state: Any, action: jax.Array, next_state: Any) -> jax.Array:
    # snake/env.py:222-223: is_valid = state.action_mask[action]; snake_completed.
    return jnp.logical_or(~state.action_mask[action], jnp.all(next_state.body))


def _maze_end(env: Any, state: Any, action: jax.Array, next_state: Any) -> jax.Array:
    # maze/env.py:246-247: no action available, or the target reached.
    reached = next_state.agent_position == next_state.target_position  # Position.__eq__
    return jnp.logical_or(~jnp.any(next_state.action_mask), reached)


def _pac_man_end(env: Any, state: Any, action: jax.Array, next_state: Any) -> jax.Array:
    # pac_man/env.py:275-276: no pellet left, or the player dead.
    return jnp.logical_or(next_state.pellets == 0, next_state.dead == 1)


def _sliding_tile_end(env: Any, state: Any, action: jax.Array, next_state: Any) -> jax.Array:
    # sliding_tile_puzzle/env.py:124: the puzzle solved.
    return jnp.array_equal(next_state.puzzle, env.solved_puzzle)


def _sokoban_end(env: Any, state: Any, action: jax.Array, next_state: Any) -> jax.Array:
    # sokoban/env.py:233: the level complete.
    return env.level_complete(next_state)


# Envs that end their time limit with termination() (discount 0): their true ends.
TIME_LIMIT_TERMINATES: dict[type, TrueEnd] = {
    Snake: _snake_end,
    Maze: _maze_end,
    PacMan: _pac_man_end,
    SlidingTilePuzzle: _sliding_tile_end,
    Sokoban: _sokoban_end,
}

# Envs without a time limit whose episodes cannot last longer than this many steps.
EPISODE_BOUND: dict[type, Callable[[Any], int]] = {
    TSP: lambda env: env.num_cities,  # each valid step visits a new city
    Knapsack: lambda env: env.num_items,  # each valid step packs a new item
    GraphColoring: lambda env: env.num_nodes,  # each step colours the next node
    CVRP: lambda env: 2 * env.num_nodes,  # each step but a depot visit serves a customer
}


def _suite_ranks() -> Any:
    """A context in which jumanji's own code runs: it broadcasts ranks implicitly (PacMan,
    SlidingTilePuzzle), so it runs with jax's default whatever the caller set (purea2c's
    tests set ``jax_numpy_rank_promotion="raise"``)."""
    return jax.numpy_rank_promotion("allow")


def ids() -> list[str]:
    """The registered jumanji ids that `make` builds without a download, sorted."""
    return sorted(name for name in jumanji.registered_environments()
                  if name not in UNSUPPORTED and name not in DOWNLOADING)


def make(name: str, **kwargs: Any) -> "JumanjiEnv":
    """The adapter of jumanji's ``name``; ``kwargs`` go to the env's constructor, except
    ``max_episode_steps`` (purea2c's own time limit, see the module docstring)."""
    registered = jumanji.registered_environments()
    if name not in registered:
        raise EnvError(f"unknown jumanji environment {name!r}; jumanji has {ids()} "
                       "(purea2c.envs.ids('jumanji'))")
    limit = kwargs.pop("max_episode_steps", None)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
                              or limit < 1):
        raise EnvError(f"jumanji/{name}: max_episode_steps must be an int >= 1, got {limit!r}")
    _check_keywords(name, kwargs)
    if name in DOWNLOADING and DOWNLOADING[name] not in kwargs:
        raise EnvError(f"jumanji/{name} downloads a data set when it is made with its "
                       f"default {DOWNLOADING[name]}, which purea2c does not do; pass "
                       f"{DOWNLOADING[name]}=... (e.g. an offline one of jumanji's)")
    try:
        env = jumanji.make(name, **kwargs)
    except Exception as err:  # a bad value for a keyword the env takes
        raise EnvError(f"jumanji/{name} cannot be made with {kwargs}: "
                       f"{type(err).__name__}: {err}") from None
    return JumanjiEnv(env.unwrapped, name, None if limit is None else int(limit))


def _check_keywords(name: str, kwargs: dict[str, Any]) -> None:
    """`EnvError` naming a keyword the env's constructor does not take."""
    if not kwargs:
        return
    spec = getattr(jumanji.registration, "_REGISTRY", {}).get(name)
    if spec is None:  # another jumanji: its constructor's TypeError is wrapped by make
        return
    parameters = inspect.signature(jumanji.registration.load(spec.entry_point)).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    known = [p for p in parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise EnvError(f"jumanji/{name} takes no keyword {unknown[0]!r}; it takes "
                       f"{known + ['max_episode_steps']}")


def _action_spec(spec: Any, label: str) -> ActionSpec:
    """purea2c's `ActionSpec` of a jumanji action spec; `EnvError` when unsupported."""
    if isinstance(spec, specs.DiscreteArray):  # (a MultiDiscreteArray is not one)
        return ActionSpec(True, int(spec.num_values), None, None)
    if (isinstance(spec, specs.BoundedArray) and not isinstance(spec, specs.MultiDiscreteArray)
            and len(spec.shape) == 1 and np.issubdtype(np.dtype(spec.dtype), np.floating)):
        return box_spec(np.asarray(spec.minimum), np.asarray(spec.maximum), spec.shape)
    raise EnvError(f"{label}: its action spec, a {type(spec).__name__} of shape "
                   f"{tuple(spec.shape)} and dtype {np.dtype(spec.dtype)}, is not supported; "
                   "purea2c takes one discrete action (DiscreteArray) or a float BoundedArray "
                   f"of shape (d,) (jumanji ids that work: {ids()})")


def _is_array(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return False
    try:
        dtype = np.dtype(dtype)
    except TypeError:  # e.g. a typed key array
        return False
    return bool(np.issubdtype(dtype, np.number) or dtype == np.bool_)


def _fields(obs: Any) -> list[tuple[str, Any]] | None:
    """``(field name, value)`` of a NamedTuple, dataclass or dict; None for anything else."""
    if isinstance(obs, tuple) and hasattr(obs, "_fields"):
        return list(zip(obs._fields, obs))
    if dataclasses.is_dataclass(obs) and not isinstance(obs, type):
        return [(f.name, getattr(obs, f.name)) for f in dataclasses.fields(obs)]
    if isinstance(obs, dict):
        return list(obs.items())
    return None


def _observation(obs: Any, path: str = "") -> tuple[Any, list[str]]:
    """``(observation, dropped)``: NamedTuples (and dataclasses) as dicts keyed by field
    name, recursively, without the leaves that are not numeric arrays (their dotted paths in
    ``dropped``)."""
    fields = _fields(obs)
    if fields is None:
        if isinstance(obs, (bool, int, float)):
            return jnp.asarray(obs), []
        return (obs, []) if _is_array(obs) else (None, [path or "<observation>"])
    out, dropped = {}, []
    for key, value in fields:
        child = f"{path}.{key}" if path else str(key)
        leaf, lost = _observation(value, child)
        if leaf is None or (isinstance(leaf, dict) and not leaf):
            dropped += lost or [child]
        else:
            out[str(key)] = leaf
            dropped += lost
    return out, dropped


class JumanjiEnv:
    """A jumanji environment behind the protocol of `purea2c.envs.core` (see the module
    docstring for the end signals, observations and actions)."""

    suite = "jumanji"

    def __init__(self, env: Any, name: str, max_episode_steps: int | None = None):
        self.env, self.name = env, name
        label = f"jumanji/{name}"
        self.action_spec = _action_spec(env.action_spec, label)
        reward_shape = tuple(env.reward_spec.shape)
        if reward_shape != ():
            raise EnvError(f"{label}: its reward has shape {reward_shape} (one per agent); "
                           "purea2c takes a scalar reward")
        self._true_end = next((fn for cls, fn in TIME_LIMIT_TERMINATES.items()
                               if isinstance(env, cls)), None)
        natural = getattr(env, "time_limit", None)  # the env's own bound on an episode
        if natural is None:
            natural = next((fn(env) for cls, fn in EPISODE_BOUND.items()
                            if isinstance(env, cls)), None)
        if max_episode_steps is None:
            max_episode_steps = DEFAULT_MAX_EPISODE_STEPS if natural is None else natural
        self._limit = int(max_episode_steps)  # purea2c truncates here
        self.max_episode_steps = (self._limit if natural is None
                                  else min(self._limit, int(natural)))
        with _suite_ranks():
            _, timestep = jax.eval_shape(
                lambda: env.reset(jax.random.key_data(jax.random.key(0))))
        obs, self.dropped = _observation(timestep.observation)
        self.observation_spec = spec_of(obs)
        if isinstance(obs, dict) and ACTION_MASK in obs:
            mask = obs[ACTION_MASK]
            if not (self.action_spec.discrete and mask.dtype == np.bool_
                    and tuple(mask.shape) == (self.action_spec.num_actions,)):
                raise EnvError(f"{label}: its action mask is {mask.dtype}{list(mask.shape)}; "
                               f"purea2c takes bool [num_actions] with discrete actions")

    def reset(self, key: jax.Array) -> tuple[Any, JumanjiState]:
        """``(obs, state)`` of a fresh episode; ``key`` a typed key."""
        with _suite_ranks():
            env_state, timestep = self.env.reset(jax.random.key_data(key))
        obs, _ = _observation(timestep.observation)
        return obs, JumanjiState(env_state, jnp.zeros((), jnp.int32))

    def step(self, key: jax.Array, state: JumanjiState, action: jax.Array) -> EnvStep:
        """One jumanji step (``key`` unused: the env's key is in its state), no reset."""
        del key
        with _suite_ranks():
            env_state, timestep = self.env.step(state.env_state, action)
            true_end = (None if self._true_end is None else
                        self._true_end(self.env, state.env_state, action, env_state))
        count = state.step_count + 1
        last = timestep.step_type == StepType.LAST
        if true_end is None:  # the generic rule: discount 0 is a true end
            terminated = jnp.logical_and(last, timestep.discount == 0)
        else:  # the time limit ends with termination(): only a true end terminates
            limit_only = jnp.logical_and(env_state.step_count >= self.env.time_limit,
                                         ~true_end)
            terminated = jnp.logical_and(last, ~limit_only)
        truncated = jnp.logical_and(jnp.logical_or(last, count >= self._limit), ~terminated)
        obs, _ = _observation(timestep.observation)
        return EnvStep(obs, JumanjiState(env_state, count),
                       jnp.asarray(timestep.reward, jnp.float32),
                       jnp.asarray(terminated, bool).reshape(()),
                       jnp.asarray(truncated, bool).reshape(()))

    def __repr__(self) -> str:
        return f"JumanjiEnv({self.name}, max_episode_steps={self.max_episode_steps})"
