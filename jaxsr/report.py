"""A self-contained HTML evaluation report: the table, per-image crops with zoom, PSNR curves.

Contract of :func:`write_report`: writes ``DIR/index.html`` (atomically; ``DIR`` may be remote,
``gs://...``, see ``jaxsr.files``) that needs nothing else: images are inlined as base64 PNG, styles and the zoom script are inline, curves are
inline SVG; no network access and no external file is referenced.

The page holds, in order: the comparison table of ``eval_lib.format_comparison`` (best per
column in bold); per-set mean-PSNR-against-scale curves (one line per method) when several
scales were evaluated; then per image its metrics and side-by-side crops -- LR (nearest-
neighbour enlarged to the HR size), bicubic, each method, HR -- of one square window. The
window is where the methods differ most: the largest sum over the window of the per-pixel
variance across methods of their signed errors (with one method, of its squared error).
Clicking a crop toggles a 2x larger view of all crops of that image.

Images are uint8 ``[H, W, 1 | 3]`` as scored by the protocol (the ``y`` protocol's are Y planes
and show grey).
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import math
import pathlib
from typing import Mapping, Sequence

import numpy as np

from jaxsr import eval_lib
from jaxsr import files
from jaxsr.errors import InputError

__all__ = ["ReportImage", "best_window", "render_report", "write_report", "CROP"]

CROP = 96  # window side in HR pixels (smaller images: their smaller side)
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
            "#17becf")


@dataclasses.dataclass(frozen=True)
class ReportImage:
  """One evaluated image of one (set, scale, protocol) and every method's output.

  Attributes:
    lr: uint8 ``[h, w, C]``, the protocol's LR (rounded for display).
    hr: uint8 ``[scale*h, scale*w, C]``, the protocol's reference.
    bicubic: uint8 like ``hr``, MATLAB bicubic of ``lr``.
    outputs: method label -> uint8 SR image like ``hr``.
    scores: method label -> ``{metric: value}``.
  """
  dataset: str
  scale: int
  protocol: str
  name: str
  lr: np.ndarray
  hr: np.ndarray
  bicubic: np.ndarray
  outputs: Mapping[str, np.ndarray]
  scores: Mapping[str, Mapping[str, float]]


def best_window(hr: np.ndarray, outputs: Sequence[np.ndarray], size: int) -> tuple[int, int]:
  """Top-left ``(y, x)`` of the ``size`` x ``size`` window where the outputs differ most.

  The per-pixel score is the variance across outputs of their signed errors against ``hr``
  (channel mean); with one output, its squared error. The window maximises its sum
  (computed with a summed-area table; ties: the first in raster order).
  """
  ref = hr.astype(np.float64).mean(-1)
  errors = np.stack([o.astype(np.float64).mean(-1) - ref for o in outputs])
  per_pixel = errors.var(0) if len(outputs) > 1 else errors[0] ** 2
  h, w = per_pixel.shape
  size = min(size, h, w)
  table = np.zeros((h + 1, w + 1))
  table[1:, 1:] = per_pixel.cumsum(0).cumsum(1)
  sums = (table[size:, size:] - table[:-size, size:] - table[size:, :-size]
          + table[:-size, :-size])
  y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
  return int(y), int(x)


def _png(image: np.ndarray) -> str:
  from PIL import Image  # pylint: disable=g-import-not-at-top

  buf = io.BytesIO()
  Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buf, format="PNG")
  return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _esc(text) -> str:
  return html.escape(str(text), quote=True)


def _table_html(methods, metrics) -> str:
  grid = eval_lib.comparison_grid(methods, metrics=metrics)
  mixed = len({r[1] for r in grid.rows}) > 1
  unit = "/".join(eval_lib.METRICS[m].label or m.upper() for m in grid.metrics)
  head = "<th>Method</th>" + ("<th>Protocol</th>" if mixed else "") + "".join(
      f"<th>{_esc(d)} &times;{s}</th>" for d, s in grid.columns)
  rows = []
  for label, protocol, cells in grid.rows:
    tds = [f"<td class='m'>{_esc(label)}</td>"] + ([f"<td>{protocol}</td>"] if mixed else [])
    for cell in cells:
      parts = []
      for (v, best), m in zip(cell, grid.metrics):
        s = "-" if v is None else eval_lib.format_value(v, eval_lib.METRICS[m].digits)
        parts.append(f"<b>{s}</b>" if best else s)
      tds.append("<td>" + "/".join(parts) + "</td>")
    rows.append("<tr>" + "".join(tds) + "</tr>")
  protocols = ", ".join(dict.fromkeys(r[1] for r in grid.rows))
  return (f"<table id='results'><caption>{unit}, protocol {protocols}; best in bold"
          f"</caption><tr>{head}</tr>{''.join(rows)}</table>")


def _curves_svg(methods, dataset: str) -> str:
  """Mean PSNR against scale of every method on one set, as an inline SVG."""
  series = []
  for label, entries in methods:
    pts = sorted((e["scale"], e["psnr"]) for e in entries
                 if e["dataset"] == dataset and "psnr" in e and math.isfinite(e["psnr"]))
    if pts:
      series.append((label, pts))
  scales = sorted({s for _, pts in series for s, _ in pts})
  if len(scales) < 2:
    return ""
  values = [p for _, pts in series for _, p in pts]
  lo, hi = math.floor(min(values)), math.ceil(max(values))
  hi = hi if hi > lo else lo + 1
  w, h, left, right, top, bottom = 360, 220, 44, 110, 24, 30
  sx = lambda s: left + (w - left - right) * (scales.index(s) / (len(scales) - 1))
  sy = lambda p: top + (h - top - bottom) * (1 - (p - lo) / (hi - lo))
  parts = [f"<svg class='curve' xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' "
           f"viewBox='0 0 {w} {h}' role='img'><title>{_esc(dataset)} mean PSNR</title>",
           f"<text x='{left}' y='14' class='t'>{_esc(dataset)}: mean PSNR (dB)</text>",
           f"<line x1='{left}' y1='{h - bottom}' x2='{w - right}' y2='{h - bottom}' "
           "stroke='#444'/>",
           f"<line x1='{left}' y1='{top}' x2='{left}' y2='{h - bottom}' stroke='#444'/>"]
  for s in scales:
    parts.append(f"<text x='{sx(s):.1f}' y='{h - bottom + 16}' text-anchor='middle'>x{s}</text>")
  for v in np.linspace(lo, hi, 5):
    parts.append(f"<text x='{left - 4}' y='{sy(v) + 4:.1f}' text-anchor='end'>{v:.1f}</text>"
                 f"<line x1='{left}' y1='{sy(v):.1f}' x2='{w - right}' y2='{sy(v):.1f}' "
                 f"stroke='#ddd'/>")
  for i, (label, pts) in enumerate(series):
    c = _COLOURS[i % len(_COLOURS)]
    line = " ".join(f"{sx(s):.1f},{sy(p):.1f}" for s, p in pts)
    parts.append(f"<polyline fill='none' stroke='{c}' stroke-width='2' points='{line}'/>")
    parts += [f"<circle cx='{sx(s):.1f}' cy='{sy(p):.1f}' r='3' fill='{c}'><title>"
              f"{_esc(label)} x{s}: {p:.2f} dB</title></circle>" for s, p in pts]
    parts.append(f"<text x='{w - right + 8}' y='{top + 14 * i + 4}' fill='{c}'>"
                 f"{_esc(label)}</text>")
  parts.append("</svg>")
  return "".join(parts)


def _image_section(item: ReportImage, metrics: Sequence[str], index: int) -> str:
  h, w = item.hr.shape[:2]
  size = min(CROP, h, w)
  labels = list(item.outputs)
  y, x = best_window(item.hr, [item.outputs[k] for k in labels], size)
  s = item.scale
  lr_big = np.repeat(np.repeat(item.lr, s, 0), s, 1)
  tiles = [("LR (nearest)", lr_big), ("bicubic", item.bicubic)]
  tiles += [(k, item.outputs[k]) for k in labels if k != "bicubic"]
  tiles.append(("HR", item.hr))
  figs = []
  for title, image in tiles:
    crop = image[y: y + size, x: x + size]
    figs.append(f"<figure><img class='crop' width='{2 * size}' height='{2 * size}' "
                f"alt='{_esc(title)}' src='{_png(crop)}'><figcaption>{_esc(title)}"
                f"</figcaption></figure>")
  rows = "".join(
      f"<tr><td class='m'>{_esc(k)}</td>" + "".join(
          f"<td>{eval_lib.format_value(v, eval_lib.METRICS[m].digits + 1)}</td>"
          for m, v in item.scores[k].items()) + "</tr>" for k in labels)
  head = "".join(f"<th>{_esc(eval_lib.METRICS[m].label or m)}</th>" for m in metrics)
  return (f"<section class='image' id='img{index}'><h3>{_esc(item.dataset)} x{s} "
          f"&middot; {_esc(item.name)} <small>(protocol {item.protocol}; window {size}x{size} "
          f"at y={y}, x={x} of {h}x{w})</small></h3>"
          f"<div class='row'><div class='crops' title='click to zoom'>{''.join(figs)}</div>"
          f"<table class='scores'><tr><th>Method</th>{head}</tr>{rows}</table></div></section>")


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:20px;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:center}td.m{text-align:left}caption{caption-side:bottom;color:#666;font-size:12px;
text-align:left;white-space:nowrap}
.curves{display:flex;flex-wrap:wrap;gap:16px}.curve text{font-size:11px}.curve .t{font-size:12px}
.crops{display:flex;flex-wrap:wrap;gap:6px;cursor:zoom-in}figure{margin:0;text-align:center}
figcaption{font-size:12px}img.crop{image-rendering:pixelated;display:block;
border:1px solid #999;transition:width .15s,height .15s}
.zoomed .crops{cursor:zoom-out}.zoomed img.crop{width:calc(var(--s)*4);height:calc(var(--s)*4)}
.row{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
section.image{border-top:1px solid #ddd;padding-top:6px}h3{font-size:15px;margin:8px 0 2px}
"""

