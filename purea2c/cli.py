"""Command line: ``purea2c train | evaluate | render`` (also ``python -m purea2c``): the
argument parser and its command handlers.

``purea2c`` with no arguments (or with only flags) means ``purea2c train``: it trains the
default config, shows a progress bar and leaves a run directory (see `purea2c.run_dir`).
The jobs behind the handlers live in their own modules:

    flags.py            Config fields as flags
    run_dir.py          the run directory: config.json, run.json, loading a run's state
    run_loop.py         the chunked run of one compiled program, callbacks, stop requests
    sharding.py         the run over several devices and processes (`sharding.MeshRun`)
    sinks.py            metrics.csv / parquet, TensorBoard, progress bar, checkpoints
    plots.py            the learning curve
    seed_evaluation.py  every seed's evaluation, evaluation.json's summary
    rendering.py        an episode of a policy as a GIF

Errors are one line on stderr, ``purea2c: error: ...``: exit status 2 for a bad command line
(checked before anything is compiled), 1 for a problem with a run or its files, 3 when
training diverges (a non-finite iteration, or a chunk that skipped more than
``--max-skipped-share`` of its updates: `run_loop.divergence`), 128 + N after signal N.
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

from purea2c import flags, plots, rendering, run_loop, seed_evaluation, sharding, sinks
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
    ("num_processes", "--num-processes", ">= 1", lambda v: v >= 1),
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


def _say(*args: Any, **kwargs: Any) -> None:
    """``print``, on process 0 only: every process of a multi-process run runs the same
    command, and one of them reports."""
    if jax.process_index() == 0:
        print(*args, **kwargs)


def _check_launch_flags(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """The flags that spread a run over devices and processes, checked before anything
    starts JAX: ``--coordinator``, ``--num-processes`` and ``--process-id`` all or none,
    ``--distributed`` alone, ``--data-parallel`` for one agent."""
    launch = {"--coordinator": args.coordinator, "--num-processes": args.num_processes,
              "--process-id": args.process_id}
    given = [flag for flag, value in launch.items() if value is not None]
    if args.distributed and given:
        parser.error(f"--distributed takes the coordinator, process count and process id "
                     f"from the cluster (SLURM, Open MPI, ...); drop {given}")
    if given and len(given) < len(launch):
        missing = [flag for flag in launch if flag not in given]
        parser.error(f"--coordinator, --num-processes and --process-id go together (all three "
                     f"on every process, or --distributed on a cluster JAX detects); missing "
                     f"{missing}")
    if given:
        host, colon, port = args.coordinator.rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            parser.error(f"--coordinator must be HOST:PORT, the address of process 0 and a "
                         f"port open to the others, got {args.coordinator!r}")
        if not 0 <= args.process_id < args.num_processes:
            parser.error(f"--process-id must be in [0, {args.num_processes}) (one id per "
                         f"process of --num-processes {args.num_processes}), got "
                         f"{args.process_id}")
    if args.data_parallel and args.seeds is not None and args.seeds != 1:
        parser.error(f"--data-parallel trains one agent whose envs are split over the devices; "
                     f"it takes no --seeds {args.seeds} (without --data-parallel, --seeds "
                     f"{args.seeds} shards the seeds over the devices)")


def _join(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Joins the run's processes with ``jax.distributed.initialize`` when the command line
    asks for several. It must come before anything starts JAX's backends (building a
    `Config` does, to check its environment)."""
    if args.coordinator is None and not args.distributed:
        return
    try:
        if args.distributed:
            jax.distributed.initialize()
        else:
            jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    except ValueError as e:
        if args.distributed:
            parser.error(f"--distributed: JAX detected no cluster to join ({e}); give "
                         "--coordinator HOST:PORT --num-processes N --process-id I instead")
        raise RunError(f"jax.distributed.initialize failed: {e}") from e
    except Exception as e:  # the runtime's errors: a coordinator not reached in time, ...
        where = "the cluster's coordinator" if args.distributed else \
            f"the coordinator {args.coordinator}"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise RunError(f"process could not join {where} (jax.distributed.initialize): "
                       f"{first}") from e
    print(f"purea2c: process {jax.process_index()} of {jax.process_count()} joined: "
          f"{jax.local_device_count()} of the run's {jax.device_count()} devices are here",
          flush=True)


