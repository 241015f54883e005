"""Tests of ``napari-unet-weights check``: summaries, exit status, CSV and fixed copies."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import tifffile

from napari_unet_weights.cli import main
from napari_unet_weights.labels.checks import check_labels
from napari_unet_weights.labels.fixes import fix_labels
from reference import discs, split_id

CENTRES = [(12, 12), (12, 40), (40, 12), (40, 40)]


def clean_labels() -> np.ndarray:
    return discs((54, 54), CENTRES, 8)


def faulty_labels() -> np.ndarray:
    labels = clean_labels()
    labels[50:52, 50:52] = 1            # a second piece of id 1
    labels[1, 50] = 7                   # one stray pixel: small
    labels[39:42, 39:42] = 0            # a hole in id 4
    labels[40, 20:33] = 3               # id 3 painted until it touches id 4
    return labels


@pytest.fixture
def folder(tmp_path):
    """``in/`` with a clean TIFF, a faulty TIFF and a faulty .npy."""
    folder = tmp_path / "in"
    folder.mkdir()
    tifffile.imwrite(folder / "clean.tif", clean_labels())
    tifffile.imwrite(folder / "faulty.tif", faulty_labels())
    np.save(folder / "other.npy", faulty_labels()[:30])
    return folder


def test_clean_file_exits_zero(folder, capsys):
    assert main(["check", str(folder / "clean.tif")]) == 0
    out = capsys.readouterr().out
    assert f"{folder / 'clean.tif'}: clean (4 objects)" in out
    assert "checked 1 file: no problem found" in out


def test_problems_exit_one_with_a_summary_per_file(folder, capsys):
    assert main(["check", str(folder), "--list"]) == 1
    out = capsys.readouterr().out
    assert f"{folder / 'faulty.tif'}: 1 disconnected, 1 small, 1 hole, 1 touching " \
        "(5 objects)" in out
    assert f"{folder / 'clean.tif'}: clean" in out
    assert "checked 3 files: 2 with problems" in out
    listed = out.split("faulty.tif")[1].split("other.npy")[0]
    assert "touches 4" in listed and "1 hole, 9 px" in listed
    assert main(["check", str(folder / "faulty.tif"), "--ignore", "touching", "--ignore",
                 "hole", "--min-size", "1"]) == 1
    assert ": 1 disconnected (5 objects)" in capsys.readouterr().out


def test_options_reach_the_check(folder, tmp_path, capsys):
    touching = clean_labels()
    touching[12, 20:33] = 1             # 1 touches 2, nothing else
    tifffile.imwrite(tmp_path / "touching.tif", touching)
    assert main(["check", str(tmp_path / "touching.tif"), "--ignore", "touching"]) == 0
    stack = np.stack([clean_labels(), clean_labels()])
    tifffile.imwrite(tmp_path / "stack.tif", stack)
    assert main(["check", str(tmp_path / "stack.tif")]) == 0
    assert main(["check", str(tmp_path / "stack.tif"), "--per-plane"]) == 1
    assert "4 reused (8 objects)" in capsys.readouterr().out
    assert main(["check", str(folder / "faulty.tif"), "--min-size", "0", "--ignore",
                 "disconnected", "--ignore", "hole", "--ignore", "touching"]) == 0


@pytest.mark.parametrize("arguments", [
    ["missing.tif"], ["EMPTY"], ["in/clean.tif", "--csv", "in"],
    ["in/clean.tif", "--relabel"], ["in/clean.tif", "--fix", "in/clean.tif/x"],
])
def test_usage_errors_exit_two(folder, tmp_path, monkeypatch, capsys, arguments):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "EMPTY").mkdir()
    assert main(["check", *arguments]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("arguments", [["--min-size", "-1"], ["--ignore", "holes"], []])
def test_bad_options_exit_two(folder, arguments):
    with pytest.raises(SystemExit) as stop:
        main(["check", *arguments] + ([str(folder)] if arguments else []))
    assert stop.value.code == 2


def test_unreadable_or_implausible_files_count_as_problems(tmp_path, capsys):
    (tmp_path / "broken.tif").write_bytes(b"II*\x00 not a tiff")
    rng = np.random.default_rng(0)
    tifffile.imwrite(tmp_path / "image.tif", rng.integers(1, 255, (64, 64), dtype=np.uint8))
    assert main(["check", str(tmp_path / "broken.tif")]) == 1
    assert "broken.tif: not checked" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "image.tif")]) == 1
    assert "does not look like instance labels" in capsys.readouterr().err
    main(["check", str(tmp_path / "image.tif"), "--force-labels"])
    assert "objects)" in capsys.readouterr().out


def test_csv_lists_every_problem(folder, tmp_path, capsys):
    out = tmp_path / "problems.csv"
    assert main(["check", str(folder), "--csv", str(out)]) == 1
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table.columns) == ["file", "label", "problem", "plane", "other", "area",
                                   "bbox", "centroid", "detail"]
    assert sorted(set(table["file"])) == [str(folder / "faulty.tif"),
                                          str(folder / "other.npy")]
    faulty = table[table["file"] == str(folder / "faulty.tif")].reset_index(drop=True)
    report = check_labels(faulty_labels())
    assert faulty["label"].tolist() == report.problems["label"].tolist()
    assert faulty["problem"].tolist() == report.problems["problem"].astype(str).tolist()
    assert faulty["other"].tolist() == report.problems["other"].tolist()
    assert faulty["area"].tolist() == report.problems["area"].tolist()
    assert faulty["bbox"][0] == " ".join(map(str, report.problems["bbox"][0]))
    assert main(["check", str(folder / "clean.tif"), "--csv", str(out)]) == 2  # exists
    assert main(["check", str(folder / "clean.tif"), "--csv", str(out), "--overwrite"]) == 0
    assert pd.read_csv(out).empty


def test_fix_writes_clean_copies_and_never_touches_inputs(folder, tmp_path, capsys):
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    fixed = tmp_path / "fixed"
    assert main(["check", str(folder), "--fix", str(fixed), "--relabel"]) == 1
    err = capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    assert sorted(p.name for p in fixed.iterdir()) == ["clean_fixed.tif", "faulty_fixed.tif",
                                                      "other_fixed.tif"]
    for path in fixed.iterdir():
        labels = tifffile.imread(path)
        assert check_labels(labels).clean
        ids = np.unique(labels)
        np.testing.assert_array_equal(ids, np.arange(len(ids)))
    np.testing.assert_array_equal(tifffile.imread(fixed / "clean_fixed.tif"), clean_labels())
    assert "fixed copy →" in err and "clean)" in err
    # The outputs exist now: kept unless --overwrite; the check itself still runs.
    stamp = (fixed / "faulty_fixed.tif").stat().st_mtime_ns
    assert main(["check", str(folder), "--fix", str(fixed)]) == 1
    assert "no fixed copy" in capsys.readouterr().err
    assert (fixed / "faulty_fixed.tif").stat().st_mtime_ns == stamp
    assert main(["check", str(folder), "--fix", str(fixed), "--overwrite"]) == 1
    assert (fixed / "faulty_fixed.tif").stat().st_mtime_ns != stamp


def test_fixed_copies_beside_the_inputs_are_not_inputs(folder, capsys):
    assert main(["check", str(folder), "--fix", str(folder), "--merge-small"]) == 1
    assert (folder / "faulty_fixed.tif").exists()
    capsys.readouterr()
    assert main(["check", str(folder), "--fix", str(folder), "--overwrite"]) == 1
    captured = capsys.readouterr()
    assert "checked 3 files" in captured.out
    assert "left out 3 file(s)" in captured.err
    assert not list(folder.glob("*_fixed_fixed.tif"))


def test_a_fix_that_fails_is_said_and_the_batch_goes_on(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    tifffile.imwrite(folder / "a_largest.tif", split_id(np.iinfo(np.int64).max, np.int64))
    tifffile.imwrite(folder / "b_clean.tif", clean_labels())
    fixed = tmp_path / "fixed"
    assert main(["check", str(folder), "--fix", str(fixed)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "float64" not in captured.err
    assert (f"{folder / 'a_largest.tif'}: fixed copy not written: the fix needs ids up to "
            f"{2**63}, more than int64 holds: renumber the labels first") in captured.err
    assert "--relabel numbers the objects 1..N first." in captured.err
    assert sorted(path.name for path in fixed.iterdir()) == ["b_clean_fixed.tif"]
    assert "checked 2 files: 1 with problems; 1 without a fixed copy" in captured.out
    # --relabel has room for the new id: the pieces are separated, in integers
    assert main(["check", str(folder), "--fix", str(fixed), "--relabel", "--overwrite"]) == 1
    labels = tifffile.imread(fixed / "a_largest_fixed.tif")
    assert labels.dtype == np.int64 and check_labels(labels).clean
    np.testing.assert_array_equal(np.unique(labels), [0, 1, 2, 3])


def test_relabelled_copies_take_the_dtype_of_their_ids(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "top.tif", split_id(65535, np.uint16))
    assert main(["check", str(tmp_path / "top.tif"), "--fix", str(tmp_path / "fixed"),
                 "--relabel"]) == 1
    labels = tifffile.imread(tmp_path / "fixed" / "top_fixed.tif")
    assert labels.dtype == np.uint16
    np.testing.assert_array_equal(np.unique(labels), [0, 1, 2, 3])


def test_refused_files_are_counted_as_not_checked(tmp_path, capsys):
    rgb = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb)
    assert main(["check", str(tmp_path / "rgb.tif")]) == 1
    captured = capsys.readouterr()
    assert "rgb.tif: not checked" in captured.err
    assert captured.out.splitlines()[-1] == "checked 0 of 1 file: 1 not checked"
    tifffile.imwrite(tmp_path / "labels.tif", clean_labels())
    assert main(["check", str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == (
        "checked 1 of 2 files: no problem found; 1 not checked")


def test_fix_into_the_input_folder_runs_again_with_overwrite(folder, capsys):
    """The fixed copies beside their labels are check's own: replaced with --overwrite,
    whether the folder or the file alone is given; without it, kept."""
    assert main(["check", str(folder), "--fix", str(folder)]) == 1
    copy = folder / "faulty_fixed.tif"
    copy.write_bytes(b"an older fixed copy")
    capsys.readouterr()
    assert main(["check", str(folder), "--fix", str(folder)]) == 1
    err = capsys.readouterr().err
    assert f"no fixed copy: {copy} exists; --overwrite replaces it" in err
    assert copy.read_bytes() == b"an older fixed copy"
    for given in (folder, folder / "faulty.tif"):
        copy.write_bytes(b"an older fixed copy")
        assert main(["check", str(given), "--fix", str(folder), "--overwrite"]) == 1
        err = capsys.readouterr().err
        assert "would replace" not in err and "(-o)" not in err
        assert f"fixed copy → {copy}" in err
        assert check_labels(tifffile.imread(copy)).clean


def test_an_output_that_would_replace_an_input_names_the_fix_option(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    tifffile.imwrite(tmp_path / "x" / "a.tif", faulty_labels())
    tifffile.imwrite(tmp_path / "y" / "a_fixed.tif", clean_labels())  # an input, elsewhere
    before = (tmp_path / "y" / "a_fixed.tif").read_bytes()
    assert main(["check", str(tmp_path / "x" / "a.tif"), str(tmp_path / "y" / "a_fixed.tif"),
                 "--fix", str(tmp_path / "y"), "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "would replace an input file" in err and "(--fix OUTDIR)" in err and "(-o)" not in err
    assert (tmp_path / "y" / "a_fixed.tif").read_bytes() == before


def test_zarr_stores_are_checked_and_fixed(tmp_path, capsys):
    import zarr

    store = zarr.create_array(str(tmp_path / "cells.zarr"), shape=(54, 54), chunks=(20, 20),
                              dtype=np.uint16)
    store[...] = faulty_labels()
    assert main(["check", str(tmp_path / "cells.zarr")]) == 1
    assert (f"{tmp_path / 'cells.zarr'}: 1 disconnected, 1 small, 1 hole, 1 touching "
            "(5 objects)") in capsys.readouterr().out
    assert main(["check", str(tmp_path), "--fix", str(tmp_path / "fixed")]) == 1
    fixed = tifffile.imread(tmp_path / "fixed" / "cells_fixed.tif")
    np.testing.assert_array_equal(fixed, fix_labels(faulty_labels()).labels)


def test_an_image_with_no_pixel_is_clean(tmp_path, capsys):
    with pytest.warns(UserWarning, match="zero-size"):
        tifffile.imwrite(tmp_path / "empty.tif", np.zeros((0, 0), np.uint16))
    with warnings.catch_warnings():  # nor tifffile's warning on writing the fixed copy
        warnings.filterwarnings("error", ".*zero-size", UserWarning)
        assert main(["check", str(tmp_path / "empty.tif"), "--fix",
                     str(tmp_path / "fixed")]) == 0
    captured = capsys.readouterr()
    assert f"{tmp_path / 'empty.tif'}: clean (0 objects)" in captured.out
    assert "reshape" not in captured.err
    assert tifffile.imread(tmp_path / "fixed" / "empty_fixed.tif").shape == (0, 0)
