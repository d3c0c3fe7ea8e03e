"""Data parallelism over every device of every host: a 1-D mesh, sharded batches.

Contract: one mesh axis, ``data``, spanning ``jax.devices()`` (all hosts). Batches are sharded
along their batch dimension on it (the leading one; the second one of a stack of batches
``[k, B, ...]``); parameters and optimizer state are replicated. The train
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


def batch_sharding(mesh: Mesh, *, batch_axis: int = 0) -> NamedSharding:
  """Dimension ``batch_axis`` (default the leading one) split over ``data``."""
  return NamedSharding(mesh, P(*([None] * batch_axis), DATA_AXIS))


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


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh, *,
                batch_axis: int = 0) -> dict[str, jax.Array]:
  """Turns this host's slice of the batch into global arrays sharded on ``data``.

  Each host passes ``global_batch / process_count`` examples along ``batch_axis`` (1 for a
  stack of batches ``[k, B, ...]``); the global batch dimension is their concatenation in
  process order. The global batch must divide by the device count.
  """
  sharding = batch_sharding(mesh, batch_axis=batch_axis)
  out = {}
  for key, value in batch.items():
    value = np.asarray(value)
    a = batch_axis
    global_shape = value.shape[:a] + (value.shape[a] * jax.process_count(),) + value.shape[a + 1:]
    if global_shape[a] % mesh.size:
      raise ValueError(f"global batch {global_shape[a]} does not divide over {mesh.size} devices")
    if jax.process_count() == 1:  # the same array; device_put is ~2x cheaper per step
      out[key] = jax.device_put(value, sharding)
    else:
      out[key] = jax.make_array_from_process_local_data(sharding, value, global_shape)
  return out