def _on_every_process(step: Callable[[], Any]) -> Any:
    """``step()``; with several processes, a failure on any of them (an error and exit)
    ends all of them, rather than leaving the others waiting for it at their next
    collective. Process 0 alone checks and writes a new run directory."""
    if jax.process_count() == 1:
        return step()
    try:
        result = step()
    except BaseException:
        sharding.process_max(1)
        raise
    if sharding.process_max(0):
        raise RunError("another process of this run could not start it (see its error)")
    return result


def _open_run(args: argparse.Namespace, parser: argparse.ArgumentParser
              ) -> tuple[pathlib.Path, Config, dict[str, Any], bool]:
    """``(run_dir, config, run_info, new)``: a new run from the flags, or the one that
    ``--resume`` names with its saved settings; nothing is written yet. Process 0 alone
    checks the folder of a new run (the others do not write it)."""
    overrides = flags.config_overrides(args)
    if args.resume is not None:
        given = [f"--{k.replace('_', '-')}" for k in overrides]
        given += [flag for flag, value in (("--seeds", args.seeds), ("--seed", args.seed),
                                           ("--preset", args.preset), ("--out", args.out),
                                           ("--chunk-iterations", args.chunk_iterations),
                                           ("--data-parallel", args.data_parallel or None))
                  if value is not None]
        if given:
            parser.error(f"--resume continues a run with its saved settings; drop {given}")
        run_dir = pathlib.Path(args.resume)
        config, info = rundir.load_run(run_dir)
        if not os.access(run_dir, os.W_OK | os.X_OK):
            raise RunError(f"{run_dir} is not writable")
        return run_dir, config, info, False

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
    problem = rundir.new_dir_problem(run_dir) if jax.process_index() == 0 else None
    if problem is not None:
        parser.error(f"--out {problem}" if args.out else f"{problem} (choose one with --out)")
    info = rundir.new_run_info(config, num_seeds, seed, chunk, args.preset, _command(args),
                               data_parallel=jax.device_count() if args.data_parallel else None)
    return run_dir, config, info, True


def _command(args: argparse.Namespace) -> str:
    return shlex.join(["purea2c", *(sys.argv[1:] if args.argv is None else args.argv)])


def _create_run(run_dir: pathlib.Path, config: Config, info: dict[str, Any]) -> None:
    """Writes a new run's folder, ``config.json`` and ``run.json`` (process 0 only)."""
    if jax.process_index() == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        rundir.write_json(run_dir / rundir.CONFIG_JSON, rundir.config_to_json(config))
        rundir.write_json(run_dir / rundir.RUN_JSON, info)


def _mesh_run(parser: argparse.ArgumentParser, config: Config,
              info: dict[str, Any]) -> sharding.MeshRun | None:
    """The `sharding.MeshRun` that spreads the run over the devices, or None for the
    vmapped run on one device. One data-parallel agent takes as many devices as it was
    created with (run.json ``data_parallel``). Seeds are sharded over all devices of all
    processes; on one process only when their count is a multiple of the device count
    (else they stay on the first device), on several that is required."""
    num_seeds, data_parallel = info["seeds"], info.get("data_parallel")
    devices, processes = jax.devices(), jax.process_count()
    where = f"the {processes} processes have" if processes > 1 else "this process has"
    if data_parallel is not None:
        if len(devices) < data_parallel or (processes > 1 and len(devices) != data_parallel):
            parser.error(f"this run trains one agent over {data_parallel} devices (run.json "
                         f"data_parallel) and continues on as many; {where} {len(devices)}")
        try:
            return sharding.MeshRun(config, 1, devices[:data_parallel], data_parallel=True)
        except ValueError as e:
            parser.error(f"--data-parallel over {data_parallel} devices: {e}")
    if processes > 1:
        if num_seeds % len(devices):
            parser.error(f"--seeds {num_seeds} cannot be sharded over the {len(devices)} "
                         f"devices of {processes} processes: the seed count must be a multiple "
                         f"of the device count (each device trains seeds / {len(devices)})")
        return sharding.MeshRun(config, num_seeds, devices)
    if len(devices) > 1 and num_seeds % len(devices) == 0:
        return sharding.MeshRun(config, num_seeds, devices)
    return None


