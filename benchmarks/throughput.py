"""Env steps per second of the whole training program (``purea2c.train``), compile time apart.

Sweep A: ``num_envs`` for one agent (rollout_length and the schedule otherwise default; the
buffer holds exactly one iteration: capacity = batch = num_envs * rollout_length, cleared).
Sweep B: vmapped seeds, ``jit(vmap(purea2c.train, in_axes=(0, None)))`` at ``Config()``.
Sweep C: one row per suite env id (``--suites``, default the ids of
``purea2c.presets.SUITE_PRESETS``): training at ``Config.preset(id)`` over ``--suite-seeds``
vmapped seeds (as sweep B), beside two random-policy stepping rates of the same env
(`benchmarks/suite_stepping.py`): (a) through the suite's own API and auto-reset, the
suite's ceiling, and (b) through purea2c's env layer, stepped as training steps it.
For each training point ``total_timesteps`` is calibrated so that one call lasts about
``--target-s`` seconds (sweeps B and C capped at the config's own total_timesteps); the
value used is recorded.

    python benchmarks/throughput.py [--quick] [--label cpu] [--only-suites] [--suites ID ...]

``--only-suites`` runs sweep C alone and keeps the sweep A and B rows of the results file it
replaces (same label), saying so in the Markdown.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import purea2c  # noqa: E402
from benchmarks import common, suite_stepping  # noqa: E402
from purea2c.presets import SUITE_PRESETS  # noqa: E402

NAME = "throughput"


def num_envs_config(num_envs: int) -> purea2c.Config:
    base = purea2c.Config()
    per_iter = num_envs * base.rollout_length
    return base.replace(num_envs=num_envs, buffer_capacity=per_iter, batch_size=per_iter,
                        clear_buffer=True, total_timesteps=max(base.total_timesteps, per_iter))


def _row(kind: str, value: int, res: dict) -> dict:
    return {
        "sweep": kind,
        "value": value,
        "num_envs": res["config"]["num_envs"],
        "seeds": res["num_seeds"],
        "total_timesteps": res["total_timesteps"],
        "compile_s": res["compile_s"],
        "run_s": res["run_s"],
        "per_agent_steps_per_s": res["per_agent_steps_per_s"],
        "aggregate_steps_per_s": res["aggregate_steps_per_s"],
        "program_mib": (res["program_memory"] or {}).get("total_mib"),
        "peak_rss_mib": res["peak_host_rss_mib"],
        "peak_device_mib": res["peak_device_mib"],
    }


def suite_row(env_id: str, res: dict, own: dict, through: dict) -> dict:
    """Sweep C's row of ``env_id``: the training measurement ``res`` (`_row`'s fields) and
    the random-policy stepping rates, (a) ``own`` and (b) ``through`` purea2c, with the
    ratios of training and of (b) to (a)."""
    row = _row("suite", env_id, res)
    own_rate, through_rate = own["steps_per_s"], through["steps_per_s"]
    return row | {
        "env": env_id,
        "own_random_steps_per_s": own_rate,
        "purea2c_random_steps_per_s": through_rate,
        "training_over_own": row["aggregate_steps_per_s"] / own_rate,
        "purea2c_over_own": through_rate / own_rate,
    }


def measure_suite(env_id: str, seeds: int, target_s: float | None, repeats: int,
                  stepping_envs: int, stepping_steps: int, quick: bool) -> dict:
    """Sweep C for one env id: training at ``Config.preset(env_id)`` over ``seeds`` vmapped
    seeds (calibrated to ``target_s`` and capped at the preset's total_timesteps; ``quick``:
    8 iterations), then the two stepping measurements of ``suite_stepping`` at
    ``stepping_envs`` envs x ``stepping_steps`` steps. Returns `suite_row`'s row with
    ``detail`` (the training result and both stepping results)."""
    config = purea2c.Config.preset(env_id)
    if quick:
        config = config.replace(total_timesteps=8 * config.steps_per_iteration)
    res = common.measure_training(config, seeds, None if quick else target_s, repeats,
                                  max_timesteps=config.total_timesteps)
    res["config"] = common.config_record(config.replace(total_timesteps=res["total_timesteps"]))
    own = suite_stepping.own_stepping(env_id, stepping_envs, stepping_steps, repeats)
    through = suite_stepping.purea2c_stepping(env_id, stepping_envs, stepping_steps, repeats)
    return suite_row(env_id, res, own, through) | {
        "detail": {"training": res, "own_stepping": own, "purea2c_stepping": through}}


def kept_rows(label: str) -> tuple[list[dict], dict | None]:
    """The sweep A and B rows of the results last written under ``label`` and that run's
    machine record (``[], None`` when there are none): what ``--only-suites`` keeps."""
    old = common.load_results(NAME, label)
    if old is None:
        return [], None
    rows = [r for r in old.get("results", []) if r.get("sweep") in ("num_envs", "seeds")]
    return rows, (old.get("machine") if rows else None)


def main(argv: list[str] | None = None) -> int:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, nargs="+", default=None,
                        help="sweep A values (default 1 8 64 512 4096; quick 1 8)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="sweep B values (default 1 16 64 256 1024; quick 1 4)")
    parser.add_argument("--target-s", type=float, default=None,
                        help="seconds of one timed training call (default 3; --quick uses "
                             "8 iterations)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed calls per point, median reported (default 5; quick 2)")
    parser.add_argument("--suites", nargs="+", default=None, metavar="ID",
                        help="sweep C env ids (default: SUITE_PRESETS' ids; quick "
                             "navix/Navix-Empty-5x5-v0)")
    parser.add_argument("--suite-seeds", type=int, default=None,
                        help="vmapped seeds of sweep C's training (default 16; quick 2)")
    parser.add_argument("--stepping-envs", type=int, default=None,
                        help="envs of sweep C's random stepping (default 256; quick 16)")
    parser.add_argument("--stepping-steps", type=int, default=None,
                        help="steps per call of sweep C's random stepping (default 200; "
                             "quick 32)")
    parser.add_argument("--only-suites", action="store_true",
                        help="run sweep C only; the sweep A and B rows of the results file "
                             "of the same label are kept")
    args = parser.parse_args(argv)
    label = common.result_label(args)
    env_list = args.num_envs or ([1, 8] if args.quick else [1, 8, 64, 512, 4096])
    seed_list = args.seeds or ([1, 4] if args.quick else [1, 16, 64, 256, 1024])
    target_s = args.target_s or 3.0  # --quick: fixed 8 iterations per call instead
    repeats = args.repeats or (2 if args.quick else 5)
    suite_list = args.suites or (["navix/Navix-Empty-5x5-v0"] if args.quick
                                 else list(SUITE_PRESETS))
    suite_seeds = args.suite_seeds or (2 if args.quick else 16)
    stepping_envs = args.stepping_envs or (16 if args.quick else 256)
    stepping_steps = args.stepping_steps or (32 if args.quick else 200)
    machine = common.machine_info()

    results, kept_from = [], None
    if args.only_suites:
        env_list, seed_list = [], []
        results, kept_from = kept_rows(label)
    for n in env_list:
        config = num_envs_config(n)
        if args.quick:  # fixed tiny budget, no calibration (saves a compilation per point)
            config = config.replace(total_timesteps=8 * config.steps_per_iteration)
        res = common.measure_training(config, None, None if args.quick else target_s, repeats)
        res["config"] = common.config_record(config.replace(total_timesteps=res["total_timesteps"]))
        results.append(_row("num_envs", n, res) | {"detail": res})
        print(f"[A] num_envs={n:>5}: {res['per_agent_steps_per_s']:,.0f} steps/s, "
              f"compile {res['compile_s']:.1f} s, {res['total_timesteps']} steps/call", flush=True)
    for s in seed_list:
        config = purea2c.Config()
        if args.quick:
            config = config.replace(total_timesteps=8 * config.steps_per_iteration)
        res = common.measure_training(config, s, None if args.quick else target_s, repeats,
                                      max_timesteps=config.total_timesteps)
        res["config"] = common.config_record(config.replace(total_timesteps=res["total_timesteps"]))
        results.append(_row("seeds", s, res) | {"detail": res})
        print(f"[B] seeds={s:>5}: {res['aggregate_steps_per_s']:,.0f} steps/s aggregate, "
              f"{res['per_agent_steps_per_s']:,.0f} per agent, compile {res['compile_s']:.1f} s, "
              f"{res['total_timesteps']} steps/agent", flush=True)
    for env_id in suite_list:
        row = measure_suite(env_id, suite_seeds, target_s, repeats, stepping_envs,
                            stepping_steps, args.quick)
        results.append(row)
        print(f"[C] {env_id}: training {row['aggregate_steps_per_s']:,.0f} steps/s aggregate "
              f"({suite_seeds} seeds, compile {row['compile_s']:.1f} s); random stepping: "
              f"own {row['own_random_steps_per_s']:,.0f}, through purea2c "
              f"{row['purea2c_random_steps_per_s']:,.0f} steps/s", flush=True)

    cols = ["sweep", "value", "num_envs", "seeds", "total_timesteps", "compile_s", "run_s",
            "per_agent_steps_per_s", "aggregate_steps_per_s", "program_mib", "peak_rss_mib"]
    if machine["backend"] != "cpu":
        cols.append("peak_device_mib")
    ab = [r for r in results if r["sweep"] in ("num_envs", "seeds")]
    table = common.markdown_table(ab, cols) if ab else ""
    plots = _plots(results, label)
    notes = "" if not ab else (
        "\n\nSweep A: one agent, `Config()` with `num_envs` changed and buffer_capacity = "
        "batch_size = num_envs * rollout_length (clear_buffer=True). Sweep B: "
        "`jit(vmap(purea2c.train, in_axes=(0, None)))` at `Config()`. "
        + ("--quick: total_timesteps is 8 iterations per call. " if args.quick else
           f"total_timesteps is calibrated so one call takes ~{target_s} s (sweep B capped at "
           f"the default {purea2c.Config().total_timesteps}). ")
        + f"run_s is the median of {repeats} calls of the "
        "compiled program; compile_s = trace + lower + XLA compile; program_mib is XLA's "
        "memory analysis of the program (arguments + outputs + temporaries); peak_rss_mib is "
        "the process's peak resident memory so far (monotone over the run).\n\n"
        + "\n".join(f"![{p.stem}]({p.name})" for p in plots))
    if kept_from is not None:
        notes += ("\n\nSweeps A and B are kept from the earlier run of "
                  f"{kept_from.get('date_utc')} (`{kept_from.get('command')}` at revision "
                  f"{kept_from.get('git_revision')}); this run (--only-suites) measured "
                  "sweep C only.")
    suites = _suite_section(results, machine, args.quick, target_s, repeats, suite_seeds,
                            stepping_envs, stepping_steps)
    markdown = "\n\n".join(part for part in (table + notes, suites) if part.strip())
    common.write_results(NAME, {"target_s": target_s, "repeats": repeats, "results": results,
                                "suite_seeds": suite_seeds, "stepping_envs": stepping_envs,
                                "stepping_steps": stepping_steps, "kept_from": kept_from,
                                "plots": [p.name for p in plots]},
                         markdown, label=label, machine=machine)
    print()
    print(markdown)
    return 0


def _suite_section(results: list[dict], machine: dict, quick: bool, target_s: float,
                   repeats: int, seeds: int, stepping_envs: int, stepping_steps: int) -> str:
    """Sweep C's table and the note explaining its columns ("" without sweep C rows)."""
    rows = [r for r in results if r["sweep"] == "suite"]
    if not rows:
        return ""
    cols = ["env", "seeds", "num_envs", "aggregate_steps_per_s", "per_agent_steps_per_s",
            "compile_s", "peak_rss_mib", "own_random_steps_per_s",
            "purea2c_random_steps_per_s", "training_over_own", "purea2c_over_own"]
    if machine["backend"] != "cpu":
        cols.insert(cols.index("peak_rss_mib") + 1, "peak_device_mib")
    note = (
        "Sweep C, one row per suite env id. Training: "
        f"`jit(vmap(purea2c.train, in_axes=(0, None)))` over {seeds} seeds at "
        "`Config.preset(env)` (num_envs is the preset's, per seed); "
        + ("--quick: total_timesteps is 8 iterations per call; " if quick else
           f"total_timesteps calibrated so one call takes ~{target_s} s, capped at the "
           "preset's; ")
        + "aggregate_steps_per_s = seeds x per_agent_steps_per_s; compile_s and peak_rss_mib "
        "are the training program's (as in sweeps A and B). Random-policy stepping "
        f"(`benchmarks/suite_stepping.py`), {stepping_envs} envs under vmap, a jitted "
        f"lax.scan of {stepping_steps} steps, uniform random actions (over the allowed ones "
        "where there is an action mask), median of "
        f"{repeats} calls after an untimed first one, compile apart: "
        "own_random_steps_per_s steps the env through the suite's own API and the suite's "
        "own auto-reset (gymnax `env.step`; brax `brax.envs.create(name, episode_length="
        "1000, batch_size=...)`; jumanji `vmap` of `AutoResetWrapper(jumanji.make(id))`; "
        "navix `navix.make(id)` and its `step`; xminigrid `GymAutoResetWrapper`; craftax "
        "`make_craftax_env_from_name(id, auto_reset=True)`), the suite's ceiling; "
        "purea2c_random_steps_per_s steps `purea2c.envs.make(id)` as training does (noise "
        "drawn per block of the preset's rollout_length, `purea2c.envs.step_with`). "
        "training_over_own = aggregate_steps_per_s / own_random_steps_per_s (the fraction of "
        "the suite's own random stepping rate that whole training reaches; training steps "
        "seeds x num_envs envs at once, the stepping rates "
        f"{stepping_envs}); purea2c_over_own = purea2c_random_steps_per_s / "
        "own_random_steps_per_s (the cost of purea2c's env layer and auto-reset).")
    return "## Sweep C: suites\n\n" + common.markdown_table(rows, cols) + "\n\n" + note


