"""A training run in chunks of one compiled program, reporting through callbacks.

``jit(vmap(agent.init))`` once, then ``jit(vmap(agent.run, num_iterations=chunk))`` compiled
once and called for every chunk (`purea2c.agent.Agent`). Each chunk is a whole XLA program (no host round-trip inside);
between chunks its metrics come back to the host and go to the callbacks, brax
``progress_fn`` style::

    program = ChunkProgram(state, config)
    end = run_in_chunks(state, config, program, config.num_iterations, chunk=10,
                        callbacks=[lambda it, m: print(it, m["episode_return"].mean())])

The loop knows nothing of files: the command line's metrics log, TensorBoard, progress bar
and checkpoints are callbacks. A resumed run calls the same chunk program on the restored
state, so it finishes bitwise equal to an uninterrupted run. A run spread over several
devices or processes has `mesh_run.MeshRun` as its program, with the same interface.

Divergence is decided on the host, between chunks, from two of the metrics: ``finite``
(False once a parameter or optimizer state is NaN or inf) and ``skipped_updates`` (the
updates of the iteration that were skipped as non-finite, out of
``config.updates_per_iteration``, when ``config.skip_nonfinite``). `divergence` is the
check: a chunk diverged when an iteration of it is not finite, or when a seed skipped more
than ``config.max_skipped_share`` of its updates in it. The program itself never stops or
raises; `purea2c.train` returns the metrics, and ``divergence(result.metrics, config,
chunk=...)`` applies the command line's check to them.
"""

from __future__ import annotations

import concurrent.futures
import functools
import signal
import sys
import threading
from typing import Any, Callable, Iterable, NamedTuple

import jax
import numpy as np

from purea2c import sharding
from purea2c.agent import Agent
from purea2c.config import Config
# The chunk loop's callers strip a restored or fresh state through this module.
from purea2c.training import compiler_options, strip_weak_types  # noqa: F401

# ``(iteration after the chunk, {metric: [seeds, chunk iterations]})``
MetricsCallback = Callable[[int, dict[str, np.ndarray]], None]
# ``(iteration, state)`` after a chunk whose iterations all ended finite
StateCallback = Callable[[int, Any], None]


def _vmapped_init(keys: jax.Array, config: Config) -> Any:
    agent = Agent(config)
    return jax.vmap(agent.init)(keys)


def _vmapped_run(state: Any, config: Config, num_iterations: int) -> Any:
    agent = Agent(config)
    return jax.vmap(lambda one: agent.run(one, num_iterations))(state)


@functools.cache
def _programs(backend: str) -> tuple[Any, Any]:
    """The jitted vmapped init and run, with purea2c's compiler options for ``backend`` (the
    init on CPU in less than half the time of XLA's defaults)."""
    del backend  # the cache key: compiler_options() depends on the default backend
    return (jax.jit(_vmapped_init, compiler_options=compiler_options()),
            jax.jit(_vmapped_run, static_argnums=2))


def vmapped_init(keys: jax.Array, config: Config) -> Any:
    """The fresh states of a vmapped run: one per key (seeds on the leading axis), one
    config for all."""
    return _programs(jax.default_backend())[0](keys, config.canonical())


def vmapped_init_shapes(keys: jax.Array, config: Config) -> Any:
    """The shapes and dtypes of ``vmapped_init(keys, config)``, traced, not run (the trace
    is the one the call then reuses)."""
    return _programs(jax.default_backend())[0].trace(keys, config.canonical()).out_info


def vmapped_run(state: Any, config: Config, num_iterations: int) -> Any:
    """``num_iterations`` more iterations of every seed of ``state``."""
    return _programs(jax.default_backend())[1](state, config.canonical(), num_iterations)


