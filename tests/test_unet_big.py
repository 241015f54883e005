"""Chunked prediction and segmentation of dask / zarr images (unet/big.py, stitch.py,
lazy_stats.py): stitching, normalisation, agreement with the in-memory path, zarr output,
progress and cancel."""

from __future__ import annotations

import gc
import importlib
import json
import warnings
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr

from napari_unet_weights.metrics.matching import evaluate
from napari_unet_weights.runtime.engine import Engine
from napari_unet_weights.unet.chunked.big import Plan, _run_block, segment_blocks
from napari_unet_weights.unet.chunked.lazy_stats import plane_statistics
from napari_unet_weights.unet.chunked.stitch import BlockGrid, match_strips
from napari_unet_weights.unet.model_file import FORMAT_VERSION, load_model
from napari_unet_weights.unet.postprocess import DEFAULT_POSTPROCESS
from napari_unet_weights.unet.predict import PredictionCancelled, predict, segment
from napari_unet_weights.unet.preprocess import (
    DEFAULT_INPUT,
    DEFAULT_NORMALIZATION,
    MissingDataWarning,
    PlaneStatistics,
    _finite_percentiles,
    prepare_plane,
    to_gray,
)
from napari_unet_weights.unet.tiling import pad_to_multiple
from reference import require_dsb_folder

#: The inference core, whose block function the chunked path calls.
inference_module = importlib.import_module("napari_unet_weights.unet.inference")
SPLIT = Path(__file__).resolve().parents[1] / "scripts" / "dsb2018_split.json"


def fluorescence_mosaic(n: int) -> np.ndarray:
    """n × n DSB 2018 fluorescence images of 256² (first channel), in id order."""
    folder = require_dsb_folder("images")
    modality = json.loads(SPLIT.read_text())["modality"]
    tiles = []
    for sample in sorted(s for s, kind in modality.items() if kind == "fluorescence"):
        image = tifffile.imread(folder / f"{sample}.tif")
        if image.shape == (256, 256, 3):
            tiles.append(image[..., 0])
        if len(tiles) == n * n:
            break
    return np.block([[tiles[i * n + j] for j in range(n)] for i in range(n)])


# -- stitching (no network: the "segmentation" of a block is its pixel values) ----------
def scrambled_ids(block, statistics, *, model, rgb, postprocess, should_stop=None, **options):
    """A block's pixel values as labels, renamed (each block's ids are its own business)."""
    values = block.astype(np.int64)
    return np.where(values > 0, (values * 7919) % 100_003, 0).astype(np.uint32)


def cut_and_touching_objects() -> np.ndarray:
    """Labels for 64-px blocks: objects cut by faces and distinct objects touching across."""
    labels = np.zeros((300, 280), np.uint16)
    rows, cols = np.mgrid[:300, :280]
    labels[(rows - 64) ** 2 + (cols - 100) ** 2 < 15**2] = 1  # cut by a row face
    labels[(rows - 128) ** 2 + (cols - 128) ** 2 < 12**2] = 2  # cut into 4 at a corner
    labels[10:20, 59:64], labels[10:20, 64:69] = 3, 4  # touch across a column face
    labels[120:128, 200:230], labels[128:136, 200:230] = 5, 6  # touch across a row face
    labels[200:260, 180:200] = 7  # spans 2 faces
    labels[150:190, 250:280] = 8  # at the image's edge
    labels[0:64, 0:3] = 9  # along a face, no neighbour
    return labels


def assert_same_objects(truth: np.ndarray, labels: np.ndarray) -> None:
    """Same partition of the pixels (ids may differ), ids 1..N."""
    assert ((truth > 0) == (labels > 0)).all()
    pairs = np.unique(np.stack([truth[truth > 0], labels[truth > 0]]), axis=1)
    assert len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]
    assert np.array_equal(np.unique(labels[labels > 0]), np.arange(1, pairs.shape[1] + 1))


def test_stitching_joins_cut_objects_and_keeps_touching_ones_apart():
    truth = cut_and_touching_objects()
    labels = segment_blocks(da.from_array(truth, chunks=100), None, {"rgb": False}, {},
                            block_shape=64, block_fn=scrambled_ids).labels
    assert isinstance(labels, da.Array) and labels.dtype == np.uint16
    assert_same_objects(truth, labels.compute())