def _start_state(args: argparse.Namespace, run_dir: pathlib.Path, config: Config,
                 info: dict[str, Any], mesh_run: sharding.MeshRun | None
                 ) -> tuple[Any, int]:
    """``(state, iteration)``: with ``--resume`` the newest intact checkpoint (if there is
    one), else the vmapped ``init`` of every seed's key; laid out by ``mesh_run`` when the
    run is spread over devices (`_mesh_run`)."""
    num_seeds, seed = info["seeds"], info["seed"]
    num_iterations = config.num_iterations
    restored = None
    if args.resume is not None:
        try:
            restored = _restore(run_dir, config, info, None)
        except rundir.NoCheckpoint:
            pass
    if restored is not None:
        state, resume_step = restored.state, restored.step
        _say(f"purea2c: resuming {run_dir} at iteration {resume_step}/{num_iterations}"
             + (" (already finished)" if resume_step >= num_iterations else ""))
        state = run_loop.strip_weak_types(state) if mesh_run is None else mesh_run.place(state)
    else:
        resume_step = 0
        verb = "restarting" if args.resume is not None else "training"
        total_steps = num_iterations * config.steps_per_iteration
        _say(f"purea2c: {verb} {rundir.env_name(config)}, {num_seeds} "
             f"seed{'s' * (num_seeds > 1)} x {total_steps:,} env steps ({config.num_envs} "
             f"envs each) on {jax.default_backend()} -> {run_dir}")
        if mesh_run is None:
            keys = jax.random.split(jax.random.key(seed), num_seeds)
            state = run_loop.strip_weak_types(run_loop.vmapped_init(keys, config))
        else:
            state = mesh_run.init(seed)
    if mesh_run is None and jax.device_count() > 1:
        _say(f"purea2c: {num_seeds} seed{'s' * (num_seeds > 1)} on one of the "
             f"{jax.device_count()} devices (a seed count that is a multiple of "
             f"{jax.device_count()} is sharded over all of them)")
    if mesh_run is not None:
        devices = f"{mesh_run.mesh.size} device{'s' * (mesh_run.mesh.size > 1)}"
        if jax.process_count() > 1:
            devices += f" of {jax.process_count()} processes"
        if mesh_run.data_parallel:
            _say(f"purea2c: one agent over {devices} (data parallel): "
                 f"{config.num_envs // mesh_run.mesh.size} of its {config.num_envs} envs on "
                 "each, gradients averaged at every update")
        else:
            _say(f"purea2c: {num_seeds} seeds sharded over {devices}")
    return state, resume_step


def _restore(run_dir: pathlib.Path, config: Config, info: dict[str, Any],
             step: int | None) -> rundir.Restored:
    """`run_dir.restore_state`, with one line on stderr per damaged checkpoint skipped."""
    restored = rundir.restore_state(run_dir, config, info["seeds"], step,
                                    data_parallel=info.get("data_parallel"))
    for skipped, fault in restored.skipped:
        _say(f"purea2c: warning: checkpoint {skipped} is damaged and was skipped "
             f"({' '.join(fault.split())}); using checkpoint {restored.step}",
             file=sys.stderr, flush=True)
    return restored


