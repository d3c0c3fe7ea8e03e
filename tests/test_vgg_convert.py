"""VGG19 conversion: torchvision and Keras layouts reproduce their framework's features."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr import losses
from jaxsr.convert import vgg as convert_vgg
from jaxsr.errors import InputError
from jaxsr.models import vgg as vgg_lib


def _image(seed=0):
  return np.random.RandomState(seed).rand(2, 32, 32, 3).astype(np.float32)


def _jax_features(vgg, x, layers):
  return {k: np.asarray(v) for k, v in
          losses.vgg_features(vgg, jnp.asarray(x), layers=layers).items()}


def _torch_vgg19_features():
  """A faithful torchvision ``vgg19().features`` (torchvision itself is not installed)."""
  torch = pytest.importorskip("torch")
  layers, cin = [], 3
  for n, width in zip((2, 2, 4, 4, 4), (64, 128, 256, 512, 512)):
    for _ in range(n):
      layers += [torch.nn.Conv2d(cin, width, 3, padding=1), torch.nn.ReLU(inplace=False)]
      cin = width
    layers.append(torch.nn.MaxPool2d(2, 2))

  class VGG(torch.nn.Module):

    def __init__(self):
      super().__init__()
      self.features = torch.nn.Sequential(*layers)

  torch.manual_seed(0)
  return torch, VGG()


def test_torchvision_layout(tmp_path):
  torch, net = _torch_vgg19_features()
  path = tmp_path / "vgg19-random.pth"
  sd = net.state_dict()
  sd["classifier.0.weight"] = torch.zeros(4, 4)  # ignored
  torch.save(sd, path)
  dst = tmp_path / "vgg19.npz"
  assert convert_vgg.main([str(path), str(dst)]) == 0
  vgg = convert_vgg.load_vgg19(dst)
  assert len(vgg["params"]) == 16
  x = _image()
  ours = _jax_features(vgg, x, ("conv3_1", "relu4_2", "conv5_4"))
  mean = torch.tensor(vgg_lib.IMAGENET_MEAN).view(1, 3, 1, 1)
  std = torch.tensor(vgg_lib.IMAGENET_STD).view(1, 3, 1, 1)
  h = (torch.from_numpy(x).permute(0, 3, 1, 2) - mean) / std
  want = {}
  with torch.no_grad():
    for i, layer in enumerate(net.features):
      h = layer(h)
      name = vgg_lib.LAYER_NAMES[i]
      if name in ours:
        want[name] = h.permute(0, 2, 3, 1).numpy()
      if name == "conv5_4":
        break
  for name, value in ours.items():
    scale = np.abs(want[name]).max()
    np.testing.assert_allclose(value / scale, want[name] / scale, atol=2e-5, err_msg=name)
  # Truncation keeps only what a shallow loss needs.
  assert sorted(convert_vgg.load_vgg19(path, up_to="relu2_2")["params"]) == [
      "conv1_1", "conv1_2", "conv2_1", "conv2_2"]


def _keras_vgg19():
  keras = pytest.importorskip("keras")
  try:
    model = keras.applications.VGG19(weights=None, include_top=False, input_shape=(32, 32, 3))
  except Exception as e:  # pylint: disable=broad-except
    pytest.skip(f"keras VGG19 unavailable: {e}")
  return keras, model


def test_keras_layouts(tmp_path):
  pytest.importorskip("h5py")
  keras, model = _keras_vgg19()
  x = _image(1)
  probe = keras.Model(model.input, model.get_layer("block5_conv4").output)  # conv + ReLU
  probe3 = keras.Model(model.input, model.get_layer("block3_conv2").output)
  inp = keras.applications.vgg19.preprocess_input(255.0 * x)  # caffe: BGR, minus mean
  want = {"relu5_4": np.asarray(probe(inp)), "relu3_2": np.asarray(probe3(inp))}
  files = [tmp_path / "vgg19.weights.h5"]
  model.save_weights(files[0])  # Keras 3 layout
  try:  # The Keras 2 layout of vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5.
    import h5py
    from keras.src.legacy.saving import legacy_h5_format
    files.append(tmp_path / "vgg19_notop.h5")
    with h5py.File(files[1], "w") as f:
      legacy_h5_format.save_weights_to_hdf5_group(f, model)
  except ImportError:
    pass
  for path in files:
    vgg = convert_vgg.load_vgg19(path)
    ours = _jax_features(vgg, x, ("relu3_2", "relu5_4"))
    for name in want:
      scale = np.abs(want[name]).max()
      np.testing.assert_allclose(ours[name] / scale, want[name] / scale, atol=2e-5,
                                 err_msg=f"{path.name} {name}")


def test_missing_and_bad_files(tmp_path, monkeypatch):
  monkeypatch.delenv(convert_vgg.ENV_VAR, raising=False)
  with pytest.raises(InputError, match="vgg19-dcbb9e9d.pth.*notop.h5.*jaxsr.convert.vgg") as e:
    convert_vgg.resolve_vgg_path(None)
  assert "\n" not in str(e.value)
  monkeypatch.setenv(convert_vgg.ENV_VAR, "/some/vgg.npz")
  assert convert_vgg.resolve_vgg_path(None) == "/some/vgg.npz"
  assert convert_vgg.resolve_vgg_path("x.npz") == "x.npz"
  with pytest.raises(InputError, match="no such VGG19 weights file"):
    convert_vgg.load_vgg19(tmp_path / "absent.npz")
  sd = {"features.0.weight": np.zeros((64, 3, 3, 3)), "features.0.bias": np.zeros(64),
        "features.2.weight": np.zeros((32, 64, 3, 3)), "features.2.bias": np.zeros(32)}
  with pytest.raises(InputError, match="conv1_2 has kernel"):
    convert_vgg.from_torchvision(sd)
  with pytest.raises(InputError, match="no VGG19"):
    convert_vgg.from_torchvision({"x": np.zeros(3)})
