"""Tests of the fixes: exact arrays on small inputs, a re-check of each fix on random
labels (the fixed array has no problem of that kind), and the edit they describe."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unet_weights.labels.checks import check_labels
from napari_unet_weights.labels.fixes import (
    IdOverflowError,
    LabelFix,
    cut_touching,
    fill_holes,
    fix_labels,
    fix_problems,
    relabel,
    remove_small,
    split_disconnected,
)
from napari_unet_weights.unet.targets import two_class_target
from reference import discs, split_id


def grid(text: str) -> np.ndarray:
    """Labels from rows of digits ('.' = 0)."""
    return np.array([[0 if c == "." else int(c) for c in line.split()]
                     for line in text.strip().splitlines()], dtype=np.uint8)


def random_labels(rng, shape, n_ids=5):
    small = tuple(-(-n // 2) for n in shape)
    labels = np.where(rng.random(small) < rng.random(), 0, rng.integers(1, n_ids + 1, small))
    for axis in range(len(shape)):
        labels = np.repeat(labels, 2, axis=axis)
    labels = labels[tuple(slice(0, n) for n in shape)]
    noise = rng.random(shape) < 0.1
    return np.where(noise, rng.integers(0, n_ids + 1, shape), labels).astype(np.uint16)


def assert_edit(fix: LabelFix, old: np.ndarray) -> None:
    """``fix`` describes the change from ``old``: region, indices and values."""
    changed = fix.labels != old
    assert fix.changed == int(changed.sum())
    if fix.region is None:
        assert not changed.any()
        return
    outside = changed.copy()
    outside[fix.region] = False
    assert not outside.any()
    for axis, s in enumerate(fix.region):  # tight: each face of the box holds a change
        assert np.take(changed, s.start, axis=axis).any()
        assert np.take(changed, s.stop - 1, axis=axis).any()
    edited = old.astype(fix.labels.dtype)
    edited[fix.indices] = fix.values
    np.testing.assert_array_equal(edited, fix.labels)


# -- exact results ---------------------------------------------------------------------
def test_split_disconnected_exact():
    old = grid("""
        1 1 . . 1
        1 . . . .
        . . 2 . 1
        1 . 2 . .
    """)
    fix = split_disconnected(old)
    np.testing.assert_array_equal(fix.labels, grid("""
        1 1 . . 3
        1 . . . .
        . . 2 . 4
        5 . 2 . .
    """))
    assert fix.region == (slice(0, 4), slice(0, 5))
    assert_edit(fix, old)
    assert check_labels(fix.labels, checks="disconnected").clean
    one = split_disconnected(old, label=2)
    assert one.region is None and one.changed == 0
    first_small = grid("""
        . . . . 1
        1 1 . . .
        1 1 . 2 .
    """)
    np.testing.assert_array_equal(split_disconnected(first_small).labels, grid("""
        . . . . 3
        1 1 . . .
        1 1 . 2 .
    """))


def test_split_ties_and_dtype_widening():
    old = np.zeros((3, 260), dtype=np.uint8)
    old[0, ::2] = 255                      # 130 pieces of one pixel: the first keeps 255
    fix = split_disconnected(old)
    assert fix.labels.dtype == np.uint16
    assert fix.labels[0, 0] == 255
    assert sorted(np.unique(fix.labels[0, 2::2])) == list(range(256, 256 + 129))
    assert_edit(fix, old)


def test_the_largest_int64_id_is_never_rounded_through_float():
    old = split_id(np.iinfo(np.int64).max, np.int64)
    with pytest.raises(IdOverflowError, match="more than int64 holds: renumber the labels"):
        split_disconnected(old)
    with pytest.raises(ValueError, match="renumber"):
        fix_labels(old, min_size=0)
    fixed = fix_labels(old, min_size=0, sequential=True).labels  # 1..N first: room for ids
    assert fixed.dtype == np.int64
    np.testing.assert_array_equal(fixed, relabel(split_disconnected(
        relabel(old).labels).labels).labels)
    assert len(np.unique(fixed)) == 4 and check_labels(fixed, min_size=0).clean


def test_fixed_labels_keep_the_input_dtype_when_the_ids_fit():
    old = split_id(65535, np.uint16)
    assert split_disconnected(old).labels.dtype == np.uint32  # 65536 needs it
    fixed = fix_labels(old, min_size=0, sequential=True).labels
    assert fixed.dtype == np.uint16
    np.testing.assert_array_equal(np.unique(fixed), [0, 1, 2, 3])
    assert relabel(old.astype(np.uint32) * 2).labels.dtype == np.uint32


def test_remove_small_exact_and_merge():
    old = grid("""
        1 1 1 . .
        1 1 2 3 .
        1 1 . . .
        . . . . 4
    """)
    removed = remove_small(old, min_size=3)
    np.testing.assert_array_equal(removed.labels, np.where(np.isin(old, [2, 3, 4]), 0, old))
    merged = remove_small(old, min_size=3, merge=True)
    # 2 (1 px) touches 1 on five pixels and 3 on one: it joins 1; 3 then touches only 1;
    # 4 touches nothing and goes.
    np.testing.assert_array_equal(merged.labels, grid("""
        1 1 1 . .
        1 1 1 1 .
        1 1 . . .
        . . . . .
    """))
    assert_edit(merged, old)
    only = remove_small(old, min_size=3, label=4)
    np.testing.assert_array_equal(only.labels, np.where(old == 4, 0, old))


def test_merge_ties_go_to_the_smaller_id_and_small_pairs_travel_together():
    old = grid("""
        5 5 5 . .
        . 9 . . .
        7 7 7 . .
    """)
    fix = remove_small(old, min_size=2, merge=True)
    assert fix.labels[1, 1] == 5          # three pixels of 5 and of 7 around it
    pair = grid("""
        1 2 2 . 3 3 3 3
    """)
    # 1 (1 px) joins 2; 2 (3 px) is still below 4 and has no other neighbour: it goes.
    np.testing.assert_array_equal(remove_small(pair, min_size=4, merge=True).labels,
                                  grid(". . . . 3 3 3 3"))


def test_fill_holes_exact():
    old = grid("""
        1 1 1 1 . .
        1 . . 1 . .
        1 1 1 1 . .
        2 2 2 2 2 2
        2 . 2 . . 2
        2 2 2 2 2 2
        . 2 . . . .
    """)
    fix = fill_holes(old)
    expected = old.copy()
    expected[1, 1:3] = 1
    expected[4, 1] = 2
    expected[4, 3:5] = 2
    np.testing.assert_array_equal(fix.labels, expected)
    assert check_labels(fix.labels, checks="hole").clean
    only = fill_holes(old, label=2)
    assert only.labels[1, 1] == 0 and only.labels[4, 1] == 2


def test_cut_touching_is_the_training_targets_rule():
    old = discs((40, 60), [(20, 15), (20, 29), (20, 43)], 8)
    fix = cut_touching(old)
    np.testing.assert_array_equal(fix.labels, two_class_target(old)[1])
    assert check_labels(fix.labels, checks="touching").clean
    assert_edit(fix, old)
    # One pair: only the smaller id of that pair gives up pixels.
    pair = cut_touching(old, 2, 3)
    lost = (old != pair.labels)
    assert set(np.unique(old[lost])) == {2}
    assert (pair.labels == 1).sum() == (old == 1).sum()
    assert check_labels(pair.labels, checks="touching").problems[["label", "other"]] \
        .values.tolist() == [[1, 2]]


def test_cut_touching_gives_the_smaller_ids_contact_pixels_to_the_gap():
    """The training targets' rule, drawn by hand: of each touching pair (8-connected,
    diagonals too), the smaller id loses every pixel next to the larger one."""
    old = grid("""
        1 1 2 2 .
        1 1 2 2 .
        . 3 3 . .
        . 3 3 . 4
        . . . 4 4
    """)
    np.testing.assert_array_equal(cut_touching(old).labels, grid("""
        1 . 2 2 .
        . . . . .
        . 3 3 . .
        . 3 . . 4
        . . . 4 4
    """))
    stack = np.stack([old, np.rot90(old)])
    per_plane = cut_touching(stack, spatial_dims=2).labels
    np.testing.assert_array_equal(per_plane[1], cut_touching(np.rot90(old)).labels)


def test_relabel_sequential_and_per_plane():
    old = grid("""
        7 7 . 40
        . 3 3 .
    """)
    np.testing.assert_array_equal(relabel(old).labels, grid("""
        2 2 . 3
        . 1 1 .
    """))
    stack = np.stack([old, old])
    fixed = relabel(stack, spatial_dims=2).labels
    np.testing.assert_array_equal(fixed[1], np.where(old > 0, relabel(old).labels + 3, 0))
    assert check_labels(fixed, spatial_dims=2, checks="reused").clean
    full = np.ones((2, 2), dtype=np.uint8)
    np.testing.assert_array_equal(relabel(full * 9).labels, full)
    big = np.arange(300, dtype=np.uint16).reshape(1, 300) * 3
    assert relabel(big.astype(np.uint16)).labels.max() == 299


def test_reused_rows_get_new_ids():
    plane = grid("""
        1 1 . 2
    """)
    stack = np.stack([plane, plane, plane])
    report = check_labels(stack, spatial_dims=2, min_size=0)
    assert len(report) == 4
    fix = fix_problems(stack, report.problems, spatial_dims=2, min_size=0)
    assert check_labels(fix.labels, spatial_dims=2, min_size=0).clean
    np.testing.assert_array_equal(fix.labels[0], plane)
    one = fix_problems(stack, report.problems.iloc[0], spatial_dims=2, min_size=0)
    assert_edit(one, stack)
    assert one.labels[1, 0, 0] == 3 and one.labels[2, 0, 0] == 1


# -- one row, one kind, everything ---------------------------------------------------------
def test_fix_one_row_changes_only_that_object():
    old = discs((40, 60), [(20, 15), (20, 29), (20, 43)], 8)
    old[19:22, 14:17] = 0                       # hole in 1
    old[19:22, 42:45] = 0                       # hole in 3
    report = check_labels(old)
    holes = report.problems.query("problem == 'hole'")
    one = fix_problems(old, holes.iloc[[0]])
    assert one.region == (slice(19, 22), slice(14, 17))
    all_holes = fix_problems(old, holes)
    np.testing.assert_array_equal(all_holes.labels, fill_holes(old).labels)
    touching = fix_problems(old, report.problems.query("problem == 'touching'"))
    np.testing.assert_array_equal(touching.labels, cut_touching(old).labels)
    with pytest.raises(ValueError, match="unknown problems"):
        fix_problems(old, holes.assign(problem="holes"))


FIXES = {
    "disconnected": lambda labels: split_disconnected(labels),
    "small": lambda labels: remove_small(labels, 4),
    "small merged": lambda labels: remove_small(labels, 4, merge=True),
    "hole": lambda labels: fill_holes(labels),
    "touching": lambda labels: cut_touching(labels),
}


@pytest.mark.parametrize("name", FIXES)
def test_each_fix_leaves_none_of_its_problem(name):
    rng = np.random.default_rng(len(name))
    kind = name.split()[0]
    for _ in range(25):
        old = random_labels(rng, tuple(rng.integers(3, 16, 2)))
        before = old.copy()
        fix = FIXES[name](old)
        np.testing.assert_array_equal(old, before)          # the input is left alone
        assert check_labels(fix.labels, checks=kind, min_size=4).clean
        assert_edit(fix, old)


@pytest.mark.parametrize(("shape", "spatial_dims"), [((12, 14), None), ((6, 7, 8), None),
                                                     ((3, 10, 12), 2)])
def test_fix_labels_gives_clean_labels(shape, spatial_dims):
    rng = np.random.default_rng(sum(shape))
    for _ in range(10):
        old = random_labels(rng, shape)
        fix = fix_labels(old, min_size=3, spatial_dims=spatial_dims, sequential=True)
        report = check_labels(fix.labels, min_size=3, spatial_dims=spatial_dims)
        assert report.clean, report.problems
        assert_edit(fix, old)
        ids = np.unique(fix.labels)
        np.testing.assert_array_equal(ids[ids > 0], np.arange(1, len(ids[ids > 0]) + 1))


def test_fix_labels_only_fixes_the_checks_asked():
    old = discs((40, 60), [(20, 15), (20, 29)], 8)
    old[19:22, 14:17] = 0
    fix = fix_labels(old, checks=("hole",))
    assert check_labels(fix.labels, checks="touching").summary["touching"] == 1
    assert check_labels(fix.labels, checks="hole").clean
