#!/usr/bin/env bash
# The whole test suite: installs what is missing (Debian packages, .venv), then runs pytest under Xvfb.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/system_deps.sh"
bash "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
# napari's canvas needs a real (virtual) X server; offscreen breaks Image layers.
if [ "${QT_QPA_PLATFORM:-}" = "offscreen" ]; then unset QT_QPA_PLATFORM; fi
# Lint first (ruff comes with the testing extra that bootstrap.sh installs).
"$ROOT/.venv/bin/ruff" check src tests benchmarks docs scripts
exec "$ROOT/.venv/bin/python" -m pytest "$@"
