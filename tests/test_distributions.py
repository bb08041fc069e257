"""Tests for the categorical distribution helpers (`purea2c.distributions`), checked against
float64 numpy."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purea2c import distributions

SHAPES = [(6,), (4, 6), (3, 4, 6)]  # [A], [B, A], [T, B, A]


def np_log_softmax(logits):
    x = np.asarray(logits, np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def random_logits(shape, seed, scale=2.0):
    return np.random.default_rng(seed).normal(scale=scale, size=shape).astype(np.float32)


def _cat_sample(key, logits):
    return distributions.sample(distributions.Categorical(logits), key)


@pytest.mark.parametrize("shape", SHAPES)
def test_log_prob_matches_numpy(shape):
    logits = random_logits(shape, 0)
    rng = np.random.default_rng(1)
    actions = rng.integers(0, shape[-1], size=shape[:-1]).astype(np.int32)
    got = distributions.categorical_log_prob(jnp.asarray(logits), jnp.asarray(actions))
    assert got.shape == shape[:-1] and got.dtype == jnp.float32
    expected = np.take_along_axis(np_log_softmax(logits), actions[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_log_prob_hand_value():
    # logits [0, ln 3] -> probs [1/4, 3/4]; log pi(1) = ln 0.75, log pi(0) = ln 0.25.
    logits = jnp.asarray([[0.0, np.log(3.0)], [0.0, np.log(3.0)]], jnp.float32)
    got = distributions.categorical_log_prob(logits, jnp.asarray([1, 0], jnp.int32))
    np.testing.assert_allclose(got, [np.log(0.75), np.log(0.25)], rtol=1e-6)


def test_log_prob_is_stable_for_large_logits():
    logits = jnp.asarray([1000.0, 0.0, -1000.0], jnp.float32)
    got = distributions.categorical_log_prob(logits, jnp.asarray(1, jnp.int32))
    np.testing.assert_allclose(got, -1000.0, rtol=1e-6)
    assert np.isfinite(float(distributions.categorical_entropy(logits)))


@pytest.mark.parametrize("shape", SHAPES)
def test_entropy_matches_numpy(shape):
    logits = random_logits(shape, 2)
    got = distributions.categorical_entropy(jnp.asarray(logits))
    assert got.shape == shape[:-1]
    log_p = np_log_softmax(logits)
    np.testing.assert_allclose(got, -np.sum(np.exp(log_p) * log_p, axis=-1), rtol=1e-5,
                               atol=1e-6)


def test_entropy_limits():
    # Uniform over A actions: H = ln A; a (nearly) deterministic policy: H ~ 0.
    np.testing.assert_allclose(distributions.categorical_entropy(jnp.zeros((5,))), np.log(5.0),
                               rtol=1e-6)
    np.testing.assert_allclose(
        distributions.categorical_entropy(jnp.asarray([50.0, 0.0, 0.0])), 0.0, atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_mode_is_argmax(shape):
    logits = random_logits(shape, 3)
    got = distributions.categorical_mode(jnp.asarray(logits))
    assert got.shape == shape[:-1] and got.dtype == jnp.int32
    np.testing.assert_array_equal(got, np.argmax(logits, axis=-1))


@pytest.mark.parametrize("shape", SHAPES)
def test_sample_shape_dtype_range(shape):
    a = _cat_sample(jax.random.key(0), jnp.asarray(random_logits(shape, 4)))
    assert a.shape == shape[:-1] and a.dtype == jnp.int32
    assert np.all((np.asarray(a) >= 0) & (np.asarray(a) < shape[-1]))


def test_sample_frequencies_match_softmax():
    # One row of logits broadcast to many independent draws.
    logits = np.array([1.0, 0.0, -1.0, 2.0, 0.5], np.float32)
    draws = 100_000
    batch = jnp.broadcast_to(jnp.asarray(logits), (draws, logits.shape[0]))
    a = np.asarray(_cat_sample(jax.random.key(7), batch))
    freq = np.bincount(a, minlength=logits.shape[0]) / draws
    probs = np.exp(np_log_softmax(logits))
    # Standard error <= sqrt(0.25 / 1e5) ~ 0.0016; allow ~5 standard errors.
    np.testing.assert_allclose(freq, probs, atol=0.008)


def test_sample_per_row_distribution_in_batch():
    # Two rows with opposite preferences in a [T, B, A] batch: each row's samples follow its
    # own logits (a sampler that mixed up rows or axes would fail).
    logits = np.array([[4.0, 0.0, 0.0], [0.0, 0.0, 4.0]], np.float32)  # [B=2, A=3]
    batch = jnp.broadcast_to(jnp.asarray(logits), (20_000, 2, 3))  # [T, B, A]
    a = np.asarray(_cat_sample(jax.random.key(8), batch))
    assert a.shape == (20_000, 2)
    probs = np.exp(np_log_softmax(logits))
    for b in range(2):
        freq = np.bincount(a[:, b], minlength=3) / a.shape[0]
        np.testing.assert_allclose(freq, probs[b], atol=0.015)


def test_two_keys_give_different_samples():
    logits = jnp.zeros((64, 4))
    a = _cat_sample(jax.random.key(0), logits)
    b = _cat_sample(jax.random.key(1), logits)
    assert not np.array_equal(np.asarray(a), np.asarray(b))


def test_jit_and_vmap():
    logits = jnp.asarray(random_logits((3, 4, 6), 9))
    actions = distributions.categorical_mode(logits)
    f = jax.jit(jax.vmap(distributions.categorical_log_prob))
    np.testing.assert_allclose(f(logits, actions),
                               distributions.categorical_log_prob(logits, actions), rtol=1e-6)


# --- diagonal Gaussian, against scipy.stats ---------------------------------------------------


def test_gaussian_log_prob_and_entropy_match_scipy():
    from scipy import stats

    rng = np.random.default_rng(3)
    mean = rng.normal(size=(5, 3)).astype(np.float32)
    log_std = rng.normal(scale=0.5, size=(5, 3)).astype(np.float32)
    action = rng.normal(scale=2.0, size=(5, 3)).astype(np.float32)
    dist = distributions.Gaussian(jnp.asarray(mean), jnp.asarray(log_std))
    expected = stats.norm.logpdf(action, mean, np.exp(log_std)).sum(-1)
    np.testing.assert_allclose(distributions.log_prob(dist, jnp.asarray(action)), expected,
                               rtol=1e-5, atol=1e-5)
    expected_h = stats.norm.entropy(mean, np.exp(log_std)).sum(-1)
    np.testing.assert_allclose(distributions.entropy(dist), expected_h, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(distributions.mode(dist), mean)


def test_gaussian_log_std_broadcasts():
    mean = jnp.zeros((4, 2))
    dist = distributions.Gaussian(mean, jnp.asarray([0.0, -1.0]))
    assert distributions.entropy(dist).shape == (4,)
    assert distributions.log_prob(dist, mean).shape == (4,)
    assert distributions.sample(dist, jax.random.key(0)).shape == (4, 2)


def test_gaussian_samples_have_the_right_moments():
    mean = jnp.asarray([1.0, -2.0])
    log_std = jnp.log(jnp.asarray([0.5, 3.0]))
    dist = distributions.Gaussian(jnp.broadcast_to(mean, (200_000, 2)),
                                  jnp.broadcast_to(log_std, (200_000, 2)))
    a = np.asarray(distributions.sample(dist, jax.random.key(0)))
    np.testing.assert_allclose(a.mean(0), [1.0, -2.0], atol=0.03)
    np.testing.assert_allclose(a.std(0), [0.5, 3.0], rtol=0.02)
    # The log-probability of a sample is that of the sample itself, whatever its clipping.
    lp = distributions.log_prob(dist, jnp.asarray(a))
    assert np.isfinite(np.asarray(lp)).all()


def test_gaussian_log_prob_gradient_matches_hand_derivation():
    # d/dmean log N(a; m, s) = (a - m) / s^2;  d/dlog_std = ((a - m)/s)^2 - 1.
    m, ls, a = 0.3, -0.4, 1.1
    g_m, g_ls = jax.grad(lambda m_, ls_: distributions.gaussian_log_prob(
        jnp.asarray([m_]), jnp.asarray([ls_]), jnp.asarray([a])), argnums=(0, 1))(m, ls)
    s = np.exp(ls)
    np.testing.assert_allclose(g_m, (a - m) / s**2, rtol=1e-5)
    np.testing.assert_allclose(g_ls, ((a - m) / s) ** 2 - 1.0, rtol=1e-5)


def test_categorical_dispatch_matches_the_plain_functions():
    logits = jnp.asarray(random_logits((4, 5), 7))
    dist = distributions.Categorical(logits)
    action = jnp.asarray([0, 1, 4, 2], jnp.int32)
    np.testing.assert_array_equal(distributions.log_prob(dist, action),
                                  distributions.categorical_log_prob(logits, action))
    np.testing.assert_array_equal(distributions.entropy(dist),
                                  distributions.categorical_entropy(logits))
    np.testing.assert_array_equal(distributions.mode(dist),
                                  distributions.categorical_mode(logits))


# --- noise drawn ahead ----------------------------------------------------------------------


def test_sample_matches_jax_random_for_the_same_key():
    """`sample` (`sample_with_noise` of `draw_noise`) draws what ``jax.random.categorical``
    and ``mean + std * jax.random.normal`` draw from the same key."""
    key = jax.random.key(3)
    logits = jnp.asarray(random_logits((50, 6), 4))
    np.testing.assert_array_equal(
        distributions.sample(distributions.Categorical(logits), key),
        jax.random.categorical(key, logits, axis=-1))
    mean, log_std = jnp.ones((50, 2)), jnp.full((2,), -0.5)
    np.testing.assert_allclose(
        distributions.sample(distributions.Gaussian(mean, log_std), key),
        mean + np.exp(-0.5) * jax.random.normal(key, (50, 2)), rtol=1e-6)


def test_noise_drawn_for_many_steps_gives_softmax_frequencies_per_step():
    """Noise ``[T, B, A]`` drawn in one call: every step's samples follow the logits."""
    logits = jnp.asarray([1.0, 0.0, -1.0, 2.0], jnp.float32)
    noise = distributions.draw_noise(jax.random.key(11), True, (4, 25_000, 4))
    dist = distributions.Categorical(jnp.broadcast_to(logits, noise.shape))
    a = np.asarray(distributions.sample_with_noise(dist, noise))
    probs = np.exp(np_log_softmax(np.asarray(logits)))
    for t in range(4):
        np.testing.assert_allclose(np.bincount(a[t], minlength=4) / a.shape[1], probs,
                                   atol=0.015)
    assert not np.array_equal(a[0], a[1])  # the steps' noise differs


