"""`init`, `run` and `train`: the whole A2C run as one XLA program.

    train = run(init(key, config), config, config.num_iterations)

Each builds the config's `Agent` (``purea2c.agent``: env, networks, optimizers, variants)
when called and runs its pure method; what one iteration does is in `purea2c.stages`.
Everything is a pure function of ``(key, config)``; static config fields fix the program,
traced ones are its inputs, so ``jax.vmap`` over keys or hyperparameters needs no edits.

Called with concrete arguments, each is jitted with the XLA options of the backend in use
at that call (`compiler_options`: chosen then, not at import, which would fix JAX's
platform too early), one compilation per static configuration whatever scalar types the
traced hyperparameters come as (`Config.canonical`). Called inside a caller's ``jit``,
``vmap`` or ``grad`` (tracers), each is the plain function, inlined into the caller's
program. `program` gives the jitted function itself (``.lower``, ``.trace``).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp

from purea2c.agent import Agent
from purea2c.config import Config
from purea2c.stages import all_finite, optimizer_step  # noqa: F401  (re-exported)
from purea2c.state import (Metrics, OptStates, Params, TrainResult,  # noqa: F401
                           TrainState)

# XLA options per backend. On CPU, LLVM optimises XLA's generated kernels at -O1 instead of
# -O2: the default program compiled in 4.6 s instead of 5.9 s in fresh processes, and ran
# at the same speed within the noise of this machine, because its heavy work is in library
# matmuls (benchmarks/compile_time.py, NOTES.md). Other backends keep XLA's defaults.
COMPILER_OPTIONS: dict[str, dict[str, Any]] = {"cpu": {"xla_backend_optimization_level": 1}}


def compiler_options() -> dict[str, Any] | None:
    """The XLA options purea2c compiles with on the default backend (``None``: XLA's own)."""
    return COMPILER_OPTIONS.get(jax.default_backend())


def strip_weak_types(tree: Any) -> Any:
    """Same values, no weak types: a restored state and a fresh one (``init`` leaves a
    weak-typed leaf, ``run`` does not) then have equal avals, so one program serves both.
    Typed PRNG keys pass unchanged. Works on host arrays and inside a program."""
    return jax.tree.map(lambda x: x if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
                        else jnp.array(x, dtype=x.dtype), tree)


def _init(key: jax.Array, config: Config) -> TrainState:
    return Agent(config).init(key)


def _run(state: TrainState, config: Config, num_iterations: int) -> tuple[TrainState, Metrics]:
    return Agent(config).run(state, num_iterations)


def _train(key: jax.Array, config: Config) -> TrainResult:
    return Agent(config).train(key)


_FUNCTIONS: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    "init": (_init, {}), "run": (_run, {"static_argnums": 2}), "train": (_train, {})}


@functools.cache
def _jitted(name: str, backend: str) -> Any:
    del backend  # the cache key: compiler_options() depends on the default backend
    fn, kwargs = _FUNCTIONS[name]
    return jax.jit(fn, compiler_options=compiler_options(), **kwargs)


def program(name: str) -> Any:
    """The jitted ``"init"``, ``"run"`` or ``"train"`` with the compiler options of the
    backend in use now (the function `init`, `run` or `train` calls)."""
    return _jitted(name, jax.default_backend())


def _call(name: str, *args: Any) -> Any:
    if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(args)):
        return _FUNCTIONS[name][0](*args)  # inside the caller's program
    args = tuple(a.canonical() if isinstance(a, Config) else a for a in args)
    return program(name)(*args)


def init(key: jax.Array, config: Config) -> TrainState:
    """A fresh `TrainState`: initial parameters, optimizer states, reset envs, empty tracer
    and buffer. ``key`` is a typed or raw PRNG key; ``config`` a `Config`."""
    return _call("init", key, config)


def run(state: TrainState, config: Config, num_iterations: int) -> tuple[TrainState, Metrics]:
    """Continues a run by ``num_iterations`` (static) iterations; returns the new state and
    the per-iteration metrics ``[num_iterations]``. ``init`` then several ``run`` calls give
    the same result as one ``train`` call of the same total length."""
    return _call("run", state, config, num_iterations)


def train(key: jax.Array, config: Config) -> TrainResult:
    """Trains for ``config.num_iterations`` iterations from ``key``; pure and deterministic.

    Works plainly, under ``jax.jit``, and under ``jax.vmap`` over keys or over traced
    hyperparameters of ``config``. Returns `TrainResult` (final state, metrics
    ``[num_iterations]``).
    """
    return _call("train", key, config)
