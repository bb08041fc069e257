"""Seeds sharded over the devices of several processes (several machines, or one for a try).

On each of N machines (process ids 0 .. N-1; the coordinator is process 0's address):

    python benchmarks/multihost.py --coordinator 10.0.0.1:1234 --num-processes N \\
        --process-id I --seeds 256 --out runs/multihost

On a cluster that JAX detects (SLURM, Open MPI, Cloud TPU, ...) the three flags can be left
out: ``jax.distributed.initialize()`` reads them from the environment.

On one machine, N local processes joined over 127.0.0.1 (each with ``--local-devices`` CPU
devices; this is how tests/test_sharding.py runs it):

    python benchmarks/multihost.py --spawn 2 --local-devices 2 --seeds 8 --out /tmp/mh

Every process computes the same global keys ``jax.random.split(jax.random.key(SEED), S)``
and calls `purea2c.sharding.train_sharded` over the global mesh (all devices of all
processes); each device trains S / (number of devices) seeds. The metrics are gathered to
every process (`purea2c.sharding.gather`), and only process 0 writes OUT/metrics.npz (one
array per `purea2c.Metrics` field, ``[S, num_iterations]``) and OUT/run.json.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--coordinator", help="HOST:PORT of process 0 (omit on a detected cluster)")
    p.add_argument("--num-processes", type=int)
    p.add_argument("--process-id", type=int)
    p.add_argument("--seeds", type=int, default=64, help="S, a multiple of the device count")
    p.add_argument("--seed", type=int, default=0, help="keys = split(key(SEED), S)")
    p.add_argument("--config", default="{}",
                   help='JSON of Config overrides, e.g. \'{"env": "Acrobot-v1"}\'')
    p.add_argument("--out", help="directory process 0 writes metrics.npz and run.json to")
    p.add_argument("--spawn", type=int, metavar="N",
                   help="start N local processes joined over 127.0.0.1 and wait for them")
    p.add_argument("--local-devices", type=int, default=1,
                   help="with --spawn: CPU devices per local process")
    p.add_argument("--timeout", type=float, default=600, help="with --spawn: seconds")
    return p


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(args: argparse.Namespace) -> int:
    """Runs this script as ``args.spawn`` local processes on CPU; returns the worst status."""
    coordinator = f"127.0.0.1:{free_port()}"
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={args.local_devices}")
    common = ["--coordinator", coordinator, "--num-processes", str(args.spawn),
              "--seeds", str(args.seeds), "--seed", str(args.seed), "--config", args.config]
    if args.out:
        common += ["--out", args.out]
    procs = [subprocess.Popen([sys.executable, __file__, *common, "--process-id", str(i)],
                              env=env) for i in range(args.spawn)]
    deadline = time.monotonic() + args.timeout
    while any(proc.poll() is None for proc in procs):
        failed = [proc.returncode for proc in procs if proc.poll() not in (None, 0)]
        if failed or time.monotonic() > deadline:  # the others would wait for it forever
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
            return abs(failed[0]) if failed else 124
        time.sleep(0.2)
    return max(abs(proc.returncode) for proc in procs)


def main(args: argparse.Namespace) -> None:
    import jax

    if args.coordinator or args.num_processes or args.process_id is not None:
        jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    else:
        jax.distributed.initialize()  # cluster auto-detection

    import numpy as np

    import purea2c
    from purea2c.sharding import gather, train_sharded

    config = purea2c.Config(**json.loads(args.config))
    keys = jax.random.split(jax.random.key(args.seed), args.seeds)
    start = time.perf_counter()
    out = train_sharded(keys, config)
    metrics = gather(out.metrics)  # a collective: every process takes part
    seconds = time.perf_counter() - start
    print(f"process {jax.process_index()}/{jax.process_count()}: "
          f"{jax.local_device_count()} of {jax.device_count()} devices, {args.seeds} seeds, "
          f"{seconds:.1f} s (compile included)", flush=True)
    if jax.process_index() == 0 and args.out:
        os.makedirs(args.out, exist_ok=True)
        np.savez(os.path.join(args.out, "metrics.npz"), **metrics._asdict())
        with open(os.path.join(args.out, "run.json"), "w") as f:
            json.dump({"command": sys.argv, "processes": jax.process_count(),
                       "devices": jax.device_count(), "backend": jax.default_backend(),
                       "seeds": args.seeds, "seed": args.seed,
                       "config_overrides": json.loads(args.config), "seconds": seconds,
                       "jax": jax.__version__, "purea2c": purea2c.__version__}, f, indent=1)
    jax.distributed.shutdown()


if __name__ == "__main__":
    arguments = _parser().parse_args()
    if arguments.spawn:
        sys.exit(spawn(arguments))
    main(arguments)
