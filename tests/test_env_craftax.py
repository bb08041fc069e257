"""The craftax adapter against craftax's own ``reset_env`` / ``step_env`` (no auto-reset) on
Craftax-Classic-Symbolic-v1 with a 5-step time limit: observations, rewards and ``done`` on a
fixed action sequence, the truncation at the limit, a death (a true end) before and at the
limit, `make`'s errors, the registry's checks, and purea2c's auto-reset on top.

Craftax compiles slowly (reset generates a world), so the module compiles one reset and one
step of both (adapter and craftax side by side) and reuses them; full Craftax is only
checked abstractly (``registry.check``, no compilation)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("craftax")

from craftax.craftax_env import make_craftax_env_from_name  # noqa: E402

from purea2c import envs  # noqa: E402
from purea2c.envs import craftax as craftax_adapter  # noqa: E402

NAME = "Craftax-Classic-Symbolic-v1"
LIMIT = 5  # max_timesteps: the 5th step ends every episode that lives that long
# RIGHT, UP, DO, LEFT, DOWN: moves and an interaction, no randomness in the actions
ACTIONS = (2, 3, 5, 1, 4)


class Harness:
    """The adapter (made through the registry), craftax's own env with the same parameters,
    and jitted functions running both on the same input, compiled once for the module."""

    def __init__(self):
        self.env = envs.make(f"craftax/{NAME}", max_timesteps=LIMIT)
        self.suite = make_craftax_env_from_name(NAME, auto_reset=False)
        self.params = self.suite.default_params.replace(max_timesteps=LIMIT)
        env, suite, params = self.env, self.suite, self.params

        def reset_both(key):
            return env.reset(key), suite.reset_env(jax.random.key_data(key), params)

        def step_both(key, state, action):
            return (env.step(key, state, action),
                    suite.step_env(jax.random.key_data(key), state, action, params))

        self.reset_both = jax.jit(reset_both)
        self.step_both = jax.jit(step_both)


@pytest.fixture(scope="module")
def h():
    return Harness()


def _assert_same_state(state, ref_state):
    """Equal leaves (craftax's own state may hold weakly typed ones)."""
    assert jax.tree.structure(state) == jax.tree.structure(ref_state)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(ref_state)):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def _dying(state, timestep):
    """``state`` one step from death by the game's own rule: health 1, no food, and the
    recovery counter at -15, so the step's ``recover_add`` of -1 takes it below -15 and the
    player loses the last point of health (craftax_classic/game_logic.py, lines 1303-1324)."""
    i32, f32 = jnp.int32, jnp.float32
    return state.replace(player_health=jnp.asarray(1, i32), player_food=jnp.asarray(0, i32),
                         player_recover=jnp.asarray(-15.0, f32),
                         timestep=jnp.asarray(timestep, i32))


def test_ids_specs_and_check(h):
    assert craftax_adapter.ids() == sorted(craftax_adapter.ids())
    assert {"Craftax-Classic-Symbolic-v1", "Craftax-Symbolic-v1"} <= set(
        craftax_adapter.ids())
    env = h.env
    assert env.suite == "craftax" and env.name == NAME and NAME in repr(env)
    assert env.observation_spec.shape == (1345,)
    assert env.observation_spec.dtype == np.float32
    assert env.action_spec.discrete and env.action_spec.num_actions == 17
    assert env.max_episode_steps == LIMIT
    # full Craftax: checked abstractly only (its step takes long to compile)
    full = envs.check(craftax_adapter.make("Craftax-Symbolic-v1"))
    assert full.observation_spec.shape == (8268,) and full.action_spec.num_actions == 43
    assert full.max_episode_steps == 100_000
    assert craftax_adapter.make(NAME).max_episode_steps == 10_000


def test_make_errors():
    with pytest.raises(envs.EnvError, match="Craftax-Classic-Symbolic-v1"):
        envs.make("craftax/Craftax-Nope-v1")
    with pytest.raises(envs.EnvError, match="'episode_length'.*max_timesteps"):
        envs.make(f"craftax/{NAME}", episode_length=10)
    with pytest.raises(envs.EnvError, match="max_timesteps"):
        craftax_adapter.make(NAME, max_timesteps=0)
    with pytest.raises(envs.EnvError, match="always_diamond"):
        craftax_adapter.make(NAME, always_diamond="yes")


