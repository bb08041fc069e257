"""purea2c side of benchmarks/peers.py (runs in purea2c's own environment).

speed: ``{"mode": "speed", "config": {...Config fields...} or "preset": "coax_a2c" (or a
          ``Config.preset`` name), "seeds": N (optional: N trainings vmapped in one
          program; steps_per_s is then their aggregate), "target_s": 3, "repeats": 3}``;
          the process's peak host RSS is reported.
solve: ``{"mode": "solve", "seed": 0, "eval_every": 10000, ...}`` at ``Config()``; JAX's
       persistent compilation cache is purea2c's default one, in $PUREA2C_CACHE_DIR (peers.py
       gives each cold process an empty folder and the warm ones a filled one).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402

import _worker_util as util  # noqa: E402
import purea2c  # noqa: E402
from benchmarks import common  # noqa: E402

VERSIONS = ["purea2c", "jax", "jaxlib", "flax", "optax", "gymnax", "numpy"]


def make_config(p: dict) -> purea2c.Config:
    fields = dict(p.get("config", {}))
    if p.get("preset") == "coax_a2c":
        return purea2c.Config.coax_a2c(**fields)
    if p.get("preset"):
        return purea2c.Config.preset(p["preset"], **fields)
    if "hidden_sizes" in fields:
        fields["hidden_sizes"] = tuple(fields["hidden_sizes"])
    return purea2c.Config(**fields)


def speed(p: dict) -> dict:
    config = make_config(p)
    res = common.measure_training(config, p.get("seeds"), p.get("target_s", 3.0),
                                  p.get("repeats", 3))
    return {"steps_per_s": res["aggregate_steps_per_s"],
            "per_agent_steps_per_s": res["per_agent_steps_per_s"], "seeds": res["num_seeds"],
            "compile_s": res["compile_s"], "run_s": res["run_s"],
            "timed_steps": res["total_timesteps"],
            "peak_rss_mib": common.peak_memory()["peak_host_rss_mib"],
            "config": common.config_record(config)}


def solve(p: dict) -> dict:
    config = make_config(p)
    chunk = max(1, math.ceil(p["eval_every"] / config.steps_per_iteration))
    key_train, key_eval = jax.random.split(jax.random.key(p["seed"]))

    def make():
        return jax.block_until_ready(purea2c.init(key_train, config))

    def train_chunk(state):
        state, _ = purea2c.run(state, config, chunk)
        return jax.block_until_ready(state)

    def evaluate(state):
        key = jax.random.fold_in(key_eval, int(state.iteration))
        returns = purea2c.evaluate(key, config, state.params, num_episodes=p["eval_episodes"],
                                   greedy=True)
        return np.asarray(returns).tolist()

    out = util.solve_loop(make, train_chunk, lambda s: int(s.env_steps), evaluate, p)
    out["config"] = common.config_record(config)
    out["eval_every_actual"] = chunk * config.steps_per_iteration
    return out


def main() -> None:
    p = util.params()
    out = speed(p) if p["mode"] == "speed" else solve(p)
    out["versions"] = util.versions(VERSIONS) | {"purea2c": purea2c.__version__}
    out["devices"] = [str(d) for d in jax.devices()]
    util.emit(out)


if __name__ == "__main__":
    main()
