"""checkpoint.py: bitwise round trips of a whole TrainState, atomic saves, clear mismatches."""

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
from purea2c import checkpoint

CONFIG = purea2c.Config(total_timesteps=1024)
SEEDS = 2
_init = jax.jit(jax.vmap(purea2c.init, in_axes=(0, None)))
_run = jax.jit(jax.vmap(purea2c.run, in_axes=(0, None, None)), static_argnums=2)


def _bits(x):
    """dtype, shape and raw bytes of an array (key arrays by their key data)."""
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return ("key", str(jax.random.key_impl(x)), _bits(jax.random.key_data(x)))
    x = np.asarray(x)
    return (str(x.dtype), x.shape, x.tobytes())


def assert_bitwise_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for (path, x), y in zip(jax.tree_util.tree_flatten_with_path(a)[0], jax.tree.leaves(b)):
        assert _bits(x) == _bits(y), jax.tree_util.keystr(path)


@pytest.fixture(scope="module")
def state():
    keys = jax.random.split(jax.random.key(3), SEEDS)
    s = _init(keys, CONFIG)
    # init's output has a weak-typed leaf, run's has not: strip it so one program serves all.
    s = jax.tree.map(lambda x: x if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
                     else jnp.array(x, dtype=x.dtype), s)
    s, _ = _run(s, CONFIG, 2)  # a state with a filled buffer and a moved optimizer
    return s


def _like():
    return jax.eval_shape(_init, jax.random.split(jax.random.key(0), SEEDS), CONFIG)


def test_round_trip_is_bitwise_and_keeps_the_key_type(state, tmp_path):
    path = checkpoint.save(tmp_path, state, step=2, metadata={"note": "x"})
    assert path == tmp_path / "2" and (path / "meta.json").is_file()
    restored = checkpoint.restore(tmp_path, _like())
    assert_bitwise_equal(state, restored)
    assert jax.dtypes.issubdtype(restored.key.dtype, jax.dtypes.prng_key)
    assert checkpoint.load_metadata(tmp_path) == {"note": "x"}
    assert checkpoint.latest_step(tmp_path) == 2


def test_restored_state_continues_exactly(state, tmp_path):
    checkpoint.save(tmp_path, state, step=2)
    restored = checkpoint.restore(tmp_path, _like())
    a, metrics_a = _run(state, CONFIG, 2)  # the fixture's program, already compiled
    b, metrics_b = _run(restored, CONFIG, 2)
    assert_bitwise_equal(a, b)
    assert_bitwise_equal(metrics_a, metrics_b)


def test_public_names_and_relative_paths(state, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    purea2c.save_checkpoint("ckpt", state, 7)
    assert purea2c.latest_checkpoint_step("ckpt") == 7
    assert_bitwise_equal(state, purea2c.restore_checkpoint("ckpt", _like(), step=7))
    assert_bitwise_equal(state, purea2c.restore_checkpoint(tmp_path / "ckpt", _like()))


def test_mismatched_structure_names_the_leaves(state, tmp_path):
    checkpoint.save(tmp_path, state, step=2)
    other = CONFIG.replace(hidden_sizes=(32,))
    like = jax.eval_shape(_init, jax.random.split(jax.random.key(0), SEEDS), other)
    with pytest.raises(ValueError, match=r"(?s)does not match.*in the checkpoint but not"):
        checkpoint.restore(tmp_path, like)
    one_seed = jax.eval_shape(purea2c.init, jax.random.key(0), CONFIG)
    with pytest.raises(ValueError, match=r"env_steps: checkpoint int32\[2\], expected int32\[\]"):
        checkpoint.restore(tmp_path, one_seed)


def test_generic_pytrees_with_empty_nodes_and_zero_size_leaves(tmp_path):
    tree = {
        "a": np.arange(6, dtype=np.int16).reshape(2, 3),
        "empty": jnp.zeros((0, 4), jnp.float32),
        "nested": [jnp.array(True), (), None, {"k": jax.random.split(jax.random.key(1), 3)}],
        "scalar": jnp.float32(np.pi),
    }
    checkpoint.save(tmp_path, tree, step=0)
    like = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), tree)
    restored = checkpoint.restore(tmp_path, like)
    assert_bitwise_equal(tree, restored)
    raw = checkpoint.restore(tmp_path)  # no `like`: nested dict, keys as raw data
    np.testing.assert_array_equal(raw["a"], tree["a"])
    assert raw["nested"]["3"]["k"].dtype == np.uint32 and raw["empty"].shape == (0, 4)


