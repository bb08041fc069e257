"""rejax side of benchmarks/peers.py (runs in the rejax venv: rejax 0.1.3, gymnax 0.0.9).

speed: rejax PPO at SB3 A2C's schedule (8 envs x 5 steps, 1 epoch, 1 minibatch), tanh
       64-64, evaluation callback off; the whole ``train`` program jitted, compile time apart,
       steady state the median of several calls. With ``"minatar": true``, rejax PPO on
       Breakout-MinAtar with purea2c's MinAtar network in place of rejax's MLP (one 16-channel
       3x3 'SAME' convolution, relu, a 128-unit layer; flax's ``nn.Conv``) at purea2c's
       MinAtar schedule (64 envs x 16 steps, 2 epochs of 4 minibatches of 256), ``seeds``
       trainings vmapped in one program. Peak host RSS of the process is reported.
ops:   the op and fusion counts of the speed program (benchmarks/program_ops.py).
solve: rejax's own CartPole PPO config (configs/gymnax/cartpole.yaml in the rejax repository),
       trained in chunks by passing the train state back to ``train``; evaluation callback off
       during training, greedy evaluation between chunks.
"""

from __future__ import annotations

import functools
import math
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gymnax  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax import linen as nn  # noqa: E402
from rejax import PPO  # noqa: E402
from rejax.networks import DiscretePolicy  # noqa: E402

import _worker_util as util  # noqa: E402

VERSIONS = ["rejax", "jax", "jaxlib", "flax", "optax", "gymnax", "distrax", "numpy"]
ENV = "CartPole-v1"

# rejax configs/gymnax/cartpole.yaml, section ppo.
CARTPOLE_PPO = {
    "env": ENV, "agent_kwargs": {"activation": "tanh"}, "num_envs": 5, "num_steps": 100,
    "num_epochs": 5, "num_minibatches": 5, "learning_rate": 0.00075, "max_grad_norm": 0.5,
    "gamma": 0.99, "gae_lambda": 0.95, "clip_eps": 0.2, "ent_coef": 0.01, "vf_coef": 0.5,
}


def _no_eval(algo, ts, rng):
    return jnp.zeros(())


def make_algo(config: dict, total_timesteps: int, cls=PPO):
    algo = cls.create(**config, total_timesteps=total_timesteps, eval_freq=total_timesteps,
                      skip_initial_evaluation=True)
    return algo.replace(eval_callback=_no_eval)


# MinAtar's network, as purea2c's MinAtar presets use it, in rejax's module layout: the
# features module replaces rejax's MLP (which flattens its input first).
class ConvFeatures(nn.Module):
    hidden_layer_sizes: tuple
    activation: object

    @nn.compact
    def __call__(self, x):
        x = self.activation(nn.Conv(16, (3, 3), padding="SAME")(x.astype(jnp.float32)))
        x = x.reshape((x.shape[0], -1))
        for size in self.hidden_layer_sizes:
            x = self.activation(nn.Dense(size)(x))
        return x


class ConvPolicy(DiscretePolicy):
    def setup(self):
        self.features = ConvFeatures(self.hidden_layer_sizes, self.activation)
        self.action_logits = nn.Dense(self.action_dim)


class ConvValue(ConvFeatures):
    @nn.compact
    def __call__(self, obs):
        return nn.Dense(1)(super().__call__(obs)).squeeze(1)


class ConvPPO(PPO):
    @classmethod
    def create_agent(cls, config, env, env_params):
        config.pop("agent_kwargs", None)
        kwargs = {"hidden_layer_sizes": (128,), "activation": nn.relu}
        return {"actor": ConvPolicy(env.action_space(env_params).n, **kwargs),
                "critic": ConvValue(**kwargs)}


# purea2c's MinAtar preset schedule: 64 envs x 16 steps per iteration, 2 passes over the 1,024
# transitions in minibatches of 256 (8 updates per iteration).
MINATAR_SPEED = {"env": "Breakout-MinAtar", "num_envs": 64, "num_steps": 16, "num_epochs": 2,
                 "num_minibatches": 4}