def auto_chunk_iterations(num_iterations: int, target_chunks: int = 100) -> int:
    """The largest divisor of ``num_iterations`` that gives at least ``target_chunks`` chunks
    (every chunk then has the same length, so one compiled program serves them all)."""
    target = max(1, num_iterations // target_chunks)
    return max(d for d in range(1, target + 1) if num_iterations % d == 0)


class ChunkProgram:
    """``program(length)``: the executable of ``vmapped_run`` for ``length`` iterations on
    states like ``state`` (arrays, or their shapes: `vmapped_init_shapes`),
    compiled (``.lower(...).compile()``) once per length.

    ``program.start(length)`` compiles on a thread instead, so that the caller can make the
    first state meanwhile (XLA compiles without holding the GIL: on 2 CPU cores the
    command line's init and its chunk program compile side by side); ``program(length)``
    then waits for it, and raises what the compilation raised."""

    def __init__(self, state: Any, config: Config):
        # shapes only: the program is lowered without holding on to the first state
        self._state = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                           sharding=getattr(x, "sharding", None)), state)
        self._config = config
        self._compiled: dict[int, Any] = {}
        self._pending: dict[int, concurrent.futures.Future] = {}

    def _compile(self, length: int) -> Any:
        run = _programs(jax.default_backend())[1]
        return run.lower(self._state, self._config, length).compile(compiler_options())

    def start(self, length: int) -> None:
        """Starts compiling the program for ``length`` on a thread (once)."""
        if length not in self._compiled and length not in self._pending:
            pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="compile")
            self._pending[length] = pool.submit(self._compile, length)
            pool.shutdown(wait=False)

    def __call__(self, length: int) -> Any:
        if length not in self._compiled:
            pending = self._pending.pop(length, None)
            self._compiled[length] = (pending.result() if pending is not None
                                      else self._compile(length))
        return self._compiled[length]

    def metric_dtypes(self, length: int) -> dict[str, np.dtype]:
        """``{metric name: dtype}`` of the program's metrics, in the order of `Metrics`."""
        info = self(length).out_info[1]
        return {name: np.dtype(getattr(info, name).dtype) for name in info._fields}


def to_host(metrics: Any) -> dict[str, np.ndarray]:
    """A chunk's metrics (a `Metrics` or a dict) as numpy arrays ``{name: [seeds, iters]}``;
    on several processes gathered from all of them (a collective, `sharding.fetch`)."""
    host = jax.device_get(sharding.fetch(metrics))
    items = host._asdict().items() if hasattr(host, "_asdict") else host.items()
    return {name: np.asarray(value) for name, value in items}


def first_nonfinite_iteration(metrics: dict[str, np.ndarray], start: int) -> int | None:
    """The first iteration (1-based over the run) of a chunk that began after iteration
    ``start`` whose ``finite`` metric is False for any seed; None if all are finite or the
    metrics have no ``finite`` field."""
    finite = metrics.get("finite")
    if finite is None:
        return None
    ok = np.asarray(finite, bool)
    ok = ok.reshape(-1, ok.shape[-1]).all(axis=0)  # [iters]: every seed finite
    bad = np.flatnonzero(~ok)
    return None if bad.size == 0 else start + int(bad[0]) + 1


# The per-iteration means of a chunk's metrics that can turn non-finite, in the order the
# first non-finite one is named; then "parameters" (new parameters or optimizer states).
NONFINITE_QUANTITIES = ("value_loss", "policy_loss", "v_grad_norm", "pi_grad_norm")
PARAMETERS = "parameters"

# The host-side flag added to every chunk's metrics: True on every row of the chunk that
# stopped the run as diverged (its state was discarded, its metrics are still logged).
DIVERGED = "diverged"


