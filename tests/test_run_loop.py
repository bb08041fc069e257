"""run_loop.py: chunks, callbacks, stop requests and divergence, on a fake program (no
training: the real chunk program is checked bitwise in tests/test_cli.py)."""

import os
import signal

import jax.numpy as jnp
import numpy as np
import pytest

from purea2c import run_loop


def test_chunks_divide_the_run():
    assert run_loop.auto_chunk_iterations(384) == 3  # 128 chunks of 3
    assert run_loop.auto_chunk_iterations(16) == 1
    assert run_loop.auto_chunk_iterations(383) == 1  # a prime: chunks of one iteration
    assert run_loop.auto_chunk_iterations(10_000) == 100
    for n in (1, 7, 100, 250, 1024, 999):
        k = run_loop.auto_chunk_iterations(n)
        assert n % k == 0 and n // k >= min(n, 100)


def test_a_signal_asks_the_loop_to_stop_and_a_second_ctrl_c_aborts():
    previous = signal.getsignal(signal.SIGTERM)
    with run_loop.StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signum == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) == previous


class FakeProgram:
    """``program(length)(state, config)``: the state counts iterations; the metrics of
    iteration i (1-based, over the run) are ``finite = i not in bad`` for two seeds."""

    def __init__(self, bad=(), with_finite=True):
        self.bad, self.with_finite = set(bad), with_finite
        self.lengths = []

    def __call__(self, length):
        self.lengths.append(length)

        def step(state, config):
            its = np.arange(state + 1, state + length + 1)
            metrics = {"env_steps": np.stack([its * 10] * 2)}
            if self.with_finite:
                finite = np.array([i not in self.bad for i in its])
                metrics["finite"] = np.stack([np.ones_like(finite), finite])  # seed 1 only
            return state + length, metrics
        return step


def _run(program, num_iterations=10, chunk=3, start=0, should_stop=lambda: False):
    seen, states = [], []
    end = run_loop.run_in_chunks(start, None, program, num_iterations, chunk,
                                 callbacks=[lambda it, m: seen.append((it, m))],
                                 should_stop=should_stop, start_iteration=start,
                                 state_callbacks=[lambda it, s: states.append((it, s))])
    return end, seen, states


def test_chunks_and_callbacks():
    program = FakeProgram()
    end, seen, states = _run(program)
    assert program.lengths == [3, 3, 3, 1]  # the last chunk is the rest
    assert end == run_loop.LoopEnd(10, 10, None)
    assert [it for it, _ in seen] == [3, 6, 9, 10]
    np.testing.assert_array_equal(seen[1][1]["env_steps"], [[40, 50, 60]] * 2)
    assert states == [(3, 3), (6, 6), (9, 9), (10, 10)]
    end, seen, _ = _run(FakeProgram(), start=6)  # a resumed run goes on from its iteration
    assert end.iteration == 10 and [it for it, _ in seen] == [9, 10]


def test_stop_request_is_asked_before_each_chunk():
    asked = []

    def should_stop():
        asked.append(True)
        return len(asked) > 2

    end, seen, states = _run(FakeProgram(), should_stop=should_stop)
    assert end == run_loop.LoopEnd(6, 6, None) and len(seen) == 2 and len(states) == 2


@pytest.mark.parametrize("bad, diverged_at, kept", [
    ((5,), 5, 3), ((4, 8), 4, 3), ((1,), 1, 0), ((3,), 3, 0), ((10,), 10, 9)])
def test_divergence_stops_after_the_chunk_and_keeps_the_last_finite_state(bad, diverged_at,
                                                                         kept):
    """Iteration ``bad`` of seed 1 is not finite: the loop reports it (1-based), passes the
    chunk's metrics to the callbacks (they log the NaN), and returns the state before that
    chunk, which no state callback saw beyond it."""
    end, seen, states = _run(FakeProgram(bad=bad))
    assert end == run_loop.LoopEnd(kept, kept, diverged_at)
    assert seen[-1][0] >= diverged_at > seen[-1][0] - 3
    assert not seen[-1][1]["finite"].all()
    assert all(it <= kept for it, _ in states) and (not states or states[-1] == (kept, kept))


def test_metrics_without_a_finite_field_never_diverge():
    end, _, _ = _run(FakeProgram(bad=(2,), with_finite=False))
    assert end == run_loop.LoopEnd(10, 10, None)


def test_first_nonfinite_iteration():
    finite = np.array([[True, True, False, True], [True, False, True, True]])
    assert run_loop.first_nonfinite_iteration({"finite": finite}, 20) == 22
    assert run_loop.first_nonfinite_iteration({"finite": np.ones((3, 4), bool)}, 0) is None
    assert run_loop.first_nonfinite_iteration({"episodes": np.zeros((3, 4))}, 0) is None


def test_to_host_takes_named_tuples_and_dicts():
    from purea2c.training import Metrics

    metrics = Metrics(*[jnp.zeros((2, 3))] * len(Metrics._fields))
    host = run_loop.to_host(metrics)
    assert list(host) == list(Metrics._fields) and isinstance(host["kl"], np.ndarray)
    assert list(run_loop.to_host({"a": jnp.ones(2)})) == ["a"]


def test_strip_weak_types_keeps_values_and_keys():
    import jax

    tree = {"w": jnp.asarray(1.0), "k": jax.random.key(0), "i": jnp.int32(3)}
    assert tree["w"].weak_type
    out = run_loop.strip_weak_types(tree)
    assert not out["w"].weak_type and float(out["w"]) == 1.0
    assert jax.dtypes.issubdtype(out["k"].dtype, jax.dtypes.prng_key)
