"""coax side of benchmarks/peers.py (runs in the coax venv: coax 0.1.13, jax 0.4.30).

speed: the schedule of coax's A2C stub, which ``purea2c.Config.coax_a2c()`` reproduces: one
       env, NStep(n=5, gamma=0.9), SimpleReplayBuffer(256); when full, 4 * 256 // 32 updates
       of batch 32 (SimpleTD with its default huber loss, Adam 2e-3; VanillaPG, Adam 1e-3),
       then clear; shared 64-64 tanh torso synced with ``coax.utils.sync_shared_params``.
solve: the settings of coax's CartPole A2C example: 3 x Linear(8) relu torsos, zero-init
       heads, NStep(n=1, gamma=0.9), mse TD loss, ``optax.apply_every(k=32)`` before Adam
       (2e-3 for v, 1e-3 for pi), one update per env step, the truncation reward 1/(1-gamma),
       TrainMonitor wrapper; run on CartPole-v1.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import warnings  # noqa: E402

warnings.filterwarnings("ignore")

import coax  # noqa: E402
import gymnasium  # noqa: E402
import haiku as hk  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from coax.value_losses import mse  # noqa: E402

import _worker_util as util  # noqa: E402

VERSIONS = ["coax", "jax", "jaxlib", "dm-haiku", "optax", "chex", "gymnasium", "numpy"]
ENV = "CartPole-v1"


def make_env(seed: int):
    """CartPole-v1 seeded once (TrainMonitor.reset takes no seed), in coax's TrainMonitor."""
    env = gymnasium.make(ENV)
    env.reset(seed=seed)
    return coax.wrappers.TrainMonitor(env)


class Runner:
    """An env, its current observation and a step counter, carried across chunks."""

    def __init__(self, env):
        self.env = env
        self.s, _ = env.reset()
        self.steps = 0


# ------------------------------------------------------------------------------------------
# speed: the A2C stub's schedule
# ------------------------------------------------------------------------------------------


def stub_agent(env, seed: int, hidden: int):
    def torso(S, is_training):
        with hk.name_scope("torso"):
            return hk.Sequential([hk.Linear(hidden), jnp.tanh, hk.Linear(hidden), jnp.tanh])(S)

    def func_v(S, is_training):
        with hk.name_scope("v"):
            return hk.Sequential([hk.Linear(1), jnp.ravel])(torso(S, is_training))

    def func_pi(S, is_training):
        with hk.name_scope("pi"):
            return {"logits": hk.Linear(env.action_space.n)(torso(S, is_training))}

    v = coax.V(func_v, env, random_seed=seed)
    pi = coax.Policy(func_pi, env, random_seed=seed)
    return {
        "v": v,
        "pi": pi,
        "vanilla_pg": coax.policy_objectives.VanillaPG(pi, optimizer=optax.adam(0.001)),
        "simple_td": coax.td_learning.SimpleTD(v, optimizer=optax.adam(0.002)),
        "tracer": coax.reward_tracing.NStep(n=5, gamma=0.9),
        "buffer": coax.experience_replay.SimpleReplayBuffer(capacity=256, random_seed=seed),
    }


