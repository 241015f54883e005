"""Tests of ``napari_unet_weights.metrics.matching``: matching, mAP, tables, against references."""

from __future__ import annotations

import itertools
import os
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage as ndi
from skimage.draw import disk
from skimage.morphology import convex_hull_image

from napari_unet_weights import Evaluation, evaluate, evaluate_dataset
from napari_unet_weights.metrics.matching import DEFAULT_THRESHOLDS
from reference import require_dsb_folder


# -- references ----------------------------------------------------------------
def seed_iou(masks_true, masks_pred):
    """The seed blog's ``iou``, verbatim but for the error check."""
    n_true_masks, height, width = masks_true.shape
    n_pred_masks = masks_pred.shape[0]
    m_true = masks_true.copy().reshape(n_true_masks, height * width).T
    m_pred = masks_pred.copy().reshape(n_pred_masks, height * width)
    numerator = np.dot(m_pred, m_true)
    denominator = m_pred.sum(1).reshape(-1, 1) + m_true.sum(0).reshape(1, -1)
    return numerator / (denominator - numerator)


def seed_evaluate_image(masks_true, masks_pred, thresholds):
    """The seed blog's ``evaluate_image`` (strict ``IoU > t``, pairs counted, no matching)."""
    int_o_un = seed_iou(masks_true, masks_pred)
    benched = int_o_un > np.asarray(thresholds).reshape(-1, 1, 1)
    tp = benched.sum(-1).sum(-1)
    fp = (benched.sum(2) == 0).sum(1)
    fn = (benched.sum(1) == 0).sum(1)
    return np.mean(tp / (tp + fp + fn))


def masks_of(labels: np.ndarray) -> np.ndarray:
    ids = [i for i in np.unique(labels) if i]
    return np.array([labels == i for i in ids], dtype=float).reshape(-1, *labels.shape)


def partial_matchings(n_true: int, n_pred: int, start: int = 0, used: frozenset = frozenset()):
    """Every one-to-one matching of gt objects start.. to unused preds, as (gt, pred) lists."""
    if start == n_true:
        yield []
        return
    for rest in partial_matchings(n_true, n_pred, start + 1, used):
        yield rest
    for b in range(n_pred):
        if b not in used:
            for rest in partial_matchings(n_true, n_pred, start + 1, used | {b}):
                yield [(start, b), *rest]


def brute_force(gt, pred, threshold, strict=False):
    """Per-object masks, exact IoU fractions, every one-to-one matching tried.

    Returns (tp, fp, fn, sum of matched IoU) of a matching with the most pairs, and
    among those the largest IoU sum. A threshold is read as the simplest fraction
    within 1e-6 of it (2/3 given as 0.666... means two thirds), as documented.
    """
    gt_ids = [i for i in np.unique(gt) if i]
    pred_ids = [i for i in np.unique(pred) if i]
    t = Fraction(threshold).limit_denominator(10**6)
    iou = {}
    for a, b in itertools.product(range(len(gt_ids)), range(len(pred_ids))):
        g, p = gt == gt_ids[a], pred == pred_ids[b]
        inter, union = int((g & p).sum()), int((g | p).sum())
        value = Fraction(inter, union)
        if inter and (value > t if strict else value >= t):
            iou[a, b] = value
    best = (0, Fraction(0))
    for matching in partial_matchings(len(gt_ids), len(pred_ids)):
        if all(pair in iou for pair in matching):
            best = max(best, (len(matching), sum((iou[p] for p in matching), Fraction(0))))
    tp = best[0]
    return tp, len(pred_ids) - tp, len(gt_ids) - tp, float(best[1])


def counts(evaluation: Evaluation) -> list[tuple[int, int, int]]:
    table = evaluation.per_threshold
    return list(zip(table.tp, table.fp, table.fn, strict=True))


# -- the seed's examples -------------------------------------------------------
def draw_discs(shape, centres, radius) -> np.ndarray:
    labels = np.zeros(shape, np.int32)
    for value, centre in enumerate(centres, start=1):
        rr, cc = disk(centre, radius, shape=shape)
        labels[rr, cc] = value
    return labels


SEED_CENTRE_2 = (np.sqrt(80**2 + 80**2) + 2 * 64) * np.cos(np.pi / 4) + 1
SEED_CENTRES = [(80, 80), (SEED_CENTRE_2, SEED_CENTRE_2)]


