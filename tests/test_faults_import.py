"""Bad-input and fault matrix of the weights importers (issue 20): one test per row.

Every file is crafted here, in ``tmp_path``, a few hundred bytes at most: ``.pth`` files are
written by ``_torch_save`` below (the two ``torch.save`` layouts, byte for byte, without torch),
``.mat`` files by scipy. Each row calls the library and checks the ``InputError`` names the file
and the cause; a few rows also run the real entry point ``python -m jaxsr convert FILE --output
DIR`` and check the promise of the README's "Bad input" paragraph: exit status 2, exactly one
line on stderr, no traceback, nothing written.
"""

from __future__ import annotations

import collections
import io
import os
import pathlib
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from jaxsr import convert
from jaxsr import models
from jaxsr.errors import InputError

REPO = pathlib.Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------
# A torch.save writer (pickle opcodes written by hand: the globals are torch's, not ours).


def _op(value) -> bytes:
  """The protocol-2 opcodes that push ``value`` (an int, str or tuple of them)."""
  return pickle.dumps(value, protocol=2)[2:-1]


Tensor = collections.namedtuple("Tensor", "storage offset size stride")
Storage = collections.namedtuple("Storage", "dtype numel data")  # data: the bytes in the file


def _data_pickle(tensors: dict[str, Tensor], storages: dict[str, Storage], legacy: bool) -> bytes:
  out = [b"\x80\x02}"]  # PROTO 2, EMPTY_DICT
  for key, t in tensors.items():
    s = storages[t.storage]
    pid = (b"(" + _op("storage") + f"ctorch\n{s.dtype}\n".encode() + _op(t.storage) + _op("cpu")
           + _op(s.numel) + (b"N" if legacy else b"") + b"tQ")  # MARK ... TUPLE, BINPERSID
    out.append(_op(key) + b"ctorch._utils\n_rebuild_tensor_v2\n(" + pid + _op(t.offset)
               + _op(tuple(t.size)) + _op(tuple(t.stride)) + b"\x89" + b"N" + b"tRs")
  out.append(b".")
  return b"".join(out)


def _torch_save(path: pathlib.Path, tensors: dict[str, Tensor], storages: dict[str, Storage], *,
                legacy: bool = False) -> pathlib.Path:
  """Writes ``tensors`` as ``torch.save`` does (zip layout, or the legacy one)."""
  body = _data_pickle(tensors, storages, legacy)
  if legacy:
    parts = [pickle.dumps(0x1950A86A20F9469CFC6C, 2), pickle.dumps(1001, 2),
             pickle.dumps({"protocol_version": 1001, "little_endian": True}, 2), body,
             pickle.dumps(list(storages), 2)]
    for s in storages.values():
      parts += [struct.pack("<q", s.numel), s.data]
    path.write_bytes(b"".join(parts))
  else:
    with zipfile.ZipFile(path, "w") as zf:
      zf.writestr("archive/data.pkl", body)
      zf.writestr("archive/byteorder", "little")
      for key, s in storages.items():
        zf.writestr(f"archive/data/{key}", s.data)
      zf.writestr("archive/version", "3\n")
  return path


def _float_storage(values) -> Storage:
  a = np.asarray(values, "<f4").ravel()
  return Storage("FloatStorage", a.size, a.tobytes())


def _small_file(path: pathlib.Path, *, legacy: bool = False) -> pathlib.Path:
  """A valid two-tensor state dict."""
  return _torch_save(path, {"conv.weight": Tensor("0", 0, (2, 3), (3, 1)),
                            "conv.bias": Tensor("1", 0, (2,), (1,))},
                     {"0": _float_storage(np.arange(6)), "1": _float_storage([7, 8])},
                     legacy=legacy)


