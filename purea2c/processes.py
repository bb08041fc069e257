"""The processes and devices of a ``purea2c train`` run: joining the processes, noticing one
that is lost, agreeing, and the mesh the run is spread over.

Joining (`check_launch_flags`, `join`): ``--coordinator HOST:PORT --num-processes N
--process-id I`` (or ``--distributed`` on a cluster JAX detects) call
``jax.distributed.initialize``, which must come before anything starts JAX's backends;
this module imports no environment suite and starts no backend when imported.

A lost process: the run's coordination service declares a process dead when it has sent no
heartbeat for `HEARTBEAT_TIMEOUT_S` seconds (JAX's default is 100), and then ends every
other process. Sooner than that, a process that waits for a lost one in a collective gets
an error (the connection to it closed); `lost_process_error` then names the processes that
stopped answering: each process announces itself every `BEACON_S` seconds in the
coordination service's key-value store from a background thread (started by `join`), and
those whose announcements stopped are the lost ones. `main` reports them in one line and
`end_now` ends the process at once: the distributed runtime's shutdown at exit would wait
for the lost process until the service declares it dead, and then abort.

Agreeing: `say` prints on process 0 only, `on_every_process` ends every process when one
fails, `AgreedStop` stops all of them when any was asked to stop.

Devices: `mesh_run` chooses the `mesh_run.MeshRun` that spreads a run over the devices.
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import threading
import time
from typing import Any, Callable

import jax

from purea2c import run_loop, sharding
from purea2c.config import Config
from purea2c.errors import RunError
from purea2c.mesh_run import MeshRun

HEARTBEAT_TIMEOUT_S = 10  # a process without a heartbeat for this long is declared dead
BEACON_S = 0.5  # how often each process announces itself
SILENT_S = 2.5  # a process that made no announcement for this long is lost
_BEACON_KEY = "purea2c/alive/"


# ------------------------------------------------------------------------------------------
# joining
# ------------------------------------------------------------------------------------------


def check_launch_flags(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
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


def join(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Joins the run's processes with ``jax.distributed.initialize`` when the command line
    asks for several, and starts this process's announcements (see the module's doc). It
    must come before anything starts JAX's backends (building a `Config` does, to check its
    environment)."""
    if args.coordinator is None and not args.distributed:
        return
    timeouts = dict(heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S)
    try:
        if args.distributed:
            jax.distributed.initialize(**timeouts)
        else:
            jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id,
                                       **timeouts)
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
    _Beacon.start()
    print(f"purea2c: process {jax.process_index()} of {jax.process_count()} joined: "
          f"{jax.local_device_count()} of the run's {jax.device_count()} devices are here",
          flush=True)


# ------------------------------------------------------------------------------------------
# a lost process
# ------------------------------------------------------------------------------------------


def _client() -> Any:
    """The coordination service's client of this process (None when not joined)."""
    from jax._src import distributed  # the client has no public handle

    return getattr(distributed.global_state, "client", None)


class _Beacon:
    """This process's announcements: the count of them under ``purea2c/alive/<id>`` in the
    coordination service's key-value store, every `BEACON_S` seconds."""

    running: "_Beacon | None" = None

    def __init__(self, client: Any, process: int):
        self.client, self.key = client, f"{_BEACON_KEY}{process}"
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._announce, name="purea2c-beacon",
                                       daemon=True)

    @classmethod
    def start(cls) -> None:
        client = _client()
        if client is None or cls.running is not None or jax.process_count() == 1:
            return
        beacon = cls.running = cls(client, jax.process_index())
        beacon.thread.start()
        atexit.register(beacon.stop)  # before JAX's own shutdown (atexit runs in reverse)

    def _announce(self) -> None:
        count = 0
        while True:
            count += 1
            try:
                self.client.key_value_set(self.key, str(count), allow_overwrite=True)
            except Exception:  # the service is gone: the runtime reports that itself
                return
            if self.stopped.wait(BEACON_S):
                return

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=2 * BEACON_S)


def lost_processes(silent_s: float = SILENT_S) -> list[int] | None:
    """The ids of the other processes of the run that made no announcement in ``silent_s``
    seconds (this call waits that long), ``[0]`` when the coordination service (on process
    0) cannot be reached; None when this process has not joined others."""
    client = _client()
    if _Beacon.running is None or client is None:
        return None

    def counts() -> dict[int, str]:
        return {int(key.rsplit("/", 1)[-1]): value
                for key, value in client.key_value_dir_get(_BEACON_KEY)}

    me, count = jax.process_index(), jax.process_count()
    try:
        before = counts()
        time.sleep(silent_s)
        after = counts()
    except Exception:
        return [0] if me != 0 else None
    return [p for p in range(count)
            if p != me and (p not in after or after[p] == before.get(p))]


def lost_process_error(error: BaseException) -> RunError | None:
    """For an ``error`` of a process that joined others: a `RunError` that names the
    processes that stopped answering, the likely cause; None when every other process is
    still there (the error is this process's own), or this process joined none."""
    lost = lost_processes()
    if not lost:
        return None
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    names = ", ".join(map(str, lost))
    return RunError(f"lost process{'es' * (len(lost) > 1)} {names} of the run's "
                    f"{jax.process_count()}: {'they' if len(lost) > 1 else 'it'} stopped "
                    f"answering (killed, crashed or cut off), and process "
                    f"{jax.process_index()} cannot go on without "
                    f"{'them' if len(lost) > 1 else 'it'} ({first[:300]})")


def end_now(status: int) -> None:
    """Ends this process with ``status`` at once, after flushing its output: with a lost
    process, the distributed runtime's shutdown at exit would wait for it."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(status)


# ------------------------------------------------------------------------------------------
# agreeing
# ------------------------------------------------------------------------------------------


def say(*args: Any, **kwargs: Any) -> None:
    """``print``, on process 0 only: every process of a multi-process run runs the same
    command, and one of them reports."""
    if jax.process_index() == 0:
        print(*args, **kwargs)


def on_every_process(step: Callable[[], Any]) -> Any:
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


class AgreedStop:
    """The training loop's ``should_stop``: whether any process was asked to stop (Ctrl-C or
    SIGTERM may reach only some of them), agreed by all, and with which signal; with one
    process, whether this one was."""

    def __init__(self, stop: run_loop.StopRequest):
        self.stop, self.signum = stop, None

    def __call__(self) -> bool:
        self.signum = sharding.process_max(self.stop.signum or 0) or None
        return self.signum is not None


# ------------------------------------------------------------------------------------------
# devices
# ------------------------------------------------------------------------------------------


def mesh_run(parser: argparse.ArgumentParser, config: Config,
             info: dict[str, Any]) -> MeshRun | None:
    """The `mesh_run.MeshRun` that spreads the run over the devices, or None for the
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
            return MeshRun(config, 1, devices[:data_parallel], data_parallel=True)
        except ValueError as e:
            parser.error(f"--data-parallel over {data_parallel} devices: {e}")
    if processes > 1:
        if num_seeds % len(devices):
            parser.error(f"--seeds {num_seeds} cannot be sharded over the {len(devices)} "
                         f"devices of {processes} processes: the seed count must be a multiple "
                         f"of the device count (each device trains seeds / {len(devices)})")
        return MeshRun(config, num_seeds, devices)
    if len(devices) > 1 and num_seeds % len(devices) == 0:
        return MeshRun(config, num_seeds, devices)
    return None