@pytest.fixture(scope="module")
def seed_truth() -> np.ndarray:
    return draw_discs((256, 256), SEED_CENTRES, 64)


@pytest.mark.parametrize("strict", [False, True])
def test_seed_smaller_discs_score_0_7(seed_truth, strict):
    pred = draw_discs((256, 256), SEED_CENTRES, 58)
    result = evaluate(seed_truth, pred, strict=strict)
    assert result.map == pytest.approx(0.7, abs=1e-12)
    assert result.per_threshold["tp"].tolist() == [2] * 7 + [0] * 3
    assert seed_evaluate_image(masks_of(seed_truth), masks_of(pred), DEFAULT_THRESHOLDS) == (
        pytest.approx(0.7))


@pytest.mark.parametrize("strict", [False, True])
def test_seed_merged_discs_score_0(seed_truth, strict):
    pred = convex_hull_image(seed_truth > 0).astype(np.int32)  # both discs and the gap
    result = evaluate(seed_truth, pred, strict=strict)
    assert result.map == 0.0
    assert seed_evaluate_image(masks_of(seed_truth), masks_of(pred), DEFAULT_THRESHOLDS) == 0.0
    gt_rows = result.per_object[result.per_object.kind == "gt"]
    assert gt_rows.status.tolist() == ["merged", "merged"]
    assert result.pred_features.status.tolist() == ["merge"]
    assert (result.per_object.kind == "pred").sum() == 1


def test_default_thresholds_are_exact_decimals():
    assert DEFAULT_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


# -- exact ties --------------------------------------------------------------------
def tie(numerator: int, denominator: int, scale: int = 3):
    """A gt strip and a prediction inside it with IoU exactly numerator/denominator."""
    gt = np.zeros((2, denominator * scale + 4), np.uint16)
    gt[0, : denominator * scale] = 5
    pred = np.zeros_like(gt)
    pred[0, : numerator * scale] = 9
    return gt, pred


@pytest.mark.parametrize("threshold", DEFAULT_THRESHOLDS)
def test_iou_equal_to_threshold_counts_only_when_not_strict(threshold):
    fraction = Fraction(str(threshold))
    gt, pred = tie(fraction.numerator, fraction.denominator)
    assert evaluate(gt, pred, [threshold]).per_threshold["tp"].tolist() == [1]
    assert evaluate(gt, pred, [threshold], strict=True).per_threshold["tp"].tolist() == [0]
    # in the default set: a TP up to and including the tie, not beyond
    expected = [int(t <= threshold) for t in DEFAULT_THRESHOLDS]
    assert evaluate(gt, pred).per_threshold["tp"].tolist() == expected
    strict_expected = [int(t < threshold) for t in DEFAULT_THRESHOLDS]
    assert evaluate(gt, pred, strict=True).per_threshold["tp"].tolist() == strict_expected


def test_ties_where_naive_float_products_fail():
    gt, pred = tie(11, 20, scale=5)  # IoU 55/100, but 0.55 * 100 == 55.00000000000001
    assert 0.55 * 100 > 55
    assert evaluate(gt, pred, 0.55).map == 1.0
    assert evaluate(gt, pred, 0.55, strict=True).map == 0.0
    gt, pred = tie(1, 2)
    assert evaluate(gt, pred, 0.5).map == 1.0
    assert evaluate(gt, pred, 0.5, strict=True).map == 0.0


def test_float_noise_in_thresholds_is_ignored():
    # np.arange(0.5, 1, 0.05) gives 0.7000000000000002: read as the decimal 0.7
    noisy = np.arange(0.5, 1, 0.05)
    assert noisy[4] > 0.7
    gt, pred = tie(7, 10)
    assert counts(evaluate(gt, pred, noisy)) == counts(evaluate(gt, pred))
    assert evaluate(gt, pred, noisy).per_threshold["tp"].tolist()[4] == 1


def test_object_split_in_exact_halves_matches_once_at_0_5():
    gt = np.zeros((1, 9), int)
    gt[0, :8] = 1
    pred = np.zeros_like(gt)
    pred[0, :4], pred[0, 4:8] = 3, 4  # both IoU exactly 0.5 with the same gt object
    result = evaluate(gt, pred, [0.5])
    assert counts(result) == [(1, 1, 0)]
    assert evaluate(gt, pred, [0.5], strict=True).map == 0.0


