#!/usr/bin/env bash
# Optional: installs the BasicSR oracle beside jaxsr (tests marked `oracle`, benchmarks/).
# basicsr-fixed is installed without its dependencies: its torchvision requirement would pull a
# multi-GB CUDA build of torch. The tests load the few numpy/torch modules they need directly.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/tools/ensure_env.sh"
pip="$root/.venv/bin/python -m pip install -q --disable-pip-version-check"
$pip "torch==2.13.0" opencv-python-headless scipy
$pip --no-deps --no-build-isolation basicsr-fixed
