"""A training run in chunks of one compiled program, reporting through callbacks.

``jit(vmap(init))`` once, then ``jit(vmap(run, num_iterations=chunk))`` compiled once and
called for every chunk. Each chunk is a whole XLA program (no host round-trip inside);
between chunks its metrics come back to the host and go to the callbacks, brax
``progress_fn`` style::

    program = ChunkProgram(state, config)
    end = run_in_chunks(state, config, program, config.num_iterations, chunk=10,
                        callbacks=[lambda it, m: print(it, m["episode_return"].mean())])

The loop knows nothing of files: the command line's metrics log, TensorBoard, progress bar
and checkpoints are callbacks. A resumed run calls the same chunk program on the restored
state, so it finishes bitwise equal to an uninterrupted run. A run spread over several
devices or processes has `sharding.MeshRun` as its program, with the same interface.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any, Callable, Iterable, NamedTuple

import jax
import numpy as np

from purea2c import sharding, training
from purea2c.config import Config
from purea2c.training import compiler_options, init, run
# The chunk loop's callers strip a restored or fresh state through this module.
from purea2c.training import strip_weak_types  # noqa: F401

# ``(iteration after the chunk, {metric: [seeds, chunk iterations]})``
MetricsCallback = Callable[[int, dict[str, np.ndarray]], None]
# ``(iteration, state)`` after a chunk whose iterations all ended finite
StateCallback = Callable[[int, Any], None]

# The programs of a vmapped run: seeds on the leading axis, one config for all. The init
# compiles with purea2c's compiler options, as `init` does (on CPU in less than half the
# time of XLA's defaults); `ChunkProgram` compiles the run with them.
vmapped_init = training._jit(jax.vmap(init, in_axes=(0, None)))
vmapped_run = jax.jit(jax.vmap(run, in_axes=(0, None, None)), static_argnums=2)


def auto_chunk_iterations(num_iterations: int, target_chunks: int = 100) -> int:
    """The largest divisor of ``num_iterations`` that gives at least ``target_chunks`` chunks
    (every chunk then has the same length, so one compiled program serves them all)."""
    target = max(1, num_iterations // target_chunks)
    return max(d for d in range(1, target + 1) if num_iterations % d == 0)


class ChunkProgram:
    """``program(length)``: the executable of ``vmapped_run`` for ``length`` iterations on
    states like ``state``, compiled (``.lower(...).compile()``) once per length."""

    def __init__(self, state: Any, config: Config):
        # shapes only: the program is lowered without holding on to the first state
        self._state = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)
        self._config = config
        self._compiled: dict[int, Any] = {}

    def __call__(self, length: int) -> Any:
        if length not in self._compiled:
            self._compiled[length] = vmapped_run.lower(self._state, self._config, length) \
                .compile(compiler_options())
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

    After each chunk every callback gets ``(iteration, host metrics)``. When the metrics
    hold a ``finite`` field that is False for any iteration, the loop stops there and returns
    the state before that chunk with ``diverged_at``; otherwise each state callback gets
    ``(iteration, state)``. ``should_stop()`` is asked before each chunk."""
    callbacks, state_callbacks = list(callbacks), list(state_callbacks)
    iteration = start_iteration
    while iteration < num_iterations and not should_stop():
        length = min(chunk, num_iterations - iteration)
        new_state, metrics = program(length)(state, config)
        host = to_host(metrics)
        for callback in callbacks:
            callback(iteration + length, host)
        diverged_at = first_nonfinite_iteration(host, iteration)
        if diverged_at is not None:
            return LoopEnd(state, iteration, diverged_at)
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
