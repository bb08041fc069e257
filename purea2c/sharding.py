"""Seeds and sweeps sharded over devices: the ``jax.vmap(train)`` computation on a mesh.

    keys = jax.random.split(jax.random.key(0), 64)
    out = train_sharded(keys, config)                     # 64 seeds over all devices
    lrs = jnp.geomspace(1e-4, 1e-2, 64)
    out = train_sharded(keys, config.replace(pi_learning_rate=lrs))   # a sharded sweep

Each device runs ``jax.vmap(train)`` over its own slice of the runs (``jax.shard_map``): the
runs are independent, so the program has no collective at all and each run computes what it
computes unsharded. The mesh may span the devices of several processes
(``jax.distributed.initialize``, see ``benchmarks/multihost.py``); every process then calls
`train_sharded` with the same arguments and holds its part of the result.

`train_data_parallel` trains ONE agent whose envs are split over the devices, averaging
gradients at every update. `MeshRun` runs either layout in chunks for the command line (a
fresh or restored state on the mesh, and a chunk program compiled once), on one process or
several; `fetch`, `gather` and `process_max` are how several processes read a result whole
and agree on what to do next.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from purea2c import training
from purea2c.agent import Agent
from purea2c.config import Config
from purea2c.training import TrainResult


def default_mesh(axis: str = "seeds") -> Mesh:
    """A 1-D mesh named ``axis`` over ``jax.devices()``: all devices of all processes."""
    return jax.make_mesh((jax.device_count(),), (axis,))


def swept_leaves(config: Config, num_runs: int) -> tuple[bool, ...]:
    """For each traced leaf of ``config`` (in ``jax.tree.leaves`` order): True if it is swept,
    i.e. has a leading axis (whose length must be ``num_runs``), False if it is a scalar
    shared by all runs. These are the ``vmap`` ``in_axes`` 0 / None of the leaves."""
    flags = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(config)[0]:
        shape = np.shape(leaf)
        if shape and shape[0] != num_runs:
            name = jax.tree_util.keystr(path, simple=True, separator=".")
            raise ValueError(
                f"Config.{name} has shape {shape}: a swept hyperparameter needs a leading "
                f"axis of length S={num_runs} (one value per key); a shared one is a scalar")
        flags.append(bool(shape))
    return tuple(flags)


def check_even(num_runs: int, mesh: Mesh, axis: str) -> None:
    if axis not in mesh.shape:
        raise ValueError(f"mesh has no axis {axis!r}; its axes are {tuple(mesh.shape)}")
    num_devices = mesh.shape[axis]
    if num_runs % num_devices:
        raise ValueError(
            f"S={num_runs} runs cannot be sharded over the {num_devices} devices of mesh axis "
            f"{axis!r}: S must be a multiple of the device count (each device trains S / "
            f"{num_devices} runs); pass {num_runs + (-num_runs) % num_devices} keys, or a mesh "
            f"whose axis size divides {num_runs}")


def _merge(swept: list, shared: list, flags: tuple[bool, ...]) -> list:
    swept_it, shared_it = iter(swept), iter(shared)
    return [next(swept_it) if flag else next(shared_it) for flag in flags]


def _local_train(keys: jax.Array, swept: list, shared: list, *, treedef: Any,
                 flags: tuple[bool, ...], impl: Any) -> TrainResult:
    """One device's part: ``vmap(train)`` over its keys and swept leaves."""
    if impl is not None:
        keys = jax.random.wrap_key_data(keys, impl=impl)

    def one(key, swept_one):
        config = jax.tree.unflatten(treedef, _merge(swept_one, shared, flags))
        return Agent(config).train(key)  # traced here: inlined into this program

    return jax.vmap(one)(keys, swept)


@functools.cache
def _program(backend: str) -> Any:
    """One jit per backend, with purea2c's compiler options (as `training.train`). Mesh,
    axis and the config's structure are static: a second call with the same ones, and
    other values of the traced leaves, does not recompile."""
    del backend  # only the cache key: compiler_options() depends on the default backend

    def sharded(keys, swept, shared, *, mesh, axis, treedef, flags, impl):
        runs, replicated = PartitionSpec(axis), PartitionSpec()
        local = functools.partial(_local_train, treedef=treedef, flags=flags, impl=impl)
        # check_vma=False: training's scan carries start from constants (invariant across
        # devices) and become per-device values; the check is for collectives, of which
        # this program has none.
        return jax.shard_map(local, mesh=mesh, out_specs=runs, check_vma=False,
                             in_specs=(runs, [runs] * len(swept), [replicated] * len(shared)),
                             )(keys, swept, shared)

    return jax.jit(sharded, static_argnames=("mesh", "axis", "treedef", "flags", "impl"),
                   compiler_options=training.compiler_options())


