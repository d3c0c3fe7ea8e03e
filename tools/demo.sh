#!/usr/bin/env bash
# The README's main command: install (once), then run the main job on the embedded default.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/tools/ensure_env.sh"
cd "$root"
exec "$root/.venv/bin/python" eval.py --model bicubic --datasets embedded --scales 2,3,4 "$@"
