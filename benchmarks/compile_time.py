"""Compile time of the default program, ``purea2c.train(key, Config())``, in fresh processes.

    python benchmarks/compile_time.py [--processes 5] [--label cpu]

Each process imports purea2c, then times ``train.trace`` (Python tracing), ``.lower()``
(StableHLO) and ``.compile()`` (XLA) for ``Config()``: what a user's first call pays, with
no JAX caches warm; then the steady-state speed of the compiled program (median of 7
calls), so that compile options which cost run time would show. Processes alternate between
purea2c's compiler options (`purea2c.compiler_options()`) and XLA's defaults, so drift hits
both; the table gives the median of each and their ratio. The persistent compilation cache
is off. Writes results/compile_time_<label>.{json,md}.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402

NAME = "compile_time"
REPO = Path(__file__).resolve().parents[1]

# Runs in a fresh interpreter; prints one JSON line. argv[1]: "purea2c" or "xla_default".
CHILD = r"""
import json, sys, time
start = time.perf_counter()
import jax, purea2c
imported = time.perf_counter()
options = purea2c.compiler_options() if sys.argv[1] == "purea2c" else None
fn = jax.jit(lambda key, config: purea2c.Agent(config).train(key), compiler_options=options)
key, config = jax.random.key(0), purea2c.Config()
t0 = time.perf_counter()
traced = fn.trace(key, config)
t1 = time.perf_counter()
lowered = traced.lower()
t2 = time.perf_counter()
compiled = lowered.compile()
t3 = time.perf_counter()
jax.block_until_ready(compiled(key, config))
times = []
for _ in range(7):
    t = time.perf_counter()
    jax.block_until_ready(compiled(key, config))
    times.append(time.perf_counter() - t)
print(json.dumps({"import_s": imported - start, "trace_s": t1 - t0, "lower_s": t2 - t1,
                  "xla_compile_s": t3 - t2, "compile_s": t3 - t0,
                  "steps_per_s": config.total_timesteps / sorted(times)[3],
                  "timesteps": config.total_timesteps,
                  "stablehlo_lines": len(lowered.as_text().splitlines()),
                  "options": options}))
"""


def one_process(variant: str) -> dict:
    env = dict(os.environ, JAX_ENABLE_COMPILATION_CACHE="false", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", CHILD, variant], capture_output=True,
                          text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=None,
                        help="fresh processes per variant (default 5; quick 1)")
    args = parser.parse_args(argv)
    label = common.result_label(args)
    n = args.processes or (1 if args.quick else 5)
    machine = common.machine_info()
    runs: dict[str, list[dict]] = {"purea2c": [], "xla_default": []}
    for i in range(n):
        for variant in runs:  # A B A B
            res = one_process(variant)
            runs[variant].append(res)
            print(f"[{i + 1}/{n}] {variant:<11}: trace {res['trace_s']:.2f} s, lower "
                  f"{res['lower_s']:.2f} s, XLA {res['xla_compile_s']:.2f} s, total "
                  f"{res['compile_s']:.2f} s; {res['steps_per_s']:,.0f} env steps/s", flush=True)
    keys = ["trace_s", "lower_s", "xla_compile_s", "compile_s", "steps_per_s", "import_s"]
    rows = []
    for variant, results in runs.items():
        row = {"options": "purea2c.compiler_options()" if variant == "purea2c"
               else "XLA defaults"}
        row |= {k: statistics.median(r[k] for r in results) for k in keys}
        row["compile_s_all"] = [round(r["compile_s"], 2) for r in results]
        rows.append(row)
    ratio = rows[0]["compile_s"] / rows[1]["compile_s"]
    speed_ratio = rows[0]["steps_per_s"] / rows[1]["steps_per_s"]
    table = common.markdown_table(rows, ["options", "trace_s", "lower_s", "xla_compile_s",
                                         "compile_s", "compile_s_all", "steps_per_s",
                                         "import_s"])
    notes = (f"\n\nMedian of {n} fresh processes per row, alternating. compile_s = trace + "
             f"lower + XLA compile of `purea2c.train` at `Config()` "
             f"({runs['purea2c'][0]['stablehlo_lines']} lines of StableHLO); import_s "
             f"(importing jax and purea2c) is apart; steps_per_s is the compiled program's "
             f"speed (median of 7 calls of {runs['purea2c'][0]['timesteps']:,} env steps). "
             f"purea2c's options "
             f"({runs['purea2c'][0]['options']}) / XLA defaults: compile time "
             f"{ratio:.2f}x, speed {speed_ratio:.2f}x.")
    common.write_results(NAME, {"processes": n, "runs": runs, "rows": rows,
                                "compile_ratio": ratio, "speed_ratio": speed_ratio},
                         table + notes, label=label, machine=machine)
    print()
    print(table + notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
