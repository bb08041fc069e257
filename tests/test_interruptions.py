"""Kills at random points, then resume: nothing is lost, and the run ends bitwise as an
uninterrupted one; two processes given the same command train bitwise the same run."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from purea2c import checkpoint, cli
from purea2c import run_dir as rundir

# 16 iterations of 16 envs x 16 steps, two seeds, a chunk (and a checkpoint) per iteration.
ARGS = ["--total-timesteps", "4096", "--seeds", "2", "--chunk-iterations", "1",
        "--checkpoint-interval", "0", "--eval-episodes", "0", "--no-progress"]
NUM_ITERATIONS = 16


def _bits(tree):
    def leaf(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        x = np.asarray(x)
        return str(x.dtype), x.shape, x.tobytes()
    return [leaf(x) for x in jax.tree.leaves(tree)]


def _train_process(out):
    return subprocess.Popen([sys.executable, "-m", "purea2c", *ARGS, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Two processes given the same command (the reference run, and a second one)."""
    root = tmp_path_factory.mktemp("uninterrupted")
    procs = [_train_process(root / name) for name in ("a", "b")]
    for proc in procs:
        output, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, output
    return root / "a", root / "b"


def test_two_processes_train_bitwise_the_same_run(uninterrupted):
    a, b = uninterrupted
    assert (a / "metrics.csv").read_bytes() == (b / "metrics.csv").read_bytes()
    assert _bits(rundir.load_state(a)[2]) == _bits(rundir.load_state(b)[2])


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_at_a_random_point_then_resume_loses_nothing(seed, uninterrupted, tmp_path):
    """The process is killed (SIGKILL: no handler runs) once its checkpoints reach a random
    iteration, plus a random delay that may fall inside a save. Resume finishes the run with
    bitwise the final state and the metrics of the uninterrupted one."""
    rng = random.Random(seed)
    target, delay = rng.randint(1, NUM_ITERATIONS - 3), rng.uniform(0.0, 0.05)
    run_dir = tmp_path / "killed"
    proc = _train_process(run_dir)
    try:
        deadline = time.monotonic() + 300
        while (checkpoint.latest_step(run_dir / "checkpoints") or 0) < target:
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline
            time.sleep(0.005)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    killed_at = checkpoint.latest_step(run_dir / "checkpoints")
    assert killed_at is not None and killed_at < NUM_ITERATIONS, "the run ended before the kill"
    assert cli.main(["train", "--resume", str(run_dir), "--eval-episodes", "0",
                     "--no-progress"]) == 0
    reference = uninterrupted[0]
    assert _bits(rundir.load_state(run_dir)[2]) == _bits(rundir.load_state(reference)[2])
    assert (run_dir / "metrics.csv").read_bytes() == (reference / "metrics.csv").read_bytes()
