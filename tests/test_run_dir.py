"""run_dir.py: config.json and run.json (typed, strict JSON), new-folder checks."""

import json
import math
import os

import jax.numpy as jnp
import numpy as np
import pytest

import purea2c
from purea2c import run_dir as rundir
from purea2c.errors import RunError


def test_config_json_round_trip():
    config = purea2c.Config.preset("coax_a2c", hidden_sizes=(8,))
    data = json.loads(json.dumps(rundir.config_to_json(config)))
    assert rundir.config_from_json(data) == config


def test_json_is_strict_non_finite_floats_are_null(tmp_path):
    path = tmp_path / "x.json"
    rundir.write_json(path, {"a": math.nan, "b": [1.0, math.inf, -math.inf],
                             "c": {"d": np.float32("nan"), "e": np.float64(2.5)},
                             "f": jnp.int32(3), "g": "text", "h": None})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict {c}"))
    assert data == {"a": None, "b": [1.0, None, None], "c": {"d": None, "e": 2.5}, "f": 3,
                    "g": "text", "h": None}
    assert not (tmp_path / "x.json.tmp").exists()


def test_config_json_refuses_objects_unless_given_a_fallback():
    class MyEnv:
        pass

    config = purea2c.Config()
    object.__setattr__(config, "env", MyEnv())  # as a config with an env object would be
    with pytest.raises(RunError, match="Config.env=.* cannot be written"):
        rundir.config_to_json(config)
    assert rundir.config_to_json(config, fallback=repr)["env"].startswith("<")


@pytest.mark.parametrize("field, value, message", [
    ("num_envs", None, "field num_envs must be an int, got null"),
    ("gamma", "high", 'field gamma must be a number, got "high"'),
    ("gamma", 2.0, "Config.gamma=2.0 is invalid: must be in [0, 1]"),
    ("hidden_sizes", 64, "field hidden_sizes must be a list of ints, got 64"),
    ("clear_buffer", None, "field clear_buffer must be a bool, got null"),
    ("env", "NoSuchEnv-v0", "Config.env='NoSuchEnv-v0' is invalid: unknown environment"),
    ("no_such_field", 1, "fields this version of purea2c does not know: ['no_such_field']"),
])
def test_bad_config_json_names_the_field(field, value, message):
    data = rundir.config_to_json(purea2c.Config())
    data[field] = value
    with pytest.raises(RunError, match="^config.json: |^config.json has") as info:
        rundir.config_from_json(data)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("field, value", [("seeds", None), ("seeds", 0), ("seeds", "2"),
                                          ("seed", 1.5), ("chunk_iterations", 0),
                                          ("chunk_iterations", True)])
def test_bad_run_json_names_the_field(field, value):
    info = {"seeds": 2, "seed": 0, "chunk_iterations": 1}
    rundir.check_run_info(dict(info))
    info[field] = value
    with pytest.raises(RunError, match=f"field {field} must be an int"):
        rundir.check_run_info(info)


def test_new_run_folders(tmp_path):
    assert rundir.new_dir_problem(tmp_path / "a" / "b") is None  # created with its parents
    assert rundir.new_dir_problem(tmp_path) is None  # empty
    (tmp_path / "notes.txt").write_text("x")
    assert "is not a purea2c run directory" in rundir.new_dir_problem(tmp_path)
    assert "is not a folder" in rundir.new_dir_problem(tmp_path / "notes.txt")
    assert "is not a folder" in rundir.new_dir_problem(tmp_path / "notes.txt" / "run")
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    assert "already holds a run" in rundir.new_dir_problem(run)
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert "not writable" in rundir.new_dir_problem(locked / "run")


def test_versions_of_missing_distributions_are_none():
    versions = rundir.dist_versions(("jax", "no-such-distribution-xyz"))
    assert versions["jax"] and versions["no-such-distribution-xyz"] is None
