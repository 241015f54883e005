"""Network input from colour images: the haematoxylin rule against skimage's colour
deconvolution, and grayscale images left as they were."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2hed
from skimage.draw import disk

from napari_unet_weights.unet.model_file import metadata_problem
from napari_unet_weights.unet.preprocess import prepare_image, to_gray

HEMATOXYLIN = {"input": {"mode": "gray", "colour": "hematoxylin"}}
MEAN = {"input": {"mode": "gray", "colour": "mean"}}


def he_like(size=64, seed=0):
    """Pink (eosin) tissue with purple-blue (haematoxylin) nuclei, and its nucleus mask."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), bool)
    for centre in ((16, 16), (40, 44), (20, 48)):
        mask[disk(centre, 7, shape=mask.shape)] = True
    image = np.where(mask[..., None], (95, 60, 150), (235, 185, 215)).astype(float)
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), mask


def test_the_haematoxylin_input_is_skimage_colour_deconvolution_normalised():
    image, _ = he_like()
    h = rgb2hed(image)[..., 0]
    low, high = np.percentile(h, (1.0, 99.8))
    expected = (h - low) / (high - low)
    x = prepare_image(image, HEMATOXYLIN)
    assert x.shape == (64, 64, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x[..., 0], expected, atol=1e-5)


def test_nuclei_are_bright_in_the_haematoxylin_input_as_in_fluorescence():
    image, mask = he_like()
    for metadata in (HEMATOXYLIN, MEAN):  # the mean rule gets there by inverting
        x = prepare_image(image, metadata)[..., 0]
        assert x[mask].mean() > x[~mask].mean() + 0.5


def test_the_stain_separates_nuclei_where_the_mean_of_the_channels_does_not():
    """Dark pink tissue as dark as the nuclei: only the haematoxylin channel tells them apart."""
    image, mask = he_like()
    image[~mask] = (150, 40, 110)  # eosin-rich, about as dark on average as a nucleus
    contrast = {}
    for name, metadata in (("hematoxylin", HEMATOXYLIN), ("mean", MEAN)):
        x = prepare_image(image, metadata)[..., 0]
        contrast[name] = abs(x[mask].mean() - x[~mask].mean())
    assert contrast["hematoxylin"] > 0.5 > contrast["mean"]


def test_grayscale_images_are_unchanged_by_the_colour_rule():
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 255, (40, 48)).astype(np.uint8)
    as_rgb = np.repeat(gray[..., None], 3, axis=-1)
    for image in (gray, as_rgb):
        np.testing.assert_array_equal(prepare_image(image, HEMATOXYLIN),
                                      prepare_image(image, MEAN))
    np.testing.assert_array_equal(to_gray(as_rgb, colour="hematoxylin"),
                                  gray.astype(np.float32))


@pytest.mark.parametrize("channel", [0, 1, 2])
def test_a_one_channel_rgb_composite_is_read_as_grayscale(channel):
    """DAPI saved in the blue channel of an RGB file (red and green empty, or constant)."""
    gray = np.random.default_rng(2).integers(0, 255, (40, 48)).astype(np.uint8)
    composite = np.full((40, 48, 3), 7, np.uint8)
    composite[..., channel] = gray
    np.testing.assert_allclose(prepare_image(composite, HEMATOXYLIN),
                               prepare_image(gray, HEMATOXYLIN), atol=1e-6)
    two = composite.copy()
    two[..., (channel + 1) % 3] = gray[::-1]  # a second channel with signal: a colour image
    assert not np.allclose(prepare_image(two, HEMATOXYLIN), prepare_image(two, MEAN))


def test_an_unknown_colour_rule_is_named():
    with pytest.raises(ValueError, match="colour must be one of"):
        to_gray(np.zeros((8, 8, 3)), colour="eosin")
    problem = metadata_problem({"input": {"colour": "eosin"}})
    assert problem.startswith("input.colour: must be 'mean' or 'hematoxylin'")
    assert metadata_problem({"input": {"colour": "hematoxylin"}}) is None


def colour_cases() -> dict[str, tuple[np.ndarray, bool]]:
    """Name → (RGB image, whether it is a colour image)."""
    gray = np.random.default_rng(3).integers(0, 255, (40, 48)).astype(np.uint8)
    composite = np.zeros((40, 48, 3), np.uint8)
    composite[..., 2] = gray  # DAPI in blue, red and green empty
    two = composite.copy()
    two[..., 0] = gray[::-1]
    return {"gray as RGB": (np.repeat(gray[..., None], 3, axis=-1), False),
            "one-channel composite": (composite, False), "two channels vary": (two, True),
            "H&E": (he_like()[0][:40, :48], True), "RGBA of H&E": (np.dstack(
                [he_like()[0][:40, :48], np.full((40, 48), 255, np.uint8)]), True)}


@pytest.mark.parametrize("name", list(colour_cases()))
def test_one_colour_rule_for_every_user(name):
    """preprocess.is_colour decides, for the in-memory input (to_gray) and the statistics
    of a chunked image (lazy_stats) alike."""
    import dask
    import dask.array as da

    from napari_unet_weights.unet.chunked.lazy_stats import plane_statistics
    from napari_unet_weights.unet.preprocess import DEFAULT_INPUT, DEFAULT_NORMALIZATION, is_colour

    image, expected = colour_cases()[name]
    assert is_colour(image[..., :3]) is expected
    hematoxylin, mean = (to_gray(image, colour=c) for c in ("hematoxylin", "mean"))
    assert np.array_equal(hematoxylin, mean) is not expected
    metadata = {"input": {**DEFAULT_INPUT, "colour": "hematoxylin"},
                "normalization": DEFAULT_NORMALIZATION}
    found = plane_statistics(da.from_array(image), metadata, channels=True,
                             compute=dask.compute)
    assert found.planes[()].colour == ("hematoxylin" if expected else "mean")
