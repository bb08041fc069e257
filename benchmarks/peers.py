"""purea2c against peer libraries: engine speed at a matched schedule, and time to solve.

Each peer lives in its own virtual environment under a cache folder (default
``~/.cache/purea2c-peers/<peer>``), installed from PyPI with the pinned versions below. The
measurements run in worker scripts (``benchmarks/peers/*_worker.py``) started as subprocesses,
each printing one JSON line; purea2c's worker runs in the current interpreter's environment.
Time to solve is measured for purea2c twice: from a cold start (every program compiled in
the process), and with JAX's persistent compilation cache warmed by one unmeasured process
(the command line's cache, as a user's second run finds it). With rejax, a second speed row
compares the MinAtar CNN (16 seeds of Breakout-MinAtar vmapped, the same network and
schedule on both sides); every speed row reports each process's peak host RSS.

    python benchmarks/peers.py [--peers sb3,rejax,coax] [--seeds 5] [--quick] [--label cpu]
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402

WORKERS = Path(__file__).resolve().parent / "peers"
REPO = Path(__file__).resolve().parents[1]
RESULT_PREFIX = "RESULT_JSON "

# Install plans: each peer has alternatives tried in order; an alternative is a list of pip
# commands run one after another. The first alternative is the one known to install and train
# on CPU.
INSTALL_PLANS: dict[str, list[list[list[str]]]] = {
    "sb3": [
        [["torch==2.13.0"], ["stable-baselines3==2.9.2", "gymnasium"]],
    ],
    "coax": [
        [["coax==0.1.13", "jax==0.4.30", "jaxlib==0.4.30", "dm-haiku==0.0.12"]],
        # Fallback when coax's heavy extras (gymnasium[atari,box2d], dm-control) do not build:
        # coax without dependencies plus the packages it imports.
        [["--no-deps", "coax==0.1.13"],
         ["jax==0.4.30", "jaxlib==0.4.30", "dm-haiku==0.0.12", "gymnasium", "optax", "chex",
          "numpy<2", "scipy", "pandas", "lz4", "cloudpickle", "tensorboardX", "Pillow",
          "importlib-metadata<5", "dm-env"]],
    ],
    # craftax, brax and navix for rejax's compat layer (benchmarks/learning.py's suite rows)
    "rejax": [
        [["rejax==0.1.3", "gymnax<1.0", "craftax==1.6.1", "brax==0.14.2", "navix==0.7.4",
          "jax<0.12"]],
    ],
    # Jumanji's own A2C trainer (benchmarks/learning.py's Jumanji rows)
    "jumanji": [
        [["jumanji[train]==1.1.2", "jax<0.12"]],
    ],
}
# Distributions whose versions are recorded for each peer.
PEER_DISTS = {
    "sb3": ["stable-baselines3", "torch", "gymnasium", "numpy"],
    "coax": ["coax", "jax", "jaxlib", "dm-haiku", "optax", "chex", "gymnasium", "numpy"],
    "rejax": ["rejax", "jax", "jaxlib", "flax", "optax", "gymnax", "distrax", "numpy", "craftax",
              "brax", "navix"],
    "jumanji": ["jumanji", "jax", "jaxlib", "dm-haiku", "rlax", "optax", "hydra-core", "numpy"],
}
IMPORT_CHECK = {
    "sb3": "import stable_baselines3, torch, gymnasium",
    "coax": "import coax, haiku, gymnasium",
    "rejax": "import rejax, gymnax, craftax, brax, navix",
    "jumanji": "import jumanji.training.setup_train",
}


# ------------------------------------------------------------------------------------------
# Installing
# ------------------------------------------------------------------------------------------


def venv_python(cache: Path, peer: str) -> Path:
    return cache / peer / "bin" / "python"


def _log_run(cmd: list[str], log) -> int:
    log.write(f"\n$ {' '.join(cmd)}\n")
    log.flush()
    return subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode


def install_peer(peer: str, cache: Path, base_python: str) -> dict:
    """Creates ``cache/peer`` and installs the peer; returns a record of what was tried.

    A finished install leaves a marker file, so a second call does nothing.
    """
    venv = cache / peer
    marker = venv / ".purea2c-installed.json"
    if marker.exists():
        return json.loads(marker.read_text())
    attempts = []
    for plan in INSTALL_PLANS[peer]:
        if venv.exists():
            shutil.rmtree(venv)
        cache.mkdir(parents=True, exist_ok=True)
        log_path = cache / f"{peer}-install-{len(attempts)}.log"
        start = time.perf_counter()
        with open(log_path, "w") as log:
            rc = _log_run([base_python, "-m", "venv", str(venv)], log)
            py = str(venv_python(cache, peer))
            for step in plan:
                if rc != 0:
                    break
                rc = _log_run([py, "-m", "pip", "install", *step], log)
            if rc == 0:
                rc = _log_run([py, "-c", IMPORT_CHECK[peer]], log)
        tail = log_path.read_text()[-3000:]
        attempts.append({"pip_steps": plan, "returncode": rc, "log": str(log_path),
                         "seconds": round(time.perf_counter() - start, 1),
                         "log_tail": tail if rc != 0 else ""})
        print(f"[install] {peer}: plan {len(attempts)} -> rc {rc} "
              f"({attempts[-1]['seconds']} s, log {log_path})", flush=True)
        if rc == 0:
            record = {"peer": peer, "ok": True, "attempts": attempts}
            marker.write_text(json.dumps(record, indent=1))
            return record
    return {"peer": peer, "ok": False, "attempts": attempts}


def peer_versions(python: Path, peer: str) -> dict:
    code = ("import importlib.metadata as m, json, platform\n"
            "out = {'python': platform.python_version()}\n"
            f"for n in {PEER_DISTS[peer]!r}:\n"
            "    try: out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: out[n] = None\n"
            "print(json.dumps(out))")
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": proc.stderr[-500:]}


# ------------------------------------------------------------------------------------------
# Running workers
# ------------------------------------------------------------------------------------------


class Workers:
    """Starts ``benchmarks/peers/<lib>_worker.py`` in the right interpreter, logs its output."""

    def __init__(self, pythons: dict[str, str], log_dir: Path, extra: dict[str, dict]):
        self.pythons = pythons
        self.extra = extra  # per-library parameters added to every call (e.g. torch threads)
        self.log_dir = log_dir
        self.count = 0
        log_dir.mkdir(parents=True, exist_ok=True)

    def run(self, lib: str, params: dict, timeout: float) -> dict:
        self.count += 1
        params = {**params, **self.extra.get(lib, {})}
        env = dict(os.environ)
        worker = lib
        if lib in ("purea2c", WARM):
            worker = "purea2c"
            env["PYTHONPATH"] = str(REPO)
            # Solves: purea2c's default persistent cache, warm in a folder this run fills
            # first, cold in a fresh empty folder per process (a new user's first run).
            # Speed rows compile without it, as the peers do (no time spent writing it).
            solve = params["mode"] == "solve"
            env["PUREA2C_COMPILE_CACHE"] = "1" if solve else "0"
            env["PUREA2C_CACHE_DIR"] = str(self.log_dir / ("compile_cache" if lib == WARM
                                                           else f"cold_cache_{self.count:03d}"))
        else:  # a peer's venv must not see purea2c's environment
            env.pop("PYTHONPATH", None)
        log = self.log_dir / f"{self.count:03d}_{lib}_{params['mode']}.log"
        return run_worker(self.pythons[worker], WORKERS / f"{worker}_worker.py", params,
                          timeout, log, env)


def run_worker(python: str | Path, worker: Path, params: dict, timeout: float, log: Path,
               env: dict[str, str]) -> dict:
    """Runs ``python worker params-json`` (a peer's worker in its venv), writes its output to
    ``log``, and returns the JSON of its last ``RESULT_PREFIX`` line (or ``{"error": ...}``)
    with ``process_wall_s`` and ``log`` added."""
    cmd = [str(python), str(worker), json.dumps(params)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        stdout, stderr, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        stderr += f"\n[benchmarks] killed after the {timeout:.0f} s timeout"
        rc = "timeout"
    wall = time.perf_counter() - start
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"$ {' '.join(cmd)}\n--- stdout\n{stdout[-20000:]}\n--- stderr\n{stderr}")
    lines = [ln for ln in stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if lines:
        result = json.loads(lines[-1][len(RESULT_PREFIX):])
    else:
        tail = "\n".join(stderr.strip().splitlines()[-8:])
        result = {"error": f"returncode {rc}: {tail}"}
    result.update(process_wall_s=wall, log=str(log))
    return result


# ------------------------------------------------------------------------------------------
# (a) engine speed at a matched schedule
# ------------------------------------------------------------------------------------------

# SB3 A2C's schedule: 8 envs x 5 steps, one full-batch update of 40 per rollout.
SB3_SCHEDULE = {"num_envs": 8, "rollout_length": 5, "buffer_capacity": 40, "batch_size": 40,
                "num_passes": 1, "n_step": 5, "clear_buffer": True}
# row -> (peer library, purea2c's worker params, the peer's, the schedule in words)
SPEED_PAIRS = {
    "sb3": ("sb3", {"config": SB3_SCHEDULE}, {"n_envs": 8, "n_steps": 5},
            "8 envs x 5 steps, 1 update of batch 40 per rollout (SB3 A2C default)"),
    "rejax": ("rejax", {"config": SB3_SCHEDULE}, {"num_envs": 8, "num_steps": 5},
              "8 envs x 5 steps, 1 epoch, 1 minibatch of 40 (rejax PPO, eval off)"),
    # The MinAtar CNN: the same network (one 16-channel 3x3 convolution, relu, 128 units)
    # and schedule (purea2c's preset) on both sides; 16 trainings vmapped in one program, and
    # one training alone (without vmap, flax's convolution has unbatched weights). rejax's
    # 16-seed program takes ~30 s per call here, so it is timed once per alternation.
    "rejax-minatar": ("rejax", {"preset": "Breakout-MinAtar", "seeds": 16},
                      {"minatar": True, "seeds": 16, "repeats": 1},
                      "Breakout-MinAtar, 16 seeds vmapped, 64 envs x 16 steps, 2 passes of 4 "
                      "minibatches of 256; MinAtar's CNN on both sides (rejax PPO with "
                      "flax nn.Conv; purea2c's Breakout-MinAtar preset)"),
    "rejax-minatar-1": ("rejax", {"preset": "Breakout-MinAtar"}, {"minatar": True},
                        "the same, one seed (no vmap)"),
    "coax": ("coax", {"preset": "coax_a2c"}, {"hidden": 64},
             "1 env, buffer 256 -> 32 updates of batch 32, clear (coax A2C stub = "
             "Config.coax_a2c())"),
}


def speed_comparison(workers: Workers, peers: list[str], reps: int, target_s: float,
                     timeout: float, minatar: bool = True) -> list[dict]:
    """A B alternations of each speed row whose peer works (the MinAtar row with rejax
    unless ``minatar`` is off); env steps/s (aggregate over vmapped seeds) and each
    process's peak host RSS."""
    names = [n for n, pair in SPEED_PAIRS.items() if pair[0] in peers
             and (minatar or not n.startswith("rejax-minatar"))]
    raw: dict[str, dict[str, list[dict]]] = {n: {"purea2c": [], "peer": []} for n in names}
    for rep in range(reps):
        for name in names:  # A B A B: purea2c, then the peer, alternately
            peer, ours, theirs, _ = SPEED_PAIRS[name]
            for side, lib, params in (("purea2c", "purea2c", ours), ("peer", peer, theirs)):
                res = workers.run(lib, {"mode": "speed", "target_s": target_s, "repeats": 3,
                                        **params}, timeout)  # a row's own repeats win
                raw[name][side].append(res)
                rate = res.get("steps_per_s")
                print(f"[speed {rep + 1}/{reps}] {lib:<8} ({name} row): "
                      + (f"{rate:,.0f} env steps/s, peak RSS "
                         f"{res.get('peak_rss_mib') or float('nan'):,.0f} MiB" if rate
                         else f"FAILED {res['error']}"),
                      flush=True)
    rows = []
    for name in names:
        ours = [r["steps_per_s"] for r in raw[name]["purea2c"] if "steps_per_s" in r]
        theirs = [r["steps_per_s"] for r in raw[name]["peer"] if "steps_per_s" in r]
        ours_med = statistics.median(ours) if ours else None
        theirs_med = statistics.median(theirs) if theirs else None
        errors = [r["error"] for r in raw[name]["peer"] if "error" in r]
        rows.append({
            "peer": name, "schedule": SPEED_PAIRS[name][3],
            "peer_steps_per_s": theirs_med, "purea2c_steps_per_s": ours_med,
            "ratio_purea2c_over_peer": ours_med / theirs_med if ours and theirs else None,
            "purea2c_compile_s": _median([r.get("compile_s") for r in raw[name]["purea2c"]]),
            "peer_compile_or_warmup_s": _median([r.get("compile_s", r.get("warmup_s"))
                                                 for r in raw[name]["peer"]]),
            "purea2c_peak_rss_mib": _median([r.get("peak_rss_mib")
                                             for r in raw[name]["purea2c"]]),
            "peer_peak_rss_mib": _median([r.get("peak_rss_mib") for r in raw[name]["peer"]]),
            "repetitions": reps, "error": errors[0] if errors else None, "raw": raw[name]})
    return rows


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# ------------------------------------------------------------------------------------------
# (b) time to solve CartPole-v1
# ------------------------------------------------------------------------------------------

# purea2c again, each process reading its compiled programs from a persistent compilation
# cache that one unmeasured process filled first (what a user's second run pays).
WARM = "purea2c_warm_cache"

SOLVE_SETTINGS = {
    "purea2c": "Config() defaults (16 envs x 16 steps, n=16, 1 update of 256); cold start",
    WARM: "the same, compiled programs read from a warm persistent compilation cache",
    "sb3": "rl-baselines3-zoo A2C CartPole-v1: 8 envs, MlpPolicy, ent_coef 0.0, defaults",
    "rejax": "rejax configs/gymnax/cartpole.yaml PPO (5 envs x 100 steps, 5 epochs x 5 mb)",
    "coax": "coax doc/examples/cartpole/a2c.py (n=1, 3x8 relu, update every step)",
}


def solve_comparison(workers: Workers, libs: list[str], seeds: int, common_params: dict,
                     timeout: float) -> list[dict]:
    runs: dict[str, list[dict]] = {lib: [] for lib in libs}
    if WARM in libs:  # fills the cache; not measured
        workers.run(WARM, {"mode": "solve", "seed": 0, **common_params}, timeout)
    for seed in range(seeds):
        for lib in libs:  # purea2c and the peers alternately, seed by seed
            res = workers.run(lib, {"mode": "solve", "seed": seed, **common_params}, timeout)
            res["seed"] = seed
            runs[lib].append(res)
            if "error" in res:
                msg = f"FAILED {res['error']}"
            elif res["solved"]:
                msg = f"solved in {res['seconds_to_solve']:.1f} s, {res['steps_to_solve']} steps"
            else:
                msg = f"not solved ({res['train_s']:.0f} s, {res['env_steps']} steps)"
            print(f"[solve seed {seed}] {lib:<8}: {msg} (eval {res.get('eval_s', 0):.1f} s, "
                  f"process {res['process_wall_s']:.0f} s)", flush=True)
    rows = []
    ours = None
    for lib in libs:
        times = [r["seconds_to_solve"] if r.get("solved") else math.inf for r in runs[lib]]
        steps = [r["steps_to_solve"] if r.get("solved") else math.inf for r in runs[lib]]
        med = statistics.median(times) if times else math.inf
        row = {"library": lib, "settings": SOLVE_SETTINGS[lib],
               "solved": f"{sum(math.isfinite(t) for t in times)}/{len(times)}",
               "median_seconds_to_solve": med,
               "median_steps_to_solve": statistics.median(steps) if steps else math.inf,
               "seconds_per_seed": [None if not math.isfinite(t) else round(t, 1)
                                    for t in times],
               "median_setup_plus_first_chunk_s": _median(
                   [(r.get("setup_s") or 0) + (r.get("first_chunk_s") or 0) for r in runs[lib]
                    if "error" not in r]),
               "errors": [r["error"] for r in runs[lib] if "error" in r], "runs": runs[lib]}
        if lib == "purea2c":
            ours = med
        rows.append(row)
    for row in rows:
        t = row["median_seconds_to_solve"]
        row["ratio_to_purea2c"] = (t / ours if ours and math.isfinite(ours) and math.isfinite(t)
                                   else None)
    return rows


# ------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--peers", default=None,
                        help="comma-separated subset of sb3,rejax,coax (default all; quick rejax)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds of the time-to-solve comparison (default 5; quick 1)")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="training wall-clock cap per solve attempt (default 300; quick 20)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="env-step cap per solve attempt (default 1,000,000; quick 20,000)")
    parser.add_argument("--eval-every", type=int, default=10_000,
                        help="env steps between greedy evaluations (rounded up to whole "
                             "iterations of each library)")
    parser.add_argument("--eval-episodes", type=int, default=100)
    parser.add_argument("--threshold", type=float, default=475.0)
    parser.add_argument("--speed-seconds", type=float, default=None,
                        help="seconds of one timed call in the speed comparison (default 5; "
                             "quick 0.5)")
    parser.add_argument("--speed-reps", type=int, default=None,
                        help="A B alternations of the speed comparison (default 3; quick 1)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch.set_num_threads for SB3 (default 1: with 2 threads on a "
                             "busy 2-core machine SB3's speed swings 10x; 0 keeps torch's "
                             "default)")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-minatar", action="store_true",
                        help="leave out the MinAtar CNN speed row (16 vmapped seeds a side)")
    parser.add_argument("--skip-solve", action="store_true")
    parser.add_argument("--skip-install", action="store_true",
                        help="use the venvs already in the cache; install nothing")
    parser.add_argument("--cache", type=Path,
                        default=Path.home() / ".cache" / "purea2c-peers",
                        help="folder of the peers' virtual environments")
    parser.add_argument("--base-python", default="python3",
                        help="interpreter that creates the venvs (python3 -m venv)")
    args = parser.parse_args(argv)
    label = common.result_label(args)
    quick = args.quick
    peers = [p for p in (args.peers or ("rejax" if quick else "sb3,rejax,coax")).split(",") if p]
    unknown = sorted(set(peers) - set(INSTALL_PLANS))
    if unknown:
        parser.error(f"unknown peers {unknown}; choose from {sorted(INSTALL_PLANS)}")
    seeds = args.seeds or (1 if quick else 5)
    max_seconds = args.max_seconds or (20.0 if quick else 300.0)
    max_steps = args.max_steps or (20_000 if quick else 1_000_000)
    speed_s = args.speed_seconds or (0.5 if quick else 5.0)
    reps = args.speed_reps or (1 if quick else 3)
    machine = common.machine_info()

    installs, versions, pythons = {}, {}, {"purea2c": sys.executable}
    for peer in peers:
        if args.skip_install:
            ok = venv_python(args.cache, peer).exists()
            installs[peer] = {"peer": peer, "ok": ok, "skipped": True}
        else:
            installs[peer] = install_peer(peer, args.cache, args.base_python)
        if installs[peer]["ok"]:
            pythons[peer] = str(venv_python(args.cache, peer))
            versions[peer] = peer_versions(venv_python(args.cache, peer), peer)
        print(f"[install] {peer}: {'ok' if installs[peer]['ok'] else 'FAILED'} "
              f"{versions.get(peer, '')}", flush=True)
    versions["purea2c"] = machine["versions"]
    working = [p for p in peers if installs[p]["ok"]]
    workers = Workers(pythons, args.cache / "logs" / f"{label}-{int(time.time())}",
                      {"sb3": {"torch_threads": args.torch_threads}})
    timeout = 3 * max_seconds + 600

    speed_rows = []
    if not args.skip_speed and working:
        speed_rows = speed_comparison(workers, working, reps, speed_s, timeout,
                                      minatar=not args.skip_minatar)
    solve_rows = []
    solve_params = {"eval_every": args.eval_every, "eval_episodes": args.eval_episodes,
                    "threshold": args.threshold, "max_seconds": max_seconds,
                    "max_steps": max_steps}
    if not args.skip_solve:
        solve_rows = solve_comparison(workers, ["purea2c", WARM, *working], seeds,
                                      solve_params, timeout)

    md = _markdown(peers, installs, versions, speed_rows, solve_rows, solve_params, seeds)
    if "sb3" in working:
        md += (f"\n\nSB3 ran with torch.set_num_threads({args.torch_threads})." if
               args.torch_threads else "\n\nSB3 ran with torch's default thread count.")
    common.write_results("peers", {
        "peers": peers, "installs": installs, "versions": versions, "cache": str(args.cache),
        "speed": speed_rows, "solve": solve_rows, "solve_params": solve_params,
        "seeds": seeds, "speed_seconds": speed_s, "speed_reps": reps,
        "torch_threads": args.torch_threads or "torch default",
        "worker_logs": str(workers.log_dir)}, md, label=label, machine=machine)
    print()
    print(md)
    return 0


