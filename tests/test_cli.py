"""The command line: flags from Config, the run directory, SIGTERM + resume, evaluate, render."""

import csv
import dataclasses
import json
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import purea2c
from purea2c import checkpoint, cli, flags, rendering, run_loop, seed_evaluation, sinks
from purea2c import train_command
from purea2c import run_dir as rundir

from helpers import assert_trees_equal

# A tiny run: 4096 env steps = 16 iterations of 16 envs x 16 steps, two seeds, 16 chunks.
TINY = ["--total-timesteps", "4096", "--seeds", "2"]
# What such a command line trains: the preset named after the env (CartPole-v1's).
TINY_CONFIG = purea2c.Config.preset("CartPole-v1", total_timesteps=4096)
NUM_ITERATIONS = 16


def _final_state(run_dir):
    _, _, state = rundir.load_state(run_dir)
    return state


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run of `purea2c train` (no subcommand: flags alone mean train)."""
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    code = cli.main([*TINY, "--out", str(run_dir), "--eval-episodes", "3", "--tensorboard"])
    assert code == 0
    return run_dir


# ------------------------------------------------------------------------------------------
# flags
# ------------------------------------------------------------------------------------------


def _help(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # unwrap argparse's line breaks


def test_help_of_every_command_is_complete(capsys):
    top = _help(["--help"], capsys)
    for command in ("train", "evaluate", "render"):
        assert command in top
    train = _help(["train", "--help"], capsys)
    for flag in ("--seeds", "--seed", "--preset", "--out", "--resume", "--chunk-iterations",
                 "--checkpoint-interval", "--tensorboard", "--eval-episodes"):
        assert flag in train
    for field in dataclasses.fields(purea2c.Config):
        assert "--" + field.name.replace("_", "-") in train, field.name
        doc = " ".join(field.metadata["doc"].split())
        assert doc[:40] in train, field.name  # the field's documentation is its help
    for name in purea2c.Config.preset_names():
        assert name in train
    evaluate = _help(["evaluate", "--help"], capsys)
    assert "RUN_DIR" in evaluate and "--episodes" in evaluate
    render = _help(["render", "--help"], capsys)
    assert "RUN_DIR" in render and "CartPole-v1" in render and ".gif" in render


def test_invalid_values_are_usage_errors(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--gamma", "2", "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2
    assert "gamma" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--num-envs", "many"])
    assert "invalid int value" in capsys.readouterr().err


def test_no_arguments_means_train_with_defaults(monkeypatch):
    seen = {}

    def fake_train(args, parser):
        seen["config"] = flags.make_config(args.preset, flags.config_overrides(args))
        seen["out"] = args.out
        return 0

    monkeypatch.setattr(cli, "_train", fake_train)
    assert cli.main([]) == 0
    assert seen == {"config": purea2c.Config.preset("CartPole-v1"), "out": None}
    path = rundir.default_run_dir("CartPole-v1", root="runs")
    assert path.parent.name == "runs" and path.name.startswith("CartPole-v1-")


# ------------------------------------------------------------------------------------------
# bad command lines: one line on stderr, no traceback, nothing compiled
# ------------------------------------------------------------------------------------------

# (argv, exit status, what stderr names). "{run}": a run directory with config.json and
# run.json (2 seeds) but no checkpoint; "{tmp}": an empty folder; "{file}": a file. Train
# command lines without --out or --resume get "--out {tmp}/out", which must not be created.
BAD_INPUTS = [
    # Config fields: validation's rule, reached with negative numbers as values
    (["--pi-learning-rate", "-1e-3"], 2, ["pi_learning_rate", "must be > 0"]),
    (["--pi-learning-rate", "0"], 2, ["pi_learning_rate", "must be > 0"]),
    (["--v-learning-rate", "-1"], 2, ["v_learning_rate", "must be > 0"]),
    (["--v_learning_rate", "-2.5E-4"], 2, ["v_learning_rate", "must be > 0"]),
    (["--gamma", "2"], 2, ["gamma", "must be in [0, 1]"]),
    (["--gamma", "-0.5"], 2, ["gamma", "must be in [0, 1]"]),
    (["--gamma", "nan"], 2, ["gamma", "must be in [0, 1]"]),
    (["--entropy-coef", "-0.1"], 2, ["entropy_coef", "must be >= 0"]),
    (["--max-grad-norm", "0"], 2, ["max_grad_norm", "must be > 0"]),
    (["--max-grad-norm", "-inf"], 2, ["max_grad_norm", "must be > 0"]),
    (["--huber-delta", "-1"], 2, ["huber_delta", "must be > 0"]),
    (["--target-tau", "0"], 2, ["target_tau", "must be in (0, 1]"]),
    (["--target-tau", "1.5"], 2, ["target_tau", "must be in (0, 1]"]),
    (["--max-skipped-share", "0"], 2, ["max_skipped_share", "in (0, 1]"]),
    (["--max-skipped-share", "1.5"], 2, ["max_skipped_share", "in (0, 1]"]),
    (["--max-skipped-share", "nan"], 2, ["max_skipped_share", "in (0, 1]"]),
    (["--ppo-epsilon", "0"], 2, ["ppo_epsilon", "must be > 0"]),
    (["--reward-scale", "-1"], 2, ["reward_scale", "must be > 0"]),
    (["--obs-clip", "-1"], 2, ["obs_clip", "must be > 0"]),
    (["--reward-clip", "0"], 2, ["reward_clip", "must be > 0"]),
    (["--sync-weight", "2"], 2, ["sync_weight", "must be in [0, 1]"]),
    (["--log-std-init", "inf"], 2, ["log_std_init", "finite"]),
    (["--num-envs", "0"], 2, ["num_envs", "must be >= 1"]),
    (["--num-envs", "-4"], 2, ["num_envs", "must be >= 1"]),
    (["--rollout-length", "0"], 2, ["rollout_length", "must be >= 1"]),
    (["--n-step", "0"], 2, ["n_step", "must be >= 1"]),
    (["--buffer-capacity", "0"], 2, ["buffer_capacity", "must be >= 1"]),
    (["--batch-size", "0"], 2, ["batch_size", "must be >= 1"]),
    (["--batch-size", "512"], 2, ["batch_size", "must be <= buffer_capacity"]),
    (["--num-passes", "0"], 2, ["num_passes", "must be >= 1"]),
    (["--total-timesteps", "0"], 2, ["total_timesteps", "must be >= 1"]),
    (["--total-timesteps", "10"], 2, ["total_timesteps", "one iteration"]),
    (["--hidden-sizes", "0"], 2, ["hidden_sizes", "ints >= 1"]),
    (["--hidden-sizes", "-1", "64"], 2, ["hidden_sizes", "ints >= 1"]),
    (["--cnn-channels"], 2, ["cnn_channels", "non-empty"]),
    (["--cnn-kernel-size", "0"], 2, ["cnn_kernel_size", "must be >= 1"]),
    (["--sde-sample-freq", "-1"], 2, ["sde_sample_freq", "must be >= 0"]),
    (["--activation", "sigmoidx"], 2, ["activation", "must be one of"]),
    (["--torso", "transformer"], 2, ["torso", "must be one of"]),
    (["--optimizer", "sgd"], 2, ["optimizer", "must be one of"]),
    (["--lr-schedule", "cosine"], 2, ["lr_schedule", "must be one of"]),
    (["--exploration", "levy"], 2, ["exploration", "must be one of"]),
    (["--value-loss", "l1"], 2, ["value_loss", "must be one of"]),
    (["--policy-objective", "a3c"], 2, ["policy_objective", "must be one of"]),
    (["--shared-torso", "half"], 2, ["shared_torso", "must be one of"]),
    (["--env", "NoSuchEnv-v0"], 2, ["env", "unknown environment"]),
    # flag syntax
    (["--num-envs", "many"], 2, ["--num-envs", "invalid int value"]),
    (["--gamma", "high"], 2, ["--gamma", "invalid float value"]),
    (["--hidden-sizes", "64", "x"], 2, ["--hidden-sizes", "invalid int value"]),
    (["--clear-buffer=maybe"], 2, ["--clear-buffer", "ignored explicit argument"]),
    (["--pi-learning-rate"], 2, ["--pi-learning-rate", "expected one argument"]),
    (["--preset", "nope"], 2, ["--preset", "invalid choice"]),
    (["--foo"], 2, ["unrecognized arguments: --foo", "purea2c train"]),
    (["train", "--foo", "1"], 2, ["unrecognized arguments: --foo 1", "purea2c train"]),
    (["--pi-learn", "1e-3"], 2, ["unrecognized arguments: --pi-learn", "purea2c train"]),
    (["--keep", "3"], 2, ["unrecognized arguments: --keep 3"]),
    (["--total", "4096"], 2, ["unrecognized arguments: --total 4096"]),
    (["fly"], 2, ["invalid choice: 'fly'"]),
    # run flags, refused before anything is built
    (["--seeds", "0"], 2, ["--seeds", "must be >= 1"]),
    (["--seeds", "-2"], 2, ["--seeds", "must be >= 1"]),
    (["--seed", str(2**64)], 2, ["--seed", "must be an int in"]),
    (["--chunk-iterations", "0"], 2, ["--chunk-iterations", "must be >= 1"]),
    (["--chunk-iterations", "-5"], 2, ["--chunk-iterations", "must be >= 1"]),
    (["--keep-checkpoints", "0"], 2, ["--keep-checkpoints", "must be >= 1"]),
    (["--keep-checkpoints", "-1"], 2, ["--keep-checkpoints", "must be >= 1"]),
    (["--checkpoint-interval", "-1"], 2, ["--checkpoint-interval", "must be a number"]),
    (["--checkpoint-interval", "nan"], 2, ["--checkpoint-interval", ">= 0"]),
    (["--eval-episodes", "-1"], 2, ["--eval-episodes", "must be >= 0"]),
    (["--seeds", "0", "--resume", "{run}"], 2, ["--seeds", "must be >= 1"]),
    # output folders
    (["--out", "{file}"], 2, ["--out", "is not a folder"]),
    (["--out", "{file}/run"], 2, ["--out", "is not a folder"]),
    (["--out", "{tmp}/other"], 2, ["--out", "not a purea2c run directory"]),
    (["--out", "{run}"], 2, ["--out", "already holds a run", "--resume"]),
    # --resume
    (["--resume", "{run}", "--gamma", "0.5"], 2, ["--resume", "drop", "--gamma"]),
    (["--resume", "{run}", "--out", "{tmp}/x"], 2, ["--resume", "drop", "--out"]),
    (["--resume", "{tmp}"], 1, ["not a purea2c run directory"]),
    (["--resume", "{run}:config.json:num_envs=null"], 1, ["config.json", "num_envs",
                                                          "must be an int, got null"]),
    (["--resume", "{run}:config.json:gamma=\"high\""], 1, ["gamma", "must be a number"]),
    (["--resume", "{run}:config.json:gamma=2.0"], 1, ["gamma", "must be in [0, 1]"]),
    (["--resume", "{run}:config.json:hidden_sizes=64"], 1, ["hidden_sizes", "list of ints"]),
    (["--resume", "{run}:config.json:clear_buffer=null"], 1, ["clear_buffer", "must be a bool"]),
    (["--resume", "{run}:config.json:colour=1"], 1, ["does not know", "colour"]),
    (["--resume", "{run}:config.json:"], 1, ["config.json", "cannot read"]),
    (["--resume", "{run}:run.json:seeds=null"], 1, ["run.json", "seeds", "must be an int >= 1"]),
    (["--resume", "{run}:run.json:seeds=0"], 1, ["run.json", "seeds", "must be an int >= 1"]),
    (["--resume", "{run}:run.json:chunk_iterations=\"4\""], 1, ["chunk_iterations", "int"]),
    # evaluate
    (["evaluate", "{run}", "--episodes", "0"], 2, ["--episodes", "must be >= 1"]),
    (["evaluate", "{run}", "--episodes", "-3"], 2, ["--episodes", "must be >= 1"]),
    (["evaluate", "{run}", "--step", "-1"], 2, ["--step", "must be >= 0"]),
    (["evaluate", "{run}", "--seed", str(-2**64)], 2, ["--seed", "must be an int in"]),
    (["evaluate", "{run}", "--foo"], 2, ["unrecognized arguments: --foo", "purea2c evaluate"]),
    (["evaluate", "{run}", "--epi", "3"], 2, ["unrecognized arguments: --epi 3"]),
    (["evaluate"], 2, ["required", "RUN_DIR"]),
    (["evaluate", "{tmp}"], 1, ["not a purea2c run directory"]),
    (["evaluate", "{run}"], 1, ["has no checkpoint yet"]),
    (["evaluate", "{run}:run.json:seed=1.5"], 1, ["run.json", "seed", "must be an int"]),
    # render
    (["render", "{run}", "--scale", "0"], 2, ["--scale", "must be a finite number > 0"]),
    (["render", "{run}", "--scale", "-2e-1"], 2, ["--scale", "must be a finite number > 0"]),
    (["render", "{run}", "--max-steps", "0"], 2, ["--max-steps", "must be >= 1"]),
    (["render", "{run}", "--seed-index", "-1"], 2, ["--seed-index", "must be >= 0"]),
    (["render", "{run}", "--seed-index", "5"], 2, ["--seed-index", "must be in [0, 2)"]),
    (["render", "{run}", "--out", "{file}/x.gif"], 2, ["--out", "not a writable folder"]),
    (["render", "{run}", "--out", "{tmp}"], 2, ["--out", "is a folder"]),
    (["render", "{run}"], 1, ["has no checkpoint yet"]),
]


@pytest.fixture
def no_compilation(monkeypatch):
    """Every way to build or run a program fails the test."""
    def compiled(*args, **kwargs):
        raise AssertionError("a program was built")

    for module, name in ((run_loop, "vmapped_init"), (run_loop, "ChunkProgram"),
                         (seed_evaluation, "evaluate_seeds"), (rendering, "render_gif"),
                         (rundir, "abstract_state"), (checkpoint, "restore")):
        monkeypatch.setattr(module, name, compiled)


def _fake_run(path, edit=None):
    """A run directory without checkpoints; ``edit`` = "file:field=json" changes one field
    ("file:" alone empties the file)."""
    path.mkdir()
    files = {"config.json": rundir.config_to_json(TINY_CONFIG),
             "run.json": {"seeds": 2, "seed": 0, "chunk_iterations": 1, "status": "finished"}}
    texts = {name: json.dumps(data) for name, data in files.items()}
    if edit:
        name, change = edit.split(":", 1)
        if change:
            field, value = change.split("=", 1)
            texts[name] = json.dumps({**files[name], field: json.loads(value)})
        else:
            texts[name] = ""
    for name, text in texts.items():
        (path / name).write_text(text)
    return path


def _exit_status(argv):
    try:
        return cli.main(argv)
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize("argv, status, names", BAD_INPUTS,
                         ids=[" ".join(a)[:60] for a, _, _ in BAD_INPUTS])
def test_a_bad_command_line_is_one_line_and_nothing_is_compiled(argv, status, names, tmp_path,
                                                                 capsys, no_compilation):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("not a run")
    (tmp_path / "file").write_text("")
    expanded = []
    for arg in argv:
        if arg.startswith("{run}"):
            edit = arg[len("{run}:"):] if ":" in arg else None
            arg = str(_fake_run(tmp_path / "run", edit))
        expanded.append(arg.replace("{tmp}", str(tmp_path)).replace("{file}",
                                                                    str(tmp_path / "file")))
    command = argv[0] if argv[0] in ("evaluate", "render", "fly") else "train"
    if command == "train" and "--out" not in argv and "--resume" not in argv:
        expanded += ["--out", str(tmp_path / "out")]
    start = time.perf_counter()
    assert _exit_status(expanded) == status
    assert time.perf_counter() - start < 20
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("purea2c: error: ")
    for name in names:
        assert name in lines[0], (name, lines[0])
    assert not (tmp_path / "out").exists()  # no run directory was started
    assert "COMMAND" not in lines[0] or command == "fly"  # the command's usage, not the top


def test_bad_input_table_is_large():
    assert len(BAD_INPUTS) >= 60


class _FakeChunks:
    """Stands in for `run_loop.ChunkProgram`: one seed, 16 env steps per iteration, one
    episode of return 10 per iteration, iteration ``bad`` not finite."""

    bad = 10

    def __init__(self, state, config):
        pass

    def start(self, length):
        pass

    def metric_dtypes(self, length):
        return {"env_steps": np.dtype(np.int32), "episodes": np.dtype(np.int32),
                "episode_return": np.dtype(np.float32), "finite": np.dtype(bool)}

    def __call__(self, length):
        def step(state, config):
            its = np.arange(state + 1, state + length + 1)[None]
            finite = its != self.bad
            return state + length, {
                "env_steps": (its * 256).astype(np.int32),
                "episodes": np.ones_like(its, np.int32),
                "episode_return": np.where(finite, 10.0, np.nan).astype(np.float32),
                "finite": finite}
        return step


def test_training_stops_at_the_first_non_finite_iteration(tmp_path, monkeypatch, capsys):
    """Chunks of 4, iteration 10 not finite: the run stops after the chunk 9-12 without
    saving it, keeps iteration 8's checkpoint, logs the chunk, and exits with status 3."""
    saved = []
    monkeypatch.setattr(train_command, "_start_state",
                        lambda args, run_dir, config, info, mesh_run: (0, 0))
    monkeypatch.setattr(run_loop, "ChunkProgram", _FakeChunks)
    monkeypatch.setattr(sinks.checkpoint, "save",
                        lambda d, state, it, keep, metadata, overwrite: saved.append((it, state)))
    run = tmp_path / "run"
    status = cli.main(["--total-timesteps", "4096", "--out", str(run), "--chunk-iterations",
                       "4", "--checkpoint-interval", "0", "--no-progress"])
    assert status == cli.EXIT_DIVERGED == 3
    assert saved == [(4, 4), (8, 8)]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "diverged at iteration 10"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "diverged at iteration 10/16" in err[0], err
    assert "checkpoints/8" in err[0]
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and rows[9]["episode_return"] == "nan" and rows[9]["finite"] == "0"
    assert not (run / "evaluation.json").exists()


