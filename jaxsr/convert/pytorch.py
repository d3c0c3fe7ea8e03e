"""PyTorch state dicts -> jaxsr: BasicSR layouts, SwinIR, FSRCNN-pytorch, Real-CUGAN.

Files are read by :mod:`jaxsr.convert.torch_io` (a restricted unpickler: no code from the file
runs, torch is not needed), or, for ``.safetensors``, :mod:`jaxsr.convert.safetensors_io`.
BasicSR's ``{'params': ...}`` / ``{'params_ema': ...}`` wrappers are
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
  (RealESRGAN_x2plus: pixel-unshuffled input, ``conv_first`` with 12/48 input channels) import
  as ``RRDBNet(unshuffle=2/4)``.
* SRVGGNetCompact (Real-ESRGAN ``srvgg_arch.py``; realesr-animevideov3, realesr-general-x4v3):
  ``body.0`` conv, ``body.1`` PReLU ``weight [F]`` -> ``body_1/alpha``, ..., ``body.{2n+2}``
  the last conv (feeds the pixel shuffle: permuted). ReLU variants have no odd-numbered keys.
* SwinIR (official ``network_swinir.py`` and BasicSR ``swinir_arch.py``; also as spandrel
  saves it): ``conv_first``, ``patch_embed.norm`` -> ``patch_norm``,
  ``layers.i.residual_group.blocks.j.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}``
  (``nn.Linear weight [out, in]`` -> ``kernel [in, out]``; LayerNorm ``weight`` -> ``scale``),
  ``...attn.relative_position_bias_table`` (as is), ``layers.i.conv`` (or ``.conv.0/2/4``:
  '3conv'), ``norm``, ``conv_after_body`` (or ``.0/2/4``), then per upsampler
  ``conv_before_upsample.0`` + ``upsample.0/2/4`` + ``conv_last`` ('pixelshuffle'),
  ``upsample.0`` ('pixelshuffledirect', permuted), or ``conv_before_upsample.0`` +
  ``conv_up1/2/3`` + ``conv_hr`` + ``conv_last`` ('nearest+conv'). The buffers
  ``...attn.relative_position_index`` and ``...attn_mask`` hold no parameters: each is compared
  with the value derived from the window size (and the training patch size its shape implies)
  and refused if it differs.
* FSRCNN-pytorch (yjn870/FSRCNN-pytorch): ``first_part.0`` conv 5x5 + ``first_part.1`` PReLU,
  ``mid_part.0/1`` shrink, ``mid_part.{2+2i}/{3+2i}`` mapping, ``mid_part.{2+2m}/{3+2m}`` expand,
  ``last_part`` = ``ConvTranspose2d(d, 1, 9, stride=s, padding=4, output_padding=s-1)`` ->
  ``FSRCNN(head='deconv')`` (``weight [in, out, kh, kw]`` -> ``kernel [kh, kw, in, out]``).
  The stride is not stored: the scale comes from the caller or the file name's ``xN``.

Recognition (``detect_family``; ``LAYOUTS`` is this table, tried top to bottom after the
look-alike check; the first row that holds wins):

==============  ===========================================  ==============================
family          identified by (keys)                         sizes read from (shapes)
==============  ===========================================  ==============================
(look-alikes)   distinctive keys of HAT (``..._SA``,          refused: "unsupported
                ``conv_block.cab``, ``overlap_attn``), ATD,  architecture: looks like X (not
                Swin2SR (``attn.logit_scale``), DRCT, GRL,   supported)"
                DAT / RGT (``before_RG``), OmniSR, SPAN,
                SAFMN, PLKSR, DITN, DCTLSA, SCUNet, SwinIR
                without upsampler or with unshuffled input
fsrcnn          ``first_part.0.weight`` + ``last_part``      d, s, m, channels; scale from
                                                             the caller or the name's xN
rrdbnet         a key containing ``.rdb1.``                  nf, gc, blocks; scale = 2^#
                                                             ``conv_upK`` (/ unshuffle)
swinir          ``...residual_group.blocks.0.attn.           embed_dim (``conv_first``),
                relative_position_bias_table``               depths (#blocks per layer),
                                                             heads (table cols), window
                                                             (table rows = (2w-1)^2), MLP
                                                             ratio (``fc1``), '1conv'/'3conv',
                                                             upsampler: ``conv_up1`` ->
                                                             nearest+conv, else
                                                             ``conv_before_upsample`` ->
                                                             pixelshuffle, else
                                                             pixelshuffledirect; scale from
                                                             ``upsample`` channels or
                                                             #``conv_upK``
rcan            a key containing ``body.0.residual_group.``  nf, groups, blocks, reduction;
                                                             scale from ``upsample.*``
edsr            ``conv_after_body.weight``                   nf, blocks (edsr if 256 x 32,
                                                             else edsr_baseline); scale from
                                                             ``upsample.*``
msrresnet       ``upconv1.weight`` + ``conv_hr.weight``       nf, blocks; scale from
                                                             ``upconvK``
realcugan       ``unet1.conv1.conv.0``, ``unet1.conv_bottom``, see ``ncnn_unet``
                ``unet2.conv_bottom``
srvgg           only ``body.N.weight/bias`` keys              features, convs, scale from
                                                             the last conv's channels
==============  ===========================================  ==============================

A file that fits no row raises ``InputError`` "unsupported architecture: ...", naming the
look-alike, or the closest layout and the key it lacks. ``model=`` is then only a check.

Scales and sizes (features, blocks, groups, growth, reduction) are read from the shapes; every
key's shape is then checked against the model built from them, and the first key that does not
fit is named.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from typing import Any, Callable

import numpy as np

from jaxsr import color
from jaxsr import models
from jaxsr.convert import _common
from jaxsr.convert import ncnn_unet
from jaxsr.convert import torch_io
from jaxsr.errors import InputError
from jaxsr.models import swinir as swinir_lib
from jaxsr.models.common import pixel_shuffle_permutation

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
  what = f" for {_BY_FAMILY[family].description}" if family else ""
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
  unshuffle = {ch: 1, 4 * ch: 2, 16 * ch: 4}.get(cin)
  if unshuffle is None:
    raise InputError(f"{path}: key 'conv_first.weight' takes {cin} channels for a {ch}-channel "
                     f"output; expected {ch}, {4 * ch} (pixel-unshuffle x2) or {16 * ch} (x1)")
  nb = _count(sd, r"body\.(\d+)\.")
  gc = _shape(sd, "body.0.rdb1.conv1.weight", path)[0]
  ups = sum(1 for k in sd if re.fullmatch(r"conv_up\d+\.weight", k))
  scale = 2 ** max(ups, 1)
  if unshuffle > 1 and scale < unshuffle:
    raise InputError(f"{path}: a pixel-unshuffle x{unshuffle} RRDBNet needs at least "
                     f"{unshuffle.bit_length() - 1} conv_up stages, the file has {ups}")
  scale //= unshuffle
  inferred = dict(num_feat=nf, num_block=nb, num_grow_ch=gc, channels=ch, unshuffle=unshuffle)
  rules: dict[str, _common.Rule] = {}
  _add(rules, "conv_first", "conv_first")
  for i in range(nb):
    for r in (1, 2, 3):
      for c in range(1, 6):
        _add(rules, f"body.{i}.rdb{r}.conv{c}", f"body_{i}/rdb{r}/conv{c}")
  _add(rules, "conv_body", "conv_body")
  for i in range(len(models.common.upsample_stages(scale * unshuffle))):
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


def _srvgg(sd, path, name):
  convs = sorted(int(k.split(".")[1]) for k in sd
                 if k.endswith(".weight") and np.ndim(sd[k]) == 4)
  if not convs or convs[0] != 0:
    raise _missing(sd, "body.0.weight", path, "srvgg")
  nf, ch = _shape(sd, "body.0.weight", path)[:2]
  last = convs[-1]
  num_conv = len(convs) - 2
  if convs != list(range(0, last + 1, 2)) or num_conv < 0:
    raise InputError(f"{path}: SRVGGNetCompact convs must be body.0, body.2, ..., body.{last}; "
                     f"the file has {', '.join(f'body.{i}' for i in convs[:6])}")
  out = _shape(sd, f"body.{last}.weight", path)[0]
  r = int(round((out / max(ch, 1)) ** 0.5))
  if r * r * ch != out:
    raise InputError(f"{path}: key 'body.{last}.weight' has {out} output channels, not "
                     f"{ch}*r*r for an integer scale r")
  act = "prelu" if "body.1.weight" in sd else "relu"
  inferred = dict(num_feat=nf, num_conv=num_conv, channels=ch, act=act)
  rules: dict[str, _common.Rule] = {}
  prelu = lambda target: _common.Rule(target, lambda a: a, lambda sh: sh)  # noqa: E731
  for i in convs:
    perm = pixel_shuffle_permutation(ch, r) if i == last else None
    _add(rules, f"body.{i}", f"body_{i}", perm)
    if act == "prelu" and i != last:
      rules[f"body.{i + 1}.weight"] = prelu(f"body_{i + 1}/alpha")
  return name or "srvgg_compact", r, inferred, rules


def _dense(target: str) -> dict[str, _common.Rule]:
  """``nn.Linear`` ``weight [out, in]``/``bias`` -> ``target/kernel [in, out]``/``bias``."""
  return {"weight": _common.Rule(f"{target}/kernel", lambda a: a.T, lambda s: (s[1], s[0])),
          "bias": _common.identity_rule(f"{target}/bias")}


def _norm(target: str) -> dict[str, _common.Rule]:
  """``nn.LayerNorm`` ``weight``/``bias`` -> ``target/scale``/``bias``."""
  return {"weight": _common.identity_rule(f"{target}/scale"),
          "bias": _common.identity_rule(f"{target}/bias")}


def _put(rules: dict, key: str, parts: dict[str, _common.Rule]) -> None:
  for suffix, rule in parts.items():
    rules[f"{key}.{suffix}"] = rule


_SWINIR_NAMES = {"pixelshuffle": "swinir", "pixelshuffledirect": "swinir_light",
                 "nearest+conv": "swinir_real"}
_SWINIR_BUFFERS = (r"layers\.\d+\.residual_group\.blocks\.\d+\.attn\.relative_position_index",
                   r"layers\.\d+\.residual_group\.blocks\.\d+\.attn_mask")


def _swinir_resi(rules, sd, key, target) -> str:
  """'1conv' (``key.weight``) or '3conv' (``key.0/.2/.4``) rules; returns which."""
  if f"{key}.weight" in sd:
    _add(rules, key, target)
    return "1conv"
  for i, k in enumerate((0, 2, 4)):
    _add(rules, f"{key}.{k}", f"{target}_{i}")
  return "3conv"


def _swinir(sd, path, name):
  dim, ch = _shape(sd, "conv_first.weight", path)[:2]
  if "conv_before_upsample.0.weight" in sd:
    upsampler = "nearest+conv" if "conv_up1.weight" in sd else "pixelshuffle"
  elif "upsample.0.weight" in sd:
    upsampler = "pixelshuffledirect"
  else:
    raise InputError(f"{path}: SwinIR without an upsampler (denoising / JPEG artefact "
                     f"removal) is not supported; jaxsr imports SwinIR for super-resolution")
  num_layers = _count(sd, r"layers\.(\d+)\.")
  depths = tuple(_count(sd, rf"layers\.{i}\.residual_group\.blocks\.(\d+)\.")
                 for i in range(num_layers))
  table_key = "layers.0.residual_group.blocks.0.attn.relative_position_bias_table"
  rows = _shape(sd, table_key, path)[0]
  ws = (int(round(rows ** 0.5)) + 1) // 2
  if (2 * ws - 1) ** 2 != rows:
    raise InputError(f"{path}: key {table_key!r} has {rows} rows, not (2*window-1)^2")
  heads = tuple(_shape(sd, f"layers.{i}.residual_group.blocks.0.attn.relative_position_bias_"
                           f"table", path)[1] for i in range(num_layers))
  hidden = _shape(sd, "layers.0.residual_group.blocks.0.mlp.fc1.weight", path)[0]
  # The buffers are derivable from the configuration: check them instead of trusting them.
  index = swinir_lib.relative_position_index(ws)
  for key in sd:
    if key.endswith(".attn.relative_position_index"):
      if tuple(sd[key].shape) != index.shape or not np.array_equal(sd[key], index):
        raise InputError(f"{path}: key {key!r} is not the relative position index of a "
                         f"{ws}x{ws} window")
    elif key.endswith(".attn_mask"):
      shape = tuple(sd[key].shape)
      side = int(round((shape[0] if shape else 0) ** 0.5)) * ws
      if side <= ws:
        raise InputError(f"{path}: key {key!r} {shape}: SwinIR trained on patches no larger "
                         f"than its window is not supported")
      want = swinir_lib.shifted_window_mask(side, side, ws, ws // 2)
      if shape != want.shape or not np.array_equal(np.asarray(sd[key], np.float32), want):
        raise InputError(f"{path}: key {key!r} {shape} is not the shifted-window attention "
                         f"mask of a {side}x{side} training patch with {ws}x{ws} windows")
  rules: dict[str, _common.Rule] = {}
  _add(rules, "conv_first", "conv_first")
  _put(rules, "patch_embed.norm", _norm("patch_norm"))
  resi = "1conv"
  for i in range(num_layers):
    for j in range(depths[i]):
      key, tgt = f"layers.{i}.residual_group.blocks.{j}", f"layers_{i}/blocks_{j}"
      _put(rules, f"{key}.norm1", _norm(f"{tgt}/norm1"))
      _put(rules, f"{key}.norm2", _norm(f"{tgt}/norm2"))
      _put(rules, f"{key}.attn.qkv", _dense(f"{tgt}/attn/qkv"))
      _put(rules, f"{key}.attn.proj", _dense(f"{tgt}/attn/proj"))
      rules[f"{key}.attn.relative_position_bias_table"] = _common.identity_rule(
          f"{tgt}/attn/relative_position_bias_table")
      _put(rules, f"{key}.mlp.fc1", _dense(f"{tgt}/fc1"))
      _put(rules, f"{key}.mlp.fc2", _dense(f"{tgt}/fc2"))
    resi = _swinir_resi(rules, sd, f"layers.{i}.conv", f"layers_{i}/conv")
  _put(rules, "norm", _norm("norm"))
  _swinir_resi(rules, sd, "conv_after_body", "conv_after_body")
  inferred: dict[str, Any] = dict(embed_dim=dim, depths=depths, num_heads=heads, window_size=ws,
                                  mlp_ratio=hidden / dim, upsampler=upsampler,
                                  resi_connection=resi, channels=ch)
  if upsampler == "pixelshuffledirect":
    out = _shape(sd, "upsample.0.weight", path)[0]
    scale = int(round((out / ch) ** 0.5))
    if scale * scale * ch != out:
      raise InputError(f"{path}: key 'upsample.0.weight' has {out} output channels, not "
                       f"{ch} x scale^2")
    _add(rules, "upsample.0", "upsample", pixel_shuffle_permutation(ch, scale))
  else:
    nf = _shape(sd, "conv_before_upsample.0.weight", path)[0]
    inferred["num_feat"] = nf
    _add(rules, "conv_before_upsample.0", "conv_before_upsample")
    if upsampler == "pixelshuffle":
      scale = _stage_scale(sd, ["upsample.0.weight", "upsample.2.weight", "upsample.4.weight"],
                           nf, path)
      _upsampler_rules(rules, "upsample", "upsample", scale, nf)
    else:
      ups = _count(sd, r"conv_up(\d+)\.weight") - 1
      scale = 2 ** max(ups, 1)
      for k in range(1, max(ups, 1) + 1):
        _add(rules, f"conv_up{k}", f"conv_up{k}")
      _add(rules, "conv_hr", "conv_hr")
    _add(rules, "conv_last", "conv_last")
  return name or _SWINIR_NAMES[upsampler], scale, inferred, rules


@dataclasses.dataclass(frozen=True)
class Layout:
  """One supported state-dict layout (a row of the recognition table in the module docstring).

  Attributes:
    family: short name (``FAMILIES``).
    description: what it is, for messages (``'BasicSR EDSR'``).
    detect: ``keys -> bool``: whether a flat state dict's key set is this layout. Rows are tried
      in ``LAYOUTS`` order and the first that answers True wins, so a more specific layout
      (SwinIR's ``layers.N.residual_group.blocks``) comes before a looser one (RCAN's
      ``body.N.residual_group``).
    build: ``(sd, path, model) -> (registry name, scale or None, inferred config, rules)``: reads
      sizes from the shapes and returns the conversion rules (source key -> jaxsr parameter).
    names: the registry names this layout can be imported as (``--model``).
    patterns: regexes of its keys (before ``.weight``/``.bias``), for the closest-layout message.
    markers: keys ``detect`` relies on, named when the closest layout lacks one.
    format: ``Imported.format``.
    ignored: regexes of keys that carry no parameters (buffers the builder checks itself).
  """
  family: str
  description: str
  detect: Callable[[set[str]], bool]
  build: Callable[..., tuple[str, int | None, dict[str, Any], dict[str, _common.Rule]]]
  names: tuple[str, ...]
  patterns: tuple[str, ...]
  markers: tuple[str, ...]
  format: str = "basicsr-pth"
  ignored: tuple[str, ...] = ()


def _has(*keys: str) -> Callable[[set[str]], bool]:
  return lambda ks: all(k in ks for k in keys)


def _any_contains(fragment: str) -> Callable[[set[str]], bool]:
  return lambda ks: any(fragment in k for k in ks)


# The recognition table: tried in order, the first layout whose ``detect`` holds wins.
# Other helpers' layouts are added as rows here (keep the order: specific before loose).
LAYOUTS: list[Layout] = [
    Layout("fsrcnn", "FSRCNN-pytorch", _has("first_part.0.weight", "last_part.weight"), _fsrcnn,
           ("fsrcnn", "fsrcnn_s"), (r"first_part\.\d+", r"mid_part\.\d+", r"last_part"),
           ("first_part.0.weight", "last_part.weight"), format="fsrcnn-pytorch-pth"),
    Layout("rrdbnet", "BasicSR RRDBNet", _any_contains(".rdb1."), _rrdbnet, ("rrdbnet",),
           (r"conv_first", r"body\.\d+\.rdb[123]\.conv[1-5]", r"conv_body", r"conv_up\d",
            r"conv_hr", r"conv_last"), ("body.0.rdb1.conv1.weight",)),
    Layout("swinir", "SwinIR (official / BasicSR)",
           _any_contains("residual_group.blocks.0.attn.relative_position_bias_table"), _swinir,
           ("swinir", "swinir_light", "swinir_real"),
           (r"conv_first", r"patch_embed\.norm", r"layers\.\d+\.residual_group\.blocks\.\d+\."
            r"(norm[12]|attn\.(qkv|proj)|mlp\.fc[12])", r"layers\.\d+\.conv(\.\d)?", r"norm",
            r"conv_after_body(\.\d)?", r"conv_before_upsample\.0", r"upsample\.\d+",
            r"conv_up\d", r"conv_hr", r"conv_last"),
           ("layers.0.residual_group.blocks.0.attn.relative_position_bias_table",),
           ignored=_SWINIR_BUFFERS),
    Layout("rcan", "BasicSR RCAN", _any_contains("body.0.residual_group."), _rcan, ("rcan",),
           (r"conv_first", r"body\.\d+\.residual_group\.\d+\.rcab\.\d+(\.attention\.\d+)?",
            r"body\.\d+\.conv", r"conv_after_body", r"upsample\.\d+", r"conv_last"),
           ("body.0.residual_group.0.rcab.0.weight",)),
    Layout("edsr", "BasicSR EDSR", _has("conv_after_body.weight"), _edsr,
           ("edsr", "edsr_baseline"), (r"conv_first", r"body\.\d+\.conv[12]", r"conv_after_body",
                                       r"upsample\.\d+", r"conv_last"),
           ("conv_after_body.weight",)),
    Layout("msrresnet", "BasicSR MSRResNet", _has("upconv1.weight", "conv_hr.weight"),
           _msrresnet, ("msrresnet",), (r"conv_first", r"body\.\d+\.conv[12]", r"upconv\d",
                                        r"conv_hr", r"conv_last"),
           ("upconv1.weight", "conv_hr.weight")),
    Layout("realcugan", "Real-CUGAN (bilibili)", ncnn_unet.is_realcugan_state_dict,
           ncnn_unet.realcugan_rules, ("realcugan",), ncnn_unet.REALCUGAN_PATTERNS,
           ("unet1.conv1.conv.0.weight", "unet2.conv_bottom.weight"), format="realcugan-pth",
           ignored=(r"pro",)),
    Layout("srvgg", "Real-ESRGAN SRVGGNetCompact",
           lambda ks: "body.0.weight" in ks
           and all(re.fullmatch(r"body\.\d+\.(weight|bias)", k) for k in ks),
           _srvgg, ("srvgg_compact",), (r"body\.\d+",), ("body.0.weight",)),
]

# Well-known architectures jaxsr does not import: (name, keys -> bool), by their distinctive
# keys (checked before ``LAYOUTS``: several share SwinIR's or EDSR's key names).
UNSUPPORTED: list[tuple[str, Callable[[set[str]], bool]]] = [
    ("HAT", lambda ks: "relative_position_index_SA" in ks or _any_contains(".conv_block.cab.")(ks)
     or _any_contains(".overlap_attn.")(ks)),
    ("ATD", _any_contains(".attn_atd.")),
    ("Swin2SR", lambda ks: _any_contains(".attn.logit_scale")(ks)
     and _any_contains("residual_group.blocks.")(ks)),
    ("DRCT", _any_contains("layers.0.swin1.")),
    ("GRL", _any_contains("attn.window_attn.attn_transform")),
    ("DAT", lambda ks: "before_RG.1.weight" in ks and _any_contains(".ffn.sg.")(ks)),
    ("RGT", lambda ks: "before_RG.1.weight" in ks),
    ("OmniSR", _any_contains("residual_layer.0.residual_layer.")),
    ("SPAN", _any_contains(".c1_r.")),
    ("SAFMN", lambda ks: "to_feat.weight" in ks and _any_contains(".safm.")(ks)),
    ("PLKSR", _any_contains(".lk.")),
    ("DITN", _any_contains("UFONE.")),
    ("DCTLSA", _any_contains(".transformer_body.")),
    ("SCUNet", _has("m_head.0.weight", "m_tail.0.weight")),
    ("SwinIR with pixel-unshuffled input (spandrel's start_unshuffle)",
     _has("conv_first.1.weight")),
    ("SwinIR for denoising/JPEG (no upsampler)",
     lambda ks: _any_contains("residual_group.blocks.0.attn.relative_position_bias_table")(ks)
     and "conv_last.weight" in ks and "upsample.0.weight" not in ks
     and "conv_before_upsample.0.weight" not in ks),
]

FAMILIES = tuple(layout.family for layout in LAYOUTS)
_BY_FAMILY = {layout.family: layout for layout in LAYOUTS}


def _family_of_name(model: str) -> str | None:
  return next((l.family for l in LAYOUTS if model in l.names), None)


def looks_like(sd: dict[str, Any]) -> str | None:
  """The name of a well-known unsupported architecture ``sd`` looks like, or None."""
  keys = set(sd)
  return next((name for name, test in UNSUPPORTED if test(keys)), None)


def _unrecognised(sd: dict[str, Any], path) -> InputError:
  """Names the layout closest to ``sd`` and the key that keeps it from being recognised."""
  like = looks_like(sd)
  if like is not None:
    return InputError(f"{path}: unsupported architecture: looks like {like} (not supported); "
                      f"jaxsr imports {_supported()}")
  best, fits = None, []
  for layout in LAYOUTS:
    rx = re.compile(rf"(?:{'|'.join(layout.patterns)})\.(?:weight|bias)")
    ok = [k for k in sd if rx.fullmatch(k)]
    if len(ok) > len(fits):
      best, fits = layout, ok
  if best is None:
    return InputError(f"{path}: unsupported architecture: unrecognised state dict layout: no "
                      f"key fits a known layout (first keys: {', '.join(list(sd)[:4])}); jaxsr "
                      f"imports {_supported()}")
  others = [k for k in sd if k not in set(fits)]
  need = next((m for m in best.markers if m not in sd), best.markers[0])
  near = _common.nearest(need, others)
  message = (f"{path}: unsupported architecture: unrecognised state dict layout: closest is "
             f"{best.description} ({len(fits)} of {len(sd)} keys fit), but key {need!r} is "
             f"missing")
  if near:
    message += f"; the file has {near!r} instead (renamed?)"
  elif others:
    message += f"; first key that does not fit: {others[0]!r}"
  return InputError(message)


def _supported() -> str:
  return ", ".join(layout.description for layout in LAYOUTS)


def detect_family(sd: dict[str, Any]) -> str | None:
  """The layout of a flat state dict: one of ``FAMILIES``, or None (also for look-alikes)."""
  keys = set(sd)
  if looks_like(sd) is not None:
    return None
  return next((layout.family for layout in LAYOUTS if layout.detect(keys)), None)


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
    want = _family_of_name(model)
    if want is None:
      names = sorted(n for layout in LAYOUTS for n in layout.names)
      raise InputError(f"{model!r} cannot take PyTorch weights; models with a PyTorch "
                       f"importer: {', '.join(names)}", field="model")
    if want != family:
      raise InputError(f"{path}: these are {family} weights, not {model!r}")
  layout = _BY_FAMILY[family]
  name, structural, inferred, rules = layout.build(sd, path, model)
  if layout.ignored:
    skip = re.compile("|".join(layout.ignored))
    sd = {k: v for k, v in sd.items() if not skip.fullmatch(k)}
  scale = _common.resolve_scale(path, requested=scale, structural=structural, what=family)
  over = _common.registry_overrides(name, inferred, overrides)
  try:
    module = models.get_model(name, scale=scale, **over)
  except (ValueError, TypeError) as e:
    raise InputError(f"{path}: {e}") from None
  expected = _common.expected_shapes(module, int(inferred["channels"]))
  params = _common.build_params(path, sd, rules, expected, _common.describe(name, scale, over))
  fmt = layout.format
  notes = [f"state dict taken from {wrapper!r}"] if wrapper else []
  luma = color.MATLAB if module.channels == 1 else None
  if family == "fsrcnn":
    notes.append("trained on Y of PIL-bicubic LR (yjn870/FSRCNN-pytorch); MATLAB-style Y")
  return _common.Imported(name, scale, over, {"params": params}, str(path), fmt, luma=luma,
                          notes=notes)


def import_torch(path: str | os.PathLike, *, scale: int | None = None, model: str | None = None,
                 prefer_ema: bool = True, **overrides: Any) -> _common.Imported:
  """Imports a ``.pth`` or ``.safetensors`` file (any layout of ``LAYOUTS``), never running code.

  Args:
    path: the file (``torch.save`` zip or legacy format, or safetensors; ``params`` /
      ``params_ema`` wrappers ok).
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
