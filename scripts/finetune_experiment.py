"""Fine-tuning the bundled model on a few annotated images vs training from scratch.

    python scripts/finetune_experiment.py --minutes 5 --out runs/finetune \
        --json docs/model-runs/finetune.json

Two subsets of the **test** part of the recorded split (``scripts/dsb2018_split.json``),
which nothing was trained, tuned or selected on:

- ``he``: the H&E histology test images;
- ``fluorescence-small``: the fluorescence test images whose median nucleus area is
  below :data:`SMALL_AREA` pixels, where the bundled model is weakest among fluorescence
  images (chosen by the bundled model's recorded per-image test scores).

In each, :data:`N_ANNOTATED` images chosen with ``numpy.random.default_rng(SEED)`` play
the images a user annotated (their ground truth stands for the corrected labels); the
other images of the subset score three models with the DSB 2018 metric: the bundled
model, the bundled model fine-tuned on the annotated images (``train(...,
initial_model="bundled", finish_within=minutes*60)``, the fine-tuning defaults,
validating on the annotated images), and a model of the same architecture and input
handling trained from scratch on the same images with the same budget and schedule
(learning rate 1e-3, constant; the default post-processing: there is no separate image
to tune it on).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import tifffile

from dsb2018_split import DEFAULT_DATA, load_split
from evaluate_model import score_model

SMALL_AREA = 100
N_ANNOTATED = 4
SEED = 0
#: The schedule both runs share (fine-tuning's defaults, see unet.parent).
SHARED = {"epochs": 200, "steps_per_epoch": 20, "val_map_every": 1,
          "early_stopping_patience": 10, "lr_schedule": "constant", "max_seconds": None}


def median_area(data: Path, sample_id: str) -> float:
    labels = tifffile.imread(data / "labels" / f"{sample_id}.tif")
    areas = np.bincount(labels.ravel())[1:]
    return float(np.median(areas[areas > 0]))


def subsets(split: dict, data: Path, part: str) -> dict[str, list[str]]:
    test = split[part]
    fluorescence = [i for i in test if split["modality"][i] == "fluorescence"]
    return {
        "he": [i for i in test if split["modality"][i] == "he"],
        "fluorescence-small": [i for i in fluorescence
                               if median_area(data, i) < SMALL_AREA],
    }


def read_pairs(data: Path, ids: list[str]) -> tuple[list, list]:
    return ([tifffile.imread(data / "images" / f"{i}.tif") for i in ids],
            [tifffile.imread(data / "labels" / f"{i}.tif") for i in ids])


def run_summary(result) -> dict:
    training = result.model.metadata["training"]
    return {"seconds": round(result.seconds, 1), "epochs_run": training["epochs_run"],
            "steps": int(training["epochs_run"] * training["steps_per_epoch"]),
            "best_epoch": training["best_epoch"],
            "time_limit_reached": result.time_limit_reached,
            "validated_on": result.validation["on"],
            "postprocess_from": result.validation["postprocess_from"],
            "learning_rate": training["learning_rate"]}


def budget(args) -> dict:
    """A time budget (``--minutes``), or a fixed number of steps (``--steps``)."""
    if args.steps:
        return {"epochs": max(1, args.steps // SHARED["steps_per_epoch"]),
                "early_stopping_patience": 10_000}
    return {"finish_within": args.minutes * 60}


def train_runs(images, labels, args, out: Path) -> dict[str, dict]:
    from napari_unet_weights.unet.config import TrainConfig
    from napari_unet_weights.unet.model_file import read_metadata
    from napari_unet_weights.unet.training.train import train

    runs = {}
    if "fine_tuned" in args.runs:
        extra = {} if args.lr is None else {"learning_rate": args.lr}
        fine = train(images, labels, initial_model="bundled", seed=SEED,
                     out=out / "fine_tuned.keras", **budget(args), **extra)
        runs["fine_tuned"] = run_summary(fine)
    if "scratch" in args.runs:
        bundled = TrainConfig.from_metadata(read_metadata(None))
        scratch = train(images, labels, bundled.replace(**SHARED, seed=SEED),
                        validation="training", out=out / "scratch.keras", **budget(args))
        runs["scratch"] = run_summary(scratch)
    return runs


def with_postprocess_tuned_on(path: Path, images, labels, out: Path) -> Path:
    """A copy of the model file whose post-processing is tuned on ``images``."""
    from types import SimpleNamespace

    from napari_unet_weights.unet import load_model, predict
    from napari_unet_weights.unet.model_file import UNetModel
    from napari_unet_weights.unet.training.tuning import _tune

    model = load_model(path)
    probabilities = [predict(image, model) for image in images]
    samples = [SimpleNamespace(name=i, labels=truth) for i, truth in enumerate(labels)]
    parameters, _ = _tune(samples, probabilities, model.n_classes)
    return UNetModel(model.keras_model, {**model.metadata, "postprocess": parameters}).save(out)


def experiment(name: str, ids: list[str], split: dict, data: Path, args) -> dict:
    from napari_unet_weights.unet.model_file import BUNDLED_MODEL

    rng = np.random.default_rng(SEED)
    annotated = sorted(rng.choice(ids, N_ANNOTATED, replace=False).tolist())
    scored = [i for i in ids if i not in annotated]
    folder = args.out / name
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = read_pairs(data, annotated)
    runs = train_runs(images, labels, args, folder)
    models = {"bundled": BUNDLED_MODEL, **{key: folder / f"{key}.keras" for key in runs}}
    if args.tune_on_annotated:
        models.update({f"{key}+pp": with_postprocess_tuned_on(
            path, images, labels, folder / f"{key}_pp.keras")
            for key, path in list(models.items())})
    scores = {key: score_model(path, scored, split, data, tta=False)
              for key, path in models.items()}
    return {"annotated": annotated, "scored": scored, "runs": runs,
            "map": {key: s["map"] for key, s in scores.items()},
            "per_image": {key: s["per_image"] for key, s in scores.items()}}


def table(results: dict) -> str:
    """A markdown row per subset: the mAP of every model scored (and the steps trained)."""
    first = next(iter(results["subsets"].values()))
    keys = list(first["map"])
    lines = [f"| {results['part']} subset (scored; annotated) | " + " | ".join(keys) + " |",
             "|---" * (len(keys) + 1) + "|"]
    for name, r in results["subsets"].items():
        cells = []
        for key in keys:
            run = r["runs"].get(key.removesuffix("+pp"))
            steps = f" ({run['steps']} steps)" if run and not key.endswith("+pp") else ""
            cells.append(f"{r['map'][key]:.3f}{steps}")
        lines.append(f"| {name} ({len(r['scored'])}; {len(r['annotated'])}) | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=Path("runs/finetune"))
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--only", choices=("he", "fluorescence-small"))
    parser.add_argument("--part", choices=("test", "validation"), default="test")
    parser.add_argument("--steps", type=int, help="fixed steps instead of --minutes")
    parser.add_argument("--lr", type=float, help="fine-tuning learning rate")
    parser.add_argument("--runs", default="fine_tuned,scratch")
    parser.add_argument("--tune-on-annotated", action="store_true",
                        help="also score each model with its post-processing tuned on the "
                        "annotated images")
    args = parser.parse_args(argv)
    split = load_split(args.data)
    start = time.monotonic()
    results = {"part": args.part, "minutes": None if args.steps else args.minutes,
               "steps": args.steps, "lr": args.lr, "seed": SEED, "small_area": SMALL_AREA,
               "subsets": {}}
    for name, ids in subsets(split, args.data, args.part).items():
        if args.only in (None, name):
            results["subsets"][name] = experiment(name, ids, split, args.data, args)
            print(json.dumps({k: v for k, v in results["subsets"][name].items()
                              if k != "per_image"}), flush=True)
    results["seconds"] = round(time.monotonic() - start, 1)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
