"""The brax adapter (`purea2c.envs.brax`) against brax's own raw step and its EpisodeWrapper.

Brax compiles slowly on CPU: each comparison is one jitted ``lax.scan`` (generalized
backend, the fastest to compile of brax's backends for inverted_pendulum here).

The action sequences are fixed and the reset key is fixed, so the episodes end where the
comments say (the pole of inverted_pendulum terminates once ``|angle| > 0.2``,
``brax/envs/inverted_pendulum.py:142``); the tests assert those end steps, so a change in
brax's physics shows as a failure, not as a silently weaker test.
"""

import os
import subprocess
import sys
import textwrap

import brax.envs
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax.envs.wrappers.training import EpisodeWrapper

import purea2c.envs
from purea2c.envs import EnvError, brax as brax_adapter, registry

NAME, BACKEND, LIMIT = "inverted_pendulum", "generalized", 20
KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def env():
    return purea2c.envs.make(f"brax/{NAME}", backend=BACKEND, episode_length=LIMIT)


def _scenarios():
    """Three action sequences of length LIMIT, [3, LIMIT, 1], from the reset of KEY:
    0. constant +1: the pole falls at once, |angle| = 0.24 at step 2: terminated at step 2;
    1. constant 0: the pole drifts slowly (|angle| 0.16 at step 20, 0.23 at step 22): the
       time limit cuts it at step 20, truncated;
    2. 19 zeros then +1: the push makes the pole fall at step 20 exactly, when the limit is
       reached too: terminated (not truncated), as brax's EpisodeWrapper has it."""
    plus = jnp.ones((LIMIT, 1))
    zero = jnp.zeros((LIMIT, 1))
    late = jnp.concatenate([jnp.zeros((LIMIT - 1, 1)), jnp.ones((1, 1))])
    return jnp.stack([plus, zero, late])


def test_adapter_matches_raw_brax_and_its_episode_wrapper(env):
    """Each adapter step against the raw env's step from the same state (the whole brax
    state must agree, so the trajectories agree by induction), and against brax's
    EpisodeWrapper run on its own from the same reset (observations, done, truncation)."""
    raw = brax.envs.get_environment(NAME, backend=BACKEND)
    wrapped = EpisodeWrapper(brax.envs.get_environment(NAME, backend=BACKEND), LIMIT, 1)
    raw_key = jax.random.key_data(KEY)

    def same(a, b):
        return jnp.all(jnp.stack([jnp.array_equal(x, y) for x, y in
                                  zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)]))

    def rollout(actions):
        obs0, state = env.reset(KEY)
        raw_reset = raw.reset(raw_key)

        def body(carry, action):
            state, wrapped_state = carry
            out = env.step(KEY, state, action)
            raw_state = raw.step(state.env_state, action)
            raw_state = raw_state.replace(reward=jnp.float32(raw_state.reward))
            wrapped_state = wrapped.step(wrapped_state, action)
            ys = dict(obs=out.obs, reward=out.reward, terminated=out.terminated,
                      truncated=out.truncated, steps=out.state.steps,
                      same_state=same(out.state.env_state, raw_state),
                      raw_obs=raw_state.obs, raw_reward=raw_state.reward,
                      raw_done=raw_state.done, wrapped_obs=wrapped_state.obs,
                      wrapped_done=wrapped_state.done,
                      wrapped_truncation=wrapped_state.info["truncation"])
            return (out.state, wrapped_state), ys

        _, ys = jax.lax.scan(body, (state, wrapped.reset(raw_key)), actions)
        return obs0, raw_reset.obs, same(state.env_state, raw_reset), ys

    obs0, raw_obs0, same_reset, ys = jax.jit(jax.vmap(rollout))(_scenarios())
    ys = jax.tree.map(np.asarray, ys)
    np.testing.assert_array_equal(obs0, raw_obs0)
    assert np.asarray(same_reset).all()

    ends = []
    for i in range(3):
        done = ys["terminated"][i] | ys["truncated"][i]
        end = int(np.argmax(done))
        assert done[end]
        ends.append(end)
        upto = slice(0, end + 1)  # the episode: everything after its end is undefined
        assert ys["same_state"][i, upto].all()
        # the raw env's own step: observations (the final one included), rewards, done
        np.testing.assert_array_equal(ys["obs"][i, upto], ys["raw_obs"][i, upto])
        np.testing.assert_array_equal(ys["obs"][i, upto], ys["wrapped_obs"][i, upto])
        np.testing.assert_array_equal(ys["reward"][i, upto], ys["raw_reward"][i, upto])
        np.testing.assert_array_equal(ys["terminated"][i, upto], ys["raw_done"][i, upto] > 0)
        # brax's own time-limit semantics: EpisodeWrapper's done and info["truncation"]
        np.testing.assert_array_equal(ys["truncated"][i, upto],
                                      ys["wrapped_truncation"][i, upto] > 0)
        np.testing.assert_array_equal(done[upto], ys["wrapped_done"][i, upto] > 0)
        np.testing.assert_array_equal(ys["steps"][i, upto], np.arange(1, end + 2))
        assert not (ys["terminated"][i] & ys["truncated"][i]).any()
        # the final observation is the step's own, not a fresh episode's first
        assert not np.allclose(ys["obs"][i, end], obs0[i])

    assert ends == [1, LIMIT - 1, LIMIT - 1]  # steps 2, 20, 20 (see _scenarios)
    assert ys["terminated"][0, 1] and not ys["truncated"][0, 1]
    assert abs(ys["obs"][0, 1, 1]) > 0.2  # the final observation shows the fallen pole
    assert ys["truncated"][1, -1] and not ys["terminated"][1, -1]
    assert abs(ys["obs"][1, -1, 1]) < 0.2  # cut by the limit, still upright
    assert ys["terminated"][2, -1] and not ys["truncated"][2, -1]
    assert ys["wrapped_done"][2, -1] > 0 and ys["wrapped_truncation"][2, -1] == 0
    np.testing.assert_array_equal(ys["reward"][:, 0], 1.0)


