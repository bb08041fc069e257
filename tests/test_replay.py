"""Tests for the ring buffer (`purea2c.replay`) against a pure-Python FIFO model.

Every stored item carries a unique integer id, so the tests can tell which items a buffer
holds, where they sit, and which items `sample` returns. The pytree item has two leaves of
different shapes and dtypes, both derived from the id, so a leaf written to the wrong slot
(or not written) is caught too.
"""

from __future__ import annotations

import collections
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from purea2c import replay

EXAMPLE = {"id": jnp.zeros((), jnp.int32), "vec": jnp.zeros((2, 3), jnp.float32)}


def items(ids) -> dict:
    """A batch of items ``[B]`` with the given ids; ``vec`` encodes the id in every entry."""
    ids = np.asarray(ids, np.int32)
    vec = ids[:, None, None].astype(np.float32) + np.arange(6, dtype=np.float32).reshape(2, 3)
    return {"id": ids, "vec": vec}


def check_leaves_consistent(data, count=None):
    """``vec`` of each entry must be the one written together with its ``id``."""
    ids = np.asarray(data["id"])[:count]
    vec = np.asarray(data["vec"])[:count]
    np.testing.assert_array_equal(vec, items(ids)["vec"])


# Jitted once at module level; compilation is keyed by (capacity, batch size) shapes.
add_jit = jax.jit(replay.add)
sample_jit = jax.jit(replay.sample, static_argnums=2)
clear_jit = jax.jit(replay.clear)


