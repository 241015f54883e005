"""Robustness suite: a model's mAP on the validation images under named transforms.

    python scripts/robustness.py MODEL.keras [MODEL ...] --part validation \
        --json docs/model-runs/robustness-NAME.json [--limit N] [--only blur_1,gamma_2]

Each transform (:data:`TRANSFORMS`) changes the raw image the way another microscope,
stain or camera would (the labels follow where the geometry changes: by nearest neighbour
for the rescales). Every image of the part is segmented clean and transformed, scored with
the DSB 2018 metric (per-image mAP over IoU 0.5:0.95, averaged), and each transform is
reported as its mAP and its ratio to the clean mAP **of the same images** (some transforms
apply to one modality only: inversion and a narrow 16-bit range to fluorescence, stain
jitter to H&E). Noise levels are set by the image's own nucleus contrast (from the ground
truth): SNR = (mean nucleus - mean background) / noise sd. Randomness is seeded per
image and transform. The rescaled images are also scored with ``diameter="auto"``
(the model estimates the nuclei's size and works at its own).

The goal of issue 18: every transform keeps at least 0.85x the clean score.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tifffile

from dsb2018_split import DEFAULT_DATA, load_split
from napari_unet_weights.unet.training import augment

#: A transform: (image, labels, rng) -> (image, labels), on raw images.
Transform = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple]
GOAL_RATIO = 0.85
#: The scale transforms, scored also with ``diameter="auto"``.
SCALES = {"scale_0.5": 0.5, "scale_0.75": 0.75, "scale_1.5": 1.5, "scale_2": 2.0}


# -- measurements on the raw image -------------------------------------------------------
def gray(image: np.ndarray) -> np.ndarray:
    """The image's mean over channels, float64."""
    return image.mean(axis=-1) if image.ndim == 3 else image.astype(np.float64)


