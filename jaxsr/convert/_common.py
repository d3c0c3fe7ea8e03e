"""Shared machinery of the importers: the result type and strict shape checking."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import os
import pathlib
import re
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr import models
from jaxsr.errors import InputError


@dataclasses.dataclass
class Imported:
  """Weights converted to a jaxsr model.

  Attributes:
    name: registry name (``jaxsr.models.get_model(name, scale=scale, **overrides)``).
    scale: the upscaling factor.
    overrides: configuration fields differing from the registry's reference configuration.
    variables: ``{'params': nested dict of float32 numpy arrays}``.
    source: the file the weights came from.
    format: ``'srcnn-mat'``, ``'opencv-pb'``, ``'basicsr-pth'`` or ``'fsrcnn-pytorch-pth'``.
    luma: for 1-channel models, the YCbCr standard the weights were trained on
      (``jaxsr.color.MATLAB`` or ``jaxsr.color.OPENCV``); None for RGB models.
    notes: human-readable remarks (e.g. the wrapper key a state dict was taken from).
  """
  name: str
  scale: int
  overrides: dict[str, Any]
  variables: dict[str, Any]
  source: str
  format: str
  luma: str | None = None
  notes: list[str] = dataclasses.field(default_factory=list)

  @property
  def module(self):
    """The Flax module these variables belong to."""
    return models.get_model(self.name, scale=self.scale, **self.overrides)

  @property
  def channels(self) -> int:
    return int(getattr(self.module, "channels", 3))

  def metadata(self) -> dict[str, Any]:
    """JSON metadata stored beside the weights in a checkpoint (``meta['imported']``)."""
    path = pathlib.Path(self.source)
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    return {"imported": {"source": str(path.resolve()) if path.exists() else self.source,
                         "sha256": digest, "format": self.format, "luma": self.luma,
                         "notes": list(self.notes)}}

  def save(self, directory: str | os.PathLike) -> pathlib.Path:
    """Writes a jaxsr checkpoint that ``jaxsr.checkpoint.load_model`` (eval.py ``--checkpoint``,
    ``jaxsr upscale --checkpoint``, train.py fine-tuning) reads."""
    from jaxsr import checkpoint  # pylint: disable=g-import-not-at-top

    directory = pathlib.Path(directory).absolute()
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), self.variables["params"])
    checkpoint.save_model(directory, {"params": params}, model=self.name, scale=self.scale,
                          overrides=self.overrides, extra=self.metadata())
    return directory


def scale_from_filename(path: str | os.PathLike) -> int | None:
  """``x3`` / ``X4`` / ``_x2`` in a file name -> 3 / 4 / 2; None when absent or ambiguous."""
  found = set(re.findall(r"(?:^|[^a-z0-9])x(\d{1,2})(?![0-9])", pathlib.Path(path).stem.lower()))
  return int(found.pop()) if len(found) == 1 else None


def resolve_scale(path, *, requested: int | None, structural: int | None,
                  what: str) -> int:
  """The scale to build: the file's own (checked against ``requested``), or the request, or
  the file name's ``xN``."""
  if structural is not None:
    if requested is not None and int(requested) != structural:
      raise InputError(f"{path}: these {what} weights are x{structural}, not x{requested}")
    return structural
  if requested is not None:
    return int(requested)
  guess = scale_from_filename(path)
  if guess is None:
    raise InputError(f"{path}: the file does not record its scale; pass it", field="scale")
  return guess


def expected_shapes(module, channels: int) -> dict[str, tuple[int, ...]]:
  """``{'a/b/kernel': shape}`` of the module's parameters (abstract evaluation, no allocation)."""
  x = jnp.zeros((1, 12, 12, channels), jnp.float32)
  variables = jax.eval_shape(lambda k: module.init(k, x), jax.random.key(0))
  flat = {}
  for p, leaf in jax.tree_util.tree_flatten_with_path(variables["params"])[0]:
    flat["/".join(str(k.key) for k in p)] = tuple(leaf.shape)
  return flat


