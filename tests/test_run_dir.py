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


def test_a_new_run_records_where_it_comes_from(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
    info = rundir.new_run_info(purea2c.Config(), 2, 0, 1, None, "purea2c train")
    versions = info["versions"]
    for name in ("python", "purea2c", "jax", "jaxlib", "flax", "optax", "gymnax", "chex",
                 "numpy", "orbax-checkpoint", "brax", "jumanji", "craftax", "navix",
                 "xminigrid", "backend"):
        assert name in versions, name
    assert versions["python"].count(".") == 2 and versions["numpy"] and versions["chex"]
    host = info["host"]
    assert host["name"] and host["process_count"] == 1 and host["device_count"] >= 1
    assert host["devices"] and all(" x " in d for d in host["devices"])
    assert info["xla_flags"] == "--xla_force_host_platform_device_count=1"
    assert "git" in info
    json.dumps(info, allow_nan=False)


def test_git_state_of_a_checkout_and_of_anything_else(tmp_path, monkeypatch):
    import shutil
    import subprocess

    package = tmp_path / "repo" / "pkg"
    package.mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    assert rundir.git_state(package) is None  # no checkout
    if shutil.which("git") is None:
        pytest.skip("git is not installed")

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path / "repo"), "-c", "user.name=t", "-c",
                        "user.email=t@t", *args], check=True, capture_output=True)

    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "x")
    state = rundir.git_state(package)
    assert len(state["commit"]) == 40 and state["dirty"] is False
    (package / "a.py").write_text("x = 2\n")
    assert rundir.git_state(package) == {"commit": state["commit"], "dirty": True}
    deeper = package / "sub"  # a package below the checkout's top (a venv inside it)
    deeper.mkdir()
    assert rundir.git_state(deeper) is None

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert rundir.git_state(package) is None
    assert rundir.git_state() is None


def test_environment_changes_name_what_differs_from_the_record():
    now = {"versions": {"python": "3.11.7", "jax": "0.10.2", "brax": None},
           "git": {"commit": "b" * 40, "dirty": False},
           "host": {"name": "here", "process_count": 1, "device_count": 1,
                    "devices": ["1 x cpu"]},
           "xla_flags": None}
    assert rundir.environment_changes(now, now) == []
    record = {"versions": {"python": "3.11.7", "jax": "0.9.0", "brax": "0.14.2"},
              "git": {"commit": "a" * 40, "dirty": True},
              "host": {"name": "there", "process_count": 1, "device_count": 8,
                       "devices": ["8 x TPU v4"]},
              "xla_flags": "--xla_cpu_use_thunk_runtime=false"}
    assert rundir.environment_changes(record, now) == [
        "jax 0.9.0 -> 0.10.2", "brax 0.14.2 -> none", f"git commit {'a' * 40} -> {'b' * 40}",
        "git dirty True -> False", "host there -> here", "device count 8 -> 1",
        "devices 8 x TPU v4 -> 1 x cpu", "XLA_FLAGS --xla_cpu_use_thunk_runtime=false -> none"]
    # a record of an older purea2c (versions only) is compared on what it holds
    assert rundir.environment_changes({"versions": {"jax": "0.10.2"}}, now) == []
    assert rundir.environment_changes({"git": None}, now) == [
        f"git commit none -> {'b' * 40}", "git dirty none -> False"]


def test_a_session_records_its_end_exit_status_and_duration(tmp_path):
    info = {"status": "created"}
    first = rundir.Session(tmp_path, info, "purea2c train", resumed=False)
    first.reached(0)
    first.reached(8)
    rundir.set_status(tmp_path, info, "interrupted at iteration 8")
    first.end(143)
    first.end(0)  # once only
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved["exit_status"] == 143 and saved["status"] == "interrupted at iteration 8"
    entry = saved["sessions"][0]
    assert (entry["from_iteration"], entry["to_iteration"], entry["exit_status"]) == (0, 8, 143)
    assert entry["started"] == saved["started"] and entry["ended"] == saved["ended"]
    assert entry["duration_s"] >= 0 and "changes" not in entry
    info["divergence"] = {"iteration": 8}
    second = rundir.Session(tmp_path, info, "purea2c train --resume x", resumed=True)
    assert "divergence" not in info and info["sessions"][0]["divergence"] == {"iteration": 8}
    second.reached(8)
    info["status"] = "running"
    second.end(1, "cannot write checkpoints")
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved["status"] == "failed: cannot write checkpoints" and saved["exit_status"] == 1
    assert saved["started"] == entry["started"] and len(saved["sessions"]) == 2
    assert saved["sessions"][1]["changes"] == second.changes
    assert saved["duration_s"] == pytest.approx(sum(s["duration_s"] for s in
                                                    saved["sessions"]))
    quiet = rundir.Session(tmp_path / "none", {}, "c", resumed=False, write=False)
    quiet.end(0)  # another process of the run: records, writes nothing
    assert not (tmp_path / "none").exists()
