"""The command line's runs on a mesh: `MeshRun`, a fresh or restored state laid out over the
devices of one or several processes, and its chunk program (seeds sharded as
`sharding.train_sharded` does, or one data-parallel agent as `sharding.train_data_parallel`),
with the interface of `run_loop.ChunkProgram`."""

from __future__ import annotations

import functools
from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from purea2c import sharding, training
from purea2c.agent import Agent
from purea2c.config import Config


def _is_spec(x: Any) -> bool:
    return isinstance(x, PartitionSpec)


def data_parallel_abstract_state(config: Config, num_devices: int) -> training.TrainState:
    """Shapes and dtypes of a data-parallel agent's state over ``num_devices`` devices as
    `MeshRun` holds it and the command line checkpoints it: a one-seed state, its per-device
    parts (each device's envs, tracer windows, buffer and reward normaliser)
    ``[1, num_devices, ...]``, every other leaf ``[1, ...]``."""
    local = jax.eval_shape(lambda key, c: Agent(c).init(key), jax.random.key(0),
                           sharding.local_config(config, num_devices))

    def grow(size):
        return lambda x: jax.ShapeDtypeStruct((size, *x.shape), x.dtype)

    return jax.tree.map(grow(1), sharding.map_per_device(local, grow(num_devices)))


