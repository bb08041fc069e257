"""checkpoint.py: bitwise round trips of a whole TrainState, atomic saves, clear mismatches."""

import json
import os
import re
import shutil
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
from purea2c.run_loop import strip_weak_types

from helpers import assert_trees_equal

CONFIG = purea2c.Config(total_timesteps=1024)
SEEDS = 2
_init = jax.jit(jax.vmap(purea2c.init, in_axes=(0, None)))
_run = jax.jit(jax.vmap(purea2c.run, in_axes=(0, None, None)), static_argnums=2)


@pytest.fixture(scope="module")
def state():
    keys = jax.random.split(jax.random.key(3), SEEDS)
    s = _init(keys, CONFIG)
    # init's output has a weak-typed leaf, run's has not: strip it so one program serves all.
    s = strip_weak_types(s)
    s, _ = _run(s, CONFIG, 2)  # a state with a filled buffer and a moved optimizer
    return s


def _like():
    return jax.eval_shape(_init, jax.random.split(jax.random.key(0), SEEDS), CONFIG)


def test_round_trip_is_bitwise_and_keeps_the_key_type(state, tmp_path):
    path = checkpoint.save(tmp_path, state, step=2, metadata={"note": "x"})
    assert path == tmp_path / "2" and (path / "meta.json").is_file()
    restored = checkpoint.restore(tmp_path, _like())
    assert_trees_equal(state, restored, bitwise=True)
    assert jax.dtypes.issubdtype(restored.key.dtype, jax.dtypes.prng_key)
    assert checkpoint.load_metadata(tmp_path) == {"note": "x"}
    assert checkpoint.latest_step(tmp_path) == 2


def test_restored_state_continues_exactly(state, tmp_path):
    checkpoint.save(tmp_path, state, step=2)
    restored = checkpoint.restore(tmp_path, _like())
    a, metrics_a = _run(state, CONFIG, 2)  # the fixture's program, already compiled
    b, metrics_b = _run(restored, CONFIG, 2)
    assert_trees_equal(a, b, bitwise=True)
    assert_trees_equal(metrics_a, metrics_b, bitwise=True)


def test_a_suite_state_round_trips_and_continues_exactly(tmp_path):
    """A Jumanji run (dict observations with an action mask; the env keeps its own key in
    its state): saved, restored into the shape ``init`` gives, and continued, it equals the
    uninterrupted run bitwise."""
    config = purea2c.Config(env="jumanji/Game2048-v1", num_envs=4, rollout_length=8,
                            n_step=4, buffer_capacity=32, batch_size=16, total_timesteps=64)
    run = jax.jit(purea2c.run, static_argnums=2)
    s = strip_weak_types(purea2c.init(jax.random.key(0), config))
    s, _ = run(s, config, 1)
    checkpoint.save(tmp_path, s, step=1)
    like = jax.eval_shape(purea2c.init, jax.random.key(0), config)
    restored = checkpoint.restore(tmp_path, like)
    assert_trees_equal(s, restored, bitwise=True)
    assert_trees_equal(run(s, config, 1), run(restored, config, 1), bitwise=True)


def test_public_names_and_relative_paths(state, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    purea2c.save_checkpoint("ckpt", state, 7)
    assert purea2c.latest_checkpoint_step("ckpt") == 7
    assert_trees_equal(state, purea2c.restore_checkpoint("ckpt", _like(), step=7),
                       bitwise=True)
    assert_trees_equal(state, purea2c.restore_checkpoint(tmp_path / "ckpt", _like()),
                       bitwise=True)


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
    assert_trees_equal(tree, restored, bitwise=True)
    raw = checkpoint.restore(tmp_path)  # no `like`: nested dict, keys as raw data
    np.testing.assert_array_equal(raw["a"], tree["a"])
    assert raw["nested"]["3"]["k"].dtype == np.uint32 and raw["empty"].shape == (0, 4)
    only_empty = {"e": jnp.zeros((0,), jnp.float32), "k": jax.random.split(jax.random.key(0), 0)}
    checkpoint.save(tmp_path, only_empty, step=1)
    assert_trees_equal(only_empty, checkpoint.restore(
        tmp_path, jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), only_empty)),
        bitwise=True)


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
    # a sha256 per leaf and per file that orbax wrote, and a digest of meta.json itself
    assert all(re.fullmatch("[0-9a-f]{64}", leaf["sha256"]) for leaf in meta["leaves"])
    assert sorted(meta["files"]) == _data_files(tmp_path) and meta["digest"]