class _AgreedStop:
    """The training loop's ``should_stop``: whether any process was asked to stop (Ctrl-C or
    SIGTERM may reach only some of them), agreed by all, and with which signal; with one
    process, whether this one was."""

    def __init__(self, stop: run_loop.StopRequest):
        self.stop, self.signum = stop, None

    def __call__(self) -> bool:
        self.signum = sharding.process_max(self.stop.signum or 0) or None
        return self.signum is not None


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    _check_flags(args, parser, _TRAIN_RULES)
    _check_launch_flags(args, parser)
    _join(args, parser)

    def open_run():
        run_dir, config, info, new = _open_run(args, parser)
        mesh_run = _mesh_run(parser, config, info)
        if new:
            _create_run(run_dir, config, info)
        return run_dir, config, info, mesh_run

    run_dir, config, info, mesh_run = _on_every_process(open_run)
    writer = jax.process_index() == 0  # the one process that writes the run directory
    num_seeds, seed, chunk = info["seeds"], info["seed"], info["chunk_iterations"]
    num_iterations = config.num_iterations
    steps_per_iteration = config.steps_per_iteration
    ckpt_dir = run_dir / rundir.CHECKPOINTS
    env_name = rundir.env_name(config)
    total_steps = num_iterations * steps_per_iteration

    def set_status(status: str) -> None:
        if writer:
            rundir.set_status(run_dir, info, status)

    # ended by `main` with the exit status, whatever ends the command
    session = args.session = rundir.Session(run_dir, info, _command(args),
                                            resumed=args.resume is not None, write=writer)
    if session.changes:
        _say(f"purea2c: differs from the run's record: {'; '.join(session.changes)}")
    with run_loop.StopRequest() as stop:
        start = time.perf_counter()
        state, resume_step = _start_state(args, run_dir, config, info, mesh_run)
        session.reached(resume_step)
        if mesh_run is None:
            program, program_config = run_loop.ChunkProgram(state, config), config
        else:
            program, program_config = mesh_run, mesh_run.config
        _say("compiling the training program ... ", end="", flush=True)
        dtypes = {**program.metric_dtypes(chunk), run_loop.DIVERGED: np.dtype(bool)}
        rest = "" if num_iterations % chunk == 0 else f" + one of {num_iterations % chunk}"
        _say(f"{time.perf_counter() - start:.1f} s ({num_iterations} iterations in chunks of "
             f"{chunk}{rest})", flush=True)

        width = max(1, math.ceil(num_iterations / 50), min(chunk, num_iterations))
        log = progress = None
        outputs: list[Any] = []
        try:
            if writer:
                log = sinks.MetricsLog(run_dir, tuple(dtypes), dtypes, num_seeds, resume_step)
                outputs.append(log)
                if args.tensorboard:
                    # On resume, TensorBoard drops the events logged after the checkpoint
                    # (steps are env steps per seed).
                    outputs.append(sinks.TensorBoard(
                        run_dir / rundir.TENSORBOARD,
                        resume_step * steps_per_iteration + 1 if args.resume is not None
                        else None))
                progress = sinks.Progress(
                    total_steps, resume_step * steps_per_iteration, num_seeds,
                    steps_per_iteration, width, enabled=not args.no_progress,
                    history=log.tail(width) if resume_step > 0 else None,
                    skipped=sinks.skipped_updates(log.arrays(), 1)["total"])
                outputs.append(progress)
            checkpoints = sinks.Checkpoints(
                ckpt_dir, args.keep_checkpoints, args.checkpoint_interval, num_iterations,
                metadata=lambda it: {"iteration": it, "seeds": num_seeds,
                                     "env_steps": it * steps_per_iteration},
                saved=resume_step if resume_step > 0 else None,
                after_save=[log.write_parquet] if writer else [], write=writer)
            set_status("running")

            should_stop = _AgreedStop(stop)
            run_start = time.perf_counter()
            end = run_loop.run_in_chunks(state, program_config, program, num_iterations, chunk,
                                         callbacks=outputs, should_stop=should_stop,
                                         start_iteration=resume_step,
                                         state_callbacks=[checkpoints])
            jax.block_until_ready(end.state)
            run_s = time.perf_counter() - run_start
            session.reached(end.iteration)
            if progress is not None:
                progress.close()
            if end.iteration > 0:
                checkpoints.save(end.iteration, end.state)
            if log is not None and log.iterations > 0:
                plots.plot_learning_curve(log.arrays(), run_dir / rundir.CURVE_PNG,
                                          f"A2C on {env_name}", width)
        finally:
            for output in outputs:
                output.close()

        counts = None if log is None else \
            sinks.skipped_updates(log.arrays(), config.updates_per_iteration)
        info["skipped_updates"] = counts
        if end.diverged_at is not None:
            kept = ckpt_dir / str(end.iteration) if end.iteration > 0 else None
            if writer:  # the diverged chunk: the logged iterations after the kept state
                found = run_loop.divergence({k: v[:, end.iteration:] for k, v in
                                             log.arrays().items()}, config, end.iteration)
                info["divergence"] = {**found._asdict(), "checkpoint": kept and str(kept)}
                what = found.describe(num_iterations, config.max_skipped_share)
                _print_error(f"training {what}; {sinks.format_skipped(counts)} in the run; "
                             + (f"the last finite state is checkpoint {kept}" if kept else
                                "no finite state was saved"))
            set_status(f"diverged at iteration {end.diverged_at}")
            return EXIT_DIVERGED
        if should_stop.signum is not None and end.iteration < num_iterations:
            set_status(f"interrupted at iteration {end.iteration}")
            where = f"checkpoint saved in {ckpt_dir}" if end.iteration > 0 else \
                "stopped before the first chunk, nothing to save"
            _say(f"stopped at iteration {end.iteration}/{num_iterations}; {where}. Continue "
                 f"with: purea2c train --resume {run_dir}", flush=True)
            return 128 + should_stop.signum

    set_status("finished")
    steps_done = (end.iteration - resume_step) * steps_per_iteration * num_seeds
    _say(f"trained {steps_done:,} env steps in {run_s:.1f} s "
         f"({steps_done / max(run_s, 1e-9):,.0f} env steps/s incl. checkpoints)"
         + (f"; {sinks.format_skipped(counts)}" if counts else ""))
    if args.eval_episodes > 0:
        params = sharding.fetch(end.state.params)  # with several processes, a collective
        if writer:
            seed_evaluation.check_finite(params, f"{run_dir} at iteration {end.iteration}")
            returns = seed_evaluation.evaluate_seeds(config, params, args.eval_episodes, seed)
            summary, lines = seed_evaluation.summarize(returns, args.eval_episodes,
                                                       greedy=True)
            print("\n".join(lines))
            rundir.write_json(run_dir / rundir.EVALUATION_JSON,
                              {**summary, "step": end.iteration})
    _say(f"run directory: {run_dir}")
    return 0


