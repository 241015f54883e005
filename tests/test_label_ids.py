"""label_ids: the one rule for renumbering ids 1..N and for the dtype of labels, pinned at
its home and at every public entry point that makes or changes labels."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unet_weights import evaluate, relabel, split_disconnected, to_instances
from napari_unet_weights.labels.checks import check_labels
from napari_unet_weights.labels.ids import (
    IdOverflowError,
    label_dtype,
    new_labels_dtype,
    renumber_lookup,
    sequential_ids,
)
from napari_unet_weights.unet.chunked.stitch import BlockGrid, summarize_block
from reference import split_id


@pytest.mark.parametrize(("dtype", "top", "expected"), [
    (np.uint8, 255, np.uint8), (np.uint8, 256, np.uint16),
    (np.uint16, 65535, np.uint16), (np.uint16, 65536, np.uint32),
    (np.uint32, 2**32 - 1, np.uint32), (np.uint32, 2**32, np.uint64),
    (np.int16, 32768, np.int32), (np.int32, 2**31, np.int64),
])
def test_label_dtype_keeps_the_dtype_while_the_top_id_fits(dtype, top, expected):
    assert label_dtype(dtype, top) == np.dtype(expected)


def test_label_dtype_refuses_what_it_may_not_widen():
    with pytest.raises(IdOverflowError, match="more than uint16 holds"):
        label_dtype(np.uint16, 65536, widen=False)
    with pytest.raises(IdOverflowError, match="more than int64 holds"):
        label_dtype(np.int64, 2**63)


@pytest.mark.parametrize(("n_objects", "expected"), [
    (0, np.uint16), (65534, np.uint16), (65535, np.uint32),
    (2**32 - 2, np.uint32), (2**32 - 1, np.uint64),
])
def test_new_labels_keep_one_spare_id(n_objects, expected):
    assert new_labels_dtype(n_objects) == np.dtype(expected)


def test_renumber_lookup():
    present = np.array([True, False, True, True, False, True])
    np.testing.assert_array_equal(renumber_lookup(present, np.uint8), [0, 0, 1, 2, 0, 3])
    assert renumber_lookup(present, np.uint8).dtype == np.uint8


@pytest.mark.parametrize("scale", [1, 10**9])  # dense ids (a lookup table), sparse (unique)
@pytest.mark.parametrize("with_background", [True, False])
def test_sequential_ids_against_np_unique(scale, with_background):
    rng = np.random.default_rng(0)
    values = rng.integers(0 if with_background else 1, 50, 1000).astype(np.int64) * scale
    ids, index = sequential_ids(values)
    expected = np.unique(np.concatenate([[0], values]))
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_array_equal(index, np.searchsorted(expected, values))
    assert ids.dtype == values.dtype
    ids, index = sequential_ids(np.zeros(0, np.uint16))
    assert ids.tolist() == [0] and index.size == 0


# -- every entry point follows the rule ---------------------------------------------------
def test_fixes_follow_label_dtype():
    assert relabel(split_id(65535, np.uint16)).labels.dtype == np.uint16  # ids 1..3
    assert split_disconnected(split_id(65535, np.uint16)).labels.dtype == np.uint32  # 65536
    assert split_disconnected(split_id(65534, np.uint16)).labels.dtype == np.uint16  # 65535
    assert split_disconnected(split_id(255, np.uint8)).labels.dtype == np.uint16


def dots(n: int) -> np.ndarray:
    """2-class probabilities with ``n`` one-pixel objects, every second pixel of a row."""
    probabilities = np.zeros((2, 2 * n, 2), np.float32)
    probabilities[..., 0] = 1
    probabilities[0, ::2] = (0, 1)
    return probabilities


@pytest.mark.parametrize(("n_objects", "expected"), [(65534, np.uint16), (65535, np.uint32)])
def test_segmentation_follows_new_labels_dtype(n_objects, expected):
    options = {"min_size": 0, "fill_holes": False, "expand": 0}
    labels = to_instances(dots(n_objects), **options)
    assert labels.dtype == np.dtype(expected)
    np.testing.assert_array_equal(labels[0, ::2], np.arange(1, n_objects + 1))
    first, second = dots(n_objects), dots(n_objects)
    first[0, n_objects:], second[0, :n_objects] = (1, 0), (1, 0)  # the two halves
    stack = to_instances(np.stack([first, second]), **options)
    assert stack.dtype == np.dtype(expected) and int(stack.max()) == n_objects


def test_a_blocks_core_is_renumbered_1_to_n():
    grid = BlockGrid((), ((0, 1), (0, 8)))
    labels = np.array([[0, 70000, 70000, 5, 0, 9, 9, 5]], np.uint32)
    block = summarize_block(labels, (0, 0), grid, (0, 0), strip_width=0)
    np.testing.assert_array_equal(block.core, [[0, 3, 3, 1, 0, 2, 2, 1]])
    assert block.count == 3


def test_checks_and_metrics_do_not_depend_on_the_ids_values():
    plane = np.array([[1, 1, 0, 2], [0, 0, 0, 2], [3, 0, 0, 0], [0, 0, 3, 0]], np.int64)
    sparse = plane * 10**12
    report = check_labels(sparse, min_size=0)
    assert report.problems[["label", "problem"]].values.tolist() == [[3 * 10**12,
                                                                       "disconnected"]]
    assert evaluate(plane, sparse).map == evaluate(plane, plane).map == 1.0