# ------------------------------------------------------------------------------------------
# Integrity: damaged checkpoints are detected at restore and skipped by the fallback
# ------------------------------------------------------------------------------------------


def _small_tree(scale):
    """A few arrays, a typed key and a zero-size leaf."""
    return {
        "a": jnp.arange(600, dtype=jnp.float32).reshape(20, 30) * scale,
        "b": jnp.arange(7, dtype=jnp.int16) - scale,
        "key": jax.random.split(jax.random.key(scale), 3),
        "empty": jnp.zeros((0, 4), jnp.float32),
        "flag": jnp.array(scale % 2 == 0),
    }


_SMALL_LIKE = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), _small_tree(1))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """Steps 1 and 2 of the small tree, saved once; each test damages a copy of step 2."""
    directory = tmp_path_factory.mktemp("pristine")
    checkpoint.save(directory, _small_tree(1), 1, metadata={"run": "x"})
    checkpoint.save(directory, _small_tree(2), 2, metadata={"run": "x"})
    return directory


def _data_files(directory, step=2):
    """The files of a checkpoint's arrays (everything orbax wrote under state/)."""
    root = directory / str(step)
    files = sorted(str(p.relative_to(root)) for p in (root / "state").rglob("*") if p.is_file())
    assert len(files) >= 3, files  # orbax's OCDBT layout: manifest, index and data files
    return files


def _truncate(path):
    os.truncate(path, path.stat().st_size // 2)


def _bytes_at(fraction):
    def damage(path):
        data = bytearray(path.read_bytes())
        offset = min(int(len(data) * fraction), len(data) - 1)
        rng = np.random.default_rng(offset)
        for i in range(offset, min(offset + 4, len(data))):  # 4 random bytes, each changed
            data[i] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(data))
    return damage


# damage -> the words the error must contain ("{file}" is the damaged file's name)
_FILE_DAMAGE = {
    "truncated": (_truncate, "file {file} has"),
    "deleted": (os.remove, "file {file} is missing"),
    **{f"random bytes at {f:.0%}": (_bytes_at(f), "file {file} fails its sha256")
       for f in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)},
}


def _assert_fallback(directory, step_dir, match):
    """Step 2 is refused with a clear CheckpointError; the fallback restores step 1."""
    with pytest.raises(checkpoint.CheckpointError, match=match) as info:
        checkpoint.restore(directory, _SMALL_LIKE, step=2)
    assert str(step_dir) in str(info.value) and "tensorstore_spec" not in str(info.value)
    state, step, skipped = checkpoint.restore_latest_intact(directory, _SMALL_LIKE)
    assert step == 1 and [s for s, _ in skipped] == [2] and str(step_dir) in skipped[0][1]
    assert_trees_equal(_small_tree(1), state, bitwise=True)


@pytest.mark.parametrize("damage", list(_FILE_DAMAGE))
def test_a_damaged_data_file_is_detected_and_skipped(pristine, tmp_path, damage):
    """Every file orbax wrote, one at a time: truncated, deleted, or with random bytes at
    six offsets from the first byte to the last."""
    function, words = _FILE_DAMAGE[damage]
    for name in _data_files(pristine):
        directory = tmp_path / name.replace("/", "_")
        shutil.copytree(pristine, directory)
        function(directory / "2" / name)
        _assert_fallback(directory, directory / "2",
                         re.escape(words.format(file=name)))


