"""The whole pipeline: purity, reproducibility, vmap, chunking, compilation, finiteness."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purea2c
from purea2c import normalization, stages, training
from purea2c.agent import Agent, make_networks
from purea2c.config import Config

from helpers import assert_trees_equal, trees_equal

SMALL = Config(num_envs=4, rollout_length=8, n_step=3, buffer_capacity=64, batch_size=16,
               num_passes=2, total_timesteps=32 * 12)


def _finite_metrics(m: purea2c.Metrics):
    for name, value in m._asdict().items():
        value = np.asarray(value)
        if name in ("episode_return", "episode_length"):
            assert np.all(np.isnan(value) == (np.asarray(m.episodes) == 0)), name
            value = value[np.asarray(m.episodes) > 0]
        assert np.all(np.isfinite(value)), name


@pytest.fixture(scope="module")
def small_run():
    return purea2c.train(jax.random.key(0), SMALL)


def test_shapes_and_finite_metrics(small_run):
    m = small_run.metrics
    n = SMALL.num_iterations
    for name, value in m._asdict().items():
        assert value.shape == (n,), name
    np.testing.assert_array_equal(m.env_steps, np.arange(1, n + 1) * SMALL.steps_per_iteration)
    assert int(small_run.state.iteration) == n
    assert int(m.episodes.sum()) > 0
    _finite_metrics(m)


def test_same_key_is_bitwise_reproducible(small_run):
    again = purea2c.train(jax.random.key(0), SMALL)
    assert trees_equal(small_run, again)


def test_different_keys_differ():
    a = purea2c.init(jax.random.key(0), SMALL)
    b = purea2c.init(jax.random.key(1), SMALL)
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        if x.ndim == 2:  # kernels (biases start at zero for both)
            assert not np.allclose(x, y)
    ra = purea2c.train(jax.random.key(0), SMALL).metrics.episode_return
    rb = purea2c.train(jax.random.key(1), SMALL).metrics.episode_return
    assert not np.array_equal(np.asarray(ra), np.asarray(rb), equal_nan=True)


def test_vmap_over_keys_equals_separate_runs(small_run):
    keys = jax.random.split(jax.random.key(7), 4)
    batched = jax.jit(jax.vmap(purea2c.train, in_axes=(0, None)))(keys, SMALL)
    for i in range(4):
        single = purea2c.train(keys[i], SMALL)
        one = jax.tree.map(lambda x: x[i], batched)
        for x, y in zip(jax.tree.leaves(one.metrics), jax.tree.leaves(single.metrics)):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-5)
        for x, y in zip(jax.tree.leaves(one.state.params), jax.tree.leaves(single.state.params)):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-5)


def test_chunked_run_equals_one_train_call(small_run):
    state = purea2c.init(jax.random.key(0), SMALL)
    chunks = []
    for length in (5, 5, 2):
        state, metrics = purea2c.run(state, SMALL, length)
        chunks.append(metrics)
    joined = jax.tree.map(lambda *xs: jnp.concatenate(xs), *chunks)
    assert trees_equal(joined, small_run.metrics)
    assert trees_equal(state, small_run.state)


def test_repeated_calls_compile_once():
    config = SMALL.replace(gamma=0.97)
    program = training.program("train")
    before = program._cache_size()
    purea2c.train(jax.random.key(0), config)
    after_first = program._cache_size()
    # A new key and a new traced value (same static fields) reuse the same program.
    purea2c.train(jax.random.key(1), config.replace(gamma=0.9, pi_learning_rate=3e-3))
    assert program._cache_size() == after_first <= before + 1


def test_vmap_over_traced_learning_rate():
    lrs = jnp.array([1e-4, 3e-3])
    key = jax.random.key(3)
    out = jax.jit(jax.vmap(lambda lr: purea2c.train(key, SMALL.replace(pi_learning_rate=lr))))(lrs)
    assert out.metrics.policy_loss.shape == (2, SMALL.num_iterations)
    _finite_metrics(jax.tree.map(lambda x: x[1], out.metrics))
    for i, lr in enumerate([1e-4, 3e-3]):
        single = purea2c.train(key, SMALL.replace(pi_learning_rate=lr))
        np.testing.assert_allclose(np.asarray(out.metrics.value_loss[i]),
                                   np.asarray(single.metrics.value_loss), rtol=1e-4, atol=1e-5)
    # Same key, different learning rates: different policies.
    pi0, pi1 = (jax.tree.map(lambda x: x[i], out.state.params.pi) for i in range(2))
    assert not trees_equal(pi0, pi1)


def test_first_iteration_before_the_tracer_fills_makes_no_update():
    # n_step > rollout_length: the first iteration adds nothing to the buffer.
    config = SMALL.replace(n_step=12, total_timesteps=32)
    state0 = purea2c.init(jax.random.key(0), config)
    state1, metrics = purea2c.run(state0, config, 1)
    assert int(state1.buffer.size) == 0
    assert trees_equal(state0.params, state1.params)


def test_buffer_holds_every_transition_of_the_iteration():
    # Without clearing, after k iterations the buffer holds 4 envs x (8k - (n - 1)) items.
    config = SMALL.replace(clear_buffer=False, buffer_capacity=256)
    state = purea2c.init(jax.random.key(0), config)
    state, _ = purea2c.run(state, config, 2)
    assert int(state.buffer.size) == 4 * (16 - 2)


def test_sync_keeps_torsos_equal_and_variants_run():
    config = SMALL.replace(shared_torso="sync", value_loss="huber", use_target_network=True,
                           policy_objective="ppo_clip")
    out = purea2c.train(jax.random.key(0), config)
    _finite_metrics(out.metrics)
    pi_torso = out.state.params.pi["params"]["torso"]
    v_torso = out.state.params.v["params"]["torso"]
    assert trees_equal(pi_torso, v_torso)
    # The target network lags behind v.
    assert not trees_equal(out.state.target_v, out.state.params.v)
    # Huber td_error is clipped to +-delta, so its mean is too.
    assert np.all(np.abs(np.asarray(out.metrics.td_error)) <= config.huber_delta + 1e-6)


def _always_push_right(params):
    head = dict(params.pi["params"]["head"])
    head["kernel"] = jnp.zeros_like(head["kernel"])
    head["bias"] = jnp.array([-5.0, 5.0])
    pi = {"params": {**params.pi["params"], "head": head}}
    return params._replace(pi=pi)


def test_evaluate_against_a_python_loop():
    import gymnax

    params = _always_push_right(purea2c.init(jax.random.key(0), SMALL).params)
    returns = np.asarray(purea2c.evaluate(jax.random.key(1), SMALL, params, num_episodes=64))
    # Reference: the same policy stepped one episode at a time in plain Python.
    env, env_params = gymnax.make("CartPole-v1")
    step = jax.jit(env.step)
    lengths = []
    for i in range(64):
        key = jax.random.key(100 + i)
        _, state = env.reset(key, env_params)
        total, done = 0.0, False
        while not done:
            key, sub = jax.random.split(key)
            _, state, reward, term, trunc, _ = step(sub, state, 1, env_params)
            total += float(reward)
            done = bool(term) or bool(trunc)
        lengths.append(total)
    assert returns.shape == (64,)
    # Same policy, independent resets: episode lengths from the same narrow distribution
    # (the pole falls after 8-11 pushes), and means within sampling error.
    assert min(lengths) - 1 <= returns.min() and returns.max() <= max(lengths) + 1
    assert max(lengths) - min(lengths) <= 4
    assert abs(returns.mean() - np.mean(lengths)) < 0.5


def test_evaluate_greedy_sampled_and_time_limit():
    state = purea2c.init(jax.random.key(0), SMALL)
    greedy = purea2c.evaluate(jax.random.key(1), SMALL, state.params, num_episodes=8)
    sampled = purea2c.evaluate(jax.random.key(1), SMALL, state.params, num_episodes=8,
                               greedy=False)
    assert greedy.shape == sampled.shape == (8,)
    assert not np.array_equal(np.asarray(greedy), np.asarray(sampled))
    short = purea2c.evaluate(jax.random.key(1), SMALL, state.params, num_episodes=8,
                             greedy=False, max_steps=5)
    np.testing.assert_array_equal(np.asarray(short), 5.0)
    again = purea2c.evaluate(jax.random.key(1), SMALL, state.params, num_episodes=8)
    np.testing.assert_array_equal(np.asarray(again), np.asarray(greedy))


def test_vmapped_init_has_no_qr_decomposition():
    # A batched QR (orthogonal init) under vmap can deadlock XLA's CPU thread pool; the
    # networks use a QR-free initialiser of the same scale instead.
    keys = jax.random.split(jax.random.key(0), 3)
    jaxpr = str(jax.make_jaxpr(jax.vmap(purea2c.init, in_axes=(0, None)))(keys, SMALL))
    for primitive in ("qr", "householder_product", "geqrf", "orgqr"):
        assert re.search(rf"= {primitive}\b", jaxpr) is None, primitive


def test_compiler_options_per_backend_and_under_an_outer_jit():
    """The top-level program gets the backend's options (CPU: LLVM -O1; others: XLA's own);
    inside a caller's jit the function is a plain jit (JAX refuses options on nested jits),
    with the same result."""
    expected = {"xla_backend_optimization_level": 1} if jax.default_backend() == "cpu" else None
    assert purea2c.compiler_options() == expected
    key = jax.random.key(5)
    alone = purea2c.train(key, SMALL)
    nested = jax.jit(lambda k: purea2c.train(k, SMALL))(key)
    for a, b in zip(jax.tree.leaves(alone.state.params), jax.tree.leaves(nested.state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    compiled = training.program("train").lower(key, SMALL).compile()
    assert compiled(key, SMALL).state.iteration == \
        SMALL.num_iterations


def test_a_solve_check_traced_into_one_program_equals_two_programs():
    """README's solve loop in one program: ``run`` and ``evaluate`` inside one ``jax.jit``
    with purea2c's compiler options give bitwise what the two programs give."""
    state = purea2c.init(jax.random.key(0), SMALL)

    def check(s):
        s, metrics = purea2c.run(s, SMALL, 3)
        return s, metrics, purea2c.evaluate(jax.random.key(1), SMALL, s.params, num_episodes=4)

    fused = jax.jit(check, compiler_options=purea2c.compiler_options())
    assert_trees_equal(fused(state), check(state))


