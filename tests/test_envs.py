"""Vectorised stepping: terminated vs truncated vs final observation, on CartPole-v1."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purea2c import envs


def _run(env, params, state, actions, key):
    results = []
    for t, a in enumerate(actions):
        state, res = envs.step(jax.random.fold_in(key, t), env, params, state, a)
        results.append(res)
    return state, results


def test_termination_keeps_final_obs_and_resets():
    env, params = envs.make_env("CartPole-v1")
    state = envs.reset(jax.random.key(0), env, params, 2)
    step = jax.jit(lambda k, s, a: envs.step(k, env, params, s, a))
    # Always push right: the pole falls within a few dozen steps, no time limit reached.
    done_at = None
    for t in range(200):
        prev_obs = state.obs
        state, res = step(jax.random.key(t), state, jnp.ones((2,), jnp.int32))
        if bool(res.episode_done[0]):
            done_at = t
            break
    assert done_at is not None and done_at < 100
    assert bool(res.terminated[0]) and not bool(res.truncated[0])
    # The final observation is past a threshold (|x| > 2.4 or |theta| > 12 degrees) ...
    fo = np.asarray(res.final_obs[0])
    assert abs(fo[0]) > 2.4 or abs(fo[2]) > 12 * 2 * np.pi / 360
    # ... and is the Euler step from the previous observation, while next_obs is a reset.
    assert np.allclose(fo[0], prev_obs[0, 0] + 0.02 * prev_obs[0, 1], atol=1e-6)
    assert np.all(np.abs(np.asarray(res.next_obs[0])) <= 0.05)
    # Episode statistics: CartPole pays 1 per step, the terminal step included.
    assert float(res.episode_return[0]) == done_at + 1
    assert int(res.episode_length[0]) == done_at + 1
    assert float(state.stats.episode_return[0]) == 0.0


def test_truncation_at_time_limit():
    env, params = envs.make_env("CartPole-v1")
    params = params.replace(max_steps_in_episode=5)
    state = envs.reset(jax.random.key(1), env, params, 3)
    flags = []
    for t in range(5):
        before = state.obs
        state, res = envs.step(jax.random.key(t), env, params, state,
                               jnp.array([0, 1, 0], jnp.int32))
        flags.append((np.asarray(res.terminated), np.asarray(res.truncated)))
    term, trunc = flags[-1]
    assert not term.any() and trunc.all()
    assert all(not f[1].any() and not f[0].any() for f in flags[:-1])
    # final_obs is the genuine 5th observation, next_obs a fresh reset; they differ.
    assert not np.allclose(np.asarray(res.final_obs), np.asarray(res.next_obs))
    assert np.allclose(np.asarray(res.final_obs)[:, 0],
                       np.asarray(before)[:, 0] + 0.02 * np.asarray(before)[:, 1], atol=1e-6)
    assert np.all(np.asarray(res.episode_length) == 5)
    assert np.all(np.asarray(state.stats.episode_length) == 0)


def test_terminated_wins_over_truncated():
    env, params = envs.make_env("CartPole-v1")
    state = envs.reset(jax.random.key(2), env, params, 1)
    step = jax.jit(lambda k, s, a: envs.step(k, env, params, s, a))
    t = 0
    while True:
        state, res = step(jax.random.key(t), state, jnp.ones((1,), jnp.int32))
        t += 1
        if bool(res.episode_done[0]):
            break
    # Re-run the same episode with the time limit set to the termination step: both fire.
    params_short = params.replace(max_steps_in_episode=t)
    state = envs.reset(jax.random.key(2), env, params_short, 1)
    for i in range(t):
        state, res = envs.step(jax.random.key(i), env, params_short, state,
                               jnp.ones((1,), jnp.int32))
    assert bool(res.terminated[0]) and not bool(res.truncated[0])


def test_env_step_is_vmap_consistent():
    env, params = envs.make_env("CartPole-v1")
    state = envs.reset(jax.random.key(3), env, params, 4)
    actions = jnp.array([0, 1, 1, 0], jnp.int32)
    _, res = envs.step(jax.random.key(9), env, params, state, actions)
    keys = jax.random.split(jax.random.key(9), 4)
    for i in range(4):
        single = jax.tree.map(lambda x: x[i:i + 1], state)
        obs, *_ = env.step(keys[i], jax.tree.map(lambda x: x[0], single.env_state),
                           actions[i], params)
        np.testing.assert_allclose(np.asarray(res.next_obs[i]), np.asarray(obs), rtol=1e-6)


def test_action_spec_and_clipping_for_box_actions():
    import gymnax

    env, params = gymnax.make("Pendulum-v1")
    spec = envs.action_spec(env, params)
    assert not spec.discrete and spec.num_actions == 1
    np.testing.assert_array_equal(spec.low, [-2.0])
    np.testing.assert_array_equal(spec.high, [2.0])
    a = jnp.asarray([[-5.0], [0.3], [2.5]], jnp.float32)
    np.testing.assert_array_equal(envs.env_action(spec, a),
                                  np.asarray([[-2.0], [0.3], [2.0]], np.float32))
    env, params = gymnax.make("Reacher-misc")
    spec = envs.action_spec(env, params)
    assert spec.num_actions == 2 and spec.low.shape == (2,)
    env, params = gymnax.make("Acrobot-v1")
    spec = envs.action_spec(env, params)
    assert spec.discrete and spec.num_actions == 3
    a = jnp.asarray([0, 2], jnp.int32)
    assert envs.env_action(spec, a) is a  # discrete actions pass unchanged


def test_pendulum_receives_the_clipped_action():
    """A huge torque steps Pendulum exactly like the bound itself."""
    import gymnax

    env, params = gymnax.make("Pendulum-v1")
    spec = envs.action_spec(env, params)
    state = envs.reset(jax.random.key(0), env, params, 3)
    _, big = envs.step(jax.random.key(1), env, params, state,
                       envs.env_action(spec, jnp.full((3, 1), 50.0)))
    _, bound = envs.step(jax.random.key(1), env, params, state, jnp.full((3, 1), 2.0))
    np.testing.assert_array_equal(big.next_obs, bound.next_obs)
    np.testing.assert_array_equal(big.reward, bound.reward)


# --------------------------------------------------------------------------------------
# Noise drawn ahead (step_with) against gymnax's own step.


def _gymnax_step(env, params):
    return jax.jit(lambda k, s, a: jax.vmap(env.step, in_axes=(0, 0, 0, None))(k, s, a, params))


def _ours(env, params):
    return jax.jit(lambda k, s, a: envs.step_with(envs.step_noise_from_keys(k, env, params),
                                                  env, params, s, a))


@pytest.mark.parametrize("name", ["CartPole-v1", "Pendulum-v1", "Asterix-MinAtar"])
def test_step_with_noise_from_keys_is_gymnax_step(name):
    """Same keys, same transitions, resets and flags as gymnax's step (a short time limit and
    Asterix's random spawns make both kinds of episode end and the env's own key matter)."""
    env, params = envs.make_env(name)
    params = params.replace(max_steps_in_episode=7)
    spec = envs.action_spec(env, params)
    n = 6
    state = envs.reset(jax.random.key(0), env, params, n)
    ref_step, our_step = _gymnax_step(env, params), _ours(env, params)
    ended = 0
    for t in range(25):
        keys = jax.random.split(jax.random.key(100 + t), n)
        if spec.discrete:
            a = (jnp.arange(n) + t) % spec.num_actions
        else:
            a = jnp.linspace(-2.0, 2.0, n)[:, None]
        obs, env_state, reward, term, trunc, info = ref_step(keys, state.env_state, a)
        state, res = our_step(keys, state, a)
        np.testing.assert_allclose(res.next_obs, np.asarray(obs, np.float32), rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(res.final_obs, np.asarray(info["final_observation"],
                                                             np.float32), rtol=1e-5, atol=1e-6)
        for ours, theirs in zip(jax.tree.leaves(state.env_state), jax.tree.leaves(env_state)):
            np.testing.assert_allclose(np.asarray(ours, np.float64),
                                       np.asarray(theirs, np.float64), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(res.reward, reward, rtol=1e-6)
        np.testing.assert_array_equal(res.terminated, term)
        np.testing.assert_array_equal(res.truncated, np.logical_and(trunc, ~term))
        ended += int(np.sum(res.episode_done))
    assert ended >= n * 3  # every env went through several resets


def test_draw_step_noise_shapes_and_independence():
    env, params = envs.make_env("CartPole-v1")
    noise = envs.draw_step_noise(jax.random.key(0), env, params, num_envs=5, num_steps=3)
    assert noise.key.shape == (3, 5) and noise.reset_obs.shape == (3, 5, 4)
    assert jax.tree.leaves(noise.reset_state)[0].shape[:2] == (3, 5)
    flat = np.asarray(noise.reset_obs).reshape(15, 4)
    assert len({tuple(row) for row in flat}) == 15  # every (step, env) its own fresh episode
    assert np.all(np.abs(flat) <= 0.05)  # CartPole's reset range


def test_env_with_its_own_step_is_called_as_it_is():
    """A wrapper that overrides step cannot be split into step_env + reset: its step runs."""
    import gymnax.environments.classic_control.cartpole as cartpole

    class Doubled(cartpole.CartPole):
        def step(self, key, state, action, params=None):
            obs, state, reward, term, trunc, info = super().step(key, state, action, params)
            return obs, state, 2.0 * reward, term, trunc, info

    env = Doubled()
    params = env.default_params
    noise = envs.draw_step_noise(jax.random.key(0), env, params, 3)
    assert noise.reset_state is None
    state = envs.reset(jax.random.key(1), env, params, 3)
    _, res = envs.step_with(noise, env, params, state, jnp.zeros((3,), jnp.int32))
    np.testing.assert_array_equal(res.reward, 2.0)
