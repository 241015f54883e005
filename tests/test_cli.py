"""Tests of the ``weights`` subcommand of napari-unet-weights, and of what all commands share."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

import napari_unet_weights.weights.exact as weights_module
from napari_unet_weights._sample_data import load_sample
from napari_unet_weights.cli import main
from napari_unet_weights.weights.exact import weight_map


@pytest.fixture
def label_files(tmp_path) -> dict[str, np.ndarray]:
    """Two good label files (TIFF and NPY) and one corrupt TIFF in ``tmp_path / "in"``."""
    folder = tmp_path / "in"
    folder.mkdir()
    crowded = load_sample("nuclei_crowded")[1][:96, :128]
    discs = load_sample("touching_discs")[1]
    tifffile.imwrite(folder / "crowded.tif", crowded)
    np.save(folder / "discs.npy", discs)
    (folder / "broken.tif").write_bytes(b"II*\x00 this is not a tiff")
    return {"crowded": crowded, "discs": discs}


def _read_output(folder: Path, stem: str) -> np.ndarray:
    result = tifffile.imread(folder / f"{stem}_weights.tif")
    assert result.dtype == np.float32
    return result


# -- weights -----------------------------------------------------------------
def test_weights_batch_skips_corrupt_file(tmp_path, label_files, capsys):
    out = tmp_path / "out" / "nested"
    status = main(["weights", str(tmp_path / "in"), "-o", str(out)])
    err = capsys.readouterr().err
    assert status == 1
    assert sorted(p.name for p in out.iterdir()) == ["crowded_weights.tif", "discs_weights.tif"]
    for stem, labels in label_files.items():
        np.testing.assert_allclose(_read_output(out, stem), weight_map(labels), atol=1e-5)
    assert "skipped" in err
    assert "broken.tif" in err
    assert "Traceback" not in err
    assert "[3/3]" in err
    assert "crowded_weights.tif (" in err


def test_weights_all_ok_exit_zero_and_progress(tmp_path, label_files, capsys):
    files = [str(tmp_path / "in" / "crowded.tif"), str(tmp_path / "in" / "discs.npy")]
    assert main(["weights", *files, "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "[1/2]" in err and "[2/2]" in err and "→" in err
    assert "skipped" not in err


def test_weights_options_change_the_result(tmp_path, label_files):
    out = tmp_path / "out"
    options = ["--w0", "3", "--sigma", "2.5", "--border", "all", "--class-weights", "1,4"]
    main(["weights", str(tmp_path / "in" / "discs.npy"), "-o", str(out), *options])
    expected = weight_map(label_files["discs"], 3, 2.5, border="all", class_weights=(1.0, 4.0))
    np.testing.assert_allclose(_read_output(out, "discs"), expected, atol=1e-5)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ([], {"w0": 10.0, "sigma": 5.0, "border": "background", "class_weights": "balanced",
              "spatial_dims": None}),
        (["--w0", "0", "--sigma", "1e1", "--border", "all", "--class-weights", "none"],
         {"w0": 0.0, "sigma": 10.0, "border": "all", "class_weights": "none"}),
        (["--class-weights", "inverse", "--per-plane"],
         {"class_weights": "inverse", "spatial_dims": 2}),
        (["--class-weights", " 0.5, 2 "], {"class_weights": (0.5, 2.0)}),
    ],
)
def test_weights_options_map_to_weight_map_arguments(tmp_path, monkeypatch, options, expected):
    calls = []

    def spy(labels, w0=10.0, sigma=5.0, **kwargs):
        calls.append({"w0": w0, "sigma": sigma, **kwargs})
        return np.zeros(labels.shape, np.float32)

    monkeypatch.setattr(weights_module, "weight_map", spy)
    np.save(tmp_path / "stack.npy", np.ones((2, 8, 8), dtype=np.uint8))
    assert main(["weights", str(tmp_path / "stack.npy"), "-o", str(tmp_path), *options]) == 0
    assert len(calls) == 1
    for key, value in expected.items():
        assert calls[0][key] == value, key


@pytest.mark.parametrize(
    "options",
    [["--sigma", "0"], ["--w0", "-1"], ["--w0", "nan"], ["--class-weights", "heavy"],
     ["--class-weights", "1,2,3"], ["--border", "inner"]],
)
def test_weights_bad_options_are_usage_errors(tmp_path, label_files, options, capsys):
    with pytest.raises(SystemExit) as info:
        main(["weights", str(tmp_path / "in"), "-o", str(tmp_path / "out"), *options])
    assert info.value.code == 2
    assert "error: argument" in capsys.readouterr().err


def test_weights_no_inputs_is_usage_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["weights", str(tmp_path / "empty"), "-o", str(tmp_path / "out")]) == 2
    assert "no label images found" in capsys.readouterr().err
    assert main(["weights", str(tmp_path / "ghost.tif"), "-o", str(tmp_path / "out")]) == 2
    assert "ghost.tif" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_weights_output_name_clash_is_usage_error(tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        np.save(tmp_path / folder / "x.npy", np.ones((4, 4), np.uint8))
    args = ["weights", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "out")]
    assert main(args) == 2
    assert "same output file" in capsys.readouterr().err


def test_weights_command_does_not_import_napari(tmp_path, label_files):
    code = (
        "import sys; from napari_unet_weights.cli import main; "
        f"status = main(['weights', {str(tmp_path / 'in' / 'discs.npy')!r}, '-o', "
        f"{str(tmp_path / 'o')!r}]); "
        "assert status == 0, status; assert 'napari' not in sys.modules; "
        "assert 'qtpy' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)




# -- never replace inputs; replace existing outputs only with --overwrite --------
def test_existing_output_is_kept_and_reported_without_overwrite(tmp_path, label_files, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "discs_weights.tif").write_bytes(b"an earlier result")
    assert main(["weights", str(tmp_path / "in" / "discs.npy"), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert (out / "discs_weights.tif").read_bytes() == b"an earlier result"
    assert "skipped" in err and "discs_weights.tif exists; --overwrite replaces it" in err
    assert main(["weights", str(tmp_path / "in" / "discs.npy"), "-o", str(out),
                 "--overwrite"]) == 0
    np.testing.assert_allclose(_read_output(out, "discs"), weight_map(label_files["discs"]),
                               atol=1e-5)


def test_files_named_like_outputs_are_not_inputs_and_never_replaced(tmp_path, capsys):
    """``a_weights.tif`` beside ``a.npy``: an earlier result or a ground truth, kept as is."""
    labels = load_sample("touching_discs")[1]
    np.save(tmp_path / "a.npy", labels)
    np.save(tmp_path / "b.npy", labels)
    tifffile.imwrite(tmp_path / "a_weights.tif", labels)  # named like a.npy's output
    before = (tmp_path / "a_weights.tif").read_bytes()
    assert main(["weights", str(tmp_path), "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert (tmp_path / "a_weights.tif").read_bytes() == before
    assert "left out 1 file(s)" in err and "(a_weights.tif)" in err
    assert (f"its output would replace {tmp_path / 'a_weights.tif'}, a file beside it named "
            "like its output (a ground truth or an earlier result)") in err and "(-o)" in err
    assert "[2/2]" in err and "wrote 1 weight map(s)" in err
    assert not (tmp_path / "a_weights_weights.tif").exists()
    b_output = (tmp_path / "b_weights.tif").read_bytes()
    # Run again with --overwrite: both outputs are now inputs found in the folder.
    assert main(["weights", str(tmp_path), "-o", str(tmp_path), "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "left out 2 file(s)" in err and "wrote 0 weight map(s)" in err
    assert (tmp_path / "a_weights.tif").read_bytes() == before
    assert (tmp_path / "b_weights.tif").read_bytes() == b_output
    # The same when a.npy is named alone: the file beside it is not replaced either.
    assert main(["weights", str(tmp_path / "a.npy"), "-o", str(tmp_path), "--overwrite"]) == 1
    assert "a file beside it named like its output" in capsys.readouterr().err
    assert (tmp_path / "a_weights.tif").read_bytes() == before


def test_output_folder_that_is_a_file_is_refused_before_any_work(tmp_path, label_files,
                                                                 monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(weights_module, "weight_map", lambda *a, **k: calls.append(a))
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    assert main(["weights", str(tmp_path / "in"), "-o", str(blocker / "out")]) == 2
    assert "blocker is a file, not a folder" in capsys.readouterr().err
    assert calls == []


def test_ctrl_c_while_writing_keeps_the_old_output_and_no_partial_file(
        tmp_path, label_files, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    old = np.full((4, 4), 7, np.float32)
    tifffile.imwrite(out / "discs_weights.tif", old)

    def interrupted_write(path, *args, **kwargs):
        Path(path).write_bytes(b"II*\x00 half a TIFF")
        raise KeyboardInterrupt

    monkeypatch.setattr(tifffile, "imwrite", interrupted_write)
    status = main(["weights", str(tmp_path / "in" / "discs.npy"), "-o", str(out),
                   "--overwrite"])
    assert status == 130
    assert "interrupted" in capsys.readouterr().err
    np.testing.assert_array_equal(tifffile.imread(out / "discs_weights.tif"), old)
    assert [p.name for p in out.iterdir()] == ["discs_weights.tif"]


# -- not labels --------------------------------------------------------------------
def test_intensity_images_are_refused_as_labels_unless_forced(tmp_path, capsys):
    image, labels = load_sample("nuclei_crowded")[:2]
    tifffile.imwrite(tmp_path / "grey.tif", image[:96, :96])
    tifffile.imwrite(tmp_path / "rgb.tif", load_sample("nuclei_histology")[0][:64, :64])
    tifffile.imwrite(tmp_path / "labels.tif", labels[:96, :96])
    out = tmp_path / "out"
    assert main(["weights", str(tmp_path), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["labels_weights.tif"]
    for name, why in (("grey.tif", "grey levels"), ("rgb.tif", "colour")):
        line = next(line for line in err.splitlines() if f"skipped {tmp_path / name}" in line)
        assert "does not look like instance labels" in line and why in line
        assert "--force-labels" in line
    assert main(["weights", str(tmp_path / "grey.tif"), "-o", str(out), "--force-labels"]) == 0
    assert (out / "grey_weights.tif").exists()


# -- TensorFlow's start-up messages ------------------------------------------------
def test_c_level_stderr_is_held_back_and_shown_on_failure(capfd):
    from napari_unet_weights.cli import c_stderr_held_back

    with c_stderr_held_back():
        os.write(2, b"I0000 00:00 noise from C++\n")
    assert "noise" not in capfd.readouterr().err
    with pytest.raises(ImportError), c_stderr_held_back():
        os.write(2, b"E0000 the reason it failed\n")
        raise ImportError("no tensorflow")
    assert "the reason it failed" in capfd.readouterr().err
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"
