"""Prediction: tiles agree with the whole image, stacks, channels, missing pixels, progress,
cancel, bad models."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from napari_unet_weights._sample_data import load_sample
from napari_unet_weights.metrics.matching import evaluate
from napari_unet_weights.unet.model_file import FORMAT_VERSION
from napari_unet_weights.unet.postprocess import DEFAULT_POSTPROCESS
from napari_unet_weights.unet.predict import (
    PredictionCancelled,
    infer,
    predict,
    predict_prepared,
    segment,
)
from napari_unet_weights.unet.preprocess import (
    DEFAULT_INPUT,
    DEFAULT_NORMALIZATION,
    MissingDataWarning,
    guess_channels,
    prepare_image,
)
from reference import dsb_folder

DEPTH, BASE = 2, 4
#: Tiles of 64 px with the default overlap of a depth-2 model (8 · 2**2 = 32 px).
TILE = 64


def metadata(n_classes: int = 3, n_channels: int = 1, mode: str = "gray", **architecture):
    """Model-file metadata as training writes it, for a small U-Net."""
    return {
        "format_version": FORMAT_VERSION,
        "n_classes": n_classes,
        "input": {**DEFAULT_INPUT, "mode": mode, "n_channels": n_channels},
        "normalization": dict(DEFAULT_NORMALIZATION),
        "architecture": {"type": "unet2d", "n_channels": n_channels, "depth": DEPTH,
                         "base_filters": BASE, **architecture},
        "postprocess": dict(DEFAULT_POSTPROCESS),
    }


def fit_tiny(keras, image, labels, steps: int = 150, size: int = 128, seed: int = 0):
    """A depth-2 U-Net trained for ``steps`` batches of 4 random crops (3 classes)."""
    from napari_unet_weights.unet.model import build_unet
    from napari_unet_weights.unet.targets import targets

    keras.utils.set_random_seed(seed)
    net = build_unet(1, 3, depth=DEPTH, base_filters=BASE, batch_norm=False)
    net.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    x = prepare_image(image)
    target, weights = targets(labels, 3)
    rng = np.random.default_rng(seed)
    corners = rng.integers(0, np.array(image.shape[:2]) - size + 1, (steps * 4, 2))
    crop = [tuple(slice(c, c + size) for c in corner) for corner in corners]
    net.fit(np.stack([x[c] for c in crop]), np.stack([target[c] for c in crop]),
            sample_weight=np.stack([weights[c] for c in crop]), batch_size=4, epochs=1,
            verbose=0)
    return net


@pytest.fixture(scope="module")
def crowded():
    return load_sample("nuclei_crowded")


@pytest.fixture(scope="module")
def tiny(keras, crowded, tmp_path_factory):
    """A tiny U-Net trained a few seconds on the crowded DSB sample, saved and reloaded."""
    from napari_unet_weights.unet.model_file import UNetModel, load_model

    net = fit_tiny(keras, *crowded)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    return load_model(UNetModel(net, metadata()).save(path))


@pytest.fixture(scope="module")
def pointwise(keras):
    """A 'U-Net' without spatial context (1×1 convolution): tiles must be exact."""
    from napari_unet_weights.unet.model_file import UNetModel

    inputs = keras.Input((None, None, 1))
    hidden = keras.layers.Conv2D(8, 1, activation="tanh")(inputs)
    outputs = keras.layers.Conv2D(3, 1, activation="softmax")(hidden)
    return UNetModel(keras.Model(inputs, outputs), metadata(multiple=4))


def foreground_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a > 0) & (b > 0)).sum() / max(((a > 0) | (b > 0)).sum(), 1))


def by_hand(image: np.ndarray) -> np.ndarray:
    """The network input of a plane computed by hand: 1 and 99.8 percentiles to 0 and 1."""
    image = np.asarray(image, np.float64)
    low, high = np.percentile(image, DEFAULT_NORMALIZATION["percentiles"])
    return ((image - low) / (high - low)).astype(np.float32)


# -- tiles (their grid and weights: test_unet_tiling.py) -----------------------------------
@pytest.mark.parametrize("overlap", [0, 8, 16])
def test_tiles_are_exact_without_spatial_context(pointwise, crowded, overlap):
    """Tiles of a pixel-wise network give its output on the whole input computed by hand."""
    image = crowded[0][:203, :177]  # not multiples of the tile or of 2**depth
    x = by_hand(image)
    assert np.median(x) < 0.5  # a dark background: the plane is not inverted
    expected = np.asarray(pointwise.keras_model(x[np.newaxis, ..., np.newaxis]))[0]
    tiled = predict(image, pointwise, tile_shape=(32, 48), overlap=overlap, batch_size=3)
    np.testing.assert_allclose(tiled, expected, atol=1e-5)
    np.testing.assert_allclose(predict(image, pointwise), expected, atol=1e-5)


def test_tiled_and_untiled_agree_on_a_real_sample(tiny, crowded):
    """3 × 3 tiles of 128 px overlapping by 64 px against the whole 256² image.

    The tiny model's output changes up to ~22 px inside a tile edge (its receptive field,
    measured); with overlap 64 both tiles are 32 px from their edges in the middle of an
    overlap, so the probabilities agree within 0.01 everywhere (measured ~0.001) and the
    labels match. (Its watershed seeds, p_interior > 0.7, can split an object for a
    difference of 0.02: label agreement needs an overlap beyond the receptive field.)
    """
    image, truth = crowded
    whole = predict(image, tiny)
    tiled = predict(image, tiny, tile_shape=2 * TILE, overlap=TILE, batch_size=4)
    assert np.abs(tiled - whole).max() < 0.01
    labels_whole = segment(image, tiny)
    labels_tiled = segment(image, tiny, tile_shape=2 * TILE, overlap=TILE)
    assert labels_whole.max() > 30  # the tiny model finds nuclei (~98 in the truth)
    assert evaluate(truth, labels_whole).map > 0.1
    assert foreground_iou(labels_whole, labels_tiled) >= 0.99
    assert evaluate(labels_whole, labels_tiled).map >= 0.99


def test_default_overlap_keeps_differences_small(tiny, crowded):
    """64-px tiles with the default overlap (8 · 2**depth = 32 px): small differences.

    (Measured: mean 0.0015, 99.9th percentile ~0.03, max ~0.12 in overlap middles.)
    """
    image = crowded[0]
    difference = np.abs(predict(image, tiny, tile_shape=TILE) - predict(image, tiny))
    assert difference.mean() < 5e-3 and np.quantile(difference, 0.999) < 0.1


# -- shapes -----------------------------------------------------------------------------
def test_stack_and_time_series_equal_per_plane_prediction(tiny, crowded):
    image = crowded[0][:96, :80]
    stack = np.stack([image, image[::-1], 255 - image])
    result = predict(stack, tiny, tile_shape=TILE, batch_size=3)  # 4 tiles a plane
    assert result.shape == (3, 96, 80, 3) and result.dtype == np.float32
    for plane, probabilities in zip(stack, result):
        np.testing.assert_allclose(probabilities, predict(plane, tiny, tile_shape=TILE),
                                   atol=1e-5)
    series = predict(stack.reshape(3, 1, 96, 80), tiny)
    np.testing.assert_allclose(series[:, 0], predict(stack, tiny), atol=1e-5)


def test_segment_stack_has_unique_ids(tiny, crowded):
    image = crowded[0][:128, :128]
    labels = segment(np.stack([image, image]), tiny)
    single = segment(image, tiny)
    assert labels.shape == (2, 128, 128) and labels.dtype == np.uint16
    n = int(single.max())
    assert n > 10
    np.testing.assert_array_equal(labels[0], single)
    np.testing.assert_array_equal(labels[1], np.where(single > 0, single + n, 0))


def test_rgb_and_multichannel_images(tiny):
    image, _ = load_sample("nuclei_histology")
    assert image.ndim == 3 and image.shape[-1] == 3
    probabilities = predict(image, tiny, tile_shape=TILE)  # rgb guessed like napari
    assert probabilities.shape == (*image.shape[:2], 3)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    gray = image.astype(np.float32).mean(-1)
    np.testing.assert_allclose(predict(image, tiny, rgb=True), predict(gray, tiny), atol=1e-5)
    two_channels = np.stack([gray, gray], axis=-1)[:64, :64]
    assert predict(two_channels, tiny, rgb=True).shape == (64, 64, 3)
    assert predict(two_channels, tiny, rgb=False).shape == (64, 64, 2, 3)  # 64 planes


@pytest.mark.parametrize(("shape", "channels"), [
    ((256, 256), False), ((256, 256, 1), True), ((256, 256, 2), True), ((30, 40, 4), True),
    ((3, 256, 256), False), ((5, 64, 64, 2), True), ((64, 64, 5), False), ((100, 4, 3), False),
])
def test_guess_channels(shape, channels):
    assert guess_channels(shape) is channels


def test_trailing_channel_axis_gives_one_plane(tiny, crowded):
    """(H, W), (H, W, 1) and (H, W, 2) of the same picture: the same labels, one plane."""
    image = crowded[0]
    expected = segment(image, tiny)
    assert expected.max() > 30
    for picture in (image[..., np.newaxis], np.stack([image, image], axis=-1)):
        np.testing.assert_array_equal(segment(picture, tiny), expected)
        assert predict(picture, tiny).shape == (*image.shape, 3)
    stack = np.stack([image[:64, :64]] * 3)  # (Z, H, W) with a small Z stays a stack
    assert segment(stack, tiny).shape == stack.shape


def test_multichannel_model(keras, crowded):
    from napari_unet_weights.unet.model import build_unet
    from napari_unet_weights.unet.model_file import UNetModel

    unet = UNetModel(build_unet(2, 2, depth=DEPTH, base_filters=2),
                     metadata(n_classes=2, n_channels=2, mode="channels"))
    image = np.stack([crowded[0][:40, :48], crowded[1][:40, :48]], axis=-1)
    x = np.stack([by_hand(image[..., 0]), by_hand(image[..., 1])], axis=-1)  # each on its own
    expected = np.asarray(unet.keras_model(x[np.newaxis]))[0]  # 40 × 48: no padding
    np.testing.assert_allclose(predict(image, unet, rgb=True), expected, atol=1e-5)
    with pytest.raises(ValueError, match="takes 2 channel"):
        predict(image[..., 0], unet)


# -- missing pixels ---------------------------------------------------------------------
NAN_PATCH = (slice(120, 130), slice(100, 110))


def with_nan_patch(image: np.ndarray) -> np.ndarray:
    patched = image.astype(np.float32)
    patched[NAN_PATCH] = np.nan
    return patched


def test_missing_pixels_are_left_out_of_the_normalisation(crowded):
    image = crowded[0].astype(np.float32)
    patched = with_nan_patch(image)
    patched[0, 0] = np.inf
    present = np.isfinite(patched)
    lo, hi = np.percentile(image[present], DEFAULT_NORMALIZATION["percentiles"])
    with pytest.warns(MissingDataWarning, match="101 of 65536 pixels"):
        x = prepare_image(patched)[..., 0]
    np.testing.assert_allclose(x[present], (image[present] - lo) / (hi - lo), atol=1e-5)
    assert np.all(x[~present] == 0.0)


def test_missing_pixels_are_background_and_the_rest_segments_as_before(tiny, crowded):
    image = crowded[0]
    clean = segment(image, tiny)
    with pytest.warns(MissingDataWarning, match=r"100 of 65536 pixels of the image") as record:
        holey = segment(with_nan_patch(image), tiny)
    assert len(record) == 1
    assert not holey[NAN_PATCH].any()
    patch = np.zeros(image.shape, bool)
    patch[NAN_PATCH] = True
    far = ndi.distance_transform_edt(~patch) > 32  # beyond the tiny model's reach (~22 px)
    assert evaluate(np.where(far, clean, 0), np.where(far, holey, 0)).map >= 0.95
    with pytest.warns(MissingDataWarning):
        probabilities = predict(with_nan_patch(image), tiny, tile_shape=TILE)
    assert np.all(probabilities[NAN_PATCH] == [1, 0, 0])
    assert np.isfinite(probabilities).all()


def test_missing_planes_and_channels(keras, tiny, crowded):
    plane = crowded[0][:64, :64].astype(np.float32)
    stack = np.stack([plane, np.full_like(plane, np.nan)])
    with pytest.warns(MissingDataWarning, match="4096 of 8192 pixels of 1 of 2 planes"):
        labels = segment(stack, tiny)
    assert not labels[1].any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        segment(plane, tiny)  # no warning without missing pixels
    from napari_unet_weights.unet.model import build_unet
    from napari_unet_weights.unet.model_file import UNetModel

    unet = UNetModel(build_unet(2, 2, depth=DEPTH, base_filters=2),
                     metadata(n_classes=2, n_channels=2, mode="channels"))
    two = np.stack([plane, plane[::-1]], axis=-1)
    two[5, 7, 1] = -np.inf
    with pytest.warns(MissingDataWarning, match="1 of 4096"):
        probabilities = predict(two, unet)
    assert np.all(probabilities[5, 7] == [1, 0])


# -- progress, cancel -------------------------------------------------------------------
def test_progress_counts_tiles_of_all_planes(tiny, crowded):
    calls = []
    stack = np.stack([crowded[0], crowded[0]])
    predict(stack, tiny, tile_shape=TILE, overlap=16, batch_size=4,
            progress=lambda done, total: calls.append((done, total)))
    total = 2 * 5 * 5  # 256 px: 5 tiles of 64 with overlap >= 16 per axis, 2 planes
    assert calls[-1] == (total, total)
    assert [done for done, _ in calls] == [*range(4, total, 4), total]
    assert {t for _, t in calls} == {total}


def test_cancel_stops_within_one_batch(tiny, crowded):
    calls = []
    with pytest.raises(PredictionCancelled):
        segment(crowded[0], tiny, tile_shape=TILE, batch_size=2,
                progress=lambda done, total: calls.append(done), should_stop=lambda: bool(calls))
    assert calls == [2]
    with pytest.raises(PredictionCancelled):
        predict(crowded[0], tiny, progress=lambda *_: calls.append(-1),
                should_stop=lambda: True)
    assert calls == [2]


# -- test-time augmentation -------------------------------------------------------------
#: The 8 orientations of a square: (quarter turns, mirrored left-right after turning).
ORIENTATIONS = [(turns, mirrored) for turns in range(4) for mirrored in (False, True)]


def orient(image: np.ndarray, turns: int, mirrored: bool) -> np.ndarray:
    """(H, W, ...) turned by ``turns`` quarter turns, then mirrored left-right."""
    turned = np.rot90(image, turns, axes=(0, 1))
    return turned[:, ::-1] if mirrored else turned


def unorient(image: np.ndarray, turns: int, mirrored: bool) -> np.ndarray:
    """The inverse of :func:`orient`."""
    return np.rot90(image[:, ::-1] if mirrored else image, -turns, axes=(0, 1))


#: A non-square plane (multiples of 2**depth = 4: no padding) and tiles on it: 32-px
#: tiles with the default overlap (16 px) are 2 × 4 tiles whose grid is symmetric
#: (starts 0, 16 of 48 and 0, 16, 32, 48 of 80), so the grid of every turned or mirrored
#: plane is the turned or mirrored grid: TTA must then equal the brute-force mean.
TTA_PLANE = (slice(0, 48), slice(0, 80))
TTA_TILE = 32


@pytest.mark.parametrize("tile_shape", [TTA_TILE, None], ids=["tiles", "whole"])
def test_tta_is_the_mean_of_the_predictions_of_the_8_orientations(tiny, crowded,
                                                                   tile_shape):
    image = crowded[0][TTA_PLANE]
    kwargs = {"tile_shape": tile_shape, "batch_size": 3}
    reference = np.mean([unorient(predict(orient(image, *o), tiny, **kwargs), *o)
                         for o in ORIENTATIONS], axis=0)
    calls = []
    augmented = predict(image, tiny, tta=True, progress=lambda *call: calls.append(call),
                        **kwargs)
    tiles = 2 * 4 if tile_shape else 1
    assert calls[-1] == (tiles, tiles)  # progress counts tiles, with or without TTA
    assert augmented.shape == (48, 80, 3) and augmented.dtype == np.float32
    np.testing.assert_allclose(augmented, reference, atol=1e-5)
    np.testing.assert_allclose(augmented.sum(-1), 1.0, atol=1e-5)
    plain = predict(image, tiny, **kwargs)
    assert np.abs(augmented - plain).max() > 1e-2  # TTA changes the probabilities
    labels = segment(image, tiny, tta=True, **kwargs)
    assert labels.max() > 0


@pytest.mark.parametrize("tile_shape", [TTA_TILE, None], ids=["tiles", "whole"])
def test_tta_predictions_turn_and_mirror_with_the_image(tiny, crowded, tile_shape):
    """predict(g(image)) == g(predict(image)) for the 8 orientations g, only with TTA."""
    image = crowded[0][TTA_PLANE]
    augmented = predict(image, tiny, tta=True, tile_shape=tile_shape)
    plain = predict(image, tiny, tile_shape=tile_shape)
    worst_plain = 0.0
    for o in ORIENTATIONS[1:]:
        np.testing.assert_allclose(
            predict(orient(image, *o), tiny, tta=True, tile_shape=tile_shape),
            orient(augmented, *o), atol=1e-5, err_msg=str(o))
        difference = predict(orient(image, *o), tiny, tile_shape=tile_shape) - orient(plain, *o)
        worst_plain = max(worst_plain, float(np.abs(difference).max()))
    assert worst_plain > 1e-2  # without TTA it is not equivariant (measured: 0.97)


def test_tta_of_prepared_images_and_missing_pixels(tiny, crowded):
    """predict_prepared (training's validation) pads like predict: the same TTA output."""
    image = crowded[0][:45, :77].astype(np.float32)  # padded to 48 × 80
    x = prepare_image(image)
    multiple = 4
    np.testing.assert_allclose(predict_prepared(tiny.keras_model, x, multiple, tta=True),
                               predict(image, tiny, tta=True), atol=1e-5)
    np.testing.assert_allclose(predict_prepared(tiny.keras_model, x, multiple),
                               predict(image, tiny), atol=1e-5)
    image[10:15, 20:30] = np.nan
    with pytest.warns(MissingDataWarning, match="50 of 3465"):
        probabilities = predict(image, tiny, tta=True, tile_shape=TTA_TILE)
    assert np.all(probabilities[10:15, 20:30] == [1, 0, 0])
    assert np.isfinite(probabilities).all()


def test_tta_cancel_is_polled_before_each_network_call(tiny, crowded):
    image = crowded[0][TTA_PLANE]
    polls, calls = [], []

    def should_stop() -> bool:
        polls.append(len(calls))
        return False

    predict(image, tiny, tta=True, tile_shape=TTA_TILE, batch_size=4,
            progress=lambda done, total: calls.append((done, total)), should_stop=should_stop)
    assert calls == [(4, 8), (8, 8)]
    assert polls == [0] * 8 + [1] * 8  # 2 batches of 4 tiles, 8 orientations each
    polls.clear()
    with pytest.raises(PredictionCancelled, match="after 0 of 8 tiles"):
        predict(image, tiny, tta=True, tile_shape=TTA_TILE, batch_size=4,
                should_stop=lambda: polls.append(1) or len(polls) >= 3)
    assert len(polls) == 3  # stopped inside the first batch, before its third call


# -- errors -----------------------------------------------------------------------------
def test_wrong_input_channels_and_corrupt_files(keras, tiny, tmp_path):
    from napari_unet_weights.unet.model import build_unet
    from napari_unet_weights.unet.model_file import UNetModel, load_model

    wrong = UNetModel(build_unet(3, 3, depth=DEPTH, base_filters=2), metadata())
    with pytest.raises(ValueError, match="takes 3 input channel"):
        predict(np.zeros((32, 32)), wrong)
    path = wrong.save(tmp_path / "wrong.keras")
    with pytest.raises(ValueError, match=r"wrong\.keras: the Keras model takes 3 input"):
        load_model(path)
    classes = UNetModel(build_unet(1, 2, depth=DEPTH, base_filters=2), metadata(n_classes=3))
    with pytest.raises(ValueError, match="records 3 classes"):
        segment(np.zeros((32, 32)), classes)
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises((ValueError, OSError), match=r"corrupt\.keras"):
        predict(np.zeros((32, 32)), corrupt)
    with pytest.raises(ValueError, match="overlap"):
        predict(np.zeros((128, 128)), tiny, tile_shape=32, overlap=32)
    with pytest.raises(ValueError, match="batch_size"):
        predict(np.zeros((32, 32)), tiny, batch_size=0)
    with pytest.raises(TypeError, match="unknown post-processing"):
        segment(np.zeros((32, 32)), tiny, treshold=0.3)
    with pytest.raises(TypeError, match="numbers"):
        predict(np.zeros((32, 32), bool), tiny)


def test_bad_postprocess_parameters_fail_before_the_network_runs(tiny):
    tiles = []
    with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\], got 2"):
        segment(np.zeros((32, 32)), tiny, threshold=2, progress=lambda *done: tiles.append(done))
    with pytest.raises(ValueError, match="min_size must be a whole number of pixels >= 0"):
        segment(np.zeros((32, 32)), tiny, min_size=-5,
                progress=lambda *done: tiles.append(done))
    with pytest.raises(TypeError, match="expand must be a whole number of pixels"):
        segment(np.zeros((32, 32)), tiny, expand="1")
    assert tiles == []


