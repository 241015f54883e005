"""Probabilities → instance labels on synthetic probability maps (no TensorFlow)."""

import numpy as np
import pytest
from skimage.draw import disk

from napari_unet_weights.metrics.matching import evaluate
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


def contact_pixels(labels: np.ndarray, of: int, touching: int) -> np.ndarray:
    """The pixels of object ``of`` with a 4-neighbour in object ``touching``."""
    padded = np.pad(labels, 1)
    near = np.zeros(labels.shape, bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        near |= padded[dy:dy + labels.shape[0], dx:dx + labels.shape[1]] == touching
    return (labels == of) & near


def test_two_class_gap_separates_touching_discs():
    """Without expansion the objects are the discs less the gap: disc 1's contact pixels."""
    labels = touching_discs()
    target, _ = two_class_target(labels)
    result = to_instances(one_hot(target, 2), expand=0)
    expected = np.where(contact_pixels(labels, 1, 2), 0, labels).astype(np.uint16)
    assert 5 < contact_pixels(labels, 1, 2).sum() < 20
    np.testing.assert_array_equal(result, expected)


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
    assert evaluate(labels, result).map == 1.0  # boundary pixels are filled by watershed


def test_three_class_soft_interior_with_uncertain_boundary():
    labels = touching_discs()
    target = three_class_target(labels)
    probabilities = one_hot(target, 3)
    contact = (target == 2) & (np.abs(np.arange(60) - 29.5) < 2)[None, :]
    probabilities[contact] = (0.1, 0.45, 0.45)  # the network hesitates at the contact
    result = to_instances(probabilities, seed_threshold=0.7)
    assert evaluate(labels, result).map == 1.0  # still two whole discs


def test_min_size_and_fill_holes():
    probabilities = np.zeros((30, 30, 2), np.float32)
    probabilities[..., 0] = 1
    probabilities[2:12, 2:12] = (0, 1)
    probabilities[6:8, 6:8] = (1, 0)     # a hole
    probabilities[20:22, 20:22] = (0, 1)  # 4 pixels: too small
    square, speck = np.zeros((30, 30), np.uint16), np.zeros((30, 30), np.uint16)
    square[2:12, 2:12] = 1
    speck[20:22, 20:22] = 1
    holey = np.where(np.pad(np.ones((2, 2), bool), ((6, 22), (6, 22))), 0, square)
    np.testing.assert_array_equal(to_instances(probabilities, min_size=10, expand=0), square)
    np.testing.assert_array_equal(
        to_instances(probabilities, min_size=10, fill_holes=False, expand=0), holey)
    np.testing.assert_array_equal(to_instances(probabilities, min_size=4, expand=0),
                                  square + 2 * speck)  # 4 pixels are enough for 4
    np.testing.assert_array_equal(to_instances(probabilities, min_size=5, expand=0), square)


def squares(sizes, gap: int = 2) -> tuple[np.ndarray, list[tuple[slice, slice]]]:
    """2-class probabilities of squares of the given sides in a row, and their boxes."""
    width = sum(sizes) + gap * (len(sizes) + 1)
    probabilities = np.zeros((max(sizes) + 2 * gap, width, 2), np.float32)
    probabilities[..., 0] = 1
    boxes, x = [], gap
    for side in sizes:
        boxes.append((slice(gap, gap + side), slice(x, x + side)))
        probabilities[boxes[-1]] = (0, 1)
        x += side + gap
    return probabilities, boxes


@pytest.mark.parametrize("min_size", [0, 1, 2, 9, 10, 26])
def test_small_objects_go_and_the_rest_are_numbered_1_to_n_in_raster_order(min_size):
    """Squares of 1..36 px shuffled: those of >= min_size px stay, numbered left to right."""
    sides = [3, 1, 6, 2, 5, 4, 1, 3]
    probabilities, boxes = squares(sides)
    expected = np.zeros(probabilities.shape[:2], np.uint16)
    kept = [box for side, box in zip(sides, boxes) if side * side >= min_size]
    for number, box in enumerate(kept, start=1):
        expected[box] = number
    result = to_instances(probabilities, min_size=min_size, expand=0)
    assert result.dtype == np.uint16
    np.testing.assert_array_equal(result, expected)


def dots(n_rows: int, n_cols: int) -> np.ndarray:
    """2-class probabilities with a one-pixel object at every (2i, 2j): n_rows · n_cols."""
    probabilities = np.zeros((2 * n_rows, 2 * n_cols, 2), np.float32)
    probabilities[..., 0] = 1
    probabilities[::2, ::2] = (0, 1)
    return probabilities


def test_labels_become_uint32_from_65535_objects_on():
    """The documented rule: uint16 up to 65,534 objects, uint32 from 65,535 on."""
    options = {"min_size": 0, "fill_holes": False, "expand": 0}
    probabilities = dots(256, 256)
    probabilities[-2:, -2:] = (1, 0)  # the last of 65,536 dots gone: 65,535
    many = to_instances(probabilities, **options)
    assert many.dtype == np.uint32
    expected = np.arange(1, 65537).reshape(256, 256)
    expected[-1, -1] = 0
    np.testing.assert_array_equal(many[::2, ::2], expected)
    assert not many[1::2].any() and not many[:, 1::2].any()
    probabilities[-2:, -4:] = (1, 0)  # one more gone: 65,534
    fewer = to_instances(probabilities, **options)
    assert fewer.dtype == np.uint16 and fewer.max() == 65534
    stack = to_instances(np.stack([dots(200, 200)] * 2), **options)  # 2 × 40,000
    assert stack.dtype == np.uint32
    np.testing.assert_array_equal(stack[0, ::2, ::2], np.arange(1, 40001).reshape(200, 200))
    np.testing.assert_array_equal(stack[1, ::2, ::2], stack[0, ::2, ::2] + 40000)


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
