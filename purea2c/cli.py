"""Command line: ``purea2c train | evaluate | render`` (also ``python -m purea2c``): the
argument parser and its command handlers.

``purea2c`` with no arguments (or with only flags) means ``purea2c train``: it trains the
default config, shows a progress bar and leaves a run directory (see `purea2c.run_dir`).
The jobs behind the handlers live in their own modules:

    flags.py            Config fields as flags
    run_dir.py          the run directory: config.json, run.json, loading a run's state
    run_loop.py         the chunked run of one compiled program, callbacks, stop requests
    sinks.py            metrics.csv / parquet, TensorBoard, progress bar, checkpoints
    plots.py            the learning curve
    seed_evaluation.py  every seed's evaluation, evaluation.json's summary
    rendering.py        an episode of a policy as a GIF

Errors are one line on stderr, ``purea2c: error: ...``: exit status 2 for a bad command line
(checked before anything is compiled), 1 for a problem with a run or its files, 3 when
training diverges (a non-finite iteration), 128 + N after signal N.
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import shlex
import sys
import time
from typing import Any, Callable

import jax
import numpy as np

from purea2c import flags, plots, rendering, run_loop, seed_evaluation, sinks
from purea2c import run_dir as rundir
from purea2c.config import Config, check_memory
from purea2c.errors import RunError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_DIVERGED = 3


class _Parser(argparse.ArgumentParser):
    """argparse with whole flag names only (no abbreviations), negative numbers as values
    (``--pi-learning-rate -1e-3``) and errors on one line."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = flags.NEGATIVE_NUMBER

    def error(self, message: str) -> None:  # type: ignore[override]
        usage = " ".join(self.format_usage().split()[1:])
        _print_error(f"{message} (usage: {usage})")
        self.exit(EXIT_USAGE)