def test_bundled_model_tiled_and_untiled_agree_on_a_real_image(keras):
    path = dsb_folder() / "images" / "175dbb364bfefc95.tif"  # 520 x 696, 179 nuclei
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs the DSB 2018 data: {path} not found")
        pytest.skip(f"DSB 2018 image not found: {path}")
    image = tifffile.imread(path)
    whole = segment(image, tile_shape=(528, 704))
    tiled = segment(image, tile_shape=(256, 256))
    assert foreground_iou(whole, tiled) >= 0.99
    assert evaluate(whole, tiled).map >= 0.99


def test_preparing_a_plane_holds_one_plane_sized_copy_at_a_time():
    """The percentiles are taken on a throwaway copy freed before the input is made, and a
    plane without holes needs no mask: the peak is about one float32 plane (the result)."""
    import tracemalloc

    from napari_unet_weights.unet.preprocess import prepare_plane

    image = np.random.default_rng(0).integers(0, 4000, (1024, 1024), dtype=np.uint16)
    tracemalloc.start()
    try:
        x, missing = prepare_plane(image)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert missing is None
    assert peak < 1.25 * x.nbytes, f"peak {peak / x.nbytes:.2f} planes"


def test_count_missing_counts_pixels_not_values():
    from napari_unet_weights.unet.preprocess import count_missing

    rgb = np.ones((20, 30, 3), np.float32)
    rgb[0, 0, :] = np.nan          # one pixel, three values
    rgb[1, :4, 2] = np.inf         # four pixels, one value each
    assert count_missing(rgb) == 5
    assert count_missing(rgb, channels=False) == 3 + 4  # a (20, 30, 3) stack: values
    assert count_missing(np.ones((5, 5))) == 0 and count_missing(np.zeros((5, 5), int)) == 0


