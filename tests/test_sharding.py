"""Seeds and sweeps sharded over devices give what the unsharded vmap gives.

This process keeps one CPU device (as the rest of the suite). Several devices are forced in
a subprocess (``XLA_FLAGS=--xla_force_host_platform_device_count=4``, read when jax is
imported), and several processes are joined with ``jax.distributed.initialize`` by
benchmarks/multihost.py. Their results are compared here with ``jax.vmap(train)`` computed in
this process: the per-run programs differ only in their batch size, so floats agree to
rounding (rtol 1e-4), not bitwise.
"""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purea2c
from purea2c.config import Config
from purea2c.sharding import default_mesh, gather, swept_leaves, train_sharded

ROOT = pathlib.Path(__file__).resolve().parents[1]
SMALL = Config(num_envs=4, rollout_length=8, n_step=3, buffer_capacity=64, batch_size=16,
               num_passes=2, total_timesteps=32 * 6)
SMALL_JSON = json.dumps(dict(num_envs=4, rollout_length=8, n_step=3, buffer_capacity=64,
                             batch_size=16, num_passes=2, total_timesteps=32 * 6))
S = 8
KEYS = jax.random.split(jax.random.key(0), S)
LRS = np.geomspace(3e-4, 3e-3, S).astype(np.float32)


def _assert_close(actual_leaves, expected_tree):
    expected = jax.tree.leaves(gather(expected_tree))
    assert len(actual_leaves) == len(expected)
    for i, (a, b) in enumerate(zip(actual_leaves, expected)):
        assert a.shape == b.shape, i
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=f"leaf {i}")