def _edsr_sd(nf: int = 4, nb: int = 1) -> dict[str, np.ndarray]:
  """A BasicSR EDSR x2 state dict of ``nb`` blocks of ``nf`` features."""
  r = lambda *s: np.full(s, 0.01, np.float32)  # noqa: E731
  sd = {"conv_first.weight": r(nf, 3, 3, 3), "conv_first.bias": r(nf)}
  for i in range(nb):
    for c in (1, 2):
      sd[f"body.{i}.conv{c}.weight"], sd[f"body.{i}.conv{c}.bias"] = r(nf, nf, 3, 3), r(nf)
  sd["conv_after_body.weight"], sd["conv_after_body.bias"] = r(nf, nf, 3, 3), r(nf)
  sd["upsample.0.weight"], sd["upsample.0.bias"] = r(4 * nf, nf, 3, 3), r(4 * nf)
  sd["conv_last.weight"], sd["conv_last.bias"] = r(3, nf, 3, 3), r(3)
  return sd


def _save_sd(path: pathlib.Path, sd: dict[str, np.ndarray]) -> pathlib.Path:
  tensors, storages = {}, {}
  for i, (k, v) in enumerate(sd.items()):
    storages[str(i)] = _float_storage(v)
    tensors[k] = Tensor(str(i), 0, v.shape, tuple(s // 4 for s in v.strides))
  return _torch_save(path, tensors, storages)


def _refused(path, match: str, **kw) -> str:
  """``convert.load_weights(path)`` raises one ``InputError`` line naming the file."""
  with pytest.raises(InputError, match=match) as info:
    convert.load_weights(path, **kw)
  message = str(info.value)
  assert str(path) in message and "\n" not in message, message
  return message


def _cli_refuses(tmp_path: pathlib.Path, path: pathlib.Path, match: str, *args: str) -> str:
  """``python -m jaxsr convert`` exits 2 with one stderr line and writes nothing."""
  out = tmp_path / "ckpt"
  proc = subprocess.run([sys.executable, "-m", "jaxsr", "convert", str(path), "--output",
                         str(out), *args], capture_output=True, text=True, cwd=REPO, timeout=300)
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert proc.returncode == 2, proc.stderr
  assert len(lines) == 1 and lines[0].startswith("jaxsr: error: "), proc.stderr
  assert "Traceback" not in proc.stderr and match in lines[0], lines
  assert not out.exists()
  return lines[0]


# ----------------------------------------------------------------------------
# The writer is what torch writes (skipped without torch).


@pytest.mark.slow  # imports torch
@pytest.mark.parametrize("legacy", [False, True])
def test_crafted_files_are_what_torch_reads(tmp_path, legacy):
  torch = pytest.importorskip("torch")
  path = _small_file(tmp_path / "small.pth", legacy=legacy)
  theirs = torch.load(path, weights_only=True)
  ours = convert.read_state_dict(path)
  assert set(ours) == set(theirs)
  for k in ours:
    np.testing.assert_array_equal(ours[k], theirs[k].numpy())


# ----------------------------------------------------------------------------
# Row 9: declared sizes are checked against the bytes in the file before anything is allocated.


@pytest.mark.parametrize("legacy", [False, True])
def test_huge_tensor_on_a_tiny_storage_is_refused(tmp_path, legacy):
  # What torch.save(torch.zeros(1).expand(200000, 200000)) writes: 4 bytes, 149 GiB declared.
  path = _torch_save(tmp_path / "huge.pth", {"w": Tensor("0", 0, (200000, 200000), (0, 0))},
                     {"0": _float_storage([0.0])}, legacy=legacy)
  message = _refused(path, r"tensor 'w' declares 200000x200000 float32 \(149\.0 GiB\)")
  assert "4 bytes" in message


def test_storage_larger_than_its_zip_member_is_refused(tmp_path):
  storage = Storage("FloatStorage", 200000 * 200000, b"\0" * 16)
  path = _torch_save(tmp_path / "big.pth", {"w": Tensor("0", 0, (200000, 200000), (200000, 1))},
                     {"0": storage})
  _refused(path, r"tensor 'w': storage archive/data/0 declares 40000000000 float32 elements "
                 r"\(149\.0 GiB\) but the archive holds 16 bytes")


def test_storage_larger_than_a_legacy_file_is_refused(tmp_path):
  storage = Storage("FloatStorage", 200000 * 200000, b"\0" * 16)
  path = _torch_save(tmp_path / "big.pth", {"w": Tensor("0", 0, (200000, 200000), (200000, 1))},
                     {"0": storage}, legacy=True)
  _refused(path, r"tensor 'w': storage '0': declares 40000000000 float32 elements \(149\.0 GiB\) "
                 r"but only 16 bytes remain")


@pytest.mark.parametrize("legacy", [False, True])
def test_tensor_reaching_past_its_storage_is_refused(tmp_path, legacy):
  path = _torch_save(tmp_path / "past.pth", {"w": Tensor("0", 2, (2, 3), (3, 1))},
                     {"0": _float_storage(np.arange(6))}, legacy=legacy)
  _refused(path, r"tensor 'w': size \(2, 3\) .* reaches element 8 of a 6-element "
                 r"storage")


def test_huge_pickle_memo_index_is_read_without_allocating(tmp_path):
  # LONG_BINPUT 1902471009: the C unpickler would size its memo table to that (15 GB).
  path = tmp_path / "memo.pth"
  head = (pickle.dumps(0x1950A86A20F9469CFC6C, 2) + pickle.dumps(1001, 2)
          + pickle.dumps({}, 2))
  bomb = b"\x80\x02}r" + struct.pack("<I", 1902471009) + b"."
  path.write_bytes(head + bomb + pickle.dumps([], 2))
  _refused(path, r"no tensors found \(keys: \)")


def test_huge_bytearray_is_refused_without_allocating(tmp_path):
  path = tmp_path / "bytearray.pth"
  path.write_bytes(b"\x80\x05\x96" + struct.pack("<Q", 1 << 60) + b"x")
  _refused(path, r"truncated or corrupt PyTorch weights file \(UnpicklingError: a bytearray")


# ----------------------------------------------------------------------------
# Row 10: files cut short say "truncated or corrupt"; misfits name the key or field.


@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_zip_pth_cut_short(tmp_path, fraction):
  path = _save_sd(tmp_path / "edsr_x2.pth", _edsr_sd())
  data = path.read_bytes()
  path.write_bytes(data[:int(len(data) * fraction)])
  message = _refused(path, "truncated or corrupt PyTorch weights file")
  assert "persistent IDs" not in message


def test_zip_pth_with_a_damaged_member(tmp_path):
  path = _small_file(tmp_path / "crc.pth")
  data = bytearray(path.read_bytes())
  i = data.index(np.float32(7).tobytes())  # the bias storage's first value
  data[i] ^= 0xFF
  path.write_bytes(bytes(data))
  _refused(path, r"truncated or corrupt PyTorch weights file \(BadZipFile: Bad CRC-32")


@pytest.mark.parametrize("cut", [40, 120, -12, -3])
def test_legacy_pth_cut_short(tmp_path, cut):
  path = _small_file(tmp_path / "legacy.pth", legacy=True)
  path.write_bytes(path.read_bytes()[:cut])
  _refused(path, "truncated")


def test_mat_cut_short(tmp_path):
  scipy_io = pytest.importorskip("scipy.io")
  path = tmp_path / "srcnn_x3.mat"
  rng = np.random.default_rng(0)
  scipy_io.savemat(path, {"weights_conv1": rng.normal(size=(81, 64)),
                          "biases_conv1": np.zeros((64, 1))})
  path.write_bytes(path.read_bytes()[:-300])
  _refused(path, r"truncated or corrupt MATLAB file")


@pytest.mark.slow  # imports tensorflow
def test_pb_cut_short(tmp_path):
  tf = pytest.importorskip("tensorflow")
  graph = tf.compat.v1.GraphDef()
  node = graph.node.add(name="w", op="Const")
  node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.ones((3, 3, 1, 8), np.float32)))
  path = tmp_path / "FSRCNN_x3.pb"
  path.write_bytes(graph.SerializeToString()[:-40])
  _refused(path, "truncated or corrupt TensorFlow GraphDef")


