"""The environment seam on gymnax: vectorised stepping with purea2c's auto-reset
(terminated vs truncated vs final observation, on CartPole-v1), the gymnax adapter against
gymnax's own step, ids and errors of `purea2c.envs.make`, and the protocol checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purea2c import envs


def _run(env, state, actions, key):
    results = []
    for t, a in enumerate(actions):
        state, res = envs.step(jax.random.fold_in(key, t), env, state, a)
        results.append(res)
    return state, results


def test_termination_keeps_final_obs_and_resets():
    env = envs.make("CartPole-v1")
    state = envs.reset(jax.random.key(0), env, 2)
    step = jax.jit(lambda k, s, a: envs.step(k, env, s, a))
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
    env = envs.make("CartPole-v1", max_steps_in_episode=5)
    state = envs.reset(jax.random.key(1), env, 3)
    flags = []
    for t in range(5):
        before = state.obs
        state, res = envs.step(jax.random.key(t), env, state,
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
    env = envs.make("CartPole-v1")
    state = envs.reset(jax.random.key(2), env, 1)
    step = jax.jit(lambda k, s, a: envs.step(k, env, s, a))
    t = 0
    while True:
        state, res = step(jax.random.key(t), state, jnp.ones((1,), jnp.int32))
        t += 1
        if bool(res.episode_done[0]):
            break
    # Re-run the same episode with the time limit set to the termination step: both fire.
    env_short = envs.make("CartPole-v1", max_steps_in_episode=t)
    state = envs.reset(jax.random.key(2), env_short, 1)
    for i in range(t):
        state, res = envs.step(jax.random.key(i), env_short, state,
                               jnp.ones((1,), jnp.int32))
    assert bool(res.terminated[0]) and not bool(res.truncated[0])


def test_env_step_is_vmap_consistent():
    env = envs.make("CartPole-v1")
    state = envs.reset(jax.random.key(3), env, 4)
    actions = jnp.array([0, 1, 1, 0], jnp.int32)
    _, res = envs.step(jax.random.key(9), env, state, actions)
    keys = jax.random.split(jax.random.key(9), 4)
    for i in range(4):
        single = jax.tree.map(lambda x: x[i:i + 1], state)
        obs, *_ = env.env.step(keys[i], jax.tree.map(lambda x: x[0], single.env_state),
                               actions[i], env.params)
        np.testing.assert_allclose(np.asarray(res.next_obs[i]), np.asarray(obs), rtol=1e-6)


def test_action_spec_and_clipping_for_box_actions():
    spec = envs.make("Pendulum-v1").action_spec
    assert not spec.discrete and spec.num_actions == 1
    np.testing.assert_array_equal(spec.low, [-2.0])
    np.testing.assert_array_equal(spec.high, [2.0])
    a = jnp.asarray([[-5.0], [0.3], [2.5]], jnp.float32)
    np.testing.assert_array_equal(envs.env_action(spec, a),
                                  np.asarray([[-2.0], [0.3], [2.0]], np.float32))
    spec = envs.make("gymnax/Reacher-misc").action_spec
    assert spec.num_actions == 2 and spec.low.shape == (2,)
    spec = envs.make("Acrobot-v1").action_spec
    assert spec.discrete and spec.num_actions == 3
    a = jnp.asarray([0, 2], jnp.int32)
    assert envs.env_action(spec, a) is a  # discrete actions pass unchanged


def test_pendulum_receives_the_clipped_action():
    """A huge torque steps Pendulum exactly like the bound itself."""
    env = envs.make("Pendulum-v1")
    spec = env.action_spec
    state = envs.reset(jax.random.key(0), env, 3)
    _, big = envs.step(jax.random.key(1), env, state,
                       envs.env_action(spec, jnp.full((3, 1), 50.0)))
    _, bound = envs.step(jax.random.key(1), env, state, jnp.full((3, 1), 2.0))
    np.testing.assert_array_equal(big.next_obs, bound.next_obs)
    np.testing.assert_array_equal(big.reward, bound.reward)


# --------------------------------------------------------------------------------------
# Noise drawn ahead (step_with) against gymnax's own step.


def _gymnax_step(env, params):
    return jax.jit(lambda k, s, a: jax.vmap(env.step, in_axes=(0, 0, 0, None))(k, s, a, params))


def _ours(env):
    return jax.jit(lambda k, s, a: envs.step_with(envs.step_noise_from_keys(k, env), env, s, a))


@pytest.mark.parametrize("name", ["CartPole-v1", "Pendulum-v1", "Asterix-MinAtar"])
def test_step_with_noise_from_keys_is_gymnax_step(name):
    """Same keys, same transitions, resets and flags as gymnax's step (a short time limit and
    Asterix's random spawns make both kinds of episode end and the env's own key matter)."""
    env = envs.make(name, max_steps_in_episode=7)
    spec = env.action_spec
    n = 6
    state = envs.reset(jax.random.key(0), env, n)
    ref_step, our_step = _gymnax_step(env.env, env.params), _ours(env)
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
    env = envs.make("CartPole-v1")
    noise = envs.draw_step_noise(jax.random.key(0), env, num_envs=5, num_steps=3)
    assert noise.key.shape == (3, 5) and noise.reset_obs.shape == (3, 5, 4)
    assert jax.tree.leaves(noise.reset_state)[0].shape[:2] == (3, 5)
    flat = np.asarray(noise.reset_obs).reshape(15, 4)
    assert len({tuple(row) for row in flat}) == 15  # every (step, env) its own fresh episode
    assert np.all(np.abs(flat) <= 0.05)  # CartPole's reset range


class _Ender:
    """Ends (terminated) every step where the action is 1; a reset draws its observation
    from the key, so each fresh episode is recognisable."""

    observation_spec = envs.ArraySpec((1,), np.float32)
    action_spec = envs.ActionSpec(True, 2, None, None)
    max_episode_steps = 100

    def reset(self, key):
        return jax.random.uniform(key, (1,)), jnp.zeros((), jnp.int32)

    def step(self, key, state, action):
        return envs.EnvStep(jnp.full((1,), -1.0), state + 1, jnp.ones(()), action == 1,
                            jnp.zeros((), bool))


@pytest.mark.parametrize("pool", [1, 2, 3])
def test_a_shared_pool_of_resets_goes_to_the_ending_envs_in_order(pool):
    env, n = _Ender(), 6
    noise = envs.draw_step_noise(jax.random.key(3), env, n, num_steps=2, resets_per_step=pool)
    full = envs.draw_step_noise(jax.random.key(3), env, n, num_steps=2)
    assert noise.reset_obs.shape == (2, pool, 1)
    # the same transition keys, and the pool is the first `pool` of the exact draw's resets
    np.testing.assert_array_equal(jax.random.key_data(noise.key), jax.random.key_data(full.key))
    np.testing.assert_array_equal(noise.reset_obs, full.reset_obs[:, :pool])
    state = envs.reset(jax.random.key(0), env, n)
    action = jnp.array([0, 1, 1, 0, 1, 1])
    one = jax.tree.map(lambda x: x[0], noise)
    state, res = jax.jit(lambda s: envs.step_with(one, env, s, action))(state)
    ended = np.flatnonzero(np.asarray(action))
    fresh = np.asarray(noise.reset_obs[0, :, 0])
    expected = np.full(n, -1.0, np.float32)
    expected[ended] = fresh[np.arange(len(ended)) % pool]  # k-th ending env: fresh episode k
    np.testing.assert_array_equal(np.asarray(res.next_obs)[:, 0], expected)
    np.testing.assert_array_equal(np.asarray(state.env_state), np.where(action == 1, 0, 1))
    np.testing.assert_array_equal(res.final_obs, -1.0)


def test_a_pool_as_large_as_the_envs_is_the_exact_draw():
    env = envs.make("CartPole-v1")
    a = envs.draw_step_noise(jax.random.key(5), env, 4, 3, resets_per_step=4)
    b = envs.draw_step_noise(jax.random.key(5), env, 4, 3)
    jax.tree.map(np.testing.assert_array_equal, a.reset_obs, b.reset_obs)
    with pytest.raises(ValueError, match="resets_per_step must be >= 1"):
        envs.draw_step_noise(jax.random.key(5), env, 4, 3, resets_per_step=0)


def test_env_with_its_own_step_is_called_as_it_is():
    """A gymnax wrapper that overrides step cannot be split into step_env + reset: its step
    runs (the final observation read from its info), and purea2c's auto-reset replaces the
    state it reset to."""
    import gymnax.environments.classic_control.cartpole as cartpole

    class Doubled(cartpole.CartPole):
        def step(self, key, state, action, params=None):
            obs, state, reward, term, trunc, info = super().step(key, state, action, params)
            return obs, state, 2.0 * reward, term, trunc, info

    env = envs.make(Doubled())
    state = envs.reset(jax.random.key(1), env, 3)
    step = jax.jit(lambda k, s, a: envs.step(k, env, s, a))
    for t in range(60):  # always push right: every env terminates within 60 steps
        prev = state.obs
        state, res = step(jax.random.key(t), state, jnp.ones((3,), jnp.int32))
        np.testing.assert_array_equal(res.reward, 2.0)
        done = np.asarray(res.episode_done)
        # the final observation continues the episode (an Euler step of x), not a reset
        np.testing.assert_allclose(np.asarray(res.final_obs)[:, 0],
                                   np.asarray(prev)[:, 0] + 0.02 * np.asarray(prev)[:, 1],
                                   atol=1e-6)
        assert np.all(np.abs(np.asarray(res.next_obs)[done]) <= 0.05)


# --------------------------------------------------------------------------------------
# Ids, keywords and objects: what `purea2c.envs.make` accepts and the errors it gives.


def test_bare_gymnax_names_are_gymnax_ids():
    assert envs.make("CartPole-v1") is envs.make("gymnax/CartPole-v1")
    assert envs.parse_id("CartPole-v1") == ("gymnax", "CartPole-v1")
    assert envs.parse_id("brax/ant") == ("brax", "ant")
    assert "gymnax/Breakout-MinAtar" in envs.ids("gymnax")


def test_keywords_replace_gymnax_parameters():
    env = envs.make("CartPole-v1", max_steps_in_episode=9)
    assert env.max_episode_steps == 9 and env.params.max_steps_in_episode == 9


@pytest.mark.parametrize("env_id, kwargs, message", [
    ("nosuite/CartPole-v1", {}, "unknown suite 'nosuite'"),
    ("gymnax/NoSuchEnv-v0", {}, "unknown environment 'NoSuchEnv-v0' in gymnax"),
    ("NoSuchEnv-v0", {}, "registered gymnax environments"),
    ("gymnax/", {}, "names no environment"),
    ("", {}, "not a non-empty string"),
    ("CartPole-v1", {"episode_length": 5}, "takes no keyword 'episode_length'"),
    ("MNISTBandit-bsuite", {}, "downloads a data set"),
])
def test_bad_ids_and_keywords_raise_one_clear_error(env_id, kwargs, message):
    with pytest.raises(envs.EnvError, match=message):
        envs.make(env_id, **kwargs)


def test_a_missing_suite_names_its_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_brax(name, *args, **kwargs):
        if name == "brax" or name.startswith("brax."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    import sys
    monkeypatch.delitem(sys.modules, "purea2c.envs.brax", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_brax)
    envs.registry._make_by_id.cache_clear()
    try:
        with pytest.raises(envs.EnvError, match=r'pip install "purea2c\[brax\]"'):
            envs.make("brax/inverted_pendulum")
    finally:
        envs.registry._make_by_id.cache_clear()


class _Protocol:
    """A minimal env that follows the protocol: a counter that ends at 3 (terminated)."""

    observation_spec = envs.ArraySpec((2,), np.float32)
    action_spec = envs.ActionSpec(True, 2, None, None)
    max_episode_steps = 10

    def __init__(self, obs_shape=(2,), flag_dtype=bool, reward_shape=()):
        self.obs_shape, self.flag_dtype, self.reward_shape = obs_shape, flag_dtype, reward_shape

    def reset(self, key):
        return jnp.zeros(self.obs_shape, jnp.float32), jnp.zeros((), jnp.int32)

    def step(self, key, state, action):
        state = state + 1
        obs = jnp.full(self.obs_shape, state, jnp.float32)
        return envs.EnvStep(obs, state, jnp.zeros(self.reward_shape, jnp.float32),
                            (state >= 3).astype(self.flag_dtype),
                            jnp.zeros((), self.flag_dtype))


def test_an_object_with_the_protocol_is_used_as_it_is():
    env = _Protocol()
    assert envs.make(env) is env
    state = envs.reset(jax.random.key(0), env, 2)
    for t in range(3):
        state, res = envs.step(jax.random.key(t), env, state, jnp.zeros((2,), jnp.int32))
    np.testing.assert_array_equal(res.terminated, True)
    np.testing.assert_array_equal(res.final_obs, 3.0)  # the final observation, not a reset
    np.testing.assert_array_equal(res.next_obs, 0.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(obs_shape=(3,)), "observation has shape"),
    (dict(flag_dtype=jnp.int32), "terminated must be a bool scalar"),
    (dict(reward_shape=(1,)), "reward must be a float scalar"),
])
def test_an_object_that_breaks_the_protocol_is_refused(kwargs, message):
    with pytest.raises(envs.EnvError, match=message):
        envs.make(_Protocol(**kwargs))


def test_neither_id_nor_env_is_refused():
    with pytest.raises(envs.EnvError, match="neither an environment id nor an object"):
        envs.make(42)
    with pytest.raises(envs.EnvError, match="go with an id"):
        envs.make(_Protocol(), episode_length=3)
