"""PyTorch state dicts -> jaxsr: BasicSR's EDSR, RCAN, MSRResNet, RRDBNet, and FSRCNN-pytorch.

Files are read by :mod:`jaxsr.convert.torch_io` (a restricted unpickler: no code from the file
runs, torch is not needed). BasicSR's ``{'params': ...}`` / ``{'params_ema': ...}`` wrappers are
unwrapped (``params_ema`` preferred, as BasicSR and Real-ESRGAN evaluate).

Layouts (PyTorch key -> jaxsr parameter; conv ``weight [out, in, kh, kw]`` -> ``kernel
[kh, kw, in, out]``; convs feeding ``nn.PixelShuffle`` get their output channels permuted with
:func:`jaxsr.models.common.pixel_shuffle_permutation`, since jaxsr's ``depth_to_space`` uses
TensorFlow's channel order):

* EDSR (``basicsr/archs/edsr_arch.py``): ``conv_first``, ``body.N.conv1/conv2``,
  ``conv_after_body``, ``upsample.0`` (``upsample.2`` ... for x4/x8), ``conv_last``.
* RCAN (``rcan_arch.py``): ``conv_first``, ``body.G.residual_group.B.rcab.0`` (conv1),
  ``.rcab.2`` (conv2), ``.rcab.3.attention.1`` / ``.attention.3`` (channel attention),
  ``body.G.conv``, ``conv_after_body``, ``upsample.*``, ``conv_last``.
* MSRResNet (``srresnet_arch.py``): ``conv_first``, ``body.N.conv1/conv2``, ``upconv1``
  (``upconv2`` at x4), ``conv_hr``, ``conv_last``.
* RRDBNet (``rrdbnet_arch.py``; ESRGAN and Real-ESRGAN x4plus): ``conv_first``,
  ``body.N.rdb{1,2,3}.conv{1..5}``, ``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``,
  ``conv_last``. The original ESRGAN repository's names (``RRDB_trunk.N.RDB1``,
  ``trunk_conv``, ``upconv1/2``, ``HRconv``) are renamed to these. BasicSR's x2/x1 variants
  (pixel-unshuffled input, ``conv_first`` with 12/48 input channels) are not supported.
* FSRCNN-pytorch (yjn870/FSRCNN-pytorch): ``first_part.0`` conv 5x5 + ``first_part.1`` PReLU,
  ``mid_part.0/1`` shrink, ``mid_part.{2+2i}/{3+2i}`` mapping, ``mid_part.{2+2m}/{3+2m}`` expand,
  ``last_part`` = ``ConvTranspose2d(d, 1, 9, stride=s, padding=4, output_padding=s-1)`` ->
  ``FSRCNN(head='deconv')`` (``weight [in, out, kh, kw]`` -> ``kernel [kh, kw, in, out]``).
  The stride is not stored: the scale comes from the caller or the file name's ``xN``.

Scales and sizes (features, blocks, groups, growth, reduction) are read from the shapes; every
key's shape is then checked against the model built from them, and the first key that does not
fit is named.
"""

from __future__ import annotations

import os
import pathlib
import re
from typing import Any

import numpy as np

from jaxsr import color
from jaxsr import models
from jaxsr.convert import _common
from jaxsr.convert import torch_io
from jaxsr.errors import InputError
from jaxsr.models.common import pixel_shuffle_permutation

FAMILIES = ("edsr", "rcan", "msrresnet", "rrdbnet", "fsrcnn")
_FAMILY_OF_NAME = {"edsr": "edsr", "edsr_baseline": "edsr", "rcan": "rcan",
                   "msrresnet": "msrresnet", "rrdbnet": "rrdbnet", "fsrcnn": "fsrcnn",
                   "fsrcnn_s": "fsrcnn"}

_ESRGAN_RENAMES = [(r"^RRDB_trunk\.", "body."), (r"\.RDB(\d)\.", r".rdb\1."),
                   (r"^trunk_conv\.", "conv_body."), (r"^upconv1\.", "conv_up1."),
                   (r"^upconv2\.", "conv_up2."), (r"^HRconv\.", "conv_hr.")]