# -- ids, shapes, empty images ----------------------------------------------------
def test_non_sequential_and_huge_ids_give_the_same_scores():
    gt = draw_discs((64, 64), [(16, 16), (16, 48), (48, 32)], 10)
    pred = draw_discs((64, 64), [(17, 16), (16, 45), (40, 40)], 9)
    reference = evaluate(gt, pred)
    big_gt = np.select([gt == 1, gt == 2, gt == 3], [2**31 - 1, 7, 2**40], 0).astype(np.int64)
    big_pred = np.select([pred == 1, pred == 2, pred == 3], [2**31 - 1, 3, 2**62], 0)
    result = evaluate(big_gt, big_pred.astype(np.uint64))
    pd.testing.assert_frame_equal(result.per_threshold, reference.per_threshold)
    assert sorted(result.per_object.query("kind == 'gt'").label) == [7, 2**31 - 1, 2**40]
    assert set(result.pred_features["index"]) == {3, 2**31 - 1, 2**62}
    matched = result.per_object.set_index("label").loc[2**31 - 1, "matched_pred"]
    assert matched == 2**31 - 1



def test_uint64_ids_above_2_63_stay_exact_in_tables_and_csv(tmp_path):
    top = int(np.iinfo(np.uint64).max)
    huge_gt, huge_pred = 2**63, 2**63 + 12345
    gt = draw_discs((64, 64), [(16, 16), (16, 48), (48, 32)], 10)
    pred = draw_discs((64, 64), [(17, 16), (16, 45), (40, 40)], 9)
    gt = np.select([gt == 1, gt == 2, gt == 3], [huge_gt, 5, top], 0).astype(np.uint64)
    pred = np.select([pred == 1, pred == 2, pred == 3], [huge_pred, 3, top], 0).astype(np.uint64)
    result = evaluate(gt, pred)

    objects = result.per_object
    gt_rows = objects[objects["kind"] == "gt"].set_index("label")
    assert sorted(int(i) for i in gt_rows.index) == [5, huge_gt, top]
    assert int(gt_rows.loc[huge_gt, "matched_pred"]) == huge_pred
    assert int(gt_rows.loc[huge_gt, "best_pred"]) == huge_pred
    assert [int(i) for i in objects.loc[objects["kind"] == "pred", "best_gt"]] == [top]
    features = result.pred_features.set_index("index")
    assert sorted(int(i) for i in features.index) == [3, huge_pred, top]
    assert int(features.loc[huge_pred, "matched_gt"]) == huge_gt
    pairs = {(int(a), int(b)) for a, b in zip(result.overlaps["gt"], result.overlaps["pred"])}
    assert {(huge_gt, huge_pred), (top, top)} <= pairs

    result.to_csv(tmp_path / "run")
    written = pd.read_csv(tmp_path / "run_per_object.csv", dtype=str)
    assert {str(huge_gt), str(top)} <= set(written["label"])
    assert str(huge_pred) in set(written["matched_pred"])

    small_ids = evaluate(gt.clip(0, 1), pred.clip(0, 1))
    assert small_ids.per_object["label"].dtype == np.int64  # ordinary ids keep int64
    dataset = evaluate_dataset([("huge", gt, pred), ("small", gt.clip(0, 1), pred.clip(0, 1))])
    assert {huge_gt, top, 1} <= {int(i) for i in dataset.per_object["label"]}


def test_image_without_background():
    gt = np.ones((4, 6), np.uint8)
    gt[:, 3:] = 2
    pred = gt.copy()
    pred[:, 2] = 2  # IoUs 8/12 and 12/16
    result = evaluate(gt, pred)
    assert result.n_true == result.n_pred == 2
    assert result.per_threshold["tp"].tolist() == [2, 2, 2, 2, 1, 1, 0, 0, 0, 0]
    assert result.map == pytest.approx((4 * 1 + 2 * 1 / 3) / 10)


def test_both_empty_scores_zero_like_stardist():
    empty = np.zeros((8, 8), np.uint8)
    result = evaluate(empty, empty)
    assert result.map == 0.0
    assert counts(result) == [(0, 0, 0)] * 10
    assert result.per_threshold[["precision", "recall", "f1"]].to_numpy().sum() == 0
    assert len(result.per_object) == 0
    assert len(result.pred_features) == 0
    assert list(result.pred_features.columns) == ["index", "iou", "matched_gt", "status"]