def _rewrite_meta(edit):
    def damage(path):
        meta = json.loads(path.read_text())
        edit(meta)
        path.write_text(json.dumps(meta))
    return damage


def _fix_digest(meta):
    meta["digest"] = checkpoint._digest(meta)


# damage of meta.json -> the words the error must contain
_META_DAMAGE = {
    "deleted": (os.remove, "meta.json is missing"),
    "truncated": (_truncate, "meta.json is unreadable"),
    "emptied": (lambda p: p.write_text(""), "meta.json is unreadable"),
    "random bytes": (_bytes_at(0.5), "meta.json (is unreadable|does not match its digest)"),
    "not utf-8": (lambda p: p.write_bytes(b"\xff\xfe" + p.read_bytes()[2:]),
                  "meta.json is unreadable"),
    "a shape edited": (_rewrite_meta(lambda m: m["leaves"][0].update(shape=[30, 20])),
                       "meta.json does not match its digest"),
    "metadata edited": (_rewrite_meta(lambda m: m["metadata"].update(run="y")),
                        "meta.json does not match its digest"),
    "another format": (_rewrite_meta(lambda m: m.update(format=1)), "format 1, expected 2"),
    # consistent meta.json, wrong checksum of a leaf: caught after orbax's read
    "a leaf's checksum": (_rewrite_meta(lambda m: (m["leaves"][0].update(sha256="0" * 64),
                                                   _fix_digest(m))),
                          "leaf a fails its sha256 checksum"),
}


@pytest.mark.parametrize("damage", list(_META_DAMAGE))
def test_damaged_metadata_is_detected_and_skipped(pristine, tmp_path, damage):
    function, words = _META_DAMAGE[damage]
    shutil.copytree(pristine, tmp_path, dirs_exist_ok=True)
    function(tmp_path / "2" / "meta.json")
    _assert_fallback(tmp_path, tmp_path / "2", words)
    if damage != "deleted":  # complete but damaged: still the latest step on disk
        assert checkpoint.latest_step(tmp_path) == 2
        if "leaf" not in damage:  # meta.json itself is damaged
            with pytest.raises(checkpoint.CheckpointError, match=words):
                checkpoint.load_metadata(tmp_path)


def test_orbax_read_errors_become_a_short_checkpoint_error(pristine, tmp_path, monkeypatch):
    """Should a damaged file get past the file checks, orbax's error is wrapped: one line
    that names the checkpoint, the original chained."""
    shutil.copytree(pristine, tmp_path, dirs_exist_ok=True)
    monkeypatch.setattr(checkpoint, "_check_files", lambda path, meta: None)
    for name in _data_files(tmp_path):
        os.remove(tmp_path / "2" / name)
    with pytest.raises(checkpoint.CheckpointError, match="orbax could not read its arrays") \
            as info:
        checkpoint.restore(tmp_path, _SMALL_LIKE, 2)
    assert str(tmp_path / "2") in str(info.value) and info.value.__cause__ is not None
    assert len(str(info.value)) < 600


def test_fallback_reports_every_damaged_step_and_fails_when_none_is_intact(pristine,
                                                                           tmp_path):
    shutil.copytree(pristine, tmp_path, dirs_exist_ok=True)
    checkpoint.save(tmp_path, _small_tree(3), 3)
    _truncate(tmp_path / "3" / _data_files(tmp_path, 3)[-1])
    os.remove(tmp_path / "2" / "meta.json")
    state, step, skipped = checkpoint.restore_latest_intact(tmp_path, _SMALL_LIKE)
    assert step == 1 and [s for s, _ in skipped] == [3, 2]
    assert "truncated" in skipped[0][1] and "meta.json is missing" in skipped[1][1]
    assert_trees_equal(_small_tree(1), state, bitwise=True)
    assert checkpoint.latest_step(tmp_path) == 3  # the newest on disk, damaged or not

    _bytes_at(0.5)(tmp_path / "1" / "meta.json")
    with pytest.raises(checkpoint.CheckpointError, match=r"(?s)no intact checkpoint.*/3 "
                       r".*/2 .*/1 "):
        checkpoint.restore_latest_intact(tmp_path, _SMALL_LIKE)
    with pytest.raises(FileNotFoundError):
        checkpoint.restore_latest_intact(tmp_path / "nothing", _SMALL_LIKE)