# ----------------------------------------------------------------------------
# Rules.


def _conv(target: str, perm: np.ndarray | None = None) -> dict[str, _common.Rule]:
  """``<key>.weight``/``.bias`` of a Conv2d -> ``target/kernel``/``bias`` (optionally permuted)."""

  def kernel(a):
    k = a.transpose(2, 3, 1, 0)
    return k[..., perm] if perm is not None else k

  def bias(a):
    return a[perm] if perm is not None else a

  return {"weight": _common.Rule(f"{target}/kernel", kernel,
                                 lambda s: (s[3], s[2], s[0], s[1])),
          "bias": _common.Rule(f"{target}/bias", bias, lambda s: s)}


def _add(rules: dict, key: str, target: str, perm=None, bias: bool = True) -> None:
  for suffix, rule in _conv(target, perm).items():
    if suffix == "bias" and not bias:
      continue
    rules[f"{key}.{suffix}"] = rule


def _count(sd: dict, pattern: str) -> int:
  rx = re.compile(pattern)
  found = {int(m.group(1)) for k in sd for m in [rx.match(k)] if m}
  return (max(found) + 1) if found else 0


def _missing(sd, key, path, family: str | None = None) -> InputError:
  near = _common.nearest(key, list(sd))
  what = f" for {_LAYOUTS[family][0]}" if family else ""
  return InputError(f"{path}: missing key {key!r}{what}"
                    + (f"; the file has {near!r} instead (renamed?)" if near else ""))


def _shape(sd, key, path) -> tuple[int, ...]:
  if key not in sd:
    raise _missing(sd, key, path, detect_family(sd))
  return tuple(sd[key].shape)


def _upsampler_rules(rules, key_prefix, target_prefix, scale, num_feat) -> None:
  for i, r in enumerate(models.common.upsample_stages(scale)):
    _add(rules, f"{key_prefix}.{2 * i}", f"{target_prefix}/conv_{i}",
         pixel_shuffle_permutation(num_feat, r))


def _stage_scale(sd, keys: list[str], num_feat: int, path) -> int:
  """Scale of a chain of sub-pixel convs (``keys`` that exist, in order)."""
  present = [k for k in keys if k in sd]
  if not present:
    raise _missing(sd, keys[0], path, detect_family(sd))
  ratio = sd[present[0]].shape[0] // max(num_feat, 1)
  if ratio == 9 and len(present) == 1:
    return 3
  if ratio == 4:
    return 2 ** len(present)
  raise InputError(f"{path}: key {present[0]!r} has shape {tuple(sd[present[0]].shape)}; "
                   f"expected {4 * num_feat} or {9 * num_feat} output channels")


# ----------------------------------------------------------------------------
# Families.


def _edsr(sd, path, name):
  nf, ch = _shape(sd, "conv_first.weight", path)[:2]
  nb = _count(sd, r"body\.(\d+)\.")  # any key of a block: a renamed one is then named
  scale = _stage_scale(sd, ["upsample.0.weight", "upsample.2.weight", "upsample.4.weight"], nf, path)
  name = name or ("edsr" if (nf, nb) == (256, 32) else "edsr_baseline")
  inferred = dict(num_feat=nf, num_block=nb, channels=ch)
  rules: dict[str, _common.Rule] = {}
  _add(rules, "conv_first", "conv_first")
  for i in range(nb):
    _add(rules, f"body.{i}.conv1", f"body_{i}/conv1")
    _add(rules, f"body.{i}.conv2", f"body_{i}/conv2")
  _add(rules, "conv_after_body", "conv_after_body")
  _upsampler_rules(rules, "upsample", "upsample", scale, nf)
  _add(rules, "conv_last", "conv_last")
  return name, scale, inferred, rules


