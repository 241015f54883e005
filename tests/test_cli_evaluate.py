"""Tests of ``napari-unet-weights evaluate``: files, folders, CSV output, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
from skimage.draw import disk

from napari_unet_weights.cli import main

SEED_CENTRE_2 = (np.sqrt(80**2 + 80**2) + 2 * 64) * np.cos(np.pi / 4) + 1


def discs(radius: int) -> np.ndarray:
    labels = np.zeros((256, 256), np.uint16)
    for value, centre in enumerate([(80, 80), (SEED_CENTRE_2, SEED_CENTRE_2)], start=1):
        rr, cc = disk(centre, radius, shape=labels.shape)
        labels[rr, cc] = value
    return labels


@pytest.fixture
def files(tmp_path):
    gt, pred = tmp_path / "gt.tif", tmp_path / "pred.tif"
    tifffile.imwrite(gt, discs(64))
    tifffile.imwrite(pred, discs(58))
    return gt, pred


@pytest.fixture
def folders(tmp_path):
    gt, pred = tmp_path / "truth", tmp_path / "predicted"
    gt.mkdir()
    pred.mkdir()
    truth = discs(64)
    tifffile.imwrite(gt / "a.tif", truth)
    tifffile.imwrite(pred / "a.tif", discs(58))  # 0.7
    tifffile.imwrite(gt / "b.tif", truth)
    np.save(pred / "b.npy", truth)  # perfect, other format: paired by stem
    return gt, pred


def test_files_print_table_and_map(files, capsys):
    assert main(["evaluate", str(files[0]), str(files[1])]) == 0
    out = capsys.readouterr().out
    assert "threshold" in out and "panoptic_quality" in out
    assert "mAP" in out and "0.7000" in out
    assert len([line for line in out.splitlines() if line.strip().startswith("0.")]) == 10


def test_strict_and_thresholds(files, capsys):
    assert main(["evaluate", str(files[0]), str(files[1]), "--strict",
                 "--thresholds", "0.5,0.9"]) == 0
    out = capsys.readouterr().out
    assert "0.5000" in out.splitlines()[-1]  # (1 + 0) / 2
    assert "over 2 thresholds" in out


def test_files_csv_prefix(files, tmp_path, capsys):
    prefix = tmp_path / "results" / "run"
    assert main(["evaluate", str(files[0]), str(files[1]), "--csv", str(prefix)]) == 0
    per_threshold = pd.read_csv(tmp_path / "results" / "run_per_threshold.csv")
    per_object = pd.read_csv(tmp_path / "results" / "run_per_object.csv")
    assert per_threshold.accuracy.mean() == pytest.approx(0.7)
    assert per_object.status.tolist() == ["matched", "matched"]
    assert "run_per_object.csv" in capsys.readouterr().err


def test_folders_per_image_and_dataset(folders, tmp_path, capsys):
    out_dir = tmp_path / "tables"
    out_dir.mkdir()
    assert main(["evaluate", str(folders[0]), str(folders[1]), "--csv", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "dataset mAP (mean of the 2 image mAPs): 0.8500" in out
    assert "pooled over 2 images" in out
    per_image = pd.read_csv(out_dir / "per_image.csv")
    assert per_image.to_dict("list") == {
        "image": ["a", "b"], "n_true": [2, 2], "n_pred": [2, 2], "map": [0.7, 1.0]}
    pooled = pd.read_csv(out_dir / "per_threshold.csv")
    assert pooled.tp.tolist() == [4] * 7 + [2] * 3
    per_object = pd.read_csv(out_dir / "per_object.csv")
    assert per_object.image.tolist() == ["a", "a", "b", "b"]


def test_folder_csv_with_trailing_separator(folders, tmp_path):
    target = tmp_path / "new" / "folder"
    assert main(["evaluate", str(folders[0]), str(folders[1]), "--csv", f"{target}/"]) == 0
    assert sorted(p.name for p in target.iterdir()) == [
        "per_image.csv", "per_object.csv", "per_threshold.csv"]


def test_unpaired_files(folders, capsys):
    tifffile.imwrite(folders[0] / "c.tif", discs(64))
    assert main(["evaluate", str(folders[0]), str(folders[1])]) == 1
    assert "c" in capsys.readouterr().err
    assert main(["evaluate", str(folders[0]), str(folders[1]), "--skip-unpaired"]) == 0
    assert "2 image mAPs" in capsys.readouterr().out


def test_usage_errors(files, folders, tmp_path, capsys):
    assert main(["evaluate", str(folders[0]), str(files[1])]) == 2
    assert "both be files or both be folders" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing.tif"), str(files[1])]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", str(files[0]), str(files[1]), "--thresholds", "0.5,2"])
    assert exit_info.value.code == 2


def test_bad_labels(files, tmp_path, capsys):
    floats = tmp_path / "floats.tif"
    tifffile.imwrite(floats, discs(58).astype(np.float32))
    assert main(["evaluate", str(files[0]), str(floats)]) == 1
    assert "integers" in capsys.readouterr().err
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, np.zeros((10, 10), np.uint16))
    assert main(["evaluate", str(files[0]), str(small)]) == 1
    assert "(256, 256)" in capsys.readouterr().err


# -- outputs: checked before scoring, replaced only with --overwrite, atomically ----
def test_existing_csv_is_refused_before_scoring_unless_overwrite(files, tmp_path, capsys):
    prefix = tmp_path / "run"
    old = tmp_path / "run_per_object.csv"
    old.write_text("an earlier table\n")
    assert main(["evaluate", str(files[0]), str(files[1]), "--csv", str(prefix)]) == 2
    captured = capsys.readouterr()
    assert "run_per_object.csv exists; --overwrite replaces it" in captured.err
    assert captured.out == ""  # nothing was scored
    assert old.read_text() == "an earlier table\n"
    assert not (tmp_path / "run_per_threshold.csv").exists()
    assert main(["evaluate", str(files[0]), str(files[1]), "--csv", str(prefix),
                 "--overwrite"]) == 0
    assert pd.read_csv(old).status.tolist() == ["matched", "matched"]


def test_unwritable_csv_fails_before_scoring(files, tmp_path, capsys):
    (tmp_path / "blocker").write_text("a file")
    assert main(["evaluate", str(files[0]), str(files[1]),
                 "--csv", str(tmp_path / "blocker" / "run")]) == 2
    captured = capsys.readouterr()
    assert "blocker is a file, not a folder" in captured.err
    assert captured.out == ""


def test_ctrl_c_while_writing_csv_keeps_the_old_file(files, tmp_path, monkeypatch, capsys):
    out = tmp_path / "tables"
    out.mkdir()
    (out / "per_threshold.csv").write_text("old\n")

    def interrupted_to_csv(_table, path, **_kwargs):
        Path(path).write_text("threshold,tp\n0.5,")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", interrupted_to_csv)
    assert main(["evaluate", str(files[0]), str(files[1]), "--csv", str(out),
                 "--overwrite"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["per_threshold.csv"]
    assert (out / "per_threshold.csv").read_text() == "old\n"


# -- inputs that are plainly not labels ------------------------------------------------
def test_intensity_image_is_refused_as_labels_unless_forced(files, tmp_path, capsys):
    rng = np.random.default_rng(0)
    image = tmp_path / "image.tif"
    tifffile.imwrite(image, rng.integers(0, 4000, (256, 256), dtype=np.uint16))
    assert main(["evaluate", str(files[0]), str(image)]) == 1
    err = capsys.readouterr().err
    assert "image.tif does not look like instance labels" in err and "--force-labels" in err
    assert main(["evaluate", str(files[0]), str(image), "--force-labels"]) == 0


def test_intensity_image_in_folders_is_refused(folders, capsys):
    rgb = np.zeros((256, 256, 3), np.uint8)
    rgb[..., 0] = np.arange(256)
    tifffile.imwrite(folders[1] / "a.tif", rgb)
    assert main(["evaluate", str(folders[0]), str(folders[1])]) == 1
    assert "colour or multichannel" in capsys.readouterr().err