def test_a_mismatched_like_is_not_damage_and_is_not_skipped(pristine):
    like = dict(_SMALL_LIKE, b=jax.ShapeDtypeStruct((8,), jnp.int16))
    with pytest.raises(ValueError, match=r"b: checkpoint int16\[7\], expected int16\[8\]") as info:
        checkpoint.restore_latest_intact(pristine, like)
    assert not isinstance(info.value, checkpoint.CheckpointError)
    more_keys = dict(_SMALL_LIKE, key=jax.ShapeDtypeStruct((4,), _SMALL_LIKE["key"].dtype))
    with pytest.raises(ValueError, match=r"key: checkpoint key<fry>\[3\], expected "
                                         r"key<fry>\[4\]"):
        checkpoint.restore_latest_intact(pristine, more_keys)
    raw = dict(_SMALL_LIKE, b=jax.random.key(0))
    with pytest.raises(ValueError, match=r"b: `like` has a PRNG key, the checkpoint raw int16"):
        checkpoint.restore(pristine, raw)


def test_a_damaged_step_is_replaced_by_an_overwrite_and_older_steps_can_be_saved(pristine,
                                                                                 tmp_path):
    """After a resume fell back from a damaged step 2 to step 1, training saves steps below
    and at the damaged one again."""
    shutil.copytree(pristine, tmp_path, dirs_exist_ok=True)
    _truncate(tmp_path / "2" / _data_files(tmp_path)[0])
    checkpoint.save(tmp_path, _small_tree(5), 0)  # below the newest step
    assert checkpoint.all_steps(tmp_path) == [0, 1, 2]
    with pytest.raises(FileExistsError):
        checkpoint.save(tmp_path, _small_tree(2), 2)
    checkpoint.save(tmp_path, _small_tree(2), 2, overwrite=True, keep=2)
    assert checkpoint.all_steps(tmp_path) == [1, 2]
    state, step, skipped = checkpoint.restore_latest_intact(tmp_path, _SMALL_LIKE)
    assert step == 2 and skipped == []
    assert_trees_equal(_small_tree(2), state, bitwise=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1", "2"]


def test_bad_settings_fail_before_anything_is_written(tmp_path):
    for keep in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="keep must be an integer >= 1 or None"):
            checkpoint.check_settings(keep=keep)
        with pytest.raises(ValueError, match="keep must be"):
            checkpoint.save(tmp_path / "ckpt", {"x": jnp.zeros(2)}, 1, keep=keep)
    assert not (tmp_path / "ckpt").exists()
    checkpoint.check_settings(keep=None)
    checkpoint.check_settings(keep=3, directory=tmp_path / "new" / "ckpt")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is not a directory"):
        checkpoint.check_settings(directory=tmp_path / "file")
    with pytest.raises(TypeError):  # not JSON-serialisable metadata: nothing written either
        checkpoint.save(tmp_path / "ckpt", {"x": jnp.zeros(2)}, 1, metadata={"f": object()})
    assert not (tmp_path / "ckpt").exists()


def test_restoring_writes_nothing(pristine, tmp_path):
    """A reader (e.g. an evaluation next to a running training) neither creates, changes
    nor removes files; an unfinished save of another process stays untouched."""
    shutil.copytree(pristine, tmp_path, dirs_exist_ok=True)
    (tmp_path / "3.orbax-checkpoint-tmp").mkdir()

    def snapshot():
        return {str(p.relative_to(tmp_path)): (p.stat().st_mtime_ns, p.read_bytes())
                for p in sorted(tmp_path.rglob("*")) if p.is_file()} | {
                    str(p.relative_to(tmp_path)): "dir" for p in tmp_path.rglob("*")
                    if p.is_dir()}

    before = snapshot()
    checkpoint.restore(tmp_path, _SMALL_LIKE)
    checkpoint.restore(tmp_path, None, step=1)
    checkpoint.restore_latest_intact(tmp_path, _SMALL_LIKE)
    checkpoint.load_metadata(tmp_path)
    assert snapshot() == before