def levels(image: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Mean background and mean nucleus intensity of the gray image."""
    values = gray(image)
    inside = labels > 0
    background = float(values[~inside].mean()) if (~inside).any() else float(values.min())
    foreground = float(values[inside].mean()) if inside.any() else float(values.max())
    return background, foreground


def background_level(image: np.ndarray, labels: np.ndarray):
    """The median background value, per channel for a colour image."""
    return np.median(image[labels == 0], axis=0) if (labels == 0).any() else 0.0


def as_dtype(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``values`` rounded and clipped into the dtype of ``like`` (integer images), else
    float32: a camera writes integers."""
    if np.issubdtype(like.dtype, np.integer):
        info = np.iinfo(like.dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(like.dtype)
    return values.astype(np.float32)


def full_scale(image: np.ndarray) -> float:
    """The largest value of the image's dtype (integers), or of the image (floats)."""
    if np.issubdtype(image.dtype, np.integer):
        return float(np.iinfo(image.dtype).max)
    return float(image.max()) or 1.0


# -- the transforms ------------------------------------------------------------------------
def gaussian(snr: float) -> Transform:
    """Additive Gaussian noise, float32 and unclipped: rounded and clipped at 0 in 8 bits,
    a dark background would lose half its noise and the SNR would not be the one named."""
    def transform(image, labels, rng):
        background, foreground = levels(image, labels)
        sd = max(abs(foreground - background), 1e-6) / snr
        return augment.gaussian_noise(rng, image.astype(np.float32), sd), labels
    return transform


def poisson(snr: float) -> Transform:
    """Shot noise above the image's minimum, the SNR named at the mean nucleus (float32)."""
    def transform(image, labels, rng):
        foreground = levels(image, labels)[1]
        base = float(np.min(gray(image)))
        signal = max(foreground - base, 1e-6)
        # signal·k photons have sd sqrt(signal·k): SNR = sqrt(signal·k)
        photons = snr**2 / signal
        return augment.poisson_noise(rng, image.astype(np.float32), photons, base), labels
    return transform


def blurred(sigma: float) -> Transform:
    return lambda image, labels, rng: (as_dtype(augment.blur(image, sigma), image), labels)


def rescaled(factor: float) -> Transform:
    def transform(image, labels, rng):
        shape = tuple(max(1, round(n * factor)) for n in labels.shape)
        return (as_dtype(augment.resize_image(image, shape), image),
                augment.resize_labels(labels, shape))
    return transform


def gamma(value: float) -> Transform:
    """``max · (I / max) ** gamma`` with the image's own maximum, as float32: rounded to
    8 bits, gamma 2 would leave the nuclei of a dim image 2 or 3 grey levels, a test of
    quantisation rather than of the intensity curve (``narrow_16bit`` tests that)."""
    def transform(image, labels, rng):
        top = float(np.max(image)) or 1.0
        return (top * (np.clip(image, 0, None) / top) ** value).astype(np.float32), labels
    return transform


def dim_nuclei(image, labels, rng):
    """Each nucleus' contrast × a gain drawn from 0.2-1 (float32, as :func:`gamma`)."""
    gains = rng.uniform(0.2, 1.0, int(labels.max()) + 1)
    return augment.object_brightness(image.astype(np.float32), labels, gains,
                                     background_level(image, labels)), labels


def narrow_16bit(image, labels, rng):
    """A 16-bit image whose signal spans 100 grey levels above an offset of 1000."""
    values = gray(image)
    low, high = float(values.min()), float(values.max())
    scaled = 1000 + (values - low) / max(high - low, 1e-6) * 100
    return np.rint(scaled).astype(np.uint16), labels


def inverted(image, labels, rng):
    return as_dtype(full_scale(image) - image.astype(np.float64), image), labels


def blue_channel_rgb(image, labels, rng):
    """A fluorescence image saved as an RGB composite: the signal in the blue channel
    (DAPI / Hoechst), red and green empty."""
    rgb = np.zeros((*labels.shape, 3), image.dtype)
    rgb[..., 2] = image
    return rgb, labels


def stain_jitter(image, labels, rng):
    """HED jitter of the training augmentation's range (Tellez et al. 2018)."""
    scales = rng.uniform(1 - augment.STAIN_SCALE, 1 + augment.STAIN_SCALE, 3)
    shifts = rng.uniform(-augment.STAIN_SHIFT, augment.STAIN_SHIFT, 3)
    return (as_dtype(augment.hed_jitter(image, scales, shifts) * 255.0, image[..., :3]),
            labels)


def _grayscale(modality: str) -> bool:
    return modality == "fluorescence"


#: name -> (transform, which modalities it applies to)
TRANSFORMS: dict[str, tuple[Transform, Callable[[str], bool]]] = {
    "gaussian_snr10": (gaussian(10), lambda m: True),
    "gaussian_snr3": (gaussian(3), lambda m: True),
    "poisson_snr10": (poisson(10), lambda m: True),
    "poisson_snr3": (poisson(3), lambda m: True),
    "blur_1": (blurred(1), lambda m: True),
    "blur_2": (blurred(2), lambda m: True),
    **{name: (rescaled(factor), lambda m: True) for name, factor in SCALES.items()},
    "gamma_0.5": (gamma(0.5), lambda m: True),
    "gamma_2": (gamma(2), lambda m: True),
    "dim_nuclei": (dim_nuclei, lambda m: True),
    "narrow_16bit": (narrow_16bit, _grayscale),
    "inverted": (inverted, _grayscale),
    "blue_channel_rgb": (blue_channel_rgb, _grayscale),
    "stain_jitter": (stain_jitter, lambda m: m == "he"),
}


# -- scoring -----------------------------------------------------------------------------
def score(model, image, truth, **options) -> float:
    from napari_unet_weights.metrics.matching import evaluate
    from napari_unet_weights.unet import segment

    return round(float(evaluate(truth, segment(image, model, **options)).map), 4)


def supports_diameter() -> bool:
    import inspect

    from napari_unet_weights.unet import segment

    return "diameter" in inspect.signature(segment).parameters


def as_stored(image: np.ndarray) -> np.ndarray:
    """A grayscale image stored as RGB (equal channels) as one plane: noise added to each
    channel alone would make it a colour image, which the model reads otherwise."""
    if image.ndim == 3 and all(np.array_equal(image[..., 0], image[..., c])
                               for c in range(1, min(3, image.shape[-1]))):
        return image[..., 0]
    return image


def score_images(model, ids: list[str], split: dict, data: Path, names: list[str]) -> list[dict]:
    """Per image: the clean mAP and the mAP under each applicable transform."""
    with_diameter = supports_diameter()
    rows = []
    for index, sample_id in enumerate(ids):
        image = as_stored(tifffile.imread(data / "images" / f"{sample_id}.tif"))
        truth = tifffile.imread(data / "labels" / f"{sample_id}.tif")
        modality = split["modality"][sample_id]
        row = {"image": sample_id, "modality": modality, "clean": score(model, image, truth)}
        for number, name in enumerate(names):
            transform, applies = TRANSFORMS[name]
            if not applies(modality):
                continue
            rng = np.random.default_rng([index, number])
            changed, labels = transform(image, truth, rng)
            row[name] = score(model, changed, labels)
            if name in SCALES and with_diameter:
                row[f"{name}+auto"] = score(model, changed, labels, diameter="auto")
        rows.append(row)
        print(f"  {index + 1}/{len(ids)} {sample_id[:12]} clean {row['clean']:.3f}",
              file=sys.stderr, flush=True)
    return rows


def summary(rows: list[dict]) -> dict:
    """Per transform: images, mAP, the clean mAP of the same images, their ratio."""
    columns = [key for key in rows[0] if key not in ("image", "modality", "clean")]
    for row in rows[1:]:
        columns += [key for key in row if key not in columns and key not in
                    ("image", "modality", "clean")]
    table = {"clean": {"n_images": len(rows),
                       "map": round(float(np.mean([r["clean"] for r in rows])), 4)}}
    for name in columns:
        chosen = [r for r in rows if name in r]
        transformed = float(np.mean([r[name] for r in chosen]))
        clean = float(np.mean([r["clean"] for r in chosen]))
        table[name] = {"n_images": len(chosen), "map": round(transformed, 4),
                       "clean_map": round(clean, 4),
                       "ratio": round(transformed / clean, 3) if clean else None}
    return table


def markdown(table: dict) -> str:
    lines = ["| transform | images | mAP | clean mAP (same images) | ratio |",
             "|---|---|---|---|---|"]
    for name, entry in table.items():
        if name == "clean":
            lines.append(f"| clean | {entry['n_images']} | {entry['map']:.3f} | | |")
            continue
        flag = "" if entry["ratio"] is None or entry["ratio"] >= GOAL_RATIO else " ✗"
        lines.append(f"| {name} | {entry['n_images']} | {entry['map']:.3f} | "
                     f"{entry['clean_map']:.3f} | {entry['ratio']}{flag} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model files, or 'bundled'")
    parser.add_argument("--part", choices=("validation", "test"), default="validation")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, help="only every k-th image, to keep N of them")
    parser.add_argument("--only", help="comma-separated transform names (default: all)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(TRANSFORMS)
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown:
        parser.error(f"unknown transforms {unknown}; known: {', '.join(TRANSFORMS)}")
    split = load_split(args.data)
    ids = split[args.part]
    if args.limit:
        ids = ids[::max(1, len(ids) // args.limit)][:args.limit]
    from napari_unet_weights.unet import load_model

    results = {}
    for path in args.models:
        start = time.monotonic()
        model = load_model(None if path == "bundled" else path)
        rows = score_images(model, ids, split, args.data, names)
        table = summary(rows)
        results[path] = {"part": args.part, "table": table, "per_image": rows,
                         "seconds": round(time.monotonic() - start, 1)}
        print(f"{path} [{args.part}, {len(ids)} images]\n{markdown(table)}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
