"""The bundled DSB 2018 nuclei model: shipped in the package, self-describing, working."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import tifffile

from napari_unet_weights import evaluate, load_model, segment
from napari_unet_weights._sample_data import load_sample
from napari_unet_weights.unet import BUNDLED_MODEL, read_metadata
from reference import dsb_folder

SPLIT = Path(__file__).resolve().parents[1] / "scripts" / "dsb2018_split.json"


def test_the_bundled_model_is_a_package_file_of_a_few_megabytes():
    assert BUNDLED_MODEL.is_file(), "run scripts/train_bundled_model.py --install"
    assert BUNDLED_MODEL.stat().st_size < 6 * 2**20


def test_its_metadata_records_the_fixed_split_and_the_validation_score():
    metadata = read_metadata()
    split = json.loads(SPLIT.read_text())
    assert sorted(metadata["split"]["validation"]) == sorted(split["validation"])
    assert set(metadata["split"]["train"]).isdisjoint(metadata["split"]["validation"])
    assert metadata["validation"]["map"] > 0.5
    assert len(metadata["validation"]["per_threshold"]) == 10


def test_it_reproduces_its_recorded_validation_scores_here(keras):
    """A model file predicts here exactly as where it was trained (first validation images)."""
    data = dsb_folder()
    if not (data / "images").is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs the DSB 2018 data: {data} not found")
        pytest.skip(f"DSB 2018 data not found at {data}")
    model = load_model()
    for record in read_metadata()["validation"]["per_image"][:4]:
        image = tifffile.imread(data / "images" / f"{record['image']}.tif")
        truth = tifffile.imread(data / "labels" / f"{record['image']}.tif")
        assert evaluate(truth, segment(image, model)).map == pytest.approx(record["map"],
                                                                           abs=1e-3)


def test_it_segments_the_fluorescence_sample_offline(keras):
    image, truth = load_sample("nuclei_fluorescence")
    result = evaluate(truth, segment(image))
    assert result.map > 0.25
    assert result.per_threshold["recall"].iloc[0] > 0.6