def stub_steps(agent, runner: Runner, num_steps: int) -> None:
    pi, v, tracer, buffer = agent["pi"], agent["v"], agent["tracer"], agent["buffer"]
    env = runner.env
    for _ in range(num_steps):
        a, logp = pi(runner.s, return_logp=True)
        s_next, r, done, truncated, _ = env.step(a)
        tracer.add(runner.s, a, r, done or truncated, logp)
        while tracer:
            buffer.add(tracer.pop())
        pi.params, v.params = coax.utils.sync_shared_params(pi.params, v.params)
        if len(buffer) == buffer.capacity:
            for _ in range(4 * buffer.capacity // 32):
                batch = buffer.sample(batch_size=32)
                metrics_v, td_error = agent["simple_td"].update(batch, return_td_error=True)
                metrics_pi = agent["vanilla_pg"].update(batch, td_error)
                env.record_metrics(metrics_v)
                env.record_metrics(metrics_pi)
            buffer.clear()
        runner.steps += 1
        runner.s = env.reset()[0] if (done or truncated) else s_next


def speed(p: dict) -> dict:
    seed = p.get("seed", 0)
    start = time.perf_counter()
    env = make_env(seed)
    agent = stub_agent(env, seed, p.get("hidden", 64))
    runner = Runner(env)
    setup_s = time.perf_counter() - start
    start = time.perf_counter()
    stub_steps(agent, runner, p.get("warmup_steps", 768))  # compiles the update functions
    warmup_s = time.perf_counter() - start
    probe = 512
    start = time.perf_counter()
    stub_steps(agent, runner, probe)
    rate = probe / (time.perf_counter() - start)
    timed = util.steps_for(rate, p.get("target_s", 3.0), 256, 512)
    runs = []
    for _ in range(p.get("repeats", 1)):
        start = time.perf_counter()
        stub_steps(agent, runner, timed)
        runs.append(timed / (time.perf_counter() - start))
    runs.sort()
    return {"steps_per_s": runs[len(runs) // 2], "steps_per_s_all": runs, "setup_s": setup_s,
            "warmup_s": warmup_s, "timed_steps": timed,
            "schedule": {"num_envs": 1, "n_step": 5, "gamma": 0.9, "buffer_capacity": 256,
                         "updates_when_full": 4 * 256 // 32, "batch_size": 32,
                         "clear_buffer": True, "shared_torso": "sync",
                         "hidden_sizes": [p.get("hidden", 64)] * 2, "train_monitor": True}}


# ------------------------------------------------------------------------------------------
# solve: the CartPole A2C example
# ------------------------------------------------------------------------------------------


def example_agent(env, seed: int):
    def func_pi(S, is_training):
        logits = hk.Sequential((
            hk.Linear(8), jax.nn.relu,
            hk.Linear(8), jax.nn.relu,
            hk.Linear(8), jax.nn.relu,
            hk.Linear(env.action_space.n, w_init=jnp.zeros),
        ))
        return {"logits": logits(S)}

    def func_v(S, is_training):
        value = hk.Sequential((
            hk.Linear(8), jax.nn.relu,
            hk.Linear(8), jax.nn.relu,
            hk.Linear(8), jax.nn.relu,
            hk.Linear(1, w_init=jnp.zeros), jnp.ravel,
        ))
        return value(S)

    v = coax.V(func_v, env, random_seed=seed)
    pi = coax.Policy(func_pi, env, random_seed=seed)
    optimizer_v = optax.chain(optax.apply_every(k=32), optax.adam(0.002))
    optimizer_pi = optax.chain(optax.apply_every(k=32), optax.adam(0.001))
    return {
        "v": v,
        "pi": pi,
        "tracer": coax.reward_tracing.NStep(n=1, gamma=0.9),
        "vanilla_pg": coax.policy_objectives.VanillaPG(pi, optimizer=optimizer_pi),
        "simple_td": coax.td_learning.SimpleTD(v, loss_function=mse, optimizer=optimizer_v),
    }


def example_steps(agent, runner: Runner, num_steps: int) -> None:
    pi, tracer, env = agent["pi"], agent["tracer"], runner.env
    for _ in range(num_steps):
        a = pi(runner.s)
        s_next, r, done, truncated, _ = env.step(a)
        if truncated:
            r = 1 / (1 - tracer.gamma)  # the example's asymptotic return at truncation
        tracer.add(runner.s, a, r, done or truncated)
        while tracer:
            batch = tracer.pop()
            metrics_v, td_error = agent["simple_td"].update(batch, return_td_error=True)
            metrics_pi = agent["vanilla_pg"].update(batch, td_error)
            env.record_metrics(metrics_v)
            env.record_metrics(metrics_pi)
        runner.steps += 1
        runner.s = env.reset()[0] if (done or truncated) else s_next


def greedy_returns(pi, num_episodes: int, threshold: float, seed: int) -> list[float]:
    """Greedy (``pi.mode``) returns; stops early once the mean can no longer reach
    ``threshold`` (the rest would have to beat the 500 cap)."""
    env = gymnasium.make(ENV)
    returns: list[float] = []
    for ep in range(num_episodes):
        s, _ = env.reset(seed=seed + ep)
        total, done = 0.0, False
        while not done:
            s, r, terminated, truncated, _ = env.step(pi.mode(s))
            total += r
            done = terminated or truncated
        returns.append(total)
        if not util.evaluation_can_pass(returns, num_episodes, threshold, 500.0):
            break
    return returns


def solve(p: dict) -> dict:
    seed = p["seed"]

    def make():
        env = make_env(seed)
        return example_agent(env, seed), Runner(env)

    def train_chunk(state):
        agent, runner = state
        example_steps(agent, runner, p["eval_every"])
        return state

    def evaluate(state):
        return greedy_returns(state[0]["pi"], p["eval_episodes"], p["threshold"],
                              10_000 + 1000 * seed + state[1].steps)

    out = util.solve_loop(make, train_chunk, lambda s: s[1].steps, evaluate, p)
    out["hyperparameters"] = {"source": "coax doc/examples/cartpole/a2c.py", "n_step": 1,
                              "gamma": 0.9, "hidden": [8, 8, 8], "apply_every": 32,
                              "v_lr": 0.002, "pi_lr": 0.001, "value_loss": "mse"}
    return out


def main() -> None:
    p = util.params()
    out = speed(p) if p["mode"] == "speed" else solve(p)
    out["versions"] = util.versions(VERSIONS)
    util.emit(out)


if __name__ == "__main__":
    main()