# --- gSDE ------------------------------------------------------------------------------------


def _gsde_case(seed=0, batch=3, features=4, d=2):
    rng = np.random.default_rng(seed)
    phi = rng.normal(size=(batch, features)).astype(np.float32)
    log_std = rng.normal(-0.5, 0.4, (features, d)).astype(np.float32)
    mean = rng.normal(size=(batch, d)).astype(np.float32)
    dist = distributions.StateDependentGaussian(
        jnp.asarray(mean), distributions.gsde_log_std(jnp.asarray(phi), jnp.asarray(log_std)),
        jnp.asarray(phi), jnp.asarray(log_std))
    return dist, phi, log_std, mean


def test_gsde_log_prob_is_the_density_of_the_linear_gaussian_map():
    # a = mean + phi @ theta with vec(theta) ~ N(0, diag(exp(2 l))): a = mean + A vec(theta),
    # so a ~ N(mean, A Sigma A^T). Built as a full covariance (no independence assumed) and
    # scored with scipy's multivariate normal.
    from scipy import stats

    dist, phi, log_std, mean = _gsde_case()
    features, d = log_std.shape
    rng = np.random.default_rng(5)
    actions = mean + rng.normal(size=mean.shape).astype(np.float32)
    got = distributions.log_prob(dist, jnp.asarray(actions))
    for b in range(len(phi)):
        a_map = np.zeros((d, features * d))  # vec(theta) index i * d + j
        for i in range(features):
            for j in range(d):
                a_map[j, i * d + j] = phi[b, i]
        cov = a_map @ np.diag(np.exp(2.0 * log_std.reshape(-1))) @ a_map.T + 1e-6 * np.eye(d)
        want = stats.multivariate_normal(mean[b], cov).logpdf(actions[b])
        np.testing.assert_allclose(float(got[b]), want, rtol=1e-4, atol=1e-4)
        ent = stats.multivariate_normal(mean[b], cov).entropy()
        np.testing.assert_allclose(float(distributions.entropy(dist)[b]), ent, rtol=1e-4)


