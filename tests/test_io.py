"""Tests of napari_unet_weights.io: readers, labels checks, atomic writers, pairing, inputs."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from napari_unet_weights._sample_data import load_sample
from napari_unet_weights.io.files import (
    atomic_output,
    check_output_file,
    csv_table_paths,
    expand_inputs,
    implausible_labels_reason,
    pair_files,
    read_image,
    read_labels,
    write_csv_tables,
    write_tiff,
)
from reference import require_dsb_folder


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


# -- contract: OSError for unreadable files, ValueError for bad contents -------
def test_npz_saved_as_npy_is_a_value_error_naming_the_file(tmp_path):
    path = tmp_path / "archive.npy"
    with open(path, "wb") as handle:
        np.savez(handle, a=np.zeros(3), b=np.ones(3))
    with pytest.raises(ValueError, match="several arrays") as info:
        read_image(path)
    assert not isinstance(info.value, OSError)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".JPG"])
def test_read_labels_refuses_jpeg(tmp_path, labels, suffix):
    path = tmp_path / f"labels{suffix}"
    iio.imwrite(path, labels.clip(0, 255).astype(np.uint8), extension=".jpg")
    with pytest.raises(ValueError, match=r"JPEG.*lossy.*PNG or TIFF") as info:
        read_labels(path)
    assert str(path) in str(info.value)
    assert read_image(path).shape == labels.shape  # an image may still be a JPEG


# -- labels or not -------------------------------------------------------------
def _discs(shape=(128, 128), radius=6, step=13, touching=False) -> np.ndarray:
    """Discs on a grid, ids 1..n; with ``touching``, neighbours share borders."""
    yy, xx = np.indices(shape)
    out = np.zeros(shape, np.uint16)
    spacing = 2 * radius if touching else step
    for index, (y, x) in enumerate(
            (y, x) for y in range(radius, shape[0] - radius, spacing)
            for x in range(radius, shape[1] - radius, spacing)):
        out[(yy - y) ** 2 + (xx - x) ** 2 <= (radius + touching) ** 2] = index + 1
    return out


@pytest.mark.parametrize(
    "array",
    [
        _discs(),
        _discs(touching=True),
        _discs().astype(np.int64) * 2**40,  # huge, sparse ids
        np.stack([_discs(), _discs()[::-1]]),  # a stack with ids reused per plane
        np.kron(np.arange(1, 401).reshape(20, 20), np.ones((6, 6), np.uint16)),  # 400 tiles
        np.zeros((64, 64), np.uint8),  # no object
        np.where(np.random.default_rng(0).random((128, 128)) < 0.01,
                 np.arange(128 * 128).reshape(128, 128), 0),  # 1-pixel spots
        np.arange(9, dtype=np.uint8).reshape(3, 3),  # too small to judge
        np.ones((16, 16, 1), np.uint8),  # a trailing axis of 1 is no colour
    ],
    ids=["discs", "touching", "huge-ids", "stack", "tiles", "empty", "spots", "tiny",
         "singleton-axis"],
)
def test_plausible_labels_pass(array):
    assert implausible_labels_reason(array) is None


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((32, 40, 3), np.uint8), r"colour or multichannel image \(3 values"),
        (np.zeros((32, 40, 4), np.uint16), r"\(4 values per pixel"),
        (np.random.default_rng(1).integers(0, 4096, (64, 64), dtype=np.uint16),
         "grey levels"),
        (np.add.outer(np.arange(64), np.arange(64)).astype(np.uint8), "grey levels"),
    ],
    ids=["rgb", "rgba", "noise-uint16", "ramp-uint8"],
)
def test_images_that_are_plainly_not_labels(array, match):
    assert re.search(match, implausible_labels_reason(array))


def test_sample_image_is_not_labels_and_its_labels_are():
    image, labels = load_sample("nuclei_crowded")[:2]
    assert "grey levels" in implausible_labels_reason(image)
    assert implausible_labels_reason(labels) is None
    histology = load_sample("nuclei_histology")[0]
    assert "colour" in implausible_labels_reason(histology)


def _dsb_sample(kind: str, step: int = 9) -> list:
    return sorted(require_dsb_folder(kind).glob("*.tif"))[::step]


def test_real_dsb_labels_pass_and_their_images_do_not():
    labels_files = _dsb_sample("labels")
    assert len(labels_files) > 50
    refused = [path.name for path in labels_files
               if implausible_labels_reason(read_labels(path)) is not None]
    assert refused == []
    accepted = [path.name for path in _dsb_sample("images")
                if implausible_labels_reason(read_image(path)) is None]
    assert accepted == []


# -- output checks and atomic writes --------------------------------------------
def test_check_output_file_creates_nothing_and_says_what_is_wrong(tmp_path):
    target = tmp_path / "new" / "deeper" / "out.tif"
    assert check_output_file(target) == target
    assert not (tmp_path / "new").exists()
    (tmp_path / "old.tif").write_bytes(b"old")
    assert check_output_file(tmp_path / "old.tif") == tmp_path / "old.tif"
    with pytest.raises(FileExistsError, match=r"old\.tif exists"):
        check_output_file(tmp_path / "old.tif", overwrite=False)
    with pytest.raises(IsADirectoryError, match="is a folder"):
        check_output_file(tmp_path)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(NotADirectoryError, match="a_file is a file, not a folder"):
        check_output_file(tmp_path / "a_file" / "sub" / "out.tif")
    assert (tmp_path / "old.tif").read_bytes() == b"old"


def test_check_output_file_refuses_a_read_only_folder(tmp_path, monkeypatch):
    folder = tmp_path / "read_only"
    folder.mkdir(mode=0o500)
    if not hasattr(os, "geteuid") or os.geteuid() == 0:  # root may write anywhere
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, **kwargs: Path(path) != folder
                            and real_access(path, mode, **kwargs))
    try:
        with pytest.raises(PermissionError, match="not writable"):
            check_output_file(folder / "sub" / "out.tif")
    finally:
        folder.chmod(0o700)


def _interrupting_writer(partial_bytes: bytes):
    """A stand-in for a writer that is interrupted (Ctrl-C) after writing some bytes."""

    def write(path, *args, **kwargs):
        Path(path).write_bytes(partial_bytes)
        raise KeyboardInterrupt

    return write


def test_write_tiff_interrupted_keeps_the_old_file_and_no_partial_one(tmp_path, monkeypatch):
    path = tmp_path / "w.tif"
    old = np.arange(6, dtype=np.float32).reshape(2, 3)
    write_tiff(path, old)
    monkeypatch.setattr(tifffile, "imwrite", _interrupting_writer(b"II*\x00partial"))
    with pytest.raises(KeyboardInterrupt):
        write_tiff(path, np.zeros((40, 40), np.float32))
    np.testing.assert_array_equal(tifffile.imread(path), old)
    assert [p.name for p in tmp_path.iterdir()] == ["w.tif"]


def test_atomic_output_replaces_only_when_complete(tmp_path):
    path = tmp_path / "sub" / "table.csv"
    with atomic_output(path) as partial:
        assert partial.parent == path.parent and partial.name.endswith(".csv")
        partial.write_text("new")
        assert not path.exists()
    assert path.read_text() == "new"
    with pytest.raises(RuntimeError), atomic_output(path) as partial:
        partial.write_text("half")
        raise RuntimeError("writer failed")
    assert path.read_text() == "new"
    assert [p.name for p in path.parent.iterdir()] == ["table.csv"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_atomic_output_files_get_the_usual_permissions(tmp_path):
    old_umask = os.umask(0o022)
    try:
        path = write_tiff(tmp_path / "w.tif", np.zeros((2, 2), np.float32))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # as a plain open() would give


# -- CSV tables ---------------------------------------------------------------------
def test_csv_tables_in_a_folder_or_by_prefix(tmp_path):
    tables = {"per_threshold": pd.DataFrame({"t": [0.5]}), "per_object": pd.DataFrame({"i": [1]})}
    (tmp_path / "existing").mkdir()
    written = write_csv_tables(tables, tmp_path / "existing")
    assert [p.name for p in written] == ["per_threshold.csv", "per_object.csv"]
    assert pd.read_csv(written[0]).t.tolist() == [0.5]
    assert csv_table_paths(f"{tmp_path / 'new'}/", ["a"]) == {"a": tmp_path / "new" / "a.csv"}
    written = write_csv_tables(tables, tmp_path / "runs" / "run1")
    assert [p.name for p in written] == ["run1_per_threshold.csv", "run1_per_object.csv"]
    assert csv_table_paths(tmp_path / "runs" / "run1", ["x"]) == {
        "x": tmp_path / "runs" / "run1_x.csv"}


def test_csv_tables_interrupted_keep_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "run_per_object.csv"
    path.write_text("old,table\n")
    write = _interrupting_writer(b"i\n1")
    monkeypatch.setattr(pd.DataFrame, "to_csv", lambda _table, path, **_: write(path))
    with pytest.raises(KeyboardInterrupt):
        write_csv_tables({"per_object": pd.DataFrame({"i": [1, 2]})}, tmp_path / "run")
    assert path.read_text() == "old,table\n"
    assert [p.name for p in tmp_path.iterdir()] == ["run_per_object.csv"]
