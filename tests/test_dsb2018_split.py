"""The recorded DSB 2018 split behind the bundled model: three parts, stratified by
modality, disjoint; the modality and crowding rules against independent expectations."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from reference import require_dsb_folder

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))
import dsb2018_split  # noqa: E402

SPLIT = json.loads((SCRIPTS / "dsb2018_split.json").read_text())
PARTS = ("train", "validation", "test")


def test_the_three_parts_are_disjoint_and_cover_the_561_samples():
    ids = [i for part in PARTS for i in SPLIT[part]]
    assert len(ids) == len(set(ids)) == 561
    assert set(ids) == set(SPLIT["modality"]) == set(SPLIT["touching"])
    assert all(SPLIT[part] == sorted(SPLIT[part]) for part in PARTS)


def test_the_test_part_has_at_least_80_images_stratified_by_modality():
    assert len(SPLIT["test"]) >= 80
    for modality in dsb2018_split.MODALITIES:
        members = [i for i in SPLIT["modality"] if SPLIT["modality"][i] == modality]
        expected = math.ceil(0.15 * len(members))
        for part in ("test", "validation"):
            chosen = [i for i in SPLIT[part] if SPLIT["modality"][i] == modality]
            assert len(chosen) == expected, (part, modality)
    counts = {m: list(SPLIT["modality"].values()).count(m) for m in dsb2018_split.MODALITIES}
    assert counts == {"fluorescence": 452, "brightfield": 15, "he": 94}


def test_the_modality_rule():
    rng = np.random.default_rng(0)
    dark = rng.integers(0, 40, (32, 32)).astype(np.uint8)
    dark[8:16, 8:16] = 200  # a bright nucleus on a dark background
    assert dsb2018_split.modality(dark) == "fluorescence"
    assert dsb2018_split.modality(np.repeat(dark[..., None], 3, -1)) == "fluorescence"
    bright = 255 - dark
    assert dsb2018_split.modality(np.repeat(bright[..., None], 4, -1)) == "brightfield"
    stained = np.repeat(bright[..., None], 3, -1)
    stained[9, 9] = (120, 60, 160)  # one pixel whose channels differ
    assert dsb2018_split.modality(stained) == "he"


def brute_force_touching(labels: np.ndarray) -> float:
    ids = [i for i in np.unique(labels) if i]
    touching = set()
    h, w = labels.shape
    for y in range(h):
        for x in range(w):
            a = labels[y, x]
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    yy, xx = y + dy, x + dx
                    if a and 0 <= yy < h and 0 <= xx < w and labels[yy, xx] not in (0, a):
                        touching.add(a)
    return len(touching) / max(len(ids), 1)


@pytest.mark.parametrize("seed", range(5))
def test_touching_fraction_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    labels = np.zeros((20, 24), np.uint16)
    for index in range(1, 9):
        y, x = rng.integers(0, 17), rng.integers(0, 21)
        labels[y:y + int(rng.integers(2, 5)), x:x + int(rng.integers(2, 5))] = index * 7
    assert dsb2018_split.touching_fraction(labels) == pytest.approx(brute_force_touching(labels))


def test_the_recorded_modalities_and_crowding_follow_the_rules():
    data = require_dsb_folder()
    for sample_id in SPLIT["test"][::9]:
        image = tifffile.imread(data / "images" / f"{sample_id}.tif")
        labels = tifffile.imread(data / "labels" / f"{sample_id}.tif")
        assert dsb2018_split.modality(image) == SPLIT["modality"][sample_id]
        assert dsb2018_split.touching_fraction(labels) == pytest.approx(
            SPLIT["touching"][sample_id], abs=1e-4)