def unflatten(flat: dict[str, np.ndarray]) -> dict[str, Any]:
  out: dict[str, Any] = {}
  for key, value in flat.items():
    node = out
    parts = key.split("/")
    for part in parts[:-1]:
      node = node.setdefault(part, {})
    node[parts[-1]] = value
  return out


@dataclasses.dataclass(frozen=True)
class Rule:
  """How one source array becomes one jaxsr parameter.

  Attributes:
    target: ``'a/b/kernel'`` path in the jaxsr params.
    convert: source array -> jaxsr array.
    source_shape: jaxsr shape -> the source shape that converts to it.
  """
  target: str
  convert: Callable[[np.ndarray], np.ndarray]
  source_shape: Callable[[tuple[int, ...]], tuple[int, ...]]


def identity_rule(target: str) -> Rule:
  return Rule(target, lambda a: a, lambda s: s)


def nearest(key: str, candidates: Sequence[str]) -> str | None:
  """The candidate closest to ``key`` (``difflib``, ratio >= 0.6), or None."""
  found = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.6)
  return found[0] if found else None


def build_params(path, source: dict[str, np.ndarray], rules: dict[str, Rule],
                 expected: dict[str, tuple[int, ...]], model_desc: str,
                 order: Sequence[str] | None = None) -> dict[str, Any]:
  """Converts ``source`` with ``rules`` (source key -> rule), checking every shape.

  Source keys are checked in file order (``order``, default the dict's); the first key that
  does not fit -- unexpected, wrong shape -- raises ``InputError`` naming it; then the first
  missing key. Every jaxsr parameter must be covered exactly once.
  """
  out: dict[str, np.ndarray] = {}
  for key in (order or list(source)):
    array = np.asarray(source[key])
    rule = rules.get(key)
    if rule is None:
      near = nearest(key, [k for k in rules if k not in source])
      hint = f" (nearest expected key: {near!r}, which the file lacks)" if near else ""
      raise InputError(f"{path}: unexpected key {key!r} {tuple(array.shape)} for {model_desc}"
                       f"{hint}")
    want = expected.get(rule.target)
    if want is None:
      raise InputError(f"{path}: key {key!r}: {model_desc} has no parameter {rule.target}")
    want_src = tuple(rule.source_shape(want))
    if tuple(array.shape) != want_src:
      raise InputError(f"{path}: key {key!r} has shape {tuple(array.shape)}; {model_desc} "
                       f"expects {want_src}")
    if not np.issubdtype(array.dtype, np.floating):
      raise InputError(f"{path}: key {key!r} has dtype {array.dtype}, expected floating point")
    value = np.ascontiguousarray(rule.convert(array.astype(np.float64)), dtype=np.float32)
    if not np.all(np.isfinite(value)):
      raise InputError(f"{path}: key {key!r} holds non-finite values")
    out[rule.target] = value
  missing = [k for k, r in rules.items() if k not in source]
  if missing:
    near = nearest(missing[0], [k for k in source if k not in rules])
    raise InputError(f"{path}: missing key {missing[0]!r} for {model_desc}"
                     + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                     + (f"; the file has {near!r} instead" if near else ""))
  uncovered = sorted(set(expected) - set(out))
  if uncovered:
    raise InputError(f"{path}: no weights for {uncovered[0]} of {model_desc}")
  return unflatten(out)


def describe(name: str, scale: int, overrides: dict[str, Any]) -> str:
  extra = ", ".join(f"{k}={v}" for k, v in overrides.items())
  return f"{name} x{scale}" + (f" ({extra})" if extra else "")


def registry_overrides(name: str, inferred: dict[str, Any],
                       user: dict[str, Any] | None = None) -> dict[str, Any]:
  """Fields of ``inferred`` (and the user's) that differ from ``name``'s reference config."""
  reference = models.get_model(name, scale=2)
  merged = dict(inferred)
  merged.update(user or {})
  return {k: v for k, v in merged.items() if getattr(reference, k, object()) != v}