def _plots(results: list[dict], label: str) -> list[Path]:
    plt = common.pyplot()
    paths = []
    a = [r for r in results if r["sweep"] == "num_envs"]
    if a:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.loglog([r["value"] for r in a], [r["per_agent_steps_per_s"] for r in a], "o-")
        ax.set_xticks([r["value"] for r in a], [str(r["value"]) for r in a])
        ax.minorticks_off()
        ax.set_xlabel("num_envs (one agent)")
        ax.set_ylabel("env steps / s (whole training)")
        ax.set_title(f"purea2c.train throughput vs num_envs ({label})")
        ax.grid(True, which="both", alpha=0.3)
        path = common.plot_path(NAME, label, "num_envs")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    b = [r for r in results if r["sweep"] == "seeds"]
    if b:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        xs = [r["value"] for r in b]
        ax.loglog(xs, [r["aggregate_steps_per_s"] for r in b], "o-", label="aggregate")
        ax.loglog(xs, [r["per_agent_steps_per_s"] for r in b], "s--", label="per agent")
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.minorticks_off()
        ax.set_xlabel("vmapped seeds (Config())")
        ax.set_ylabel("env steps / s")
        ax.set_title(f"jit(vmap(train)) throughput vs seeds ({label})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        path = common.plot_path(NAME, label, "seeds")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


if __name__ == "__main__":
    raise SystemExit(main())