@pytest.mark.slow  # imports tensorflow
def test_pb_constant_larger_than_the_file(tmp_path):
  tf = pytest.importorskip("tensorflow")
  graph = tf.compat.v1.GraphDef()
  node = graph.node.add(name="w", op="Const")
  tensor = node.attr["value"].tensor
  tensor.dtype = tf.float32.as_datatype_enum
  tensor.tensor_shape.dim.add(size=200000)
  tensor.tensor_shape.dim.add(size=200000)
  tensor.float_val.append(1.0)  # one value, repeated to the shape by TensorFlow
  inp = graph.node.add(name="x", op="Placeholder")
  conv = graph.node.add(name="conv", op="Conv2D")
  conv.input.extend(["x", "w"])
  path = tmp_path / "ESPCN_x3.pb"
  path.write_bytes(graph.SerializeToString())
  del inp
  _refused(path, r"constant 'w' declares shape \[200000, 200000\]")


def test_renamed_key_names_the_closest_layout_and_the_key(tmp_path):
  sd = _edsr_sd()
  sd["conv_afterbody.weight"] = sd.pop("conv_after_body.weight")
  path = _save_sd(tmp_path / "edsr_x2.pth", sd)
  message = _refused(path, "unrecognised state dict layout: closest is BasicSR EDSR")
  assert "'conv_after_body.weight' is missing" in message
  assert "the file has 'conv_afterbody.weight' instead" in message


