"""A multi-process `purea2c train` whose process dies: the others end within seconds, with
one line that names the lost process (`purea2c.processes`), instead of waiting for JAX's
coordination service to declare it dead.

Two processes (one CPU device each) are joined over 127.0.0.1 as `test_cli_scaling.py`
joins them; once process 0 has compiled and is training, process 1 gets SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

START_S = 150  # two cold starts and compilations on a busy machine
SURVIVOR_S = 15  # the bound the survivor must end within


def _env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "OMPI_", "KUBERNETES_"))}
    return dict(env, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1",
                XLA_FLAGS="--xla_force_host_platform_device_count=1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_survivor_names_the_killed_process_and_ends_within_seconds(tmp_path):
    launch = ["--coordinator", f"127.0.0.1:{_free_port()}", "--num-processes", "2"]
    # many iterations in short chunks: training lasts long past the kill, and process 0
    # meets process 1 at every chunk's end
    argv = ["train", "--seeds", "2", "--num-envs", "4", "--batch-size", "32",
            "--buffer-capacity", "64", "--total-timesteps", "2000000", "--chunk-iterations",
            "4", "--checkpoint-interval", "600", "--eval-episodes", "0", "--no-progress"]
    logs = [tmp_path / f"process{i}.log" for i in range(2)]
    procs = []
    try:
        for i, log in enumerate(logs):
            with open(log, "w") as out:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "purea2c", *argv, *launch, "--process-id", str(i),
                     "--out", str(tmp_path / f"run{i}")],
                    env=_env(), stdout=out, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + START_S
        while "iterations in chunks of" not in logs[0].read_text():  # training has started
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), \
                logs[0].read_text() + logs[1].read_text()
            time.sleep(0.1)
        time.sleep(1.0)
        assert procs[1].poll() is None, logs[1].read_text()
        procs[1].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        status = procs[0].wait(timeout=60)
        elapsed = time.monotonic() - killed
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    output = logs[0].read_text()
    print(f"process 0 ended {elapsed:.1f} s after process 1 was killed, status {status}")
    assert status == 1, output
    assert elapsed < SURVIVOR_S, output
    errors = [line for line in output.splitlines() if line.startswith("purea2c: error: ")]
    assert len(errors) == 1, output
    assert "lost process 1 of the run's 2: it stopped answering" in errors[0]
    assert "process 0 cannot go on without it" in errors[0]
    info = json.loads((tmp_path / "run0" / "run.json").read_text())
    assert info["status"].startswith("failed: lost process 1 of the run's 2")
    assert info["exit_status"] == 1
    assert not (tmp_path / "run1").exists()  # process 0 alone writes the run directory


def test_an_error_of_a_single_process_is_its_own():
    """Without joined processes there is no one to lose: the error is re-raised as it is."""
    from purea2c import processes

    assert processes.lost_processes() is None
    assert processes.lost_process_error(ValueError("a bug")) is None
