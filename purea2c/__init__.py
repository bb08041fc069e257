"""purea2c: advantage actor-critic (coax-style A2C) as one pure-JAX XLA program.

    import jax, purea2c
    out = purea2c.train(jax.random.key(0), purea2c.Config())
    returns = purea2c.evaluate(jax.random.key(1), purea2c.Config(), out.state.params)
    policy = purea2c.make_policy(purea2c.Config(), out.state.params)   # obs -> action

    purea2c.save_checkpoint("ckpt", out.state, step=int(out.state.iteration))
    like = jax.eval_shape(purea2c.init, jax.random.key(0), purea2c.Config())
    state = purea2c.restore_checkpoint("ckpt", like)

    env = purea2c.envs.make("brax/inverted_pendulum")   # any suite: "suite/name"
    out = purea2c.train(jax.random.key(0), purea2c.Config.preset("navix/Navix-Empty-5x5-v0"))

Modules (README.md, "Layout", has the whole map): `purea2c.envs` (the environment seam:
protocol, ids, one adapter per suite, auto-reset), `purea2c.agent` (`Agent`: the env,
networks, optimizers and variants a Config describes, with pure init / run / train),
`purea2c.stages` (one iteration), `purea2c.training` (init / run / train, jitted),
`purea2c.evaluation`, `purea2c.presets`, `purea2c.sharding` (seeds over devices and hosts);
the command line (``purea2c train | evaluate | render | envs``) starts in `purea2c.cli`.
"""

from purea2c import envs, sharding
from purea2c.agent import Agent
from purea2c.checkpoint import CheckpointError
from purea2c.checkpoint import latest_step as latest_checkpoint_step
from purea2c.checkpoint import restore as restore_checkpoint
from purea2c.checkpoint import save as save_checkpoint
from purea2c.compile_cache import enable_compile_cache, use_default_compile_cache
from purea2c.config import Config
from purea2c.evaluation import evaluate, make_policy
from purea2c.run_loop import Divergence, divergence
from purea2c.training import (Metrics, OptStates, Params, TrainResult, TrainState,
                              compiler_options, init, run, train)

__all__ = [
    "Agent",
    "CheckpointError",
    "Config",
    "Divergence",
    "Metrics",
    "OptStates",
    "Params",
    "TrainResult",
    "TrainState",
    "compiler_options",
    "divergence",
    "enable_compile_cache",
    "envs",
    "evaluate",
    "init",
    "latest_checkpoint_step",
    "make_policy",
    "restore_checkpoint",
    "run",
    "save_checkpoint",
    "sharding",
    "train",
]
__version__ = "0.1.0"

# JAX's persistent compilation cache, on unless $PUREA2C_COMPILE_CACHE=0 or the user chose a
# folder (purea2c.compile_cache); `enable_compile_cache(False)` turns it off.
use_default_compile_cache()