def _markdown(peers, installs, versions, speed_rows, solve_rows, solve_params, seeds) -> str:
    parts = ["## Versions"]
    for lib, v in versions.items():
        parts.append(f"- {lib}: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    for peer in peers:
        if not installs[peer]["ok"]:
            last = (installs[peer].get("attempts") or [{}])[-1]
            parts.append(f"- {peer}: INSTALL FAILED ({last.get('log', 'no venv')}): "
                         f"{last.get('log_tail', '')[-300:]!r}")
    if speed_rows:
        parts += ["## (a) Engine speed at a matched schedule (env steps/s, median of "
                  f"{speed_rows[0]['repetitions']} alternations)",
                  common.markdown_table(speed_rows, [
                      "peer", "schedule", "peer_steps_per_s", "purea2c_steps_per_s",
                      "ratio_purea2c_over_peer", "purea2c_compile_s",
                      "peer_compile_or_warmup_s", "purea2c_peak_rss_mib",
                      "peer_peak_rss_mib"]),
                  "env steps/s are aggregate over the vmapped seeds where a row vmaps them; "
                  "peak RSS is each worker process's peak resident memory (MiB, median over "
                  "the alternations), a process that compiles and runs only that row's "
                  "programs."]
        parts += [f"- {r['peer']}: {r['error']}" for r in speed_rows if r["error"]]
    if solve_rows:
        parts += [f"## (b) Time to solve CartPole-v1 (greedy mean >= {solve_params['threshold']}"
                  f" over {solve_params['eval_episodes']} episodes, checked every "
                  f"~{solve_params['eval_every']} env steps; {seeds} seeds; wall clock of "
                  "training incl. agent construction and compilation, excl. evaluation; cap "
                  f"{solve_params['max_seconds']:.0f} s / {solve_params['max_steps']} steps)",
                  common.markdown_table(solve_rows, [
                      "library", "settings", "solved", "median_seconds_to_solve",
                      "median_steps_to_solve", "seconds_per_seed",
                      "median_setup_plus_first_chunk_s", "ratio_to_purea2c"]),
                  "ratio_to_purea2c = the library's median time to solve / purea2c's (> 1: "
                  "purea2c is faster). A seed not solved counts as infinitely slow in the "
                  "median (inf)."]
        for r in solve_rows:
            parts += [f"- {r['library']}: {e}" for e in r["errors"][:1]]
    return "\n\n".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
