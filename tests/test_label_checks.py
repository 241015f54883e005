"""Tests of ``check_labels``: injected errors of each kind, the false-alarm side, and an
independent brute-force reference (one ``scipy.ndimage`` operation per object) on random
labels in 1-D to 4-D."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from napari_unet_weights.labels.checks import PROBLEMS, check_labels
from reference import discs, require_dsb_folder


def rows(report) -> set[tuple]:
    """The rows of a report as (label, problem, plane, other)."""
    table = report.problems
    return {(int(a), str(b), tuple(c), int(d)) for a, b, c, d in
            zip(table["label"], table["problem"], table["plane"], table["other"])}


# -- an independent reference --------------------------------------------------------
def reference(labels, min_size=10, spatial_dims=None):
    """Rows and problem pixels, the slow way: one ndimage operation per object / region."""
    labels = np.asarray(labels)
    s = spatial_dims or labels.ndim
    full = ndi.generate_binary_structure(s, s)
    face = ndi.generate_binary_structure(s, 1)
    found, seen = {}, {}

    def add(key, plane, mask):
        whole = np.zeros(labels.shape, dtype=bool)
        whole[plane] = mask
        found[key] = whole

    for plane in np.ndindex(labels.shape[: labels.ndim - s]):
        image = labels[plane]
        ids = [int(i) for i in np.unique(image) if i]
        for i in ids:
            seen.setdefault(i, []).append(plane)
            mask = image == i
            pieces, n = ndi.label(mask, full)
            if n > 1:
                sizes = np.bincount(pieces.ravel())[1:]
                add((i, "disconnected", plane, 0), plane,
                    mask & (pieces != 1 + int(np.argmax(sizes))))
            if mask.sum() < min_size:
                add((i, "small", plane, 0), plane, mask)
            for j in np.unique(image[ndi.binary_dilation(mask, full)]):
                if j > i:
                    other = image == j
                    add((i, "touching", plane, int(j)), plane,
                        (mask & ndi.binary_dilation(other, full))
                        | (other & ndi.binary_dilation(mask, full)))
        background, n = ndi.label(image == 0, face)
        for c in range(1, n + 1):
            region = background == c
            if any(np.take(region, e, axis=a).any() for a in range(s) for e in (0, -1)):
                continue
            around = set(np.unique(image[ndi.binary_dilation(region, face) & ~region]))
            if len(around) == 1:
                key = (int(around.pop()), "hole", plane, 0)
                previous = found.get(key, np.zeros(labels.shape, dtype=bool))[plane]
                add(key, plane, previous | region)
    if s < labels.ndim:
        for i, planes in seen.items():
            for plane in planes[1:]:
                add((i, "reused", plane, 0), plane, labels[plane] == i)
    return found


def random_labels(rng, shape, n_ids, background, block=1):
    small = tuple(max(1, -(-n // block)) for n in shape)
    labels = np.where(rng.random(small) < background, 0, rng.integers(1, n_ids + 1, small))
    for axis in range(len(shape)):
        labels = np.repeat(labels, block, axis=axis)
    return labels[tuple(slice(0, n) for n in shape)].astype(np.uint16)


CASES = {  # shape range, spatial_dims, count
    "1d": ((1, 30), 1, None, 30),
    "2d": ((1, 14), 2, None, 150),
    "3d": ((1, 7), 3, None, 50),
    "stack of 2d": ((1, 8), 3, 2, 50),
    "rows of 1d": ((1, 20), 2, 1, 30),
    "4d, planes of 2d": ((1, 5), 4, 2, 20),
}


@pytest.mark.parametrize("case", CASES)
def test_matches_brute_force_reference_on_random_labels(case):
    (low, high), ndim, spatial_dims, count = CASES[case]
    rng = np.random.default_rng(len(case))
    for _ in range(count):
        shape = tuple(int(n) for n in rng.integers(low, high, ndim))
        labels = random_labels(rng, shape, int(rng.integers(1, 6)), rng.random(),
                               block=int(rng.integers(1, 3)))
        min_size = int(rng.integers(0, 6))
        report = check_labels(labels, min_size=min_size, spatial_dims=spatial_dims)
        expected = reference(labels, min_size, spatial_dims)
        assert rows(report) == set(expected), labels
        assert len(report) == len(expected)
        table = report.problems
        for row in range(len(report)):
            key = (int(table["label"][row]), str(table["problem"][row]),
                   tuple(table["plane"][row]), int(table["other"][row]))
            np.testing.assert_array_equal(report.mask([row]), expected[key])
            assert np.array_equal(np.flatnonzero(report.mask([row])),
                                  np.ravel_multi_index(report.pixels(row), labels.shape))


def test_area_bbox_and_centroid_are_those_of_the_object():
    rng = np.random.default_rng(5)
    for _ in range(40):
        labels = random_labels(rng, (3, 9, 11), 4, 0.4)
        table = check_labels(labels, min_size=4, spatial_dims=2).problems
        for _, row in table.iterrows():
            plane = row["plane"]
            points = np.argwhere(labels[plane] == row["label"])
            assert row["area"] == len(points)
            assert row["bbox"] == (*plane, *points.min(0), *(np.array(plane) + 1),
                                   *(points.max(0) + 1))
            np.testing.assert_allclose(row["centroid"], (*plane, *points.mean(0)))


# -- injected errors -------------------------------------------------------------------
CENTRES = [(12, 12), (12, 40), (12, 68), (40, 12), (40, 40), (40, 68), (68, 12), (68, 40)]


@pytest.fixture
def clean_2d() -> np.ndarray:
    """Eight separate discs of radius 8: no problem of any kind."""
    return discs((84, 84), CENTRES, 8)


def test_clean_image_reports_nothing(clean_2d):
    report = check_labels(clean_2d)
    assert report.clean and len(report) == 0 and report.problems.empty
    assert list(report.summary.index) == list(PROBLEMS)
    assert report.summary.sum() == 0
    assert report.n_objects == 8
    assert list(report.problems.columns)[:7] == ["label", "problem", "plane", "other",
                                                 "area", "bbox", "centroid"]


def test_each_injected_error_is_found_with_its_pixels(clean_2d):
    labels = clean_2d.copy()
    labels[78:80, 78:81] = 3            # a second piece of id 3, far away (6 px)
    labels[76, 60:64] = 9               # a new id of 4 px: small
    labels[39:42, 39:42] = 0            # a 3x3 hole in id 5
    labels[40, 20:33] = 4               # id 4 painted on until it touches id 5
    report = check_labels(labels, min_size=10)
    assert rows(report) == {(3, "disconnected", (), 0), (9, "small", (), 0),
                            (5, "hole", (), 0), (4, "touching", (), 5)}
    table = report.problems.set_index("problem")
    assert table.loc["hole", "detail"] == "1 hole, 9 px"
    assert table.loc["disconnected", "detail"] == "2 pieces; 6 px outside the largest"
    assert table.loc["small", "bbox"] == (76, 60, 77, 64)
    assert table.loc["touching", "other"] == 5
    by_problem = {p: i for i, p in enumerate(report.problems["problem"])}
    assert set(zip(*report.pixels(by_problem["hole"]))) == {
        (y, x) for y in range(39, 42) for x in range(39, 42)}
    assert set(zip(*report.pixels(by_problem["disconnected"]))) == {
        (y, x) for y in (78, 79) for x in (78, 79, 80)}
    contact = set(zip(*report.pixels(by_problem["touching"])))
    assert (40, 32) in contact and (40, 33) in contact and (40, 20) not in contact
    assert report.summary.to_dict() == {"disconnected": 1, "small": 1, "hole": 1,
                                        "touching": 1, "reused": 0}
    image = report.problem_image()
    assert image[40, 40] == 1 + PROBLEMS.index("hole")
    assert image[76, 61] == 1 + PROBLEMS.index("small")
    assert image[5, 5] == 0


def test_connectivity_conventions_2d():
    # A diamond: 8-connected, one piece; its centre is enclosed (4-connected background).
    diamond = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=np.uint8)
    assert rows(check_labels(np.pad(diamond, 1), min_size=0)) == {(1, "hole", (), 0)}
    # Two ids that meet only at a corner touch; one id meeting itself there is one piece.
    corner = np.array([[1, 0], [0, 2]], dtype=np.uint8)
    assert rows(check_labels(corner, min_size=0)) == {(1, "touching", (), 2)}
    assert check_labels(np.where(corner > 0, 1, 0).astype(np.uint8), min_size=0).clean
    # Background enclosed by two touching objects is not a hole.
    pair = np.zeros((5, 6), dtype=np.uint8)
    pair[1:4, 1:3], pair[1:4, 3:5] = 1, 2
    pair[2, 2] = pair[2, 3] = 0
    assert rows(check_labels(pair, min_size=0)) == {(1, "touching", (), 2)}
    # Enclosed background that holds another object: that object is reported, no hole.
    ring = np.zeros((7, 7), dtype=np.uint8)
    ring[1:6, 1:6] = 1
    ring[2:5, 2:5] = 0
    ring[3, 3] = 2
    assert rows(check_labels(ring, min_size=2)) == {(2, "small", (), 0)}
    # Background that reaches the image edge is not enclosed.
    cup = np.ones((4, 5), dtype=np.uint8)
    cup[:3, 1:4] = 0
    assert check_labels(cup, min_size=0).clean


def test_injected_errors_3d():
    zz, yy, xx = np.indices((20, 20, 30))
    labels = np.zeros((20, 20, 30), dtype=np.uint16)
    labels[(zz - 9) ** 2 + (yy - 9) ** 2 + (xx - 8) ** 2 <= 36] = 1
    labels[(zz - 9) ** 2 + (yy - 9) ** 2 + (xx - 22) ** 2 <= 36] = 2
    assert check_labels(labels).clean
    with_corner = labels.copy()
    with_corner[2, 2, 2] = 1                # a far voxel of id 1: a second piece, small
    with_corner[9, 9, 14:16] = 1            # a bridge from ball 1 ...
    with_corner[9, 9, 16] = 3               # ... touching a new id 3 at a face
    with_corner[8:11, 8:11, 21:24] = 0      # a cavity in ball 2
    assert rows(check_labels(with_corner, min_size=2)) == {
        (1, "disconnected", (), 0), (3, "small", (), 0), (1, "touching", (), 3),
        (2, "hole", (), 0), (2, "touching", (), 3)}
    tunnel = labels.copy()
    tunnel[9, 9, 16:29] = 0                 # through ball 2: a tunnel, not a cavity
    assert check_labels(tunnel).clean
    diagonal = labels.copy()
    diagonal[3, 3, 2] = 1                   # a voxel apart from ball 1: a second piece
    assert (1, "disconnected", (), 0) in rows(check_labels(diagonal))
    diagonal[4, 4, 3] = 1                   # a chain of voxels that meet at corners joins
    diagonal[5, 5, 4] = 1                   # it to the ball (26-connectivity)
    assert ndi.label(diagonal == 1, np.ones((3, 3, 3)))[1] == 1
    assert (1, "disconnected", (), 0) not in rows(check_labels(diagonal))


def test_stack_checked_plane_by_plane():
    plane = discs((30, 30), [(8, 8), (20, 20)], 5)
    stack = np.stack([plane, np.where(plane == 1, 3, 0), plane]).astype(np.uint16)
    report = check_labels(stack, spatial_dims=2)
    # Ids 1 and 2 reappear in plane 2 (id 1 of plane 0 was painted 3 in plane 1).
    assert rows(report) == {(1, "reused", (2,), 0), (2, "reused", (2,), 0)}
    row = report.problems.iloc[0]
    assert row["bbox"][0] == 2 and row["bbox"][3] == 3 and row["centroid"][0] == 2.0
    assert report.n_objects == 5
    assert set(report.pixels(0)[0]) == {2}
    # The same stack as a volume: id 1 sits in planes 0 and 2 (not adjacent), ids 1 and 3
    # touch across the planes.
    volume = rows(check_labels(stack))
    assert volume == {(1, "disconnected", (), 0), (2, "disconnected", (), 0),
                      (1, "touching", (), 3)}
    # Per plane, errors are found in their plane.
    stack[1, 8, 8] = 0
    assert (3, "hole", (1,), 0) in rows(check_labels(stack, spatial_dims=2))


def test_spacing_makes_min_size_physical():
    labels = np.zeros((10, 10), dtype=np.uint8)
    labels[1:4, 1:5] = 1                     # 12 px
    assert rows(check_labels(labels, min_size=13)) == {(1, "small", (), 0)}
    assert check_labels(labels, min_size=13, spacing=(2.0, 1.0)).clean      # 24
    report = check_labels(labels, min_size=4, spacing=(0.5, 0.5))            # 3
    assert rows(report) == {(1, "small", (), 0)}
    assert report.problems["detail"][0] == "12 px, size 3 < min_size 4"
    assert check_labels(labels, min_size=0).clean


def test_checks_chooses_the_problems(clean_2d):
    labels = clean_2d.copy()
    labels[39:42, 39:42] = 0
    labels[40, 20:33] = 4
    report = check_labels(labels, checks=("hole",))
    assert rows(report) == {(5, "hole", (), 0)}
    assert list(report.summary.index) == ["hole"]
    assert rows(check_labels(labels, checks="touching")) == {(4, "touching", (), 5)}


def test_report_keeps_its_own_copy(clean_2d):
    labels = clean_2d.copy()
    labels[70:72, 70:72] = 9
    report = check_labels(labels)
    labels[:] = 0
    assert set(zip(*report.pixels(0))) == {(70, 70), (70, 71), (71, 70), (71, 71)}


@pytest.mark.parametrize("labels", [np.zeros((0, 5), np.uint8), np.zeros((4, 0), np.uint8),
                                    np.zeros((3, 3), np.uint8), np.ones((1,), np.int32),
                                    np.full((2, 2), 2**40, np.uint64)])
def test_degenerate_inputs(labels):
    report = check_labels(labels, min_size=1)
    assert report.clean and report.problems.empty


def test_large_and_sparse_ids():
    labels = np.zeros((4, 6), dtype=np.uint64)
    labels[0, :2] = 2**62
    labels[3, 4:] = 2**62
    labels[2, 0] = 7
    assert rows(check_labels(labels, min_size=2)) == {(2**62, "disconnected", (), 0),
                                                      (7, "small", (), 0)}


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"labels": np.zeros((3, 3))}, TypeError),
    ({"labels": np.array([[-1, 0]])}, ValueError),
    ({"labels": np.zeros((3, 3), int), "spatial_dims": 3}, ValueError),
    ({"labels": np.zeros((3, 3), int), "spatial_dims": 1.0}, TypeError),
    ({"labels": np.zeros((3, 3), int), "spacing": (1, 2, 3)}, ValueError),
    ({"labels": np.zeros((3, 3), int), "spacing": (1, 0)}, ValueError),
    ({"labels": np.zeros((3, 3), int), "min_size": -1}, ValueError),
    ({"labels": np.zeros((3, 3), int), "checks": ("holes",)}, ValueError),
])
def test_invalid_arguments(kwargs, error):
    with pytest.raises(error):
        check_labels(**kwargs)


# -- real labels -------------------------------------------------------------------------
#: DSB 2018 labels looked at by eye (enlarged, each id coloured, problem pixels marked), and
#: what they hold besides touching pairs. The first four: nuclei of one piece each, no hole,
#: none under 21 px; two of them without touching pairs. The last two: id 3 of d7db36...
#: leaves out the dark centre of a ring-like nucleus (107 px); id 12 of ef3ef1... is two
#: pieces where a nucleus crosses the bottom edge of the image twice.
DSB_SAMPLES = {
    "f487cc82271cf84b": (False, set()), "442c4eb0185698fe": (False, set()),
    "9586e48a9a4353f1": (True, set()), "0ea221716cf13710": (True, set()),
    "d7db360fabfce982": (None, {(3, "hole", (), 0)}),
    "ef3ef194e5657fda": (None, {(12, "disconnected", (), 0)}),
}


@pytest.mark.parametrize("sample", DSB_SAMPLES)
def test_real_labels(sample):
    labels = tifffile.imread(require_dsb_folder("labels") / f"{sample}.tif")
    report = check_labels(labels)
    touching, others = DSB_SAMPLES[sample]
    assert {r for r in rows(report) if r[1] != "touching"} == others
    if touching is not None:
        assert bool(report.summary["touching"]) == touching
    if report.n_objects < 150:  # the reference takes a second per hundred nuclei
        assert rows(report) == set(reference(labels))
