"""``purea2c train``: a new run from the flags or ``--resume RUN_DIR``, its start state
(fresh or the newest intact checkpoint), and the chunked run of the compiled program
(`run_loop.run_in_chunks`) wired to the sinks (metrics, TensorBoard, progress, checkpoints),
then the learning curve and the final evaluation. The run's processes and devices are
`purea2c.processes`'s; the flag rules and exit statuses `purea2c.commands`'s.
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import shlex
import sys
import time
from typing import Any

import jax
import numpy as np

from purea2c import flags, plots, processes, run_loop, seed_evaluation, sharding, sinks
from purea2c import run_dir as rundir
from purea2c.commands import EXIT_DIVERGED, TRAIN_RULES, check_flags, print_error, restore
from purea2c.config import Config, check_memory
from purea2c.errors import RunError
from purea2c.mesh_run import MeshRun
from purea2c.processes import say


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


def _start_state(args: argparse.Namespace, run_dir: pathlib.Path, config: Config,
                 info: dict[str, Any], mesh_run: MeshRun | None
                 ) -> tuple[Any, int]:
    """``(state, iteration)``: with ``--resume`` the newest intact checkpoint (if there is
    one), else the vmapped ``init`` of every seed's key; laid out by ``mesh_run`` when the
    run is spread over devices (`_mesh_run`)."""
    num_seeds, seed = info["seeds"], info["seed"]
    num_iterations = config.num_iterations
    restored = None
    if args.resume is not None:
        try:
            restored = restore(run_dir, config, info, None)
        except rundir.NoCheckpoint:
            pass
    if restored is not None:
        state, resume_step = restored.state, restored.step
        say(f"purea2c: resuming {run_dir} at iteration {resume_step}/{num_iterations}"
             + (" (already finished)" if resume_step >= num_iterations else ""))
        state = run_loop.strip_weak_types(state) if mesh_run is None else mesh_run.place(state)
    else:
        resume_step = 0
        verb = "restarting" if args.resume is not None else "training"
        total_steps = num_iterations * config.steps_per_iteration
        say(f"purea2c: {verb} {rundir.env_name(config)}, {num_seeds} "
             f"seed{'s' * (num_seeds > 1)} x {total_steps:,} env steps ({config.num_envs} "
             f"envs each) on {jax.default_backend()} -> {run_dir}")
        if mesh_run is None:
            keys = jax.random.split(jax.random.key(seed), num_seeds)
            state = run_loop.strip_weak_types(run_loop.vmapped_init(keys, config))
        else:
            state = mesh_run.init(seed)
    if mesh_run is None and jax.device_count() > 1:
        say(f"purea2c: {num_seeds} seed{'s' * (num_seeds > 1)} on one of the "
             f"{jax.device_count()} devices (a seed count that is a multiple of "
             f"{jax.device_count()} is sharded over all of them)")
    if mesh_run is not None:
        devices = f"{mesh_run.mesh.size} device{'s' * (mesh_run.mesh.size > 1)}"
        if jax.process_count() > 1:
            devices += f" of {jax.process_count()} processes"
        if mesh_run.data_parallel:
            say(f"purea2c: one agent over {devices} (data parallel): "
                 f"{config.num_envs // mesh_run.mesh.size} of its {config.num_envs} envs on "
                 "each, gradients averaged at every update")
        else:
            say(f"purea2c: {num_seeds} seeds sharded over {devices}")
    return state, resume_step


def train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    check_flags(args, parser, TRAIN_RULES)
    processes.check_launch_flags(args, parser)
    processes.join(args, parser)

    def open_run():
        run_dir, config, info, new = _open_run(args, parser)
        mesh_run = processes.mesh_run(parser, config, info)
        if new:
            _create_run(run_dir, config, info)
        return run_dir, config, info, mesh_run

    run_dir, config, info, mesh_run = processes.on_every_process(open_run)
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
        say(f"purea2c: differs from the run's record: {'; '.join(session.changes)}")
    with run_loop.StopRequest() as stop:
        start = time.perf_counter()
        if mesh_run is None:  # compiled on a thread while the first state is made
            keys = jax.random.split(jax.random.key(seed), num_seeds)
            like = run_loop.vmapped_init_shapes(keys, config)
            program, program_config = run_loop.ChunkProgram(like, config), config
            program.start(chunk)
        else:
            program, program_config = mesh_run, mesh_run.config
        state, resume_step = _start_state(args, run_dir, config, info, mesh_run)
        session.reached(resume_step)
        say("compiling the training program ... ", end="", flush=True)
        dtypes = {**program.metric_dtypes(chunk), run_loop.DIVERGED: np.dtype(bool)}
        rest = "" if num_iterations % chunk == 0 else f" + one of {num_iterations % chunk}"
        say(f"{time.perf_counter() - start:.1f} s ({num_iterations} iterations in chunks of "
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
                if args.wandb:
                    from purea2c.wandb_sink import WandbSink
                    args.wandb_run = WandbSink(args.wandb, run_dir,
                                               rundir.config_to_json(config), info,
                                               run_id=info.get("wandb_run_id"))
                    info["wandb_run_id"] = args.wandb_run.run_id  # a resume continues it
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

            should_stop = processes.AgreedStop(stop)
            run_start = time.perf_counter()
            end = run_loop.run_in_chunks(state, program_config, program, num_iterations, chunk,
                                         callbacks=[*outputs, *filter(None, [args.wandb_run])],
                                         should_stop=should_stop,
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
                print_error(f"training {what}; {sinks.format_skipped(counts)} in the run; "
                             + (f"the last finite state is checkpoint {kept}" if kept else
                                "no finite state was saved"))
            set_status(f"diverged at iteration {end.diverged_at}")
            return EXIT_DIVERGED
        if should_stop.signum is not None and end.iteration < num_iterations:
            set_status(f"interrupted at iteration {end.iteration}")
            where = f"checkpoint saved in {ckpt_dir}" if end.iteration > 0 else \
                "stopped before the first chunk, nothing to save"
            say(f"stopped at iteration {end.iteration}/{num_iterations}; {where}. Continue "
                 f"with: purea2c train --resume {run_dir}", flush=True)
            return 128 + should_stop.signum

    set_status("finished")
    steps_done = (end.iteration - resume_step) * steps_per_iteration * num_seeds
    say(f"trained {steps_done:,} env steps in {run_s:.1f} s "
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
    say(f"run directory: {run_dir}")
    return 0