def test_one_side_empty():
    labels = draw_discs((32, 32), [(8, 8), (20, 20)], 5)
    empty = np.zeros_like(labels)
    missed = evaluate(labels, empty)
    assert missed.map == 0.0 and counts(missed) == [(0, 0, 2)] * 10
    assert missed.per_object.status.tolist() == ["missed", "missed"]
    assert np.isnan(missed.per_object.max_tp_threshold).all()
    spurious = evaluate(empty, labels)
    assert spurious.map == 0.0 and counts(spurious) == [(0, 2, 0)] * 10
    assert spurious.per_object.kind.tolist() == ["pred", "pred"]
    assert spurious.per_object.status.tolist() == ["false positive"] * 2


def test_3d_and_1d():
    gt = np.zeros((6, 10, 10), np.uint16)
    gt[1:5, 1:5, 1:5] = 1
    gt[1:5, 5:9, 5:9] = 2
    pred = gt.copy()
    pred[1, 1:5, 1:5] = 0  # object 1 loses a quarter: IoU 0.75
    result = evaluate(gt, pred)
    assert result.per_threshold["tp"].tolist() == [2] * 6 + [1] * 4
    gt_rows = result.per_object.set_index("label")
    assert list(gt_rows.columns[2:5]) == ["centroid-0", "centroid-1", "centroid-2"]
    assert gt_rows.loc[2, ["centroid-0", "centroid-1", "centroid-2"]].tolist() == [2.5, 6.5, 6.5]
    assert gt_rows.loc[1, "max_tp_threshold"] == 0.75
    assert gt_rows.loc[1, "matched_iou"] == 0.75
    line = evaluate(np.array([0, 1, 1, 0, 2]), np.array([0, 1, 1, 1, 0]))
    assert counts(line)[0] == (1, 0, 1)


# -- statuses -------------------------------------------------------------------------
def test_split_object():
    gt = np.zeros((10, 20), int)
    gt[2:8, 2:18] = 1
    pred = np.zeros_like(gt)
    pred[2:8, 2:7], pred[2:8, 7:12], pred[2:8, 12:18] = 4, 5, 6  # 5, 5 and 6 of 16 columns
    pred[0, 0] = 7
    result = evaluate(gt, pred)
    assert result.map == 0.0
    row = result.per_object.iloc[0]
    assert (row.kind, row.status, row.best_pred, row.matched_pred) == ("gt", "split", 6, 0)
    assert row.best_iou == pytest.approx(6 / 16)
    assert result.pred_features.status.tolist() == ["split"] * 3 + ["false positive"]
    assert result.per_object.query("kind == 'pred'").status.tolist() == ["false positive"] * 4


def test_merged_pair_and_a_missed_object():
    gt = np.zeros((10, 30), int)
    gt[2:8, 2:8], gt[2:8, 9:15], gt[2:8, 20:26] = 1, 2, 3
    pred = np.zeros_like(gt)
    pred[2:8, 2:15] = 8  # 1 and 2 merged (gap filled)
    pred[0, 0] = 9  # a speck
    pred[2:8, 20:22] = 10  # a third of object 3: IoU 1/3
    result = evaluate(gt, pred)
    statuses = result.per_object.query("kind == 'gt'").set_index("label").status
    assert statuses.to_dict() == {1: "merged", 2: "merged", 3: "missed"}
    features = result.pred_features.set_index("index")
    assert features.status.to_dict() == {8: "merge", 9: "false positive", 10: "false positive"}
    assert features.loc[10, "iou"] == pytest.approx(1 / 3)
    assert features.loc[9, "iou"] == 0.0
    assert counts(result)[0] == (0, 3, 3)


def test_per_object_and_features_tables():
    gt = draw_discs((64, 64), [(16, 16), (16, 48), (48, 32)], 10)
    pred = draw_discs((64, 64), [(16, 16), (16, 44), (50, 50)], 10)
    pred[pred == 3] = 0
    pred[60:63, 0:3] = 7
    result = evaluate(gt, pred)
    columns = ["kind", "label", "area", "centroid-0", "centroid-1", "best_pred", "best_gt",
               "best_iou", "matched_pred", "matched_iou", "max_tp_threshold", "status"]
    assert list(result.per_object.columns) == columns
    table = result.per_object
    assert table.kind.tolist() == ["gt", "gt", "gt", "pred"]
    gt1 = table.iloc[0]
    assert (gt1.label, gt1.best_pred, gt1.matched_pred, gt1.best_iou) == (1, 1, 1, 1.0)
    assert (gt1["centroid-0"], gt1["centroid-1"]) == (16.0, 16.0)
    assert gt1.max_tp_threshold == 0.95
    assert table.iloc[2].status == "missed" and table.iloc[2].matched_pred == 0
    fp = table.iloc[3]
    assert (fp.label, fp.area, fp.best_gt, fp.status) == (7, 9, 0, "false positive")
    assert list(result.pred_features.columns) == ["index", "iou", "matched_gt", "status"]
    assert result.pred_features["index"].tolist() == [1, 2, 7]
    assert result.pred_features.matched_gt.tolist() == [1, 2, 0]
    assert list(result.per_threshold.columns) == [
        "threshold", "tp", "fp", "fn", "precision", "recall", "accuracy", "f1",
        "mean_matched_score", "mean_true_score", "panoptic_quality"]
    overlaps = result.overlaps
    assert list(overlaps.columns) == ["gt", "pred", "intersection", "union", "iou"]
    assert (overlaps.iou == overlaps.intersection / overlaps.union).all()


