"""The U-Net on one Keras backend, in a fresh interpreter (the backend is fixed per process).

Run by tests/test_unet_backend.py and scripts/backend_agreement.py::

    python backend_run.py BACKEND OUT [--images A.tif ...] [--train DATA.npz]
                          [--loss EXAMPLE.npz] [--load A.keras ...] [--load-when-told]

TensorFlow is blocked (``sys.modules["tensorflow"] = None``, as on a machine without it)
unless it is the backend. Writes ``OUT/<backend>.json`` (backend, device, whether
TensorFlow was imported, the loss on the example, the training's seconds and the sums of
squares of the outputs of the loaded files on a ramp) and, for ``--images``,
``OUT/<backend>_predictions.npz`` (each image's probabilities and labels); ``--train``
trains a tiny model on the images and labels of DATA.npz and saves ``OUT/<backend>.keras``.
``--load-when-told`` waits for a line on stdin before loading the files (the test runs
the backends side by side and says when the files they load are written).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

#: The tiny training of the test: a few seconds on every backend (depth 1: JAX compiles
#: each new weight shape's initialiser, for seconds).
TINY = {"n_classes": 3, "epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "patch_size": 16,
        "depth": 1, "base_filters": 4, "learning_rate": 1e-2, "val_map_every": 1}


def ramp_output(path: Path) -> float:
    """Σ p² of the file's network on a fixed ramp image: equal wherever it is loaded."""
    import numpy as np

    from napari_unet_weights import load_model, predict

    ramp = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    return float((predict(ramp, load_model(path)) ** 2).sum())


def run(backend: str, out: Path, images=(), train_data: Path | None = None,
        loss: Path | None = None, load=(), load_when_told: bool = False) -> dict:
    """The work of one backend in this process (see the module docstring); its record."""
    import numpy as np

    from napari_unet_weights.unet.backend import use_backend
    from napari_unet_weights.unet.device import device_name, keras_or_error

    use_backend(backend)
    keras = keras_or_error()
    record: dict = {"backend": keras.config.backend(), "device": device_name()}
    if loss is not None:
        from napari_unet_weights.unet.model import weighted_loss

        example = np.load(loss)
        record["loss"] = float(weighted_loss()(example["target"], example["probabilities"],
                                               sample_weight=example["weights"]))
    if images:
        import tifffile

        from napari_unet_weights import load_model
        from napari_unet_weights.unet.predict import infer

        model = load_model()
        arrays = {}
        for index, path in enumerate(images):
            result = infer(tifffile.imread(path), model, probabilities=True)
            arrays[f"p{index}"], arrays[f"l{index}"] = result.probabilities, result.labels
        np.savez_compressed(out / f"{backend}_predictions.npz", **arrays)
    if train_data is not None:
        from napari_unet_weights.unet.training.train import train

        data = np.load(train_data)
        began = time.perf_counter()
        train(list(data["images"]), list(data["labels"]), out=out / f"{backend}.keras",
              **TINY)
        record["train_seconds"] = time.perf_counter() - began
    if load_when_told:
        sys.stdin.readline()
    record["loads"] = {path.name: ramp_output(path) for path in load}
    record["tensorflow_imported"] = sys.modules.get("tensorflow") is not None
    (out / f"{backend}.json").write_text(json.dumps(record))
    return record


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("backend")
    parser.add_argument("out", type=Path)
    parser.add_argument("--images", nargs="*", type=Path, default=[])
    parser.add_argument("--train", type=Path)
    parser.add_argument("--loss", type=Path)
    parser.add_argument("--load", nargs="*", type=Path, default=[])
    parser.add_argument("--load-when-told", action="store_true")
    args = parser.parse_args()
    if args.backend != "tensorflow":
        sys.modules["tensorflow"] = None  # type: ignore[assignment]
    run(args.backend, args.out, args.images, args.train, args.loss, args.load,
        args.load_when_told)


if __name__ == "__main__":
    main()
