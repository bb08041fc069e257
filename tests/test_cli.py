"""The command line: flags from Config, the run directory, SIGTERM + resume, evaluate, render."""

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purea2c
from purea2c import checkpoint, cli

# A tiny run: 4096 env steps = 16 iterations of 16 envs x 16 steps, two seeds, 16 chunks.
TINY = ["--total-timesteps", "4096", "--seeds", "2"]
TINY_CONFIG = purea2c.Config(total_timesteps=4096)
NUM_ITERATIONS = 16


def _bits(tree):
    def leaf(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        x = np.asarray(x)
        return str(x.dtype), x.shape, x.tobytes()
    return [leaf(x) for x in jax.tree.leaves(tree)]


def _final_state(run_dir):
    _, _, state = cli.load_state(run_dir)
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


def _overrides(argv):
    args = cli.build_parser().parse_args(["train", *argv])
    return cli.config_overrides(args)


def test_every_config_field_round_trips_through_its_flag():
    """Each field's default, written as on a command line, parses back to itself: new Config
    fields get working flags with no edit to the CLI."""
    for field in dataclasses.fields(purea2c.Config):
        default = getattr(purea2c.Config(), field.name)
        flag = "--" + field.name.replace("_", "-")
        if isinstance(default, bool):
            argv = [flag if default else "--no-" + flag[2:]]
        elif isinstance(default, tuple):
            argv = [flag, *map(str, default)]
        else:
            argv = [flag, str(default)]
        assert _overrides(argv) == {field.name: default}, field.name


def test_flags_build_the_config():
    overrides = _overrides(["--hidden-sizes", "32", "16", "--no-clear-buffer", "--gamma", "0.9",
                            "--pi_learning_rate", "3e-4", "--env", "Acrobot-v1"])
    assert overrides == {"hidden_sizes": (32, 16), "clear_buffer": False, "gamma": 0.9,
                         "pi_learning_rate": 3e-4, "env": "Acrobot-v1"}
    config = cli.make_config(None, overrides)
    assert (config.hidden_sizes, config.clear_buffer, config.gamma) == ((32, 16), False, 0.9)
    coax = cli.make_config("coax_a2c", {"gamma": 0.5})
    assert coax == purea2c.Config.preset("coax_a2c", gamma=0.5)
    assert cli.make_config(None, {}) == purea2c.Config()


def test_chunks_divide_the_run():
    assert cli.auto_chunk_iterations(384) == 3  # 128 chunks of 3
    assert cli.auto_chunk_iterations(16) == 1
    assert cli.auto_chunk_iterations(383) == 1  # a prime: chunks of one iteration
    assert cli.auto_chunk_iterations(10_000) == 100
    for n in (1, 7, 100, 250, 1024, 999):
        k = cli.auto_chunk_iterations(n)
        assert n % k == 0 and n // k >= min(n, 100)


def test_config_json_round_trip():
    config = purea2c.Config.preset("coax_a2c", hidden_sizes=(8,))
    data = json.loads(json.dumps(cli.config_to_json(config)))
    assert cli.config_from_json(data) == config


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
        seen["config"] = cli.make_config(args.preset, cli.config_overrides(args))
        seen["out"] = args.out
        return 0

    monkeypatch.setattr(cli, "_train", fake_train)
    assert cli.main([]) == 0
    assert seen == {"config": purea2c.Config(), "out": None}
    path = cli.default_run_dir("CartPole-v1", root="runs")
    assert path.parent.name == "runs" and path.name.startswith("CartPole-v1-")


# ------------------------------------------------------------------------------------------
# the run directory
# ------------------------------------------------------------------------------------------


def test_train_writes_the_run_directory(trained):
    pd = pytest.importorskip("pandas")
    config = cli.config_from_json(json.loads((trained / "config.json").read_text()))
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
    state = cli._strip_weak_types(cli._vmapped_init(keys, config))
    returns = []
    for _ in range(NUM_ITERATIONS):
        state, metrics = cli._vmapped_run(state, config, 1)
        returns.append(np.asarray(metrics.episode_return)[:, 0])
    assert _bits(_final_state(trained)) == _bits(state)
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
    assert _bits(_final_state(run_dir)) == _bits(_final_state(trained))
    assert (run_dir / "metrics.csv").read_bytes() == (trained / "metrics.csv").read_bytes()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"


def test_resume_after_a_hard_kill_drops_rows_past_the_checkpoint(trained, tmp_path):
    """As after SIGKILL: the CSV holds rows past the last checkpoint. Resume drops them and
    still ends equal to the uninterrupted run."""
    import shutil

    run_dir = tmp_path / "killed"
    shutil.copytree(trained, run_dir, ignore=shutil.ignore_patterns("checkpoints"))
    keys = jax.random.split(jax.random.key(0), 2)
    state = cli._strip_weak_types(cli._vmapped_init(keys, TINY_CONFIG))
    for _ in range(5):
        state, _ = cli._vmapped_run(state, TINY_CONFIG, 1)
    checkpoint.save(run_dir / "checkpoints", state, 5)
    assert cli.main(["train", "--resume", str(run_dir), "--eval-episodes", "0",
                     "--no-progress"]) == 0
    assert _bits(_final_state(run_dir)) == _bits(_final_state(trained))
    assert (run_dir / "metrics.csv").read_bytes() == (trained / "metrics.csv").read_bytes()


def test_a_signal_asks_the_loop_to_stop_and_a_second_ctrl_c_aborts():
    previous = signal.getsignal(signal.SIGTERM)
    with cli._StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signum == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) == previous


