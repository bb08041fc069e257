"""The navix adapter against navix's own ``step``: fixed action sequences on
Navix-Empty-5x5-v0 reach the goal (termination) or run into a short time limit
(truncation); final observations, flags, rewards; purea2c's vectorised auto-reset on top."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import navix
import numpy as np
import pytest

from purea2c import envs
from purea2c.envs import navix as navix_adapter

EMPTY = "Navix-Empty-5x5-v0"
# navix's MiniGrid action set: 0 rotate_ccw, 1 rotate_cw, 2 forward (navix/actions.py).
CW, FORWARD = 1, 2
# Navix-Empty-5x5-v0 (navix/environments/empty.py, Room._reset): the player starts at
# (row, col) = (1, 1) facing east (direction 0, grid.translate: col + 1), the goal is at
# (3, 3). Two steps east, a turn clockwise (to south), two steps south: on the goal at
# step 5. `test_layout` reads both positions from the reset state.
TO_GOAL = (FORWARD, FORWARD, CW, FORWARD, FORWARD)
# Turning on the spot never reaches the goal: only the time limit ends these episodes.
SPIN = (CW,) * 5
KEY = jax.random.key(3)


def _allow():
    """navix's own code broadcasts across ranks, which conftest.py makes an error."""
    return jax.numpy_rank_promotion("allow")


@functools.lru_cache(maxsize=None)
def _env(max_steps: int = 100, **kwargs) -> navix_adapter.NavixEnv:
    return envs.make(f"navix/{EMPTY}", max_steps=max_steps, **kwargs)


@functools.lru_cache(maxsize=None)
def _runner(adapter: navix_adapter.NavixEnv) -> Any:
    """One jitted scan: the adapter and navix's own (auto-resetting) ``step`` side by side
    from the same reset key, on a sequence of actions; then one more navix ``step``."""

    @jax.jit
    def run(key, actions):
        obs0, state = adapter.reset(key)
        with _allow():
            timestep = adapter.env.reset(jax.random.key_data(key))

        def body(carry, action):
            state, timestep = carry
            out = adapter.step(key, state, action)
            with _allow():
                timestep = adapter.env.step(timestep, action)
            return (out.state, timestep), dict(
                obs=out.obs, reward=out.reward, terminated=out.terminated,
                truncated=out.truncated, t=out.state.t,
                position=out.state.state.entities["player"].position[0],
                navix_obs=timestep.observation, navix_reward=timestep.reward,
                navix_step_type=timestep.step_type)

        (_, last), trace = jax.lax.scan(body, (state, timestep), actions)
        with _allow():
            after = adapter.env.step(last, jnp.asarray(FORWARD, jnp.int32))
        return dict(trace, obs0=obs0, navix_obs0=timestep.observation, after_t=after.t,
                    after_obs=after.observation)

    return run


@functools.lru_cache(maxsize=None)
def _rollout(adapter: Any, actions: tuple[int, ...]) -> dict:
    """`_runner`'s trace on ``actions`` from ``KEY``, as numpy arrays."""
    out = _runner(adapter)(KEY, jnp.asarray(actions, jnp.int32))
    return jax.tree.map(np.asarray, out)


def _assert_same_as_navix(out: dict) -> None:
    np.testing.assert_array_equal(out["obs0"], out["navix_obs0"])
    np.testing.assert_array_equal(out["obs"], out["navix_obs"])
    np.testing.assert_array_equal(out["reward"], out["navix_reward"])
    np.testing.assert_array_equal(out["terminated"], out["navix_step_type"] == 2)
    np.testing.assert_array_equal(out["truncated"], out["navix_step_type"] == 1)


def test_layout():
    _, state = jax.jit(_env().reset)(KEY)
    entities = state.state.entities
    np.testing.assert_array_equal(entities["player"].position, [[1, 1]])
    np.testing.assert_array_equal(entities["player"].direction, [0])
    np.testing.assert_array_equal(entities["goal"].position, [[3, 3]])


def test_termination_at_the_goal_matches_navix():
    out = _rollout(_env(), TO_GOAL)
    _assert_same_as_navix(out)
    # The player walks (1,2), (1,3), turns, (2,3), (3,3): the goal, at the 5th step.
    np.testing.assert_array_equal(out["position"], [[1, 2], [1, 3], [1, 3], [2, 3], [3, 3]])
    np.testing.assert_array_equal(out["terminated"], [False] * 4 + [True])
    assert not out["truncated"].any()
    np.testing.assert_array_equal(out["reward"], [0, 0, 0, 0, 1.0])
    assert out["reward"].dtype == np.float32
    # The final observation is the goal reached (it differs from the one before it) ...
    assert not np.array_equal(out["obs"][-1], out["obs"][-2])
    # ... and navix's own step after it resets (t back to 0, the first observation): the
    # dead step the adapter never takes.
    assert int(out["after_t"]) == 0
    np.testing.assert_array_equal(out["after_obs"], out["obs0"])


