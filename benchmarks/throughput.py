"""Env steps per second of the whole training program (``purea2c.train``), compile time apart.

Sweep A: ``num_envs`` for one agent (rollout_length and the schedule otherwise default; the
buffer holds exactly one iteration: capacity = batch = num_envs * rollout_length, cleared).
Sweep B: vmapped seeds, ``jit(vmap(purea2c.train, in_axes=(0, None)))`` at ``Config()``.
For each point ``total_timesteps`` is calibrated so that one call lasts about ``--target-s``
seconds; the value used is recorded.

    python benchmarks/throughput.py [--quick] [--label cpu]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import purea2c  # noqa: E402
from benchmarks import common  # noqa: E402

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
    args = parser.parse_args(argv)
    label = common.result_label(args)
    env_list = args.num_envs or ([1, 8] if args.quick else [1, 8, 64, 512, 4096])
    seed_list = args.seeds or ([1, 4] if args.quick else [1, 16, 64, 256, 1024])
    target_s = args.target_s or 3.0  # --quick: fixed 8 iterations per call instead
    repeats = args.repeats or (2 if args.quick else 5)
    machine = common.machine_info()

    results = []
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

    cols = ["sweep", "value", "num_envs", "seeds", "total_timesteps", "compile_s", "run_s",
            "per_agent_steps_per_s", "aggregate_steps_per_s", "program_mib", "peak_rss_mib"]
    if machine["backend"] != "cpu":
        cols.append("peak_device_mib")
    table = common.markdown_table(results, cols)
    plots = _plots(results, label)
    notes = (
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
    common.write_results(NAME, {"target_s": target_s, "repeats": repeats, "results": results,
                                "plots": [p.name for p in plots]},
                         table + notes, label=label, machine=machine)
    print()
    print(table)
    return 0


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
