#!/usr/bin/env bash
# Install the Debian packages a headless Qt/napari run needs, when missing and when we can.
set -uo pipefail
PKGS="xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libgl1 libegl1 libxkbcommon-x11-0 libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-image0 libdbus-1-3 libfontconfig1"
missing=""
for p in $PKGS; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    SUDO=""
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "[setup] missing Debian packages:$missing (install them with apt-get as root)" >&2
    exit 0
fi
echo "[setup] installing Debian packages:$missing"
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