# ------------------------------------------------------------------------------------------
# evaluate and render
# ------------------------------------------------------------------------------------------


def _evaluate_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    _check_flags(args, parser, _EVALUATE_RULES)
    config, info = rundir.load_run(args.run_dir)
    changes = rundir.environment_changes(info)
    if changes:
        print(f"purea2c: differs from the run's record: {'; '.join(changes)}")
    restored = _restore(pathlib.Path(args.run_dir), config, info, args.step)
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
    state = _restore(run_dir, config, info, args.step).state
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


def _envs_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from purea2c import envs

    try:
        print(envs.describe(args.suites or None, with_ids=args.ids))
    except envs.EnvError as e:
        parser.error(str(e))
    return 0


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
    args.argv, args.session = (argv if argv is None else list(argv)), None
    handler = {"train": _train, "evaluate": _evaluate_command,
               "render": _render_command, "envs": _envs_command}[args.command]
    if not args.no_compile_cache:
        enable_compile_cache()
    error = None
    try:
        status = handler(args, subparser)
    except (RunError, OSError) as e:
        _print_error(e)
        status, error = EXIT_ERROR, " ".join(str(e).split())
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        status, error = 130, "aborted"
    if args.session is not None:  # a train command's record: end time and exit status
        args.session.end(status, error)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
