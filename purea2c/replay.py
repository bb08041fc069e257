"""A ring buffer for any pytree of transitions: init / add / sample / clear, all pure.

Entries are written at ``insert_index`` and wrap around, overwriting the oldest once full.
Because writing starts at slot 0 and ``clear`` resets both counters, the written entries
are always the slots ``[0, size)``, which is where `sample` draws from.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp


class ReplayState(NamedTuple):
    data: Any  # pytree, leaves [capacity, ...]
    insert_index: jax.Array  # int32 scalar, next slot to write
    size: jax.Array  # int32 scalar, number of written entries, <= capacity


def capacity_of(state: ReplayState) -> int:
    return jax.tree.leaves(state.data)[0].shape[0]


def init(capacity: int, example: Any) -> ReplayState:
    """An empty buffer whose entries look like ``example`` (one unbatched item)."""
    if capacity < 1:
        raise ValueError(f"capacity={capacity} must be >= 1")
    data = jax.tree.map(lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype),
                        example)
    return ReplayState(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def add(state: ReplayState, batch: Any, mask: jax.Array | None = None) -> ReplayState:
    """Writes the items of ``batch`` (leaves ``[B, ...]``) whose ``mask[i]`` is True, in order.

    ``B`` must not exceed the capacity (so that one add never writes a slot twice).
    """
    capacity = capacity_of(state)
    b = jax.tree.leaves(batch)[0].shape[0]
    chex.assert_trees_all_equal_structs(batch, state.data)
    chex.assert_tree_shape_prefix(batch, (b,))
    chex.assert_trees_all_equal_shapes(
        jax.tree.map(lambda x: x[0], batch), jax.tree.map(lambda x: x[0], state.data))
    if b > capacity:
        raise ValueError(f"a batch of {b} items does not fit a buffer of capacity {capacity}")
    mask = jnp.ones((b,), bool) if mask is None else jnp.asarray(mask, bool)
    if mask.shape != (b,):
        raise ValueError(f"mask has shape {mask.shape}, expected ({b},)")
    offset = jnp.cumsum(mask.astype(jnp.int32)) - 1
    slots = jnp.where(mask, (state.insert_index + offset) % capacity, capacity)  # capacity: drop
    data = jax.tree.map(lambda buf, x: buf.at[slots].set(x.astype(buf.dtype), mode="drop"),
                        state.data, batch)
    added = jnp.sum(mask.astype(jnp.int32))
    return ReplayState(
        data=data,
        insert_index=(state.insert_index + added) % capacity,
        size=jnp.minimum(state.size + added, capacity),
    )


def sample(state: ReplayState, key: jax.Array, batch_size: int) -> Any:
    """``batch_size`` entries drawn uniformly, with replacement, from the written ones.

    On an empty buffer this returns slot 0 (unwritten); callers check ``size > 0``.
    """
    return take(state, sample_indices(state, key, (batch_size,)))


def sample_indices(state: ReplayState, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Slots drawn uniformly, with replacement, from the written ones: int32 of ``shape``
    (e.g. ``[updates, batch_size]``, drawn in one call while the buffer does not change)."""
    return jax.random.randint(key, shape, 0, jnp.maximum(state.size, 1))


def take(state: ReplayState, idx: jax.Array) -> Any:
    """The entries at slots ``idx`` (int, any shape: the entries get that leading shape)."""
    chex.assert_type(idx, int)
    return jax.tree.map(lambda buf: buf[idx], state.data)


def clear(state: ReplayState) -> ReplayState:
    """Forgets every entry (the arrays are kept, the counters reset)."""
    return state._replace(insert_index=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))