def test_vectorised_auto_reset_keeps_final_observations():
    """3 envs, limit 8: env 0 pushes (+1) and terminates every few steps, env 1 does
    nothing (0) and is truncated at steps 8 and 16 (its pole drifts by less than 0.2 in 8
    steps from any reset), env 2 pushes the other way (-1)."""
    env = purea2c.envs.make(f"brax/{NAME}", backend=BACKEND, episode_length=8)
    num_envs, num_steps = 3, 18
    action = jnp.array([[1.0], [0.0], [-1.0]])

    def run(key):
        state = purea2c.envs.reset(key, env, num_envs)

        def body(state, key):
            noise = purea2c.envs.draw_step_noise(key, env, num_envs)
            # the adapter's own step from the same states (brax's step ignores the key)
            own = jax.vmap(env.step)(noise.key, state.env_state, action)
            state, result = purea2c.envs.step_with(noise, env, state, action)
            return state, (result, own.obs, own.terminated, own.truncated,
                           noise.reset_obs)

        return jax.lax.scan(body, state, jax.random.split(key, num_steps))[1]

    result, own_obs, own_terminated, own_truncated, reset_obs = jax.tree.map(
        np.asarray, jax.jit(run)(KEY))
    np.testing.assert_array_equal(result.final_obs, own_obs)
    np.testing.assert_array_equal(result.terminated, own_terminated)
    np.testing.assert_array_equal(result.truncated, own_truncated)
    done = result.episode_done
    np.testing.assert_array_equal(done, own_terminated | own_truncated)
    # after an end, the next observation is a fresh episode's first, not the final one
    np.testing.assert_array_equal(result.next_obs[done], reset_obs[done])
    np.testing.assert_array_equal(result.next_obs[~done], result.final_obs[~done])
    assert not np.isclose(result.next_obs[done], result.final_obs[done]).all(axis=-1).any()
    # env 0 terminates (several times), env 1 is truncated at steps 8 and 16
    assert result.terminated[:, 0].sum() >= 2 and not result.truncated[:, 0].any()
    np.testing.assert_array_equal(np.flatnonzero(result.truncated[:, 1]), [7, 15])
    assert not result.terminated[:, 1].any()
    np.testing.assert_array_equal(result.episode_length[[7, 15], 1], [8, 8])
    assert (np.abs(result.final_obs[result.terminated][:, 1]) > 0.2).all()