# ------------------------------------------------------------------------------------------
# Retention counts intact checkpoints only
# ------------------------------------------------------------------------------------------


def test_keep_counts_only_intact_checkpoints_and_says_what_it_removed(pristine, tmp_path,
                                                                     caplog):
    """Steps 1 and 2 intact, 3 with a truncated file; saving 4 with keep=2 keeps 4 and 2 (the
    two newest intact ones), not 4 and the damaged 3, and logs each removal."""
    shutil.copytree(pristine, tmp_path, dirs_exist_ok=True)
    checkpoint.save(tmp_path, _small_tree(3), 3)
    _truncate(tmp_path / "3" / _data_files(tmp_path, 3)[0])
    with caplog.at_level("INFO", logger="purea2c.checkpoint"):
        checkpoint.save(tmp_path, _small_tree(4), 4, keep=2)
    assert checkpoint.all_steps(tmp_path) == [2, 4]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2", "4"]  # nothing left behind
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    infos = [r.getMessage() for r in caplog.records if r.levelname == "INFO"]
    assert len(warnings) == 1 and "removed damaged checkpoint" in warnings[0]
    assert f"{tmp_path / '3'}: checkpoint" in warnings[0] and "has" in warnings[0]
    assert len(infos) == 1 and f"removed checkpoint {tmp_path / '1'}" in infos[0]
    state, step, skipped = checkpoint.restore_latest_intact(tmp_path, _SMALL_LIKE)
    assert step == 4 and skipped == []
    assert_trees_equal(_small_tree(2), checkpoint.restore(tmp_path, _SMALL_LIKE, 2),
                       bitwise=True)


def test_prune_returns_what_it_removed(pristine, tmp_path):
    shutil.copytree(pristine, tmp_path, dirs_exist_ok=True)
    for step in (3, 4):
        checkpoint.save(tmp_path, _small_tree(step), step)
    meta = json.loads((tmp_path / "4" / "meta.json").read_text())
    meta["metadata"]["run"] = "edited"  # no longer matches its digest
    (tmp_path / "4" / "meta.json").write_text(json.dumps(meta))
    checkpoint.verify(tmp_path, 3)
    with pytest.raises(checkpoint.CheckpointError, match="does not match its digest"):
        checkpoint.verify(tmp_path, 4)
    removed = checkpoint.prune(tmp_path, keep=2)
    assert [(r.step, r.fault is None) for r in removed] == [(4, False), (1, True)]
    assert "checkpoint" in removed[0].fault and "digest" in removed[0].fault
    assert checkpoint.all_steps(tmp_path) == [2, 3]
    assert checkpoint.prune(tmp_path, keep=2) == []  # nothing more to remove
    # a step taken as intact (just saved) is not read: its damage goes unseen
    _truncate(tmp_path / "3" / _data_files(tmp_path, 3)[0])
    assert checkpoint.prune(tmp_path, keep=1, intact=(3,)) == [checkpoint.Removed(2, None)]
    with pytest.raises(ValueError, match="keep must be"):
        checkpoint.prune(tmp_path, keep=0)
    assert checkpoint.prune(tmp_path / "none", keep=1) == []


def test_an_interrupted_removal_is_cleaned_up_by_the_next_save(pristine, tmp_path):
    shutil.copytree(pristine, tmp_path, dirs_exist_ok=True)
    os.rename(tmp_path / "1", tmp_path / ".removed-1-abcdef12")  # killed before the rmtree
    checkpoint.save(tmp_path, _small_tree(3), 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2", "3"]
