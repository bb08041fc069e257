"""Hypothesis 4 of the first-minute issue: the solve check's greedy evaluation inside the
training chunk's program, so that a solve loop compiles one program instead of two.

    python benchmarks/solve_check_program.py [--processes 3]

Fresh processes, no compilation cache, alternating. After ``init`` (compiled and timed
apart, the same on both sides), each process makes the first solve check of
benchmarks/peers.py's protocol at `Config()`: 40 iterations (~10k env steps), then a greedy
evaluation of 100 episodes of the new parameters.
- "two programs": ``purea2c.run`` then ``purea2c.evaluate``, as today;
- "one program": the same two calls inside one ``jax.jit`` with
  ``purea2c.compiler_options()`` (the public functions trace into the caller's program).
It prints the medians of the chunk + evaluation time (compile included), of a second call
(run time only), and checks that both sides return the same mean return.
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
import jax, numpy as np
import purea2c
config, fused = purea2c.Config(), sys.argv[1] == "one"
state = jax.block_until_ready(purea2c.init(jax.random.key(0), config))
eval_key = jax.random.key(1)

def two(state):
    state, metrics = purea2c.run(state, config, 40)
    return state, purea2c.evaluate(eval_key, config, state.params)

# the same public calls traced into one program, compiled with purea2c's options
check = jax.jit(two, compiler_options=purea2c.compiler_options()) if fused else two
t0 = time.perf_counter()
new, returns = jax.block_until_ready(check(state))
t1 = time.perf_counter()
jax.block_until_ready(check(state))
t2 = time.perf_counter()
print(json.dumps({"first_s": t1 - t0, "again_s": t2 - t1,
                  "mean_return": float(np.mean(returns))}))
"""


def child(side: str) -> dict:
    env = {**os.environ, "JAX_ENABLE_COMPILATION_CACHE": "false", "PUREA2C_COMPILE_CACHE": "0"}
    out = subprocess.run([sys.executable, "-c", CHILD, side], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=3, help="per side (default 3)")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"two": [], "one": []}
    for _ in range(args.processes):
        for side in runs:
            runs[side].append(child(side))
            print(side, runs[side][-1], flush=True)
    med = {side: {k: statistics.median(r[k] for r in rows) for k in rows[0]}
           for side, rows in runs.items()}
    for key in ("first_s", "again_s"):
        print(f"{key}: two programs {med['two'][key]:.3f} s, one program "
              f"{med['one'][key]:.3f} s, one / two {med['one'][key] / med['two'][key]:.2f}")
    print("same mean return:", med["two"]["mean_return"] == med["one"]["mean_return"],
          med["two"]["mean_return"], med["one"]["mean_return"])


if __name__ == "__main__":
    main()
