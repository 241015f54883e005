"""Lazy reading and writing of big files: zarr, OME-Zarr (0.4 and 0.5), TIFF; labels as an
OME-Zarr pyramid that napari opens lazily; atomic stores."""

from __future__ import annotations

import pickle

import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr

from napari_unet_weights.io import big as big_io
from napari_unet_weights.io.big import (
    atomic_store,
    check_output_store,
    create_labels_zarr,
    expand_lazy_inputs,
    labels_problem,
    open_lazy,
    open_pyramid,
    write_pyramid,
    write_zarr_array,
)


def _labels(shape=(200, 300)) -> np.ndarray:
    """Blocks of ids 1..N with background stripes (plausible instance labels)."""
    rows, cols = np.indices(shape)
    labels = (rows // 20 * 100 + cols // 25 + 1).astype(np.uint16)
    labels[(rows % 20 < 3) | (cols % 25 < 3)] = 0
    return labels


def _ome_group(path, data, axes, zarr_format, scale):
    """An OME-Zarr image with one level: NGFF 0.4 (zarr v2) or 0.5 (zarr v3)."""
    scales = [{"axes": [{"name": name} for name in axes],
               "datasets": [{"path": "0", "coordinateTransformations":
                             [{"type": "scale", "scale": scale}]}]}]
    attributes = ({"multiscales": [{"version": "0.4", **scales[0]}]} if zarr_format == 2
                  else {"ome": {"version": "0.5", "multiscales": scales}})
    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    group.attrs.update(attributes)
    level = group.create_array("0", shape=data.shape, chunks=(1, 64, 96)[-data.ndim:],
                               dtype=data.dtype)
    level[...] = data


# -- reading -------------------------------------------------------------------------------
def test_a_zarr_array_is_read_lazily_with_its_chunks(tmp_path):
    labels = _labels()
    source = zarr.create_array(str(tmp_path / "a.zarr"), shape=labels.shape, chunks=(64, 96),
                               dtype=labels.dtype)
    source[...] = labels
    lazy = open_lazy(tmp_path / "a.zarr", labels=True)
    assert isinstance(lazy.data, da.Array) and lazy.kind == "zarr"
    assert lazy.chunks == (64, 96) and lazy.data.chunksize == (64, 96)
    np.testing.assert_array_equal(lazy.data.compute(), labels)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_zarr_gives_level_0_with_the_channel_axis_last(tmp_path, zarr_format):
    image = np.random.default_rng(0).integers(0, 255, (3, 100, 120), dtype=np.uint8)
    _ome_group(tmp_path / "i.zarr", image, "cyx", zarr_format, [1.0, 0.5, 0.25])
    lazy = open_lazy(tmp_path / "i.zarr")
    assert lazy.kind == "ome-zarr" and lazy.axes == ("y", "x", "c")
    assert lazy.chunks == (64, 96, 1)
    assert lazy.transforms == [{"type": "scale", "scale": [0.5, 0.25, 1.0]}]
    np.testing.assert_array_equal(lazy.data.compute(), np.moveaxis(image, 0, -1))


def test_ome_zarr_labels_lose_a_single_channel_and_refuse_several(tmp_path):
    labels = _labels()[np.newaxis]
    _ome_group(tmp_path / "l.zarr", labels, "cyx", 3, [1.0, 1.0, 1.0])
    lazy = open_lazy(tmp_path / "l.zarr", labels=True)
    assert lazy.axes == ("y", "x") and lazy.chunks == (64, 96)
    np.testing.assert_array_equal(lazy.data.compute(), labels[0])
    _ome_group(tmp_path / "two.zarr", np.concatenate([labels, labels]), "cyx", 3, [1, 1, 1])
    with pytest.raises(ValueError, match="2 channels"):
        open_lazy(tmp_path / "two.zarr", labels=True)


def test_unusable_zarr_inputs_say_why(tmp_path):
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    for name in ("a", "b"):
        group.create_array(name, shape=(4, 4), dtype="uint8")
    with pytest.raises(ValueError, match=r"2 arrays .*give the path of one array"):
        open_lazy(tmp_path / "g.zarr")
    zarr.create_array(str(tmp_path / "f.zarr"), shape=(4, 4), dtype="float32")
    with pytest.raises(TypeError):
        open_lazy(tmp_path / "f.zarr", labels=True)
    (tmp_path / "broken.zarr").mkdir()
    (tmp_path / "broken.zarr" / "zarr.json").write_text("{not json")
    with pytest.raises(OSError, match=r"broken\.zarr"):
        open_lazy(tmp_path / "broken.zarr")


def test_tiffs_keep_their_tiles_and_strips_become_squares(tmp_path, monkeypatch):
    labels = _labels()
    tifffile.imwrite(tmp_path / "tiled.tif", labels, tile=(64, 96), compression="zlib")
    tifffile.imwrite(tmp_path / "striped.tif", labels, rowsperstrip=7)
    monkeypatch.setattr(big_io, "STRIPED_CHUNK", 50)
    tiled, striped = (open_lazy(tmp_path / name, labels=True)
                      for name in ("tiled.tif", "striped.tif"))
    assert tiled.chunks == (64, 96) and tiled.data.chunksize == (64, 96)
    assert striped.chunks == (50, 50) and striped.data.chunksize == (50, 50)
    for lazy in (tiled, striped):
        np.testing.assert_array_equal(lazy.data.compute(), labels)


def test_a_lazy_tiff_pickles_as_its_path_for_worker_processes(tmp_path):
    image = np.stack([_labels()] * 3, axis=-1).astype(np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", image, photometric="rgb", tile=(64, 64))
    lazy = open_lazy(tmp_path / "rgb.tif")
    assert lazy.axes == ("y", "x", "s") and lazy.chunks == (64, 64, 3)
    big_io.close_tiffs()  # as a fresh worker process: nothing open
    payload = pickle.dumps(lazy.data)
    assert len(payload) < 100_000
    np.testing.assert_array_equal(pickle.loads(payload).compute(), image)


def test_inputs_take_zarr_stores_as_files(tmp_path):
    for name in ("a.tif", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    zarr.create_array(str(tmp_path / "b.zarr"), shape=(2, 2), dtype="uint8")
    zarr.create_array(str(tmp_path / ".hidden.zarr"), shape=(2, 2), dtype="uint8")
    (tmp_path / "folder").mkdir()
    inner = tmp_path / "x.zarr" / "level"
    zarr.create_array(str(inner), shape=(2, 2), dtype="uint8")
    assert [p.name for p in expand_lazy_inputs([tmp_path])] == ["a.tif", "b.zarr", "x.zarr"]
    assert expand_lazy_inputs([inner]) == [inner]  # an array inside a store


class Refusing:
    """An array read by slices that refuses to be copied whole; it records the reads."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.shape, self.dtype, self.ndim = data, data.shape, data.dtype, data.ndim
        self.reads: list[int] = []

    def __getitem__(self, key):
        piece = self.data[key]
        self.reads.append(piece.size)
        return piece

    def __array__(self, *args, **kwargs):
        raise AssertionError("a whole-array copy")


def test_the_labels_check_reads_a_window_only():
    rng = np.random.default_rng(0)
    grey = Refusing(rng.integers(1, 200, (2000, 3000), dtype=np.uint16))
    assert "grey levels" in labels_problem(da.from_array(grey, chunks=500, asarray=False))
    assert sum(grey.reads) <= 4 * 500**2  # the window's chunks
    colour = da.zeros((2000, 3000, 3), np.uint8, chunks=500)
    assert "(2000, 3000, 3) is that of a colour" in labels_problem(colour)
    assert labels_problem(da.from_array(_labels(), chunks=50)) is None


# -- writing -------------------------------------------------------------------------------
def test_the_labels_pyramid_is_strided_and_keeps_the_chunks(tmp_path):
    labels = _labels((300, 500))
    level0 = create_labels_zarr(tmp_path / "l.zarr", labels.shape, (64, 96), axes=("y", "x"),
                                transforms=[{"type": "scale", "scale": [0.5, 0.5]}])
    level0[...] = labels
    levels = write_pyramid(tmp_path / "l.zarr")
    assert [level.shape for level in levels] == [(300, 500), (150, 250), (75, 125),
                                                  (38, 63)]
    assert [level.chunks for level in levels] == [(64, 96)] * 3 + [(38, 63)]
    for k, level in enumerate(levels):
        np.testing.assert_array_equal(level[...], labels[:: 2**k, :: 2**k])
    attributes = zarr.open_group(str(tmp_path / "l.zarr")).attrs["ome"]
    datasets = attributes["multiscales"][0]["datasets"]
    assert [d["coordinateTransformations"][0]["scale"] for d in datasets] == [
        [0.5, 0.5], [1.0, 1.0], [2.0, 2.0], [4.0, 4.0]]
    assert "image-label" in attributes
    pyramid = open_pyramid(tmp_path / "l.zarr")
    assert all(isinstance(level, da.Array) for level in pyramid) and len(pyramid) == 4


def test_napari_and_ome_zarr_open_the_labels_lazily(tmp_path):
    """napari's built-in reader (no plugin) gives a multiscale image layer of dask arrays;
    ``open_pyramid`` a labels layer; ome-zarr's reader sees a multiscale labels image."""
    napari = pytest.importorskip("napari")
    import npe2
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    path = tmp_path / "cells_labels.zarr"
    create_labels_zarr(path, (2, 200, 300), (1, 64, 96))[...] = np.stack([_labels()] * 2)
    write_pyramid(path)
    npe2.PluginManager.instance().discover()
    (layer_data,) = npe2.read([str(path)], stack=False, plugin_name="napari")
    image = napari.layers.Layer.create(*layer_data)
    assert isinstance(image, napari.layers.Image) and image.multiscale
    assert [level.shape for level in image.data] == [(2, 200, 300), (2, 100, 150), (2, 50, 75)]
    assert all(isinstance(level, da.Array) for level in image.data)
    layer = napari.layers.Labels(open_pyramid(path), multiscale=True)
    assert layer.multiscale and layer.data[0].chunksize == (1, 64, 96)
    (node,) = list(Reader(parse_url(str(path)))())
    names = {type(spec).__name__ for spec in node.specs}
    assert {"Multiscales", "Label"} <= names
    assert [axis["name"] for axis in node.metadata["axes"]] == ["z", "y", "x"]


def test_a_weight_map_is_written_region_by_region_through_compute(tmp_path):
    values = da.from_array(np.arange(200 * 300, dtype=np.float32).reshape(200, 300),
                           chunks=(64, 96))
    target = zarr.create_array(str(tmp_path / "w.zarr"), shape=values.shape, chunks=(64, 96),
                               dtype="float32")
    calls = []

    def compute(*collections):
        calls.append(len(collections))
        return da.compute(*collections)

    write_zarr_array(values, target, compute=compute, memory_budget=64 * 96 * 4 * 10)
    np.testing.assert_array_equal(target[...], values.compute())
    assert len(calls) > 1  # several regions, each through ``compute``


def test_atomic_store_leaves_nothing_on_error_and_replaces_on_success(tmp_path):
    out = tmp_path / "o.zarr"
    with atomic_store(out) as partial:
        zarr.create_array(str(partial), shape=(2,), dtype="uint8", fill_value=1)
    with pytest.raises(KeyboardInterrupt), atomic_store(out) as partial:
        zarr.create_array(str(partial), shape=(3,), dtype="uint8", fill_value=2)
        raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["o.zarr"]
    assert zarr.open_array(str(out))[...].tolist() == [1, 1]
    with atomic_store(out) as partial:
        zarr.create_array(str(partial), shape=(3,), dtype="uint8", fill_value=2)
    assert [p.name for p in tmp_path.iterdir()] == ["o.zarr"]
    assert zarr.open_array(str(out))[...].tolist() == [2, 2, 2]


def test_existing_outputs_zarr_or_not(tmp_path):
    zarr.create_array(str(tmp_path / "o.zarr"), shape=(2,), dtype="uint8")
    with pytest.raises(FileExistsError):
        check_output_store(tmp_path / "o.zarr", overwrite=False)
    assert check_output_store(tmp_path / "o.zarr", overwrite=True) == tmp_path / "o.zarr"
    (tmp_path / "mine.zarr").mkdir()
    (tmp_path / "mine.zarr" / "thesis.txt").write_text("precious")
    with pytest.raises(IsADirectoryError, match="not a zarr store"):
        check_output_store(tmp_path / "mine.zarr", overwrite=True)
    assert check_output_store(tmp_path / "new.zarr", overwrite=False) == tmp_path / "new.zarr"


def test_one_stop_rule_for_written_and_shown_pyramids():
    """halvings: y and x halved (rounded up) until the plane fits; written pyramids fit a
    chunk (at most MAX_LEVELS levels), pyramids shown in napari LEVEL_SIDE square."""
    from napari_unet_weights.io.big import LEVEL_SIDE, MAX_LEVELS, halvings, lazy_pyramid

    assert halvings((2, 300, 100), (64, 64)) == [(2, 150, 50), (2, 75, 25), (2, 38, 13)]
    assert halvings((64, 64), (64, 64)) == []
    assert len(halvings((2**20, 1), (1, 1), MAX_LEVELS)) == MAX_LEVELS - 1
    level0 = da.zeros((3, 4 * LEVEL_SIDE + 1, 5), chunks=(1, 512, 5))
    levels = lazy_pyramid(level0)
    assert [level.shape for level in levels[1:]] == halvings(level0.shape,
                                                             (LEVEL_SIDE, LEVEL_SIDE))
    assert levels[-1].shape == (3, LEVEL_SIDE // 2 + 1, 1)