def test_gsde_samples_have_the_marginal_covariance():
    dist, phi, log_std, mean = _gsde_case(seed=2, batch=1)
    n = 200_000
    many = jax.tree.map(lambda x: jnp.broadcast_to(x[0], (n, *x.shape[1:]))
                        if x.shape[0] == 1 else x, dist)
    noise = jax.random.normal(jax.random.key(0), (n, *phi.shape[1:], mean.shape[-1]))
    actions = np.asarray(distributions.sample_with_noise(many, noise))
    np.testing.assert_allclose(actions.mean(0), mean[0], atol=0.02)
    std = np.exp(np.asarray(dist.log_std[0]))
    np.testing.assert_allclose(actions.std(0), std, rtol=0.02)
    # Independent across action dimensions given the state.
    assert abs(np.corrcoef(actions.T)[0, 1]) < 0.01
    # The same exploration matrix at two states gives correlated, state-dependent noise.
    dist, phi, log_std, mean = _gsde_case(seed=4, batch=3)
    theta_noise = np.asarray(noise[0])
    a = distributions.sample_with_noise(dist, jnp.broadcast_to(theta_noise, (3, *noise.shape[1:])))
    expected = mean + phi @ (np.exp(log_std) * theta_noise)
    np.testing.assert_allclose(np.asarray(a), expected, rtol=1e-5, atol=1e-5)


