"""Hypothesis 2 of the first-minute issue: a quickly compiled tier of the chunk program.

    python benchmarks/compile_tiers.py [--processes 3] [--iterations 40]

A tiered start runs the first chunks on a program compiled at a low XLA/LLVM optimisation
level while the optimised one compiles on a thread, and is only worth keeping if both tiers
give bitwise the same training state. This script measures both halves at `Config()`:

- in fresh processes (alternating, no compilation cache), the compile of the ``run`` program
  of ``--iterations`` iterations at ``xla_backend_optimization_level`` 0 and at purea2c's
  own options, and one call of each;
- in one process, whether the two programs' states after the same chunk are bitwise equal,
  and the largest difference where they are not.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time
import jax
import purea2c
from purea2c import training
level, iterations = sys.argv[1], int(sys.argv[2])
options = dict(training.compiler_options() or {})
if level != "own":
    options["xla_backend_optimization_level"] = int(level)
config = purea2c.Config()
state = jax.block_until_ready(purea2c.init(jax.random.key(0), config))
t0 = time.perf_counter()
lowered = jax.jit(training._run, static_argnums=2).lower(state, config, iterations)
compiled = lowered.compile(compiler_options=options)
t1 = time.perf_counter()
jax.block_until_ready(compiled(state, config))
t2 = time.perf_counter()
jax.block_until_ready(compiled(state, config))
t3 = time.perf_counter()
print(json.dumps({"compile_s": t1 - t0, "first_call_s": t2 - t1, "call_s": t3 - t2}))
"""

BITWISE = r"""
import json, sys
import jax, numpy as np
import purea2c
from purea2c import training
iterations = int(sys.argv[1])
config = purea2c.Config()
state = jax.block_until_ready(purea2c.init(jax.random.key(0), config))
lowered = jax.jit(training._run, static_argnums=2).lower(state, config, iterations)
outs = []
for level in (0, None):
    options = dict(training.compiler_options() or {})
    if level is not None:
        options["xla_backend_optimization_level"] = level
    out = lowered.compile(compiler_options=options)(state, config)
    outs.append(jax.tree.map(lambda x: np.asarray(
        jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x),
        out))
leaves = list(zip(*map(jax.tree.leaves, outs)))
unequal = [i for i, (a, b) in enumerate(leaves) if not np.array_equal(a, b, equal_nan=True)]
worst = max((float(np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64))))
             for a, b in leaves if a.dtype.kind == "f" and a.size), default=0.0)
print(json.dumps({"leaves": len(leaves), "unequal_leaves": len(unequal),
                  "max_abs_difference": worst}))
"""


def child(code: str, *args: str) -> dict:
    env = {**os.environ, "JAX_ENABLE_COMPILATION_CACHE": "false",
           "PUREA2C_COMPILE_CACHE": "0"}
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=40)
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"0": [], "own": []}
    for _ in range(args.processes):
        for level in runs:  # alternating, so that drift hits both
            runs[level].append(child(CHILD, level, str(args.iterations)))
    for level, rows in runs.items():
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(f"level {level}: compile {med['compile_s']:.2f} s, first call "
              f"{med['first_call_s'] * 1e3:.0f} ms, call {med['call_s'] * 1e3:.0f} ms "
              f"(medians of {len(rows)}: {[round(r['compile_s'], 2) for r in rows]})")
    print("bitwise:", json.dumps(child(BITWISE, str(args.iterations))))


if __name__ == "__main__":
    main()
