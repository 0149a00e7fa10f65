#!/usr/bin/env bash
# Run the main job: napari with the plugin docked where a display exists, else the headless demo.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] || [ "$(uname)" = "Darwin" ]; then
    echo "[run] display found: opening napari with the Meta-Structures widgets"
    exec "$ROOT/.venv/bin/metastructures" view "$@"
else
    OUT="${METASTRUCTURES_DEMO_OUT:-$ROOT/demo-output}"
    echo "[run] no display: running the headless demo, writing to $OUT"
    exec "$ROOT/.venv/bin/metastructures" demo --out "$OUT" "$@"
fi