def test_gsde_mode_and_keyed_sample():
    dist, _, _, mean = _gsde_case(seed=3)
    np.testing.assert_array_equal(np.asarray(distributions.mode(dist)), mean)
    a = distributions.sample(dist, jax.random.key(1))
    b = distributions.sample(dist, jax.random.key(2))
    assert a.shape == mean.shape and not np.allclose(a, b)


# --- action masks ----------------------------------------------------------------------------


def test_masked_categorical_is_the_renormalised_distribution_over_allowed_actions():
    """log pi, the entropy and the mode of the masked categorical against numpy's softmax
    over the allowed actions only (a brute-force reference)."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 5)).astype(np.float32) * 2
    mask = rng.random((6, 5)) < 0.6
    mask[:, 0] |= ~mask.any(-1)  # at least one allowed action per row
    dist = distributions.masked(distributions.Categorical(jnp.asarray(logits)),
                                jnp.asarray(mask))
    for i in range(6):
        allowed = np.flatnonzero(mask[i])
        z = logits[i, allowed] - logits[i, allowed].max()
        p = np.exp(z) / np.exp(z).sum()
        for j, a in enumerate(allowed):
            np.testing.assert_allclose(
                distributions.log_prob(jax.tree.map(lambda x: x[i], dist), jnp.asarray(a)),
                np.log(p[j]), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(distributions.entropy(jax.tree.map(lambda x: x[i], dist)),
                                   -(p * np.log(p)).sum(), rtol=1e-5, atol=1e-6)
        assert int(distributions.mode(jax.tree.map(lambda x: x[i], dist))) == \
            allowed[np.argmax(logits[i, allowed])]
    assert np.isfinite(np.asarray(distributions.entropy(dist))).all()
    # No mask: the distribution itself.
    plain = distributions.Categorical(jnp.asarray(logits))
    assert distributions.masked(plain, None) is plain


def test_masked_actions_are_never_sampled():
    logits = jnp.zeros((4000, 4))
    mask = jnp.asarray([True, False, True, False])
    dist = distributions.masked(distributions.Categorical(logits), mask)
    a = np.asarray(distributions.sample(dist, jax.random.key(0)))
    assert set(np.unique(a)) == {0, 2}
    assert abs((a == 0).mean() - 0.5) < 0.05  # uniform over the two allowed ones
    # The gradient of log pi reaches only the allowed logits.
    grad = jax.grad(lambda lg: distributions.log_prob(
        distributions.masked(distributions.Categorical(lg), mask), jnp.asarray(2)))(
            jnp.zeros((4,)))
    np.testing.assert_allclose(np.asarray(grad), [-0.5, 0.0, 0.5, 0.0], atol=1e-6)


class DistributionVariants(chex.TestCase):
    """log_prob, entropy and the sample of a given noise, jitted and not, against numpy;
    shape asserts at the boundary."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_categorical_and_gaussian_match_numpy(self):
        rng = np.random.default_rng(1)
        logits = rng.normal(size=(3, 4)).astype(np.float32)
        action = np.asarray([0, 3, 1], np.int32)
        log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        dist = distributions.Categorical(jnp.asarray(logits))
        chex.assert_trees_all_close(self.variant(distributions.log_prob)(dist, action),
                                    log_p[np.arange(3), action], rtol=1e-5)
        chex.assert_trees_all_close(self.variant(distributions.entropy)(dist),
                                    -(np.exp(log_p) * log_p).sum(-1), rtol=1e-5)
        noise = rng.gumbel(size=(3, 4)).astype(np.float32)
        chex.assert_trees_all_equal(self.variant(distributions.sample_with_noise)(dist, noise),
                                    np.argmax(logits + noise, -1).astype(np.int32))
        mean, log_std = rng.normal(size=(3, 2)).astype(np.float32), np.float32(-0.5)
        gauss = distributions.Gaussian(jnp.asarray(mean), jnp.full((3, 2), log_std))
        a = rng.normal(size=(3, 2)).astype(np.float32)
        expected = (-0.5 * ((a - mean) / np.exp(log_std)) ** 2 - log_std
                    - 0.5 * np.log(2 * np.pi)).sum(-1)
        chex.assert_trees_all_close(self.variant(distributions.log_prob)(gauss, a), expected,
                                    rtol=1e-5)

    def test_an_action_of_the_wrong_shape_is_refused(self):
        dist = distributions.Categorical(jnp.zeros((3, 4)))
        with pytest.raises(AssertionError):
            distributions.log_prob(dist, jnp.zeros((3, 1), jnp.int32))
        with pytest.raises(AssertionError):
            distributions.sample_with_noise(dist, jnp.zeros((3, 5)))
        gauss = distributions.Gaussian(jnp.zeros((3, 2)), jnp.zeros((3, 2)))
        with pytest.raises(AssertionError):
            distributions.log_prob(gauss, jnp.zeros((3,)))