def test_to_csv_prefix_and_folder(tmp_path):
    gt = draw_discs((32, 32), [(8, 8), (20, 20)], 5)
    result = evaluate(gt, gt)
    written = result.to_csv(tmp_path / "run")
    assert [p.name for p in written] == ["run_per_threshold.csv", "run_per_object.csv"]
    back = pd.read_csv(written[0])
    assert back.threshold.tolist() == list(DEFAULT_THRESHOLDS)
    folder = result.to_csv(f"{tmp_path / 'out'}{os.sep}")
    assert sorted(p.name for p in folder) == ["per_object.csv", "per_threshold.csv"]
    assert all(p.parent == tmp_path / "out" for p in folder)


# -- low thresholds: real matching ------------------------------------------------------
def test_low_threshold_needs_one_to_one_matching():
    # gt 1 overlaps preds 1 and 2, gt 2 only pred 1: greedy could take (1, 1) and lose gt 2
    gt = np.zeros((1, 20), int)
    gt[0, 0:6], gt[0, 6:10] = 1, 2
    pred = np.zeros_like(gt)
    pred[0, 3:10], pred[0, 0:3] = 1, 2
    result = evaluate(gt, pred, [0.3])
    assert counts(result) == [(2, 0, 0)]
    assert counts(result) == [brute_force(gt, pred, 0.3)[:3]]


# -- bad input ---------------------------------------------------------------------------
def test_bad_inputs():
    labels = np.zeros((4, 4), np.uint8)
    with pytest.raises(TypeError, match="ground truth must hold integers"):
        evaluate(labels.astype(float), labels)
    with pytest.raises(TypeError, match="prediction is a boolean mask"):
        evaluate(labels, labels.astype(bool))
    with pytest.raises(ValueError, match="prediction contains negative values"):
        evaluate(labels, labels.astype(np.int8) - 1)
    with pytest.raises(ValueError, match=r"\(4, 4\) \(ground truth\) and \(4, 5\) \(prediction\)"):
        evaluate(labels, np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match="thresholds must lie in"):
        evaluate(labels, labels, [0.5, 1.5])
    with pytest.raises(ValueError, match="image 'b'"):
        evaluate_dataset([("a", labels, labels), ("b", labels, labels[:2])])


# -- dataset ------------------------------------------------------------------------------
def test_evaluate_dataset_aggregates():
    first = draw_discs((32, 32), [(8, 8), (20, 20)], 5)
    second = draw_discs((32, 32), [(8, 8)], 5)
    result = evaluate_dataset([(first, first), (second, np.zeros_like(second))])
    assert result.map == pytest.approx(0.5)
    assert result.per_image.to_dict("list") == {
        "image": [0, 1], "n_true": [2, 1], "n_pred": [2, 0], "map": [1.0, 0.0]}
    pooled = result.per_threshold
    assert pooled.tp.tolist() == [2] * 10 and pooled.fn.tolist() == [1] * 10
    assert pooled.accuracy.tolist() == pytest.approx([2 / 3] * 10)
    assert pooled.mean_true_score.tolist() == pytest.approx([2 / 3] * 10)
    named = evaluate_dataset([("x", first, first)], thresholds=[0.5])
    assert named.per_image.image.tolist() == ["x"]
    assert named.per_object.columns[0] == "image"
    assert evaluate_dataset([]).map == 0.0


