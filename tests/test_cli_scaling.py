"""`purea2c train` over several devices and processes: one data-parallel agent
(``--data-parallel``) and seeds over processes joined over 127.0.0.1 (``--coordinator``).

This process keeps one CPU device, as the rest of the suite. The runs are subprocesses:
several devices are forced with ``XLA_FLAGS=--xla_force_host_platform_device_count=2``, and
several processes are joined with ``jax.distributed.initialize`` by the command line's own
flags. Each subprocess runs command lines through `DRIVER`: `purea2c.cli.main`, with one
addition to the checkpoint sink. It records whether every device's copy of the parameters
and optimizer states is bitwise the same, and after the save of a given iteration process 0
sends itself SIGTERM, so that a run stops at a known iteration by the same path as a Ctrl-C
(the other processes get no signal: they must stop with it).

The runs are tiny: CartPole, 4 envs x 16 steps, 8 iterations in chunks of 4.
"""

from __future__ import annotations

import csv
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from purea2c import cli
from purea2c import run_dir as rundir

from helpers import assert_trees_equal

TINY = ["--num-envs", "4", "--batch-size", "32", "--buffer-capacity", "64",
        "--total-timesteps", "512", "--chunk-iterations", "4", "--checkpoint-interval", "0",
        "--eval-episodes", "0", "--no-progress"]
NUM_ITERATIONS = 8
STOP_AT = 4

DRIVER = textwrap.dedent("""
    import json, os, signal, sys
    import jax, numpy as np
    from purea2c import cli, sinks

    report, runs = sys.argv[1], json.loads(sys.argv[2])  # [[argv, stop at iteration], ...]
    save, stop_at = sinks.Checkpoints.save, None

    def write(**entry):
        with open(report, "a") as f:
            f.write(json.dumps(entry) + "\\n")

    def save_and_stop(self, iteration, state):
        if self.saved != iteration:
            copies = [[np.asarray(s.data).tobytes() for s in leaf.addressable_shards]
                      for leaf in jax.tree.leaves((state.params, state.opt_state))]
            write(save=iteration, copies=len(copies[0]),
                  identical=all(len(set(c)) == 1 for c in copies))
        save(self, iteration, state)
        if iteration == stop_at and jax.process_index() == 0:
            os.kill(os.getpid(), signal.SIGTERM)

    sinks.Checkpoints.save = save_and_stop
    for argv, stop_at in runs:
        try:
            write(exit=cli.main(argv))
        except SystemExit as e:  # a refused command line
            write(exit=e.code)
""")