def _rcan(sd, path, name):
  nf, ch = _shape(sd, "conv_first.weight", path)[:2]
  ng = _count(sd, r"body\.(\d+)\.")
  nb = _count(sd, r"body\.0\.residual_group\.(\d+)\.")
  squeeze = _shape(sd, "body.0.residual_group.0.rcab.3.attention.1.weight", path)[0]
  scale = _stage_scale(sd, ["upsample.0.weight", "upsample.2.weight", "upsample.4.weight"], nf, path)
  inferred = dict(num_feat=nf, num_group=ng, num_block=nb, reduction=nf // max(squeeze, 1),
                  channels=ch)
  rules: dict[str, _common.Rule] = {}
  _add(rules, "conv_first", "conv_first")
  for g in range(ng):
    for b in range(nb):
      key, tgt = f"body.{g}.residual_group.{b}.rcab", f"body_{g}/block_{b}"
      _add(rules, f"{key}.0", f"{tgt}/conv1")
      _add(rules, f"{key}.2", f"{tgt}/conv2")
      _add(rules, f"{key}.3.attention.1", f"{tgt}/ca/conv_down")
      _add(rules, f"{key}.3.attention.3", f"{tgt}/ca/conv_up")
    _add(rules, f"body.{g}.conv", f"body_{g}/conv")
  _add(rules, "conv_after_body", "conv_after_body")
  _upsampler_rules(rules, "upsample", "upsample", scale, nf)
  _add(rules, "conv_last", "conv_last")
  return name or "rcan", scale, inferred, rules


def _msrresnet(sd, path, name):
  nf, ch = _shape(sd, "conv_first.weight", path)[:2]
  nb = _count(sd, r"body\.(\d+)\.")
  scale = _stage_scale(sd, ["upconv1.weight", "upconv2.weight", "upconv3.weight"], nf, path)
  inferred = dict(num_feat=nf, num_block=nb, channels=ch)
  rules: dict[str, _common.Rule] = {}
  _add(rules, "conv_first", "conv_first")
  for i in range(nb):
    _add(rules, f"body.{i}.conv1", f"body_{i}/conv1")
    _add(rules, f"body.{i}.conv2", f"body_{i}/conv2")
  for i, r in enumerate(models.common.upsample_stages(scale)):
    _add(rules, f"upconv{i + 1}", f"upconv{i + 1}", pixel_shuffle_permutation(nf, r))
  _add(rules, "conv_hr", "conv_hr")
  _add(rules, "conv_last", "conv_last")
  return name or "msrresnet", scale, inferred, rules


def _rrdbnet(sd, path, name):
  nf, cin = _shape(sd, "conv_first.weight", path)[:2]
  ch = _shape(sd, "conv_last.weight", path)[0]
  if cin != ch:
    raise InputError(f"{path}: key 'conv_first.weight' takes {cin} channels for a {ch}-channel "
                     f"output: BasicSR's pixel-unshuffle x{2 if cin == 4 * ch else 1} RRDBNet "
                     f"variant is not supported")
  nb = _count(sd, r"body\.(\d+)\.")
  gc = _shape(sd, "body.0.rdb1.conv1.weight", path)[0]
  ups = sum(1 for k in sd if re.fullmatch(r"conv_up\d+\.weight", k))
  scale = 2 ** max(ups, 1)
  inferred = dict(num_feat=nf, num_block=nb, num_grow_ch=gc, channels=ch)
  rules: dict[str, _common.Rule] = {}
  _add(rules, "conv_first", "conv_first")
  for i in range(nb):
    for r in (1, 2, 3):
      for c in range(1, 6):
        _add(rules, f"body.{i}.rdb{r}.conv{c}", f"body_{i}/rdb{r}/conv{c}")
  _add(rules, "conv_body", "conv_body")
  for i in range(len(models.common.upsample_stages(scale))):
    _add(rules, f"conv_up{i + 1}", f"conv_up{i + 1}")
  _add(rules, "conv_hr", "conv_hr")
  _add(rules, "conv_last", "conv_last")
  return name or "rrdbnet", scale, inferred, rules


