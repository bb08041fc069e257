"""wandb_sink.py: the Weights & Biases sink in wandb's offline mode, read back from the run's
``.wandb`` file (config, per-iteration history, summary, exit code); the clear error when
wandb is missing or cannot start; one run of the real chunk loop on CartPole through it."""

import importlib
import json
import struct
import sys
import time
import types

import jax
import numpy as np
import pytest

pytest.importorskip("wandb")
from wandb.proto import wandb_internal_pb2  # noqa: E402

import purea2c  # noqa: E402
from purea2c import run_loop, wandb_sink  # noqa: E402
from purea2c.errors import RunError  # noqa: E402


@pytest.fixture(autouse=True)
def _offline(tmp_path, monkeypatch):
    """wandb offline, quiet, its files and settings under tmp_path."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def _records(path):
    """The records of a ``.wandb`` file: wandb's LevelDB-style log (a 7-byte header, then
    32 KiB blocks of chunks: crc32, length (2 bytes), type 1 full / 2 first / 3 middle /
    4 last), each record a ``wandb_internal_pb2.Record``; a record still being written
    is left out."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"[:len(data)]
    block, pos, whole, pending = 32768, 7, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:  # the zero padding at the end of a block
            pos += left
            continue
        if pos + 7 + length > len(data):
            break
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 1:
            whole.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            whole.append(pending + chunk)
    out = []
    for raw in whole:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        out.append(record)
    return out


def _key(item):
    return "/".join(item.nested_key) if item.nested_key else item.key


