#!/usr/bin/env bash
# Build the wheels that scripts/gpu_check.py needs on a GPU machine that has Python 3.12,
# PyTorch and/or JAX with CUDA, numpy, scipy, scikit-image, tifffile, imageio, pandas,
# h5py, rich, absl-py, ml-dtypes and packaging, but no TensorFlow, no Keras and no
# package index (docs/gpu-check.md):
#   - this package (the bundled model inside), built from the working tree;
#   - keras (the version of our CI) and its two pure-Python / compiled dependencies that
#     such machines lack: namex, optree (CPython 3.12, manylinux x86_64).
# Needs network access here; nothing is installed.
#
# Usage: bash scripts/build_gpu_wheels.sh [FOLDER]      (default: .whl, git-ignored locally)
set -euo pipefail
cd "$(dirname "$0")/.."
folder="${1:-.whl}"
python="${PYTHON:-python3}"
mkdir -p "$folder"
# a folder inside the repository stays out of git (local exclude; .gitignore untouched)
if [[ "$folder" != /* && -d .git/info ]]; then
    grep -qxF "/$folder/" .git/info/exclude 2>/dev/null || echo "/$folder/" >> .git/info/exclude
fi
"$python" -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$folder" "keras==3.15.1" "namex==0.1.0" "optree==0.20.0"
"$python" -m pip wheel --quiet --no-deps --no-build-isolation -w "$folder" . \
    || "$python" -m pip wheel --quiet --no-deps -w "$folder" .
ls -l "$folder"