class FifoModel:
    """A FIFO of at most ``capacity`` ids (the oldest drops out) plus the write count since
    the last clear; the write order is deterministic, so the item written c-th since the last
    clear must sit in slot ``c % capacity``."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.clear()

    def clear(self):
        self.fifo = collections.deque(maxlen=self.capacity)  # (write count, id)
        self.count = 0

    def add(self, ids, mask):
        for i, m in zip(ids, mask):
            if m:
                self.fifo.append((self.count, int(i)))
                self.count += 1

    def ids(self):
        return [i for _, i in self.fifo]

    def slots(self):
        return {c % self.capacity: i for c, i in self.fifo}


def check_against_model(state, model: FifoModel):
    cap = model.capacity
    assert replay.capacity_of(state) == cap
    assert int(state.size) == len(model.fifo)
    assert int(state.insert_index) == model.count % cap
    size = int(state.size)
    written = np.asarray(state.data["id"])[:size]
    # As multisets: the buffer holds exactly the last `capacity` items written.
    assert sorted(written.tolist()) == sorted(model.ids())
    # Slot-wise: item number c since the last clear sits at slot c % capacity.
    assert dict(enumerate(written.tolist())) == model.slots()
    check_leaves_consistent(state.data, size)


class ReplayMachine(RuleBasedStateMachine):
    """Random add / sample / clear sequences, each step checked against `FifoModel`."""

    @initialize(capacity=st.sampled_from([1, 3, 5]))
    def setup(self, capacity):
        self.state = replay.init(capacity, EXAMPLE)
        self.model = FifoModel(capacity)
        self.next_id = 1  # unwritten slots hold id 0, so written ids start at 1
        self.key = jax.random.key(0)

    @rule(data=st.data())
    def add(self, data):
        cap = self.model.capacity
        b = data.draw(st.integers(1, cap), label="batch size")
        mask = data.draw(st.lists(st.booleans(), min_size=b, max_size=b), label="mask")
        use_mask = data.draw(st.booleans(), label="pass a mask")
        ids = list(range(self.next_id, self.next_id + b))
        self.next_id += b
        if use_mask:
            self.state = add_jit(self.state, items(ids), np.asarray(mask))
            self.model.add(ids, mask)
        else:
            self.state = add_jit(self.state, items(ids))
            self.model.add(ids, [True] * b)

    @rule(batch_size=st.sampled_from([1, 16]))
    def sample(self, batch_size):
        self.key, key = jax.random.split(self.key)
        out = sample_jit(self.state, key, batch_size)
        assert out["id"].shape == (batch_size,)
        assert out["vec"].shape == (batch_size, 2, 3)
        assert out["id"].dtype == jnp.int32 and out["vec"].dtype == jnp.float32
        if self.model.fifo:
            check_leaves_consistent(out)
            assert set(np.asarray(out["id"]).tolist()) <= set(self.model.ids())

    @rule()
    def clear(self):
        self.state = clear_jit(self.state)
        self.model.clear()

    @precondition(lambda self: len(self.model.fifo) == 0)
    @rule()
    def sample_empty_returns_slot0(self):
        # Documented: an empty buffer returns slot 0 (callers check size > 0).
        self.key, key = jax.random.split(self.key)
        out = sample_jit(self.state, key, 16)
        np.testing.assert_array_equal(np.asarray(out["id"]),
                                      np.full(16, np.asarray(self.state.data["id"])[0]))

    @invariant()
    def matches_model(self):
        if hasattr(self, "state"):
            check_against_model(self.state, self.model)


ReplayMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25,
                                           deadline=None)
TestReplayMachine = ReplayMachine.TestCase


# --------------------------------------------------------------------------------------
# Deterministic cases.


def test_wrap_around_overwrites_oldest():
    state = replay.init(4, EXAMPLE)
    state = add_jit(state, items([1, 2, 3]))
    assert int(state.size) == 3 and int(state.insert_index) == 3
    # Writes 4 at slot 3, then wraps: 5 -> slot 0, 6 -> slot 1 (overwriting 1 and 2).
    state = add_jit(state, items([4, 5, 6]))
    assert int(state.size) == 4 and int(state.insert_index) == 2
    np.testing.assert_array_equal(np.asarray(state.data["id"]), [5, 6, 3, 4])
    check_leaves_consistent(state.data)


def test_masked_out_items_write_nothing():
    state = replay.init(5, EXAMPLE)
    state = add_jit(state, items([1, 2, 3, 4]), np.array([False, True, False, True]))
    # Only 2 and 4 are written, packed into slots 0 and 1.
    assert int(state.size) == 2 and int(state.insert_index) == 2
    np.testing.assert_array_equal(np.asarray(state.data["id"]), [2, 4, 0, 0, 0])
    np.testing.assert_array_equal(np.asarray(state.data["vec"])[2:], 0.0)
    # An all-False mask changes nothing at all.
    after = add_jit(state, items([7, 8, 9]), np.zeros(3, bool))
    for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_full_batch_at_capacity_wraps_once():
    state = replay.init(3, EXAMPLE)
    state = add_jit(state, items([1, 2]))
    # B == capacity starting at slot 2: 3 -> slot 2, 4 -> slot 0, 5 -> slot 1.
    state = add_jit(state, items([3, 4, 5]))
    np.testing.assert_array_equal(np.asarray(state.data["id"]), [4, 5, 3])
    assert int(state.size) == 3 and int(state.insert_index) == 2


def test_clear_resets_counters():
    state = add_jit(replay.init(3, EXAMPLE), items([1, 2]))
    state = clear_jit(state)
    assert int(state.size) == 0 and int(state.insert_index) == 0
    state = add_jit(state, items([7]))
    np.testing.assert_array_equal(np.asarray(state.data["id"])[:1], [7])
    assert int(state.size) == 1


def test_batch_larger_than_capacity_raises():
    state = replay.init(3, EXAMPLE)
    with pytest.raises(ValueError):
        replay.add(state, items([1, 2, 3, 4]))
    with pytest.raises(ValueError):
        add_jit(state, items([1, 2, 3, 4]))


def test_mask_of_wrong_shape_raises():
    state = replay.init(3, EXAMPLE)
    with pytest.raises(ValueError):
        replay.add(state, items([1, 2]), np.ones(3, bool))


def test_capacity_below_one_raises():
    with pytest.raises(ValueError):
        replay.init(0, EXAMPLE)


def test_init_shapes_and_dtypes():
    state = replay.init(6, EXAMPLE)
    assert state.data["id"].shape == (6,) and state.data["id"].dtype == jnp.int32
    assert state.data["vec"].shape == (6, 2, 3) and state.data["vec"].dtype == jnp.float32
    assert state.size.dtype == jnp.int32 and state.insert_index.dtype == jnp.int32
    assert int(state.size) == 0 and int(state.insert_index) == 0


def test_add_compiles_once_per_shape():
    add = jax.jit(lambda s, b, m: replay.add(s, b, m))
    state = replay.init(4, EXAMPLE)
    rng = np.random.default_rng(0)
    for step in range(5):
        state = add(state, items(np.arange(3) + 3 * step + 1), rng.random(3) < 0.5)
    assert add._cache_size() == 1


# --------------------------------------------------------------------------------------
# vmap over independent buffers.


def test_vmap_over_buffers_equals_each_alone():
    num, cap, b = 3, 5, 3
    rng = np.random.default_rng(1)
    alone = [replay.init(cap, EXAMPLE) for _ in range(num)]
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *alone)
    v_add = jax.jit(jax.vmap(replay.add))
    v_clear = jax.jit(jax.vmap(replay.clear))
    v_sample = jax.jit(jax.vmap(functools.partial(replay.sample, batch_size=6)))
    next_id = 1
    for step in range(8):
        ids = np.arange(next_id, next_id + num * b).reshape(num, b)
        next_id += num * b
        masks = rng.random((num, b)) < 0.6
        batch = jax.tree.map(lambda *x: np.stack(x), *[items(i) for i in ids])
        stacked = v_add(stacked, batch, masks)
        alone = [add_jit(s, items(i), m) for s, i, m in zip(alone, ids, masks)]
        if step == 4:  # clear in the middle, for all buffers at once
            stacked = v_clear(stacked)
            alone = [clear_jit(s) for s in alone]
        for e in range(num):
            for a, s in zip(jax.tree.leaves(alone[e]), jax.tree.leaves(stacked)):
                np.testing.assert_array_equal(np.asarray(s[e]), np.asarray(a))
    keys = jax.random.split(jax.random.key(3), num)
    batched = v_sample(stacked, keys)
    for e in range(num):
        single = sample_jit(alone[e], keys[e], 6)
        for a, s in zip(jax.tree.leaves(single), jax.tree.leaves(batched)):
            np.testing.assert_array_equal(np.asarray(s[e]), np.asarray(a))
    # The buffers hold different items (random masks), so a mix-up would be seen.
    assert not np.array_equal(np.asarray(stacked.data["id"][0]),
                              np.asarray(stacked.data["id"][1]))


# --------------------------------------------------------------------------------------
# Statistics.


def test_sampling_is_uniform_over_written_slots():
    cap, size, draws = 10, 7, 70_000
    state = add_jit(replay.init(cap, EXAMPLE), items(np.arange(1, size + 1)))
    out = sample_jit(state, jax.random.key(42), draws)
    ids = np.asarray(out["id"])
    assert set(ids.tolist()) <= set(range(1, size + 1))  # never an unwritten slot (id 0)
    counts = np.bincount(ids, minlength=size + 1)[1:]
    expected = draws / size
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    # 6 degrees of freedom: P(chi2 > 40) ~ 3e-7, while a sampler that skips one slot or
    # favours one by 10% gives chi2 of order 10^4 or 10^2 here.
    assert chi2 < 40.0, (chi2, counts)


def test_sampling_after_wrap_covers_every_slot():
    cap = 4
    state = add_jit(replay.init(cap, EXAMPLE), items([1, 2, 3]))
    state = add_jit(state, items([4, 5, 6]))
    out = sample_jit(state, jax.random.key(5), 4000)
    assert set(np.asarray(out["id"]).tolist()) == {3, 4, 5, 6}


def test_two_keys_give_different_samples():
    state = add_jit(replay.init(8, EXAMPLE), items(np.arange(1, 9)))
    a = sample_jit(state, jax.random.key(0), 32)["id"]
    b = sample_jit(state, jax.random.key(1), 32)["id"]
    assert not np.array_equal(np.asarray(a), np.asarray(b))


def test_sample_indices_for_many_updates_in_one_call():
    """Slots ``[U, B]`` drawn at once: only written slots, every update its own draw, and
    `take` of them is what `sample` returns for the same key."""
    state = add_jit(replay.init(16, EXAMPLE), items(np.arange(1, 11)))
    idx = np.asarray(replay.sample_indices(state, jax.random.key(3), (5, 400)))
    assert idx.shape == (5, 400) and idx.min() >= 0 and idx.max() < 10
    assert len({tuple(row) for row in idx}) == 5
    np.testing.assert_array_equal(set(idx.ravel().tolist()), set(range(10)))
    one = replay.sample(state, jax.random.key(4), 32)
    again = replay.take(state, replay.sample_indices(state, jax.random.key(4), (32,)))
    np.testing.assert_array_equal(one["id"], again["id"])


class ReplayVariants(chex.TestCase):
    """add / take / clear jitted and not: the same buffer as a Python FIFO model, compared
    with chex's tree assertions; the shape asserts at add's boundary."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_add_take_clear_match_the_model(self):
        add, take, clear = self.variant(replay.add), self.variant(replay.take), \
            self.variant(replay.clear)
        state = replay.init(5, EXAMPLE)
        state = add(state, items([1, 2, 3]), jnp.asarray([True, False, True]))
        state = add(state, items([4, 5, 6, 7]))
        # FIFO of capacity 5 after writing 1, 3, 4, 5, 6, 7: slots hold 7, 3, 4, 5, 6
        chex.assert_trees_all_equal(take(state, jnp.arange(5)), items([7, 3, 4, 5, 6]))
        chex.assert_trees_all_equal((state.insert_index, state.size),
                                    (jnp.int32(1), jnp.int32(5)))
        state = clear(state)
        chex.assert_trees_all_equal((state.insert_index, state.size),
                                    (jnp.int32(0), jnp.int32(0)))

    def test_items_that_do_not_look_like_the_buffer_are_refused(self):
        state = replay.init(4, EXAMPLE)
        with pytest.raises(AssertionError):  # vec of another shape
            replay.add(state, {"id": jnp.zeros((2,), jnp.int32),
                               "vec": jnp.zeros((2, 3, 2), jnp.float32)})
        with pytest.raises(AssertionError):  # another structure
            replay.add(state, {"id": jnp.zeros((2,), jnp.int32)})
        with pytest.raises(AssertionError):  # leaves of different batch sizes
            replay.add(state, {"id": jnp.zeros((2,), jnp.int32),
                               "vec": jnp.zeros((3, 2, 3), jnp.float32)})
