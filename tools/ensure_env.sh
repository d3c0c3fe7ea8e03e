#!/usr/bin/env bash
# Creates (once) the virtual environment .venv and installs jaxsr with its test extra.
# Idempotent: a second run reuses the environment unless pyproject.toml changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${JAXSR_VENV:-$root/.venv}"
py="${PYTHON:-python3}"
stamp="$venv/.jaxsr-installed"
want="$(cat "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
  echo "[jaxsr] creating $venv" >&2
  "$py" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[jaxsr] installing jaxsr and its dependencies into $venv (about a minute)" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root[test]"
  echo "$want" > "$stamp"
fi