def _env(devices: int) -> dict:
    """CPU only, ``devices`` devices, and no cluster for ``jax.distributed`` to detect."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "OMPI_", "KUBERNETES_"))}
    return dict(env, JAX_PLATFORMS="cpu",
                XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")


def _start(runs: list[tuple[list[str], int | None]], report: pathlib.Path,
           devices: int = 1) -> subprocess.Popen:
    """A process that runs the command lines ``runs`` one after the other through
    `DRIVER`, each ``(argv, iteration to stop at or None)``, and reports to ``report``."""
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(report), json.dumps(runs)],
                            env=_env(devices), text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def _finish(procs: list[subprocess.Popen], timeout: float = 240) -> list[str]:
    """Waits for every process (kills the others when one fails: they would wait for it);
    returns their outputs."""
    outputs = []
    try:
        for proc in procs:
            output, _ = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, output
            outputs.append(output)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return outputs


def _reports(path: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _rows(run_dir: pathlib.Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def _assert_rows_close(rows: list[dict[str, str]], expected: list[dict[str, str]]) -> None:
    assert len(rows) == len(expected)
    for row, ref in zip(rows, expected):
        assert (row["iteration"], row["seed"], row["episodes"], row["env_steps"]) == \
            (ref["iteration"], ref["seed"], ref["episodes"], ref["env_steps"])
        for name in ref:
            np.testing.assert_allclose(float(row[name]), float(ref[name]), rtol=1e-4,
                                       atol=1e-5, err_msg=f"{name} {row}")


def _host(tree):
    return [np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(
        x.dtype, jax.dtypes.prng_key) else x) for x in jax.tree.leaves(tree)]


@pytest.fixture(scope="module")
def two_devices_process(tmp_path_factory):
    """``(folder, process)``: one process of 2 devices, started here, that runs one after
    the other: ``--distributed`` where JAX detects no cluster (first: joining must come
    before anything starts JAX), an uninterrupted data-parallel run, the same run stopped
    at iteration 4, its resume, and a data-parallel agent whose ``--num-envs`` does not
    split over 2 devices. The first test to ask for it lets it run on one core while that
    test trains on the other."""
    root = tmp_path_factory.mktemp("two_devices")
    argv = ["train", "--data-parallel", *TINY]
    runs = [(["train", "--distributed", "--out", str(root / "distributed")], None),
            ([*argv, "--out", str(root / "whole")], None),
            ([*argv, "--out", str(root / "stopped")], STOP_AT),
            (["train", "--resume", str(root / "stopped"), "--checkpoint-interval", "0",
              "--eval-episodes", "0", "--no-progress"], None),
            ([*argv, "--num-envs", "3", "--out", str(root / "uneven")], None)]
    proc = _start(runs, root / "report.jsonl", devices=2)
    yield root, proc
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


# ------------------------------------------------------------------------------------------
# seeds over two processes
# ------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes(argv_of: list[list[str]], tmp_path: pathlib.Path, name: str,
               stop_at: int | None = None) -> tuple[list[str], list[list[dict]]]:
    """Runs ``purea2c`` as processes 0 .. N-1 (one CPU device each) joined over 127.0.0.1;
    returns their outputs and reports."""
    launch = ["--coordinator", f"127.0.0.1:{_free_port()}", "--num-processes",
              str(len(argv_of))]
    reports = [tmp_path / f"{name}{i}.jsonl" for i in range(len(argv_of))]
    outputs = _finish([_start([([*argv, *launch, "--process-id", str(i)], stop_at)], report)
                       for i, (argv, report) in enumerate(zip(argv_of, reports))])
    return outputs, [_reports(report) for report in reports]


@pytest.mark.usefixtures("two_devices_process")  # runs meanwhile, see there
def test_two_processes_train_seeds_and_resume_as_one(tmp_path):
    """`purea2c train --seeds 4` as two processes joined over 127.0.0.1: the seeds are
    sharded over both processes' devices, and process 0 alone writes the run directory
    (process 1 is given another --out, which stays uncreated). Stopped at iteration 4 (a
    SIGTERM to process 0 only), the run's metrics agree with a single-process run to
    float tolerance; resumed by the same two processes, it ends as the single-process
    run ends (metrics and final state to float tolerance: each process vmaps 2 seeds where
    the single-process run vmaps 4, so XLA may round differently)."""
    reference = tmp_path / "reference"
    assert cli.main(["train", "--seeds", "4", *TINY, "--out", str(reference)]) == 0
    expected = _rows(reference)

    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    argv = ["train", "--seeds", "4", *TINY]
    (out0, out1), reports = _processes(
        [[*argv, "--out", str(run)], [*argv, "--out", str(elsewhere)]], tmp_path, "first",
        STOP_AT)
    exits = [r["exit"] for rs in reports for r in rs if "exit" in r]
    assert exits == [128 + signal.SIGTERM] * 2, out0 + out1
    assert [r["save"] for r in reports[1] if "save" in r] == [STOP_AT]  # process 1 took part
    assert "4 seeds sharded over 2 devices of 2 processes" in out0
    assert "process 1 of 2 joined" in out1 and "stopped at" not in out1
    assert not elsewhere.exists()
    assert json.loads((run / "run.json").read_text())["status"] == \
        f"interrupted at iteration {STOP_AT}"
    _assert_rows_close(_rows(run), expected[:4 * STOP_AT])

    resume = ["train", "--resume", str(run), "--eval-episodes", "0", "--no-progress"]
    (out0, out1), reports = _processes([resume, resume], tmp_path, "resumed")
    assert [r["exit"] for rs in reports for r in rs if "exit" in r] == [0, 0], out0 + out1
    assert f"resuming {run} at iteration {STOP_AT}/{NUM_ITERATIONS}" in out0
    _assert_rows_close(_rows(run), expected)
    resumed, final = rundir.load_state(run)[2], rundir.load_state(reference)[2]
    for a, b in zip(_host(resumed), _host(final)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


# ------------------------------------------------------------------------------------------
# one agent over two devices
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_devices(two_devices_process):
    """``(folder, report, output)`` of the process of `two_devices_process`, finished."""
    root, proc = two_devices_process
    [output] = _finish([proc])
    return root, _reports(root / "report.jsonl"), output


def test_data_parallel_run_stops_and_resumes_bitwise(two_devices):
    """`purea2c train --data-parallel` on 2 devices trains one agent (2 of its 4 envs on
    each device), keeps every device's parameters and optimizer states bitwise equal at
    every checkpoint, and checkpoints one agent's state. Stopped by SIGTERM at iteration 4
    and resumed, it ends bitwise as the uninterrupted run: the same compiled chunk program
    runs on the same devices from a state restored bit for bit, as on one device."""
    root, report, output = two_devices
    whole, stopped = root / "whole", root / "stopped"
    assert [r["exit"] for r in report if "exit" in r][1:4] == [0, 128 + signal.SIGTERM, 0], \
        output
    assert "one agent over 2 devices (data parallel): 2 of its 4 envs on each" in output
    assert f"stopped at iteration {STOP_AT}/{NUM_ITERATIONS}" in output
    assert f"resuming {stopped} at iteration {STOP_AT}/{NUM_ITERATIONS}" in output
    saves = [r for r in report if "save" in r]
    assert [r["save"] for r in saves] == [4, 8, 4, 8]  # whole, stopped, resumed
    assert all(r["copies"] == 2 and r["identical"] for r in saves), saves

    config, info, state = rundir.load_state(whole)
    assert info["seeds"] == 1 and info["data_parallel"] == 2
    assert all(leaf.shape[0] == 1 for leaf in jax.tree.leaves(state.params))  # one copy
    assert state.env.obs.shape == (1, 2, 2, 4)  # [seed, device, envs on it, CartPole obs]
    assert state.buffer.insert_index.shape == (1, 2)  # each device's own buffer
    assert int(state.env_steps[0]) == NUM_ITERATIONS * config.steps_per_iteration
    assert all(row["finite"] == "1" for row in _rows(whole))
    assert_trees_equal(rundir.load_state(stopped)[2], state, bitwise=True)
    assert (stopped / "metrics.csv").read_bytes() == (whole / "metrics.csv").read_bytes()


def test_refusals_that_need_a_fresh_process_or_two_devices(two_devices):
    root, report, output = two_devices
    exits = [r["exit"] for r in report if "exit" in r]
    assert exits[0] == exits[4] == 2, output
    errors = [line for line in output.splitlines() if line.startswith("purea2c: error: ")]
    assert len(errors) == 2, output
    assert "--distributed: JAX detected no cluster" in errors[0]
    assert ("--data-parallel over 2 devices: Config.num_envs=3 cannot be split over 2 "
            "devices: it must be a multiple of the device count") in errors[1]
    assert not (root / "distributed").exists() and not (root / "uneven").exists()


# ------------------------------------------------------------------------------------------
# refused command lines
# ------------------------------------------------------------------------------------------


def _fake_run(path: pathlib.Path, data_parallel) -> pathlib.Path:
    path.mkdir()
    config = cli.flags.make_config(None, {"num_envs": 4, "batch_size": 32,
                                          "buffer_capacity": 64, "total_timesteps": 512})
    rundir.write_json(path / "config.json", rundir.config_to_json(config))
    rundir.write_json(path / "run.json", {"seeds": 1, "seed": 0, "chunk_iterations": 2,
                                          "data_parallel": data_parallel})
    return path


# (argv, exit status, what the one line on stderr names). "{run}": a data-parallel run over
# 2 devices without checkpoints; "{run:VALUE}": with run.json's data_parallel = VALUE.
REFUSED = [
    (["--coordinator", "127.0.0.1:1234"], 2,
     ["go together", "missing ['--num-processes', '--process-id']"]),
    (["--num-processes", "2", "--process-id", "0"], 2, ["missing ['--coordinator']"]),
    (["--coordinator", "localhost", "--num-processes", "2", "--process-id", "0"], 2,
     ["--coordinator must be HOST:PORT", "'localhost'"]),
    (["--coordinator", "h:99999", "--num-processes", "2", "--process-id", "0"], 2,
     ["HOST:PORT"]),
    (["--coordinator", "h:1234", "--num-processes", "2", "--process-id", "2"], 2,
     ["--process-id must be in [0, 2)", "got 2"]),
    (["--coordinator", "h:1234", "--num-processes", "0", "--process-id", "0"], 2,
     ["--num-processes must be >= 1"]),
    (["--distributed", "--process-id", "1"], 2, ["--distributed", "drop ['--process-id']"]),
    (["--data-parallel", "--seeds", "4"], 2, ["--data-parallel", "no --seeds 4"]),
    (["--resume", "{run}", "--data-parallel"], 2, ["--resume", "drop ['--data-parallel']"]),
    (["--resume", "{run}"], 2, ["one agent over 2 devices", "this process has 1"]),
    (["--resume", "{run:0}"], 1, ["run.json", "data_parallel", "an int >= 1 or null, got 0"]),
    (["--resume", "{run:\"2\"}"], 1, ["data_parallel", "got \"2\""]),
]


@pytest.mark.parametrize("argv, status, names", REFUSED,
                         ids=[" ".join(a)[:50] for a, _, _ in REFUSED])
def test_bad_scaling_flags_are_one_line_errors(argv, status, names, tmp_path, capsys):
    expanded = []
    for arg in argv:
        if arg.startswith("{run"):
            value = json.loads(arg[5:-1]) if ":" in arg else 2
            arg = str(_fake_run(tmp_path / "run", value))
        expanded.append(arg)
    if "--resume" not in argv:
        expanded += ["--out", str(tmp_path / "out")]
    try:
        code = cli.main(["train", *expanded])
    except SystemExit as e:
        code = e.code
    assert code == status
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("purea2c: error: "), err
    for name in names:
        assert name in err[0], (name, err[0])
    assert not (tmp_path / "out").exists()
