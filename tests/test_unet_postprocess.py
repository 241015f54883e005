"""Probabilities → instance labels on synthetic probability maps (no TensorFlow)."""

import numpy as np
import pytest
from skimage.draw import disk

from napari_unet_weights.metrics import evaluate
from napari_unet_weights.unet.postprocess import to_instances
from napari_unet_weights.unet.targets import three_class_target, two_class_target


def touching_discs(shape=(40, 60)):
    labels = np.zeros(shape, dtype=np.uint16)
    labels[disk((20, 20), 10, shape=shape)] = 1
    labels[disk((20, 39), 10, shape=shape)] = 2  # overlaps: the second disc wins the overlap
    return labels


def one_hot(target: np.ndarray, n_classes: int, confidence: float = 0.9) -> np.ndarray:
    rest = (1 - confidence) / (n_classes - 1)
    probabilities = np.full((*target.shape, n_classes), rest, np.float32)
    np.put_along_axis(probabilities, target[..., None].astype(int), confidence, axis=-1)
    return probabilities


def test_two_class_gap_separates_touching_discs():
    labels = touching_discs()
    target, _ = two_class_target(labels)
    result = to_instances(one_hot(target, 2), expand=0)
    assert result.max() == 2
    assert result.dtype == np.uint16
    assert result.shape == labels.shape


def test_two_class_expansion_gives_the_gap_back_but_not_the_outline():
    labels = touching_discs()
    target, _ = two_class_target(labels)
    probabilities = one_hot(target, 2)
    plain = to_instances(probabilities, expand=0)
    expanded = to_instances(probabilities, expand=1)
    assert expanded.max() == 2
    gained = (expanded > 0) & (plain == 0)
    assert gained.any()
    # gap pixels (a few at the waist between the discs lie outside both)
    assert np.mean(labels[gained] > 0) > 0.6
    assert not np.any(gained[:, :25] | gained[:, 35:])  # the outer outline is untouched
    gt_iou = [evaluate(labels, result).per_object["best_iou"].iloc[:2].min()
              for result in (plain, expanded)]
    assert gt_iou[1] > gt_iou[0]


def test_three_class_watershed_separates_touching_discs():
    labels = touching_discs()
    result = to_instances(one_hot(three_class_target(labels), 3))
    assert result.max() == 2
    assert evaluate(labels, result).map == 1.0  # boundary pixels are filled by watershed


def test_three_class_soft_interior_with_uncertain_boundary():
    labels = touching_discs()
    target = three_class_target(labels)
    probabilities = one_hot(target, 3)
    contact = (target == 2) & (np.abs(np.arange(60) - 29.5) < 2)[None, :]
    probabilities[contact] = (0.1, 0.45, 0.45)  # the network hesitates at the contact
    result = to_instances(probabilities, seed_threshold=0.7)
    assert result.max() == 2


def test_min_size_and_fill_holes():
    probabilities = np.zeros((30, 30, 2), np.float32)
    probabilities[..., 0] = 1
    probabilities[2:12, 2:12] = (0, 1)
    probabilities[6:8, 6:8] = (1, 0)     # a hole
    probabilities[20:22, 20:22] = (0, 1)  # 4 pixels: too small
    result = to_instances(probabilities, min_size=10, expand=0)
    assert result.max() == 1
    assert result[7, 7] == 1
    assert to_instances(probabilities, min_size=10, fill_holes=False, expand=0)[7, 7] == 0
    assert to_instances(probabilities, min_size=1, expand=0).max() == 2


def test_empty_and_bad_inputs():
    empty = np.zeros((8, 8, 3), np.float32)
    empty[..., 0] = 1
    assert to_instances(empty).max() == 0
    with pytest.raises(ValueError, match="n_classes=2"):
        to_instances(empty, n_classes=2)
    with pytest.raises(ValueError, match=r"\(H, W, n_classes\)"):
        to_instances(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="2 or 3"):
        to_instances(np.zeros((8, 8, 4)))


@pytest.mark.parametrize(("name", "value", "error", "message"), [
    ("threshold", 1.5, ValueError, r"threshold must be in \[0, 1\], got 1\.5"),
    ("threshold", -0.1, ValueError, r"threshold must be in \[0, 1\]"),
    ("seed_threshold", float("nan"), ValueError, r"seed_threshold must be in \[0, 1\]"),
    ("threshold", "0.5", TypeError, r"threshold must be a number in \[0, 1\], got '0\.5'"),
    ("threshold", True, TypeError, "threshold must be a number"),
    ("min_size", -1, ValueError, "min_size must be a whole number of pixels >= 0, got -1"),
    ("min_size", 2.5, ValueError, "min_size must be a whole number"),
    ("expand", -2, ValueError, "expand must be a whole number of pixels >= 0"),
    ("expand", None, TypeError, "expand must be a whole number of pixels, got None"),
    ("fill_holes", "no", TypeError, "fill_holes must be True or False, got 'no'"),
])
def test_bad_parameters_are_named(name, value, error, message):
    probabilities = np.zeros((8, 8, 3), np.float32)
    probabilities[..., 0] = 1
    with pytest.raises(error, match=message):
        to_instances(probabilities, **{name: value})


def test_whole_numbers_and_numpy_values_are_accepted():
    probabilities = one_hot(three_class_target(touching_discs()), 3)
    expected = to_instances(probabilities, threshold=0.5, min_size=10)
    same = to_instances(probabilities, threshold=np.float32(0.5), min_size=10.0,
                        fill_holes=np.bool_(True))
    np.testing.assert_array_equal(same, expected)