def test_renamed_block_key_names_the_expected_key(tmp_path):
  sd = _edsr_sd(nb=2)
  sd["body.1.conv_1.weight"] = sd.pop("body.1.conv1.weight")
  path = _save_sd(tmp_path / "edsr_x2.pth", sd)
  _refused(path, r"unexpected key 'body.1.conv_1.weight' \(4, 4, 3, 3\) for edsr_baseline x2 .*"
                 r"nearest expected key: 'body.1.conv1.weight'")


def test_misspelt_model_override_names_the_field_and_the_near_one(tmp_path):
  with pytest.raises(InputError, match=r"^overrides: model 'edsr' has no field 'num_blok'; "
                                       r"did you mean "
                                       r"'num_block'\?$"):
    models.get_model("edsr", scale=2, num_blok=4)
  with pytest.raises(InputError, match=r"no field 'wibble' \(fields: .*num_block"):
    models.get_model("edsr", scale=2, wibble=4)
  path = _save_sd(tmp_path / "edsr_x2.pth", _edsr_sd())
  _refused(path, "has no field 'num_blok'; did you mean 'num_block'", num_blok=4)


def test_misspelt_override_in_a_training_config():
  from jaxsr.recipes import common  # pylint: disable=g-import-not-at-top
  from jaxsr.tasks import base  # pylint: disable=g-import-not-at-top

  config = common.base_config()
  config.model, config.scale, config.model_overrides = "edsr", 2, {"num_fet": 8}
  with pytest.raises(InputError, match="^config.model_overrides: model 'edsr' has no field "
                                       "'num_fet'; did you mean 'num_feat'"):
    base.model_from_config(config)


# ----------------------------------------------------------------------------
# Rows that already held: missing, empty, corrupt and unknown files, unknown names.


def test_missing_file(tmp_path):
  _refused(tmp_path / "missing.pth", "no such weights file")


@pytest.mark.parametrize("name", ["empty.pth", "empty_x3.mat", "empty_x3.pb"])
def test_empty_file(tmp_path, name):
  path = tmp_path / name
  path.write_bytes(b"")
  _refused(path, r"empty file \(0 bytes\)")


def test_garbage_pth(tmp_path):
  path = tmp_path / "bad.pth"
  path.write_bytes(b"\x80\x02garbage")
  _refused(path, "truncated or corrupt PyTorch weights file")


def test_unknown_format(tmp_path):
  path = tmp_path / "weights.xyz"
  path.write_bytes(b"hello")
  _refused(path, "unknown weights format")


def test_safetensors_file_of_unknown_layout_is_read_then_refused(tmp_path):
  path = tmp_path / "model.safetensors"
  header = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
  path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
  _refused(path, r"unsupported architecture: .*first keys: w\)")