def test_specs_check_and_repr(env):
    assert registry.check(env) is env
    assert env.suite == "brax" and env.name == NAME
    assert env.observation_spec == purea2c.envs.ArraySpec((4,), np.dtype(np.float32))
    spec = env.action_spec
    assert not spec.discrete and spec.num_actions == 1
    np.testing.assert_array_equal(spec.low, [-1.0])
    np.testing.assert_array_equal(spec.high, [1.0])
    assert env.max_episode_steps == LIMIT
    assert repr(env) == f"BraxEnv({NAME}, backend={BACKEND}, episode_length={LIMIT})"
    default = brax_adapter.make(NAME)  # brax's default backend, the default time limit
    assert default.max_episode_steps == 1000 and default.backend == "generalized"


def test_ids():
    names = brax_adapter.ids()
    assert names == sorted(names)
    assert {"ant", "halfcheetah", "hopper", "inverted_pendulum", "reacher"} <= set(names)
    assert purea2c.envs.ids("brax") == [f"brax/{n}" for n in names]
    for name in brax_adapter._unusable():  # e.g. swimmer with jax >= 0.10
        assert name not in names
        with pytest.raises(EnvError, match=f"brax/{name} cannot run with the installed jax"):
            brax_adapter.make(name)


def test_make_errors():
    with pytest.raises(EnvError, match="unknown brax environment 'cartpole'.*inverted_pendulum"):
        purea2c.envs.make("brax/cartpole")
    with pytest.raises(EnvError, match="brax/hopper takes no keyword 'bogus'.*healthy_reward"):
        purea2c.envs.make("brax/hopper", bogus=1)
    with pytest.raises(EnvError, match="takes no keyword 'bogus'.*backend.*episode_length"):
        brax_adapter.make(NAME, bogus=1)
    with pytest.raises(EnvError, match="backend should be in"):
        brax_adapter.make(NAME, backend="warp-drive")
    with pytest.raises(EnvError, match="episode_length must be an int >= 1"):
        brax_adapter.make(NAME, episode_length=0)
    with pytest.raises(EnvError, match="action_repeat is not supported"):
        brax_adapter.make(NAME, action_repeat=2)


_RENDER = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    from purea2c.envs import brax as adapter
    env = adapter.make("inverted_pendulum", backend="generalized")
    _, state = jax.jit(env.reset)(jax.random.key(0))
    pipeline = state.env_state.pipeline_state  # the cart moved, the pole tilted:
    pipeline = pipeline.replace(q=pipeline.q + jnp.array([0.5, 0.4]))
    moved = state._replace(env_state=state.env_state.replace(pipeline_state=pipeline))
    frames = env.render([state, moved], height=48, width=64)
    stacked = jax.tree.map(lambda *x: jnp.stack(x), state, moved)
    assert all(np.array_equal(a, b) for a, b in zip(env.render(stacked, 48, 64), frames))
    assert len(frames) == 2 and all(f.shape == (48, 64, 3) and f.dtype == np.uint8
                                    for f in frames)
    assert frames[0].std() > 0 and not np.array_equal(frames[0], frames[1])
    print("rendered")
""")


def test_render_headless():
    """MuJoCo picks its OpenGL backend when it is imported: a fresh process with EGL."""
    out = subprocess.run([sys.executable, "-c", _RENDER], capture_output=True, text=True,
                         env={**os.environ, "MUJOCO_GL": "egl"}, timeout=120)
    if out.returncode and "MuJoCo's renderer failed" in out.stderr:
        pytest.skip(f"no EGL here: {out.stderr.strip().splitlines()[-1]}")
    assert out.returncode == 0 and "rendered" in out.stdout, out.stderr[-2000:]
