"""Tests of napari_unet_weights.io: readers, writer, pairing and input expansion."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_unet_weights.io import (
    expand_inputs,
    pair_files,
    read_image,
    read_labels,
    write_tiff,
)


@pytest.fixture
def labels() -> np.ndarray:
    out = np.zeros((20, 24), dtype=np.uint16)
    out[2:8, 3:9] = 1
    out[10:18, 12:20] = 300
    return out


# -- reading -----------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".tif", ".tiff", ".png", ".npy"])
def test_labels_round_trip(tmp_path, labels, suffix):
    path = tmp_path / f"labels{suffix}"
    if suffix == ".npy":
        np.save(path, labels)
    elif suffix == ".png":
        iio.imwrite(path, labels)
    else:
        tifffile.imwrite(path, labels)
    result = read_labels(path)
    assert result.dtype.kind in "ui"
    np.testing.assert_array_equal(result, labels)


def test_read_image_rgb_png_and_jpg(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (16, 12, 3), dtype=np.uint8)
    iio.imwrite(tmp_path / "x.png", rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "x.png"), rgb)
    iio.imwrite(tmp_path / "x.jpg", rgb)
    assert read_image(str(tmp_path / "x.jpg")).shape == (16, 12, 3)


def test_read_labels_palette_png_gives_indices(tmp_path, labels):
    image = Image.fromarray(labels.clip(0, 2).astype(np.uint8), mode="L").convert("P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
    image.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_labels(tmp_path / "p.png"), labels.clip(0, 2))


def test_read_labels_grey_rgb_png_gives_one_channel(tmp_path, labels):
    small = labels.clip(0, 200).astype(np.uint8)
    iio.imwrite(tmp_path / "g.png", np.dstack([small] * 3))
    np.testing.assert_array_equal(read_labels(tmp_path / "g.png"), small)


def test_read_labels_colour_png_is_refused(tmp_path):
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[..., 0] = 5
    iio.imwrite(tmp_path / "c.png", rgb)
    with pytest.raises(ValueError, match=r"c\.png is a colour image"):
        read_labels(tmp_path / "c.png")


@pytest.mark.parametrize(
    ("array", "error", "match"),
    [
        (np.zeros((4, 4), dtype=np.float32), TypeError, "must hold integers"),
        (np.zeros((4, 4), dtype=bool), TypeError, "boolean mask"),
        (-np.ones((4, 4), dtype=np.int16), ValueError, "negative"),
    ],
)
def test_read_labels_bad_values_name_the_file(tmp_path, array, error, match):
    path = tmp_path / "bad_labels.tif"
    tifffile.imwrite(path, array)
    with pytest.raises(error, match=match) as info:
        read_labels(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("garbage.tif", b"II*\x00garbage garbage"),
        ("not_a_tiff.tif", b"hello world"),
        ("garbage.png", b"\x89PNG\r\n\x1a\n broken"),
        ("garbage.jpg", b"\xff\xd8\xff broken"),
        ("garbage.npy", b"\x93NUMPY broken"),
        ("empty.tif", b""),
    ],
)
def test_corrupt_files_raise_oserror_naming_the_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(OSError, match="could not read") as info:
        read_image(path)
    assert str(path) in str(info.value)


def test_truncated_compressed_tiff(tmp_path, labels):
    path = tmp_path / "truncated.tif"
    write_tiff(path, np.random.default_rng(1).random((64, 64), dtype=np.float32))
    path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(OSError, match=r"truncated\.tif"):
        read_labels(path)


def test_missing_file_and_unsupported_type(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.tif"):
        read_image(tmp_path / "nope.tif")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"unsupported file type '\.txt'"):
        read_image(tmp_path / "notes.txt")
    with pytest.raises(IsADirectoryError):
        read_image(tmp_path)


def test_npy_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(OSError, match=r"objects\.npy"):
        read_image(path)


# -- writing -----------------------------------------------------------------
def test_write_tiff_round_trip_float32_zlib(tmp_path):
    weights = np.random.default_rng(2).random((3, 30, 40)).astype(np.float32)
    path = write_tiff(tmp_path / "sub" / "w.tif", weights)
    assert path.exists()
    with tifffile.TiffFile(path) as tiff:
        assert tiff.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        result = tiff.asarray()
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, weights)
    np.testing.assert_array_equal(read_image(path), weights)


def test_write_tiff_error_names_the_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="could not write"):
        write_tiff(blocker / "w.tif", np.zeros((2, 2), np.float32))


# -- pairing -----------------------------------------------------------------
def _touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def test_pair_files_by_stem_ignoring_extension(tmp_path):
    _touch(tmp_path / "images", "b.png", "a.tif", "c.npy", "readme.txt", ".hidden.tif")
    _touch(tmp_path / "labels", "a.TIF", "c.tiff", "b.tif")
    pairs = pair_files(tmp_path / "images", tmp_path / "labels")
    assert [(x.name, y.name) for x, y in pairs] == [
        ("a.tif", "a.TIF"), ("b.png", "b.tif"), ("c.npy", "c.tiff")
    ]


def test_pair_files_lists_unpaired_names(tmp_path):
    _touch(tmp_path / "gt", "a.tif", "b.tif", "only_gt.tif")
    _touch(tmp_path / "pred", "a.tif", "b.png", "only_pred.png")
    with pytest.raises(ValueError, match="only_gt") as info:
        pair_files(tmp_path / "gt", tmp_path / "pred")
    assert "only_pred" in str(info.value)
    pairs = pair_files(tmp_path / "gt", tmp_path / "pred", strict=False)
    assert [x.stem for x, _ in pairs] == ["a", "b"]


def test_pair_files_empty_and_disjoint_and_missing(tmp_path):
    _touch(tmp_path / "empty", "notes.txt")
    _touch(tmp_path / "full", "a.tif")
    _touch(tmp_path / "other", "z.tif")
    with pytest.raises(ValueError, match=r"empty holds no image files"):
        pair_files(tmp_path / "empty", tmp_path / "full")
    with pytest.raises(ValueError, match="no file names in common"):
        pair_files(tmp_path / "full", tmp_path / "other", strict=False)
    with pytest.raises(FileNotFoundError, match="missing"):
        pair_files(tmp_path / "missing", tmp_path / "full")


def test_pair_files_refuses_duplicate_stems(tmp_path):
    _touch(tmp_path / "a", "x.tif", "x.png")
    _touch(tmp_path / "b", "x.tif")
    with pytest.raises(ValueError, match="two files named 'x'"):
        pair_files(tmp_path / "a", tmp_path / "b")


# -- expanding inputs --------------------------------------------------------
def test_expand_inputs_files_and_folders(tmp_path):
    _touch(tmp_path / "dir", "b.tif", "a.png", "c.npy", "notes.txt", ".hidden.tif")
    _touch(tmp_path, "z.tif", "explicit.txt")
    result = expand_inputs([tmp_path / "z.tif", tmp_path / "dir", str(tmp_path / "dir" / "a.png"),
                            tmp_path / "explicit.txt"])
    names = [p.relative_to(tmp_path).as_posix() for p in result]
    assert names == ["dir/a.png", "dir/b.tif", "dir/c.npy", "explicit.txt", "z.tif"]


def test_expand_inputs_missing_path_and_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    assert expand_inputs([tmp_path / "empty"]) == []
    with pytest.raises(FileNotFoundError, match="ghost"):
        expand_inputs([tmp_path / "ghost.tif"])
