#!/usr/bin/env bash
# Install everything the test suite needs, then run it (arguments go to pytest).
#   bash scripts/install-and-test.sh            # the whole suite
#   bash scripts/install-and-test.sh -k weights # a part of it
# On Debian/Ubuntu it installs the virtual display (Xvfb) and the Mesa/xcb libraries
# napari needs, with apt-get (as root, or through sudo). pytest-xvfb then starts Xvfb
# by itself, so the GUI tests run on machines without a screen.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(
  xvfb xauth libgl1-mesa-dri libglx-mesa0 libegl1 libdbus-1-3 libfontconfig1
  libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
  libxcb-render-util0 libxcb-xinerama0 libxcb-xinput0 libxcb-xfixes0 libxcb-shape0
  libxcb-cursor0
)

install_system_packages() {
  command -v dpkg-query >/dev/null || { echo "Not Debian/Ubuntu: install Xvfb and Mesa yourself."; return; }
  local missing=()
  for package in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "Installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

install_python_packages() {
  local python="${PYTHON:-python3}"
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[testing]"
}

install_system_packages
install_python_packages
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/python -m pytest "$@"