class MeshRun:
    """A run of the command line over the devices of a mesh, in chunks: its fresh state
    (`init`), a checkpointed state put back on the devices (`place`), and the chunk program
    (``mesh_run(length)(state, mesh_run.config) -> (state, metrics)``, compiled once per
    length), as `run_loop.ChunkProgram` is for one device.

    The state keeps the layout of the unsharded vmapped run, a leading seed axis on every
    leaf (and metrics ``[seeds, iterations]``), so that checkpoints, metrics and the other
    commands read it alike. Two ways to spread it:

    - seeds (``data_parallel=False``): S independent seeds sharded along mesh axis
      "seeds"; each device vmaps `training.init` and `training.run` over its S / n seeds,
      as `train_sharded` does, with no collective.
    - one agent (``data_parallel=True``, S = 1) whose envs are split over mesh axis "data",
      computed by the same local functions as `train_data_parallel` (gradients averaged,
      statistics merged at every update): each device holds its own part of the envs,
      tracer windows, buffer and reward normaliser (``[1, n, ...]``, sharded along n), and a
      copy of everything else (replicated).

    The mesh may span the devices of several processes; every process then builds the same
    `MeshRun` and makes the same calls, and holds its own devices' part of the state.
    """

    def __init__(self, config: Config, num_seeds: int, devices: Sequence[jax.Device],
                 data_parallel: bool = False):
        self.num_seeds, self.data_parallel = num_seeds, data_parallel
        self.axis = "data" if data_parallel else "seeds"
        self.mesh = jax.make_mesh((len(devices),), (self.axis,),
                                  axis_types=(jax.sharding.AxisType.Auto,), devices=devices)
        if data_parallel:
            if num_seeds != 1:
                raise ValueError(f"a data-parallel run trains one agent, not {num_seeds} seeds")
            self._local = sharding.local_config(config, len(devices))
            self.specs = jax.tree.map(lambda spec: PartitionSpec(None, *spec),
                                      sharding.data_parallel_specs(self.axis), is_leaf=_is_spec)
            self._key_spec = self._metric_spec = PartitionSpec()
        else:
            sharding.check_even(num_seeds, self.mesh, self.axis)
            self._local = config
            self.specs = self._key_spec = self._metric_spec = PartitionSpec(self.axis)
        self._global_config = config
        replicated = NamedSharding(self.mesh, PartitionSpec())
        # The config as the programs take it: its traced leaves placed on the mesh (the
        # per-device `local_config` for one data-parallel agent).
        self.config = jax.tree.map(lambda x: sharding.put_global(x, replicated), self._local)
        options = training.compiler_options()
        self._init = jax.jit(self._init_program, static_argnums=2, compiler_options=options)
        self._run = jax.jit(self._run_program, static_argnums=2)
        self._compiled: dict[int, Any] = {}
        self._abstract: Any = None

    # -- the programs ----------------------------------------------------------------------

    def _local_init(self, key_data: jax.Array, config: Config, impl: Any) -> Any:
        if self.data_parallel:
            state = sharding.local_data_parallel_init(key_data[0], config, axis=self.axis,
                                                      impl=impl)
            return training.strip_weak_types(jax.tree.map(lambda x: x[None], state))
        keys = jax.random.wrap_key_data(key_data, impl=impl)
        state = jax.vmap(Agent(config).init)(keys)
        return training.strip_weak_types(state)

    def _local_run(self, state: Any, config: Config, length: int) -> Any:
        if self.data_parallel:
            state, metrics = sharding.local_data_parallel_run(
                jax.tree.map(lambda x: x[0], state), config, length, axis=self.axis)
            return jax.tree.map(lambda x: x[None], (state, metrics))
        agent = Agent(config)
        return jax.vmap(lambda one: agent.run(one, length))(state)

    def _init_program(self, key_data: jax.Array, config: Config, impl: Any) -> Any:
        # check_vma=False, as in `train_sharded` and `train_data_parallel`: the scan carries
        # start from constants; a data-parallel agent's parameters stay equal everywhere
        # because every update is a pmean.
        return jax.shard_map(functools.partial(self._local_init, impl=impl), mesh=self.mesh,
                             in_specs=(self._key_spec, PartitionSpec()), out_specs=self.specs,
                             check_vma=False)(key_data, config)

    def _run_program(self, state: Any, config: Config, length: int) -> Any:
        return jax.shard_map(functools.partial(self._local_run, length=length),
                             mesh=self.mesh, in_specs=(self.specs, PartitionSpec()),
                             out_specs=(self.specs, self._metric_spec),
                             check_vma=False)(state, config)

    # -- states ----------------------------------------------------------------------------

    def abstract_state(self) -> Any:
        """Shapes and dtypes of the state (no sharding): the ``like`` of its checkpoints."""
        if self._abstract is None:
            if self.data_parallel:
                self._abstract = data_parallel_abstract_state(self._global_config,
                                                              self.mesh.size)
            else:
                keys = jax.random.split(jax.random.key(0), self.num_seeds)
                self._abstract = jax.eval_shape(
                    lambda k, c: jax.vmap(Agent(c).init)(k), keys, self._local)
        return self._abstract

    def shardings(self) -> Any:
        """The `NamedSharding` of every leaf of the state."""
        return jax.tree.map(
            lambda spec, part: jax.tree.map(lambda _: NamedSharding(self.mesh, spec), part),
            self.specs, self.abstract_state(), is_leaf=_is_spec)

    def init(self, seed: int) -> Any:
        """The fresh state of seeds ``jax.random.split(jax.random.key(seed), S)`` (of the
        one agent: the first of them, as a one-seed run on one device)."""
        keys = jax.random.split(jax.random.key(seed), self.num_seeds)
        key_data, impl = sharding.split_key_data(keys)
        return self._init(
            sharding.put_global(key_data, NamedSharding(self.mesh, self._key_spec)),
            self.config, impl)

    def place(self, state: Any) -> Any:
        """``state`` (whole on every process, e.g. a restored checkpoint) laid out on the
        mesh; every process passes the same value and keeps its own devices' part."""
        def put(x, target):
            if sharding.is_key(x):
                data = sharding.put_global(jax.random.key_data(x), target)
                return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
            return sharding.put_global(x, target)

        return jax.tree.map(put, state, self.shardings())

    # -- the chunk program, as `run_loop.ChunkProgram` -------------------------------------

    def __call__(self, length: int) -> Any:
        """The executable of ``length`` iterations: ``(state, self.config) -> (state,
        metrics)``, compiled on the first call for that length."""
        if length not in self._compiled:
            like = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                                self.abstract_state(), self.shardings())
            self._compiled[length] = self._run.lower(like, self.config, length).compile(
                training.compiler_options())
        return self._compiled[length]

    def metric_dtypes(self, length: int) -> dict[str, np.dtype]:
        """``{metric name: dtype}`` of the program's metrics, in the order of `Metrics`."""
        info = self(length).out_info[1]
        return {name: np.dtype(getattr(info, name).dtype) for name in info._fields}
