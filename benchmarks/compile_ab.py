"""A/B of a new user's first call: the working tree against a git revision, fresh processes.

    python benchmarks/compile_ab.py REV [--processes 3] [--solve-path]

Each process imports one of the two packages (``REV``'s exported as ``purea2c_rev`` by
benchmarks/ab_revisions.py, or the working tree's ``purea2c``) and times the import, then
the first ``train(key, Config())`` call through the package's public function: tracing,
lowering and XLA's compile with the package's own compiler options, and the run (the default
98,304 steps). The persistent compilation cache is off. Processes alternate A B A B so that
drift on a shared machine hits both; the medians and the ratio new / old are printed.

``--solve-path`` times what a solve check costs instead (benchmarks/peers.py's solve, the
issue's "init + first chunk + solve check"): ``init``, the first ``run`` of 40 iterations
(~10k env steps) and a greedy ``evaluate`` of its parameters, each a first call (compile
included), and their sum.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ab_revisions import REPO, export_revision  # noqa: E402

CHILD = r"""
import importlib, json, sys, time
start = time.perf_counter()
import jax
package = importlib.import_module(sys.argv[1])
imported = time.perf_counter()
key, config = jax.random.key(0), package.Config()
out = package.train(key, config)
jax.block_until_ready(out.metrics)
first = time.perf_counter()
out = package.train(key, config)
jax.block_until_ready(out.metrics)
again = time.perf_counter()
print(json.dumps({"import_s": imported - start, "first_call_s": first - imported,
                  "run_s": again - first}))
"""

SOLVE_PATH = r"""
import importlib, json, sys, time
start = time.perf_counter()
import jax
package = importlib.import_module(sys.argv[1])
imported = time.perf_counter()
key, config = jax.random.key(0), package.Config()
state = jax.block_until_ready(package.init(key, config))
inited = time.perf_counter()
state, metrics = jax.block_until_ready(package.run(state, config, 40))
chunk = time.perf_counter()
returns = jax.block_until_ready(package.evaluate(jax.random.key(1), config, state.params))
evaluated = time.perf_counter()
print(json.dumps({"import_s": imported - start, "init_s": inited - imported,
                  "first_chunk_s": chunk - inited, "evaluate_s": evaluated - chunk,
                  "init_chunk_evaluate_s": evaluated - imported}))
"""


def one(package: str, path: Path, code: str = CHILD) -> dict:
    env = {**os.environ, "PYTHONPATH": str(path), "JAX_ENABLE_COMPILATION_CACHE": "false",
           "PUREA2C_COMPILE_CACHE": "0"}
    out = subprocess.run([sys.executable, "-c", code, package], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", help="the git revision to compare against")
    parser.add_argument("--processes", type=int, default=3, help="per side (default 3)")
    parser.add_argument("--solve-path", action="store_true",
                        help="time init + first chunk + evaluate instead of train")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        export_revision(args.rev, Path(tmp))
        sides = {"old": ("purea2c_rev", Path(tmp)), "new": ("purea2c", REPO)}
        runs: dict[str, list[dict]] = {"old": [], "new": []}
        for _ in range(args.processes):
            for side, (package, path) in sides.items():
                runs[side].append(one(package, path,
                                      SOLVE_PATH if args.solve_path else CHILD))
                print(side, runs[side][-1], flush=True)
    med = {side: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
           for side, rs in runs.items()}
    for key in med["new"]:
        print(f"{key}: old {med['old'][key]:.2f} s, new {med['new'][key]:.2f} s, "
              f"new / old {med['new'][key] / med['old'][key]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
