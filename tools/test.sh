#!/usr/bin/env bash
# The README's test command: install (once), then run the default test suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/tools/ensure_env.sh"
cd "$root"
exec "$root/.venv/bin/python" -m pytest -n 2 -q "$@"
