"""purea2c: advantage actor-critic (coax-style A2C) as one pure-JAX XLA program.

    import jax, purea2c
    out = purea2c.train(jax.random.key(0), purea2c.Config())
    returns = purea2c.evaluate(jax.random.key(1), purea2c.Config(), out.state.params)
"""

from purea2c.config import Config
from purea2c.evaluate import evaluate
from purea2c.train import Metrics, Params, TrainResult, TrainState, init, run, train

__all__ = [
    "Config",
    "Metrics",
    "Params",
    "TrainResult",
    "TrainState",
    "evaluate",
    "init",
    "run",
    "train",
]
__version__ = "0.1.0"
