"""The HTML evaluation report: self-contained, the right crops, and what a real browser shows."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from jaxsr import report
from jaxsr.commands import evaluate as eval_script

from test_eval_cli import _bicubic_outputs, _save, hr_set  # noqa: F401  (fixture)


def test_best_window_is_where_the_methods_differ_most():
  hr = np.full((60, 80, 1), 128, np.uint8)
  a, b = hr.copy(), hr.copy()
  b[30:40, 50:60] = 200  # methods disagree only here
  a[0:10, 0:10] = 0  # both wrong the same way elsewhere is no disagreement ...
  b[0:10, 0:10] = 0
  y, x = report.best_window(hr, [a, b], 16)
  assert 24 <= y <= 30 and 44 <= x <= 50  # the window holds the whole disagreeing block
  y, x = report.best_window(hr, [b], 16)  # one method: its own largest error
  assert (y, x) == (0, 0)


def _report(tmp_path, hr_set, scales="2,3"):  # noqa: F811
  sr = tmp_path / "other"
  for scale in map(int, scales.split(",")):
    for name, image in _bicubic_outputs(hr_set, scale, "rgb").items():
      noisy = np.clip(image.astype(int) + np.random.RandomState(scale).randint(-9, 9, image.shape),
                      0, 255).astype(np.uint8)
      _save(sr / f"x{scale}" / f"{name}_x{scale}_SR.png", noisy)
  out = tmp_path / "report"
  table = eval_script.run_methods(datasets=str(hr_set), scales=scales, protocol="rgb",
                                  data_dir=None, sr_dir=f"noisy={sr}", bicubic=True,
                                  report=str(out))
  return out / "index.html", table


def test_report_is_self_contained_with_every_crop(tmp_path, hr_set):  # noqa: F811
  page, table = _report(tmp_path, hr_set)
  text = page.read_text()
  assert [label for label, _ in table] == ["bicubic", "noisy"]
  srcs = re.findall(r"<img [^>]*src='([^']*)'", text)
  # 3 images x 2 scales, each: LR, bicubic, noisy, HR (bicubic is a method: shown once).
  assert len(srcs) == 3 * 2 * 4
  assert all(s.startswith("data:image/png;base64,") for s in srcs)
  assert not re.search(r"(src|href)=['\"]?(https?:|//|file:)", text)
  assert "<table id='results'>" in text and text.count("<svg class='curve'") == 1
  assert "<b>" in text  # the best values
  assert sorted(p.name for p in page.parent.iterdir()) == ["index.html"]  # no temporary file left


def _chromium() -> str | None:
  for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
    if shutil.which(name):
      return shutil.which(name)
  return None


_CHECK = """<script>
window.addEventListener('load', function(){
  var imgs = Array.from(document.querySelectorAll('img.crop'));
  var ok = imgs.filter(function(i){ var r = i.getBoundingClientRect();
    return i.complete && i.naturalWidth > 0 && r.width > 0 && r.height > 0 &&
      getComputedStyle(i).visibility === 'visible'; });
  var t = document.getElementById('results').getBoundingClientRect();
  var m = document.createElement('div'); m.id = 'check';
  m.textContent = 'crops=' + imgs.length + ' visible=' + ok.length + ' natural=' +
    imgs.map(function(i){ return i.naturalWidth + 'x' + i.naturalHeight; }).join(',') +
    ' table=' + Math.round(t.width) + 'x' + Math.round(t.height);
  document.body.appendChild(m);
});
</script>"""


@pytest.mark.slow
def test_report_in_a_real_browser(tmp_path, hr_set):  # noqa: F811
  browser = _chromium()
  if browser is None:
    pytest.skip("no chromium on PATH (Debian: apt-get install -y chromium)")
  page, _ = _report(tmp_path, hr_set)
  probe = page.with_name("probe.html")
  probe.write_text(page.read_text().replace("</body>", _CHECK + "</body>"))
  flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--virtual-time-budget=5000", "--window-size=1200,900"]
  dom = subprocess.run(flags + ["--dump-dom", probe.as_uri()], capture_output=True, text=True,
                       timeout=120).stdout
  marker = re.search(r'<div id="check">crops=(\d+) visible=(\d+) natural=([\dx,]+) '
                     r'table=(\d+)x(\d+)</div>', dom)
  assert marker, dom[-2000:]
  crops, visible, natural, tw, th = marker.groups()
  assert int(crops) == 24 and int(visible) == 24
  sizes = {tuple(map(int, s.split("x"))) for s in natural.split(",")}
  assert sizes <= {(s, s) for s in range(11, report.CROP + 1)}  # square crops of real pixels
  assert int(tw) > 100 and int(th) > 40
  shot = tmp_path / "report.png"
  subprocess.run(flags + [f"--screenshot={shot}", page.as_uri()], capture_output=True,
                 timeout=120, cwd=tmp_path)
  image = np.asarray(Image.open(shot).convert("RGB"))
  assert image.shape == (900, 1200, 3) and image.std() > 10  # something was drawn
  if os.environ.get("JAXSR_KEEP_SCREENSHOT"):
    shutil.copy(shot, os.environ["JAXSR_KEEP_SCREENSHOT"])


def test_y_protocol_report_shows_the_scored_y_of_rgb_results(tmp_path, hr_set):  # noqa: F811
  sr = tmp_path / "rgb"
  for name, image in _bicubic_outputs(hr_set, 2, "rgb").items():
    _save(sr / f"{name}.png", image)
  out = tmp_path / "rep"
  eval_script.run_methods(datasets=str(hr_set), scales="2", protocol="y", data_dir=None,
                          sr_dir=str(sr), report=str(out))
  text = (out / "index.html").read_text()
  srcs = re.findall(r"<img [^>]*src='data:image/png;base64,([^']*)'", text)
  assert len(srcs) == 3 * 4  # LR, bicubic, the folder, HR
  modes = {Image.open(io.BytesIO(base64.b64decode(s))).mode for s in srcs}
  assert modes == {"L"}  # every crop is a Y plane, as scored
