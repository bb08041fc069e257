"""The jumanji adapter (`purea2c.envs.jumanji`) against jumanji's own reset and step, on
fixed action sequences: observations, rewards, both end flags, final observations, the
action mask; `make`'s errors; the registry's check; purea2c's vectorised auto-reset."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

jumanji = pytest.importorskip("jumanji")

import chex  # noqa: E402  (jumanji's dependency)
from jumanji import specs  # noqa: E402
from jumanji.types import StepType, restart, termination, transition, truncation  # noqa: E402

from purea2c import envs  # noqa: E402
from purea2c.envs import jumanji as adapter  # noqa: E402
from purea2c.envs.core import as_float  # noqa: E402

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3  # Snake's and Game2048's actions
MID, LAST = int(StepType.MID), int(StepType.LAST)
SNAKE_KEY = jax.random.key(1)  # Snake-v1 starts with its head at (8, 4), the fruit at (5, 3)


def _adapter_run(env: Any, key: jax.Array, actions: np.ndarray) -> tuple[Any, Any]:
    """``(reset obs, per-step (obs, reward, terminated, truncated, state))``, one jit."""
    @jax.jit
    def run(key, actions):
        obs, state = env.reset(key)

        def body(state, action):
            out = env.step(jax.random.key(7), state, action)
            return out.state, (out.obs, out.reward, out.terminated, out.truncated, out.state)

        return obs, jax.lax.scan(body, state, actions)[1]

    return jax.device_get(run(key, jnp.asarray(actions)))


def _jumanji_run(jenv: Any, key: jax.Array, actions: np.ndarray) -> tuple[Any, Any]:
    """jumanji's own ``(reset timestep, per-step (state before, timestep))`` on the same
    key (as raw key data) and actions, one jit."""
    @jax.jit
    def run(key, actions):
        state, timestep = jenv.reset(jax.random.key_data(key))

        def body(state, action):
            new_state, timestep = jenv.step(state, action)
            return new_state, (state, timestep)

        return timestep, jax.lax.scan(body, state, actions)[1]

    with jax.numpy_rank_promotion("allow"):  # jumanji's code broadcasts ranks implicitly
        return jax.device_get(run(key, jnp.asarray(actions)))


def _as_dict(obs: Any) -> Any:
    """jumanji's observation NamedTuple (nested ones too) as dicts of numpy arrays."""
    if isinstance(obs, tuple) and hasattr(obs, "_asdict"):
        return {k: _as_dict(v) for k, v in obs._asdict().items()}
    return np.asarray(obs)


def _assert_same_obs(ours: dict[str, Any], theirs: dict[str, Any], path: str = "") -> None:
    assert sorted(ours) == sorted(theirs), path
    for k in theirs:
        if isinstance(theirs[k], dict):
            _assert_same_obs(ours[k], theirs[k], f"{path}{k}.")
            continue
        assert np.asarray(ours[k]).dtype == theirs[k].dtype, path + k
        np.testing.assert_array_equal(np.asarray(ours[k]), theirs[k], err_msg=path + k)


def _compare(env: Any, jenv: Any, key: jax.Array, actions: np.ndarray,
             limit_ends: bool = False) -> tuple[Any, Any]:
    """Runs both, asserts equal observations (reset and every step, the last included) and
    rewards, and that the adapter's episode ends (either flag) exactly where jumanji's step
    is LAST (and at the last step too with ``limit_ends``: purea2c's max_episode_steps);
    returns both runs."""
    (obs0, (obs, reward, term, trunc, _)) = ours = _adapter_run(env, key, actions)
    (ts0, (_, ts)) = theirs = _jumanji_run(jenv, key, actions)
    _assert_same_obs(obs0, _as_dict(ts0.observation))
    _assert_same_obs(obs, _as_dict(ts.observation))
    np.testing.assert_array_equal(reward, np.asarray(ts.reward, np.float32))
    assert reward.dtype == np.float32 and term.dtype == np.bool_ and trunc.dtype == np.bool_
    assert not np.any(term & trunc)
    ends = ts.step_type == LAST
    ends[-1] |= limit_ends
    np.testing.assert_array_equal(term | trunc, ends)
    return ours, theirs


# --- Snake: its time limit ends with termination(); the adapter calls it a truncation --------

def _snake_start(obs: dict[str, Any]) -> None:
    """The premise of the Snake sequences below: where the head and the fruit start."""
    grid = np.asarray(obs["grid"])  # channels: body, head, tail, fruit, norm_body_state
    assert np.argwhere(grid[..., 1]).tolist() == [[8, 4]]
    assert np.argwhere(grid[..., 3]).tolist() == [[5, 3]]


