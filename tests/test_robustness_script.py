"""scripts/robustness.py: each transform does what its name says (no TensorFlow, no data)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))
import robustness  # noqa: E402


def nuclei(shape=(64, 80), background=20, level=120):
    rows, cols = np.indices(shape)
    labels = np.zeros(shape, np.uint16)
    for number, (r, c) in enumerate(((16, 16), (40, 50), (20, 60)), start=1):
        labels[(rows - r) ** 2 + (cols - c) ** 2 <= 64] = number
    image = np.where(labels > 0, level, background).astype(np.uint8)
    return image, labels


@pytest.mark.parametrize("snr", [10, 3])
def test_gaussian_noise_has_the_named_snr(snr):
    image, labels = nuclei()
    noisy, same = robustness.TRANSFORMS[f"gaussian_snr{snr}"][0](
        image, labels, np.random.default_rng(0))
    assert same is labels and noisy.dtype == np.float32
    background = noisy[labels == 0].astype(float)
    assert 100 / background.std() == pytest.approx(snr, rel=0.1)


def test_poisson_noise_has_the_named_snr_at_the_nuclei():
    image, labels = nuclei(background=0, level=100)
    noisy = robustness.poisson(5)(image.astype(np.float32), labels,
                                  np.random.default_rng(1))[0]
    inside = noisy[labels > 0]
    assert inside.mean() / inside.std() == pytest.approx(5, rel=0.1)
    assert np.all(noisy[labels == 0] == 0)


def test_rescales_resize_image_and_labels_alike():
    image, labels = nuclei()
    for name, factor in robustness.SCALES.items():
        scaled, scaled_labels = robustness.TRANSFORMS[name][0](image, labels, None)
        assert scaled.shape == scaled_labels.shape == (round(64 * factor), round(80 * factor))
        assert set(np.unique(scaled_labels)) == {0, 1, 2, 3}
        assert scaled.dtype == np.uint8


def test_intensity_transforms():
    image, labels = nuclei()
    brighter = robustness.TRANSFORMS["gamma_0.5"][0](image, labels, None)[0]
    assert brighter.max() == pytest.approx(120) and brighter.min() == pytest.approx(
        120 * (20 / 120) ** 0.5, rel=1e-5)
    narrow = robustness.narrow_16bit(image, labels, None)[0]
    assert narrow.dtype == np.uint16 and (narrow.min(), narrow.max()) == (1000, 1100)
    assert np.array_equal(robustness.inverted(image, labels, None)[0], 255 - image)
    dimmed = robustness.dim_nuclei(image, labels, np.random.default_rng(2))[0]
    assert dimmed[labels > 0].max() <= 120 + 1e-3 and dimmed[labels > 0].min() >= 20
    composite = robustness.blue_channel_rgb(image, labels, None)[0]
    assert composite.shape == (64, 80, 3) and np.array_equal(composite[..., 2], image)
    assert not composite[..., :2].any()


def test_grayscale_stored_as_rgb_is_one_plane_and_colour_stays():
    image, _ = nuclei()
    stored = np.repeat(image[..., None], 3, axis=-1)
    assert np.array_equal(robustness.as_stored(stored), image)
    colour = stored.copy()
    colour[..., 0] //= 2
    assert robustness.as_stored(colour) is colour


def test_the_summary_compares_each_transform_with_the_same_images_clean():
    rows = [{"image": "a", "modality": "fluorescence", "clean": 0.8, "blur_1": 0.4,
             "inverted": 0.8},
            {"image": "b", "modality": "he", "clean": 0.4, "blur_1": 0.4}]
    table = robustness.summary(rows)
    assert table["clean"] == {"n_images": 2, "map": 0.6}
    assert table["blur_1"] == {"n_images": 2, "map": 0.4, "clean_map": 0.6, "ratio": 0.667}
    assert table["inverted"] == {"n_images": 1, "map": 0.8, "clean_map": 0.8, "ratio": 1.0}
    assert "✗" in robustness.markdown(table).splitlines()[3]  # blur_1 below 0.85
