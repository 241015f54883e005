"""Training targets and weights of the U-Net (numpy only, no TensorFlow)."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_unet_weights.unet.targets import (
    separate_touching,
    targets,
    three_class_target,
    training_weights,
    two_class_target,
)
from reference import brute_force_weight_map

#: The weight map is exact to 1e-3 (it drops border terms below weights.DEFAULT_TOLERANCE).
ATOL = 1e-3


def touching_squares():
    labels = np.zeros((12, 14), dtype=np.uint16)
    labels[2:10, 2:7] = 1
    labels[2:10, 7:12] = 2  # shares the edge x = 6 | 7 with object 1
    return labels


def separated_squares():
    """touching_squares() with object 1's contact column cut (written out by hand)."""
    labels = np.zeros((12, 14), dtype=np.uint16)
    labels[2:10, 2:6] = 1
    labels[2:10, 7:12] = 2
    return labels


def test_two_class_gap_is_one_pixel_on_the_smaller_id():
    target, separated = two_class_target(touching_squares())
    assert target.dtype == np.uint8
    assert set(np.unique(target)) == {0, 1}
    np.testing.assert_array_equal(target[2:10, 6], 0)   # object 1 gave up its column
    np.testing.assert_array_equal(target[2:10, 7], 1)   # object 2 kept its shape
    np.testing.assert_array_equal(target[2:10, 2:6], 1)
    assert (separated == 2).sum() == (touching_squares() == 2).sum()
    assert (separated == 1).sum() == (touching_squares() == 1).sum() - 8


def test_gap_separates_even_diagonally():
    labels = np.zeros((6, 6), dtype=np.int32)
    labels[1:3, 1:3] = 5
    labels[3:5, 3:5] = 2  # touches object 5 only at a corner
    separated = separate_touching(labels)
    assert separated[3, 3] == 0 and separated[2, 2] == 5  # the smaller id gives up
    assert (separated == 5).sum() == 4 and (separated == 2).sum() == 3
    # no pixel has a neighbour of another object in the 8-neighbourhood
    grown = ndi.grey_dilation(separated, size=3)
    assert not np.any((separated > 0) & (grown != separated) & (grown > 0))
    assert ndi.label(separated > 0, structure=np.ones((3, 3)))[1] == 2


def test_gap_separates_many_random_objects():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 6, (40, 40)).repeat(3, 0).repeat(3, 1)
    separated = separate_touching(labels)
    for index in range(1, 6):
        others = (separated > 0) & (separated != index)
        near = ndi.binary_dilation(separated == index, structure=np.ones((3, 3)))
        assert not np.any(near & others)


def test_separated_labels_keep_isolated_objects_and_cut_the_smaller_id():
    labels = np.zeros((10, 10), dtype=np.uint8)
    labels[1:4, 1:4] = 3
    labels[6:9, 6:9] = 1
    np.testing.assert_array_equal(separate_touching(labels), labels)
    np.testing.assert_array_equal(separate_touching(touching_squares()), separated_squares())


def test_three_class_target_marks_inner_boundaries():
    labels = touching_squares()
    target = three_class_target(labels)
    assert target.dtype == np.uint8
    assert target[0, 0] == 0
    assert target[5, 4] == 1  # interior of object 1
    assert target[5, 6] == 2 and target[5, 7] == 2  # both sides of the contact
    assert target[2, 4] == 2  # outer boundary
    assert np.all(target[labels == 0] == 0)
    assert np.all(target[labels > 0] > 0)


def test_training_weights_two_and_three_classes():
    labels = touching_squares()
    w2 = training_weights(labels, 2, w0=10, sigma=5)
    w3 = training_weights(labels, 3, w0=10, sigma=5)
    assert w2.dtype == np.float32
    expected = brute_force_weight_map(separated_squares(), 10, 5)  # of the separated labels
    np.testing.assert_allclose(w2, expected, atol=ATOL)
    np.testing.assert_allclose(w3, expected, atol=ATOL)  # the same map for both target types
    assert w2[5, 6] > 5  # the gap between the touching objects weighs most
    assert w2[5, 6] > w2[5, 0]
    ones = training_weights(labels, 3, use_weights=False)
    np.testing.assert_array_equal(ones, np.ones(labels.shape, np.float32))


def test_without_class_weights_only_the_border_term_weighs():
    labels = touching_squares()
    weights = training_weights(labels, 3, w0=10, sigma=5, class_weights="none")
    expected = brute_force_weight_map(separated_squares(), 10, 5, class_weights="none")
    np.testing.assert_allclose(weights, expected, atol=ATOL)
    assert weights[5, 4] == 1.0  # inside an object: no class term, no border term
    balanced = training_weights(labels, 3, w0=10, sigma=5)
    assert balanced[5, 4] != pytest.approx(1.0)  # w_c differs from 1 inside objects
    _, from_targets = targets(labels, 3, w0=10, sigma=5, class_weights="none")
    np.testing.assert_array_equal(from_targets, weights)


def test_targets_gives_the_target_of_its_class_count_and_the_weights():
    labels = touching_squares()
    target, weights = targets(labels, 2, w0=4, sigma=2)
    np.testing.assert_array_equal(target, (separated_squares() > 0).astype(np.uint8))
    np.testing.assert_allclose(weights, brute_force_weight_map(separated_squares(), 4, 2),
                               atol=ATOL)
    target, weights = targets(labels, 3, use_weights=False)
    expected = (labels > 0).astype(np.uint8) * 2  # the squares are 8 x 5: all boundary ...
    expected[3:9, 3:6] = expected[3:9, 8:11] = 1  # ... but their 6 x 3 interiors
    np.testing.assert_array_equal(target, expected)
    np.testing.assert_array_equal(weights, 1.0)
    with pytest.raises(ValueError, match="2 or 3"):
        targets(labels, 4)
    with pytest.raises(TypeError, match="integers"):
        two_class_target(labels.astype(float))


def test_ids_above_65535_keep_their_order():
    """A narrowing to uint16 would turn 65537 into 1 and cut the other object instead."""
    labels = touching_squares().astype(np.uint32)
    labels[labels == 1] = 65537
    labels[labels == 2] = 65535
    separated = separate_touching(labels)
    assert separated.dtype == np.uint32
    expected = np.where(labels == 65537, 65537, 0).astype(np.uint32)
    expected[2:10, 8:12] = 65535  # 65535 < 65537 gave up its contact column x = 7
    np.testing.assert_array_equal(separated, expected)