def test_truncation_at_the_time_limit_matches_navix():
    out = _rollout(_env(max_steps=5), SPIN)
    _assert_same_as_navix(out)
    # navix truncates when t >= max_steps: the 5th step.
    np.testing.assert_array_equal(out["t"], [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(out["truncated"], [False] * 4 + [True])
    assert not out["terminated"].any() and not out["reward"].any()
    # Five quarter turns face as one does: the final observation is the state reached (the
    # grid after one turn), not the start's that a reset would show.
    np.testing.assert_array_equal(out["obs"][-1], out["obs"][0])
    np.testing.assert_array_equal(out["obs"][3], out["obs0"])  # four turns: the start's
    assert not np.array_equal(out["obs"][-1], out["obs0"])
    assert int(out["after_t"]) == 0  # navix's own step would reset next


def test_termination_wins_over_a_time_limit_on_the_same_step():
    out = _rollout(_env(max_steps=5), TO_GOAL)
    _assert_same_as_navix(out)
    np.testing.assert_array_equal(out["t"], [1, 2, 3, 4, 5])
    assert bool(out["terminated"][-1]) and not out["truncated"].any()


def test_state_is_lean_and_of_one_type():
    env = _env()
    _, state = jax.eval_shape(env.reset, KEY)
    out = jax.eval_shape(env.step, KEY, state, jax.ShapeDtypeStruct((), jnp.int32))
    assert jax.tree.structure(state) == jax.tree.structure(out.state)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(out.state)):
        assert (a.shape, a.dtype, a.weak_type) == (b.shape, b.dtype, False)
    # The rendering cache (RGB tiles), unread by symbolic observations, is not carried.
    assert state.state.cache.patches.shape[0] == 0


def test_rgb_observations_keep_the_rendering_cache():
    env = _env(max_steps=3, observation_fn=navix.observations.rgb)
    assert env.observation_spec.dtype == np.uint8 and len(env.observation_spec.shape) == 3
    out = _rollout(env, SPIN[:3])
    _assert_same_as_navix(out)
    assert bool(out["truncated"][-1])
    assert out["obs"][-1].any()  # drawn from the cache: not blank


def test_specs_and_registry():
    env = _env()
    assert envs.check(env) is env
    assert env.suite == "navix" and env.name == EMPTY and EMPTY in repr(env)
    assert env.action_spec.discrete and env.action_spec.num_actions == 7
    assert env.observation_spec.shape == (5, 5, 3)
    assert env.observation_spec.dtype == np.uint8
    assert env.max_episode_steps == 100  # navix.make's default max_steps
    assert _env(max_steps=4).max_episode_steps == 4
    names = navix_adapter.ids()
    assert names == sorted(navix.registry()) and EMPTY in names
    assert f"navix/{EMPTY}" in envs.ids("navix")


def test_make_errors():
    with pytest.raises(envs.EnvError, match="unknown navix environment 'Navix-Nope-v0'"):
        envs.make("navix/Navix-Nope-v0")
    with pytest.raises(envs.EnvError, match="takes no keyword 'episode_length'.*max_steps"):
        envs.make(f"navix/{EMPTY}", episode_length=10)
    with pytest.raises(envs.EnvError, match="takes no keyword 'height'"):
        navix_adapter.make(EMPTY, height=7)
    with pytest.raises(envs.EnvError, match="random_start"):  # fixed by the id
        navix_adapter.make(EMPTY, random_start=True)
    with pytest.raises(envs.EnvError, match="max_steps must be an int >= 1"):
        navix_adapter.make(EMPTY, max_steps=0)


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
    goal_final = _rollout(_env(), TO_GOAL)["obs"][-1]
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
    np.testing.assert_array_equal(np.asarray(res.final_obs[4, 0]), goal_final)
    np.testing.assert_array_equal(np.asarray(res.next_obs[4, 0]), reset_obs)
    np.testing.assert_array_equal(np.asarray(res.final_obs[5, 1]), spin_final)
    np.testing.assert_array_equal(np.asarray(res.next_obs[5, 1]), reset_obs)
    assert not np.array_equal(np.asarray(res.final_obs[5, 1]), reset_obs)
    assert float(res.episode_return[4, 0]) == 1.0 and int(res.episode_length[4, 0]) == 5
    assert int(res.episode_length[5, 1]) == 6 and float(res.episode_return[5, 1]) == 0.0
    # After its reset, env 0 walks east again from the start: the goal walk's first steps.
    goal_trace = _rollout(_env(), TO_GOAL)["obs"]
    np.testing.assert_array_equal(np.asarray(res.final_obs[5:, 0]), goal_trace[:2])


def test_doorkey_8x8_makes_and_steps():
    env = envs.make("navix/Navix-DoorKey-8x8-v0")
    assert env.observation_spec.shape == (8, 8, 3) and env.action_spec.num_actions == 7
    actions = (0, 2, 2, 1, 3, 2, 5, 2, 2, 4, 6, 2)  # every action of the set, fixed
    out = _rollout(env, actions)
    _assert_same_as_navix(out)
    assert out["obs"].shape == (len(actions), 8, 8, 3) and out["obs"].dtype == np.uint8
    np.testing.assert_array_equal(out["t"], np.arange(1, len(actions) + 1))
