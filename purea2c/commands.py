"""The handlers of ``purea2c evaluate``, ``render`` and ``envs``, and what every handler of
the command line shares: the exit statuses, the one-line error, the rules of flag values
(checked before anything is built) and restoring a run's checkpoint. ``train`` is
`purea2c.train_command`'s; the parser is `purea2c.cli`'s.

A handler is ``handler(args, parser) -> exit status``; it reports a bad command line with
``parser.error`` (exit status 2) and a problem with a run or its files with `RunError`
(`purea2c.cli.main` prints it, exit status 1).
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import sys
import time
from typing import Any, Callable

import jax
import numpy as np

from purea2c import rendering, seed_evaluation
from purea2c import run_dir as rundir
from purea2c.config import Config
from purea2c.errors import RunError
from purea2c.processes import say

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_DIVERGED = 3


def print_error(message: str) -> None:
    """``purea2c: error: MESSAGE`` on stderr, on one line."""
    print(f"purea2c: error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------
# Flag values, checked before anything is built
# ------------------------------------------------------------------------------------------

# (attribute, flag, rule, test): a flag's value (when given) must pass its test.
Rule = tuple[str, str, str, Callable[[Any], bool]]
_SEED_RULE = ("seed", "--seed", "an int in [-2**63, 2**63)", lambda v: -2**63 <= v < 2**63)
_STEP_RULE = ("step", "--step", ">= 0", lambda v: v >= 0)
TRAIN_RULES: list[Rule] = [
    ("seeds", "--seeds", ">= 1", lambda v: v >= 1),
    _SEED_RULE,
    ("chunk_iterations", "--chunk-iterations", ">= 1", lambda v: v >= 1),
    ("checkpoint_interval", "--checkpoint-interval", "a number of seconds >= 0",
     lambda v: v >= 0),  # NaN fails
    ("keep_checkpoints", "--keep-checkpoints", ">= 1", lambda v: v >= 1),
    ("eval_episodes", "--eval-episodes", ">= 0 (0: no evaluation)", lambda v: v >= 0),
    ("num_processes", "--num-processes", ">= 1", lambda v: v >= 1),
]
EVALUATE_RULES: list[Rule] = [
    ("episodes", "--episodes", ">= 1", lambda v: v >= 1), _SEED_RULE, _STEP_RULE]
RENDER_RULES: list[Rule] = [
    ("seed_index", "--seed-index", ">= 0", lambda v: v >= 0),
    _SEED_RULE,
    ("max_steps", "--max-steps", ">= 1", lambda v: v >= 1),
    ("scale", "--scale", "a finite number > 0", lambda v: math.isfinite(v) and v > 0),
    _STEP_RULE,
]


def check_flags(args: argparse.Namespace, parser: argparse.ArgumentParser,
                rules: list[Rule]) -> None:
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
# a run's checkpoint
# ------------------------------------------------------------------------------------------


def restore(run_dir: pathlib.Path, config: Config, info: dict[str, Any],
            step: int | None) -> rundir.Restored:
    """`run_dir.restore_state`, with one line on stderr per damaged checkpoint skipped."""
    restored = rundir.restore_state(run_dir, config, info["seeds"], step,
                                    data_parallel=info.get("data_parallel"))
    for skipped, fault in restored.skipped:
        say(f"purea2c: warning: checkpoint {skipped} is damaged and was skipped "
            f"({' '.join(fault.split())}); using checkpoint {restored.step}",
            file=sys.stderr, flush=True)
    return restored


# ------------------------------------------------------------------------------------------
# evaluate, render, envs
# ------------------------------------------------------------------------------------------


def evaluate_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    check_flags(args, parser, EVALUATE_RULES)
    config, info = rundir.load_run(args.run_dir)
    changes = rundir.environment_changes(info)
    if changes:
        print(f"purea2c: differs from the run's record: {'; '.join(changes)}")
    restored = restore(pathlib.Path(args.run_dir), config, info, args.step)
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


def render_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    check_flags(args, parser, RENDER_RULES)
    run_dir = pathlib.Path(args.run_dir)
    out = pathlib.Path(args.out) if args.out else run_dir / rundir.RENDER_GIF
    if args.out:
        _check_file_out(out, parser)
    config, info = rundir.load_run(run_dir)
    if args.seed_index >= info["seeds"]:
        parser.error(f"--seed-index must be in [0, {info['seeds']}), got {args.seed_index}")
    state = restore(run_dir, config, info, args.step).state
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


def envs_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from purea2c import envs

    try:
        print(envs.describe(args.suites or None, with_ids=args.ids))
    except envs.EnvError as e:
        parser.error(str(e))
    return 0