def test_matches_craftax_and_truncates_at_the_limit(h):
    key = jax.random.key(3)
    (obs, state), (ref_obs, ref_state) = h.reset_both(key)
    np.testing.assert_array_equal(obs, ref_obs)
    _assert_same_state(state, ref_state)
    assert obs.shape == (1345,) and obs.dtype == jnp.float32
    flags = []
    for t, a in enumerate(ACTIONS):
        # Both step the same state, and their states stay equal: by induction the adapter's
        # trajectory is craftax's own.
        out, (ref_obs, ref_state, ref_reward, ref_done, _) = h.step_both(
            jax.random.fold_in(key, t), state, jnp.asarray(a, jnp.int32))
        _assert_same_state(out.state, ref_state)
        state = out.state
        np.testing.assert_array_equal(out.obs, ref_obs)
        assert out.reward.dtype == jnp.float32 and float(out.reward) == float(ref_reward)
        assert bool(out.terminated or out.truncated) == bool(ref_done)
        flags.append((bool(out.terminated), bool(out.truncated), bool(ref_done)))
    # craftax ends the episode exactly at step LIMIT (state.timestep reaches max_timesteps)
    # with the player alive (health starts at 9; nothing takes 9 points in 5 steps): a
    # truncation, and the adapter's observation there is craftax's final one (checked in the
    # loop above on every step, the last included).
    assert flags == [(False, False, False)] * (LIMIT - 1) + [(False, True, True)]
    assert int(ref_state.timestep) == LIMIT and int(ref_state.player_health) > 0


def test_death_terminates_before_and_at_the_limit(h):
    (_, state), _ = h.reset_both(jax.random.key(4))
    key = jax.random.key(5)
    noop = jnp.asarray(0, jnp.int32)
    for timestep in (0, LIMIT - 1):  # step 1 of the episode; step LIMIT, the time limit's
        dying = _dying(state, timestep)
        out, (ref_obs, ref_state, ref_reward, ref_done, info) = h.step_both(key, dying, noop)
        # craftax's own step ends it, and by death: the health it reached is 0
        assert bool(ref_done) and int(ref_state.player_health) <= 0
        assert float(info["discount"]) == 0.0
        assert int(ref_state.timestep) == timestep + 1
        assert bool(out.terminated) and not bool(out.truncated)
        np.testing.assert_array_equal(out.obs, ref_obs)
        assert float(out.reward) == float(ref_reward)
        assert float(out.reward) == pytest.approx(-0.1)  # the lost point of health
    # the same state alive at the limit's step is a truncation
    alive = state.replace(timestep=jnp.asarray(LIMIT - 1, jnp.int32))
    out, (_, _, _, ref_done, _) = h.step_both(key, alive, noop)
    assert bool(ref_done) and bool(out.truncated) and not bool(out.terminated)


def test_vectorised_auto_reset(h):
    env, n = h.env, 2
    # envs.reset, and envs.step_with (what envs.step runs, and what training runs with the
    # noise of a whole rollout drawn ahead): its noise, each env's transition key and the
    # episode it resets to, is drawn here with envs.reset (one compilation fewer).
    vreset = jax.jit(lambda k: envs.reset(k, env, n))
    vstep = jax.jit(lambda noise, s, a: envs.step_with(noise, env, s, a))
    vstate = vreset(jax.random.key(6))
    actions = jnp.asarray([[a, (a + 2) % 6] for a in ACTIONS], jnp.int32)
    for t in range(LIMIT):
        fresh = vreset(jax.random.key(100 + t))
        noise = envs.StepNoise(jax.random.split(jax.random.key(200 + t), n), fresh.obs,
                               fresh.env_state)
        before = vstate
        vstate, res = vstep(noise, vstate, actions[t])
        for i in range(n):  # each env's step is the adapter's own step
            one = jax.tree.map(lambda x, i=i: x[i], before.env_state)
            out, _ = h.step_both(noise.key[i], one, actions[t, i])
            np.testing.assert_array_equal(res.final_obs[i], out.obs)
            assert float(res.reward[i]) == float(out.reward)
        last = t == LIMIT - 1
        assert np.array_equal(res.truncated, [last] * n)
        assert np.array_equal(res.episode_done, [last] * n)
        assert not np.asarray(res.terminated).any()
        if not last:
            np.testing.assert_array_equal(res.next_obs, res.final_obs)
    # after the time limit: next_obs is a fresh episode's first observation (the drawn
    # reset), not the final one, and the state restarts from step 0
    np.testing.assert_array_equal(res.next_obs, fresh.obs)
    assert not np.array_equal(res.next_obs, res.final_obs)
    assert np.array_equal(vstate.env_state.timestep, [0] * n)
    assert np.array_equal(res.episode_length, [LIMIT] * n)
    assert np.array_equal(vstate.stats.episode_length, [0] * n)
