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
from napari_unet_weights.weights import weight_map


def touching_squares():
    labels = np.zeros((12, 14), dtype=np.uint16)
    labels[2:10, 2:7] = 1
    labels[2:10, 7:12] = 2  # shares the edge x = 6 | 7 with object 1
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


def test_separated_labels_are_deterministic_and_keep_isolated_objects():
    labels = np.zeros((10, 10), dtype=np.uint8)
    labels[1:4, 1:4] = 3
    labels[6:9, 6:9] = 1
    np.testing.assert_array_equal(separate_touching(labels), labels)
    np.testing.assert_array_equal(separate_touching(touching_squares()),
                                  separate_touching(touching_squares()))


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
    assert w2.dtype == np.float32 and w2.shape == labels.shape
    expected = weight_map(separate_touching(labels), 10, 5)
    np.testing.assert_allclose(w2, expected)
    np.testing.assert_allclose(w3, expected)  # the same map for both target types
    assert w2[5, 6] > 5  # the gap between the touching objects weighs most
    assert w2[5, 6] > w2[5, 0]
    ones = training_weights(labels, 3, use_weights=False)
    np.testing.assert_array_equal(ones, np.ones(labels.shape, np.float32))


def test_targets_helper_and_errors():
    labels = touching_squares()
    target, weights = targets(labels, 2)
    np.testing.assert_array_equal(target, two_class_target(labels)[0])
    assert weights.shape == labels.shape
    with pytest.raises(ValueError, match="2 or 3"):
        targets(labels, 4)
    with pytest.raises(TypeError, match="integers"):
        two_class_target(labels.astype(float))
