"""The bundled DSB 2018 nuclei model: shipped in the package, self-describing, working."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_unet_weights import evaluate, load_model, segment
from napari_unet_weights._sample_data import load_sample
from napari_unet_weights.unet import BUNDLED_MODEL, read_metadata
from reference import require_dsb_folder

SPLIT = Path(__file__).resolve().parents[1] / "scripts" / "dsb2018_split.json"


def test_the_bundled_model_is_a_package_file_of_a_few_megabytes():
    assert BUNDLED_MODEL.is_file(), "run scripts/train_bundled_model.py --install"
    assert BUNDLED_MODEL.stat().st_size < 10 * 2**20


def test_its_metadata_records_the_fixed_split_and_both_scores_apart():
    metadata = read_metadata()
    split = json.loads(SPLIT.read_text())
    trained_on = {name.split("__copy")[0] for name in metadata["split"]["train"]}
    assert trained_on == set(split["train"])  # oversampled copies are named name__copyN
    assert sorted(metadata["split"]["validation"]) == sorted(split["validation"])
    assert trained_on.isdisjoint(split["test"]) and trained_on.isdisjoint(split["validation"])
    assert len(metadata["validation"]["per_threshold"]) == 10
    test = metadata["test"]
    assert test["part"] == "test" and test["n_images"] == len(split["test"]) >= 80
    assert sorted(r["image"] for r in test["per_image"]) == sorted(split["test"])
    assert set(test["per_modality"]) == {"fluorescence", "brightfield", "he"}
    assert test["map"] == pytest.approx(np.mean([r["map"] for r in test["per_image"]]),
                                        abs=1e-4)


def test_it_reproduces_its_recorded_test_scores_here(keras):
    """A model file predicts here exactly as where it was scored (a few test images)."""
    data = require_dsb_folder()
    model = load_model()
    records = read_metadata()["test"]["per_image"]
    for record in [*records[:3], *(r for r in records if r["modality"] == "he")][:5]:
        image = tifffile.imread(data / "images" / f"{record['image']}.tif")
        truth = tifffile.imread(data / "labels" / f"{record['image']}.tif")
        assert evaluate(truth, segment(image, model)).map == pytest.approx(record["map"],
                                                                           abs=1e-3)


def test_it_segments_the_fluorescence_sample_offline(keras):
    image, truth = load_sample("nuclei_fluorescence")
    result = evaluate(truth, segment(image))
    assert result.map > 0.25
    assert result.per_threshold["recall"].iloc[0] > 0.6