def _env(devices: int) -> dict:
    return dict(os.environ, JAX_PLATFORMS="cpu",
                XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")


@pytest.fixture(scope="module")
def seeds_reference():
    return jax.jit(jax.vmap(purea2c.train, in_axes=(0, None)))(KEYS, SMALL)


@pytest.fixture(scope="module")
def sweep_reference():
    def one(key, lr):
        return purea2c.train(key, SMALL.replace(pi_learning_rate=lr))
    return jax.jit(jax.vmap(one))(KEYS, jnp.asarray(LRS))


def test_one_device_matches_vmap(seeds_reference):
    out = train_sharded(KEYS, SMALL)
    assert out.metrics.episode_return.shape == (S, SMALL.num_iterations)
    assert out.metrics.value_loss.sharding.spec[0] == "seeds"
    _assert_close(jax.tree.leaves(gather(out)), seeds_reference)
    # typed keys come back typed, as from vmap(train)
    assert jax.dtypes.issubdtype(out.state.key.dtype, jax.dtypes.prng_key)


def test_swept_leaves_and_their_length():
    assert not any(swept_leaves(SMALL, S))
    flags = swept_leaves(SMALL.replace(pi_learning_rate=jnp.asarray(LRS)), S)
    assert sum(flags) == 1
    with pytest.raises(ValueError, match=r"Config.pi_learning_rate has shape \(3,\).*S=8"):
        train_sharded(KEYS, SMALL.replace(pi_learning_rate=jnp.ones(3)))


def test_bad_keys_and_axis_are_refused():
    with pytest.raises(ValueError, match="keys must be"):
        train_sharded(jax.random.key(0), SMALL)
    with pytest.raises(ValueError, match="mesh has no axis 'runs'"):
        train_sharded(KEYS, SMALL, default_mesh("seeds"), axis="runs")


FOUR_DEVICES = textwrap.dedent("""
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    from purea2c.config import Config
    from purea2c.sharding import gather, train_sharded
    assert jax.device_count() == 4, jax.devices()
    config = Config(**json.loads(sys.argv[1]))
    keys = jax.random.split(jax.random.key(0), 8)
    lrs = jnp.asarray(np.geomspace(3e-4, 3e-3, 8).astype(np.float32))
    seeds = train_sharded(keys, config)
    sweep = train_sharded(keys, config.replace(pi_learning_rate=lrs))
    rows = sorted({shard.device.id: shard.data.shape[0]
                   for shard in seeds.metrics.value_loss.addressable_shards}.items())
    try:
        train_sharded(keys[:6], config)
        uneven = None
    except ValueError as err:
        uneven = str(err)
    np.savez(sys.argv[2] + "/seeds.npz", *jax.tree.leaves(gather(seeds)))
    np.savez(sys.argv[2] + "/sweep.npz", *jax.tree.leaves(gather(sweep)))

    # One agent over the 4 devices: 8 envs, 2 per device.
    from purea2c import sharding, training
    dp_config = config.replace(num_envs=8, batch_size=32, total_timesteps=64 * 6,
                               normalize_obs=True, normalize_reward=True)
    dp = sharding.train_data_parallel(jax.random.key(0), dp_config)
    identical = all(
        all(np.asarray(leaf.addressable_shards[0].data).tobytes() == np.asarray(s.data).tobytes()
            for s in leaf.addressable_shards)
        for leaf in jax.tree.leaves((dp.state.params, dp.state.opt_state, dp.metrics)))
    try:
        sharding.train_data_parallel(jax.random.key(0), dp_config.replace(num_envs=6,
                                                                            batch_size=30))
        dp_uneven = None
    except ValueError as err:
        dp_uneven = str(err)

    # The pmean'ed gradient of 4 shards is the gradient of their concatenation.
    import optax
    from jax.sharding import PartitionSpec as P
    w = jnp.asarray(np.random.default_rng(0).normal(size=(3,)), jnp.float32)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(16, 3)), jnp.float32)
    loss = lambda x: (lambda w: (jnp.mean(jnp.tanh(x @ w) ** 2), 0.0))
    opt = optax.adam(1e-2)
    whole = training.optimizer_step(opt, w, opt.init(w), loss(x))
    mesh = jax.make_mesh((4,), ("data",))
    split = jax.jit(jax.shard_map(
        lambda xs: training.optimizer_step(opt, w, opt.init(w), loss(xs), "data").params,
        mesh=mesh, in_specs=P("data"), out_specs=P(), check_vma=False))(
        jax.device_put(x, jax.sharding.NamedSharding(mesh, P("data"))))
    print(json.dumps({"rows": rows, "axis": seeds.metrics.value_loss.sharding.spec[0],
                      "uneven": uneven, "dp_identical": identical,
                      "dp_env_steps": np.asarray(dp.metrics.env_steps).tolist(),
                      "dp_obs_count": float(dp.state.params.obs_norm.count),
                      "dp_buffer_shape": list(dp.state.buffer.data.obs.shape),
                      "dp_finite": bool(np.all(dp.metrics.finite)), "dp_uneven": dp_uneven,
                      "grad_diff": float(jnp.max(jnp.abs(whole.params - split)))}))
""")


def _load(path: pathlib.Path) -> list[np.ndarray]:
    with np.load(path) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    out = tmp_path_factory.mktemp("four_devices")
    proc = subprocess.run([sys.executable, "-c", FOUR_DEVICES, SMALL_JSON, str(out)],
                          env=_env(4), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out, json.loads(proc.stdout.strip().splitlines()[-1])


def test_four_devices_shard_the_seeds(four_devices):
    _, info = four_devices
    assert info["rows"] == [[0, 2], [1, 2], [2, 2], [3, 2]]  # S / 4 runs on each device
    assert info["axis"] == "seeds"


def test_four_devices_match_vmap_over_seeds(four_devices, seeds_reference):
    out, _ = four_devices
    _assert_close(_load(out / "seeds.npz"), seeds_reference)


def test_four_devices_match_vmap_over_a_sweep(four_devices, sweep_reference, seeds_reference):
    out, _ = four_devices
    _assert_close(_load(out / "sweep.npz"), sweep_reference)
    # the sweep did change the runs (negative control)
    swept = _load(out / "sweep.npz")
    seeds = jax.tree.leaves(gather(seeds_reference))
    assert not all(np.allclose(a, b) for a, b in zip(swept, seeds))


def test_uneven_seeds_are_refused(four_devices):
    _, info = four_devices
    assert info["uneven"] == (
        "S=6 runs cannot be sharded over the 4 devices of mesh axis 'seeds': S must be a "
        "multiple of the device count (each device trains S / 4 runs); pass 8 keys, or a "
        "mesh whose axis size divides 6")


def test_two_processes_match_one(tmp_path, seeds_reference):
    """Two local processes of two CPU devices each, joined over 127.0.0.1 (gloo), train the
    8 seeds over one global mesh; process 0 writes the gathered metrics."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "multihost.py"), "--spawn", "2",
         "--local-devices", "2", "--seeds", str(S), "--config", SMALL_JSON,
         "--out", str(tmp_path), "--timeout", "240"],
        env=_env(1), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run = json.loads((tmp_path / "run.json").read_text())
    assert (run["processes"], run["devices"]) == (2, 4)
    with np.load(tmp_path / "metrics.npz") as data:
        for name, expected in seeds_reference.metrics._asdict().items():
            np.testing.assert_allclose(data[name], expected, rtol=1e-4, atol=1e-5,
                                       err_msg=name)


def test_one_device_data_parallel_is_train():
    from purea2c import sharding

    config = SMALL.replace(normalize_obs=True)
    out = sharding.train_data_parallel(jax.random.key(0), config)
    ref = purea2c.train(jax.random.key(0), config)
    _assert_close(jax.tree.leaves(out.state.params), ref.state.params)
    _assert_close(jax.tree.leaves(out.metrics), ref.metrics)


def test_four_devices_train_one_agent_with_identical_parameters(four_devices):
    _, info = four_devices
    assert info["dp_identical"], "a device's parameters, optimizer state or metrics differ"
    assert info["dp_finite"]
    # 8 envs x 8 steps per iteration over all devices; the statistics count all of them.
    assert info["dp_env_steps"] == [64 * i for i in range(1, 7)]
    assert info["dp_obs_count"] == 64 * 6
    assert info["dp_buffer_shape"] == [4, 16, 4]  # per device: 64 / 4 CartPole transitions
    assert info["dp_uneven"].startswith("Config.num_envs=6 cannot be split over 4 devices")


def test_four_devices_average_gradients_exactly(four_devices):
    _, info = four_devices
    assert info["grad_diff"] < 1e-6


def test_cli_shards_seeds_over_local_devices(tmp_path):
    """`purea2c train --seeds 8` with 4 devices puts 2 seeds on each, and trains what
    vmap(train) trains on one device (to rounding)."""
    proc = subprocess.run(
        [sys.executable, "-m", "purea2c", "--seeds", "8", "--total-timesteps", "2048",
         "--out", str(tmp_path / "run"), "--no-progress", "--eval-episodes", "0"],
        env=_env(4), capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "8 seeds sharded over 4 devices" in proc.stdout
    from purea2c import flags

    config = flags.make_config(None, {"total_timesteps": 2048})  # with the env's preset
    keys = jax.random.split(jax.random.key(0), 8)
    expected = jax.jit(jax.vmap(purea2c.train, in_axes=(0, None)))(keys, config).metrics
    import csv

    with open(tmp_path / "run" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 * config.num_iterations
    for row in rows:
        it, seed = int(row["iteration"]) - 1, int(row["seed"])
        for name in ("episode_return", "value_loss", "policy_loss"):
            np.testing.assert_allclose(float(row[name]), expected._asdict()[name][seed, it],
                                       rtol=1e-3, atol=1e-4, err_msg=f"{name} {row}")


def test_a_suite_with_pytree_observations_shards_its_seeds():
    """Jumanji's Game2048 (dict observations with an action mask, the env's own key in its
    state) with its seeds sharded over this process's device: the same as vmap(train)."""
    config = Config(env="jumanji/Game2048-v1", num_envs=4, rollout_length=8, n_step=3,
                    buffer_capacity=64, batch_size=16, total_timesteps=64)
    keys = KEYS[:2]
    ref = jax.jit(jax.vmap(purea2c.train, in_axes=(0, None)))(keys, config)
    _assert_close(jax.tree.leaves(gather(train_sharded(keys, config))), ref)
