"""The ``weights`` and ``predict`` commands on big files: zarr / OME-Zarr / large TIFF inputs
read lazily, zarr outputs with the input's chunking, --workers / --scheduler, progress on
stderr, Ctrl-C."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from napari_unet_weights._sample_data import load_sample
from napari_unet_weights.cli import big as _cli_big
from napari_unet_weights.cli import main
from napari_unet_weights.io import big as big_io
from napari_unet_weights.io.big import create_labels_zarr, open_pyramid, write_pyramid
from napari_unet_weights.metrics.matching import evaluate
from napari_unet_weights.weights.exact import DEFAULT_TOLERANCE, weight_map


class Refusing:
    """What a file reader gives dask: read by slices, never copied whole; reads recorded."""

    def __init__(self, reader) -> None:
        self.reader, self.shape, self.dtype = reader, reader.shape, reader.dtype
        self.ndim = len(reader.shape)

    def __getitem__(self, key):
        piece = np.asarray(self.reader[key])
        READS.append(piece.size)
        return piece

    def __array__(self, *args, **kwargs):
        raise AssertionError("a whole-array copy")


READS: list[int] = []


@pytest.fixture
def refusing(monkeypatch) -> list[int]:
    """Every lazily opened file is read through :class:`Refusing`; the sizes of its reads."""
    original = big_io._dask_of
    READS.clear()
    monkeypatch.setattr(big_io, "_dask_of", lambda reader, chunks, name:
                        original(Refusing(reader), chunks, name))
    return READS


def _zarr(path: Path, data: np.ndarray, chunks) -> Path:
    target = zarr.create_array(str(path), shape=data.shape, chunks=chunks, dtype=data.dtype)
    target[...] = data
    return path


@pytest.fixture(scope="module")
def crowded():
    """The crowded nuclei sample (256², 69 objects in the bundled model's segmentation)."""
    return load_sample("nuclei_crowded")[:2]


# -- weights ---------------------------------------------------------------------------------
def test_weights_of_a_zarr_store_are_the_in_memory_map_with_its_chunks(tmp_path, crowded,
                                                                       refusing, capsys):
    labels = crowded[1]
    source = _zarr(tmp_path / "cells.zarr", labels, (96, 80))
    assert main(["weights", str(source), "-o", str(tmp_path / "out"), "--w0", "8"]) == 0
    out = zarr.open_array(str(tmp_path / "out" / "cells_weights.zarr"), mode="r")
    assert out.chunks == (96, 80) and out.dtype == np.float32
    np.testing.assert_allclose(out[...], weight_map(labels, 8.0), rtol=0,
                               atol=DEFAULT_TOLERANCE)
    assert out.attrs["napari-unet-weights"]["weight_map"]["w0"] == 8.0
    assert max(refusing) <= 96 * 80  # chunk by chunk, never the whole input
    err = capsys.readouterr().err
    assert "cells_weights.zarr (zarr, chunks (96, 80)" in err
    assert ", step 1: " in err and "done (" in err  # a plain line per step: not a terminal


def test_weights_of_a_thin_zarr_stack_whose_overlap_reaches_past_it(tmp_path, crowded,
                                                                     capsys):
    stack = np.stack([crowded[1][:128, :128]] * 5)  # 3-D, 5 planes: the overlap is 25 deep
    source = _zarr(tmp_path / "stack.zarr", stack, (5, 64, 64))
    assert main(["weights", str(source), "-o", str(tmp_path / "out")]) == 0
    out = zarr.open_array(str(tmp_path / "out" / "stack_weights.zarr"), mode="r")
    np.testing.assert_allclose(out[...], weight_map(stack), rtol=0, atol=DEFAULT_TOLERANCE)
    assert "overlapping depth" not in capsys.readouterr().err


def test_weights_of_ome_zarr_labels_and_a_big_tiff_beside_a_small_one(tmp_path, crowded,
                                                                      monkeypatch, capsys):
    """A TIFF over the pixel threshold gives a zarr map with its tiles as chunks; a small
    TIFF keeps giving a TIFF; OME-Zarr labels (a pyramid written here) give a zarr map."""
    labels = crowded[1]
    folder = tmp_path / "in"
    folder.mkdir()
    tifffile.imwrite(folder / "big.tif", labels, tile=(64, 128))
    tifffile.imwrite(folder / "small.tif", labels[:100, :100])
    create_labels_zarr(folder / "ome.zarr", labels.shape, (128, 64))[...] = labels
    write_pyramid(folder / "ome.zarr")
    monkeypatch.setattr(big_io, "LARGE_PIXELS", 100 * 100)
    assert main(["weights", str(folder), "-o", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["big_weights.zarr", "ome_weights.zarr",
                                                     "small_weights.tif"]
    expected = weight_map(labels)
    for name, chunks in (("big", (64, 128)), ("ome", (128, 64))):
        result = zarr.open_array(str(out / f"{name}_weights.zarr"), mode="r")
        assert result.chunks == chunks
        np.testing.assert_allclose(result[...], expected, rtol=0, atol=DEFAULT_TOLERANCE)
    np.testing.assert_allclose(tifffile.imread(out / "small_weights.tif"),
                               weight_map(labels[:100, :100]), atol=1e-5)


def test_an_output_named_zarr_is_the_one_inputs_store(tmp_path, crowded, capsys):
    labels = crowded[1][:64, :64]
    tifffile.imwrite(tmp_path / "a.tif", labels)
    np.save(tmp_path / "b.npy", labels)
    assert main(["weights", str(tmp_path / "a.tif"), "-o", str(tmp_path / "map.zarr")]) == 0
    result = zarr.open_array(str(tmp_path / "map.zarr"), mode="r")
    assert result.chunks == (64, 64)  # a striped TIFF smaller than the square chunks
    np.testing.assert_allclose(result[...], weight_map(labels), atol=DEFAULT_TOLERANCE)
    capsys.readouterr()
    status = main(["weights", str(tmp_path / "a.tif"), str(tmp_path / "b.npy"), "-o",
                   str(tmp_path / "two.zarr")])
    assert status == 2 and "names the output of one input" in capsys.readouterr().err
    assert not (tmp_path / "two.zarr").exists()
    assert main(["weights", str(tmp_path / "b.npy"), "-o", str(tmp_path / "out"), "--zarr"]) == 0
    result = zarr.open_array(str(tmp_path / "out" / "b_weights.zarr"), mode="r")
    np.testing.assert_allclose(result[...], weight_map(labels), atol=DEFAULT_TOLERANCE)


def test_zarr_outputs_are_kept_replaced_and_never_an_input(tmp_path, crowded, capsys):
    labels = crowded[1]
    source = _zarr(tmp_path / "in.zarr", labels, (128, 128))
    out = tmp_path / "out" / "in_weights.zarr"
    _zarr(out, np.zeros((2, 2), np.float32), (2, 2))
    assert main(["weights", str(source), "-o", str(tmp_path / "out")]) == 1
    assert "exists; --overwrite replaces it" in capsys.readouterr().err
    assert zarr.open_array(str(out)).shape == (2, 2)
    assert main(["weights", str(source), "-o", str(tmp_path / "out"), "--overwrite"]) == 0
    assert zarr.open_array(str(out)).shape == labels.shape
    assert sorted(p.name for p in out.parent.iterdir()) == ["in_weights.zarr"]
    capsys.readouterr()
    for target in (source, source / "inside"):  # the input itself; a folder inside it
        assert main(["weights", str(source), "-o", str(target), "--overwrite"]) == 1
        assert "would replace an input" in capsys.readouterr().err
    np.testing.assert_array_equal(zarr.open_array(str(source))[...], labels)
    assert sorted(p.name for p in source.iterdir()) == ["c", "zarr.json"]


def test_unreadable_or_implausible_zarr_files_are_skipped(tmp_path, crowded, capsys):
    image, labels = crowded
    folder = tmp_path / "in"
    folder.mkdir()
    _zarr(folder / "good.zarr", labels, (128, 128))
    _zarr(folder / "grey.zarr", image.astype(np.uint16) + 1, (128, 128))
    (folder / "broken.zarr").mkdir()
    (folder / "broken.zarr" / "zarr.json").write_text("{not json")
    assert main(["weights", str(folder), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "skipped " + str(folder / "broken.zarr") in err
    assert "grey.zarr does not look like instance labels" in err and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good_weights.zarr"]
    assert main(["weights", str(folder / "grey.zarr"), "-o", str(tmp_path / "out"),
                 "--force-labels"]) == 0


@pytest.mark.parametrize("when", ["after the map", "during the computation"])
def test_ctrl_c_keeps_the_old_store_and_leaves_no_partial_one(tmp_path, crowded, monkeypatch,
                                                              capsys, when):
    source = _zarr(tmp_path / "in.zarr", crowded[1], (128, 128))
    out = tmp_path / "out"
    _zarr(out / "in_weights.zarr", np.full((2, 2), 7, np.float32), (2, 2))
    original = big_io.write_zarr_array

    def interrupted(*args, **kwargs):
        original(*args, **kwargs)  # the new map is complete, not yet in place
        raise KeyboardInterrupt

    def progress(self, done, total):  # dask calls it as each chunk is done
        raise KeyboardInterrupt

    if when == "after the map":
        monkeypatch.setattr(big_io, "write_zarr_array", interrupted)
    else:
        monkeypatch.setattr(_cli_big._Lines, "__call__", progress)
    assert main(["weights", str(source), "-o", str(out), "--overwrite"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["in_weights.zarr"]
    assert zarr.open_array(str(out / "in_weights.zarr"))[...].tolist() == [[7, 7], [7, 7]]


def test_a_scheduler_that_cannot_be_reached_is_a_usage_error(tmp_path, crowded, capsys):
    import dask

    source = _zarr(tmp_path / "in.zarr", crowded[1], (128, 128))
    with dask.config.set({"distributed.comm.timeouts.connect": "0.5s"}):
        status = main(["weights", str(source), "-o", str(tmp_path / "out"), "--scheduler",
                       "tcp://127.0.0.1:9"])
    assert status == 2
    assert "could not connect to the dask scheduler tcp://127.0.0.1:9" in \
        capsys.readouterr().err
    assert not (tmp_path / "out").exists()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_dask_shows_its_progress_bar_on_stderr(tmp_path, crowded, monkeypatch,
                                                             capsys):
    source = _zarr(tmp_path / "in.zarr", crowded[1], (128, 128))
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["weights", str(source), "-o", str(tmp_path / "out")]) == 0
    shown = terminal.getvalue()
    assert "] | 100% Completed |" in shown and "class counts and weight map\n" in shown
    assert ", step " not in shown  # the bar, not the plain lines
    assert "Completed" not in capsys.readouterr().out  # not on stdout


def test_workers_or_scheduler_without_zarr_outputs_say_so(tmp_path, crowded, capsys):
    tifffile.imwrite(tmp_path / "a.tif", crowded[1][:64, :64])
    assert main(["weights", str(tmp_path / "a.tif"), "-o", str(tmp_path / "out"),
                 "--workers", "2"]) == 0
    assert "used by zarr outputs only" in capsys.readouterr().err


@pytest.mark.cluster
def test_weights_on_two_worker_processes(tmp_path, crowded, capsys):
    """The TIFF reader travels to the worker processes as its path."""
    labels = crowded[1]
    tifffile.imwrite(tmp_path / "a.tif", labels, tile=(64, 64))
    assert main(["weights", str(tmp_path / "a.tif"), "-o", str(tmp_path / "a.zarr"),
                 "--workers", "2", "--border", "all"]) == 0
    assert "Engine(workers=2)" in capsys.readouterr().err
    result = zarr.open_array(str(tmp_path / "a.zarr"), mode="r")
    assert result.chunks == (64, 64)
    np.testing.assert_allclose(result[...], weight_map(labels, border="all"), rtol=0,
                               atol=DEFAULT_TOLERANCE)


# -- predict -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def in_memory(keras, crowded):
    """The in-memory segmentation of the crowded sample by the bundled model."""
    from napari_unet_weights.unet.predict import segment

    return segment(crowded[0], use_gpu=False)


def _check_labels_store(path: Path, expected: np.ndarray, chunks) -> None:
    levels = open_pyramid(path)
    assert levels[0].chunksize == chunks and levels[0].dtype == np.uint32
    labels = levels[0].compute()
    assert evaluate(expected, labels).map >= 0.98 and labels.max() == expected.max()
    for k, level in enumerate(levels[1:], start=1):
        np.testing.assert_array_equal(level.compute(), labels[..., :: 2**k, :: 2**k])


def test_predict_a_zarr_image_block_by_block_into_ome_zarr(tmp_path, crowded, in_memory,
                                                           refusing, capsys):
    source = _zarr(tmp_path / "cells.zarr", crowded[0], (128, 96))
    assert main(["predict", str(source), "-o", str(tmp_path / "out"), "--block", "128",
                 "--cpu"]) == 0
    _check_labels_store(tmp_path / "out" / "cells_labels.zarr", in_memory, (128, 96))
    assert max(refusing) <= 128 * 96  # chunk by chunk
    err = capsys.readouterr().err
    assert f"({in_memory.max()} objects, zarr, chunks (128, 96), 3 levels" in err
    assert ": segmentation, step " in err and ": pyramid, step " in err


def test_predict_with_zarr_on_a_cluster_leaves_only_the_output(tmp_path, crowded, in_memory,
                                                               dask_cluster, capsys):
    """--zarr on a small tiled TIFF, on a running (in-process) cluster given by address:
    the temporary files go beside the output, and are gone after."""
    tifffile.imwrite(tmp_path / "cells.tif", crowded[0], tile=(128, 128))
    status = main(["predict", str(tmp_path / "cells.tif"), "-o", str(tmp_path / "out"),
                   "--zarr", "--block", "128", "--cpu", "--scheduler",
                   dask_cluster.scheduler_address])
    assert status == 0, capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["cells_labels.zarr"]
    _check_labels_store(tmp_path / "out" / "cells_labels.zarr", in_memory, (128, 128))
    assert "Engine(scheduler=" in capsys.readouterr().err


def test_predict_keeps_small_tiffs_in_memory(tmp_path, crowded, in_memory, capsys):
    tifffile.imwrite(tmp_path / "cells.tif", crowded[0])
    assert main(["predict", str(tmp_path / "cells.tif"), "-o", str(tmp_path / "out"),
                 "--cpu"]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out" / "cells_labels.tif"),
                                  in_memory)