def test_snake_time_limit_is_truncation_with_the_final_observation():
    env = envs.make("jumanji/Snake-v1", time_limit=10)
    jenv = jumanji.make("Snake-v1", time_limit=10)
    # Circling the 2x2 square (8,4) -> (7,4) -> (7,5) -> (8,5) -> (8,4): inside the grid, the
    # fruit at (5,3) is never eaten, so the length stays 1 and no move is ever invalid; the
    # episode ends only at step 10, by the time limit (snake/env.py:223).
    actions = np.array([UP, RIGHT, DOWN, LEFT] * 2 + [UP, RIGHT], np.int32)
    (obs0, (obs, reward, term, trunc, state)), (_, (before, ts)) = _compare(
        env, jenv, SNAKE_KEY, actions)
    _snake_start(obs0)
    assert np.all(np.take_along_axis(before.action_mask, actions[:, None], 1))  # all valid
    assert np.all(ts.step_type[:-1] == MID)
    assert ts.step_type[-1] == LAST and ts.discount[-1] == 0.0  # termination()
    assert not term.any() and trunc.tolist() == [False] * 9 + [True]
    assert np.all(reward == 0.0)
    # The final observation is the one step 10 reached: the head at (7,5), step_count 10.
    assert np.argwhere(obs["grid"][-1, ..., 1]).tolist() == [[7, 5]]
    assert int(obs["step_count"][-1]) == 10 and int(state.step_count[-1]) == 10
    assert env.max_episode_steps == 10


def test_snake_wall_is_termination_also_on_the_time_limits_step():
    # Up from row 8: rows 7, ..., 0, then the 9th move leaves the grid, an invalid move
    # (state.action_mask[UP] is False at row 0): jumanji's termination (snake/env.py:223).
    actions = np.full((9,), UP, np.int32)
    for time_limit in (4000, 9):  # 9: the snake dies on the very step the limit is reached
        env = adapter.make("Snake-v1", time_limit=time_limit)
        jenv = jumanji.make("Snake-v1", time_limit=time_limit)
        (obs0, (obs, _, term, trunc, _)), (_, (before, ts)) = _compare(env, jenv, SNAKE_KEY,
                                                                       actions)
        _snake_start(obs0)
        assert before.action_mask[:-1, UP].all() and not before.action_mask[-1, UP]
        assert ts.step_type[-1] == LAST and ts.discount[-1] == 0.0
        assert term.tolist() == [False] * 8 + [True] and not trunc.any()
        # The final observation is the step's own (jumanji's; already compared): the head,
        # moved off the grid, is clipped back onto row 0 by the scatter.
        assert obs["step_count"][-1] == 9 and obs["grid"][-1, ..., 1].sum() <= 1


# --- Game2048: no time limit; purea2c's max_episode_steps truncates ---------------------------

def test_game2048_matches_jumanji_and_truncates_at_max_episode_steps():
    env = envs.make("jumanji/Game2048-v1", max_episode_steps=12)
    jenv = jumanji.make("Game2048-v1")
    assert env.max_episode_steps == 12
    assert adapter.make("Game2048-v1").max_episode_steps == adapter.DEFAULT_MAX_EPISODE_STEPS
    assert env.observation_spec["board"].shape == (4, 4)
    assert env.observation_spec["action_mask"] == envs.ArraySpec((4,), np.dtype(bool))
    assert env.action_spec == envs.ActionSpec(True, 4, None, None)
    # 2048 ends only on a full board with no merge (game_2048/env.py:213); it starts with
    # one tile and a move adds at most one, so 12 moves (13 tiles of 16) cannot end it.
    actions = np.array([UP, RIGHT, DOWN, LEFT] * 3, np.int32)
    key = jax.random.key(3)
    (obs0, (obs, reward, term, trunc, state)), (ts0, (before, ts)) = _compare(
        env, jenv, key, actions, limit_ends=True)
    assert np.all(ts.step_type == MID)
    assert not term.any() and trunc.tolist() == [False] * 11 + [True]
    assert reward.sum() > 0  # some tiles merged: the rewards compared are not all zero
    # The action mask is jumanji's own: the observation's and the state's, every step.
    np.testing.assert_array_equal(obs0["action_mask"], ts0.observation.action_mask)
    np.testing.assert_array_equal(obs["action_mask"][:-1], before.action_mask[1:])
    np.testing.assert_array_equal(obs["action_mask"], state.env_state.action_mask)
    assert not obs["action_mask"].all()  # a blocked direction occurs along the way