def _print_error(message: str) -> None:
    print(f"purea2c: error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------
# Flag values, checked before anything is built
# ------------------------------------------------------------------------------------------

# (attribute, flag, rule, test): a flag's value (when given) must pass its test.
_Rule = tuple[str, str, str, Callable[[Any], bool]]
_SEED_RULE = ("seed", "--seed", "an int in [-2**63, 2**63)", lambda v: -2**63 <= v < 2**63)
_STEP_RULE = ("step", "--step", ">= 0", lambda v: v >= 0)
_TRAIN_RULES: list[_Rule] = [
    ("seeds", "--seeds", ">= 1", lambda v: v >= 1),
    _SEED_RULE,
    ("chunk_iterations", "--chunk-iterations", ">= 1", lambda v: v >= 1),
    ("checkpoint_interval", "--checkpoint-interval", "a number of seconds >= 0",
     lambda v: v >= 0),  # NaN fails
    ("keep_checkpoints", "--keep-checkpoints", ">= 1", lambda v: v >= 1),
    ("eval_episodes", "--eval-episodes", ">= 0 (0: no evaluation)", lambda v: v >= 0),
]
_EVALUATE_RULES: list[_Rule] = [
    ("episodes", "--episodes", ">= 1", lambda v: v >= 1), _SEED_RULE, _STEP_RULE]
_RENDER_RULES: list[_Rule] = [
    ("seed_index", "--seed-index", ">= 0", lambda v: v >= 0),
    _SEED_RULE,
    ("max_steps", "--max-steps", ">= 1", lambda v: v >= 1),
    ("scale", "--scale", "a finite number > 0", lambda v: math.isfinite(v) and v > 0),
    _STEP_RULE,
]


def _check_flags(args: argparse.Namespace, parser: argparse.ArgumentParser,
                 rules: list[_Rule]) -> None:
    for attribute, flag, rule, ok in rules:
        value = getattr(args, attribute)
        if value is not None and not ok(value):
            parser.error(f"{flag} must be {rule}, got {value}")


def _check_file_out(path: pathlib.Path, parser: argparse.ArgumentParser) -> None:
    folder = path.absolute().parent
    if path.is_dir():
        parser.error(f"--out {path} is a folder; give a file name (FILE.gif)")
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        parser.error(f"--out {path}: {folder} is not a writable folder")


# ------------------------------------------------------------------------------------------
# train
# ------------------------------------------------------------------------------------------


def _open_run(args: argparse.Namespace, parser: argparse.ArgumentParser
              ) -> tuple[pathlib.Path, Config, dict[str, Any]]:
    """``(run_dir, config, run_info)``: a new run directory from the flags, or the one that
    ``--resume`` names with its saved settings."""
    overrides = flags.config_overrides(args)
    if args.resume is not None:
        given = [f"--{k.replace('_', '-')}" for k in overrides]
        given += [flag for flag, value in (("--seeds", args.seeds), ("--seed", args.seed),
                                           ("--preset", args.preset), ("--out", args.out),
                                           ("--chunk-iterations", args.chunk_iterations))
                  if value is not None]
        if given:
            parser.error(f"--resume continues a run with its saved settings; drop {given}")
        run_dir = pathlib.Path(args.resume)
        config, info = rundir.load_run(run_dir)
        if not os.access(run_dir, os.W_OK | os.X_OK):
            raise RunError(f"{run_dir} is not writable")
        return run_dir, config, info

    try:
        config = flags.make_config(args.preset, overrides)
    except ValueError as e:
        parser.error(str(e))
    num_seeds = 1 if args.seeds is None else args.seeds
    try:
        check_memory(config, num_seeds)
    except ValueError as e:
        parser.error(f"--seeds {num_seeds}: {e}")
    seed = 0 if args.seed is None else args.seed
    chunk = (run_loop.auto_chunk_iterations(config.num_iterations)
             if args.chunk_iterations is None else args.chunk_iterations)
    run_dir = pathlib.Path(args.out) if args.out else \
        rundir.default_run_dir(rundir.env_name(config))
    problem = rundir.new_dir_problem(run_dir)
    if problem is not None:
        parser.error(f"--out {problem}" if args.out else f"{problem} (choose one with --out)")
    run_dir.mkdir(parents=True, exist_ok=True)
    rundir.write_json(run_dir / rundir.CONFIG_JSON, rundir.config_to_json(config))
    argv = sys.argv[1:] if args.argv is None else args.argv
    info = rundir.new_run_info(config, num_seeds, seed, chunk, args.preset,
                               shlex.join(["purea2c", *argv]))
    rundir.write_json(run_dir / rundir.RUN_JSON, info)
    return run_dir, config, info


def _start_state(args: argparse.Namespace, run_dir: pathlib.Path, config: Config,
                 info: dict[str, Any]) -> tuple[Any, int]:
    """``(state, iteration)``: with ``--resume`` the newest intact checkpoint (if there is
    one), else the vmapped ``init`` of every seed's key."""
    num_seeds, seed = info["seeds"], info["seed"]
    num_iterations = config.num_iterations
    restored = None
    if args.resume is not None:
        try:
            restored = _restore(run_dir, config, num_seeds, None)
        except rundir.NoCheckpoint:
            pass
    if restored is not None:
        state, resume_step = restored.state, restored.step
        print(f"purea2c: resuming {run_dir} at iteration {resume_step}/{num_iterations}"
              + (" (already finished)" if resume_step >= num_iterations else ""))
    else:
        keys = jax.random.split(jax.random.key(seed), num_seeds)
        state = run_loop.vmapped_init(keys, config)
        resume_step = 0
        verb = "restarting" if args.resume is not None else "training"
        total_steps = num_iterations * config.steps_per_iteration
        print(f"purea2c: {verb} {rundir.env_name(config)}, {num_seeds} "
              f"seed{'s' * (num_seeds > 1)} x {total_steps:,} env steps ({config.num_envs} "
              f"envs each) on {jax.default_backend()} -> {run_dir}")
    state = run_loop.shard_seeds(run_loop.strip_weak_types(state))
    devices = {d for leaf in jax.tree.leaves(state) for d in leaf.devices()}
    if len(devices) > 1:
        print(f"purea2c: {num_seeds} seeds sharded over {len(devices)} devices")
    return state, resume_step


def _restore(run_dir: pathlib.Path, config: Config, num_seeds: int,
             step: int | None) -> rundir.Restored:
    """`run_dir.restore_state`, with one line on stderr per damaged checkpoint skipped."""
    restored = rundir.restore_state(run_dir, config, num_seeds, step)
    for skipped, fault in restored.skipped:
        print(f"purea2c: warning: checkpoint {skipped} is damaged and was skipped "
              f"({' '.join(fault.split())}); using checkpoint {restored.step}",
              file=sys.stderr, flush=True)
    return restored


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    _check_flags(args, parser, _TRAIN_RULES)
    run_dir, config, info = _open_run(args, parser)
    num_seeds, seed, chunk = info["seeds"], info["seed"], info["chunk_iterations"]
    num_iterations = config.num_iterations
    steps_per_iteration = config.steps_per_iteration
    ckpt_dir = run_dir / rundir.CHECKPOINTS
    env_name = rundir.env_name(config)
    total_steps = num_iterations * steps_per_iteration

    with run_loop.StopRequest() as stop:
        start = time.perf_counter()
        state, resume_step = _start_state(args, run_dir, config, info)
        program = run_loop.ChunkProgram(state, config)
        print("compiling the training program ... ", end="", flush=True)
        dtypes = program.metric_dtypes(chunk)
        print(f"{time.perf_counter() - start:.1f} s ({num_iterations} iterations "
              f"in chunks of {chunk}" + ("" if num_iterations % chunk == 0 else
                                         f" + one of {num_iterations % chunk}") + ")", flush=True)

        log = sinks.MetricsLog(run_dir, tuple(dtypes), dtypes, num_seeds, resume_step)
        width = max(1, math.ceil(num_iterations / 50), min(chunk, num_iterations))
        outputs: list[Any] = [log]
        try:
            if args.tensorboard:
                # On resume, TensorBoard drops the events logged after the checkpoint (steps
                # are env steps per seed).
                outputs.append(sinks.TensorBoard(
                    run_dir / rundir.TENSORBOARD,
                    resume_step * steps_per_iteration + 1 if args.resume is not None else None))
            progress = sinks.Progress(total_steps, resume_step * steps_per_iteration, num_seeds,
                                      steps_per_iteration, width, enabled=not args.no_progress,
                                      history=log.tail(width) if resume_step > 0 else None)
            outputs.append(progress)
            checkpoints = sinks.Checkpoints(
                ckpt_dir, args.keep_checkpoints, args.checkpoint_interval, num_iterations,
                metadata=lambda it: {"iteration": it, "seeds": num_seeds,
                                     "env_steps": it * steps_per_iteration},
                saved=resume_step if resume_step > 0 else None, after_save=[log.write_parquet])
            rundir.set_status(run_dir, info, "running")

            run_start = time.perf_counter()
            end = run_loop.run_in_chunks(state, config, program, num_iterations, chunk,
                                         callbacks=outputs, should_stop=stop.requested,
                                         start_iteration=resume_step,
                                         state_callbacks=[checkpoints])
            jax.block_until_ready(end.state)
            run_s = time.perf_counter() - run_start
            progress.close()
            if end.iteration > 0:
                checkpoints.save(end.iteration, end.state)
            if log.iterations > 0:
                plots.plot_learning_curve(log.arrays(), run_dir / rundir.CURVE_PNG,
                                          f"A2C on {env_name}", width)
        finally:
            for output in outputs:
                output.close()

        if end.diverged_at is not None:
            rundir.set_status(run_dir, info, f"diverged at iteration {end.diverged_at}")
            kept = (f"the last finite state is checkpoint {ckpt_dir / str(end.iteration)}"
                    if end.iteration > 0 else "no finite state was saved")
            _print_error(f"training diverged at iteration {end.diverged_at}/{num_iterations} "
                         f"(non-finite losses, gradients or parameters); {kept}")
            return EXIT_DIVERGED
        if stop.signum is not None and end.iteration < num_iterations:
            rundir.set_status(run_dir, info, f"interrupted at iteration {end.iteration}")
            where = f"checkpoint saved in {ckpt_dir}" if end.iteration > 0 else \
                "stopped before the first chunk, nothing to save"
            print(f"stopped at iteration {end.iteration}/{num_iterations}; {where}. Continue "
                  f"with: purea2c train --resume {run_dir}", flush=True)
            return 128 + stop.signum

    rundir.set_status(run_dir, info, "finished")
    steps_done = (end.iteration - resume_step) * steps_per_iteration * num_seeds
    print(f"trained {steps_done:,} env steps in {run_s:.1f} s "
          f"({steps_done / max(run_s, 1e-9):,.0f} env steps/s incl. checkpoints)")
    if args.eval_episodes > 0:
        seed_evaluation.check_finite(end.state.params, f"{run_dir} at iteration {end.iteration}")
        returns = seed_evaluation.evaluate_seeds(config, end.state.params, args.eval_episodes,
                                                 seed)
        summary, lines = seed_evaluation.summarize(returns, args.eval_episodes, greedy=True)
        print("\n".join(lines))
        rundir.write_json(run_dir / rundir.EVALUATION_JSON, {**summary, "step": end.iteration})
    print(f"run directory: {run_dir}")
    return 0


# ------------------------------------------------------------------------------------------
# evaluate and render
# ------------------------------------------------------------------------------------------


def _evaluate_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    _check_flags(args, parser, _EVALUATE_RULES)
    config, info = rundir.load_run(args.run_dir)
    restored = _restore(pathlib.Path(args.run_dir), config, info["seeds"], args.step)
    state = restored.state
    step = int(np.asarray(state.iteration).reshape(-1)[0])
    seed_evaluation.check_finite(state.params, f"{args.run_dir} at iteration {step}")
    print(f"purea2c: evaluating {args.run_dir} (iteration {step}/{config.num_iterations}, "
          f"{info['seeds']} seed{'s' * (info['seeds'] > 1)})")
    returns = seed_evaluation.evaluate_seeds(config, state.params, args.episodes, args.seed,
                                             greedy=not args.sample)
    summary, lines = seed_evaluation.summarize(returns, args.episodes, greedy=not args.sample)
    print("\n".join(lines))
    rundir.write_json(pathlib.Path(args.run_dir) / rundir.EVALUATION_JSON,
                      {**summary, "step": step})
    return 0


def _render_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    _check_flags(args, parser, _RENDER_RULES)
    run_dir = pathlib.Path(args.run_dir)
    out = pathlib.Path(args.out) if args.out else run_dir / rundir.RENDER_GIF
    if args.out:
        _check_file_out(out, parser)
    config, info = rundir.load_run(run_dir)
    if args.seed_index >= info["seeds"]:
        parser.error(f"--seed-index must be in [0, {info['seeds']}), got {args.seed_index}")
    state = _restore(run_dir, config, info["seeds"], args.step).state
    if args.seed_index in seed_evaluation.nonfinite_seeds(state.params):
        raise RunError(f"{run_dir}: the parameters of seed {args.seed_index} are not finite "
                       "(NaN or inf); rendering refused")
    start = time.perf_counter()
    episode = rendering.render_gif(config, rundir.seed_params(state, args.seed_index), out,
                                   key=jax.random.key(args.seed), greedy=not args.sample,
                                   max_steps=args.max_steps, scale=args.scale)
    print(f"wrote {out}: seed {args.seed_index}, {len(episode.states) - 1} steps, return "
          f"{episode.total_return:.1f} ({time.perf_counter() - start:.1f} s)")
    return 0


# ------------------------------------------------------------------------------------------
# parser and main
# ------------------------------------------------------------------------------------------

_EXAMPLES = """\
examples:
  purea2c                                   train CartPole-v1 on the defaults (= purea2c train)
  purea2c train --seeds 16 --out runs/cp    16 seeds vmapped in one program
  purea2c train --preset coax_a2c           the coax A2C example's settings
  purea2c train --env Acrobot-v1 --pi-learning-rate 3e-4 --hidden-sizes 128 128
  purea2c train --resume runs/cp            continue an interrupted run (Ctrl-C / SIGTERM save)
  purea2c evaluate runs/cp --episodes 100   mean return of each seed's policy
  purea2c render runs/cp                    runs/cp/render.gif of the trained policy
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows the defaults of the run flags and keeps the examples' line breaks (descriptions
    are wrapped by `_wrap`)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.dest.startswith("config__") or action.default is None
                or action.default is False
                or action.default is argparse.SUPPRESS or "[default" in text):
            return text
        return text + " [default: %(default)s]"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="purea2c", formatter_class=_Formatter, epilog=_EXAMPLES,
        description=flags.wrap("A2C in pure JAX: a whole training run (any number of seeds) is "
                          "one XLA program. Without a command, `purea2c [flags]` is "
                          "`purea2c train [flags]`; `purea2c COMMAND --help` describes each "
                          "command."))
    from purea2c import __version__

    parser.add_argument("--version", action="version", version=f"purea2c {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    train = sub.add_parser(
        "train", formatter_class=_Formatter, epilog=_EXAMPLES,
        usage="%(prog)s [-h] [run flags] [Config flags]",
        help="train (the default command); writes a run directory",
        description=flags.wrap(
            "Train A2C on a gymnax environment and write a run directory: config.json, "
            "run.json, metrics.csv and metrics.parquet (one row per iteration and seed), "
            "learning_curve.png, checkpoints/ and evaluation.json."
            "\n\nThe compiled program runs in chunks of iterations; a progress bar shows env "
            "steps and the recent mean training return. Ctrl-C or SIGTERM saves a checkpoint "
            "at the end of the current chunk and exits (status 128 + signal number); "
            "`purea2c train --resume RUN_DIR` then finishes bitwise as an uninterrupted run "
            "would."))
    run_group = train.add_argument_group("run")
    run_group.add_argument("--seeds", type=int, default=None, metavar="N",
                           help="independent seeds trained together, vmapped in one program "
                                "[default: 1]")
    run_group.add_argument("--seed", type=int, default=None,
                           help="base seed; seed i trains from "
                                "jax.random.split(jax.random.key(SEED), N)[i] [default: 0]")
    run_group.add_argument("--preset", default=None, choices=Config.preset_names(),
                           help="start from a named Config preset (Config.preset); default: "
                                "the preset named after --env if there is one, else the "
                                "Config defaults")
    run_group.add_argument("--out", default=None, metavar="DIR",
                           help="run directory [default: runs/<env>-<timestamp>]")
    run_group.add_argument("--resume", default=None, metavar="RUN_DIR",
                           help="continue the run in RUN_DIR from its latest checkpoint, with "
                                "its saved config, seeds and chunking")
    run_group.add_argument("--chunk-iterations", type=int, default=None, metavar="K",
                           help="iterations per compiled chunk (progress and checkpoints "
                                "happen between chunks) [default: the largest divisor of the "
                                "iteration count that gives >= 100 chunks]")
    run_group.add_argument("--checkpoint-interval", type=float, default=60.0, metavar="SECONDS",
                           help="save a checkpoint after the first chunk that ends this long "
                                "after the previous save (0: after every chunk); the end of "
                                "training and Ctrl-C/SIGTERM always save")
    run_group.add_argument("--keep-checkpoints", type=int, default=2, metavar="K",
                           help="keep the newest K checkpoints")
    run_group.add_argument("--eval-episodes", type=int, default=100, metavar="N",
                           help="greedy evaluation episodes per seed after training (0: skip)")
    run_group.add_argument("--tensorboard", action="store_true",
                           help="also write TensorBoard scalars (mean over seeds) to "
                                "RUN_DIR/tensorboard (needs purea2c[tensorboard])")
    run_group.add_argument("--no-progress", action="store_true",
                           help="no progress bar or progress lines")
    flags.add_config_flags(train)

    ev = sub.add_parser(
        "evaluate", formatter_class=_Formatter,
        help="mean return of a trained run over N episodes",
        description=flags.wrap("Evaluate every seed of a run on fresh episodes (greedy actions "
                          "unless --sample), print the mean returns and write "
                          "RUN_DIR/evaluation.json."))
    ev.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of `purea2c train`")
    ev.add_argument("--episodes", type=int, default=100, metavar="N",
                    help="episodes per seed")
    ev.add_argument("--sample", action="store_true",
                    help="sample actions from pi instead of taking its mode")
    ev.add_argument("--seed", type=int, default=0, help="seed of the evaluation episodes")
    ev.add_argument("--step", type=int, default=None,
                    help="checkpoint (iteration) to evaluate [default: the latest]")

    rd = sub.add_parser(
        "render", formatter_class=_Formatter,
        help="a GIF of the trained policy (environments gymnax can draw)",
        description=flags.wrap("Play one episode of a trained policy and write it as a GIF. Works "
                          "for the environments gymnax's visualizer draws: "
                          + ", ".join(rendering.DRAWABLE_ENVS) + " (classic control needs pygame: "
                          "pip install 'purea2c[render]')."))
    rd.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of `purea2c train`")
    rd.add_argument("--out", default=None, metavar="FILE.gif",
                    help="output file [default: RUN_DIR/render.gif]")
    rd.add_argument("--seed-index", type=int, default=0, metavar="I",
                    help="which of the run's seeds to play")
    rd.add_argument("--seed", type=int, default=0, help="seed of the episode")
    rd.add_argument("--sample", action="store_true",
                    help="sample actions from pi instead of taking its mode")
    rd.add_argument("--max-steps", type=int, default=None, metavar="T",
                    help="stop after T steps [default: the env's episode limit]")
    for command in (train, ev, rd):
        command.add_argument("--no-compile-cache", action="store_true",
                             help="do not use the persistent compilation cache (compiled "
                                  "programs kept in $PUREA2C_CACHE_DIR or "
                                  "~/.cache/purea2c/jax, so a second run of the same program "
                                  "skips most of its compile time)")
    rd.add_argument("--scale", type=float, default=1.0,
                    help="resize the frames by this factor")
    rd.add_argument("--step", type=int, default=None,
                    help="checkpoint (iteration) to play [default: the latest]")
    return parser


def compile_cache_dir() -> pathlib.Path:
    """Where the command line keeps compiled programs: ``$PUREA2C_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/purea2c/jax`` (default ``~/.cache/purea2c/jax``)."""
    if os.environ.get("PUREA2C_CACHE_DIR"):
        return pathlib.Path(os.environ["PUREA2C_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "purea2c" / "jax"


def enable_compile_cache() -> None:
    """JAX's persistent compilation cache in `compile_cache_dir`, for every program (the
    same as ``jax.config.update("jax_compilation_cache_dir", ...)`` in Python). A
    cache directory the user already set (``JAX_COMPILATION_CACHE_DIR``) is kept."""
    if jax.config.jax_compilation_cache_dir:
        return
    try:
        directory = compile_cache_dir()
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # no cache where none can be written; compiling still works
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``purea2c`` and ``python -m purea2c``; returns the exit status. A bad
    command line exits (``SystemExit(2)``) after one line on stderr."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0].startswith("-")
                         and args_list[0] not in ("-h", "--help", "--version")):
        args_list = ["train", *args_list]
    parser = build_parser()
    args, unknown = parser.parse_known_args(args_list)
    subparser = _subparsers(parser)[args.command]
    if unknown:  # reported by the command's parser, with its usage
        subparser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.argv = argv if argv is None else list(argv)
    handler = {"train": _train, "evaluate": _evaluate_command,
               "render": _render_command}[args.command]
    if not args.no_compile_cache:
        enable_compile_cache()
    try:
        return handler(args, subparser)
    except (RunError, OSError) as e:
        _print_error(e)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