def _finished_records(run_dir, timeout=30.0):
    """The records of the one offline run under ``run_dir/wandb``, once its exit record is
    in the file (wandb's service process may still be writing it when ``finish`` returns
    on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while True:
        [path] = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
        records = _records(path)
        if any(r.WhichOneof("record_type") == "exit" for r in records) \
                or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def read_run(run_dir):
    """``{"config", "history" (user keys per row), "summary", "exit_code"}`` of the one
    offline run under ``run_dir/wandb``."""
    config, history, summary, exit_code = {}, [], {}, None
    for record in _finished_records(run_dir):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            config.update({u.key: json.loads(u.value_json) for u in record.run.config.update})
        elif kind == "config":
            config.update({_key(u): json.loads(u.value_json) for u in record.config.update})
        elif kind == "history":
            row = {_key(i): json.loads(i.value_json) for i in record.history.item}
            history.append({k: v for k, v in row.items() if not k.startswith("_")})
        elif kind == "summary":
            summary.update({_key(u): json.loads(u.value_json) for u in record.summary.update})
        elif kind == "exit":
            exit_code = record.exit.exit_code
    config.pop("_wandb", None)
    return {"config": config, "history": history, "summary": summary, "exit_code": exit_code}


def _chunk(first, seeds, returns):
    """Metrics of ``len(returns[0])`` iterations from iteration ``first`` (8 env steps
    each), ``returns``: ``[seeds, iters]``."""
    iters = np.arange(first, first + len(returns[0]))
    return {"env_steps": np.tile(iters * 8, (seeds, 1)).astype(np.int32),
            "episode_return": np.asarray(returns, np.float32),
            "value_loss": np.full((seeds, len(iters)), 0.5, np.float32),
            "finite": np.ones((seeds, len(iters)), bool)}


def test_config_metrics_record_and_status_are_logged(tmp_path):
    record = {"seeds": 2, "seed": 0, "status": "created", "command": "purea2c train"}
    config = {"env": "CartPole-v1", "num_envs": 2, "lr_pi": 0.001, "hidden": [64, 64]}
    sink = wandb_sink.WandbSink("purea2c-test", tmp_path / "run", config, record,
                                mode="offline")
    assert sink.run_id
    sink(2, _chunk(1, 2, [[1.0, np.nan], [3.0, 5.0]]))
    sink(3, _chunk(3, 2, [[np.nan], [np.nan]]))  # no episode finished: no return logged
    record["status"] = "diverged at iteration 3"  # the record as the command line updates it
    sink.close(3)
    sink.close(0)  # closed once
    run = read_run(tmp_path / "run")
    assert run["config"] == config
    assert run["history"] == [
        {"env_steps": 8, "iteration": 1, "train/episode_return": 2.0,
         "train/episode_return_min": 1.0, "train/episode_return_max": 3.0,
         "train/value_loss": 0.5, "train/finite": 1.0},
        {"env_steps": 16, "iteration": 2, "train/episode_return": 5.0,
         "train/episode_return_min": 5.0, "train/episode_return_max": 5.0,
         "train/value_loss": 0.5, "train/finite": 1.0},
        {"env_steps": 24, "iteration": 3, "train/value_loss": 0.5, "train/finite": 1.0}]
    assert run["summary"]["run"] == {**record, "status": "diverged at iteration 3"}
    assert run["summary"]["exit_status"] == 3 and run["exit_code"] == 3
    assert run["summary"]["train/episode_return"] == 5.0  # the last value logged
    assert run["summary"]["iteration"] == 3


def test_closed_in_a_failing_finally_it_records_an_error(tmp_path):
    sink = wandb_sink.WandbSink("purea2c-test", tmp_path, {}, {"status": "running"},
                                name="failing")
    with pytest.raises(KeyError):
        try:
            sink(1, _chunk(1, 1, [[2.0]]))
            raise KeyError("boom")
        finally:
            sink.close()
    run = read_run(tmp_path)
    assert run["exit_code"] == wandb_sink.EXIT_ERROR
    # one seed: no spread over seeds
    assert run["history"] == [{"env_steps": 8, "iteration": 1, "train/episode_return": 2.0,
                               "train/value_loss": 0.5, "train/finite": 1.0}]


def test_missing_wandb_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    module = importlib.reload(wandb_sink)  # importing the module does not import wandb
    with pytest.raises(RunError, match=r"pip install 'purea2c\[wandb\]'"):
        module.WandbSink("p", tmp_path, {}, {})
    assert not (tmp_path / "wandb").exists()


def test_a_failing_init_is_a_run_error(monkeypatch, tmp_path):
    def init(**kwargs):
        raise RuntimeError("api_key not configured (no-tty)")

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=init))
    with pytest.raises(RunError, match="--wandb proj: wandb.init failed: RuntimeError: "
                                       "api_key not configured.*WANDB_MODE=offline"):
        wandb_sink.WandbSink("proj", tmp_path, {}, {})


def test_resume_continues_the_wandb_run(monkeypatch, tmp_path):
    calls = []

    class Run:
        id, summary = "abc123", {}

        def define_metric(self, *args, **kwargs):
            pass

    def init(**kwargs):
        calls.append(kwargs)
        return Run()

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=init))
    sink = wandb_sink.WandbSink("proj", tmp_path / "r", {"a": 1}, {}, run_id="abc123",
                                group="g")
    assert sink.run_id == "abc123"
    assert calls == [{"project": "proj", "dir": str(tmp_path / "r"), "config": {"a": 1},
                      "name": "r", "mode": None, "id": "abc123", "resume": "allow",
                      "group": "g"}]


def test_the_chunk_loop_logs_every_iteration(tmp_path):
    config = purea2c.Config(num_envs=2, rollout_length=4, n_step=2, buffer_capacity=16,
                            batch_size=8, total_timesteps=64, hidden_sizes=(8,))
    keys = jax.random.split(jax.random.key(0), 2)
    state = run_loop.strip_weak_types(run_loop.vmapped_init(keys, config))
    program = run_loop.ChunkProgram(state, config)
    seen = []
    sink = wandb_sink.WandbSink("purea2c-test", tmp_path, {"total_timesteps": 64},
                                {"seeds": 2}, mode="offline")
    end = run_loop.run_in_chunks(state, config, program, config.num_iterations, chunk=4,
                                 callbacks=[sink, lambda it, m: seen.append(m)])
    sink.close(0)
    assert end.iteration == config.num_iterations == 8
    run = read_run(tmp_path)
    assert run["exit_code"] == 0
    assert [row["iteration"] for row in run["history"]] == list(range(1, 9))
    assert [row["env_steps"] for row in run["history"]] == [8 * i for i in range(1, 9)]
    losses = np.concatenate([m["value_loss"] for m in seen], axis=1).mean(axis=0)
    np.testing.assert_allclose([row["train/value_loss"] for row in run["history"]], losses,
                               rtol=1e-6)
    assert all(row["train/diverged"] == 0.0 for row in run["history"])
    assert run["config"] == {"total_timesteps": 64}


def test_purea2c_train_with_wandb_logs_the_run_and_its_exit_status(tmp_path):
    """`purea2c train --wandb PROJECT`: the config, every iteration, the run record and the
    exit status reach the offline run; run.json keeps the wandb run's id for a resume."""
    from purea2c import cli

    run_dir = tmp_path / "run"
    code = cli.main(["train", "--env", "CartPole-v1", "--num-envs", "4",
                     "--rollout-length", "8", "--batch-size", "32", "--total-timesteps", "256",
                     "--eval-episodes",
                     "0", "--no-progress", "--wandb", "purea2c-cli-test", "--out",
                     str(run_dir)])
    assert code == 0
    run = read_run(run_dir)
    assert run["exit_code"] == 0
    assert run["config"]["env"] == "CartPole-v1" and run["config"]["num_envs"] == 4
    iterations = [row["iteration"] for row in run["history"] if "iteration" in row]
    assert iterations == list(range(1, 9))  # 256 steps / (4 envs x 8 steps)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["wandb_run_id"] and run["summary"]["run"]["seeds"] == info["seeds"]