# -- the inference core's result ------------------------------------------------------------
def _holey_stack() -> np.ndarray:
    """A (2, 40, 48, 3) float stack with missing pixels: in one channel, in all, at -inf."""
    stack = np.random.default_rng(3).random((2, 40, 48, 3)).astype(np.float32)
    stack[0, 5:9, 7:10, 1] = np.nan  # 12 pixels, one channel each
    stack[1, 30, :, :] = np.inf  # 48 pixels, every channel
    stack[1, 0, 0, 2] = -np.inf  # 1 pixel
    return stack


def test_infer_counts_the_missing_pixels_while_it_reads_them(tiny):
    import dask.array as da

    stack = _holey_stack()
    brute = int((~np.isfinite(stack)).any(axis=-1).sum())
    assert brute == 61
    with pytest.warns(MissingDataWarning, match=f"{brute} of {2 * 40 * 48} pixels"):
        result = infer(stack, tiny, rgb=True, probabilities=True)
    assert (result.n_missing, result.n_pixels, result.sizing) == (brute, 2 * 40 * 48, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingDataWarning)
        np.testing.assert_array_equal(result.labels, segment(stack, tiny, rgb=True))
        np.testing.assert_array_equal(result.probabilities, predict(stack, tiny, rgb=True))
        only = infer(stack, tiny, rgb=True, labels=False, probabilities=True)
        chunked = infer(da.from_array(stack, chunks=(1, 20, 24, 3)), tiny, rgb=True)
    assert only.labels is None and only.n_missing == brute
    assert chunked.n_missing == brute  # counted by the normalisation's pass over the blocks
    with pytest.raises(ValueError, match="not both"):
        infer(da.from_array(stack), tiny, rgb=True, probabilities=True)
    with pytest.raises(ValueError, match="ask for"):
        infer(stack, tiny, labels=False)


def test_resized_planes_count_the_missing_pixels_at_the_image_s_scale():
    from napari_unet_weights.unet.rescale import ResizedPlanes

    stack = _holey_stack()
    planes = ResizedPlanes(stack, (2,), (20, 24), rgb=True)
    assert [planes[(k,)].shape for k in range(2)] == [(20, 24, 3)] * 2
    assert planes.n_missing == int((~np.isfinite(stack)).any(axis=-1).sum())


def test_the_in_memory_and_the_chunked_paths_give_the_same_labels(tiny, crowded):
    """One block holding the whole (integer) image: the chunked path is the in-memory one
    (exact percentiles, the same padding), so the labels are the same, ids included."""
    import dask.array as da

    image = crowded[0][:96, :112]
    assert np.issubdtype(image.dtype, np.integer)
    expected = segment(image, tiny)
    assert expected.max() > 3
    chunked = segment(da.from_array(image, chunks=48), tiny, block_shape=128)
    np.testing.assert_array_equal(chunked.compute(), expected)
