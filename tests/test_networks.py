"""Tests for the policy / value networks and coax's torso synchronisation
(`purea2c.networks`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purea2c import distributions, networks

from helpers import assert_trees_equal

OBS_DIM, NUM_ACTIONS, HIDDEN = 4, 3, (8, 8)


def init_params(seed_pi=0, seed_v=1, activation="tanh"):
    nets = networks.make_networks((OBS_DIM,), True, NUM_ACTIONS, hidden_sizes=HIDDEN,
                                  activation=activation)
    obs = jnp.zeros((1, OBS_DIM))
    return nets, nets.pi.init(jax.random.key(seed_pi), obs), nets.v.init(jax.random.key(seed_v),
                                                                           obs)


def to_numpy(tree):
    return jax.tree.map(lambda x: np.array(x, copy=True), tree)


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.5, 1.0])
def test_sync_torsos_is_weighted_average(weight):
    _, pi_params, v_params = init_params()
    pi_before, v_before = to_numpy(pi_params), to_numpy(v_params)
    new_pi, new_v = networks.sync_torsos(pi_params, v_params, jnp.float32(weight))

    expected_torso = jax.tree.map(lambda p, v: weight * p + (1.0 - weight) * v,
                                  pi_before["params"]["torso"], v_before["params"]["torso"])
    for new in (new_pi, new_v):
        assert jax.tree.structure(new["params"]["torso"]) == jax.tree.structure(expected_torso)
        for x, y in zip(jax.tree.leaves(new["params"]["torso"]),
                        jax.tree.leaves(expected_torso)):
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    # Heads are untouched.
    assert_trees_equal(new_pi["params"]["head"], pi_before["params"]["head"])
    assert_trees_equal(new_v["params"]["head"], v_before["params"]["head"])
    # Inputs are not mutated.
    assert_trees_equal(pi_params, pi_before)
    assert_trees_equal(v_params, v_before)
    # Structure is preserved (the result can be fed back to apply).
    assert jax.tree.structure(new_pi) == jax.tree.structure(pi_params)
    assert jax.tree.structure(new_v) == jax.tree.structure(v_params)


def test_sync_weight_one_gives_pi_torso_and_zero_gives_v_torso():
    _, pi_params, v_params = init_params()
    new_pi, new_v = networks.sync_torsos(pi_params, v_params, 1.0)
    assert_trees_equal(new_pi["params"]["torso"], pi_params["params"]["torso"])
    assert_trees_equal(new_v["params"]["torso"], pi_params["params"]["torso"])
    new_pi, new_v = networks.sync_torsos(pi_params, v_params, 0.0)
    assert_trees_equal(new_pi["params"]["torso"], v_params["params"]["torso"])
    assert_trees_equal(new_v["params"]["torso"], v_params["params"]["torso"])
    # The two torsos were different to start with, so the checks above can fail.
    assert not np.allclose(pi_params["params"]["torso"]["dense_0"]["kernel"],
                           v_params["params"]["torso"]["dense_0"]["kernel"])


def test_sync_is_jittable_with_traced_weight():
    _, pi_params, v_params = init_params()
    sync = jax.jit(networks.sync_torsos)
    a = sync(pi_params, v_params, jnp.float32(0.25))
    b = sync(pi_params, v_params, jnp.float32(0.75))
    assert sync._cache_size() == 1
    k = lambda p: np.asarray(p["params"]["torso"]["dense_1"]["kernel"])  # noqa: E731
    np.testing.assert_allclose(k(a[0]), 0.25 * k(pi_params) + 0.75 * k(v_params), rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_allclose(k(b[1]), 0.75 * k(pi_params) + 0.25 * k(v_params), rtol=1e-5,
                               atol=1e-7)


def test_synced_networks_still_apply():
    nets, pi_params, v_params = init_params()
    new_pi, new_v = networks.sync_torsos(pi_params, v_params, 0.5)
    obs = jnp.ones((2, OBS_DIM))
    assert nets.pi.apply(new_pi, obs).logits.shape == (2, NUM_ACTIONS)
    assert nets.v.apply(new_v, obs).shape == (2,)


@pytest.mark.parametrize("activation", ["tanh", "relu", "gelu", "silu"])
def test_output_shapes(activation):
    nets, pi_params, v_params = init_params(activation=activation)
    obs = jnp.asarray(np.random.default_rng(0).normal(size=(5, OBS_DIM)), jnp.float32)
    logits = nets.pi.apply(pi_params, obs).logits
    value = nets.v.apply(v_params, obs)
    assert logits.shape == (5, NUM_ACTIONS) and value.shape == (5,)
    assert logits.dtype == jnp.float32 and value.dtype == jnp.float32
    assert np.all(np.isfinite(logits)) and np.all(np.isfinite(value))
    # Extra leading dims: [T, B, D] -> [T, B, A] and [T, B].
    obs3 = jnp.zeros((2, 5, OBS_DIM))
    assert nets.pi.apply(pi_params, obs3).logits.shape == (2, 5, NUM_ACTIONS)
    assert nets.v.apply(v_params, obs3).shape == (2, 5)


def test_param_tree_layout():
    _, pi_params, v_params = init_params()
    for params in (pi_params, v_params):
        assert set(params["params"]) == {"torso", "head"}
        assert set(params["params"]["torso"]) == {"dense_0", "dense_1"}
    # Same torso architecture (required for sync), different heads.
    assert (jax.tree.map(jnp.shape, pi_params["params"]["torso"])
            == jax.tree.map(jnp.shape, v_params["params"]["torso"]))
    assert pi_params["params"]["head"]["kernel"].shape == (HIDDEN[-1], NUM_ACTIONS)
    assert v_params["params"]["head"]["kernel"].shape == (HIDDEN[-1], 1)


def test_different_keys_give_different_params():
    nets, a, _ = init_params(seed_pi=0)
    _, b, _ = init_params(seed_pi=1)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        if np.any(np.asarray(x) != 0):  # biases start at zero for every key
            assert not np.allclose(x, y)
    # The same key reproduces the same parameters.
    _, c, _ = init_params(seed_pi=0)
    assert_trees_equal(a, c)


def test_gaussian_head_for_box_actions():
    nets = networks.make_networks((3,), False, 2, hidden_sizes=(8,), log_std_init=-0.5)
    params = nets.pi.init(jax.random.key(0), jnp.zeros((3,)))
    assert params["params"]["log_std"].shape == (2,)
    np.testing.assert_array_equal(params["params"]["log_std"], [-0.5, -0.5])
    dist = nets.pi.apply(params, jnp.ones((4, 3)))
    assert isinstance(dist, distributions.Gaussian)
    assert dist.mean.shape == (4, 2) and dist.log_std.shape == (4, 2)
    np.testing.assert_array_equal(dist.log_std, np.full((4, 2), -0.5, np.float32))
    # The mean depends on the state, the log-std does not.
    other = nets.pi.apply(params, -jnp.ones((4, 3)))
    assert not np.allclose(dist.mean, other.mean)
    # Single observation, no batch axis.
    assert nets.pi.apply(params, jnp.ones((3,))).mean.shape == (2,)


@pytest.mark.parametrize("obs_shape", [(10, 10, 4), (10, 5)])
def test_auto_torso_is_cnn_for_images(obs_shape):
    kind = networks.torso_kind("auto", obs_shape)
    assert kind == ("cnn" if len(obs_shape) == 3 else "mlp")
    nets = networks.make_networks(obs_shape, True, 3, hidden_sizes=(32,), torso="cnn",
                                  cnn_channels=(16, 8))
    obs = jnp.asarray(np.random.default_rng(0).uniform(size=(2, 5, *obs_shape)), jnp.float32)
    pi_params = nets.pi.init(jax.random.key(0), obs[0, 0])
    v_params = nets.v.init(jax.random.key(1), obs[0, 0])
    torso = pi_params["params"]["torso"]
    channels = 1 if len(obs_shape) == 2 else obs_shape[-1]
    assert torso["conv_0"]["kernel"].shape == (3, 3, channels, 16)
    assert torso["conv_1"]["kernel"].shape == (3, 3, 16, 8)
    # 'SAME' padding, stride 1: the dense layer sees H * W * 8 features.
    assert torso["dense_0"]["kernel"].shape == (obs_shape[0] * obs_shape[1] * 8, 32)
    assert nets.pi.apply(pi_params, obs).logits.shape == (2, 5, 3)
    assert nets.v.apply(v_params, obs).shape == (2, 5)
    # A batch gives the same outputs as one observation at a time.
    one = nets.v.apply(v_params, obs[1, 3])
    np.testing.assert_allclose(one, nets.v.apply(v_params, obs)[1, 3], rtol=1e-5, atol=1e-6)
    # Synced CNN torsos stay appliable.
    new_pi, new_v = networks.sync_torsos(pi_params, v_params, 0.5)
    assert nets.v.apply(new_v, obs).shape == (2, 5)


def test_cnn_matches_a_hand_convolution():
    """One 1-channel 3x3 'SAME' convolution, checked against a numpy loop."""
    nets = networks.make_networks((4, 5), True, 2, hidden_sizes=(), torso="cnn",
                                  cnn_channels=(1,), activation="relu")
    obs = np.random.default_rng(1).normal(size=(4, 5)).astype(np.float32)
    params = nets.v.init(jax.random.key(0), jnp.asarray(obs))
    k = np.asarray(params["params"]["torso"]["conv_0"]["kernel"])[:, :, 0, 0]
    b = float(np.asarray(params["params"]["torso"]["conv_0"]["bias"])[0])
    padded = np.pad(obs, 1)
    conv = np.array([[np.sum(padded[i:i + 3, j:j + 3] * k) for j in range(5)] for i in range(4)])
    features = np.maximum(conv + b, 0.0).reshape(-1)
    w = np.asarray(params["params"]["head"]["kernel"])[:, 0]
    expected = features @ w + float(np.asarray(params["params"]["head"]["bias"])[0])
    np.testing.assert_allclose(nets.v.apply(params, jnp.asarray(obs)), expected, rtol=1e-4,
                               atol=1e-5)


@pytest.mark.parametrize("kernel_size, c_in, c_out", [(3, 4, 16), (5, 2, 3), (2, 3, 4)])
def test_patch_conv_equals_lax_convolution(kernel_size, c_in, c_out):
    """The im2col convolution against XLA's own 'SAME' convolution with the same weights."""
    x = jnp.asarray(np.random.default_rng(2).normal(size=(3, 7, 6, c_in)), jnp.float32)
    conv = networks.PatchConv(c_out, kernel_size)
    params = conv.init(jax.random.key(0), x)
    kernel = params["params"]["kernel"]
    bias = jax.random.normal(jax.random.key(1), (c_out,))
    params = {"params": {"kernel": kernel, "bias": bias}}
    expected = jax.lax.conv_general_dilated(
        x, kernel, window_strides=(1, 1), padding="SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC")) + bias.reshape(1, 1, 1, -1)
    np.testing.assert_allclose(conv.apply(params, x), expected, rtol=1e-4, atol=1e-5)