def test_stitching_a_stack_gives_ids_unique_over_it():
    truth = cut_and_touching_objects()
    stack = np.stack([truth, np.where(truth > 0, truth + 20, 0)[::-1]])
    labels = segment_blocks(da.from_array(stack, chunks=(2, 128, 128)), None, {"rgb": False},
                            {}, block_shape=96, block_fn=scrambled_ids).labels.compute()
    assert_same_objects(stack, labels)
    assert labels[0].max() == 9 and labels[1].min() == 0 and labels[1][labels[1] > 0].min() == 10


def test_strips_match_by_overlap_over_union():
    first = np.array([[1, 1, 1, 1, 2, 2, 0, 3]])
    second = np.array([[5, 5, 5, 0, 6, 6, 6, 0]])
    # 1-5: 3 of 4 pixels (kept); 2-6: 2 of 3 (kept); 3 meets nothing
    assert match_strips(first, second).tolist() == [[1, 5], [2, 6]]
    assert match_strips(first, second, min_iou=0.7).tolist() == [[1, 5]]


def test_each_block_sees_the_whole_planes_padded_pixels_on_its_grid():
    """The network sees a block (core, margin, mirrored edges) as the same pixels, on the
    same pooling grid, as the whole plane padded to a multiple of 16 in memory."""
    image = np.random.default_rng(0).random((300, 250))  # padded to 304 × 256
    whole, crop = pad_to_multiple(image, 16)
    plan = Plan(BlockGrid.regular(image.shape, (64, 64)), 32, 16)
    for key in plan.grid:
        region, pads = plan.extended(key)
        seen = []
        labels = _run_block(image[region], key, plan,
                            lambda block, _, should_stop, seen=seen: seen.append(block) or block,
                            None, None)
        np.testing.assert_array_equal(labels, image[region])
        starts = [part.start - before + c.start for part, (before, _), c in
                  zip(region, pads, crop)]
        assert all(start % 16 == 0 for start in starts) and seen[0].shape[0] % 16 == 0
        np.testing.assert_array_equal(seen[0], whole[starts[0]:starts[0] + seen[0].shape[0],
                                                     starts[1]:starts[1] + seen[0].shape[1]])
        for core, part, size in zip(plan.grid.core(key), region, image.shape):
            assert part.start == 0 or core.start - part.start >= 32
            assert part.stop == size or part.stop - core.stop >= 32


# -- normalisation: the whole plane's statistics ----------------------------------------
def _images():
    rng = np.random.default_rng(1)
    u8 = rng.integers(0, 200, (120, 90), dtype=np.uint8)
    gray_rgb = np.repeat(rng.integers(0, 4000, (120, 90, 1), dtype=np.uint16), 3, axis=-1)
    colour = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    floats = rng.normal(size=(120, 90)).astype(np.float32)
    floats[3:7, 5:9] = np.nan
    floats[50, 50] = np.inf
    return {"uint8": (u8, False, "mean", True),
            "uint16 gray as RGB": (gray_rgb, True, "mean", True),
            "H&E": (colour, True, "hematoxylin", False),
            "float with NaN": (floats, False, "mean", False)}


@pytest.mark.parametrize("name", list(_images()))
def test_plane_statistics_are_the_in_memory_percentiles(name):
    image, channels, colour, exact = _images()[name]
    metadata = {"input": {**DEFAULT_INPUT, "colour": "hematoxylin"},
                "normalization": DEFAULT_NORMALIZATION}
    found = plane_statistics(da.from_array(image, chunks=(50, 40, 3)[:image.ndim]), metadata,
                             channels=channels, compute=dask.compute)
    gray = to_gray(image, channels=channels, colour="hematoxylin")
    _, expected = _finite_percentiles(gray, (*DEFAULT_NORMALIZATION["percentiles"], 50.0))
    assert found.exact == exact and found.planes[()].colour == colour
    assert found.n_missing == int((~np.isfinite(image)).sum())
    tolerance = 1e-6 if exact else 2 * np.ptp(gray[np.isfinite(gray)]) / 2**16
    np.testing.assert_allclose(found.planes[()].values, expected, rtol=1e-6, atol=tolerance)