# --- normalisation, gSDE, divergence ---------------------------------------------------------

PENDULUM = Config(env="Pendulum-v1", num_envs=4, rollout_length=8, n_step=3,
                  buffer_capacity=64, batch_size=16, num_passes=2, total_timesteps=32 * 5)


def test_normalisers_are_off_by_default_and_count_every_step_when_on():
    assert purea2c.init(jax.random.key(0), SMALL).params.obs_norm is None
    config = SMALL.replace(normalize_obs=True, normalize_reward=True)
    state = purea2c.init(jax.random.key(0), config)
    assert float(state.params.obs_norm.count) == 0.0
    state, metrics = purea2c.run(state, config, 3)
    steps = 3 * config.steps_per_iteration
    assert float(state.params.obs_norm.count) == steps
    assert float(state.reward_norm.moments.count) == steps
    assert np.all(np.asarray(normalization.variance(state.params.obs_norm)) > 0)
    _finite_metrics(metrics)


def test_observation_moments_are_those_of_the_observations_acted_on():
    # With n = 1 and no clearing, the buffer holds exactly the observations of the
    # iteration's 32 steps: the moments must equal numpy's over them.
    config = SMALL.replace(normalize_obs=True, clear_buffer=False, buffer_capacity=64,
                           n_step=1, total_timesteps=32)
    state, _ = purea2c.run(purea2c.init(jax.random.key(4), config), config, 1)
    obs = np.asarray(state.buffer.data.obs)[:int(state.buffer.size)]  # n=1: all 32 steps
    assert len(obs) == config.steps_per_iteration
    m = state.params.obs_norm
    np.testing.assert_allclose(m.mean, obs.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(m.m2, ((obs - obs.mean(0)) ** 2).sum(0), rtol=1e-3, atol=1e-5)


def test_policy_acts_on_normalised_observations_everywhere():
    config = SMALL.replace(normalize_obs=True)
    state, _ = purea2c.run(purea2c.init(jax.random.key(0), config), config, 2)
    obs = np.asarray(state.env.obs)
    nets = make_networks(config)[2]
    z = normalization.normalize(state.params.obs_norm, jnp.asarray(obs), config.obs_clip)
    expected = np.argmax(np.asarray(nets.pi.apply(state.params.pi, z).logits), axis=-1)
    np.testing.assert_array_equal(purea2c.make_policy(config, state.params)(obs), expected)
    assert purea2c.evaluate(jax.random.key(0), config, state.params, num_episodes=2).shape == (2,)
    with pytest.raises(ValueError, match="obs_norm"):
        purea2c.make_policy(config, state.params._replace(obs_norm=None))


def test_gsde_holds_its_exploration_matrix_for_sde_sample_freq_steps():
    config = PENDULUM.replace(exploration="gsde", sde_sample_freq=3)
    noise = np.asarray(stages.action_noise(Agent(config), jax.random.key(0)))
    assert noise.shape == (8, 4, 64, 1)
    for t in range(8):  # steps 0-2, 3-5, 6-7 share a matrix; blocks differ
        np.testing.assert_array_equal(noise[t], noise[3 * (t // 3)])
    assert not np.allclose(noise[0], noise[3])
    once = config.replace(sde_sample_freq=0)
    noise = np.asarray(stages.action_noise(Agent(once), jax.random.key(0)))
    assert np.all(noise == noise[:1])
    out = purea2c.train(jax.random.key(0), config)
    _finite_metrics(out.metrics)
    assert out.state.params.pi["params"]["log_std"].shape == (64, 1)


def test_nonfinite_updates_are_skipped_and_counted():
    # Learning rates of 1e30 blow the parameters up within a few updates: the overflowing
    # updates are skipped, and the parameters stay finite.
    config = SMALL.replace(pi_learning_rate=1e30, v_learning_rate=1e30)
    out = purea2c.train(jax.random.key(0), config)
    assert int(out.metrics.skipped_updates.sum()) > 0
    assert bool(np.all(out.metrics.finite))
    for leaf in jax.tree.leaves(out.state.params):
        assert np.all(np.isfinite(np.asarray(leaf)))
    # Without skipping, the run diverges, and the metric says at which iteration.
    out = purea2c.train(jax.random.key(0), config.replace(skip_nonfinite=False))
    finite = np.asarray(out.metrics.finite)
    assert not finite.all() and int(out.metrics.skipped_updates.sum()) == 0
    first = int(np.argmin(finite))
    assert finite[:first].all() and not finite[first:].any()


_compiles: list[str] = []


def _on_compile(event: str, duration: float, **kwargs) -> None:
    if event.endswith("backend_compile_duration"):
        _compiles.append(event)


jax.monitoring.register_event_duration_secs_listener(_on_compile)


def test_one_compilation_whatever_scalar_type_a_hyperparameter_comes_as():
    """A learning rate given as a Python float, a jnp.float32, an np.float64, an np.float32,
    a Python int or a 0-d array (weak or strong): `train` compiles once (real compilations,
    counted from JAX's compile events, not the jit cache)."""
    config = Config(num_envs=4, rollout_length=4, n_step=2, buffer_capacity=16,
                    batch_size=8, total_timesteps=32, hidden_sizes=(7,))
    key = jax.random.key(0)
    values = [jnp.float32(2e-3), np.float64(3e-3), np.float32(4e-3), 1, np.asarray(5e-3),
              jnp.asarray(6e-3), jnp.asarray(7e-3, jnp.float32), 8e-3]
    first = purea2c.train(key, config.replace(pi_learning_rate=1e-3))
    before = len(_compiles)
    assert before > 0
    for lr in values:
        out = purea2c.train(key, config.replace(pi_learning_rate=lr, gamma=np.float64(0.99)))
        assert np.isfinite(np.asarray(out.metrics.value_loss)).all()
    assert len(_compiles) == before, f"{len(_compiles) - before} more compilations"
    # Same value, different scalar types: the same result, bitwise.
    again = purea2c.train(key, config.replace(pi_learning_rate=np.float64(1e-3)))
    assert_trees_equal(first, again, bitwise=True)
