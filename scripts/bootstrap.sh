#!/usr/bin/env bash
# Create .venv and install the project with its test extras; a second call reuses it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV"
    "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.installed-$(sha1sum "$ROOT/pyproject.toml" | cut -c1-12)"
if [ ! -f "$STAMP" ]; then
    echo "[setup] installing napari-metastructures and its test extras (first time: several minutes, torch is ~5 GB)"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[testing]"
    rm -f "$VENV"/.installed-*
    touch "$STAMP"
else
    echo "[setup] reusing $VENV"
fi