def test_each_plane_of_a_stack_has_its_own_statistics():
    rng = np.random.default_rng(3)
    stack = np.stack([rng.integers(0, 50, (60, 70)), rng.integers(100, 4000, (60, 70))])
    found = plane_statistics(da.from_array(stack.astype(np.uint16), chunks=(1, 32, 32)),
                             {"input": DEFAULT_INPUT, "normalization": DEFAULT_NORMALIZATION},
                             channels=False, compute=dask.compute)
    assert sorted(found.planes) == [(0,), (1,)] and found.exact
    for k in range(2):
        expected = np.percentile(stack[k], (*DEFAULT_NORMALIZATION["percentiles"], 50.0))
        np.testing.assert_allclose(found.planes[k,].values, expected, rtol=1e-12)


def test_a_block_prepared_with_its_planes_statistics_is_the_planes_crop():
    """Even a block whose pixels are all gray in an H&E plane: haematoxylin, as the plane."""
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
    image[:40, :40] = image[:40, :40, :1]  # a gray corner
    metadata = {"input": {**DEFAULT_INPUT, "colour": "hematoxylin"},
                "normalization": DEFAULT_NORMALIZATION}
    whole, _ = prepare_plane(image, metadata, channels=True)
    gray = to_gray(image, channels=True, colour="hematoxylin")
    _, values = _finite_percentiles(gray, (*DEFAULT_NORMALIZATION["percentiles"], 50.0))
    block, _ = prepare_plane(image[:40, :40], metadata, channels=True,
                             statistics=PlaneStatistics(tuple(values), "hematoxylin"))
    np.testing.assert_allclose(block, whole[:40, :40], atol=1e-6)


# -- the network, block by block ------------------------------------------------------------
@pytest.fixture(scope="module")
def pointwise(keras):
    """A network without spatial context (1×1 convolutions): blocks must be exact."""
    from napari_unet_weights.unet.model_file import UNetModel

    inputs = keras.Input((None, None, 1))
    hidden = keras.layers.Conv2D(8, 1, activation="tanh")(inputs)
    outputs = keras.layers.Conv2D(3, 1, activation="softmax")(hidden)
    metadata = {"format_version": FORMAT_VERSION, "n_classes": 3,
                "input": {**DEFAULT_INPUT, "colour": "hematoxylin"},
                "normalization": DEFAULT_NORMALIZATION,
                "architecture": {"type": "unet2d", "n_channels": 1, "depth": 2,
                                 "base_filters": 4, "multiple": 4},
                "postprocess": dict(DEFAULT_POSTPROCESS)}
    return UNetModel(keras.Model(inputs, outputs), metadata)