# ------------------------------------------------------------------------------------------
# evaluate and render
# ------------------------------------------------------------------------------------------


def test_evaluate_command(trained, capsys):
    assert cli.main(["evaluate", str(trained), "--episodes", "3"]) == 0
    out = capsys.readouterr().out
    assert "seed   0" in out and "mean return" in out
    evaluation = json.loads((trained / "evaluation.json").read_text())
    # the same key and the final parameters: what train's own final evaluation found
    config, _, state = cli.load_state(trained)
    direct = cli._evaluate_seeds(config, state.params, 3, seed=0)
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


def test_render_refuses_environments_gymnax_cannot_draw(tmp_path):
    config = purea2c.Config(env="DeepSea-bsuite")
    with pytest.raises(cli.CommandError, match="gymnax cannot draw DeepSea-bsuite"):
        cli.render_gif(config, None, tmp_path / "x.gif")
    assert not (tmp_path / "x.gif").exists()


def test_matplotlib_drawn_environments(tmp_path):
    """Environments gymnax draws with matplotlib (here Catch) go through its Visualizer."""
    import gymnax
    from PIL import Image

    env, params = gymnax.make("Catch-bsuite")
    _, state = env.reset(jax.random.key(0), params)
    states, rewards = [state], []
    for t in range(3):
        _, state, reward, _, _ = env.step_env(jax.random.key(t), state, jnp.int32(1), params)
        states.append(state)
        rewards.append(float(reward))
    episode = cli.Episode(states, np.asarray(rewards))
    frames, fps = cli.draw_frames(purea2c.Config(env="Catch-bsuite"), episode)
    assert len(frames) == 4 and fps > 0
    assert frames[0].ndim == 3 and frames[0].shape[2] == 3
    assert not np.array_equal(frames[0], frames[-1])  # the ball moved
    cli.write_gif(frames, tmp_path / "catch.gif", fps)
    with Image.open(tmp_path / "catch.gif") as im:
        assert im.n_frames >= 2


def test_python_dash_m_help_runs_as_a_process():
    proc = subprocess.run([sys.executable, "-m", "purea2c", "--help"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "train" in proc.stdout and "evaluate" in proc.stdout and "render" in proc.stdout