class Divergence(NamedTuple):
    """Why and where a run diverged (`divergence`)."""

    iteration: int  # 1-based over the run: the first iteration that was not finite or
    #                 skipped more than the allowed share of its updates
    seed: int  # the first seed (index) that diverged there; 0 for metrics without seeds
    quantity: str  # the first non-finite quantity of that iteration: one of
    #                NONFINITE_QUANTITIES, else "parameters"
    skipped_share: float  # the share of that seed's updates skipped in the chunk
    cause: str  # "skipped" (more than the allowed share) or "not finite" (metrics.finite)
    first: int  # the chunk's first iteration (1-based)
    last: int  # its last iteration

    def describe(self, num_iterations: int, max_skipped_share: float) -> str:
        """One line: ``diverged at iteration 6/80 (seed 0): ...``."""
        where = f"iteration {self.iteration}/{num_iterations} (seed {self.seed})"
        chunk = (f"iteration {self.first}" if self.first == self.last
                 else f"iterations {self.first}-{self.last}")
        if self.cause == "skipped":
            why = (f"{self.skipped_share:.0%} of its updates in {chunk} were skipped as "
                   f"non-finite (more than max_skipped_share {max_skipped_share:g})")
        else:
            why = "its parameters or optimizer states are not finite after it"
        return f"diverged at {where}: {why}; first non-finite quantity: {self.quantity}"


def _host_arrays(metrics: Any) -> dict[str, np.ndarray]:
    """``metrics`` (a `Metrics` or a dict, numpy or JAX) as ``{name: [seeds, iters]}``
    numpy arrays; metrics without a seed axis get one."""
    items = metrics._asdict().items() if hasattr(metrics, "_asdict") else metrics.items()
    out = {}
    for name, value in items:
        array = np.asarray(value)
        out[name] = array.reshape(-1, array.shape[-1]) if array.ndim else array.reshape(1, 1)
    return out


def _first_nonfinite_quantity(arrays: dict[str, np.ndarray], seed: int, index: int) -> str:
    for name in NONFINITE_QUANTITIES:
        if name in arrays and not np.isfinite(arrays[name][seed, index]):
            return name
    return PARAMETERS


def divergence(metrics: Any, config: Config | None, start_iteration: int = 0,
               chunk: int | None = None) -> Divergence | None:
    """The first divergence in ``metrics`` (a `Metrics` or a dict ``{name: [seeds, iters]}``
    or ``[iters]``, numpy or JAX) of the iterations after ``start_iteration``, or None.

    The metrics are taken in consecutive chunks of ``chunk`` iterations (default: all of
    them as one chunk, as `run_in_chunks` passes one chunk). A chunk diverged when any
    seed's ``finite`` flag is False in it, or when any seed skipped more than
    ``config.max_skipped_share`` of its ``config.updates_per_iteration`` updates per
    iteration in it (``skipped_updates``). The first such chunk is reported: its first
    iteration that is not finite or whose own skipped share is above the threshold (one is,
    when the chunk's share is), the first seed there, and the first non-finite quantity of
    that iteration. Metrics without ``finite`` or ``skipped_updates`` are not checked for
    that; ``config`` is read only when ``skipped_updates`` is there."""
    if not (hasattr(metrics, "_asdict") or isinstance(metrics, dict)):
        raise TypeError(f"divergence: metrics must be a Metrics or a dict of arrays "
                        f"{{name: [seeds, iterations]}}, got {type(metrics).__name__}")
    for name, value in (("chunk", chunk), ("start_iteration", start_iteration)):
        if value is not None and (isinstance(value, bool) or not isinstance(
                value, (int, np.integer)) or value < (1 if name == "chunk" else 0)):
            raise ValueError(f"divergence: {name} must be an int >= "
                             f"{1 if name == 'chunk' else 0}, got {value!r}")
    arrays = _host_arrays(metrics)
    if not arrays:
        return None
    shapes = {name: a.shape for name, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"divergence: the metrics' shapes differ: {shapes} (each must be "
                         "[seeds, iterations] or [iterations], the same for all)")
    if "skipped_updates" in arrays and not all(
            hasattr(config, name) for name in ("max_skipped_share", "updates_per_iteration")):
        raise TypeError(f"divergence: config must be the run's Config (its "
                        f"max_skipped_share and updates_per_iteration judge skipped_updates), "
                        f"got {type(config).__name__}")
    num_iters = next(iter(arrays.values())).shape[1]
    chunk = num_iters if chunk is None else chunk
    skipped = arrays.get("skipped_updates")
    finite = arrays.get("finite")
    for begin in range(0, num_iters, chunk):
        end = min(begin + chunk, num_iters)
        candidates = []  # (iteration index, seed, cause)
        if finite is not None:
            bad = ~np.asarray(finite[:, begin:end], bool)
            for seed in np.flatnonzero(bad.any(axis=1)):
                candidates.append((begin + int(np.argmax(bad[seed])), int(seed), "not finite"))
        if skipped is not None:
            limit = config.max_skipped_share * config.updates_per_iteration
            counts = np.asarray(skipped[:, begin:end], np.float64)
            over = counts.mean(axis=1) > limit
            for seed in np.flatnonzero(over):
                index = begin + int(np.argmax(counts[seed] > limit))
                candidates.append((index, int(seed), "skipped"))
        if candidates:
            index, seed, cause = min(candidates)
            share = (float(np.asarray(skipped[seed, begin:end], np.float64).sum()
                           / ((end - begin) * config.updates_per_iteration))
                     if skipped is not None else 0.0)
            return Divergence(start_iteration + index + 1, seed,
                              _first_nonfinite_quantity(arrays, seed, index), share, cause,
                              start_iteration + begin + 1, start_iteration + end)
    return None