_SCRIPT = """
document.querySelectorAll('section.image').forEach(function(sec){
  sec.querySelectorAll('img.crop').forEach(function(img){
    img.style.setProperty('--s', (img.getAttribute('width') / 2) + 'px');});
  sec.querySelector('.crops').addEventListener('click', function(){
    sec.classList.toggle('zoomed');});
});
"""


def render_report(*, methods: Sequence[tuple[str, Sequence[dict]]],
                  images: Sequence[ReportImage],
                  metrics: Sequence[str] = eval_lib.DEFAULT_METRICS,
                  title: str = "jaxsr evaluation") -> str:
  """The report page as a string (see the module docstring)."""
  datasets = list(dict.fromkeys(e["dataset"] for _, entries in methods for e in entries))
  curves = "".join(_curves_svg(methods, d) for d in datasets)
  body = [f"<h1>{_esc(title)}</h1>", _table_html(methods, metrics)]
  if curves:
    body.append(f"<h2>Mean PSNR against scale</h2><div class='curves'>{curves}</div>")
  body.append("<h2>Images</h2><p>Crops: the window where the methods differ most "
              "(largest variance of their errors). Click to zoom.</p>")
  body += [_image_section(item, metrics, i) for i, item in enumerate(images)]
  return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
          f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>"
          + "".join(body) + f"<script>{_SCRIPT}</script></body></html>")


def write_report(folder: str, *, methods: Sequence[tuple[str, Sequence[dict]]],
                 images: Sequence[ReportImage],
                 metrics: Sequence[str] = eval_lib.DEFAULT_METRICS,
                 title: str = "jaxsr evaluation") -> pathlib.Path:
  """Writes ``folder/index.html`` atomically; returns its path.

  Raises:
    InputError: the folder cannot be created or written (field ``report``).
  """
  page = render_report(methods=methods, images=images, metrics=metrics, title=title)
  path = files.to_path(folder, field="report") / "index.html"
  try:
    if not files.is_local(path):
      files.check_reachable(path.parent, field="report")
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_atomic(path, lambda f: f.write(page.encode("utf-8")))
  except files.io_errors() as e:
    reason = getattr(e, "strerror", None) or (str(e).strip().splitlines() or [""])[0][:200]
    raise InputError(f"{path}: cannot write the report ({reason})",
                     field="report") from None
  return path
