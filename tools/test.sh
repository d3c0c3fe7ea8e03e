#!/usr/bin/env bash
# The README's test command: install (once: jaxsr with every extra, and the test oracles), then
# run the default test suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/tools/ensure_env.sh"
bash "$root/tools/install_oracle.sh"
cd "$root"
exec "$root/.venv/bin/python" -m pytest -n 2 -q "$@"