# -- properties ------------------------------------------------------------------------------
label_images = st.integers(1, 6).flatmap(
    lambda width: st.tuples(
        arrays(np.uint8, (5, width), elements=st.integers(0, 4)),
        arrays(np.uint8, (5, width), elements=st.integers(0, 4)),
    )
)
threshold_values = st.sampled_from([0.0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 2 / 3, 0.75, 1.0])


@settings(max_examples=300, deadline=None)
@given(label_images, st.lists(threshold_values, min_size=1, max_size=3), st.booleans())
def test_matches_brute_force(images, thresholds, strict):
    gt, pred = images
    result = evaluate(gt, pred, thresholds, strict=strict)
    for row, threshold in zip(result.per_threshold.itertuples(), thresholds, strict=True):
        tp, fp, fn, sum_iou = brute_force(gt, pred, threshold, strict)
        assert (row.tp, row.fp, row.fn) == (tp, fp, fn)
        assert row.mean_matched_score * row.tp == pytest.approx(sum_iou)
        assert row.accuracy == (tp / (tp + fp + fn) if tp else 0.0)


@settings(max_examples=100, deadline=None)
@given(label_images)
def test_strict_matches_seed_code_above_one_half(images):
    gt, pred = images
    if not gt.any() or not pred.any():
        return  # the seed's code divides by zero there
    thresholds = [0.5, 0.6, 0.75, 0.9]
    expected = seed_evaluate_image(masks_of(gt), masks_of(pred), thresholds)
    assert evaluate(gt, pred, thresholds, strict=True).map == pytest.approx(expected)


@settings(max_examples=100, deadline=None)
@given(label_images, st.permutations(range(1, 5)))
def test_relabelling_changes_nothing(images, permutation):
    gt, pred = images
    lookup = np.array([0, *(p * 1000 + 17 for p in permutation)], np.int64)
    renamed = evaluate(lookup[gt], pred)
    pd.testing.assert_frame_equal(renamed.per_threshold, evaluate(gt, pred).per_threshold)


# -- stardist on real DSB labels ------------------------------------------------------------
def perturb(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Erode/dilate, merge neighbours, drop, add spurious objects and shuffle ids."""
    pred = labels.astype(np.int64)
    ids = np.unique(pred)[1:]
    boundary = ndi.maximum_filter(pred, size=3) != ndi.minimum_filter(pred, size=3)
    pred[boundary & np.isin(pred, ids[rng.random(ids.size) < 0.3])] = 0
    grown = ndi.grey_dilation(pred, size=3)
    chosen = ids[rng.random(ids.size) < 0.3]
    pred = np.where((pred == 0) & np.isin(grown, chosen), grown, pred)
    for a in ids[rng.random(ids.size) < 0.1]:  # merge with the neighbour touching it
        around = pred[ndi.binary_dilation(pred == a, iterations=3)]
        others = np.setdiff1d(around, [0, a])
        if others.size:
            pred[pred == others[0]] = a
    pred[np.isin(pred, ids[rng.random(ids.size) < 0.1])] = 0
    for _ in range(3):
        rr, cc = disk([rng.integers(0, n) for n in pred.shape], 6, shape=pred.shape)
        pred[rr, cc] = np.where(pred[rr, cc] == 0, pred.max() + 1, pred[rr, cc])
    values = np.unique(pred)[1:]
    lookup = np.zeros(pred.max() + 1, np.int64)
    lookup[values] = rng.choice(np.arange(1, 10 * values.size + 10), values.size, replace=False)
    return lookup[pred]


def test_agrees_with_stardist_on_perturbed_dsb_labels():
    import tifffile
    from stardist.matching import matching

    folder = require_dsb_folder("labels")
    rng = np.random.default_rng(1)
    thresholds = (0.1, 0.3, *DEFAULT_THRESHOLDS)
    files = sorted(folder.glob("*.tif"))
    for path in [files[i] for i in rng.choice(len(files), 8, replace=False)]:
        gt = tifffile.imread(path).astype(np.int32)
        pred = perturb(gt, rng).astype(np.int32)
        ours = evaluate(gt, pred, thresholds)
        theirs = matching(gt, pred, thresh=thresholds)
        for row, stats in zip(ours.per_threshold.itertuples(), theirs, strict=True):
            assert (row.tp, row.fp, row.fn) == (stats.tp, stats.fp, stats.fn), (path, row)
            if row.threshold >= 0.5:  # below, equally large matchings may differ
                for name in ("mean_matched_score", "mean_true_score", "panoptic_quality"):
                    assert getattr(row, name) == pytest.approx(getattr(stats, name), abs=1e-6)
