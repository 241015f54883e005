"""``napari-unet-weights report``: exit codes, checks before any model loads, the CSV's
columns, the HTML written; one run of the bundled model on two small samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from napari_unet_weights.cli import main
from napari_unet_weights.qa import REPORT_COLUMNS
from test_qa import sample_folder

CSV_COLUMNS = ["image", "model", "map", "ap50", "ap75", "ap90", "tp", "fp", "fn", "missed",
               "merged", "split", "n_true", "n_pred"]


@pytest.fixture
def no_model_loads(monkeypatch):
    """Fail if the command loads a model or starts the backend."""
    from napari_unet_weights.cli import report
    from napari_unet_weights.unet import model_cache

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(model_cache, "load_cached", refuse)
    monkeypatch.setattr(report, "start_backend", refuse)


def test_labels_folders_as_models_write_the_report_and_the_csv(tmp_path, no_model_loads,
                                                              capsys):
    folder = sample_folder(tmp_path)
    (tmp_path / "other").mkdir()
    for path in (folder / "labels").iterdir():
        labels = tifffile.imread(path)
        tifffile.imwrite(tmp_path / "other" / path.name, np.where(labels % 4 == 0, 0, labels))
    first, second = str(folder / "preds"), str(tmp_path / "other")
    status = main(["report", str(folder), "--model", first, "--model", second,
                   "-o", str(tmp_path / "r.html"), "--csv", str(tmp_path / "t.csv"),
                   "--gallery", "2"])
    assert status == 0
    table = pd.read_csv(tmp_path / "t.csv")
    assert list(table.columns) == CSV_COLUMNS == list(REPORT_COLUMNS)
    assert table["model"].tolist() == [first] * 3 + [second] * 3
    assert sorted(set(table["image"])) == ["nuclei_crowded", "nuclei_fluorescence",
                                           "nuclei_histology"]
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.count('data-image="') == 3
    out = capsys.readouterr().out
    assert "mean mAP difference" in out and f"{second} - {first}" in out


def test_bad_arguments_exit_2_before_any_model_loads(tmp_path, no_model_loads, capsys):
    folder = sample_folder(tmp_path)
    (tmp_path / "exists.html").write_text("")
    report = str(tmp_path / "r.html")
    cases = [
        ([str(tmp_path / "nope"), "-o", report], "no such folder"),
        ([str(folder / "images"), "-o", report], "images/ and labels/"),
        ([str(folder), "--model", str(tmp_path / "missing.keras"), "-o", report],
         "missing.keras"),
        ([str(folder), "--model", str(folder / "labels" / "nuclei_crowded.tif"), "-o",
          report], "a model is"),
        ([str(folder), "--model", str(folder / "images"), "-o", report],
         "does not look like instance labels"),
        ([str(folder), "--model", "bundled", "--model", "bundled", "-o", report],
         "is repeated"),
        ([str(folder), "--model", "a", "--model", "b", "--model", "c", "-o", report],
         "at most two"),
        ([str(folder), "-o", str(tmp_path / "r.pdf")], ".html"),
        ([str(folder), "-o", report, "--csv", str(tmp_path / "t.txt")], ".csv"),
        ([str(folder), "-o", str(tmp_path / "exists.html")], "--overwrite"),
        ([str(folder), "-o", report, "--csv", report], "end the table"),
    ]
    for arguments, message in cases:
        assert main(["report", *arguments]) == 2, arguments
        assert message in capsys.readouterr().err, arguments
    assert not (tmp_path / "r.html").exists()


def test_an_unreadable_label_file_exits_1(tmp_path, no_model_loads, capsys):
    folder = sample_folder(tmp_path)
    (folder / "preds" / "nuclei_histology.tif").write_bytes(b"not a tiff")
    status = main(["report", str(folder), "--model", str(folder / "preds"), "-o",
                   str(tmp_path / "r.html")])
    assert status == 1
    assert "nuclei_histology" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_bundled_model_on_two_samples(tmp_path, keras):
    from napari_unet_weights import evaluate
    from napari_unet_weights.unet import segment

    folder = sample_folder(tmp_path)
    for name in ("nuclei_histology",):  # two images keep it short
        for kind in ("images", "labels", "preds"):
            (folder / kind / f"{name}.tif").unlink()
    status = main(["report", str(folder), "-o", str(tmp_path / "r.html"), "--csv",
                   str(tmp_path / "t.csv"), "--gallery", "1"])
    assert status == 0
    table = pd.read_csv(tmp_path / "t.csv")
    assert table["model"].tolist() == ["bundled", "bundled"]
    for row in table.itertuples():
        image = tifffile.imread(folder / "images" / f"{row.image}.tif")
        truth = tifffile.imread(folder / "labels" / f"{row.image}.tif")
        assert row.map == pytest.approx(evaluate(truth, segment(image)).map, abs=1e-12)
