"""The XLand-MiniGrid adapter against xminigrid's own ``step``: fixed action sequences on
MiniGrid-Empty-5x5 reach the goal (termination) or run into a short time limit
(truncation); final observations, flags, rewards; purea2c's vectorised auto-reset on top."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xminigrid
from xminigrid.core.constants import TILES_REGISTRY, Colors, Tiles

from purea2c import envs
from purea2c.envs import xminigrid as xminigrid_adapter

EMPTY = "MiniGrid-Empty-5x5"
# xminigrid's actions (core/actions.py, take_action): 0 forward, 1 turn clockwise.
FORWARD, CW = 0, 1
# MiniGrid-Empty-5x5 (envs/minigrid/empty.py, Empty._generate_problem): the agent starts at
# (row, col) = (1, 1) facing right (direction 1, constants.DIRECTIONS: (0, 1)), the goal
# tile is at (3, 3). Two steps right, a turn clockwise (to down), two steps down: on the
# goal at step 5. `test_layout` reads both from the reset state.
TO_GOAL = (FORWARD, FORWARD, CW, FORWARD, FORWARD)
# Turning on the spot never reaches the goal: only the time limit ends these episodes.
SPIN = (CW,) * 5
KEY = jax.random.key(3)


def _allow():
    """Some of xminigrid's code broadcasts across ranks, which conftest.py makes an error."""
    return jax.numpy_rank_promotion("allow")


@functools.lru_cache(maxsize=None)
def _env(**kwargs) -> xminigrid_adapter.XMiniGridEnv:
    return envs.make(f"xminigrid/{EMPTY}", **kwargs)


@functools.lru_cache(maxsize=None)
def _runner(adapter: xminigrid_adapter.XMiniGridEnv) -> Any:
    """One jitted scan: the adapter and xminigrid's own ``env.step`` side by side from the
    same reset key, on a sequence of actions."""
    env, params = adapter.env, adapter.params

    @jax.jit
    def run(key, actions):
        obs0, state = adapter.reset(key)
        with _allow():
            timestep = env.reset(params, jax.random.key_data(key))

        def body(carry, action):
            state, timestep = carry
            out = adapter.step(key, state, action)
            with _allow():
                timestep = env.step(params, timestep, action)
            return (out.state, timestep), dict(
                obs=out.obs, reward=out.reward, terminated=out.terminated,
                truncated=out.truncated, step_num=out.state.state.step_num,
                position=out.state.state.agent.position,
                own_obs=timestep.observation, own_reward=timestep.reward,
                own_last=timestep.last(), own_discount=timestep.discount)

        trace = jax.lax.scan(body, (state, timestep), actions)[1]
        return dict(trace, obs0=obs0, own_obs0=timestep.observation)

    return run


@functools.lru_cache(maxsize=None)
def _rollout(adapter: Any, actions: tuple[int, ...]) -> dict:
    """`_runner`'s trace on ``actions`` from ``KEY``, as numpy arrays."""
    out = _runner(adapter)(KEY, jnp.asarray(actions, jnp.int32))
    return jax.tree.map(np.asarray, out)


def _assert_same_as_xminigrid(out: dict) -> None:
    np.testing.assert_array_equal(out["obs0"], out["own_obs0"])
    np.testing.assert_array_equal(out["obs"], out["own_obs"])
    np.testing.assert_array_equal(out["reward"], out["own_reward"])
    np.testing.assert_array_equal(out["terminated"],
                                  out["own_last"] & (out["own_discount"] == 0))
    np.testing.assert_array_equal(out["truncated"],
                                  out["own_last"] & (out["own_discount"] == 1))


def test_layout():
    _, state = jax.jit(_env().reset)(KEY)
    np.testing.assert_array_equal(state.state.agent.position, [1, 1])
    assert int(state.state.agent.direction) == 1
    goal = np.asarray(TILES_REGISTRY[Tiles.GOAL, Colors.GREEN])
    grid = np.asarray(state.state.grid)
    np.testing.assert_array_equal(np.argwhere((grid == goal).all(-1)), [[3, 3]])


