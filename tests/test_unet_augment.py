"""Training augmentation: each transform against an independent expectation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.color import rgb2hed

from napari_unet_weights.unet.config import TrainConfig
from napari_unet_weights.unet.targets import targets
from napari_unet_weights.unet.training import augment
from napari_unet_weights.unet.training.augment import Augmentation, context_margin
from napari_unet_weights.unet.training.data import PatchSampler, Sample, prepare_sample


def discs(shape=(96, 112), centres=((20, 20), (20, 34), (60, 70), (75, 30)), radius=8):
    """Instance labels of discs (the first two touch), ids 1.. in order."""
    rows, cols = np.indices(shape)
    labels = np.zeros(shape, np.uint16)
    for number, (r, c) in enumerate(centres, start=1):
        labels[(rows - r) ** 2 + (cols - c) ** 2 <= radius**2] = number
    return labels


def sampler_for(labels, image=None, **options) -> PatchSampler:
    config = TrainConfig(patch_size=32, depth=2, **options)
    image = (labels > 0).astype(np.float32) if image is None else image
    return PatchSampler([prepare_sample(Sample("s", image, labels), config)], config)


# -- the zoom keeps the weight map exact --------------------------------------------------
@pytest.mark.parametrize("zoom", [2.0, 0.5])
def test_zoomed_weights_equal_the_weight_map_of_the_zoomed_labels(zoom):
    labels = discs((320, 352), radius=12,
                   centres=((40, 40), (40, 56), (150, 150), (150, 174), (250, 80)))
    sampler = sampler_for(labels)
    margin, size = sampler.margin, sampler.patch_size
    assert margin == context_margin(10.0, 5.0) == 26
    # independent zoom of the whole label image: repeat pixels (2x) or take every second
    # one, the centre-nearest pixel (0.5x)
    if zoom == 2.0:
        whole = np.repeat(np.repeat(labels, 2, axis=0), 2, axis=1)
    else:
        whole = labels[1::2, 1::2]
    expected_target, expected_weights = targets(whole, 3, 10.0, 5.0, True, "none")
    top, left = (40, 46) if zoom == 2.0 else (140, 140)  # windows inside the image
    x, target, weights, patch_labels = sampler.zoomed(sampler.samples[0], sampler.labels[0],
                                                      top, left, zoom)
    origin = (round(top * zoom), round(left * zoom))
    box = tuple(slice(o, o + size) for o in origin)
    assert weights.shape == target.shape == (size, size) and x.shape == (size, size, 1)
    np.testing.assert_array_equal(patch_labels, whole[box])
    np.testing.assert_array_equal(target, expected_target[box])
    np.testing.assert_allclose(weights, expected_weights[box], rtol=1e-6, atol=1e-6)
    assert weights.max() > 3  # the border term of the touching pair is in the patch


def test_labels_are_resized_by_the_nearest_pixel_centre():
    labels = np.arange(12, dtype=np.uint16).reshape(3, 4)
    np.testing.assert_array_equal(augment.resize_labels(labels, (6, 8)),
                                  np.repeat(np.repeat(labels, 2, 0), 2, 1))
    np.testing.assert_array_equal(augment.resize_labels(labels, (3, 2)), labels[:, 1::2])
    assert augment.resize_labels(labels, (5, 7)).dtype == np.uint16


def test_zoom_factors_stay_in_the_range_and_half_the_patches_keep_their_scale():
    rng = np.random.default_rng(0)
    zooms = np.array([Augmentation(scale=2.0).draw_scale(rng) for _ in range(2000)])
    assert zooms.min() >= 0.5 and zooms.max() <= 2.0
    assert 0.45 < np.mean(zooms == 1.0) < 0.55
    assert np.all(np.array([Augmentation(scale=1.0).draw_scale(rng) for _ in range(50)]) == 1)


# -- intensities ------------------------------------------------------------------------
def test_object_brightness_scales_each_nucleus_contrast_by_its_gain():
    labels = discs()
    background, level = 10.0, 50.0
    image = np.where(labels > 0, level, background).astype(np.float32)
    gains = np.array([1.0, 0.2, 0.5, 1.0, 0.7])
    dimmed = augment.object_brightness(image, labels, gains, background)
    for number in range(1, 5):
        core = ndi.binary_erosion(labels == number, iterations=5)
        np.testing.assert_allclose(dimmed[core], background + (level - background)
                                   * gains[number], rtol=5e-3)
    far = ndi.distance_transform_edt(labels == 0) > 6
    np.testing.assert_allclose(dimmed[far], background)


def test_noise_has_the_asked_spread():
    rng = np.random.default_rng(1)
    flat = np.full((200, 200), 0.5, np.float32)
    assert augment.gaussian_noise(rng, flat, 0.1).std() == pytest.approx(0.1, rel=0.03)
    counts = augment.poisson_noise(rng, flat, photons=100.0)  # 50 photons on average
    assert counts.mean() == pytest.approx(0.5, rel=0.01)
    assert counts.var() == pytest.approx(50 / 100**2, rel=0.05)
    assert np.all(augment.poisson_noise(rng, np.zeros((8, 8)), 10.0) == 0)


def test_blur_and_gamma_match_their_definitions():
    image = np.random.default_rng(2).random((30, 30)).astype(np.float32)
    np.testing.assert_allclose(augment.blur(image, 1.5), ndi.gaussian_filter(image, 1.5),
                               rtol=1e-5)
    np.testing.assert_allclose(augment.gamma_contrast(image, 2.0, 1.5, 0.1),
                               image**2 * 1.5 + 0.1, rtol=1e-5)


def test_stain_jitter_keeps_the_hed_channels_within_the_set_range():
    rng = np.random.default_rng(3)
    rgb = np.stack([rng.integers(60, 230, (40, 40)) for _ in range(3)], -1).astype(np.uint8)
    hed = rgb2hed(rgb)
    low, high = np.percentile(hed.reshape(-1, 3), [1, 99], axis=0)
    spread = high - low
    augmentation = Augmentation(stain=True)
    draws = [d for d in (augmentation.draw_stain(rng) for _ in range(200)) if d is not None]
    assert 80 < len(draws) < 120  # about half the patches
    for scales, shifts in draws[:20]:
        assert np.all(np.abs(scales - 1) <= augment.STAIN_SCALE)
        assert np.all(np.abs(shifts) <= augment.STAIN_SHIFT)
        jittered = augment.hed_jitter(rgb, scales, shifts)
        kept = np.all((jittered > 0) & (jittered < 1), axis=-1)  # not clipped
        got = rgb2hed(jittered)[kept]
        reach = np.maximum(hed[kept] * (1 - augment.STAIN_SCALE)
                           - augment.STAIN_SHIFT * spread, 0) - 1e-6
        top = hed[kept] * (1 + augment.STAIN_SCALE) + augment.STAIN_SHIFT * spread + 1e-6
        assert np.all((got >= reach) & (got <= top))
        # rgb2hed reports negative densities as 0
        np.testing.assert_allclose(got, np.maximum(hed[kept] * scales + shifts * spread, 0),
                                   atol=1e-6)


def test_stain_jittered_patches_are_normalised_like_the_model_input():
    rng = np.random.default_rng(4)
    labels = discs()
    rgb = np.full((*labels.shape, 3), 230, np.uint8)
    rgb[labels > 0] = (90, 60, 150)  # haematoxylin-blue nuclei on white
    rgb = (rgb + rng.integers(0, 6, rgb.shape)).astype(np.uint8)
    sampler = sampler_for(labels, rgb, colour="hematoxylin", augment=False,
                          augment_intensity=False, augment_objects=False, augment_noise=False,
                          augment_blur=False, augment_scale=1.0)
    assert sampler.colour[0] is not None
    patches = [sampler.patch(rng, 0) for _ in range(20)]
    for x, y, _ in patches:
        inside, outside = x[..., 0][y == 1], x[..., 0][y == 0]
        if inside.size and outside.size:  # nuclei bright, background dark: as trained
            assert inside.mean() > 0.6 > 0.2 > np.median(outside)
    grey = sampler_for(labels, (labels > 0).astype(np.float32))
    assert grey.colour[0] is None  # no stain jitter for grayscale images


# -- the sampler --------------------------------------------------------------------------
def test_augmentation_off_gives_the_patches_of_the_prepared_sample():
    labels = discs()
    sampler = sampler_for(labels, augment=False, augment_intensity=False,
                          augment_objects=False, augment_noise=False, augment_blur=False,
                          augment_scale=1.0, augment_stain=False)
    prepared = sampler.samples[0]
    rng = np.random.default_rng(5)
    for _ in range(5):
        x, _, w = sampler.patch(rng, 0)
        matches = [(t, s) for t in range(prepared.target.shape[0] - 31)
                   for s in range(prepared.target.shape[1] - 31)
                   if np.array_equal(prepared.x[t:t + 32, s:s + 32], x)
                   and np.array_equal(prepared.weights[t:t + 32, s:s + 32], w)]
        assert matches


def test_every_option_is_a_training_parameter_and_old_models_read_without_it():
    names = {"augment_intensity", "augment_objects", "augment_noise", "augment_blur",
             "augment_scale", "augment_stain"}
    assert names <= {p.name for p in TrainConfig.fields()}
    config = TrainConfig.from_metadata({"training": {"augment": True}})
    assert not any(getattr(config, n) for n in names - {"augment_scale"})
    assert config.augment_scale == 1.0
    assert Augmentation.from_config(TrainConfig()) == Augmentation(True, True, True, True,
                                                                   2.0, True)
