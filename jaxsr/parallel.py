"""Data parallelism over every device of every host: a 1-D mesh, sharded batches.

Contract: one mesh axis, ``data``, spanning ``jax.devices()`` (all hosts). Batches are sharded
along their leading dimension on it; parameters and optimizer state are replicated. The train
step is written once with ``jax.jit`` and these shardings, and runs unchanged on one CPU, eight
devices or many hosts (this is what ``jax.pmap`` used to be for; pmap is in maintenance mode and
itself built on jit/shard_map now). Each host feeds its own slice of the global batch; the
global array is assembled with ``jax.make_array_from_process_local_data``.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

__all__ = ["DATA_AXIS", "batch_sharding", "make_mesh", "replicate", "replicated", "shard_batch"]

DATA_AXIS = "data"


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D mesh named ``data`` over ``devices`` (default: every device of every host).

  Built with ``jax.sharding.Mesh`` (automatic axis types), since ``jax.make_mesh``'s explicit
  axes reject reshapes such as depth_to_space under jit.
  """
  devices = jax.devices() if devices is None else list(devices)
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension split over ``data``."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  """The same value on every device."""
  return NamedSharding(mesh, P())


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Places a host-side pytree (identical on every host) replicated on the mesh."""
  sharding = replicated(mesh)

  def put(x):
    x = np.asarray(jax.device_get(x))
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

  return jax.tree.map(put, tree)


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Turns this host's slice of the batch into global arrays sharded on ``data``.

  Each host passes ``global_batch / process_count`` examples; the global leading dimension is
  their concatenation in process order. The global batch must divide by the device count.
  """
  sharding = batch_sharding(mesh)
  out = {}
  for key, value in batch.items():
    value = np.asarray(value)
    global_shape = (value.shape[0] * jax.process_count(),) + value.shape[1:]
    if global_shape[0] % mesh.size:
      raise ValueError(f"global batch {global_shape[0]} does not divide over {mesh.size} devices")
    out[key] = jax.make_array_from_process_local_data(sharding, value, global_shape)
  return out
