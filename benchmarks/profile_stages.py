"""Where the training program spends its time: time variants that drop one stage at a time.

    python benchmarks/profile_stages.py [--quick] [--label cpu] [--repeats 5]

Each variant is the real `train` program with later stages replaced by identities (patched
before tracing, a fresh jit cache per variant), at the default schedule and at
Stable-Baselines3's A2C schedule (8 envs x 5 steps, one update of 40). Steady-state env
steps/s per variant (median of ``--repeats`` calls, compile time apart); the differences
between consecutive rows are the cost of each stage. Writes
results/profile_stages_<label>.{json,md}.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import purea2c  # noqa: E402
from benchmarks import common  # noqa: E402
from purea2c import replay, tracing  # noqa: E402

from purea2c import stages  # noqa: E402

NAME = "profile_stages"


@contextlib.contextmanager
def patched(module, name, fn):
    old = getattr(module, name)
    setattr(module, name, fn)
    try:
        yield
    finally:
        setattr(module, name, old)


def no_update(s, buffer, carry, slots):
    metrics = stages.UpdateMetrics(*(jnp.zeros(()),) * len(stages.UpdateMetrics._fields))
    return carry, metrics._replace(skipped=jnp.zeros((), jnp.int32))


def no_add(state, batch, mask=None):
    return state


def no_trace(state, obs, action, log_prob, reward, terminated, truncated, final_obs,
             next_obs, gamma):
    t = tracing.Transition(obs, action, log_prob, reward, reward, next_obs)
    return state, t, jnp.ones((), bool)


def measure(config: purea2c.Config, repeats: int) -> dict:
    """Compile time and steady-state env steps/s of `train` at ``config`` as patched now."""
    fn = jax.jit(lambda k, c: purea2c.Agent(c).train(k),  # a fresh cache for each variant
                 compiler_options=purea2c.compiler_options())
    key = jax.random.key(0)
    compiled, times = common.compile_fn(fn, key, config)
    timed = common.time_calls(compiled, key, config, repeats=repeats)
    steps = config.num_iterations * config.steps_per_iteration
    return {"total_timesteps": steps, "compile_s": times["compile_s"], "run_s": timed["run_s"],
            "run_s_all": timed["run_s_all"], "steps_per_s": steps / timed["run_s"]}


def main(argv: list[str] | None = None) -> int:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed calls per variant, median reported (default 5; quick 2)")
    args = parser.parse_args(argv)
    label = common.result_label(args)
    repeats = args.repeats or (2 if args.quick else 5)
    sb3 = dict(num_envs=8, rollout_length=5, n_step=5, buffer_capacity=40, batch_size=40)
    configs = {
        "default (16 envs x 16, 1x256)": purea2c.Config(
            total_timesteps=4 * 256 if args.quick else 98_304),
        "SB3 A2C (8 envs x 5, 1x40)": purea2c.Config(
            **sb3, total_timesteps=40 * (4 if args.quick else 2000)),
    }
    variants = [
        ("full program", []),
        ("- updates", [(stages, "update", no_update)]),
        ("- updates, buffer add", [(stages, "update", no_update),
                                   (replay, "add", no_add)]),
        ("- updates, buffer, tracer (env + policy)", [
            (stages, "update", no_update), (replay, "add", no_add),
            (tracing, "step", no_trace)]),
    ]
    machine = common.machine_info()
    rows = []
    for cname, config in configs.items():
        for vname, patches in variants:
            with contextlib.ExitStack() as stack:
                for module, name, fn in patches:
                    stack.enter_context(patched(module, name, fn))
                res = measure(config, repeats)
            # Microseconds per env step of all envs at once, i.e. per step of the vmapped env.
            res["us_per_step_all_envs"] = 1e6 * config.num_envs / res["steps_per_s"]
            rows.append({"schedule": cname, "variant": vname, **res,
                         "patched": [f"{m.__name__}.{n}" for m, n, _ in patches]})
            print(f"{cname} | {vname}: {res['steps_per_s']:,.0f} env steps/s, "
                  f"{res['us_per_step_all_envs']:.1f} us per step of all envs, "
                  f"compile {res['compile_s']:.1f} s", flush=True)
    table = common.markdown_table(rows, ["schedule", "variant", "steps_per_s",
                                         "us_per_step_all_envs", "compile_s", "run_s",
                                         "total_timesteps"])
    notes = (f"\n\nEach row is `train` with the named stages replaced by identities before "
             f"tracing; run_s is the median of {repeats} calls of the compiled program "
             f"(compile_s = trace + lower + XLA compile, apart). The difference between "
             f"consecutive rows of a schedule is the cost of the stage dropped.")
    common.write_results(NAME, {"repeats": repeats, "rows": rows}, table + notes,
                         label=label, machine=machine)
    print()
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