def put_global(x: Any, sharding: NamedSharding) -> jax.Array:
    """``x`` as a global array laid out by ``sharding``. An array that already spans the
    mesh's processes is resharded only if needed; any other value (a host value, the same on
    every process) goes through numpy, in JAX's dtype for it (float32 unless x64), and each
    process puts its own devices' slices of it there (``jax.make_array_from_callback``: no
    collective, where ``jax.device_put`` would compare the value across processes, one
    collective per array)."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        if x.sharding.is_equivalent_to(sharding, x.ndim):
            return x
        return jax.device_put(x, sharding)
    x = np.asarray(x)
    x = x.astype(jax.dtypes.canonicalize_dtype(x.dtype))
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def train_sharded(keys: jax.Array, config: Config, mesh: Mesh | None = None, *,
                  axis: str = "seeds") -> TrainResult:
    """Trains S independent runs, ``keys [S]``, sharded over the devices of ``mesh``.

    Computes ``jax.vmap(purea2c.train, in_axes=(0, in_axes))(keys, config)``, where each
    traced leaf of ``config`` is either a scalar (shared by all runs, ``in_axes`` None) or
    has a leading axis of length S (one value per run, ``in_axes`` 0): a sweep is
    ``config.replace(pi_learning_rate=jnp.array([...]))`` with S values, paired with
    ``keys`` run by run (for one key per value repeat it: ``jnp.repeat(key[None], S)``).

    Call it outside ``jax.jit``: it places its inputs on the mesh itself and runs its own
    compiled program (cached per static config, mesh and axis).

    Args:
      keys: ``[S]`` typed or ``[S, 2]`` raw PRNG keys, one per run. In a multi-process program every
        process passes the same global keys (or an already global ``jax.Array``).
      config: a `Config`; its static fields are static (one program per static config).
      mesh: a `jax.sharding.Mesh` with an axis named ``axis``; default `default_mesh`, a
        1-D mesh over ``jax.devices()`` (all devices of all processes). Other axes of the
        mesh, if any, hold replicas.
      axis: the mesh axis the runs are sharded over.

    Returns:
      `TrainResult` laid out as the unsharded ``vmap``: every leaf has the leading axis S.
      Its leaves are global ``jax.Array``s sharded along S (``NamedSharding(mesh,
      PartitionSpec(axis))``): each device holds S / (devices along ``axis``) runs. With one
      process they read like any array; with several, each process can read only its own
      rows (``.addressable_shards``), and `gather` brings the whole result to every process.

    Raises:
      ValueError: if S is not a multiple of the number of devices along ``axis`` (no
        padding: every device trains the same number of runs), if a swept leaf of
        ``config`` does not have length S, or if ``mesh`` has no axis ``axis``.
    """
    mesh = default_mesh(axis) if mesh is None else mesh
    if jnp.ndim(keys) < 1 or (jnp.issubdtype(keys.dtype, np.uint32) and jnp.ndim(keys) != 2):
        raise ValueError(f"keys must be [S] typed PRNG keys or [S, 2] raw uint32 keys; got "
                         f"shape {jnp.shape(keys)} and dtype {keys.dtype}")
    num_runs = jnp.shape(keys)[0]
    check_even(num_runs, mesh, axis)
    leaves, treedef = jax.tree.flatten(config)
    flags = swept_leaves(config, num_runs)
    runs = NamedSharding(mesh, PartitionSpec(axis))
    replicated = NamedSharding(mesh, PartitionSpec())
    swept = [put_global(x, runs) for x, flag in zip(leaves, flags) if flag]
    shared = [put_global(x, replicated) for x, flag in zip(leaves, flags) if not flag]
    keys, impl = split_key_data(keys)
    return _program(jax.default_backend())(put_global(keys, runs), swept, shared, mesh=mesh,
                                           axis=axis, treedef=treedef, flags=flags,
                                           impl=impl)


def split_key_data(keys: jax.Array) -> tuple[jax.Array, Any]:
    """``(raw key data, impl)``: typed keys travel into the sharded program as their raw
    data and are re-wrapped on each device; raw keys pass unchanged (impl None)."""
    if jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(keys), jax.random.key_impl(keys)
    return keys, None


def is_key(x: Any) -> bool:
    return jax.dtypes.issubdtype(getattr(x, "dtype", np.float32), jax.dtypes.prng_key)


@functools.cache
def _replicate(mesh: Mesh) -> Any:
    """The identity, compiled to return its inputs replicated on every device of ``mesh``:
    on several processes, an all-gather."""
    return jax.jit(lambda leaves: leaves, out_shardings=NamedSharding(mesh, PartitionSpec()))


def fetch(tree: Any) -> Any:
    """``tree`` with every leaf whole on this process. Leaves that span the devices of
    several processes (global ``jax.Array``s on a `NamedSharding`) are gathered, all of them
    in one program, and come back as arrays on one local device; every other leaf is
    returned as it is (a single-process array, however sharded, can already be read whole).
    Typed PRNG keys stay typed. With several processes this is a collective: every process
    calls it with the same tree, and every process receives the whole tree."""
    leaves, treedef = jax.tree.flatten(tree)
    by_mesh: dict[Mesh, list[int]] = {}
    for i, x in enumerate(leaves):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            by_mesh.setdefault(x.sharding.mesh, []).append(i)
    for mesh, indices in by_mesh.items():
        whole = _replicate(mesh)([leaves[i] for i in indices])
        for i, x in zip(indices, whole):
            leaves[i] = x.addressable_data(0)
    return jax.tree.unflatten(treedef, leaves)


def _numpy(x: Any) -> np.ndarray:
    return np.asarray(jax.random.key_data(x) if is_key(x) else x)


def gather(tree: Any) -> Any:
    """Every leaf of ``tree`` (e.g. a `train_sharded` result) as a whole numpy array on
    every process; typed PRNG keys become their raw ``key_data``. With several processes
    this is a collective: every process must call it."""
    return jax.tree.map(_numpy, fetch(tree))


def process_max(value: int) -> int:
    """The largest of every process's ``value``: ``value`` itself with one process, else a
    collective (every process calls it) that all processes answer alike. The command line
    agrees with it on when to stop and when to save, so that every process takes part in
    the same collectives."""
    if jax.process_count() == 1:
        return value
    return int(np.max(multihost_utils.process_allgather(np.int32(value))))


# ------------------------------------------------------------------------------------------
# One agent over several devices (data parallelism)
# ------------------------------------------------------------------------------------------


def local_config(config: Config, num_devices: int) -> Config:
    """The config each device of a data-parallel agent runs: ``num_envs``,
    ``buffer_capacity``, ``batch_size`` and ``total_timesteps`` divided by the device count
    (iterations, updates per iteration and every hyperparameter unchanged)."""
    for name in ("num_envs", "buffer_capacity", "batch_size"):
        value = getattr(config, name)
        if value % num_devices:
            raise ValueError(
                f"Config.{name}={value} cannot be split over {num_devices} devices: it must be "
                f"a multiple of the device count (each device holds {name} / {num_devices})")
    local = config.replace(num_envs=config.num_envs // num_devices,
                           buffer_capacity=config.buffer_capacity // num_devices,
                           batch_size=config.batch_size // num_devices)
    return local.replace(total_timesteps=config.num_iterations * local.steps_per_iteration)


# The parts of a data-parallel `TrainState` that each device holds for its own envs (with a
# leading device axis in the global state); the other fields are one copy, equal everywhere.
_PER_DEVICE = ("env", "tracer", "buffer", "reward_norm")


def data_parallel_specs(axis: str) -> training.TrainState:
    """Where each part of a data-parallel state lives: one copy of the parameters, optimizer
    states, key and counters (identical on every device), and the per-device envs, tracer
    windows, buffer and reward normaliser (leading device axis)."""
    one, per_device = PartitionSpec(), PartitionSpec(axis)
    return training.TrainState(**{name: per_device if name in _PER_DEVICE else one
                                  for name in training.TrainState._fields})


def map_per_device(state: training.TrainState, fn: Any) -> training.TrainState:
    """``state`` with ``fn`` applied to every leaf of its per-device parts."""
    return state._replace(**{name: jax.tree.map(fn, getattr(state, name))
                             for name in _PER_DEVICE})


def local_data_parallel_init(key_data: jax.Array, config: Config, *, axis: str,
                impl: Any) -> training.TrainState:
    """One device's part of a fresh data-parallel agent (``config`` is the per-device
    `local_config`): its per-device parts get a leading device axis of 1."""
    key = jax.random.wrap_key_data(key_data, impl=impl)
    return map_per_device(Agent(config, axis).init(key), lambda x: x[None])


def local_data_parallel_run(state: training.TrainState, config: Config, num_iterations: int, *,
               axis: str) -> tuple[training.TrainState, training.Metrics]:
    """One device's part of ``num_iterations`` iterations of a data-parallel agent: the
    gradients are averaged and the statistics merged over ``axis`` (`train_data_parallel`)."""
    state, metrics = Agent(config, axis).run(map_per_device(state, lambda x: x[0]),
                                             num_iterations)
    return map_per_device(state, lambda x: x[None]), metrics


def _local_data_parallel(key_data: jax.Array, config: Config, *, axis: str,
                         impl: Any) -> TrainResult:
    state = local_data_parallel_init(key_data, config, axis=axis, impl=impl)
    return TrainResult(*local_data_parallel_run(state, config, config.num_iterations, axis=axis))


@functools.cache
def _data_parallel_program(backend: str) -> Any:
    del backend  # the cache key: compiler_options() depends on the default backend

    def program(key_data, config, *, mesh, axis, impl):
        local = functools.partial(_local_data_parallel, axis=axis, impl=impl)
        # check_vma=False: the scan carries start from constants; the parameters stay equal
        # on every device because every update is a pmean (tests/test_sharding.py checks
        # each device's copy).
        return jax.shard_map(local, mesh=mesh, in_specs=(PartitionSpec(), PartitionSpec()),
                             out_specs=TrainResult(data_parallel_specs(axis), PartitionSpec()),
                             check_vma=False)(key_data, config)

    return jax.jit(program, static_argnames=("mesh", "axis", "impl"),
                   compiler_options=training.compiler_options())


def train_data_parallel(key: jax.Array, config: Config, mesh: Mesh | None = None, *,
                        axis: str = "data") -> TrainResult:
    """Trains ONE agent whose ``config.num_envs`` envs are split over the devices of
    ``mesh`` along ``axis`` (data parallelism in the Anakin style).

    Each device steps ``num_envs / n`` envs, keeps their tracer windows and
    ``buffer_capacity / n`` transitions, and samples minibatches of ``batch_size / n`` from
    them; every update averages the loss and gradient over the devices (``pmean``), so the
    parameters and optimizer states stay identical everywhere. The observation and reward
    statistics merge every device's batch moments (a ``psum``), the episode statistics and
    env-step counter sum over devices, and the losses and other metrics are means. Parameters
    start equal on every device (same key); each device's env and minibatch randomness is
    its own (the key folded with the device index). With one device it is ``train``.

    Returns a `TrainResult` whose parameters, optimizer states, key, counters and metrics are
    single copies, and whose ``state.env``, ``state.tracer``, ``state.buffer`` and
    ``state.reward_norm`` have a leading device axis ``[n, ...]``.

    Raises ``ValueError`` when ``num_envs``, ``buffer_capacity`` or ``batch_size`` is not a
    multiple of the device count.
    """
    mesh = default_mesh(axis) if mesh is None else mesh
    if axis not in mesh.shape:
        raise ValueError(f"mesh has no axis {axis!r}; its axes are {tuple(mesh.shape)}")
    local = local_config(config, mesh.shape[axis])
    if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(key)
    key_data, impl = split_key_data(key)
    replicated = NamedSharding(mesh, PartitionSpec())
    local = jax.tree.map(lambda x: put_global(x, replicated), local)
    return _data_parallel_program(jax.default_backend())(
        put_global(key_data, replicated), local, mesh=mesh, axis=axis, impl=impl)