def test_keep_and_overwrite(tmp_path):
    for step in range(4):
        checkpoint.save(tmp_path, {"x": jnp.full((2,), step)}, step, keep=2)
    assert checkpoint.all_steps(tmp_path) == [2, 3]
    with pytest.raises(FileExistsError):
        checkpoint.save(tmp_path, {"x": jnp.zeros(2, jnp.int32)}, 3)
    checkpoint.save(tmp_path, {"x": jnp.full((2,), 9)}, 3, overwrite=True)
    like = {"x": jax.ShapeDtypeStruct((2,), jnp.int32)}
    np.testing.assert_array_equal(checkpoint.restore(tmp_path, like)["x"], [9, 9])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2", "3"]


def test_failed_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    checkpoint.save(tmp_path, {"x": jnp.arange(3)}, 1)

    def broken_rename(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.os, "rename", broken_rename)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(tmp_path, {"x": jnp.arange(3) + 10}, 2)
    monkeypatch.undo()
    assert checkpoint.all_steps(tmp_path) == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1"]  # the temporary is gone
    like = {"x": jax.ShapeDtypeStruct((3,), jnp.int32)}
    np.testing.assert_array_equal(checkpoint.restore(tmp_path, like)["x"], [0, 1, 2])


# Where the process dies: in orbax's commit (os.rename of its temporary "2.orbax-checkpoint-
# tmp" to "2"), or after it, as meta.json is put in place (os.replace); and the debris left.
_KILL_POINTS = {
    "in orbax's commit": ("rename", "2", lambda names: names and all(
        n.startswith("2.orbax-checkpoint-tmp") for n in names)),
    "before meta.json": ("replace", "meta.json", lambda names: names == ["2"]),
}


@pytest.mark.parametrize("point", list(_KILL_POINTS))
def test_process_killed_mid_save_never_corrupts_the_last_checkpoint(tmp_path, point):
    """A process saves step 1, then is SIGKILLed while writing step 2 (after the array files
    are written, before the checkpoint is complete). Step 1 stays the latest, intact; the
    next save cleans up the debris."""
    function, destination, is_debris = _KILL_POINTS[point]
    script = textwrap.dedent(f"""
        import os, signal
        import jax.numpy as jnp
        from purea2c import checkpoint
        checkpoint.save({str(tmp_path)!r}, {{"x": jnp.arange(1000.0)}}, 1)
        original = os.{function}
        def die(src, dst, **kwargs):
            if os.path.basename(dst) == {destination!r}:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(src, dst, **kwargs)
        os.{function} = die
        checkpoint.save({str(tmp_path)!r}, {{"x": jnp.arange(1000.0) * 2}}, 2)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -9, proc.stderr
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != "1")
    assert is_debris(leftovers), leftovers
    assert checkpoint.latest_step(tmp_path) == 1
    like = {"x": jax.ShapeDtypeStruct((1000,), jnp.float32)}
    np.testing.assert_array_equal(checkpoint.restore(tmp_path, like)["x"], np.arange(1000.0))
    _, step, skipped = checkpoint.restore_latest_intact(tmp_path, like)
    assert step == 1 and [s for s, _ in skipped] == ([2] if "2" in leftovers else [])
    checkpoint.save(tmp_path, {"x": jnp.ones(1000)}, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1", "2"]


def test_meta_records_every_leaf(state, tmp_path):
    checkpoint.save(tmp_path, state, step=2)
    meta = json.loads((tmp_path / "2" / "meta.json").read_text())
    names = [leaf["name"] for leaf in meta["leaves"]]
    assert len(names) == len(jax.tree.leaves(state))
    assert {"key", "env_steps", "iteration"} <= set(names)
    assert any(name.startswith("params/pi/") for name in names)
    key_leaf = meta["leaves"][names.index("key")]
    assert key_leaf["key_impl"] == "threefry2x32" and key_leaf["shape"] == [SEEDS, 2]
    assert not any(p.name.startswith(".tmp") for p in pathlib.Path(tmp_path).iterdir())
    assert os.path.isdir(tmp_path / "2" / "state")
