#!/usr/bin/env bash
# Install everything the test suite needs, then run it (arguments go to pytest).
#   bash scripts/install-and-test.sh            # the whole suite
#   bash scripts/install-and-test.sh -k weights # a part of it
# On Debian/Ubuntu it installs the virtual display (Xvfb) and the Mesa/xcb libraries
# napari needs (see install-lib.sh). pytest-xvfb then starts Xvfb by itself, so the GUI
# tests run on machines without a screen.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-lib.sh

install_system_packages
install_python_packages testing
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/python -m pytest "$@"