# --- other envs whose time limit ends with termination() --------------------------------------

def test_maze_time_limit_is_truncation_and_positions_are_nested_dicts():
    # (SlidingTilePuzzle, PacMan and Sokoban follow the same rule; scripts checked them.)
    env = adapter.make("Maze-v0", time_limit=3)
    jenv = jumanji.make("Maze-v0", time_limit=3)
    assert env.observation_spec["agent_position"] == {
        "row": envs.ArraySpec((), np.dtype(np.int32)),
        "col": envs.ArraySpec((), np.dtype(np.int32))}
    # Three moves do not reach the target from this start (jumanji's reward, 1 only at the
    # target, stays 0 below): the step limit is the only end (maze/env.py:246-250).
    actions = np.array([UP, LEFT, UP], np.int32)
    (_, (obs, reward, term, trunc, _)), (_, (_, ts)) = _compare(env, jenv, jax.random.key(0),
                                                                actions)
    assert ts.step_type[-1] == LAST and ts.discount[-1] == 0.0
    assert not term.any() and trunc.tolist() == [False, False, True]
    assert not reward.any() and obs["step_count"][-1] == 3


# --- the generic rule (discount) and Box actions, on a toy jumanji env ------------------------

@chex.dataclass
class _ToyState:
    x: jax.Array
    step_count: jax.Array
    key: jax.Array


class _ToyObs(NamedTuple):
    x: jax.Array  # float32 [2]
    step_count: jax.Array  # int32 []


class _Toy(jumanji.Environment):
    """x += action (Box [-1, 1]^2); termination() once x[0] > 1.5, truncation() (discount
    1) at step 3."""

    def reset(self, key):
        state = _ToyState(x=jnp.zeros((2,)), step_count=jnp.zeros((), jnp.int32), key=key)
        return state, restart(_ToyObs(state.x, state.step_count))

    def step(self, state, action):
        new = _ToyState(x=state.x + action, step_count=state.step_count + 1, key=state.key)
        obs, reward = _ToyObs(new.x, new.step_count), jnp.sum(action)
        timestep = jax.lax.cond(
            new.x[0] > 1.5, termination,
            lambda r, o: jax.lax.cond(new.step_count >= 3, truncation, transition, r, o),
            reward, obs)
        return new, timestep

    @property
    def observation_spec(self):
        return specs.Spec(_ToyObs, "ObservationSpec",
                          x=specs.Array((2,), jnp.float32, "x"),
                          step_count=specs.Array((), jnp.int32, "step_count"))

    @property
    def action_spec(self):
        return specs.BoundedArray((2,), jnp.float32, -1.0, 1.0, "action")


def test_generic_rule_discount_zero_terminates_positive_truncates_box_actions():
    env = envs.check(adapter.JumanjiEnv(_Toy(), "Toy"))
    assert not env.action_spec.discrete and env.action_spec.num_actions == 2
    np.testing.assert_array_equal(env.action_spec.low, [-1.0, -1.0])
    np.testing.assert_array_equal(env.action_spec.high, [1.0, 1.0])
    assert env.max_episode_steps == adapter.DEFAULT_MAX_EPISODE_STEPS  # no time limit
    slow = np.full((3, 2), 0.25, np.float32)  # x[0] = 0.75 at step 3: truncation()
    fast = np.full((3, 2), 1.0, np.float32)  # x[0] = 2 > 1.5 at step 2: termination()
    _, (obs, reward, term, trunc, _) = _adapter_run(env, jax.random.key(0), slow)
    assert not term.any() and trunc.tolist() == [False, False, True]
    np.testing.assert_allclose(obs["x"][-1], [0.75, 0.75])
    np.testing.assert_allclose(reward, [0.5, 0.5, 0.5])
    _, (obs, _, term, trunc, _) = _adapter_run(env, jax.random.key(0), fast[:2])
    assert term.tolist() == [False, True] and not trunc.any()
    np.testing.assert_allclose(obs["x"][-1], [2.0, 2.0])
    # purea2c's own limit truncates too, and a terminating step stays a termination.
    env = adapter.JumanjiEnv(_Toy(), "Toy", max_episode_steps=2)
    _, (_, _, term, trunc, _) = _adapter_run(env, jax.random.key(0), slow[:2])
    assert not term.any() and trunc.tolist() == [False, True]
    _, (_, _, term, trunc, _) = _adapter_run(env, jax.random.key(0), fast[:2])
    assert term.tolist() == [False, True] and not trunc.any()