@pytest.mark.parametrize("name", ["uint8", "H&E", "float with NaN"])
def test_blocks_of_a_pixelwise_network_are_exact(pointwise, name, tmp_path):
    """Normalised by the whole plane, mirrored at the edges, lazy or written to zarr: the
    blocks of a network without context give the in-memory probabilities exactly."""
    image, channels, _, _ = _images()[name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        expected = predict(image, pointwise, rgb=channels)
        found = predict(da.from_array(image, chunks=(50, 40, 3)[:image.ndim]), pointwise,
                        rgb=channels, block_shape=32,
                        out=None if name == "uint8" else tmp_path / "p.zarr")
    if name == "uint8":  # lazy
        assert isinstance(found, da.Array) and found.chunksize == (32, 32, 3)
    else:
        assert isinstance(found, zarr.Array) and found.chunks == (50, 40, 3)
    np.testing.assert_allclose(found[...], expected, atol=1e-5)
    missing = [w for w in caught if issubclass(w.category, MissingDataWarning)]
    assert len(missing) == (2 if name == "float with NaN" else 0)  # once per call


@pytest.fixture(scope="module")
def bundled(keras):
    return load_model()


def test_segmentation_of_a_dask_mosaic_agrees_with_in_memory(bundled):
    """768² of real DSB fluorescence in 256² blocks (9 blocks, objects cut by faces)."""
    image = fluorescence_mosaic(3)
    expected = segment(image, bundled)
    labels = segment(da.from_array(image, chunks=256), bundled, block_shape=256)
    assert isinstance(labels, da.Array)
    labels = labels.compute()
    assert expected.max() > 150
    assert evaluate(expected, labels).map >= 0.98


# -- dispatch, output, progress, cancel (no network) ------------------------------------
@pytest.fixture
def no_network(monkeypatch):
    """Blocks "segmented" by :func:`scrambled_ids` instead of the network."""
    monkeypatch.setattr(inference_module, "block_labels", scrambled_ids)


def test_zarr_input_is_segmented_block_by_block_into_zarr(no_network, tmp_path):
    truth = cut_and_touching_objects()
    source = zarr.create_array(store=str(tmp_path / "in.zarr"), shape=truth.shape,
                               dtype=truth.dtype, chunks=(128, 100))
    source[...] = truth
    steps = []
    out = segment(source, block_shape=64, out=tmp_path / "labels.zarr",
                  progress=lambda done, total: steps.append((done, total)))
    assert isinstance(out, zarr.Array) and out.chunks == (128, 100)
    assert_same_objects(truth, zarr.open_array(str(tmp_path / "labels.zarr"))[...])
    total = 25 + 9  # blocks, then output chunks
    assert steps[-1] == (total, total) and [d for d, _ in steps] == sorted(d for d, _ in steps)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.zarr", "labels.zarr"]


class Unwholesome:
    """An array read by slices that refuses to be copied whole (as napari's lazy data)."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.shape, self.dtype, self.ndim = data, data.shape, data.dtype, data.ndim

    def __getitem__(self, key):
        return self.data[key]

    def __array__(self, *args, **kwargs):
        raise AssertionError("a whole-array copy")


def test_no_whole_array_copy_of_a_sliceable_array(no_network, tmp_path):
    truth = cut_and_touching_objects()
    out = segment(Unwholesome(truth), block_shape=64, out=tmp_path / "labels.zarr")
    assert_same_objects(truth, out[...])


def test_an_engine_given_as_scheduler_reports_and_shows_its_progress_bar(no_network, capsys):
    steps = []
    engine = Engine(progress=lambda done, total: steps.append(done), progress_bar=True)
    labels = segment(da.from_array(cut_and_touching_objects(), chunks=100), block_shape=128,
                     scheduler=engine)
    assert isinstance(labels, da.Array) and steps[-1] == 9  # 3 × 3 blocks
    assert "100% Completed" in capsys.readouterr().out  # dask's bar, for the CLI


def test_a_lazy_result_keeps_its_temporary_zarr_until_it_is_dropped(tmp_path):
    truth = cut_and_touching_objects()
    labels = segment_blocks(truth, None, {"rgb": False}, {}, block_shape=128,
                            temp_dir=tmp_path, block_fn=scrambled_ids).labels
    assert len(list(tmp_path.iterdir())) == 1
    assert_same_objects(truth, labels.compute())
    del labels
    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_cancel_stops_between_blocks_and_leaves_nothing(tmp_path):
    steps = []
    with pytest.raises(PredictionCancelled):
        segment_blocks(da.from_array(cut_and_touching_objects(), chunks=64), None,
                       {"rgb": False}, {}, block_shape=64, temp_dir=tmp_path,
                       out=tmp_path / "labels.zarr",
                       progress=lambda done, total: steps.append(done),
                       should_stop=lambda: len(steps) >= 3, block_fn=scrambled_ids)
    assert 3 <= len(steps) < 25
    assert not (tmp_path / "labels.zarr").exists()
    assert list(tmp_path.iterdir()) == []


def test_segment_passes_temp_dir_to_the_blocks(no_network, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    truth = cut_and_touching_objects()
    labels = segment(da.from_array(truth, chunks=100), block_shape=128, temp_dir=scratch)
    assert len(list(scratch.iterdir())) == 1  # the lazy labels' temporary zarr is there
    assert_same_objects(truth, labels.compute())
