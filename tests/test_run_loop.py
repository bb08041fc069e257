"""run_loop.py: chunks, callbacks, stop requests and divergence, on a fake program (no
training: the real chunk program is checked bitwise in tests/test_cli.py)."""

import os
import signal
import types

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


# ------------------------------------------------------------------------------------------
# divergence: the host-side check on a chunk's metrics
# ------------------------------------------------------------------------------------------

# 4 updates per iteration; a chunk diverges when a seed skipped more than half of them.
_CHECK = types.SimpleNamespace(max_skipped_share=0.5, updates_per_iteration=4)


def _metrics(skipped=None, finite=None, **means):
    out = {"env_steps": np.zeros((2, 4), np.int32)}
    if skipped is not None:
        out["skipped_updates"] = np.asarray(skipped, np.int32)
    if finite is not None:
        out["finite"] = np.asarray(finite, bool)
    out.update({name: np.asarray(value, np.float32) for name, value in means.items()})
    return out


def test_a_chunk_diverges_when_more_than_the_share_of_its_updates_is_skipped():
    # seed 0 skips 4 of 16 updates (25%), seed 1 12 of 16 (75%): seed 1 diverged, first at
    # its second iteration (3 of 4 > 2); the chunk began after iteration 10
    metrics = _metrics(skipped=[[0, 2, 2, 0], [1, 3, 4, 4]])
    found = run_loop.divergence(metrics, _CHECK, start_iteration=10)
    assert found == run_loop.Divergence(iteration=12, seed=1, quantity="parameters",
                                        skipped_share=0.75, cause="skipped", first=11,
                                        last=14)
    # exactly half is not more than half: 8 of 16, and in chunks of one iteration 2 of 4
    assert run_loop.divergence(_metrics(skipped=[[0, 2, 2, 4], [0] * 4]), _CHECK) is None
    assert run_loop.divergence(_metrics(skipped=[[2, 2, 2, 2], [0] * 4]), _CHECK,
                               chunk=1) is None
    # in chunks of two: the first (1 + 3 of 8) is half, the second (8 of 8) diverged
    found = run_loop.divergence(_metrics(skipped=[[0] * 4, [1, 3, 4, 4]]), _CHECK, chunk=2)
    assert (found.iteration, found.first, found.last, found.skipped_share) == (3, 3, 4, 1.0)
    # a higher threshold lets the whole chunk pass
    lenient = types.SimpleNamespace(max_skipped_share=0.8, updates_per_iteration=4)
    assert run_loop.divergence(metrics, lenient) is None


def test_divergence_names_the_first_non_finite_quantity():
    nan, inf = float("nan"), float("inf")
    ok = [[1.0] * 4] * 2
    skipped = [[0, 4, 4, 4], [0] * 4]
    found = run_loop.divergence(_metrics(skipped, value_loss=ok, policy_loss=[
        [1.0, nan, 1.0, 1.0], [1.0] * 4], pi_grad_norm=[[1.0, inf, 1, 1], [1.0] * 4]), _CHECK)
    assert (found.iteration, found.quantity) == (2, "policy_loss")  # losses before norms
    found = run_loop.divergence(_metrics(skipped, value_loss=ok, policy_loss=ok,
                                         v_grad_norm=[[1, inf, 1, 1], [1] * 4]), _CHECK)
    assert found.quantity == "v_grad_norm"
    found = run_loop.divergence(_metrics(skipped, value_loss=[[1, nan, nan, nan], [1] * 4],
                                         policy_loss=[[1, nan, nan, nan], [1] * 4]), _CHECK)
    assert found.quantity == "value_loss"
    # every mean finite: the new parameters were not
    assert run_loop.divergence(_metrics(skipped, value_loss=ok), _CHECK).quantity == \
        "parameters"


