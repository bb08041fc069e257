"""Command line: ``purea2c train | evaluate | render | envs`` (also ``python -m purea2c``):
the argument parser and the dispatch to the command handlers.

``purea2c`` with no arguments (or with only flags) means ``purea2c train``: it trains the
default config, shows a progress bar and leaves a run directory (see `purea2c.run_dir`).
The jobs behind the handlers live in their own modules:

    train_command.py    ``train``: start or resume a run, wire the run loop and the sinks
    commands.py         ``evaluate``, ``render``, ``envs``; exit statuses, flag rules
    processes.py        joining processes (jax.distributed), a lost process, the mesh
    compile_cache.py    the persistent compilation cache
    flags.py            Config fields as flags
    run_dir.py          the run directory: config.json, loading a run's state
    run_record.py       run.json: provenance, sessions, status
    run_loop.py         the chunked run of one compiled program, callbacks, stop requests
    sharding.py         the run over several devices and processes (`mesh_run.MeshRun`)
    sinks.py            metrics.csv / parquet, TensorBoard, progress bar, checkpoints
    plots.py            the learning curve
    seed_evaluation.py  every seed's evaluation, evaluation.json's summary
    rendering.py        an episode of a policy as a GIF

Errors are one line on stderr, ``purea2c: error: ...``: exit status 2 for a bad command line
(checked before anything is compiled), 1 for a problem with a run or its files (and for a
process of a multi-process run that lost another: `processes.lost_process_error`), 3 when
training diverges (a non-finite iteration, or a chunk that skipped more than
``--max-skipped-share`` of its updates: `run_loop.divergence`), 128 + N after signal N.
Nothing imported here imports an environment suite or starts JAX's backends: joining the
processes of a run must come first.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from purea2c import flags, processes, rendering
from purea2c.commands import EXIT_DIVERGED, EXIT_ERROR, EXIT_USAGE
from purea2c.commands import envs_command as _envs_command
from purea2c.commands import evaluate_command as _evaluate_command
from purea2c.commands import print_error as _print_error
from purea2c.commands import render_command as _render_command
from purea2c.compile_cache import compile_cache_dir, enable_compile_cache
from purea2c.config import Config
from purea2c.errors import RunError
from purea2c.train_command import train as _train

__all__ = ["EXIT_DIVERGED", "EXIT_ERROR", "EXIT_USAGE", "build_parser", "compile_cache_dir",
           "enable_compile_cache", "main"]


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


_EXAMPLES = """\
examples:
  purea2c                                   train CartPole-v1 on the defaults (= purea2c train)
  purea2c train --seeds 16 --out runs/cp    16 seeds vmapped in one program
  purea2c train --preset coax_a2c           the coax A2C example's settings
  purea2c train --env Acrobot-v1 --pi-learning-rate 3e-4 --hidden-sizes 128 128
  purea2c train --resume runs/cp            continue an interrupted run (Ctrl-C / SIGTERM save)
  purea2c train --data-parallel --num-envs 1024 --buffer-capacity 16384 --batch-size 16384
                                            one agent, its envs split over all devices
  purea2c train --seeds 64 --out runs/mh --coordinator 10.0.0.1:1234 --num-processes 2 \\
      --process-id 0                        64 seeds over 2 machines (the other: --process-id 1)
  purea2c evaluate runs/cp --episodes 100   mean return of each seed's policy
  purea2c render runs/cp                    runs/cp/render.gif of the trained policy
  purea2c train --env brax/inverted_pendulum --env-kwargs episode_length=500
  purea2c envs --ids navix                  the suites, and every id of navix
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
            "Train A2C on an environment of any suite (--env brax/inverted_pendulum; "
            "`purea2c envs` lists them) and write a run directory: config.json, "
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
    run_group.add_argument("--wandb", metavar="PROJECT", default=None,
                           help="also log the config, every iteration's metrics (mean over "
                                "seeds; the episode return's min and max) and the run record "
                                "to the Weights & Biases project PROJECT (needs "
                                "purea2c[wandb]; WANDB_MODE=offline logs without an account)")
    run_group.add_argument("--no-progress", action="store_true",
                           help="no progress bar or progress lines")
    scale = train.add_argument_group("devices and processes", flags.wrap(
        "--seeds N shards the seeds over this machine's devices when N is a multiple of "
        "their count. With several processes (one per machine, joined by "
        "jax.distributed.initialize) the seeds are sharded over the devices of all of them, "
        "N must be a multiple of that count, and process 0 writes the run directory "
        "(checkpoints gathered from every process): give every process the same command and "
        "the same --out on a shared filesystem, and the same again with --resume RUN_DIR."))
    scale.add_argument("--data-parallel", action="store_true",
                       help="train ONE agent over all devices: its --num-envs envs, "
                            "--buffer-capacity and --batch-size are split over the devices "
                            "(each a multiple of the device count), gradients are averaged "
                            "at every update and the parameters stay identical everywhere; "
                            "with --seeds 1 only. --resume continues it on as many devices")
    scale.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                       help="join several processes: the address of process 0 and a port "
                            "open to the others (with --num-processes and --process-id)")
    scale.add_argument("--num-processes", type=int, default=None, metavar="N",
                       help="how many processes the run has (with --coordinator)")
    scale.add_argument("--process-id", type=int, default=None, metavar="I",
                       help="this process's id, 0 .. N-1; process 0 writes the run "
                            "directory (with --coordinator)")
    scale.add_argument("--distributed", action="store_true",
                       help="join the processes of a cluster JAX detects (SLURM, Open MPI, "
                            "Cloud TPU, ...): jax.distributed.initialize() with no "
                            "arguments, instead of the three flags above")
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
        help="a GIF of the trained policy (gymnax environments it can draw)",
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

    en = sub.add_parser(
        "envs", formatter_class=_Formatter,
        help="the environment suites, which are installed, and their ids",
        description=flags.wrap("List the environment suites purea2c reaches (ids are "
                               "'suite/name'; a bare name is gymnax's), the installed version "
                               "of each or the extra that installs it, and how many ids each "
                               "registers."))
    en.add_argument("suites", nargs="*", metavar="SUITE", help="only these suites")
    en.add_argument("--ids", action="store_true", help="also list every environment id")
    en.set_defaults(no_compile_cache=True)
    return parser


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
    args.argv, args.session, args.wandb_run = (argv if argv is None else list(argv)), None, None
    handler = {"train": _train, "evaluate": _evaluate_command,
               "render": _render_command, "envs": _envs_command}[args.command]
    if args.no_compile_cache:  # on since ``import purea2c``, unless $PUREA2C_COMPILE_CACHE=0
        enable_compile_cache(False)
    error = lost = None
    try:
        status = handler(args, subparser)
    except (RunError, OSError) as e:
        _print_error(e)
        status, error = EXIT_ERROR, " ".join(str(e).split())
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        status, error = 130, "aborted"
    except Exception as e:  # with several processes, a lost one: say which, and end
        lost = processes.lost_process_error(e)
        if lost is None:
            raise
        _print_error(lost)
        status, error = EXIT_ERROR, " ".join(str(lost).split())
    if args.session is not None:  # a train command's record: end time and exit status
        args.session.end(status, error)
    if getattr(args, "wandb_run", None) is not None:  # finished with the exit status
        args.wandb_run.close(status)
    if lost is not None:
        processes.end_now(status)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
