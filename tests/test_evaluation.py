"""`make_policy`: a trained policy outside training, checked against the networks directly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purea2c
from purea2c.agent import make_networks


def _random_obs(shape, n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32)


def test_discrete_policy_is_the_argmax_of_pi():
    config = purea2c.Config(env="Acrobot-v1")
    params = purea2c.init(jax.random.key(0), config).params
    _, _, nets = make_networks(config)
    obs = _random_obs((6,), 7) * 3
    logits = np.asarray(nets.pi.apply(params.pi, jnp.asarray(obs)).logits)
    policy = purea2c.make_policy(config, params)
    np.testing.assert_array_equal(policy(obs), logits.argmax(-1))  # a batch
    assert int(policy(obs[3])) == int(logits[3].argmax())  # one observation
    assert policy(obs[3]).shape == ()
    with pytest.raises(ValueError, match=r"expected \(6,\)"):
        policy(obs[:, :4])


def test_box_policy_is_the_clipped_mean_and_samples_need_a_key():
    config = purea2c.Config.preset("Pendulum-v1", log_std_init=1.0)
    params = purea2c.init(jax.random.key(0), config).params
    # Push the mean far outside [-2, 2] so that clipping shows.
    params.pi["params"]["head"]["bias"] = jnp.asarray([5.0])
    _, _, nets = make_networks(config)
    obs = _random_obs((3,), 4)
    mean = np.asarray(nets.pi.apply(params.pi, jnp.asarray(obs)).mean)
    assert (mean > 2.0).all()
    greedy = purea2c.make_policy(config, params)
    np.testing.assert_array_equal(greedy(obs), np.full((4, 1), 2.0, np.float32))
    fresh = purea2c.init(jax.random.key(0), config).params  # mean near 0, std e
    sampling = purea2c.make_policy(config, fresh, greedy=False)
    with pytest.raises(ValueError, match="needs a key"):
        sampling(obs)
    a = np.asarray(sampling(obs, jax.random.key(1)))
    b = np.asarray(sampling(obs, jax.random.key(2)))
    assert a.shape == (4, 1) and (np.abs(a) <= 2.0).all() and (np.abs(b) <= 2.0).all()
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, np.asarray(sampling(obs, jax.random.key(1))))
