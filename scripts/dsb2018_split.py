"""The recorded three-way split of DSB 2018 and the rules behind it (modality, crowding).

    python scripts/dsb2018_split.py            # print the split's counts (create it if absent)

``scripts/dsb2018_split.json`` holds, for the 561 DSB 2018 stage-1 samples in
``../shared/data/dsb2018``:

- **modality** of every image, by a recorded rule (:func:`modality`): ``"he"`` (H&E
  histology) when its colour channels differ anywhere; otherwise ``"brightfield"`` when
  the background is bright (median above the middle of the 1st-99.8th percentile range,
  the rule the model's input uses to invert), else ``"fluorescence"``;
- **touching**: the share of its nuclei that touch another nucleus (8-neighbourhood);
  an image is *crowded* when it is at least :data:`CROWDED` (20 %);
- **train / validation / test**: per modality, the sorted ids permuted with
  ``numpy.random.default_rng(SPLIT_SEED)``; the first 15 % (rounded up) are test, the
  next 15 % validation, the rest train. Validation chooses epochs, post-processing and
  every design decision; test is only looked at to report.

The file is created once and then only read: never regenerate it for a published model.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage as ndi

from napari_unet_weights.qa.modality import MODALITIES, modality  # the rule's one home

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "dsb2018"
SPLIT_FILE = REPO / "scripts" / "dsb2018_split.json"
SPLIT_SEED = 2018
TEST_FRACTION = VALIDATION_FRACTION = 0.15
MODALITY_NAMES = {"fluorescence": "fluorescence", "brightfield": "brightfield",
                  "he": "H&E histology"}
#: An image is crowded when at least this share of its nuclei touch another one.
CROWDED = 0.2


def touching_fraction(labels: np.ndarray) -> float:
    """Share of the objects that touch another object (8-neighbourhood)."""
    labels = labels.astype(np.int64)
    largest = ndi.grey_dilation(labels, size=(3, 3))
    background_high = np.where(labels > 0, labels, labels.max() + 1)
    smallest = ndi.grey_erosion(background_high, size=(3, 3))
    contact = (labels > 0) & ((largest > labels) | (smallest < labels))
    n_objects = len(np.unique(labels)) - 1
    return len(np.unique(labels[contact])) / max(n_objects, 1)


def _describe(data: Path, ids: list[str]) -> tuple[dict, dict]:
    modalities, touching = {}, {}
    for sample_id in ids:
        modalities[sample_id] = modality(tifffile.imread(data / "images" / f"{sample_id}.tif"))
        touching[sample_id] = round(touching_fraction(
            tifffile.imread(data / "labels" / f"{sample_id}.tif")), 4)
    return modalities, touching


def _three_way(ids: list[str], rng: np.random.Generator) -> tuple[list, list, list]:
    order = [ids[i] for i in rng.permutation(len(ids))]
    n_test = math.ceil(len(ids) * TEST_FRACTION)
    n_val = math.ceil(len(ids) * VALIDATION_FRACTION)
    return order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test]


def create_split(data: Path) -> dict:
    """The split of the module docstring, computed from the images in ``data``."""
    ids = sorted(p.stem for p in (data / "images").glob("*.tif"))
    if not ids:
        raise SystemExit(f"no images in {data / 'images'}")
    modalities, touching = _describe(data, ids)
    split = {"train": [], "validation": [], "test": []}
    for name in MODALITIES:
        members = [i for i in ids if modalities[i] == name]
        rng = np.random.default_rng([SPLIT_SEED, MODALITIES.index(name)])
        for part, chosen in zip(split, _three_way(members, rng)):
            split[part].extend(chosen)
    return {
        "dataset": f"DSB 2018 stage 1 training ({len(ids)} samples)",
        "rule": "per modality: sorted ids permuted with numpy default_rng([2018, "
                "modality index]); first 15 % (ceil) test, next 15 % validation, rest train",
        "modality_rule": "he: colour channels differ somewhere; brightfield: grayscale with "
                         "median above the middle of the 1st-99.8th percentile range; "
                         "else fluorescence",
        "crowded_rule": f"touching >= {CROWDED}: share of nuclei touching another "
                        "(8-neighbourhood)",
        "seed": SPLIT_SEED,
        **{part: sorted(members) for part, members in split.items()},
        "modality": modalities,
        "touching": touching,
    }


def load_split(data: Path = DEFAULT_DATA, path: Path = SPLIT_FILE) -> dict:
    """The recorded split; created from ``data`` on the first call."""
    if path.exists():
        split = json.loads(path.read_text())
        if "test" in split:
            return split
    split = create_split(data)
    path.write_text(json.dumps(split, indent=1) + "\n")
    print(f"wrote the split to {path}", file=sys.stderr)
    return split


def counts(split: dict) -> str:
    """A small table of images per part and modality."""
    lines = ["part        " + " ".join(f"{m:>12}" for m in MODALITIES) + "   all  crowded"]
    for part in ("train", "validation", "test"):
        ids = split[part]
        per = [sum(split["modality"][i] == m for i in ids) for m in MODALITIES]
        crowded = sum(split["touching"][i] >= CROWDED for i in ids)
        lines.append(f"{part:<12}" + " ".join(f"{n:>12}" for n in per)
                     + f" {len(ids):>5} {crowded:>8}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(counts(load_split()))
