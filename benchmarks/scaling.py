"""Aggregate env steps/s of `purea2c.sharding.train_sharded` over 1, 2, 4 and 8 devices.

S seeds of ``Config()`` (``total_timesteps`` set by ``--total-timesteps``, the same for every
device count) are trained sharded over a 1-D mesh of n devices, one fresh process per n:

    python benchmarks/scaling.py                    # n forced host (CPU) devices
    python benchmarks/scaling.py --devices real     # the first n real devices (GPUs)
    python benchmarks/scaling.py --quick            # a smoke run (8 seeds, tiny runs)

``--devices host`` (default) sets ``XLA_FLAGS=--xla_force_host_platform_device_count=n`` and
``JAX_PLATFORMS=cpu`` in the process for n (XLA reads them at import): the n devices share
the machine's cores, so aggregate throughput cannot grow past what the cores give; what the
run shows is that the program shards (S / n seeds per device) and gives the same results.
``--devices real`` uses ``jax.devices()[:n]`` of the default backend; counts above the
number of devices are skipped.

Timing: the first call (trace, compile and one run) is timed apart; ``run_s`` is the median
of ``--repeats`` further calls, each ended by ``jax.block_until_ready``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402

NAME = "scaling"


def _parser() -> argparse.ArgumentParser:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--devices", choices=("host", "real"), default="host",
                        help="host: n forced CPU devices per process; real: the first n "
                             "devices of the default backend")
    parser.add_argument("--counts", type=int, nargs="+", default=None,
                        help="device counts n (default 1 2 4 8)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="S, a multiple of every n (default 64; quick 8)")
    parser.add_argument("--total-timesteps", type=int, default=None,
                        help="env steps per seed (default 32768, 128 iterations of Config(); "
                             "quick 2048)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed calls after the first, median reported (default 3; quick 2)")
    parser.add_argument("--timeout", type=float, default=900,
                        help="seconds allowed to each device count's process")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    return parser


def worker(args: argparse.Namespace) -> dict:
    """One device count, in this process: returns the measurement as a dict."""
    import jax
    import numpy as np

    import purea2c
    from purea2c.sharding import gather, train_sharded

    n = args.worker
    if n > jax.device_count():
        return {"devices": n, "skipped": f"only {jax.device_count()} devices"}
    mesh = jax.make_mesh((n,), ("seeds",), devices=jax.devices()[:n])
    config = purea2c.Config(total_timesteps=args.total_timesteps)
    keys = jax.random.split(jax.random.key(0), args.seeds)

    with common.watchdog("the first call"):
        start = time.perf_counter()
        out = jax.block_until_ready(train_sharded(keys, config, mesh))
        first_s = time.perf_counter() - start
    times = []
    with common.watchdog("the timed calls"):
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = jax.block_until_ready(train_sharded(keys, config, mesh))
            times.append(time.perf_counter() - start)
    run_s = statistics.median(times)
    steps = config.num_iterations * config.steps_per_iteration  # per seed
    final_return = gather(out.metrics.episode_return)[:, -1]
    shards = out.metrics.episode_return.addressable_shards
    return {
        "devices": n,
        "device_kind": jax.devices()[0].device_kind,
        "seeds": args.seeds,
        "seeds_per_device": shards[0].data.shape[0],
        "steps_per_seed": steps,
        "first_call_s": first_s,
        "compile_s": first_s - run_s,
        "run_s": run_s,
        "run_s_all": times,
        "aggregate_steps_per_s": args.seeds * steps / run_s,
        "per_seed_steps_per_s": steps / run_s,
        "final_return_mean": float(np.nanmean(final_return)),
        "value_loss_sum": float(np.sum(gather(out.metrics.value_loss))),
        "machine": common.machine_info(),
        **common.peak_memory(),
    }


def run_count(args: argparse.Namespace, n: int) -> dict:
    env = dict(os.environ)
    if args.devices == "host":
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()
        env["JAX_PLATFORMS"] = "cpu"
    cmd = [sys.executable, __file__, "--worker", str(n), "--seeds", str(args.seeds),
           "--total-timesteps", str(args.total_timesteps), "--repeats", str(args.repeats)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise RuntimeError(f"the process for {n} devices failed (status {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def markdown(args: argparse.Namespace, rows: list[dict], machine: dict) -> str:
    done = [r for r in rows if "skipped" not in r]
    base = done[0]["aggregate_steps_per_s"] if done else None
    table = []
    for r in rows:
        if "skipped" in r:
            table.append({"devices": r["devices"], "seeds_per_device": r["skipped"]})
            continue
        speedup = r["aggregate_steps_per_s"] / base
        same = all(math.isclose(r[k], done[0][k], rel_tol=1e-4, abs_tol=1e-5)
                   for k in ("final_return_mean", "value_loss_sum"))
        table.append({"devices": r["devices"], "seeds_per_device": r["seeds_per_device"],
                      "compile_s": r["compile_s"], "run_s": r["run_s"],
                      "aggregate_steps_per_s": r["aggregate_steps_per_s"],
                      "per_seed_steps_per_s": r["per_seed_steps_per_s"],
                      "speedup": speedup, "final_return_mean": r["final_return_mean"],
                      "value_loss_sum": r["value_loss_sum"],
                      "same_results": "yes" if same else "NO"})
    cols = ["devices", "seeds_per_device", "compile_s", "run_s", "aggregate_steps_per_s",
            "per_seed_steps_per_s", "speedup", "final_return_mean", "value_loss_sum",
            "same_results"]
    kind = ("forced host (CPU) devices, `XLA_FLAGS=--xla_force_host_platform_device_count=n`"
            if args.devices == "host" else "real devices, the first n of `jax.devices()`")
    text = [common.markdown_table(table, cols), "",
            f"{args.seeds} seeds of `Config()` with total_timesteps={args.total_timesteps} "
            f"per seed, trained by `purea2c.sharding.train_sharded` over a 1-D mesh of n "
            f"{kind}, one fresh process per n. run_s is the median of {args.repeats} calls "
            "after the first (each ended by `block_until_ready`); compile_s is the first "
            "call's time minus run_s (tracing, compilation and dispatch). speedup is the "
            "aggregate steps/s over that of the first row. final_return_mean (mean over "
            "seeds of the last iteration's training return) and value_loss_sum (sum over "
            "seeds and iterations) are the runs' results; same_results says whether both "
            "equal the first row's to rtol 1e-4: sharding changes where a seed runs, not "
            "what it computes."]
    if args.devices == "host":
        cores = machine.get("cpu_affinity")
        text += ["", f"The forced host devices of one process share its {cores} CPU cores, "
                 "so aggregate throughput cannot grow past what those cores give, whatever "
                 "n: with n above the core count a flat speedup, within the noise, is the "
                 "expected result. The point "
                 "of these rows is that the program shards (S / n seeds per device) and "
                 "gives the same results; throughput scaling is measured with "
                 "`--devices real` on a machine with several accelerators."]
    return "\n".join(text)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.seeds is None:
        args.seeds = 8 if args.quick else 64
    if args.total_timesteps is None:
        args.total_timesteps = 2048 if args.quick else 32_768
    if args.repeats is None:
        args.repeats = 2 if args.quick else 3
    if args.worker is not None:
        print(json.dumps(common._jsonable(worker(args))))
        return 0
    counts = args.counts or [1, 2, 4, 8]
    bad = [n for n in counts if args.seeds % n]
    if bad:
        raise SystemExit(f"--seeds {args.seeds} is not a multiple of the device counts {bad}")
    rows = []
    for n in counts:
        row = run_count(args, n)
        rows.append(row)
        if "skipped" in row:
            print(f"{n} devices: skipped ({row['skipped']})", flush=True)
        else:
            print(f"{n} devices: {common.fmt(row['aggregate_steps_per_s'])} steps/s aggregate, "
                  f"run {row['run_s']:.2f} s, compile {row['compile_s']:.1f} s", flush=True)
    done = [r for r in rows if "skipped" not in r]
    machine = dict(done[-1]["machine"]) if done else common.machine_info()
    machine["command"] = " ".join([sys.executable, *sys.argv])
    machine["xla_flags"] = ("--xla_force_host_platform_device_count=n per process"
                            if args.devices == "host" else os.environ.get("XLA_FLAGS"))
    for r in rows:
        r.pop("machine", None)
    backend = "cpu" if args.devices == "host" else machine.get("backend", "real")
    label = args.label or (backend if args.devices == "host" or backend != "cpu" else "cpu-real")
    if args.quick and not label.endswith("quick"):
        label += "-quick"
    payload = {"devices_mode": args.devices, "seeds": args.seeds,
               "total_timesteps": args.total_timesteps, "repeats": args.repeats, "rows": rows}
    text = markdown(args, rows, machine)
    json_path, md_path = common.write_results(NAME, payload, text, label=label,
                                              machine=machine)
    print(f"wrote {md_path} and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