def test_a_state_that_is_not_finite_diverges_whatever_was_skipped():
    # with skip_nonfinite off nothing is skipped; seed 0's state turns non-finite at 3
    found = run_loop.divergence(_metrics(skipped=[[0] * 4] * 2,
                                         finite=[[True, True, False, False], [True] * 4]),
                                _CHECK, start_iteration=4)
    assert found == run_loop.Divergence(7, 0, "parameters", 0.0, "not finite", 5, 8)
    # the earlier of the two causes is reported: seed 1 skipped 3 of 4 at iteration 2
    found = run_loop.divergence(_metrics(skipped=[[0] * 4, [0, 3, 4, 4]],
                                         finite=[[True, True, False, False], [True] * 4]),
                                _CHECK)
    assert (found.iteration, found.seed, found.cause) == (2, 1, "skipped")
    # no finite and no skipped_updates field: nothing to check (the config is not read)
    assert run_loop.divergence({"env_steps": np.zeros((2, 3))}, None) is None
    assert run_loop.divergence(_metrics(finite=np.ones((2, 4), bool)), None) is None


def test_divergence_takes_the_metrics_of_purea2c_train():
    """One seed's `Metrics` (``[iters]`` JAX arrays, as `purea2c.train` returns them) with
    a real Config: 2 updates per iteration."""
    import purea2c
    from purea2c.training import Metrics

    config = purea2c.Config(num_envs=4, rollout_length=8, batch_size=32, num_passes=2,
                            buffer_capacity=32, total_timesteps=128)
    assert config.updates_per_iteration == 2 and config.max_skipped_share == 0.5
    values = {name: jnp.ones(4) for name in Metrics._fields}
    values["skipped_updates"] = jnp.array([0, 1, 2, 1], jnp.int32)
    values["finite"] = jnp.ones(4, bool)
    values["value_loss"] = jnp.array([1.0, 1.0, jnp.inf, 1.0])
    metrics = Metrics(**values)
    assert purea2c.divergence(metrics, config) is None  # 4 of 8 updates: not over 50%
    found = purea2c.divergence(metrics, config, chunk=2)  # 1 of 4, then 3 of 4
    assert found == purea2c.Divergence(3, 0, "value_loss", 0.75, "skipped", 3, 4)
    text = found.describe(4, config.max_skipped_share)
    assert text == ("diverged at iteration 3/4 (seed 0): 75% of its updates in iterations "
                    "3-4 were skipped as non-finite (more than max_skipped_share 0.5); first "
                    "non-finite quantity: value_loss")
    with pytest.raises(ValueError, match="chunk must be an int >= 1"):
        purea2c.divergence(metrics, config, chunk=0)


@pytest.mark.parametrize("value", [0, 0.0, -0.5, 1.01, float("nan"), "0.5", True, None])
def test_the_skipped_share_is_a_number_in_0_1(value):
    import purea2c

    with pytest.raises(ValueError, match=r"Config.max_skipped_share=.* must be a Python "
                                         r"float in \(0, 1\]"):
        purea2c.Config(max_skipped_share=value)
    assert purea2c.Config(max_skipped_share=1).max_skipped_share == 1


class SkippingProgram(FakeProgram):
    """Two seeds, 4 updates per iteration: seed 1 skips all of them in iterations ``bad``."""

    def __call__(self, length):
        inner = super().__call__(length)

        def step(state, config):
            new_state, metrics = inner(state, config)
            its = np.arange(state + 1, state + length + 1)
            metrics["skipped_updates"] = np.stack([np.zeros(length, np.int32),
                                                   np.where(np.isin(its, list(self.bad)), 4, 0)])
            metrics["finite"] = np.ones((2, length), bool)
            return new_state, metrics
        return step


def test_the_loop_stops_at_a_chunk_that_skipped_too_many_updates_and_marks_it():
    seen, states = [], []
    end = run_loop.run_in_chunks(0, _CHECK, SkippingProgram(bad=(7, 8)), 12, 3,
                                 callbacks=[lambda it, m: seen.append((it, m))],
                                 state_callbacks=[lambda it, s: states.append(it)])
    # chunk 7-9: seed 1 skipped 8 of 12 updates (67%)
    assert end == run_loop.LoopEnd(6, 6, 7) and states == [3, 6]
    assert [it for it, _ in seen] == [3, 6, 9]
    assert [m[run_loop.DIVERGED].tolist() for _, m in seen] == [
        [[False] * 3] * 2, [[False] * 3] * 2, [[True] * 3] * 2]
    # one bad iteration in a chunk of three is a third of the updates: the run goes on
    end = run_loop.run_in_chunks(0, _CHECK, SkippingProgram(bad=(7,)), 12, 3)
    assert end == run_loop.LoopEnd(12, 12, None)
