"""What the training program is made of, stage by stage, beside rejax's PPO program.

    python benchmarks/program_ops.py [--quick] [--label cpu] [--cache ~/.cache/purea2c-peers]

For purea2c's `run` program (``purea2c.training.program("run")``, one chunk of iterations)
at the default `Config()` and at SB3 A2C's schedule (8 envs x 5 steps, one update of 40),
and for each of profile_stages.py's variants (later stages replaced by identities before
tracing): the StableHLO ops by kind, and in XLA's optimised HLO the instructions, fusions,
while loops and dots (counted by ``benchmarks/peers/_worker_util.program_counts``). The
difference between consecutive variants is what a stage adds. rejax's PPO program at the
same SB3 schedule is counted the same way in its own venv (benchmarks/peers.py installs it).
The lower and compile times of those rows are one measurement each; then the SB3-schedule
program of each library is compiled in fresh processes, alternating (``--compile-processes``),
for the comparison of compile times. Writes results/program_ops_<label>.{json,md}.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

import jax  # noqa: E402

import purea2c  # noqa: E402
from benchmarks import common, peers  # noqa: E402
from benchmarks.profile_stages import no_add, no_trace, no_update, patched  # noqa: E402
from purea2c import replay, stages, tracing  # noqa: E402

import _worker_util as util  # noqa: E402

NAME = "program_ops"
SB3 = dict(num_envs=8, rollout_length=5, n_step=5, buffer_capacity=40, batch_size=40)
VARIANTS = [
    ("full program", []),
    ("- updates", [(stages, "update", no_update)]),
    ("- updates, buffer add", [(stages, "update", no_update), (replay, "add", no_add)]),
    ("- updates, buffer, tracer (env + policy)", [
        (stages, "update", no_update), (replay, "add", no_add), (tracing, "step", no_trace)]),
]
KINDS = ["broadcast_in_dim", "constant", "reduce", "is_finite", "dot_general", "while",
         "rng_bit_generator"]


def count_purea2c(config: purea2c.Config, chunk: int) -> dict:
    state = jax.eval_shape(lambda k: purea2c.Agent(config).init(k), jax.random.key(0))
    fn = jax.jit(lambda s, c: purea2c.Agent(c).run(s, chunk),  # a fresh cache per variant
                 compiler_options=purea2c.compiler_options())
    start = time.perf_counter()
    lowered = fn.lower(state, config.canonical())
    lower_s = time.perf_counter() - start
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start - lower_s
    return {**util.program_counts(lowered.as_text(), compiled.as_text()),
            "lower_s": lower_s, "compile_s": compile_s}


PUREA2C_COMPILE = """
import sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/peers"]
import json, purea2c, program_ops
r = program_ops.count_purea2c(purea2c.Config(**program_ops.SB3), 250)
print("RESULT_JSON " + json.dumps(r))
"""


def compile_race(rejax_python: Path, processes: int) -> list[dict]:
    """Trace + lower and XLA compile of purea2c's and rejax's SB3-schedule programs, each in
    fresh processes (no compilation cache), alternating purea2c, rejax, purea2c, ..."""
    here = Path(__file__).resolve().parent
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    runs = []
    for i in range(processes):
        for library in ("purea2c", "rejax"):
            if library == "purea2c":
                cmd = [sys.executable, "-c", PUREA2C_COMPILE, str(here)]
                run_env = dict(env, PUREA2C_COMPILE_CACHE="0",
                               PYTHONPATH=str(here.parent))
            else:
                cmd = [str(rejax_python), str(here / "peers" / "rejax_worker.py"),
                       json.dumps({"mode": "ops"})]
                run_env = env
            out = subprocess.run(cmd, capture_output=True, text=True, env=run_env,
                                 timeout=900).stdout
            line = [ln for ln in out.splitlines() if ln.startswith(util.RESULT_PREFIX)][-1]
            res = json.loads(line[len(util.RESULT_PREFIX):])
            runs.append({"library": library, "process": i, "lower_s": res["lower_s"],
                         "compile_s": res["compile_s"],
                         "total_s": res["lower_s"] + res["compile_s"]})
            print(runs[-1], flush=True)
    return runs


def row(library: str, schedule: str, variant: str, counts: dict) -> dict:
    by_kind = counts["stablehlo_by_kind"]
    return {"library": library, "schedule": schedule, "variant": variant,
            **{k: counts[k] for k in ("stablehlo_ops", "hlo_instructions", "fusions",
                                      "while_loops", "dots", "custom_calls", "lower_s",
                                      "compile_s")},
            **{k: by_kind.get(f"stablehlo.{k}", 0) for k in KINDS},
            "fusions_by_kind": counts["fusions_by_kind"]}


def main(argv: list[str] | None = None) -> int:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "purea2c-peers",
                        help="folder of the peers' virtual environments (benchmarks/peers.py)")
    parser.add_argument("--skip-rejax", action="store_true", help="purea2c's rows only")
    parser.add_argument("--compile-processes", type=int, default=3,
                        help="fresh processes per library timing the SB3-schedule compile, "
                             "alternating (default 3; 0 skips)")
    args = parser.parse_args(argv)
    label = common.result_label(args)
    configs = {"default (16 envs x 16, 1x256)": purea2c.Config(),
               "SB3 A2C (8 envs x 5, 1x40)": purea2c.Config(**SB3)}
    rows = []
    for schedule, config in configs.items():
        chunk = max(1, 10_000 // config.steps_per_iteration)  # the command line's chunk
        for variant, patches in (VARIANTS if not args.quick else VARIANTS[:1]):
            with contextlib.ExitStack() as stack:
                for module, name, fn in patches:
                    stack.enter_context(patched(module, name, fn))
                rows.append(row("purea2c", schedule, variant, count_purea2c(config, chunk)))
            print({k: rows[-1][k] for k in ("schedule", "variant", "stablehlo_ops",
                                             "fusions", "compile_s")}, flush=True)
    versions = {}
    if not args.skip_rejax:
        python = peers.venv_python(args.cache, "rejax")
        if not python.exists():
            print(f"[rejax] no venv at {python}: run benchmarks/peers.py --peers rejax first")
        else:
            res = peers.run_worker(python, peers.WORKERS / "rejax_worker.py",
                                   {"mode": "ops", "total_timesteps": 10_000}, 900,
                                   common.RESULTS_DIR / "logs" / f"{NAME}_rejax.log",
                                   {k: v for k, v in os.environ.items()
                                    if k != "PYTHONPATH"})
            if "error" in res:
                print(f"[rejax] {res['error']}")
            else:
                versions = res.get("versions", {})
                rows.append(row("rejax PPO (1 epoch, 1 minibatch)",
                                "SB3 A2C (8 envs x 5, 1x40)", "full program", res))
    race, race_md = [], ""
    python = peers.venv_python(args.cache, "rejax")
    if args.compile_processes > 0 and not args.skip_rejax and python.exists():
        race = compile_race(python, args.compile_processes)
        med = {lib: {k: statistics.median(r[k] for r in race if r["library"] == lib)
                     for k in ("lower_s", "compile_s", "total_s")}
               for lib in ("purea2c", "rejax")}
        race_md = ("\n\n## Compile time, SB3 schedule, fresh processes\n\n"
                   + common.markdown_table([{"library": lib, **m} for lib, m in med.items()])
                   + f"\n\nMedians of {args.compile_processes} fresh processes per library, "
                   "alternating, no compilation cache: lower_s is trace + lower "
                   "(`jit(f).lower`), compile_s XLA's compile with each library's options; "
                   f"purea2c / rejax total: {med['purea2c']['total_s'] / med['rejax']['total_s']:.2f}.")
    columns = ["library", "schedule", "variant", "stablehlo_ops", *KINDS, "hlo_instructions",
               "fusions", "while_loops", "dots", "custom_calls", "lower_s", "compile_s"]
    notes = ("\n\nOne chunk of ~10k env steps of each program (the scan length does not "
             "change its size). StableHLO ops are counted in `lower(...).as_text()` "
             "(`func.call` included); instructions, fusions, while loops and dots in the "
             "optimised HLO of `compile().as_text()`. A variant replaces the named stages by "
             "identities (benchmarks/profile_stages.py): consecutive rows differ by what a "
             "stage adds. lower_s and compile_s: one measurement each, on whatever load the "
             "machine had; benchmarks/compile_time.py times compilation properly."
             + (f" rejax {versions.get('rejax')} (jax {versions.get('jax')})." if versions
                else ""))
    common.write_results(NAME, {"rows": rows, "rejax_versions": versions,
                                "compile_race": race},
                         common.markdown_table(rows, columns) + notes + race_md, label=label,
                         machine=common.machine_info())
    print(common.markdown_table(rows, columns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
