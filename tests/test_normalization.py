"""Running normalisers against numpy: the exact merge, VecNormalize's reward rule, psum."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from purea2c import normalization

_floats = st.floats(-1e3, 1e3, allow_nan=False, width=32)


def _moments_np(x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    x = x.astype(np.float64)
    return len(x), x.mean(0), ((x - x.mean(0)) ** 2).sum(0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=5), st.integers(0, 2**31 - 1))
def test_batches_merge_to_the_moments_of_their_concatenation(sizes, seed):
    rng = np.random.default_rng(seed)
    batches = [rng.normal(rng.uniform(-5, 5), rng.uniform(0.1, 10), (n, 3)).astype(np.float32)
               for n in sizes]
    m = normalization.init_moments((3,))
    for b in batches:
        m = normalization.update(m, jnp.asarray(b))
    n, mean, m2 = _moments_np(np.concatenate(batches))
    assert float(m.count) == n
    np.testing.assert_allclose(m.mean, mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(m.m2, m2, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(normalization.variance(m), m2 / n, rtol=1e-3, atol=1e-4)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(_floats, min_size=2, max_size=2), min_size=1, max_size=12),
       st.lists(st.lists(_floats, min_size=2, max_size=2), min_size=1, max_size=12))
def test_merge_is_order_free_and_exact(a, b):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    ma = normalization.batch_moments(jnp.asarray(a), 1)
    mb = normalization.batch_moments(jnp.asarray(b), 1)
    n, mean, m2 = _moments_np(np.concatenate([a, b]))
    for m in (normalization.merge(ma, mb), normalization.merge(mb, ma)):
        np.testing.assert_allclose(m.mean, mean, rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(m.m2, m2, rtol=1e-3, atol=1e-1)


def test_hand_case():
    # items 1, 3 then 5: n = 3, mean 3, M2 = 4 + 0 + 4 = 8, var 8/3.
    m = normalization.update(normalization.init_moments(()), jnp.array([1.0, 3.0]))
    m = normalization.update(m, jnp.array([5.0]))
    assert (float(m.count), float(m.mean), float(m.m2)) == (3.0, 3.0, 8.0)
    z = normalization.normalize(m, jnp.array([3.0, 3.0 + np.sqrt(8 / 3)]), 10.0)
    np.testing.assert_allclose(z, [0.0, 1.0], atol=1e-5)
    assert float(normalization.normalize(m, jnp.array(1e6), 5.0)) == 5.0  # clipped


def test_nothing_seen_is_the_identity():
    m = normalization.init_moments((2,))
    x = jnp.array([[0.3, -2.0]])
    np.testing.assert_allclose(normalization.normalize(m, x, 10.0), x, rtol=1e-6)


def test_reward_normaliser_against_a_plain_loop():
    rng = np.random.default_rng(0)
    steps, envs, gamma, clip = 50, 3, 0.9, 10.0
    rewards = rng.normal(2.0, 3.0, (steps, envs)).astype(np.float32)
    dones = rng.uniform(size=(steps, envs)) < 0.1
    # VecNormalize's rule, written plainly: returns, all returns seen so far, scaled rewards.
    ret, seen, expected = np.zeros(envs), [], []
    for r, d in zip(rewards, dones):
        ret = ret * gamma + r
        seen.extend(ret)
        expected.append(np.clip(r / np.sqrt(np.var(seen) + 1e-8), -clip, clip))
        ret = np.where(d, 0.0, ret)
    state = normalization.init_reward_norm(envs)
    got = []
    for r, d in zip(rewards, dones):
        state, scaled = normalization.normalize_reward(state, jnp.asarray(r), jnp.asarray(d),
                                                       gamma, clip)
        got.append(scaled)
    np.testing.assert_allclose(np.stack(got), np.stack(expected), rtol=2e-4, atol=1e-5)
    assert float(state.moments.count) == steps * envs


def test_psum_over_devices_equals_the_union():
    # Two "devices" (a vmapped named axis): each sees half of the batch; the psum'ed moments
    # are those of the whole batch, on both.
    x = jnp.asarray(np.random.default_rng(1).normal(3.0, 2.0, (2, 7, 4)), jnp.float32)
    per_device = jax.vmap(lambda b: normalization.batch_moments(b, 1, "devices"),
                          axis_name="devices")(x)
    whole = normalization.batch_moments(x.reshape(14, 4), 1)
    for i in range(2):
        np.testing.assert_allclose(per_device.mean[i], whole.mean, rtol=1e-5)
        np.testing.assert_allclose(per_device.m2[i], whole.m2, rtol=1e-4)
        assert float(per_device.count[i]) == 14.0
