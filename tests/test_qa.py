"""Model QA core (napari_unet_weights.qa): figures against evaluate() and stardist, object
statuses and won / lost objects against brute force, bootstrap intervals against a direct
numpy computation, inputs, arrays, progress and cancel. Precomputed labels stand for the
models (no network), except in the last test."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from napari_unet_weights import compare_models, evaluate, evaluate_models
from napari_unet_weights.qa import bootstrap_mean, modality, object_crops, worst_objects
from napari_unet_weights.runtime.progress import Cancelled
from reference import require_dsb_folder
from test_metrics import perturb

SPLIT = Path(__file__).resolve().parents[1] / "scripts" / "dsb2018_split.json"
SAMPLES = Path(__file__).resolve().parents[1] / "src" / "napari_unet_weights" / "data"
SAMPLE_NAMES = ("nuclei_crowded", "nuclei_fluorescence", "nuclei_histology")


# -- small label images with known errors ----------------------------------------------------
CELL = 8  # each object is a 6 x 6 square in its 8 x 8 cell


def grid_case(rng: np.random.Generator, n: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Truth: squares in an n x n grid; prediction: each kept, shifted, dropped, cut in
    three, merged with its right neighbour, shrunk, or a small spurious object."""
    truth = np.zeros((n * CELL, n * CELL), np.int32)
    pred = np.zeros_like(truth)
    next_id = 1
    for k in range(n * n):
        y, x = (k // n) * CELL, (k % n) * CELL
        if rng.random() < 0.8:
            truth[y + 1:y + 7, x + 1:x + 7] = k + 1
        action = rng.integers(7)
        if action == 0:
            pred[y + 1:y + 7, x + 1:x + 7] = next_id
        elif action == 1:
            pred[y + 2:y + 8, x + 1:x + 7] = next_id
        elif action == 2:  # cut in three: each third has IoU 1/3
            for j in range(3):
                pred[y + 1:y + 7, x + 1 + 2 * j:x + 3 + 2 * j] = next_id + j
        elif action == 3 and k % n < n - 1:  # merged with the right neighbour
            pred[y + 1:y + 7, x + 1:x + 7 + CELL] = next_id
        elif action == 4:
            pred[y + 1:y + 4, x + 1:x + 4] = next_id
        elif action == 5:
            pred[y + 3:y + 5, x + 3:x + 5] = next_id
        next_id += 3
    return truth, pred


def _ids(labels: np.ndarray) -> list[int]:
    return [int(i) for i in np.unique(labels) if i]


def brute_force(truth: np.ndarray, pred: np.ndarray) -> dict | None:
    """Statuses of every true object and unmatched prediction, one mask per object.

    None when a match at IoU >= 0.5 is not unique (then a matching must choose)."""
    gts, preds = _ids(truth), _ids(pred)
    area = {("g", g): int((truth == g).sum()) for g in gts}
    area.update({("p", p): int((pred == p).sum()) for p in preds})
    inter = {(g, p): int(((truth == g) & (pred == p)).sum()) for g in gts for p in preds}
    pairs = [(g, p) for (g, p), i in inter.items()
             if i and i / (area["g", g] + area["p", p] - i) >= 0.5]
    if len({g for g, _ in pairs}) < len(pairs) or len({p for _, p in pairs}) < len(pairs):
        return None
    matched_g, matched_p = {g for g, _ in pairs}, {p for _, p in pairs}

    def covers(p, g):
        return 2 * inter[g, p] > area["g", g]

    merging = {p for p in preds if sum(covers(p, g) for g in gts) >= 2}
    status = {}
    for g in gts:
        fragments = [p for p in preds if 2 * inter[g, p] > area["p", p]]
        if g in matched_g:
            status["gt", g] = "matched"
        elif any(covers(p, g) for p in merging):
            status["gt", g] = "merged"
        elif len(fragments) >= 2 and 2 * sum(inter[g, p] for p in fragments) > area["g", g]:
            status["gt", g] = "split"
        else:
            status["gt", g] = "missed"
    for p in preds:
        if p in matched_p:
            continue
        fragment = any(status["gt", g] == "split" and 2 * inter[g, p] > area["p", p]
                       for g in gts)
        status["pred", p] = ("merge" if p in merging else "split" if fragment
                             else "false positive")
    return {"status": status, "matched": matched_g}


def grid_cases(seed: int, count: int):
    """``count`` grid cases whose matching at 0.5 is unique, with their brute force."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        truth, pred = grid_case(rng)
        expected = brute_force(truth, pred)
        if expected is not None:
            cases.append((truth, pred, expected))
    return cases


# -- per-image figures -------------------------------------------------------------------------
def test_per_image_figures_equal_evaluate_and_stardist_on_real_pairs():
    from stardist.matching import matching

    folder = require_dsb_folder()
    rng = np.random.default_rng(22)
    names = sorted(p.stem for p in (folder / "labels").glob("*.tif"))
    chosen = [names[i] for i in rng.choice(len(names), 6, replace=False)]
    truths = [tifffile.imread(folder / "labels" / f"{n}.tif").astype(np.int32) for n in chosen]
    preds = [perturb(t, rng).astype(np.int32) for t in truths]
    result = evaluate_models([folder / "images" / f"{n}.tif" for n in chosen],
                             [folder / "labels" / f"{n}.tif" for n in chosen],
                             {"perturbed": preds})
    assert result.per_image["image"].tolist() == chosen
    for row, truth, pred in zip(result.per_image.itertuples(), truths, preds, strict=True):
        ours = evaluate(truth, pred)
        assert row.map == ours.map
        theirs = {round(s.thresh, 2): s for s in matching(truth, pred, thresh=ours.thresholds)}
        assert row.map == pytest.approx(np.mean([s.accuracy for s in theirs.values()]))
        for column, t in (("ap50", 0.5), ("ap75", 0.75), ("ap90", 0.9)):
            assert getattr(row, column) == pytest.approx(theirs[t].accuracy)
        assert (row.tp, row.fp, row.fn) == (theirs[0.5].tp, theirs[0.5].fp, theirs[0.5].fn)
        assert (row.n_true, row.n_pred) == (theirs[0.5].n_true, theirs[0.5].n_pred)
        assert row.missed + row.merged + row.split == row.fn
        areas = np.bincount(truth.ravel())[1:]
        assert row.median_area == np.median(areas[areas > 0])


def test_modality_is_the_recorded_rule_of_the_split():
    folder = require_dsb_folder("images")
    recorded = json.loads(SPLIT.read_text())["modality"]
    by_kind = {}
    for sample, kind in sorted(recorded.items()):
        by_kind.setdefault(kind, []).append(sample)
    chosen = [s for kind in sorted(by_kind) for s in by_kind[kind][:3]]
    assert {recorded[s] for s in chosen} == {"fluorescence", "brightfield", "he"}
    for sample in chosen:
        assert modality(tifffile.imread(folder / f"{sample}.tif")) == recorded[sample], sample
    assert modality(np.zeros((3, 8, 8))) == modality(np.zeros((8, 8, 2))) == "other"


# -- object statuses, won / lost objects --------------------------------------------------------
def test_statuses_and_counts_equal_brute_force():
    cases = grid_cases(seed=5, count=25)
    result = evaluate_models([t.astype(float) for t, _, _ in cases], [t for t, _, _ in cases],
                             {"grid": [p for _, p, _ in cases]})
    objects = result.per_object
    seen = set()
    for position, (_, _, expected) in enumerate(cases):
        mine = objects[objects["image"] == str(position)]
        found = {(k, int(label)): s for k, label, s in
                 zip(mine["kind"], mine["label"], mine["status"], strict=True)}
        assert found == expected["status"], position
        row = result.per_image.iloc[position]
        counts = pd.Series(list(expected["status"].items())).map(
            lambda item: (item[0][0], item[1])).value_counts()
        for column, key in (("missed", ("gt", "missed")), ("merged", ("gt", "merged")),
                            ("split", ("gt", "split")),
                            ("false_positives", ("pred", "false positive"))):
            assert row[column] == counts.get(key, 0), (position, column)
        seen.update(expected["status"].values())
    assert seen == {"matched", "missed", "merged", "split", "merge", "false positive"}


def test_won_and_lost_objects_equal_brute_force():
    first, second = grid_cases(seed=11, count=12), grid_cases(seed=12, count=40)
    pairs = []  # the same truth with two predictions: take second's predictions on first's
    for truth, pred_a, expected_a in first:
        for _, pred_b, _ in second:
            expected_b = brute_force(truth, pred_b)
            if expected_b is not None:
                pairs.append((truth, pred_a, pred_b, expected_a, expected_b))
                break
    result = evaluate_models([t for t, *_ in pairs], [t for t, *_ in pairs],
                             {"A": [p[1] for p in pairs], "B": [p[2] for p in pairs]})
    comparison = compare_models(result, "A", "B")
    found = {(r.image, int(r.label), r.outcome) for r in comparison.objects.itertuples()}
    expected = set()
    for position, (truth, _, _, a, b) in enumerate(pairs):
        for g in _ids(truth):
            if (g in a["matched"]) != (g in b["matched"]):
                expected.add((str(position), g, "won" if g in b["matched"] else "lost"))
    assert found == expected and expected
    per_image = comparison.per_image.set_index("image")
    for position in range(len(pairs)):
        outcomes = [o for image, _, o in expected if image == str(position)]
        assert per_image.loc[str(position), "won"] == outcomes.count("won")
        assert per_image.loc[str(position), "lost"] == outcomes.count("lost")


# -- bootstrap ----------------------------------------------------------------------------------
def direct_interval(values: np.ndarray, n_boot: int, seed: int, level: float = 0.95):
    """One resample at a time, as a textbook writes it."""
    rng = np.random.default_rng(seed)
    means = [values[rng.integers(0, values.size, values.size)].mean() for _ in range(n_boot)]
    return np.percentile(means, [50 * (1 - level), 50 * (1 + level)])


def test_bootstrap_interval_equals_a_direct_computation():
    values = np.random.default_rng(0).random(17)
    interval = bootstrap_mean(values, n_boot=500, seed=3)
    assert interval.mean == pytest.approx(values.mean())
    assert (interval.low, interval.high) == pytest.approx(tuple(direct_interval(values, 500, 3)))
    assert interval.low < interval.mean < interval.high
    other = bootstrap_mean(values, n_boot=500, seed=4)
    assert (other.low, other.high) != (interval.low, interval.high)
    one = bootstrap_mean([0.5], n_boot=10)
    assert (one.mean, one.low, one.high) == (0.5, 0.5, 0.5)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_mean(values, n_boot=0)


def two_model_result(n_boot: int = 300, seed: int = 7):
    cases = grid_cases(seed=3, count=14)
    rng = np.random.default_rng(1)
    other = [np.where(rng.random(t.shape) < 0.02, 0, t) for t, _, _ in cases]
    images = [t.astype(float) + (i % 3 == 0) * 100 * (t > 0) for i, (t, _, _) in
              enumerate(cases)]  # bright backgrounds on a third: two modalities
    images = [np.where(t > 0, 1.0, 200.0) if i % 3 == 0 else im
              for i, (im, (t, _, _)) in enumerate(zip(images, cases, strict=True))]
    return evaluate_models(images, [t for t, _, _ in cases],
                           {"A": [p for _, p, _ in cases], "B": other}, n_boot=n_boot,
                           seed=seed)


def test_summary_and_paired_differences_equal_direct_computations():
    result = two_model_result()
    table = result.per_image
    assert set(table["modality"]) == {"fluorescence", "brightfield"}
    for row in result.summary.itertuples():
        mine = table[table["model"] == row.model]
        if row.modality != "all":
            mine = mine[mine["modality"] == row.modality]
        maps = mine["map"].to_numpy()
        assert row.n_images == maps.size and row.map == pytest.approx(maps.mean())
        assert (row.map_low, row.map_high) == pytest.approx(tuple(direct_interval(maps, 300, 7)))
        assert row.tp == mine["tp"].sum()
    comparison = compare_models(result)
    a = table[table["model"] == "A"].set_index("image")["map"]
    b = table[table["model"] == "B"].set_index("image")["map"]
    difference = (b - a).to_numpy()
    assert comparison.per_image["difference"].to_numpy() == pytest.approx(difference)
    assert comparison.mean_difference == pytest.approx(difference.mean())
    assert (comparison.ci_low, comparison.ci_high) == pytest.approx(
        tuple(direct_interval(difference, 300, 7)))
    better = comparison.b_better()
    assert set(better["image"]) == set(a.index[difference > 1e-9])
    assert better["difference"].is_monotonic_decreasing
    assert set(comparison.b_worse()["image"]) == set(a.index[difference < -1e-9])
    per_modality = comparison.summary.set_index("modality")
    bright = comparison.per_image[comparison.per_image["modality"] == "brightfield"]
    assert per_modality.loc["brightfield", "mean_difference"] == pytest.approx(
        bright["difference"].mean())


def test_compare_needs_two_known_models():
    result = two_model_result(n_boot=10)
    with pytest.raises(KeyError, match="C"):
        compare_models(result, "A", "C")
    with pytest.raises(ValueError, match="different"):
        compare_models(result, "A", "A")


# -- inputs, arrays, progress, cancel ---------------------------------------------------------
def sample_folder(tmp_path: Path) -> Path:
    """images/ and labels/ of the three bundled samples, and preds/ (eroded labels)."""
    from scipy import ndimage as ndi

    for name in ("images", "labels", "preds"):
        (tmp_path / name).mkdir()
    for name in SAMPLE_NAMES:
        truth = tifffile.imread(SAMPLES / f"{name}_labels.tif")
        tifffile.imwrite(tmp_path / "images" / f"{name}.tif",
                         tifffile.imread(SAMPLES / f"{name}.tif"))
        tifffile.imwrite(tmp_path / "labels" / f"{name}.tif", truth)
        tifffile.imwrite(tmp_path / "preds" / f"{name}.tif", ndi.grey_erosion(truth, size=3))
    return tmp_path


def test_folder_inputs_arrays_and_progress(tmp_path):
    folder = sample_folder(tmp_path)
    events = []
    result = evaluate_models(folder, models=folder / "preds",
                             progress=lambda done, total: events.append((done, total)))
    assert result.models == ["preds"] and result.images == list(SAMPLE_NAMES)
    assert events == [(1, 3), (2, 3), (3, 3)]
    assert result.per_image["modality"].tolist() == ["fluorescence", "fluorescence", "he"]
    arrays = result.arrays("nuclei_histology")
    assert np.array_equal(arrays.truth, tifffile.imread(folder / "labels/nuclei_histology.tif"))
    assert np.array_equal(arrays.predictions["preds"],
                          tifffile.imread(folder / "preds/nuclei_histology.tif"))
    assert arrays.image.shape == (256, 320, 3)
    same = evaluate_models(folder / "images", folder / "labels",
                           {"eroded": folder / "preds"})
    assert same.per_image["map"].tolist() == result.per_image["map"].tolist()


def test_cancel_stops_between_evaluations(tmp_path):
    folder = sample_folder(tmp_path)
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled, match="after 1 of 3"):
        evaluate_models(folder, models=folder / "preds", should_stop=should_stop)


def test_bad_inputs_are_refused_before_work(tmp_path):
    folder = sample_folder(tmp_path)
    (folder / "partial").mkdir()
    tifffile.imwrite(folder / "partial" / "nuclei_crowded.tif", np.zeros((4, 4), np.uint8))
    (folder / "twice").mkdir()
    for name in SAMPLE_NAMES:
        tifffile.imwrite(folder / "twice" / f"{name}.tif", np.zeros((4, 4), np.uint8))
    np.save(folder / "twice" / f"{SAMPLE_NAMES[0]}.npy", np.zeros((4, 4), np.uint8))
    truth = [np.zeros((4, 4), int)]
    cases = [
        (dict(images=tmp_path / "nope"), FileNotFoundError, "no such folder"),
        (dict(images=folder / "labels"), ValueError, "images/ and labels/"),
        (dict(images=[np.zeros((4, 4))], truths=truth * 2), ValueError, "1 images but 2"),
        (dict(images=folder, models=folder / "partial"), ValueError, "no file for 2"),
        (dict(images=folder, models=folder / "twice"), ValueError, "two files named"),
        (dict(images=folder, models=tmp_path / "x.keras"), FileNotFoundError, "x.keras"),
        (dict(images=folder, models=folder / "labels" / "nuclei_crowded.tif"), ValueError,
         "a model is"),
        (dict(images=[np.zeros((4, 4))], truths=truth, models=[np.zeros((4, 4), int)]),
         TypeError, "list of their own"),
        (dict(images=folder, models=[folder / "preds", folder / "preds"]), ValueError,
         "repeated: preds"),
        (dict(images=folder, models=folder / "preds", n_boot=0), ValueError, "n_boot"),
    ]
    for arguments, error, message in cases:
        with pytest.raises(error, match=message):
            evaluate_models(**arguments)


def test_a_shape_mismatch_names_the_image_and_model():
    with pytest.raises(ValueError, match="image '0', model 'bad'"):
        evaluate_models([np.zeros((4, 4))], [np.zeros((4, 4), int)],
                        {"bad": [np.zeros((5, 5), int)]})


# -- gallery ------------------------------------------------------------------------------------
def test_worst_objects_have_their_boxes_and_crops_are_pngs():
    import io

    from PIL import Image

    result = two_model_result(n_boot=10)
    worst = worst_objects(result, per_kind=3)
    assert set(worst["error"]) <= {"missed", "merged", "split", "false positive"}
    assert worst.groupby(["model", "error"]).size().max() <= 3
    for (model, error), rows in worst.groupby(["model", "error"]):
        everything = result.per_object[(result.per_object["model"] == model)
                                       & (result.per_object["status"] == error)]
        assert rows["area"].tolist() == sorted(everything["area"], reverse=True)[:len(rows)]
    for row in worst.itertuples(index=False):
        arrays = result.arrays(row.image)
        labels = arrays.truth if row.kind == "gt" else arrays.predictions[row.model]
        box = labels[row[-4]:row[-2], row[-3]:row[-1]]
        assert (box == row.label).sum() == row.area == (labels == row.label).sum()
    crops = object_crops(result, worst)
    assert len(crops) == len(worst)
    for crop in crops:
        assert crop.png.startswith(b"\x89PNG\r\n\x1a\n")
        Image.open(io.BytesIO(crop.png)).verify()


# -- the bundled model --------------------------------------------------------------------------
def test_bundled_model_on_two_samples_loads_once_and_keeps_its_labels(keras):
    from napari_unet_weights.unet import segment
    from napari_unet_weights.unet.model_cache import load_cached, load_counts
    from napari_unet_weights.unet.model_file import BUNDLED_MODEL

    names = SAMPLE_NAMES[:2]
    images = [tifffile.imread(SAMPLES / f"{n}.tif") for n in names]
    truths = [tifffile.imread(SAMPLES / f"{n}_labels.tif") for n in names]
    load_cached(None)  # loaded once before: evaluate_models must not load it again
    before = load_counts().get(str(BUNDLED_MODEL.resolve()), 0)
    result = evaluate_models(images, truths, ["bundled", BUNDLED_MODEL],
                             names=["bundled", "file"])
    assert load_counts().get(str(BUNDLED_MODEL.resolve()), 0) == before
    for name, image, truth in zip(result.images, images, truths, strict=True):
        labels = segment(image)
        rows = result.per_image[result.per_image["image"] == name]
        assert rows["map"].tolist() == [evaluate(truth, labels).map] * 2
        assert np.array_equal(result.arrays(name).predictions["bundled"], labels)


def test_each_file_is_read_once_whatever_the_number_of_models(tmp_path, monkeypatch):
    from napari_unet_weights.io import files

    folder = sample_folder(tmp_path)
    reads = []
    for name in ("read_image", "read_labels"):
        original = getattr(files, name)

        def counted(path, original=original):
            reads.append(Path(path).relative_to(folder).parts[0])
            return original(path)

        monkeypatch.setattr(files, name, counted)
    evaluate_models(folder, models={"A": folder / "preds", "B": folder / "preds"})
    assert sorted(reads) == sorted(["images"] * 3 + ["labels"] * 3 + ["preds"] * 6)


def test_the_boxes_of_the_worst_objects_read_no_image(tmp_path, monkeypatch):
    from napari_unet_weights.io import files

    folder = sample_folder(tmp_path)
    result = evaluate_models(folder, models=folder / "preds")
    reads = []
    original = files.read_image

    def counted(path):
        reads.append(Path(path).name)
        return original(path)

    monkeypatch.setattr(files, "read_image", counted)
    assert len(worst_objects(result)) > 0 and reads == []


def test_dask_images_and_truths_give_the_same_figures():
    try:
        import dask.array as da
    except ImportError:  # the [big] extra; CI has it
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("dask is not installed")
    cases = grid_cases(seed=9, count=3)
    images = [np.where(t > 0, 200.0, 10.0) for t, _, _ in cases]
    truths = [t for t, _, _ in cases]
    preds = {"grid": [p for _, p, _ in cases]}
    lazy = evaluate_models([da.from_array(i, chunks=16) for i in images],
                           [da.from_array(t, chunks=16) for t in truths], preds)
    eager = evaluate_models(images, truths, preds)
    pd.testing.assert_frame_equal(lazy.per_image, eager.per_image)


def test_a_zarr_store_is_read_lazily(tmp_path):
    try:
        import zarr
    except ImportError:  # the [big] extra; CI has it
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("zarr is not installed")
    truth, pred, _ = grid_cases(seed=4, count=1)[0]
    image = np.where(truth > 0, 200, 10).astype(np.uint8)
    store = zarr.create_array(tmp_path / "image.zarr", shape=image.shape, chunks=(16, 16),
                              dtype=image.dtype)
    store[:] = image
    result = evaluate_models([tmp_path / "image.zarr"], [truth], {"grid": [pred]})
    assert type(result.arrays("image").image).__module__.startswith("dask")
    eager = evaluate_models([image], [truth], {"grid": [pred]}, image_names=["image"])
    pd.testing.assert_frame_equal(result.per_image, eager.per_image)