def test_bounds_scaling_maps_finite_bounds_onto_unit_interval():
    low = (-1.2, -0.07, -np.inf, -3.4e38)
    high = (0.6, 0.07, np.inf, 3.4e38)
    center, half = networks.bounds_affine((low, high), (4,))
    x = np.asarray([[-1.2, -0.07, 5.0, -7.0], [0.6, 0.07, -5.0, 7.0], [-0.3, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose((x - center) / half,
                               [[-1, -1, 5, -7], [1, 1, -5, 7], [0, 0, 0, 0]], atol=1e-6)
    # The torso applies it: scaled networks see the rescaled observation.
    plain = networks.make_networks((4,), True, 2, hidden_sizes=(8,))
    scaled = networks.make_networks((4,), True, 2, hidden_sizes=(8,), obs_bounds=(low, high))
    params = plain.v.init(jax.random.key(0), jnp.zeros((4,)))
    obs = jnp.asarray(x, jnp.float32)
    np.testing.assert_allclose(scaled.v.apply(params, obs),
                               plain.v.apply(params, jnp.asarray((x - center) / half,
                                                                 jnp.float32)),
                               rtol=1e-5, atol=1e-6)


def test_pytree_observations_image_leaves_to_the_cnn_the_rest_flattened():
    """The written rule: in a dict observation, (H, W, C) leaves go through convolutions, the
    other leaves are flattened; all are concatenated before the dense layers; an
    "action_mask" leaf never reaches a torso and masks pi's logits."""
    from purea2c.envs import ArraySpec

    spec = {"grid": ArraySpec((4, 3, 2), np.float32), "step": ArraySpec((), np.int32),
            "vec": ArraySpec((5,), np.float32), "action_mask": ArraySpec((3,), bool)}
    nets = networks.make_networks(spec, True, 3, hidden_sizes=(16,), cnn_channels=(8,))
    rng = np.random.default_rng(0)
    obs = {"grid": jnp.asarray(rng.normal(size=(2, 4, 3, 2)), jnp.float32),
           "step": jnp.asarray([3.0, 7.0]),
           "vec": jnp.asarray(rng.normal(size=(2, 5)), jnp.float32),
           "action_mask": jnp.asarray([[True, False, True], [False, False, True]])}
    one = jax.tree.map(lambda x: x[0], obs)
    pi_params = nets.pi.init(jax.random.key(0), one)
    torso = pi_params["params"]["torso"]
    # leaves in tree order (sorted keys without the mask): grid (conv), step, vec
    assert torso["conv0_0"]["kernel"].shape == (3, 3, 2, 8)
    assert torso["dense_0"]["kernel"].shape == (4 * 3 * 8 + 1 + 5, 16)
    dist = nets.pi.apply(pi_params, obs)
    logits = np.asarray(dist.logits)
    assert logits.shape == (2, 3)
    assert (logits[~np.asarray(obs["action_mask"])] <= -1e8).all()
    assert np.asarray(distributions.mode(dist)).tolist() in ([0, 2], [2, 2])
    # The mask changes pi's logits only where it masks, and v not at all.
    v_params = nets.v.init(jax.random.key(1), one)
    open_mask = dict(obs, action_mask=jnp.ones((2, 3), bool))
    np.testing.assert_array_equal(nets.v.apply(v_params, obs), nets.v.apply(v_params, open_mask))
    free = np.asarray(nets.pi.apply(pi_params, open_mask).logits)
    allowed = np.asarray(obs["action_mask"])
    np.testing.assert_array_equal(logits[allowed], free[allowed])
    # A batch gives the same outputs as one observation at a time; sync keeps them appliable.
    np.testing.assert_allclose(nets.v.apply(v_params, one), nets.v.apply(v_params, obs)[0],
                               rtol=1e-5, atol=1e-6)
    new_pi, new_v = networks.sync_torsos(pi_params, v_params, 0.5)
    assert nets.v.apply(new_v, obs).shape == (2,)
    # Flat observations keep their single-array torso ("mlp": every leaf flattened).
    mlp = networks.make_networks(spec, True, 3, hidden_sizes=(16,), torso="mlp")
    params = mlp.v.init(jax.random.key(0), one)
    assert "conv0_0" not in params["params"]["torso"]
    assert params["params"]["torso"]["dense_0"]["kernel"].shape == (24 + 1 + 5, 16)