def test_termination_at_the_goal_matches_xminigrid():
    out = _rollout(_env(), TO_GOAL)
    _assert_same_as_xminigrid(out)
    # The agent walks (1,2), (1,3), turns, (2,3), (3,3): the goal, at the 5th step.
    np.testing.assert_array_equal(out["position"], [[1, 2], [1, 3], [1, 3], [2, 3], [3, 3]])
    np.testing.assert_array_equal(out["terminated"], [False] * 4 + [True])
    assert not out["truncated"].any()
    # The reward at the goal is 1 - 0.9 * t / T, t = 5, T = 100 (MiniGrid's 4 * 5 * 5).
    np.testing.assert_allclose(out["reward"], [0, 0, 0, 0, 1 - 0.9 * 5 / 100], rtol=1e-6)
    assert out["reward"].dtype == np.float32
    # The final observation is the view from the goal (it differs from the one before).
    assert not np.array_equal(out["obs"][-1], out["obs"][-2])


def test_truncation_at_the_time_limit_matches_xminigrid():
    out = _rollout(_env(max_steps=5), SPIN)
    _assert_same_as_xminigrid(out)
    # xminigrid truncates when step_num == max_steps: the 5th step.
    np.testing.assert_array_equal(out["step_num"], [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(out["truncated"], [False] * 4 + [True])
    assert not out["terminated"].any() and not out["reward"].any()
    # Five quarter turns face as one does: the final observation is the state reached (the
    # view after one turn), not the start's that a reset would show.
    np.testing.assert_array_equal(out["obs"][-1], out["obs"][0])
    np.testing.assert_array_equal(out["obs"][3], out["obs0"])  # four turns: the start's
    assert not np.array_equal(out["obs"][-1], out["obs0"])


def test_termination_wins_over_a_time_limit_on_the_same_step():
    out = _rollout(_env(max_steps=5), TO_GOAL)
    _assert_same_as_xminigrid(out)
    np.testing.assert_array_equal(out["step_num"], [1, 2, 3, 4, 5])
    assert bool(out["terminated"][-1]) and not out["truncated"].any()
    np.testing.assert_allclose(out["reward"][-1], 1 - 0.9 * 5 / 5, rtol=1e-6)


def test_state_is_of_one_type():
    env = _env()
    _, state = jax.eval_shape(env.reset, KEY)
    out = jax.eval_shape(env.step, KEY, state, jax.ShapeDtypeStruct((), jnp.int32))
    assert jax.tree.structure(state) == jax.tree.structure(out.state)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(out.state)):
        assert (a.shape, a.dtype, a.weak_type) == (b.shape, b.dtype, False)


def test_specs_and_registry():
    env = _env()
    assert envs.check(env) is env
    assert env.suite == "xminigrid" and env.name == EMPTY and EMPTY in repr(env)
    assert env.action_spec.discrete and env.action_spec.num_actions == 6
    assert env.observation_spec.shape == (7, 7, 2)
    assert env.observation_spec.dtype == np.uint8
    assert env.max_episode_steps == 100
    small = _env(max_steps=4, view_size=5)
    assert small.max_episode_steps == 4 and small.observation_spec.shape == (5, 5, 2)
    names = xminigrid_adapter.ids()
    assert EMPTY in names and names == sorted(names)
    assert all(name.startswith("MiniGrid-") for name in names)
    assert set(names) < set(xminigrid.registered_environments())
    assert f"xminigrid/{EMPTY}" in envs.ids("xminigrid")


def test_make_errors():
    with pytest.raises(envs.EnvError, match="unknown xminigrid environment 'MiniGrid-Nope'"):
        envs.make("xminigrid/MiniGrid-Nope")
    with pytest.raises(envs.EnvError, match="benchmark.*does not fetch"):
        envs.make("xminigrid/XLand-MiniGrid-R1-9x9")
    with pytest.raises(envs.EnvError, match="takes no keyword 'episode_length'.*max_steps"):
        envs.make(f"xminigrid/{EMPTY}", episode_length=10)
    with pytest.raises(envs.EnvError, match="takes no keyword 'height'"):  # fixed by the id
        xminigrid_adapter.make(EMPTY, height=7)
    with pytest.raises(envs.EnvError, match="max_steps must be an int >= 1"):
        xminigrid_adapter.make(EMPTY, max_steps=0)


def test_vector_auto_reset_keeps_final_observations():
    # Three envs of Empty-5x5 with a 6-step limit: env 0 walks to the goal (terminates at
    # step 5), env 1 spins (truncated at step 6), env 2 walks forward into the wall.
    env = _env(max_steps=6)
    actions = np.array([TO_GOAL + (FORWARD,) * 2, (CW,) * 7, (FORWARD,) * 7],
                       np.int32).T  # [7 steps, 3 envs]

    def run(key):
        state = envs.reset(key, env, 3)
        keys = jax.random.split(jax.random.key(7), actions.shape[0])
        return state, jax.lax.scan(lambda s, ka: envs.step(ka[0], env, s, ka[1]), state,
                                   (keys, jnp.asarray(actions)))[1]

    first, res = jax.jit(run)(jax.random.key(5))
    goal_trace = _rollout(_env(), TO_GOAL)["obs"]
    # Six quarter turns face as two do: the view after the second turn of a spin.
    spin_final = _rollout(_env(max_steps=5), SPIN)["obs"][1]
    reset_obs = np.asarray(first.obs[0])  # every Empty-5x5 episode starts the same
    np.testing.assert_array_equal(np.asarray(res.terminated)[:, 0],
                                  [False] * 4 + [True, False, False])
    np.testing.assert_array_equal(np.asarray(res.truncated)[:, 1],
                                  [False] * 5 + [True, False])
    np.testing.assert_array_equal(np.asarray(res.truncated)[:, 2],
                                  [False] * 5 + [True, False])
    assert not np.asarray(res.terminated)[:, 1:].any()
    np.testing.assert_array_equal(np.asarray(res.final_obs[4, 0]), goal_trace[-1])
    np.testing.assert_array_equal(np.asarray(res.next_obs[4, 0]), reset_obs)
    np.testing.assert_array_equal(np.asarray(res.final_obs[5, 1]), spin_final)
    np.testing.assert_array_equal(np.asarray(res.next_obs[5, 1]), reset_obs)
    assert not np.array_equal(np.asarray(res.final_obs[5, 1]), reset_obs)
    np.testing.assert_allclose(float(res.episode_return[4, 0]), 1 - 0.9 * 5 / 6, rtol=1e-6)
    assert int(res.episode_length[4, 0]) == 5
    assert int(res.episode_length[5, 1]) == 6 and float(res.episode_return[5, 1]) == 0.0
    # After its reset, env 0 walks right again from the start: the goal walk's first steps.
    np.testing.assert_array_equal(np.asarray(res.final_obs[5:, 0]), goal_trace[:2])


def test_doorkey_5x5_makes_and_steps():
    env = envs.make("xminigrid/MiniGrid-DoorKey-5x5")
    assert env.observation_spec.shape == (7, 7, 2) and env.action_spec.num_actions == 6
    assert env.max_episode_steps == 250  # MiniGrid's 10 * 5 * 5
    actions = (2, 0, 0, 1, 3, 0, 5, 0, 4, 1, 0, 0)  # every action, fixed
    out = _rollout(env, actions)
    _assert_same_as_xminigrid(out)
    assert out["obs"].shape == (len(actions), 7, 7, 2) and out["obs"].dtype == np.uint8
    np.testing.assert_array_equal(out["step_num"], np.arange(1, len(actions) + 1))