def test_evaluation_refuses_non_finite_parameters(tmp_path, monkeypatch, capsys):
    import types

    state = types.SimpleNamespace(params={"w": np.array([[1.0, 2.0], [np.nan, 0.0]])},
                                  iteration=np.array([16, 16]))
    monkeypatch.setattr(rundir, "load_run", lambda run_dir: (TINY_CONFIG, {"seeds": 2}))
    monkeypatch.setattr(rundir, "restore_state", lambda run_dir, config, seeds, step,
                        data_parallel: rundir.Restored(state, 16, []))
    monkeypatch.setattr(seed_evaluation, "evaluate_seeds", pytest.fail)
    assert cli.main(["evaluate", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "seed 1 are not finite" in err[0] and "refused" in err[0]
    assert seed_evaluation.nonfinite_seeds(state.params) == [1]
    assert seed_evaluation.nonfinite_seeds({"w": np.ones((3, 2)), "i": np.zeros(3, int)}) == []


# ------------------------------------------------------------------------------------------
# the run directory
# ------------------------------------------------------------------------------------------


def test_train_writes_the_run_directory(trained):
    pd = pytest.importorskip("pandas")
    config = rundir.config_from_json(json.loads((trained / "config.json").read_text()))
    assert config == TINY_CONFIG
    info = json.loads((trained / "run.json").read_text())
    assert (info["seeds"], info["seed"], info["status"]) == (2, 0, "finished")

    with open(trained / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == NUM_ITERATIONS * 2
    assert [int(r["iteration"]) for r in rows[:4]] == [1, 1, 2, 2]
    assert int(rows[-1]["env_steps"]) == 4096
    table = pd.read_parquet(trained / "metrics.parquet")
    from_csv = pd.read_csv(trained / "metrics.csv")
    assert list(table.columns) == list(from_csv.columns)
    for column in table.columns:  # bitwise: floats are written with repr
        np.testing.assert_array_equal(table[column].to_numpy(),
                                      from_csv[column].to_numpy().astype(table[column].dtype))

    # The checkpoint is the documented computation: seed i from split(key(0), 2)[i], the
    # config's program run chunk by chunk.
    keys = jax.random.split(jax.random.key(0), 2)
    state = run_loop.strip_weak_types(run_loop.vmapped_init(keys, config))
    returns = []
    for _ in range(NUM_ITERATIONS):
        state, metrics = run_loop.vmapped_run(state, config, 1)
        returns.append(np.asarray(metrics.episode_return)[:, 0])
    assert_trees_equal(_final_state(trained), state, bitwise=True)
    logged = table.pivot(index="iteration", columns="seed", values="episode_return").to_numpy()
    np.testing.assert_array_equal(logged, np.stack(returns))

    from PIL import Image

    with Image.open(trained / "learning_curve.png") as png:
        assert png.format == "PNG" and png.width > 300
        assert len(png.convert("RGB").getcolors(1 << 16)) > 10  # a drawn plot, not blank
    evaluation = json.loads((trained / "evaluation.json").read_text())
    assert evaluation["num_episodes"] == 3 and len(evaluation["mean_return_per_seed"]) == 2
    assert any(p.name.startswith("events.out.tfevents")
               for p in (trained / "tensorboard").iterdir())
    assert checkpoint.latest_step(trained / "checkpoints") == NUM_ITERATIONS


def test_run_files_are_strict_json(trained):
    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    for name in ("config.json", "run.json", "evaluation.json"):
        json.loads((trained / name).read_text(), parse_constant=refuse)


def test_existing_run_directory_is_not_overwritten(trained, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", *TINY, "--out", str(trained)])
    assert exit_info.value.code == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_takes_no_config_flags(trained, capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--resume", str(trained), "--gamma", "0.5"])
    assert "--gamma" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# interruption and resume
# ------------------------------------------------------------------------------------------


def test_sigterm_then_resume_equals_an_uninterrupted_run(trained, tmp_path):
    """A training process is sent SIGTERM mid-run: it saves and exits with 128 + 15. Resumed,
    the run ends with bitwise the parameters, optimizer states, environment, tracer, buffer
    and key of the uninterrupted run (the `trained` fixture, same settings), and the same
    metrics."""
    run_dir = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [sys.executable, "-m", "purea2c", "train", *TINY, "--out", str(run_dir),
         "--checkpoint-interval", "0", "--eval-episodes", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while checkpoint.latest_step(run_dir / "checkpoints") is None:
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, output
    stopped_at = checkpoint.latest_step(run_dir / "checkpoints")
    assert 0 < stopped_at < NUM_ITERATIONS, output
    assert "--resume" in output
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == f"interrupted at iteration {stopped_at}"

    assert cli.main(["train", "--resume", str(run_dir), "--eval-episodes", "0"]) == 0
    assert checkpoint.latest_step(run_dir / "checkpoints") == NUM_ITERATIONS
    assert_trees_equal(_final_state(run_dir), _final_state(trained), bitwise=True)
    assert (run_dir / "metrics.csv").read_bytes() == (trained / "metrics.csv").read_bytes()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"


def test_resume_after_a_hard_kill_drops_rows_past_the_checkpoint(trained, tmp_path):
    """As after SIGKILL: the CSV holds rows past the last checkpoint. Resume drops them and
    still ends equal to the uninterrupted run."""
    import shutil

    run_dir = tmp_path / "killed"
    shutil.copytree(trained, run_dir, ignore=shutil.ignore_patterns("checkpoints"))
    keys = jax.random.split(jax.random.key(0), 2)
    state = run_loop.strip_weak_types(run_loop.vmapped_init(keys, TINY_CONFIG))
    for _ in range(5):
        state, _ = run_loop.vmapped_run(state, TINY_CONFIG, 1)
    checkpoint.save(run_dir / "checkpoints", state, 5)
    assert cli.main(["train", "--resume", str(run_dir), "--eval-episodes", "0",
                     "--no-progress"]) == 0
    assert_trees_equal(_final_state(run_dir), _final_state(trained), bitwise=True)
    assert (run_dir / "metrics.csv").read_bytes() == (trained / "metrics.csv").read_bytes()


# ------------------------------------------------------------------------------------------
# evaluate and render
# ------------------------------------------------------------------------------------------


def test_evaluate_command(trained, capsys):
    assert cli.main(["evaluate", str(trained), "--episodes", "3"]) == 0
    out = capsys.readouterr().out
    assert "seed   0" in out and "mean return" in out
    evaluation = json.loads((trained / "evaluation.json").read_text())
    # the same key and the final parameters: what train's own final evaluation found
    config, _, state = rundir.load_state(trained)
    direct = seed_evaluation.evaluate_seeds(config, state.params, 3, seed=0)
    np.testing.assert_allclose(evaluation["mean_return_per_seed"], direct.mean(axis=1))
    assert evaluation["step"] == NUM_ITERATIONS


def test_render_command_writes_a_gif(trained, tmp_path, capsys):
    from PIL import Image

    gif = tmp_path / "cartpole.gif"
    assert cli.main(["render", str(trained), "--out", str(gif), "--max-steps", "12",
                     "--scale", "0.5", "--seed-index", "1"]) == 0
    out = capsys.readouterr().out
    assert str(gif) in out
    steps = int(out.split(" steps")[0].split()[-1])
    assert 1 <= steps <= 12
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.size == (300, 200)
        assert 2 <= im.n_frames <= steps + 1


def test_python_dash_m_help_runs_as_a_process():
    proc = subprocess.run([sys.executable, "-m", "purea2c", "--help"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "train" in proc.stdout and "evaluate" in proc.stdout and "render" in proc.stdout


def test_resume_skips_a_damaged_checkpoint_and_says_so(trained, tmp_path, capsys):
    """The newest checkpoint's meta.json is deleted (as after a crash mid-save): resume warns
    in one line, continues from the one before, and ends equal to the uninterrupted run."""
    import shutil

    run_dir = tmp_path / "damaged"
    shutil.copytree(trained, run_dir)
    keys = jax.random.split(jax.random.key(0), 2)
    state = run_loop.strip_weak_types(run_loop.vmapped_init(keys, TINY_CONFIG))
    for _ in range(5):
        state, _ = run_loop.vmapped_run(state, TINY_CONFIG, 1)
    checkpoint.save(run_dir / "checkpoints", state, 5)
    steps = checkpoint.all_steps(run_dir / "checkpoints")
    assert steps == [5, NUM_ITERATIONS]
    (run_dir / "checkpoints" / str(steps[-1]) / "meta.json").unlink()
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(run_dir), "--eval-episodes", "0",
                     "--no-progress"]) == 0
    captured = capsys.readouterr()
    warning = [line for line in captured.err.splitlines() if "warning" in line]
    assert len(warning) == 1 and f"checkpoint {steps[-1]} is damaged" in warning[0]
    assert f"resuming {run_dir} at iteration {steps[0]}/" in captured.out
    assert_trees_equal(_final_state(run_dir), _final_state(trained), bitwise=True)
    assert (run_dir / "metrics.csv").read_bytes() == (trained / "metrics.csv").read_bytes()


def test_train_evaluate_and_envs_on_another_suite(tmp_path, capsys):
    """`purea2c train --env navix/...` with a keyword for the env, then `evaluate`; the run
    directory keeps the id and the keywords, and `purea2c envs` lists the suites."""
    run_dir = tmp_path / "navix"
    assert cli.main(["train", "--env", "navix/Navix-Empty-5x5-v0", "--env-kwargs",
                     "max_steps=50", "--total-timesteps", "2048", "--num-envs", "16",
                     "--buffer-capacity", "256", "--batch-size", "128", "--out", str(run_dir),
                     "--eval-episodes", "2"]) == 0
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["env"] == "navix/Navix-Empty-5x5-v0"
    assert saved["env_kwargs"] == [["max_steps", 50]]
    config, _, state = rundir.load_state(run_dir)
    assert config.env_kwargs == (("max_steps", 50),) and config.num_envs == 16
    assert cli.main(["evaluate", str(run_dir), "--episodes", "2"]) == 0
    assert "mean return" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--env", "navix/Navix-Empty-5x5-v0", "--env-kwargs", "max_step=5",
                  "--out", str(tmp_path / "bad")])
    assert exit_info.value.code == 2
    assert "max_step" in capsys.readouterr().err
    assert cli.main(["envs", "navix", "gymnax"]) == 0
    out = capsys.readouterr().out
    assert "navix/Navix-Empty-5x5-v0" in out and "gymnax/CartPole-v1" in out
    with pytest.raises(SystemExit):
        cli.main(["envs", "nosuite"])
    assert "unknown suite 'nosuite'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# divergence by skipped updates, and what a run records
# ------------------------------------------------------------------------------------------

# Pendulum at a learning rate of 1e4: 2 iterations of 16 updates, chunks of one iteration.
# The first iteration's updates are applied (finite, if huge); in the second every update
# is skipped as non-finite.
PENDULUM_1E4 = ["train", "--env", "Pendulum-v1", "--pi-learning-rate", "1e4",
                "--v-learning-rate", "1e4", "--total-timesteps", "1024", "--no-progress",
                "--eval-episodes", "0"]


def test_a_chunk_that_skips_most_of_its_updates_stops_the_run_as_diverged(tmp_path, capsys):
    run = tmp_path / "pendulum"
    assert cli.main([*PENDULUM_1E4, "--out", str(run)]) == cli.EXIT_DIVERGED
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    info = json.loads((run / "run.json").read_text())
    found = info["divergence"]
    assert found["iteration"] == 2 and found["cause"] == "skipped"
    assert found["quantity"] in run_loop.NONFINITE_QUANTITIES + ("parameters",)
    assert len(err) == 1 and "Traceback" not in captured.err, captured.err
    for words in ("diverged at iteration 2/2", "100% of its updates in iteration 2",
                  "max_skipped_share 0.5", f"first non-finite quantity: {found['quantity']}",
                  "skipped updates: 16 of 32", f"checkpoint {run / 'checkpoints' / '1'}"):
        assert words in err[0], (words, err[0])
    assert info["status"] == "diverged at iteration 2" and info["exit_status"] == 3
    assert found["checkpoint"] == str(run / "checkpoints" / "1")
    assert info["skipped_updates"] == {"total": 16, "updates": 32, "per_seed": [16]}
    assert checkpoint.all_steps(run / "checkpoints") == [1]  # the last finite state
    _, _, state = rundir.load_state(run)
    assert not seed_evaluation.nonfinite_seeds(state.params)
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["iteration"], r["skipped_updates"], r["diverged"]) for r in rows] == [
        ("1", "0", "0"), ("2", "16", "1")]  # the diverged chunk is logged, and marked
    # A threshold of 1 lets every chunk pass: the run finishes, and says what it skipped.
    lenient = tmp_path / "lenient"
    assert cli.main([*PENDULUM_1E4, "--out", str(lenient), "--max-skipped-share", "1"]) == 0
    out = capsys.readouterr().out
    assert "skipped updates: 16 of 32" in out
    info = json.loads((lenient / "run.json").read_text())
    assert info["status"] == "finished" and "divergence" not in info
    assert info["skipped_updates"]["total"] == 16


def test_a_normal_run_records_where_it_came_from_and_nothing_diverged(trained):
    info = json.loads((trained / "run.json").read_text())
    assert info["status"] == "finished" and info["exit_status"] == 0
    assert "divergence" not in info
    assert info["skipped_updates"] == {"total": 0, "updates": 2 * NUM_ITERATIONS
                                       * TINY_CONFIG.updates_per_iteration, "per_seed": [0, 0]}
    for name in ("python", "purea2c", "jax", "jaxlib", "flax", "optax", "gymnax", "chex",
                 "numpy", "navix"):
        assert name in info["versions"], name
    assert "git" in info and "xla_flags" in info
    assert info["host"]["process_count"] == 1 and info["host"]["devices"]
    assert info["started"] <= info["ended"] and info["duration_s"] > 0
    (session,) = info["sessions"]
    assert (session["from_iteration"], session["to_iteration"]) == (0, NUM_ITERATIONS)
    assert session["exit_status"] == 0 and session["command"] == info["command"]
    with open(trained / "metrics.csv") as f:
        assert {row["diverged"] for row in csv.DictReader(f)} == {"0"}


def test_evaluate_and_resume_say_what_differs_from_the_record(trained, tmp_path, capsys):
    import shutil

    run_dir = tmp_path / "moved"
    shutil.copytree(trained, run_dir)
    info = json.loads((run_dir / "run.json").read_text())
    info["versions"]["jax"] = "0.0.1"
    info["host"]["name"] = "elsewhere"
    (run_dir / "run.json").write_text(json.dumps(info))
    capsys.readouterr()
    assert cli.main(["evaluate", str(run_dir), "--episodes", "3"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "differs from the run's record" in line)
    assert f"jax 0.0.1 -> {jax.__version__}" in line and "host elsewhere -> " in line
    assert cli.main(["train", "--resume", str(run_dir), "--eval-episodes", "0",
                     "--no-progress"]) == 0
    assert "differs from the run's record: jax 0.0.1" in capsys.readouterr().out
    sessions = json.loads((run_dir / "run.json").read_text())["sessions"]
    assert len(sessions) == 2 and sessions[1]["changes"][0].startswith("jax 0.0.1 -> ")
    assert sessions[1]["from_iteration"] == NUM_ITERATIONS and sessions[1]["exit_status"] == 0
