"""Where the training program spends its time: time variants that drop one stage at a time.

    python benchmarks/profile_stages.py

Each variant is the real `train` program with later stages replaced by identities (patched
before tracing), at the default schedule and at Stable-Baselines3's A2C schedule
(8 envs x 5 steps, one update of 40). Prints steps/s per variant; the differences between
consecutive rows are the cost of each stage.
"""

from __future__ import annotations

import contextlib
import time

import jax
import jax.numpy as jnp

import purea2c
from purea2c import replay, tracing

# The package re-exports the function `train`, which shadows the module of the same name.
from purea2c import training as train_mod


@contextlib.contextmanager
def patched(module, name, fn):
    old = getattr(module, name)
    setattr(module, name, fn)
    try:
        yield
    finally:
        setattr(module, name, old)


def no_update(s, config, buffer, carry, key):
    z = jnp.zeros(())
    return carry, train_mod._UpdateMetrics(z, z, z, z, z, z, z)


def no_add(state, batch, mask=None):
    return state


def no_trace(state, obs, action, log_prob, reward, terminated, truncated, final_obs,
             next_obs, gamma):
    t = tracing.Transition(obs, action, log_prob, reward, reward, next_obs)
    return state, t, jnp.ones((), bool)


def steps_per_second(config: purea2c.Config, repeats: int = 5) -> tuple[float, float]:
    fn = jax.jit(lambda k, c: train_mod._train(k, c),  # a fresh cache for each variant
                 compiler_options=purea2c.compiler_options())
    key = jax.random.key(0)
    t0 = time.perf_counter()
    compiled = fn.lower(key, config).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(key, config))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(key, config))
        times.append(time.perf_counter() - t0)
    steps = config.num_iterations * config.steps_per_iteration
    return steps / sorted(times)[len(times) // 2], compile_s


def main() -> None:
    configs = {
        "default (16 envs x 16, 1x256)": purea2c.Config(total_timesteps=98_304),
        "SB3 A2C (8 envs x 5, 1x40)": purea2c.Config(
            num_envs=8, rollout_length=5, n_step=5, buffer_capacity=40, batch_size=40,
            total_timesteps=40 * 2000),
    }
    variants = [
        ("full program", []),
        ("- updates", [(train_mod, "_update", no_update)]),
        ("- updates, buffer add", [(train_mod, "_update", no_update),
                                   (replay, "add", no_add)]),
        ("- updates, buffer, tracer (env + policy)", [
            (train_mod, "_update", no_update), (replay, "add", no_add),
            (tracing, "step", no_trace)]),
    ]
    print(f"jax {jax.__version__}, backend {jax.default_backend()}")
    print("| schedule | variant | env steps/s | us per env step (all envs) | compile s |")
    print("|---|---|---|---|---|")
    for cname, config in configs.items():
        for vname, patches in variants:
            with contextlib.ExitStack() as stack:
                for module, name, fn in patches:
                    stack.enter_context(patched(module, name, fn))
                sps, compile_s = steps_per_second(config)
            us = 1e6 * config.num_envs / sps
            print(f"| {cname} | {vname} | {sps:,.0f} | {us:.1f} | {compile_s:.1f} |", flush=True)


if __name__ == "__main__":
    main()
