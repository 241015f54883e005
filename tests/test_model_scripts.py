"""The scripts behind the bundled model: oversampling, run configurations, the test report
and the seed table (no TensorFlow, no DSB data)."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from napari_unet_weights.unet.config import TrainConfig
from napari_unet_weights.unet.model_file import METADATA_ENTRY

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))
import evaluate_model  # noqa: E402
import learning_curve  # noqa: E402
import seed_table  # noqa: E402
import train_bundled_model  # noqa: E402


def test_oversampling_is_parsed_and_checked():
    assert train_bundled_model.oversampling("he=3,brightfield=5") == {"he": 3, "brightfield": 5}
    assert train_bundled_model.oversampling("") == {}
    for bad in ("he=0", "eosin=2", "he"):
        with pytest.raises(Exception, match="MODALITY=COUNT"):
            train_bundled_model.oversampling(bad)


def test_oversampled_images_are_linked_that_many_times(tmp_path):
    data = tmp_path / "data"
    for kind in ("images", "labels"):
        (data / kind).mkdir(parents=True)
        for name in ("a", "b"):
            (data / kind / f"{name}.tif").write_bytes(b"x")
    folder = train_bundled_model.link_subset(data, ["a", "b"], tmp_path / "train", {"b": 3})
    for kind in ("images", "labels"):
        names = sorted(p.name for p in (folder / kind).iterdir())
        assert names == ["a.tif", "b.tif", "b__copy1.tif", "b__copy2.tif"]
        assert (folder / kind / "b__copy2.tif").resolve() == data / kind / "b.tif"


def test_a_run_can_start_from_another_runs_configuration(tmp_path):
    config = TrainConfig(colour="hematoxylin", lr_schedule="cosine", epochs=7, seed=3)
    model = tmp_path / "A3.keras"
    with zipfile.ZipFile(model, "w") as archive:
        archive.writestr(METADATA_ENTRY, json.dumps({
            "format_version": 1, "n_classes": 3, "input": {}, "normalization": {},
            "architecture": {}, "postprocess": {}, "training": config.to_metadata()}))
    (tmp_path / "runs.json").write_text(json.dumps([{"name": "A3", "oversample": {"he": 3}}]))
    args = train_bundled_model.parse_args(["--config-from", str(model), "--seed", "1",
                                           "--no-weights"])
    assert TrainConfig.from_arguments(args) == config.replace(seed=1, use_weights=False)
    assert args.oversample == {"he": 3}
    plain = train_bundled_model.parse_args([])
    assert (plain.epochs, plain.oversample) == (train_bundled_model.DEFAULTS["epochs"],
                                                train_bundled_model.DEFAULTS_OVERSAMPLE)


def per_image_records():
    rng = np.random.default_rng(0)
    records = []
    for i, (modality, touching) in enumerate([("fluorescence", 0.5), ("fluorescence", 0.0),
                                              ("he", 0.3), ("brightfield", 0.1)]):
        records.append({"image": str(i), "modality": modality, "touching": touching,
                        "map": float(rng.uniform()), "ap_0.5": 0.9, "ap_0.75": 0.5,
                        "ap_0.9": 0.1})
    return records


def test_the_report_averages_per_image_scores_by_group():
    records = per_image_records()
    everything = evaluate_model._summary(records, lambda r: True)
    assert everything["n_images"] == 4
    assert everything["map"] == pytest.approx(np.mean([r["map"] for r in records]), abs=1e-4)
    crowded = evaluate_model._summary(records, lambda r: r["touching"] >= 0.2)
    assert crowded["map"] == pytest.approx((records[0]["map"] + records[2]["map"]) / 2, abs=1e-4)
    assert evaluate_model._summary(records, lambda r: False) == {"n_images": 0}


def scores(value: float) -> dict:
    group = {"map": value, "n_images": 1}
    return {"map": value, "ap_0.9": value / 2, "crowded": group, "not_crowded": group,
            "per_modality": {m: group for m in ("fluorescence", "brightfield", "he")}}


def test_the_seed_table_gives_mean_and_sample_deviation_per_loss():
    results = {"runs/weighted-seed0.keras": scores(0.5), "runs/weighted-seed1.keras": scores(0.6),
               "runs/weighted-seed2.keras": scores(0.7), "runs/plain-seed0.keras": scores(0.4),
               "runs/plain-seed1.keras": scores(0.4), "runs/plain-seed2.keras": scores(0.4)}
    rows = {cells[0]: cells[1:] for cells in (
        [c.strip() for c in line.strip("|").split("|")]
        for line in seed_table.table(results).splitlines())}
    assert rows["weighted"][:3] == ["3", "0.600 ± 0.100", "0.300 ± 0.050"]
    assert rows["plain"][1] == "0.400 ± 0.000"
    assert rows["weighted − plain"][:3] == ["", "+0.200", "+0.100"]


def _run_folder(root: Path, name: str, filters: int, steps: int, history: list) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"config": TrainConfig(
        base_filters=filters, steps_per_epoch=steps, epochs=4).to_metadata()}))
    (folder / "state.json").write_text(json.dumps({
        "history": history, "best_epoch": 2, "epochs_done": len(history), "finished": False}))
    return folder


def test_the_learning_curve_puts_runs_on_training_steps(tmp_path):
    pytest.importorskip("matplotlib")
    small = _run_folder(tmp_path, "f12", 12, 80, [[1, 0.9, 0.8, None], [2, 0.7, 0.6, 0.3]])
    large = _run_folder(tmp_path, "f32", 32, 40, [[1, 0.9, 0.7, 0.2], [2, 0.6, 0.5, 0.4],
                                                  [3, 0.5, 0.45, 0.45]])
    curve = learning_curve.read_curve(small)
    assert curve["steps"] == [80, 160] and curve["label"] == "f12 (base_filters 12, 2/4 epochs)"
    assert np.isnan(curve["val_map"][0]) and curve["val_loss"] == [0.8, 0.6]
    assert learning_curve.read_curve(large)["steps"] == [40, 80, 120]
    out = tmp_path / "curve.png"
    assert learning_curve.main([str(small), str(large), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert learning_curve.main([str(tmp_path), "-o", str(out)]) == 2  # not a run folder


def test_the_training_script_passes_the_run_folder_options():
    args = train_bundled_model.parse_args(["--run-dir", "runs/long", "--minutes", "170",
                                           "--checkpoint-minutes", "10"])
    assert (str(args.run_dir), args.minutes, args.checkpoint_minutes) == ("runs/long", 170, 10)
    plain = train_bundled_model.parse_args([])
    assert (plain.run_dir, plain.minutes, plain.checkpoint_minutes) == (None, None, 5.0)
