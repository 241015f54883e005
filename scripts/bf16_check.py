"""bfloat16 inference against float32: validation mAP, labels and network speed.

    python scripts/bf16_check.py [-o docs/model-runs/bf16-check.json]

The bundled model is rebuilt under Keras' ``mixed_bfloat16`` policy (float32 weights,
bfloat16 arithmetic: AMX / AVX512_BF16 on CPUs that have them) and both versions segment
every image of the validation part of the DSB 2018 split. Printed: each one's mAP against
the ground truth, the mAP of one's labels against the other's, how many images get
identical labels, the largest change of one image's mAP, and the network's MP/s on a
1024² plane (the compiled, folded step of :mod:`napari_unet_weights.unet.network`, best
of 3, both in this process). Issue 21's rule: bfloat16 only if the mAP moves < 0.005.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import tifffile

from dsb2018_split import DEFAULT_DATA, load_split


def bfloat16_copy(unet):
    """The same U-Net and weights, computing in bfloat16."""
    import keras

    from napari_unet_weights.unet.model import build_unet
    from napari_unet_weights.unet.model_file import UNetModel

    a = unet.metadata["architecture"]
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        net = build_unet(a["n_channels"], unet.keras_model.output_shape[-1], a["depth"],
                         a["base_filters"], a["batch_norm"], a["dropout"])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    net.set_weights(unet.keras_model.get_weights())
    return UNetModel(net, unet.metadata)


def network_speed(unet, side: int = 1024) -> float:
    """MP/s of the compiled network step on one ``side``² plane (best of 3)."""
    from napari_unet_weights.unet.network import predictor

    plane = np.random.default_rng(0).random((1, side, side, 1), dtype=np.float32)
    step = predictor(unet.keras_model)
    step(plane)
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        step(plane)
        seconds.append(time.perf_counter() - start)
    return side * side / 1e6 / min(seconds)


def compare(data: Path) -> dict:
    from napari_unet_weights.metrics.matching import evaluate
    from napari_unet_weights.unet import load_model, segment

    f32 = load_model(None)
    bf16 = bfloat16_copy(f32)
    scores = {"float32": [], "bfloat16": [], "between": []}
    identical = 0
    for sample_id in load_split(data)["validation"]:
        image = tifffile.imread(data / "images" / f"{sample_id}.tif")
        truth = tifffile.imread(data / "labels" / f"{sample_id}.tif")
        a, b = segment(image, f32), segment(image, bf16)
        scores["float32"].append(evaluate(truth, a).map)
        scores["bfloat16"].append(evaluate(truth, b).map)
        scores["between"].append(evaluate(a, b).map)
        identical += int(np.array_equal(a, b))
    change = np.abs(np.subtract(scores["float32"], scores["bfloat16"]))
    return {
        "part": "validation", "n_images": len(scores["between"]),
        **{f"map_{k}": round(float(np.mean(v)), 4) for k, v in scores.items()},
        "images_identical": identical, "largest_image_change": round(float(change.max()), 4),
        "network_mp_per_s_1024": {"float32": round(network_speed(f32), 3),
                                  "bfloat16": round(network_speed(bf16), 3)},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("-o", "--out", type=Path)
    args = parser.parse_args(argv)
    result = compare(args.data)
    print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