def speed(p: dict) -> dict:
    minatar = p.get("minatar", False)
    if minatar:
        config, cls = dict(MINATAR_SPEED), ConvPPO
    else:
        config, cls = {"env": ENV, "agent_kwargs": {"activation": "tanh"},
                       "num_envs": p.get("num_envs", 8), "num_steps": p.get("num_steps", 5),
                       "num_epochs": 1, "num_minibatches": 1}, PPO
    per_iter = config["num_envs"] * config["num_steps"]
    seeds = p.get("seeds")
    agents = seeds or 1
    key = (jax.random.split(jax.random.PRNGKey(p.get("seed", 0)), seeds) if seeds
           else jax.random.PRNGKey(p.get("seed", 0)))

    def compiled_train(total):
        algo = make_algo(dict(config), total, cls)
        train = jax.vmap(algo.train) if seeds else algo.train
        start = time.perf_counter()
        compiled = jax.jit(train).lower(key).compile()
        return compiled, time.perf_counter() - start

    def run(compiled):
        start = time.perf_counter()
        jax.block_until_ready(compiled(key))
        return time.perf_counter() - start

    probe_steps = per_iter * max(2, math.ceil(512 * 40 / (per_iter * agents)))
    probe, _ = compiled_train(probe_steps)
    run(probe)
    rate = probe_steps / run(probe)
    timed = util.steps_for(rate, p.get("target_s", 3.0), per_iter, probe_steps)
    compiled, compile_s = compiled_train(timed)
    first_s = run(compiled)
    times = sorted(run(compiled) for _ in range(p.get("repeats", 3)))
    run_s = times[len(times) // 2]
    return {"steps_per_s": agents * timed / run_s, "per_agent_steps_per_s": timed / run_s,
            "seeds": agents, "compile_s": compile_s, "run_s": run_s,
            "run_s_all": times, "first_call_s": first_s, "timed_steps": timed,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "schedule": config | {"eval": "off"}
            | ({"network": "conv 16 3x3 SAME, relu, dense 128 (flax nn.Conv)"} if minatar
               else {})}


def ops(p: dict) -> dict:
    """The op and fusion counts of the `speed` program (benchmarks/program_ops.py)."""
    config = {"env": ENV, "agent_kwargs": {"activation": "tanh"}, "num_envs": p.get("num_envs", 8),
              "num_steps": p.get("num_steps", 5), "num_epochs": 1, "num_minibatches": 1}
    algo = make_algo(config, p.get("total_timesteps", 10_000))
    start = time.perf_counter()
    lowered = jax.jit(algo.train).lower(jax.random.PRNGKey(0))
    lower_s = time.perf_counter() - start
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start - lower_s
    return {**util.program_counts(lowered.as_text(), compiled.as_text()),
            "lower_s": lower_s, "compile_s": compile_s, "schedule": config}


def make_evaluator(algo, env, env_params, num_episodes: int, act=None):
    """``evaluate(params, key, greedy)`` -> returns ``[num_episodes]``: fresh episodes played
    in parallel for ``max_steps_in_episode`` (else ``max_timesteps``) steps, each counted until
    it first ends. ``act(params, obs, key, greedy)`` gives the actions; by default greedy is
    the argmax of the logits of ``params`` (the actor's), else a sample. Also
    rejax_learning_worker.py's evaluation."""
    max_steps = int(getattr(env_params, "max_steps_in_episode", None)
                    or env_params.max_timesteps)

    def logits_act(params, obs, key, greedy):
        lg = algo.actor.apply(params, obs, method=lambda m, o: m._action_dist(o).logits)
        return jnp.argmax(lg, axis=-1) if greedy else jax.random.categorical(key, lg, axis=-1)

    act = logits_act if act is None else act

    def evaluate(params, key, greedy: bool):
        key, key_reset = jax.random.split(key)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(key_reset, num_episodes), env_params)

        def body(carry, _):
            obs, state, key, alive, total = carry
            key, key_act, key_step = jax.random.split(key, 3)
            action = act(params, obs, key_act, greedy)
            obs, state, reward, done, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(key_step, num_episodes), state, action, env_params)
            total = total + jnp.where(alive, reward, 0.0)
            return (obs, state, key, alive & ~done, total), None

        carry = (obs, state, key, jnp.ones(num_episodes, bool), jnp.zeros(num_episodes))
        (_, _, _, _, total), _ = jax.lax.scan(body, carry, None, length=max_steps)
        return total

    return evaluate


def solve(p: dict) -> dict:
    per_iter = CARTPOLE_PPO["num_envs"] * CARTPOLE_PPO["num_steps"]
    chunk = math.ceil(p["eval_every"] / per_iter) * per_iter
    key = jax.random.PRNGKey(p["seed"])
    algo = make_algo(CARTPOLE_PPO, chunk)
    env, env_params = gymnax.make(ENV)
    evaluate = jax.jit(functools.partial(
        make_evaluator(algo, env, env_params, p["eval_episodes"]), greedy=True))
    key_eval = jax.random.PRNGKey(10_000 + p["seed"])

    def make():
        init = jax.jit(algo.init_state)
        train = jax.jit(lambda ts: algo.train(train_state=ts)[0])
        return train, jax.block_until_ready(init(key))

    def train_chunk(state):
        train, ts = state
        return train, jax.block_until_ready(train(ts))

    def evaluate_state(state):
        ts = state[1]
        returns = evaluate(ts.actor_ts.params, jax.random.fold_in(key_eval, int(ts.global_step)))
        return [float(r) for r in returns]

    out = util.solve_loop(make, train_chunk, lambda s: int(s[1].global_step), evaluate_state, p)
    out["hyperparameters"] = CARTPOLE_PPO | {"source": "rejax configs/gymnax/cartpole.yaml"}
    out["eval_every_actual"] = chunk
    return out


def main() -> None:
    p = util.params()
    out = {"speed": speed, "solve": solve, "ops": ops}[p["mode"]](p)
    out["versions"] = util.versions(VERSIONS)
    out["devices"] = [str(d) for d in jax.devices()]
    util.emit(out)


if __name__ == "__main__":
    main()
