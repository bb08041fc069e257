"""Tests for the streaming n-step tracer (`purea2c.tracing`).

Three angles, as in rlax's ``multistep_test.py``: a brute-force Python reference over whole
recorded streams (hypothesis), small hand-computed cases with the arithmetic in comments,
and limiting identities (n = 1 is one-step TD, gamma = 0 is the reward, n >= episode length
is the Monte-Carlo return). Batching over environments is checked against single envs.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from purea2c import tracing

OBS_DIM = 3
RTOL = 1e-5
ATOL = 1e-5

# Event codes of a recorded step.
NONE, TERM, TRUNC = 0, 1, 2


class Stream(NamedTuple):
    """A recorded stream of ONE env; every field is a numpy array with leading time dim [L]."""

    obs: np.ndarray  # float32 [L, 3], S_t
    action: np.ndarray  # int32 [L]
    log_prob: np.ndarray  # float32 [L]
    reward: np.ndarray  # float32 [L]
    terminated: np.ndarray  # bool [L]
    truncated: np.ndarray  # bool [L]
    final_obs: np.ndarray  # float32 [L, 3], observation step t reached
    next_obs: np.ndarray  # float32 [L, 3], S_{t+1} (reset obs after an end)


class Expected(NamedTuple):
    obs: np.ndarray
    action: int
    log_prob: float
    reward: float
    discount: float
    next_obs: np.ndarray | None  # None: unused (terminated inside the window)


def make_stream(rewards, events, seed, final_differs=False) -> Stream:
    """A self-consistent stream: ``obs[t+1] == next_obs[t]``; after an end the final obs
    differs from the (reset) next obs. With ``final_differs`` the final obs differs at every
    step, which makes a mix-up of the two visible even without an episode end."""
    rng = np.random.default_rng(seed)
    length = len(rewards)
    events = np.asarray(events, np.int32)
    next_obs = rng.normal(size=(length, OBS_DIM)).astype(np.float32)
    obs = np.concatenate([rng.normal(size=(1, OBS_DIM)).astype(np.float32), next_obs[:-1]])
    terminated = events == TERM
    truncated = events == TRUNC
    done = terminated | truncated
    other = (rng.normal(size=(length, OBS_DIM)) + 10.0).astype(np.float32)
    use_other = np.ones_like(done) if final_differs else done
    final_obs = np.where(use_other[:, None], other, next_obs).astype(np.float32)
    return Stream(
        obs=obs,
        action=rng.integers(0, 5, size=length).astype(np.int32),
        log_prob=(-rng.uniform(0.0, 3.0, size=length)).astype(np.float32),
        reward=np.asarray(rewards, np.float32),
        terminated=terminated,
        truncated=truncated,
        final_obs=final_obs,
        next_obs=next_obs,
    )


def reference(stream: Stream, gamma: float, n: int) -> list[Expected]:
    """Brute force: for each start j, walk k = 0..n-1 and stop at the first episode end."""
    g = float(np.float32(gamma))  # the tracer works in float32; use the same gamma value
    out = []
    for j in range(len(stream.reward) - n + 1):
        ret = 0.0
        discount = g**n
        next_obs = stream.next_obs[j + n - 1]
        for k in range(n):
            ret += g**k * float(stream.reward[j + k])
            if stream.terminated[j + k]:
                discount, next_obs = 0.0, None
                break
            if stream.truncated[j + k]:
                discount, next_obs = g ** (k + 1), stream.final_obs[j + k]
                break
        out.append(Expected(stream.obs[j], int(stream.action[j]), float(stream.log_prob[j]),
                            ret, discount, next_obs))
    return out


@functools.lru_cache(maxsize=None)
def jitted_step():
    # One jitted function; its cache compiles once per window length n (shapes differ by n).
    return jax.jit(tracing.step)


def run_tracer(stream: Stream, gamma: float, n: int):
    """Drives the jitted `tracing.step` over the stream with a Python loop."""
    step = jitted_step()
    state = tracing.init(n, jnp.zeros((OBS_DIM,), jnp.float32), jnp.zeros((), jnp.int32))
    emissions = []
    for t in range(len(stream.reward)):
        state, transition, valid = step(
            state, stream.obs[t], stream.action[t], stream.log_prob[t], stream.reward[t],
            stream.terminated[t], stream.truncated[t], stream.final_obs[t], stream.next_obs[t],
            np.float32(gamma))
        emissions.append((jax.tree.map(np.asarray, transition), bool(valid)))
    return state, emissions


def check_against_reference(stream: Stream, gamma: float, n: int):
    _, emissions = run_tracer(stream, gamma, n)
    expected = reference(stream, gamma, n)
    assert len(emissions) == len(stream.reward)
    for t, (_, valid) in enumerate(emissions[: n - 1]):
        assert not valid, f"emission {t} should be padding (n={n})"
    assert len(expected) == max(len(stream.reward) - n + 1, 0)
    for t in range(n - 1, len(stream.reward)):
        tr, valid = emissions[t]
        exp = expected[t - n + 1]
        assert valid, f"emission {t} should be valid (n={n})"
        msg = f"transition starting at j={t - n + 1} (n={n}, gamma={gamma})"
        np.testing.assert_allclose(tr.obs, exp.obs, rtol=RTOL, atol=ATOL, err_msg=msg)
        assert int(tr.action) == exp.action, msg
        np.testing.assert_allclose(tr.log_prob, exp.log_prob, rtol=RTOL, atol=ATOL, err_msg=msg)
        np.testing.assert_allclose(tr.reward, exp.reward, rtol=RTOL, atol=ATOL, err_msg=msg)
        np.testing.assert_allclose(tr.discount, exp.discount, rtol=RTOL, atol=ATOL, err_msg=msg)
        if exp.next_obs is not None:
            np.testing.assert_allclose(tr.next_obs, exp.next_obs, rtol=RTOL, atol=ATOL,
                                       err_msg=msg)
        assert tr.obs.dtype == np.float32 and tr.next_obs.dtype == np.float32
        assert tr.reward.dtype == np.float32 and tr.discount.dtype == np.float32
        assert tr.obs.shape == (OBS_DIM,) and tr.next_obs.shape == (OBS_DIM,)
        assert tr.reward.shape == () and tr.discount.shape == ()


# --------------------------------------------------------------------------------------
# Property test: random streams against the brute-force reference.


@st.composite
def streams(draw):
    length = draw(st.integers(1, 40))
    n = draw(st.integers(1, 8))
    gamma = draw(st.one_of(st.sampled_from([0.0, 1.0]),
                           st.floats(0.0, 1.0, width=32, allow_subnormal=False)))
    rewards = draw(st.lists(st.floats(-1.0, 1.0, width=32, allow_subnormal=False),
                            min_size=length, max_size=length))
    # Roughly 1 step in 4 ends an episode (half terminations, half truncations).
    events = draw(st.lists(st.sampled_from([NONE] * 6 + [TERM, TRUNC]),
                           min_size=length, max_size=length))
    seed = draw(st.integers(0, 2**31 - 1))
    final_differs = draw(st.booleans())
    return make_stream(rewards, events, seed, final_differs), gamma, n


@settings(max_examples=50, deadline=None)
@given(streams())
def test_matches_brute_force_reference(case):
    stream, gamma, n = case
    check_against_reference(stream, gamma, n)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_reference_long_stream_with_many_episodes(n):
    # A fixed long stream (many episodes, both kinds of end, ends back-to-back) so that every
    # n is exercised at least once independently of hypothesis' draws.
    rng = np.random.default_rng(n)
    length = 60
    events = rng.choice([NONE, NONE, NONE, TERM, TRUNC], size=length)
    events[10:13] = [TERM, TRUNC, TERM]  # consecutive ends
    rewards = rng.uniform(-1.0, 1.0, size=length)
    check_against_reference(make_stream(rewards, events, seed=n, final_differs=True), 0.9, n)


# --------------------------------------------------------------------------------------
# Hand-computed cases.


def hand_stream(rewards, events):
    """obs[t] = [t, t, t]; next_obs[t] = [t+1]*3; final_obs[t] = [100+t]*3 (all distinct)."""
    length = len(rewards)
    t = np.arange(length, dtype=np.float32)[:, None] * np.ones((1, OBS_DIM), np.float32)
    events = np.asarray(events)
    return Stream(
        obs=t,
        action=np.arange(length, dtype=np.int32) + 10,
        log_prob=-np.arange(length, dtype=np.float32) - 0.5,
        reward=np.asarray(rewards, np.float32),
        terminated=events == TERM,
        truncated=events == TRUNC,
        final_obs=t + 100.0,
        next_obs=t + 1.0,
    )


def last_emission(stream, gamma, n):
    _, emissions = run_tracer(stream, gamma, n)
    transition, valid = emissions[-1]
    assert valid
    return transition


def test_hand_no_end():
    # n=3, gamma=0.5, rewards 1, 2, 4 and no end:
    #   R = 1 + 0.5*2 + 0.25*4 = 1 + 1 + 1 = 3;  I = 0.5**3 = 0.125;  S_next = next_obs[2] = 3.
    s = hand_stream([1.0, 2.0, 4.0], [NONE, NONE, NONE])
    _, emissions = run_tracer(s, 0.5, 3)
    assert [valid for _, valid in emissions] == [False, False, True]
    tr = emissions[-1][0]
    np.testing.assert_allclose(tr.reward, 3.0, rtol=RTOL)
    np.testing.assert_allclose(tr.discount, 0.125, rtol=RTOL)
    np.testing.assert_allclose(tr.next_obs, [3.0, 3.0, 3.0], rtol=RTOL)
    np.testing.assert_allclose(tr.obs, [0.0, 0.0, 0.0])  # S_j with j = 0
    assert int(tr.action) == 10
    np.testing.assert_allclose(tr.log_prob, -0.5, rtol=RTOL)


def test_hand_termination_at_second_step():
    # Terminated at step 1: R = 1 + 0.5*2 = 2 (the 4 of the next episode is excluded); I = 0.
    tr = last_emission(hand_stream([1.0, 2.0, 4.0], [NONE, TERM, NONE]), 0.5, 3)
    np.testing.assert_allclose(tr.reward, 2.0, rtol=RTOL)
    np.testing.assert_allclose(tr.discount, 0.0)


def test_hand_truncation_at_second_step():
    # Truncated at step 1: R = 1 + 0.5*2 = 2; I = 0.5**2 = 0.25; S_next = final_obs[1] = 101.
    tr = last_emission(hand_stream([1.0, 2.0, 4.0], [NONE, TRUNC, NONE]), 0.5, 3)
    np.testing.assert_allclose(tr.reward, 2.0, rtol=RTOL)
    np.testing.assert_allclose(tr.discount, 0.25, rtol=RTOL)
    np.testing.assert_allclose(tr.next_obs, [101.0, 101.0, 101.0], rtol=RTOL)


def test_hand_end_at_first_step():
    # Terminated at the very first step of the window: R = r_0 = 1 and I = 0.
    tr = last_emission(hand_stream([1.0, 2.0, 4.0], [TERM, NONE, NONE]), 0.5, 3)
    np.testing.assert_allclose(tr.reward, 1.0, rtol=RTOL)
    np.testing.assert_allclose(tr.discount, 0.0)
    # Truncated at the first step: R = 1, I = 0.5, S_next = final_obs[0] = 100.
    tr = last_emission(hand_stream([1.0, 2.0, 4.0], [TRUNC, NONE, NONE]), 0.5, 3)
    np.testing.assert_allclose(tr.reward, 1.0, rtol=RTOL)
    np.testing.assert_allclose(tr.discount, 0.5, rtol=RTOL)
    np.testing.assert_allclose(tr.next_obs, [100.0, 100.0, 100.0], rtol=RTOL)


def test_hand_truncation_at_last_step_of_window():
    # Truncated at step 2 (= j + n - 1): R = 1 + 1 + 1 = 3; I = 0.5**3 = 0.125, the same as
    # with no end, but S_next must be final_obs[2] = 102, not the reset obs next_obs[2] = 3.
    tr = last_emission(hand_stream([1.0, 2.0, 4.0], [NONE, NONE, TRUNC]), 0.5, 3)
    np.testing.assert_allclose(tr.reward, 3.0, rtol=RTOL)
    np.testing.assert_allclose(tr.discount, 0.125, rtol=RTOL)
    np.testing.assert_allclose(tr.next_obs, [102.0, 102.0, 102.0], rtol=RTOL)


def test_hand_end_before_window_is_ignored():
    # n=2, gamma=0.5. Step 0 terminates; the last window is steps 1, 2 (rewards 2, 4), which
    # starts a fresh episode: R = 2 + 0.5*4 = 4; I = 0.25; S_next = next_obs[2] = 3.
    tr = last_emission(hand_stream([1.0, 2.0, 4.0], [TERM, NONE, NONE]), 0.5, 2)
    np.testing.assert_allclose(tr.reward, 4.0, rtol=RTOL)
    np.testing.assert_allclose(tr.discount, 0.25, rtol=RTOL)
    np.testing.assert_allclose(tr.next_obs, [3.0, 3.0, 3.0], rtol=RTOL)
    np.testing.assert_allclose(tr.obs, [1.0, 1.0, 1.0])


# --------------------------------------------------------------------------------------
# Limiting identities.


@settings(max_examples=25, deadline=None)
@given(streams())
def test_n1_is_one_step_td(case):
    stream, gamma, _ = case
    g = np.float32(gamma)
    _, emissions = run_tracer(stream, gamma, 1)
    for t, (tr, valid) in enumerate(emissions):
        assert valid  # n=1: nothing to wait for
        # R = r_t; I = gamma * (1 - terminated_t); S_next = S_{t+1}, or final obs if truncated.
        np.testing.assert_allclose(tr.reward, stream.reward[t], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(tr.discount, g * (1.0 - stream.terminated[t]),
                                   rtol=RTOL, atol=ATOL)
        if not stream.terminated[t]:
            expected = stream.final_obs[t] if stream.truncated[t] else stream.next_obs[t]
            np.testing.assert_allclose(tr.next_obs, expected, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(tr.obs, stream.obs[t])


@settings(max_examples=25, deadline=None)
@given(streams())
def test_gamma0_is_reward(case):
    stream, _, n = case
    _, emissions = run_tracer(stream, 0.0, n)
    for t in range(n - 1, len(stream.reward)):
        tr, valid = emissions[t]
        assert valid
        j = t - n + 1
        np.testing.assert_allclose(tr.reward, stream.reward[j], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(tr.discount, 0.0, atol=ATOL)


@pytest.mark.parametrize("n, episode_length", [(4, 4), (6, 4), (8, 1), (8, 5)])
def test_long_window_on_terminated_episode_is_monte_carlo(n, episode_length):
    # An episode of `episode_length` steps ending in a termination, followed by a second
    # episode long enough for the window to slide over the first one entirely.
    gamma = 0.9
    rng = np.random.default_rng(episode_length)
    rewards = rng.uniform(-1.0, 1.0, size=episode_length + n)
    events = [NONE] * (episode_length - 1) + [TERM] + [NONE] * n
    stream = make_stream(rewards, events, seed=0)
    _, emissions = run_tracer(stream, gamma, n)
    g = float(np.float32(gamma))
    for j in range(episode_length):
        # The tail of the first episode from j: G_j = sum_{k=j}^{end} gamma^(k-j) r_k.
        mc = sum(g ** (k - j) * float(stream.reward[k]) for k in range(j, episode_length))
        tr, valid = emissions[j + n - 1]
        assert valid
        np.testing.assert_allclose(tr.reward, mc, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(tr.discount, 0.0)


# --------------------------------------------------------------------------------------
# Batching over environments, carrying the window across rollouts, compilation.


def scan_rollout(state, xs, gamma):
    """Drives `tracing.step` with lax.scan over the leading time axis of ``xs``."""
    def body(carry, x):
        carry, transition, valid = tracing.step(carry, *x, gamma)
        return carry, (transition, valid)

    return jax.lax.scan(body, state, xs)


def stream_xs(stream: Stream):
    return (stream.obs, stream.action, stream.log_prob, stream.reward, stream.terminated,
            stream.truncated, stream.final_obs, stream.next_obs)


def test_vmap_over_envs_equals_each_env_alone():
    n, length, num_envs, gamma = 3, 25, 4, 0.8
    rng = np.random.default_rng(7)
    envs = [make_stream(rng.uniform(-1, 1, size=length),
                        rng.choice([NONE] * 4 + [TERM, TRUNC], size=length), seed=e,
                        final_differs=True)
            for e in range(num_envs)]
    batched_xs = jax.tree.map(lambda *xs: np.stack(xs, axis=1),  # [T, E, ...]
                              *[stream_xs(s) for s in envs])
    init_one = tracing.init(n, jnp.zeros((OBS_DIM,)), jnp.zeros((), jnp.int32))
    states = jax.tree.map(lambda x: jnp.stack([x] * num_envs), init_one)

    def batched_step(state, x, g):
        return jax.vmap(tracing.step, in_axes=(0,) * 9 + (None,))(state, *x, g)

    def body(carry, x):
        carry, transition, valid = batched_step(carry, x, gamma)
        return carry, (transition, valid)

    final_states, (transitions, valid) = jax.jit(
        lambda s, xs: jax.lax.scan(body, s, xs))(states, batched_xs)
    assert valid.shape == (length, num_envs)
    assert transitions.obs.shape == (length, num_envs, OBS_DIM)

    for e, stream in enumerate(envs):
        alone_state, emissions = run_tracer(stream, gamma, n)
        for t, (tr, v) in enumerate(emissions):
            assert bool(valid[t, e]) == v
            for name, x in tr._asdict().items():
                np.testing.assert_allclose(np.asarray(getattr(transitions, name)[t, e]), x,
                                           rtol=RTOL, atol=ATOL, err_msg=f"env {e} t {t} {name}")
        for a, b in zip(jax.tree.leaves(alone_state), jax.tree.leaves(final_states)):
            np.testing.assert_allclose(np.asarray(b[e]), np.asarray(a), rtol=RTOL, atol=ATOL)
    # Envs are genuinely different, so the comparison above could tell them apart.
    assert not np.allclose(transitions.reward[:, 0], transitions.reward[:, 1])


@pytest.mark.parametrize("split", [1, 2, 7])
def test_window_carried_across_rollouts_loses_nothing(split):
    # Two consecutive scans with the state carried over == one scan over the whole stream.
    n, gamma = 4, 0.7
    rng = np.random.default_rng(split)
    stream = make_stream(rng.uniform(-1, 1, size=12),
                         rng.choice([NONE] * 4 + [TERM, TRUNC], size=12), seed=split)
    xs = stream_xs(stream)
    state0 = tracing.init(n, jnp.zeros((OBS_DIM,)), jnp.zeros((), jnp.int32))
    rollout = jax.jit(scan_rollout)
    _, (whole, whole_valid) = rollout(state0, xs, gamma)
    mid, (first, first_valid) = rollout(state0, jax.tree.map(lambda x: x[:split], xs), gamma)
    _, (second, second_valid) = rollout(mid, jax.tree.map(lambda x: x[split:], xs), gamma)
    np.testing.assert_array_equal(np.concatenate([first_valid, second_valid]), whole_valid)
    for a, b, w in zip(first, second, whole):
        np.testing.assert_allclose(np.concatenate([a, b]), w, rtol=RTOL, atol=ATOL)
    assert int(np.sum(whole_valid)) == 12 - n + 1


def test_traced_gamma_compiles_once():
    # A fresh wrapper, so that the count does not include other tests' compilations.
    step = jax.jit(lambda *a: tracing.step(*a))
    state = tracing.init(2, jnp.zeros((OBS_DIM,)), jnp.zeros((), jnp.int32))
    args = (np.zeros(OBS_DIM, np.float32), np.int32(0), np.float32(0.0), np.float32(1.0),
            False, False, np.zeros(OBS_DIM, np.float32), np.zeros(OBS_DIM, np.float32))
    outs = []
    for gamma in (0.5, 0.9, 0.99):
        state, transition, _ = step(state, *args, np.float32(gamma))
        outs.append(transition.discount)
    assert step._cache_size() == 1
    # gamma really is used: after two steps of n=2 with no end, I = gamma**2.
    np.testing.assert_allclose(outs[-1], 0.99**2, rtol=RTOL)


def test_init_shapes_and_dtypes():
    state = tracing.init(5, jnp.zeros((OBS_DIM,), jnp.float32), jnp.zeros((), jnp.int32))
    assert state.obs.shape == (5, OBS_DIM) and state.final_obs.shape == (5, OBS_DIM)
    assert state.action.shape == (5,) and state.action.dtype == jnp.int32
    assert state.terminated.dtype == jnp.bool_ and state.truncated.dtype == jnp.bool_
    assert state.count.shape == () and state.count.dtype == jnp.int32
    assert int(state.count) == 0


# --------------------------------------------------------------------------------------
# Jitted and not (chex.variants): the same emissions as the brute-force reference; and the
# shape asserts at the tracer's boundary.


class TracerVariants(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True)
    def test_emissions_match_the_reference(self):
        events = [NONE, NONE, TERM, NONE, NONE, NONE, TRUNC, NONE, NONE]
        stream = make_stream(np.arange(9, dtype=np.float32) - 2.0, events, seed=5,
                             final_differs=True)
        n, gamma = 3, 0.9
        step = self.variant(tracing.step)
        state = tracing.init(n, jnp.zeros((OBS_DIM,), jnp.float32), jnp.zeros((), jnp.int32))
        expected = reference(stream, gamma, n)
        for t in range(len(stream.reward)):
            state, tr, valid = step(
                state, stream.obs[t], stream.action[t], stream.log_prob[t], stream.reward[t],
                stream.terminated[t], stream.truncated[t], stream.final_obs[t],
                stream.next_obs[t], np.float32(gamma))
            assert bool(valid) == (t >= n - 1)
            if t >= n - 1:
                exp = expected[t - n + 1]
                chex.assert_trees_all_close((tr.reward, tr.discount, tr.obs),
                                            (np.float32(exp.reward), np.float32(exp.discount),
                                             exp.obs), rtol=RTOL, atol=ATOL)
                chex.assert_shape(tr.next_obs, (OBS_DIM,))

    def test_a_batched_reward_is_refused_at_the_boundary(self):
        state = tracing.init(2, jnp.zeros((OBS_DIM,), jnp.float32), jnp.zeros((), jnp.int32))
        obs = jnp.zeros((OBS_DIM,), jnp.float32)
        with pytest.raises(AssertionError, match="rank"):
            tracing.step(state, obs, jnp.zeros((), jnp.int32), 0.0, jnp.zeros((1,)), False,
                         False, obs, obs, 0.9)
        with pytest.raises(AssertionError):  # next_obs of another shape than the window's
            tracing.step(state, obs, jnp.zeros((), jnp.int32), 0.0, 0.0, False, False, obs,
                         jnp.zeros((OBS_DIM + 1,)), 0.9)
