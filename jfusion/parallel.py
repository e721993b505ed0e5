"""Device meshes and sharding helpers for data-parallel work (one host or many).

The same code runs on 1 CPU, several fake CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=4``), 8 GPUs or a TPU slice: a 1-D
mesh over every device, parameters replicated, batches split along their leading axis.
On several hosts call :func:`initialize_distributed` first; each process then feeds its
own share of the batch and :func:`shard_batch` assembles the global array.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "DATA_AXIS",
    "initialize_distributed",
    "make_mesh",
    "data_sharding",
    "replicated_sharding",
    "replicate",
    "shard_batch",
    "local_batch_size",
]

DATA_AXIS = "data"


def initialize_distributed(**kwargs: Any) -> bool:
    """Initialise ``jax.distributed`` for multi-host runs; a no-op on one host.

    Multi-host is detected from explicit ``kwargs`` (``coordinator_address``, ``num_processes``,
    ``process_id``) or from the environment variables JAX's cluster detection reads
    (``JAX_COORDINATOR_ADDRESS``, SLURM, TPU pods). Call it before any other JAX work.

    Returns:
      True when ``jax.distributed.initialize`` was called.
    """
    multi = bool(kwargs) or "JAX_COORDINATOR_ADDRESS" in os.environ or "SLURM_NTASKS" in os.environ
    if not multi:
        return False
    jax.distributed.initialize(**kwargs)
    return True


def make_mesh(*, devices: Sequence[jax.Device] | None = None, axis_name: str = DATA_AXIS) -> Mesh:
    """A 1-D mesh named ``axis_name`` over ``devices`` (default: all devices of all hosts)."""
    devs = np.asarray(jax.devices() if devices is None else list(devices))
    if devs.size == 0:
        raise ValueError("make_mesh needs at least one device")
    return Mesh(devs.reshape(-1), (axis_name,))


def data_sharding(mesh: Mesh, *, axis_name: str = DATA_AXIS) -> NamedSharding:
    """Sharding that splits the leading axis over ``axis_name`` and replicates the rest."""
    return NamedSharding(mesh, PartitionSpec(axis_name))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding that keeps a full copy on every device of ``mesh``."""
    return NamedSharding(mesh, PartitionSpec())


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Place every array leaf of ``tree`` on all devices of ``mesh`` (parameters, optimiser state)."""
    return jax.device_put(tree, replicated_sharding(mesh))


def local_batch_size(global_batch: int, mesh: Mesh) -> int:
    """The share of a global batch this process feeds; raises if the batch does not split evenly."""
    n_dev = mesh.devices.size
    if global_batch % n_dev:
        raise ValueError(f"global batch {global_batch} is not divisible by the {n_dev} devices of the mesh")
    return global_batch // jax.process_count()


def shard_batch(batch: Any, mesh: Mesh, *, axis_name: str = DATA_AXIS) -> Any:
    """Turn this process's batch (a pytree of arrays, leading axis = examples) into global sharded arrays.

    On one host the leaves are the whole batch; on ``P`` hosts each process passes its own
    ``1/P`` share and the result is the global batch laid out over all devices. The leading
    axis of the global batch must be divisible by the number of devices.
    """
    sharding = data_sharding(mesh, axis_name=axis_name)
    n_dev = mesh.devices.size

    def put(x: Any) -> jax.Array:
        x = np.asarray(x) if not isinstance(x, jax.Array) else x
        global_n = x.shape[0] * jax.process_count()
        if global_n % n_dev:
            raise ValueError(f"batch of {global_n} examples is not divisible by the {n_dev} devices of the mesh")
        if jax.process_count() == 1:
            return jax.device_put(x, sharding)
        return jax.make_array_from_process_local_data(sharding, np.asarray(x))

    return jax.tree.map(put, batch)
