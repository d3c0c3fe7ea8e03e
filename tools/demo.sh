#!/usr/bin/env bash
# The README's main command: install (once), then train ESPCN x3 on the embedded default
# (a few minutes on 2 CPU cores) and print the evaluation table; runs/default holds the
# checkpoints, TensorBoard logs, summary.json and comparison.png. A second run resumes from
# the finished checkpoint and only evaluates. Extra arguments go to train.py.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/tools/ensure_env.sh"
cd "$root"
exec "$root/.venv/bin/python" train.py --config configs/default.py --workdir "${JAXSR_WORKDIR:-runs/default}" "$@"
