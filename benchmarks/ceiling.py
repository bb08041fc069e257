"""How close training gets to what the machine can do, measured in one run.

(a) gymnax CartPole-v1 with a uniform random policy, stepped as training steps it: vmap over
    envs, lax.scan over steps, one jitted program, auto-reset (`purea2c.envs.step_with`), the
    randomness of each 16 steps drawn in one call before them;
(b) the same loop acting with purea2c's ``PolicyNet`` (forward pass + categorical sample, no
    learning);
(c) XLA float32 matmul rate: square GEMMs, and chains of training-shaped [B, 64] x [64, 64];
(d) an analytic FLOP count per env step of a configuration (acting + learning) and, from the
    measured training throughput, the fraction of the matmul ceiling that training reaches,
    at ``Config()`` and at a large-batch config (num_envs=4096).

    python benchmarks/ceiling.py [--quick] [--label cpu]
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import purea2c  # noqa: E402
from benchmarks import common  # noqa: E402
from purea2c import distributions, envs, networks  # noqa: E402
from purea2c.agent import make_networks  # noqa: E402

NAME = "ceiling"
ENV = "CartPole-v1"


# ------------------------------------------------------------------------------------------
# (a), (b): stepping programs
# ------------------------------------------------------------------------------------------


# Steps per block of drawn randomness: training's rollout length.
CHUNK = purea2c.Config().rollout_length


def _stepping(key: jax.Array, pi_params, *, num_envs: int, num_chunks: int,
              policy: networks.PolicyNet | None) -> jax.Array:
    """``num_chunks * CHUNK`` vmapped steps of ``num_envs`` envs, stepped as training steps
    them: each block of CHUNK steps draws its env noise and actions (random ones if
    ``policy`` is None, else the policy's Gumbel noise) in one call before its scan."""
    env = envs.make(ENV)
    num_actions = env.action_spec.num_actions
    key, key_reset = jax.random.split(key)
    state = envs.reset(key_reset, env, num_envs)

    def step(carry, noise):
        state, total = carry
        actions, env_noise = noise
        if policy is not None:  # actions holds the Gumbel noise of the policy's sample
            actions = distributions.sample_with_noise(policy.apply(pi_params, state.obs),
                                                      actions)
        state, res = envs.step_with(env_noise, env, state, actions)
        return (state, total + jnp.sum(res.reward)), None

    def block(carry, key):
        key_act, key_env = jax.random.split(key)
        if policy is None:
            actions = jax.random.randint(key_act, (CHUNK, num_envs), 0, num_actions)
        else:
            actions = distributions.draw_noise(key_act, True, (CHUNK, num_envs, num_actions))
        noise = (actions, envs.draw_step_noise(key_env, env, num_envs, CHUNK))
        return jax.lax.scan(step, carry, noise)[0], None

    carry = (state, jnp.zeros((), jnp.float32))
    (state, total), _ = jax.lax.scan(block, carry, jax.random.split(key, num_chunks))
    return total + jnp.sum(state.obs)  # depends on every step, so nothing is dead code


def measure_stepping(num_envs: int, with_policy: bool, target_s: float | None,
                     probe_steps: int, repeats: int) -> dict:
    config = purea2c.Config()
    env = envs.make(ENV)
    nets = make_networks(config)[2]
    key = jax.random.key(0)
    pi_params = nets.pi.init(key, jnp.zeros(env.observation_spec.shape))
    policy = nets.pi if with_policy else None

    def build(chunks):
        fn = jax.jit(functools.partial(_stepping, num_envs=num_envs, num_chunks=chunks,
                                       policy=policy))
        return fn, (key, pi_params)

    res = common.calibrated_benchmark(build, max(1, probe_steps // CHUNK), target_s, repeats)
    res.pop("output")
    steps = res["units"] * CHUNK
    res.update(num_envs=num_envs, num_steps=steps, steps_per_s=num_envs * steps / res["run_s"])
    return res


# ------------------------------------------------------------------------------------------
# (c) matmul rate
# ------------------------------------------------------------------------------------------


def _gemm(a: jax.Array, b: jax.Array) -> jax.Array:
    return a @ b


def _chained(x: jax.Array, w: jax.Array, *, length: int) -> jax.Array:
    """``length`` dependent products ``x <- x @ w``: the GEMM shape of a dense layer."""
    return jax.lax.fori_loop(0, length, lambda _, x: x @ w, x)


def measure_gemm(n: int, repeats: int) -> dict:
    ka, kb = jax.random.split(jax.random.key(1))
    a = jax.random.normal(ka, (n, n), jnp.float32)
    b = jax.random.normal(kb, (n, n), jnp.float32)
    res = common.benchmark(_gemm, a, b, repeats=repeats)
    res.pop("output")
    flops = 2 * n ** 3
    return {"shape": f"{n}x{n} @ {n}x{n}", "flops_per_call": flops, "run_s": res["run_s"],
            "compile_s": res["compile_s"], "flop_per_s": flops / res["run_s"]}


def measure_chained(batch: int, width: int, length: int, repeats: int) -> dict:
    kx, kw = jax.random.split(jax.random.key(2))
    x = jax.random.normal(kx, (batch, width), jnp.float32)
    w = jax.nn.initializers.orthogonal()(kw, (width, width), jnp.float32)  # keeps |x| fixed
    res = common.benchmark(jax.jit(functools.partial(_chained, length=length)), x, w,
                           repeats=repeats)
    res.pop("output")
    flops = 2 * batch * width * width * length
    return {"shape": f"{length} x ([{batch},{width}] @ [{width},{width}])",
            "flops_per_call": flops, "run_s": res["run_s"], "compile_s": res["compile_s"],
            "flop_per_s": flops / res["run_s"]}


# ------------------------------------------------------------------------------------------
# (d) analytic FLOPs per env step
# ------------------------------------------------------------------------------------------


def dense_flops(sizes: list[int]) -> int:
    """Forward FLOPs of one sample through dense layers ``sizes[0] -> ... -> sizes[-1]``:
    2 * in * out per layer (multiply-adds; biases and activations ignored)."""
    return sum(2 * i * o for i, o in zip(sizes[:-1], sizes[1:]))


def flops_per_env_step(config: purea2c.Config) -> dict:
    """Acting: one policy forward per env step. Learning, per update of batch B: value forward
    on obs and next_obs (2 B F_v), value backward (~2 B F_v), policy forward + backward
    (~3 B F_pi); times updates_per_iteration * B / steps_per_iteration."""
    env = envs.make(config.env)
    obs_dim = env.observation_spec.shape[0]
    hidden = list(config.hidden_sizes)
    f_pi = dense_flops([obs_dim, *hidden, env.action_spec.num_actions])
    f_v = dense_flops([obs_dim, *hidden, 1])
    per_update = config.batch_size * (2 * f_v + 2 * f_v + 3 * f_pi)
    learn = config.updates_per_iteration * per_update / config.steps_per_iteration
    return {"pi_forward_flops": f_pi, "v_forward_flops": f_v, "flops_per_update": per_update,
            "updates_per_iteration": config.updates_per_iteration,
            "acting_flops_per_step": f_pi, "learning_flops_per_step": learn,
            "total_flops_per_step": f_pi + learn}


def large_batch_config(num_envs: int) -> purea2c.Config:
    base = purea2c.Config()
    per_iter = num_envs * base.rollout_length
    return base.replace(num_envs=num_envs, buffer_capacity=per_iter, batch_size=per_iter,
                        total_timesteps=max(base.total_timesteps, per_iter))


# ------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, nargs="+", default=None,
                        help="batch sizes of (a) and (b) (default 1 16 256 4096; quick 16 256)")
    parser.add_argument("--large-envs", type=int, default=None,
                        help="num_envs of the large-batch training config (default 4096; "
                             "quick 256)")
    parser.add_argument("--target-s", type=float, default=None,
                        help="seconds of one timed call (default 2; quick: no calibration)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls (default 5)")
    args = parser.parse_args(argv)
    label = common.result_label(args)
    quick = args.quick
    env_list = args.num_envs or ([16, 256] if quick else [1, 16, 256, 4096])
    large = args.large_envs or (256 if quick else 4096)
    target_s = None if quick else (args.target_s or 2.0)
    repeats = args.repeats or (2 if quick else 5)
    gemm_sizes = [256, 512] if quick else [1024, 2048]
    machine = common.machine_info()

    stepping = []
    for with_policy in (False, True):
        for n in env_list:
            probe = max(8, 2048 // n) if quick else max(16, 65_536 // n)
            res = measure_stepping(n, with_policy, target_s, probe, repeats)
            kind = "env + PolicyNet forward" if with_policy else "env, random policy"
            stepping.append({"program": kind, "num_envs": n, "num_steps": res["num_steps"],
                             "compile_s": res["compile_s"], "run_s": res["run_s"],
                             "steps_per_s": res["steps_per_s"]})
            print(f"[{'b' if with_policy else 'a'}] {kind:<24} num_envs={n:>5}: "
                  f"{res['steps_per_s']:,.0f} env steps/s", flush=True)

    gemms = [measure_gemm(n, repeats) for n in gemm_sizes]
    chained_len = 16 if quick else 256
    gemms += [measure_chained(b, 64, chained_len, repeats) for b in (256, 4096)]
    for g in gemms:
        print(f"[c] {g['shape']:<32}: {g['flop_per_s'] / 1e9:,.1f} GFLOP/s", flush=True)
    peak = max(g["flop_per_s"] for g in gemms)

    training = []
    for name, config in (("Config()", purea2c.Config()),
                         (f"num_envs={large}, batch={large * 16}", large_batch_config(large))):
        if quick:
            config = config.replace(total_timesteps=4 * config.steps_per_iteration)
        res = common.measure_training(config, None, target_s, repeats)
        flops = flops_per_env_step(config)
        achieved = flops["total_flops_per_step"] * res["per_agent_steps_per_s"]
        training.append({"config": name, "num_envs": config.num_envs,
                         "batch_size": config.batch_size,
                         "total_timesteps": res["total_timesteps"],
                         "compile_s": res["compile_s"], "steps_per_s": res["per_agent_steps_per_s"],
                         **flops, "achieved_flop_per_s": achieved,
                         "fraction_of_gemm_peak": achieved / peak,
                         "config_fields": common.config_record(config)})
        print(f"[d] {name:<28}: {res['per_agent_steps_per_s']:,.0f} steps/s x "
              f"{flops['total_flops_per_step']:,.0f} FLOP/step = {achieved / 1e9:.2f} GFLOP/s "
              f"= {100 * achieved / peak:.2f}% of the GEMM peak", flush=True)

    stepping_md = common.markdown_table(stepping, ["program", "num_envs", "num_steps",
                                                   "compile_s", "run_s", "steps_per_s"])
    gemm_md = common.markdown_table(gemms, ["shape", "flops_per_call", "run_s", "flop_per_s"])
    training_md = common.markdown_table(training, [
        "config", "num_envs", "batch_size", "steps_per_s", "acting_flops_per_step",
        "learning_flops_per_step", "total_flops_per_step", "achieved_flop_per_s",
        "fraction_of_gemm_peak"])
    plot = _plot(stepping, training, gemms, label)
    md = "\n\n".join([
        "## (a), (b) stepping CartPole-v1 (vmap over envs, scan over steps, one program)",
        stepping_md,
        "## (c) XLA float32 matmul",
        gemm_md,
        f"Peak used below: {common.fmt(peak)}FLOP/s (the largest rate in (c)).",
        "## (d) analytic FLOPs per env step and fraction of the matmul peak",
        training_md,
        "FLOPs: 2*in*out per dense layer forward, ~2x that backward; acting = one policy "
        "forward per env step; learning per update of batch B = B*(2 F_v [v on obs, next_obs] + "
        "2 F_v [v backward] + 3 F_pi [pi forward + backward]), times updates_per_iteration * B / "
        "(num_envs * rollout_length). Biases, activations, env dynamics and optimizer ignored.",
        f"![{plot.stem}]({plot.name})",
    ])
    common.write_results(NAME, {"stepping": stepping, "gemm": gemms, "gemm_peak": peak,
                                "training": training, "repeats": repeats,
                                "target_s": target_s, "plot": plot.name},
                         md, label=label, machine=machine)
    print()
    print("\n\n".join([stepping_md, gemm_md, training_md]))
    return 0


def _plot(stepping: list[dict], training: list[dict], gemms: list[dict], label: str) -> Path:
    plt = common.pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    programs = sorted({r["program"] for r in stepping}, reverse=True)
    sizes = sorted({r["num_envs"] for r in stepping})
    width = 0.8 / (len(programs) + 1)
    for i, prog in enumerate(programs):
        rates = {r["num_envs"]: r["steps_per_s"] for r in stepping if r["program"] == prog}
        ax1.bar([j + i * width for j in range(len(sizes))], [rates[s] for s in sizes], width,
                label=prog)
    train = {t["num_envs"]: t["steps_per_s"] for t in training}
    ax1.bar([j + len(programs) * width for j in range(len(sizes))],
            [train.get(s, 0) for s in sizes], width, label="purea2c.train")
    ax1.set_xticks([j + width for j in range(len(sizes))], [str(s) for s in sizes])
    ax1.set_yscale("log")
    lowest = min([r["steps_per_s"] for r in stepping] + [t["steps_per_s"] for t in training])
    ax1.set_ylim(bottom=lowest / 3)
    ax1.set_xlabel("num_envs")
    ax1.set_ylabel("env steps / s")
    ax1.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=3)
    ax1.set_title("stepping rate")
    names = [g["shape"] for g in gemms] + [f"train {t['config']}" for t in training]
    rates = [g["flop_per_s"] for g in gemms] + [t["achieved_flop_per_s"] for t in training]
    ax2.barh(range(len(names)), rates, color=["C0"] * len(gemms) + ["C3"] * len(training))
    ax2.set_yticks(range(len(names)), names, fontsize=7)
    ax2.set_xscale("log")
    ax2.set_xlim(left=min(rates) / 3)
    ax2.xaxis.set_minor_formatter(plt.NullFormatter())
    ax2.set_xlabel("FLOP / s")
    ax2.set_title("matmul rate vs training's analytic rate")
    fig.suptitle(f"purea2c ceiling ({label})")
    fig.tight_layout()
    path = common.plot_path(NAME, label, "bars")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    raise SystemExit(main())