def test_unknown_model_name(tmp_path):
  path = _small_file(tmp_path / "small.pth")
  with pytest.raises(InputError, match="model: unknown model 'edsrr'"):
    convert.load_weights(path, model="edsrr")


def test_state_dict_of_unknown_layout(tmp_path):
  path = _small_file(tmp_path / "small.pth")
  _refused(path, r"unrecognised state dict layout: no key fits a known layout \(first keys: "
                 r"conv.weight, conv.bias\)")


# ----------------------------------------------------------------------------
# Malicious pickles: refused before anything runs, in both layouts.


class _Evil:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f"touch {self.marker}",))


def _evil_legacy(path: pathlib.Path, marker: pathlib.Path) -> pathlib.Path:
  """A legacy file with a valid header whose state-dict pickle runs a command."""
  magic = pickle.dumps(0x1950A86A20F9469CFC6C, 2)
  path.write_bytes(magic + pickle.dumps(1001, 2) + pickle.dumps({}, 2)
                   + pickle.dumps({"conv_first.weight": _Evil(str(marker))}, 2)
                   + pickle.dumps([], 2))
  return path


def _evil_zip(path: pathlib.Path, marker: pathlib.Path) -> pathlib.Path:
  with zipfile.ZipFile(path, "w") as zf:
    zf.writestr("archive/data.pkl", pickle.dumps({"w": _Evil(str(marker))}, protocol=2))
    zf.writestr("archive/version", "3\n")
  return path


@pytest.mark.parametrize("make", [_evil_legacy, _evil_zip], ids=["legacy", "zip"])
def test_malicious_pickle_is_refused_and_not_run(tmp_path, make):
  marker = tmp_path / "pwned"
  path = make(tmp_path / "evil.pth", marker)
  _refused(path, r"refusing to load: the file references (posix|nt)\.system")
  assert not marker.exists()


def test_pickled_class_with_state_is_refused(tmp_path):
  # BUILD on an allowed global must not reach an arbitrary __setstate__: only state dict
  # globals resolve, so a pickled object of any other class is refused at its GLOBAL.
  path = tmp_path / "obj.pth"
  with zipfile.ZipFile(path, "w") as zf:
    zf.writestr("archive/data.pkl", pickle.dumps({"w": io.BytesIO(b"x")}, protocol=2))
  _refused(path, r"refusing to load: the file references (_io|io)\.BytesIO")


# ----------------------------------------------------------------------------
# Through the real entry point: exit 2, one line, no traceback, nothing written (slow: each
# starts a process that imports jax).


@pytest.mark.slow  # a fresh process imports jax
def test_cli_truncated_zip(tmp_path):
  path = _save_sd(tmp_path / "edsr_x2.pth", _edsr_sd())
  path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
  line = _cli_refuses(tmp_path, path, "truncated or corrupt PyTorch weights file")
  assert str(path) in line


@pytest.mark.slow  # a fresh process imports jax
def test_cli_huge_tensor(tmp_path):
  path = _torch_save(tmp_path / "huge.pth", {"w": Tensor("0", 0, (200000, 200000), (0, 0))},
                     {"0": _float_storage([0.0])})
  _cli_refuses(tmp_path, path, "tensor 'w' declares 200000x200000 float32 (149.0 GiB)")


@pytest.mark.slow  # a fresh process imports jax
def test_cli_malicious_pickle(tmp_path):
  marker = tmp_path / "pwned"
  path = _evil_legacy(tmp_path / "evil.pth", marker)
  _cli_refuses(tmp_path, path, "refusing to load")
  assert not marker.exists()


@pytest.mark.slow  # a fresh process imports jax
def test_cli_renamed_key(tmp_path):
  sd = _edsr_sd()
  sd["conv_afterbody.weight"] = sd.pop("conv_after_body.weight")
  path = _save_sd(tmp_path / "edsr_x2.pth", sd)
  _cli_refuses(tmp_path, path, "the file has 'conv_afterbody.weight' instead")
