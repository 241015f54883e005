"""The bundled model on every installed Keras backend: the same probabilities and labels?

Runs ``tests/scripts/backend_run.py`` once per installed backend (each in a fresh
interpreter: Keras fixes its backend per process; TensorFlow blocked for the others) on the
first N validation images of the DSB 2018 split, then compares each backend with every
other: the largest difference of the probabilities, the images whose labels are identical,
and the mAP of one's labels against the other's. Writes one JSON::

    python scripts/backend_agreement.py [--n 20] [-o docs/model-runs/backends-agreement.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "scripts" / "backend_run.py"
SPLIT = ROOT / "scripts" / "dsb2018_split.json"
DEFAULT_OUT = ROOT / "docs" / "model-runs" / "backends-agreement.json"


def _images(n: int) -> list[Path]:
    data = Path(os.environ.get("NAPARI_UNET_WEIGHTS_DSB", ROOT.parent / "shared" / "data" /
                               "dsb2018"))
    names = json.loads(SPLIT.read_text())["validation"][:n]
    return [data / "images" / f"{name}.tif" for name in names]


def _run(backend: str, folder: Path, images: list[Path]) -> dict:
    done = subprocess.run([sys.executable, str(WORKER), backend, str(folder), "--images",
                           *map(str, images)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{backend} failed:\n{done.stderr[-3000:]}")
    return json.loads((folder / f"{backend}.json").read_text())


def _compare(first: dict, second: dict, n: int) -> dict:
    from napari_unet_weights import evaluate

    differences, scores, identical = [], [], 0
    for index in range(n):
        differences.append(float(np.abs(first[f"p{index}"] - second[f"p{index}"]).max()))
        identical += bool(np.array_equal(first[f"l{index}"], second[f"l{index}"]))
        scores.append(float(evaluate(first[f"l{index}"], second[f"l{index}"]).map))
    return {"max_abs_probability_difference": max(differences),
            "per_image_max_abs_difference": differences,
            "identical_labels": f"{identical}/{n}",
            "map_min": min(scores), "map_mean": float(np.mean(scores))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="validation images (default 20)")
    parser.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    from napari_unet_weights.unet.backend import installed_backends

    images = _images(args.n)
    backends = installed_backends()
    with tempfile.TemporaryDirectory() as folder:
        records = {backend: _run(backend, Path(folder), images) for backend in backends}
        arrays = {backend: dict(np.load(Path(folder) / f"{backend}_predictions.npz"))
                  for backend in backends}
    pairs = {f"{a} vs {b}": _compare(arrays[a], arrays[b], len(images))
             for a, b in itertools.combinations(backends, 2)}
    result = {
        "what": "the bundled model (infer(): automatic tiles, default post-processing) "
                "on the first "
                f"{len(images)} validation images of scripts/dsb2018_split.json, each backend "
                "in its own process; mAP of the second's labels against the first's",
        "images": [path.stem for path in images],
        "devices": {backend: record["device"] for backend, record in records.items()},
        "pairs": pairs,
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for pair, figures in pairs.items():
        print(f"{pair}: max |Δp| {figures['max_abs_probability_difference']:.2g}, identical "
              f"labels {figures['identical_labels']}, mAP min {figures['map_min']:.4f}")


if __name__ == "__main__":
    main()