def _fsrcnn(sd, path, name):
  d, ch = _shape(sd, "first_part.0.weight", path)[:2]
  s = _shape(sd, "mid_part.0.weight", path)[0]
  convs = _count(sd, r"mid_part\.(\d+)\.bias")  # highest conv index + 1
  m = (convs - 1) // 2 - 1  # mid_part: shrink(0,1), maps (2..2m+1), expand (2m+2, 2m+3)
  inferred = dict(d=d, s=s, m=m, channels=ch, head="deconv")
  name = name or ("fsrcnn_s" if (d, s, m) == (32, 5, 1) else "fsrcnn")
  prelu = lambda target: _common.Rule(target, lambda a: a, lambda sh: sh)  # noqa: E731
  rules: dict[str, _common.Rule] = {}
  _add(rules, "first_part.0", "extract")
  rules["first_part.1.weight"] = prelu("extract_prelu/alpha")
  _add(rules, "mid_part.0", "shrink")
  rules["mid_part.1.weight"] = prelu("shrink_prelu/alpha")
  for i in range(m):
    _add(rules, f"mid_part.{2 + 2 * i}", f"map_{i}")
    rules[f"mid_part.{3 + 2 * i}.weight"] = prelu(f"map_{i}_prelu/alpha")
  _add(rules, f"mid_part.{2 + 2 * m}", "expand")
  rules[f"mid_part.{3 + 2 * m}.weight"] = prelu("expand_prelu/alpha")
  rules["last_part.weight"] = _common.Rule("deconv/kernel", lambda a: a.transpose(2, 3, 0, 1),
                                           lambda sh: (sh[2], sh[3], sh[0], sh[1]))
  rules["last_part.bias"] = _common.Rule("deconv/bias", lambda a: a, lambda sh: sh)
  return name, None, inferred, rules


# family: (what it is, its keys (before .weight/.bias), the keys ``detect_family`` looks for).
_LAYOUTS = {
    "edsr": ("BasicSR EDSR", (r"conv_first", r"body\.\d+\.conv[12]", r"conv_after_body",
                              r"upsample\.\d+", r"conv_last"), ("conv_after_body.weight",)),
    "rcan": ("BasicSR RCAN", (r"conv_first", r"body\.\d+\.residual_group\.\d+\.rcab\.\d+"
                              r"(\.attention\.\d+)?", r"body\.\d+\.conv", r"conv_after_body",
                              r"upsample\.\d+", r"conv_last"),
             ("body.0.residual_group.0.rcab.0.weight",)),
    "msrresnet": ("BasicSR MSRResNet", (r"conv_first", r"body\.\d+\.conv[12]", r"upconv\d",
                                        r"conv_hr", r"conv_last"),
                  ("upconv1.weight", "conv_hr.weight")),
    "rrdbnet": ("BasicSR RRDBNet", (r"conv_first", r"body\.\d+\.rdb[123]\.conv[1-5]",
                                    r"conv_body", r"conv_up\d", r"conv_hr", r"conv_last"),
                ("body.0.rdb1.conv1.weight",)),
    "fsrcnn": ("FSRCNN-pytorch", (r"first_part\.\d+", r"mid_part\.\d+", r"last_part"),
               ("first_part.0.weight", "last_part.weight")),
}


def _unrecognised(sd: dict[str, Any], path) -> InputError:
  """Names the layout closest to ``sd`` and the key that keeps it from being recognised."""
  best, fits = None, []
  for family, (_, patterns, _) in _LAYOUTS.items():
    rx = re.compile(rf"(?:{'|'.join(patterns)})\.(?:weight|bias)")
    ok = [k for k in sd if rx.fullmatch(k)]
    if len(ok) > len(fits):
      best, fits = family, ok
  expected = "expected BasicSR EDSR/RCAN/MSRResNet/RRDBNet or FSRCNN-pytorch"
  if best is None:
    return InputError(f"{path}: unrecognised state dict layout: no key fits a known layout "
                      f"(first keys: {', '.join(list(sd)[:4])}); {expected}")
  desc, _, markers = _LAYOUTS[best]
  others = [k for k in sd if k not in set(fits)]
  need = next(m for m in markers if m not in sd)
  near = _common.nearest(need, others)
  message = (f"{path}: unrecognised state dict layout: closest is {desc} ({len(fits)} of "
             f"{len(sd)} keys fit), but key {need!r} is missing")
  if near:
    message += f"; the file has {near!r} instead (renamed?)"
  elif others:
    message += f"; first key that does not fit: {others[0]!r}"
  return InputError(message)