# --- purea2c's vectorised auto-reset ----------------------------------------------------------

def test_vectorised_auto_reset_keeps_the_final_observation():
    env = envs.make("jumanji/Game2048-v1", max_episode_steps=2)
    actions = jnp.array([[UP, LEFT, DOWN], [RIGHT, UP, LEFT]], jnp.int32)
    keys = jax.random.split(jax.random.key(5), 3)

    @jax.jit
    def run(keys):
        state = envs.reset(keys[0], env, 3)
        results, expected = [], []
        for t in range(2):
            # The adapter's own step from the same states (jumanji ignores the keys).
            expected.append(jax.vmap(env.step)(jax.random.split(keys[1 + t], 3),
                                               state.env_state, actions[t]).obs)
            state, res = envs.step(keys[1 + t], env, state, actions[t])
            results.append(res)
        # The fresh episodes vector.step resets to: its own noise of the last step's key.
        fresh = envs.draw_step_noise(keys[2], env, 3).reset_obs
        return state, results, expected, fresh

    state, results, expected, fresh = jax.device_get(run(keys))
    for t, (res, obs) in enumerate(zip(results, expected)):
        _assert_tree_equal(res.final_obs, as_float(obs))
        if t < 1:  # no 2048 board is stuck after 2 moves: only the limit ends them
            assert not res.episode_done.any()
            _assert_tree_equal(res.next_obs, res.final_obs)
    assert res.truncated.all() and not res.terminated.any()
    np.testing.assert_array_equal(res.episode_length, [2, 2, 2])
    # next_obs is a fresh episode (one tile on the board), not the final observation.
    _assert_tree_equal(res.next_obs, as_float(fresh))
    assert all(not np.array_equal(a, b)
               for a, b in zip(res.final_obs["board"], res.next_obs["board"]))
    assert (res.next_obs["board"] > 0).sum(axis=(1, 2)).tolist() == [1, 1, 1]
    np.testing.assert_array_equal(state.env_state.step_count, [0, 0, 0])
    _assert_tree_equal(state.obs, res.next_obs)


def _assert_tree_equal(a: Any, b: Any) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# --- ids, make's errors, the registry ---------------------------------------------------------

def test_ids_make_and_pass_the_registry_check():
    names = adapter.ids()
    assert names == sorted(names) and {"Snake-v1", "Game2048-v1"} <= set(names)
    assert set(names) <= jumanji.registered_environments()
    assert set(names) | set(adapter.UNSUPPORTED) | set(adapter.DOWNLOADING) == \
        jumanji.registered_environments()
    assert envs.ids("jumanji") == [f"jumanji/{n}" for n in names]
    for name in names:
        env = envs.make(f"jumanji/{name}")  # runs registry.check
        assert env.suite == "jumanji" and env.name == name and env.max_episode_steps >= 1
        assert name in repr(env) and env.dropped == []
        assert env.action_spec.discrete
        mask = env.observation_spec["action_mask"]
        assert mask == envs.ArraySpec((env.action_spec.num_actions,), np.dtype(bool))


def test_make_errors():
    with pytest.raises(envs.EnvError, match=r"unknown jumanji environment 'Snek-v1'.*Snake-v1"):
        envs.make("jumanji/Snek-v1")
    with pytest.raises(envs.EnvError, match=r"no keyword 'episode_length'.*time_limit"):
        envs.make("jumanji/Snake-v1", episode_length=5)
    with pytest.raises(envs.EnvError, match=r"cannot be made.*time_limit"):
        adapter.make("Snake-v1", time_limit=-1)  # jumanji's own ValueError, wrapped
    with pytest.raises(envs.EnvError, match="max_episode_steps must be an int >= 1"):
        adapter.make("Game2048-v1", max_episode_steps=0)
    with pytest.raises(envs.EnvError, match="downloads a data set.*generator="):
        adapter.make("Sokoban-v0")  # raised before jumanji would try to download
    for name, kind in [("Tetris-v0", "MultiDiscreteArray"), ("MultiCVRP-v0", "BoundedArray"),
                       ("SearchAndRescue-v0", "BoundedArray of shape \\(2, 2\\)")]:
        with pytest.raises(envs.EnvError, match=f"action spec, a {kind}.*is not supported"):
            adapter.make(name)
    with pytest.raises(envs.EnvError, match=r"max_episode_steps must be an int"):
        adapter.make("Snake-v1", max_episode_steps=2.5)