class LoopEnd(NamedTuple):
    state: Any  # the last state whose iterations all ended finite
    iteration: int  # its iteration count
    diverged_at: int | None  # first non-finite iteration (1-based), None if none was


def run_in_chunks(state: Any, config: Config, program: Callable[[int], Any],
                  num_iterations: int, chunk: int,
                  callbacks: Iterable[MetricsCallback] = (),
                  should_stop: Callable[[], bool] = lambda: False,
                  start_iteration: int = 0,
                  state_callbacks: Iterable[StateCallback] = ()) -> LoopEnd:
    """Runs ``state`` (at ``start_iteration``) up to ``num_iterations`` in chunks of ``chunk``
    iterations (the last one shorter if ``chunk`` does not divide the rest), calling
    ``program(length)(state, config) -> (state, metrics)`` for each.

    After each chunk every callback gets ``(iteration, host metrics)``, with `DIVERGED`
    added: a bool ``[seeds, iters]`` that is True on every row of a chunk that diverged
    (`divergence`: an iteration not finite, or more than ``config.max_skipped_share`` of a
    seed's updates skipped). Then the loop stops and returns the state before that chunk
    with ``diverged_at`` (`divergence` on the chunk's metrics gives the details); otherwise
    each state callback gets ``(iteration, state)``. ``should_stop()`` is asked before each
    chunk."""
    callbacks, state_callbacks = list(callbacks), list(state_callbacks)
    iteration = start_iteration
    while iteration < num_iterations and not should_stop():
        length = min(chunk, num_iterations - iteration)
        new_state, metrics = program(length)(state, config)
        host = to_host(metrics)
        diverged = divergence(host, config, iteration)
        seeds = next(iter(host.values())).shape[0] if host else 1
        host[DIVERGED] = np.full((seeds, length), diverged is not None)
        for callback in callbacks:
            callback(iteration + length, host)
        if diverged is not None:
            return LoopEnd(state, iteration, diverged.iteration)
        state, iteration = new_state, iteration + length
        for callback in state_callbacks:
            callback(iteration, state)
    return LoopEnd(state, iteration, None)


class StopRequest:
    """Installs SIGINT and SIGTERM handlers (main thread only) that ask the training loop to
    stop at the next chunk boundary (``should_stop=stop.requested``); a second Ctrl-C aborts
    at once."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signum is None:
            self.signum = signum
            print(f"\n{signal.Signals(signum).name}: saving a checkpoint after this chunk "
                  "(Ctrl-C again to abort without saving)", file=sys.stderr, flush=True)

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