_BUILDERS = {"edsr": _edsr, "rcan": _rcan, "msrresnet": _msrresnet, "rrdbnet": _rrdbnet,
             "fsrcnn": _fsrcnn}


def detect_family(sd: dict[str, Any]) -> str | None:
  """The layout of a flat state dict: one of ``FAMILIES``, or None."""
  keys = set(sd)
  if "first_part.0.weight" in keys and "last_part.weight" in keys:
    return "fsrcnn"
  if any(".rdb1." in k for k in keys):
    return "rrdbnet"
  if any(".residual_group." in k for k in keys):
    return "rcan"
  if "conv_after_body.weight" in keys:
    return "edsr"
  if "upconv1.weight" in keys and "conv_hr.weight" in keys:
    return "msrresnet"
  return None


def import_state_dict(sd: dict[str, np.ndarray], *, path: str | os.PathLike = "<state dict>",
                      scale: int | None = None, model: str | None = None,
                      wrapper: str | None = None, **overrides: Any) -> _common.Imported:
  """Converts a flat ``{key: numpy array}`` state dict (see the module docstring)."""
  if any(k.startswith("RRDB_trunk.") for k in sd):
    renamed = {}
    for k, v in sd.items():
      for pattern, repl in _ESRGAN_RENAMES:
        k = re.sub(pattern, repl, k)
      renamed[k] = v
    sd = renamed
  family = detect_family(sd)
  if family is None:
    raise _unrecognised(sd, path)
  if model is not None:
    want = _FAMILY_OF_NAME.get(model)
    if want is None:
      raise InputError(f"{model!r} cannot take PyTorch weights; models with a PyTorch "
                       f"importer: {', '.join(sorted(_FAMILY_OF_NAME))}", field="model")
    if want != family:
      raise InputError(f"{path}: these are {family} weights, not {model!r}")
  name, structural, inferred, rules = _BUILDERS[family](sd, path, model)
  scale = _common.resolve_scale(path, requested=scale, structural=structural, what=family)
  over = _common.registry_overrides(name, inferred, overrides)
  try:
    module = models.get_model(name, scale=scale, **over)
  except (ValueError, TypeError) as e:
    raise InputError(f"{path}: {e}") from None
  expected = _common.expected_shapes(module, int(inferred["channels"]))
  params = _common.build_params(path, sd, rules, expected, _common.describe(name, scale, over))
  fmt = "fsrcnn-pytorch-pth" if family == "fsrcnn" else "basicsr-pth"
  notes = [f"state dict taken from {wrapper!r}"] if wrapper else []
  luma = color.MATLAB if module.channels == 1 else None
  if family == "fsrcnn":
    notes.append("trained on Y of PIL-bicubic LR (yjn870/FSRCNN-pytorch); MATLAB-style Y")
  return _common.Imported(name, scale, over, {"params": params}, str(path), fmt, luma=luma,
                          notes=notes)


def import_torch(path: str | os.PathLike, *, scale: int | None = None, model: str | None = None,
                 prefer_ema: bool = True, **overrides: Any) -> _common.Imported:
  """Imports a ``.pth`` file (BasicSR layouts or FSRCNN-pytorch), never running its code.

  Args:
    path: the file (``torch.save`` zip or legacy format; ``params``/``params_ema`` wrappers ok).
    scale: required to match the file when the architecture fixes it; otherwise (FSRCNN) the
      scale to build, defaulting to the file name's ``xN``.
    model: a registry name of the file's family (default: recognised from the keys).
    prefer_ema: take ``params_ema`` over ``params`` when both are present.
    **overrides: further model fields (e.g. ``res_scale``).
  """
  path = pathlib.Path(path)
  sd, wrapper = torch_io.select_state_dict(torch_io.read_state_dict(path), path,
                                           prefer_ema=prefer_ema)
  return import_state_dict(sd, path=path, scale=scale, model=model, wrapper=wrapper, **overrides)
