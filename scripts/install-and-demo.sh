#!/usr/bin/env bash
# Install the plugin with napari and TensorFlow into .venv, then run the demo on the
# bundled sample and model (arguments go to `napari-unet-weights demo`).
#   bash scripts/install-and-demo.sh                           # opens napari
#   bash scripts/install-and-demo.sh --screenshot demo.png     # no screen needed
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-lib.sh

install_system_packages
install_python_packages all
exec .venv/bin/napari-unet-weights demo "$@"
