"""The weight-map engine against a brute-force reference and the seed blog's own function."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from skimage.draw import disk

from napari_unet_weights import WeightMapCache, border_radius, class_weight_values, weight_map
from reference import brute_force_weight_map, labels_to_masks, seed_make_weight_map

ATOL = 1e-3  # the exactness requirement
PARAMETERS = [(10.0, 5.0), (100.0, 25.0), (3.0, 1.5), (50.0, 10.0)]


def reference_weight_map(labels, *args, class_weights="balanced", **kwargs):
    """The brute-force map, with the documented single-class rule.

    With only one class present (no object, or no background), ``"balanced"`` and
    ``"inverse"`` give every pixel the class weight 1, as the pair ``(1, 1)`` does.
    """
    labels = np.asarray(labels)
    single_class = not labels.any() or labels.all()
    if single_class and class_weights in ("balanced", "inverse"):
        class_weights = (1.0, 1.0)
    return brute_force_weight_map(labels, *args, class_weights=class_weights, **kwargs)


def random_labels(shape, n_objects, seed=0, radius=(2, 8)):
    """Random overlapping discs/balls with random, non-sequential ids."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, dtype=np.int32)
    grid = np.indices(shape)
    for _ in range(n_objects):
        centre = [rng.integers(0, n) for n in shape]
        r = rng.integers(*radius)
        inside = sum((g - c) ** 2 for g, c in zip(grid, centre)) <= r**2
        labels[inside] = rng.integers(1, 10_000)
    return labels


def seed_discs():
    """The seed blog's example: three discs, two of them nearly touching."""
    labels = np.zeros((64, 64), dtype=np.uint8)
    for i, (row, col, radius) in enumerate([(20, 16, 10), (44, 16, 10), (47, 47, 10)]):
        labels[disk((row, col), radius, shape=labels.shape)] = i + 1
    return labels


@pytest.mark.parametrize("border", ["background", "all"])
@pytest.mark.parametrize("n_objects", [0, 1, 2, 3, 12])
@pytest.mark.parametrize(("w0", "sigma"), PARAMETERS)
def test_matches_brute_force_on_random_non_square_labels(border, n_objects, w0, sigma):
    labels = random_labels((37, 53), n_objects, seed=n_objects)
    expected = reference_weight_map(labels, w0, sigma, border=border)
    assert_allclose(weight_map(labels, w0, sigma, border=border), expected, atol=ATOL)


@pytest.mark.parametrize("border", ["background", "all"])
def test_touching_objects_and_objects_on_the_image_edge(border):
    labels = np.zeros((30, 41), dtype=np.uint16)
    labels[0:12, 0:10] = 5  # on the corner
    labels[0:12, 10:20] = 9  # touches 5
    labels[20:30, 30:41] = 2  # on the opposite edge
    expected = reference_weight_map(labels, 10, 5, border=border)
    assert_allclose(weight_map(labels, 10, 5, border=border), expected, atol=ATOL)


def test_a_distant_third_object_changes_nothing_near_the_pair():
    pair = np.zeros((40, 200), dtype=np.int32)
    pair[10:30, 5:20] = 1
    pair[10:30, 22:37] = 2
    with_third = pair.copy()
    with_third[10:30, 180:195] = 3
    near = (slice(None), slice(0, 60))
    a, b = weight_map(pair, class_weights="none"), weight_map(with_third, class_weights="none")
    assert_allclose(a[near], b[near], atol=ATOL)
    assert_allclose(b, reference_weight_map(with_third, class_weights="none"), atol=ATOL)


@pytest.mark.parametrize("border", ["background", "all"])
def test_3d_with_anisotropic_spacing(border):
    labels = random_labels((9, 24, 27), 6, seed=3, radius=(3, 6))
    spacing = (2.5, 0.7, 0.7)
    expected = reference_weight_map(labels, 10, 2.0, border=border, spacing=spacing)
    result = weight_map(labels, 10, 2.0, border=border, spacing=spacing)
    assert_allclose(result, expected, atol=ATOL)


def test_per_plane_equals_each_plane_alone():
    stack = np.stack([random_labels((31, 29), n, seed=n) for n in (0, 1, 4, 9)])
    result = weight_map(stack, 20, 4, spatial_dims=2)
    for plane, labels in zip(result, stack):
        assert_allclose(plane, reference_weight_map(labels, 20, 4), atol=ATOL)


@pytest.mark.parametrize("n_objects", [1, 2, 5])
def test_border_all_agrees_with_the_seed_function(n_objects):
    labels = random_labels((34, 45), n_objects, seed=10 + n_objects, radius=(3, 9))
    expected = seed_make_weight_map(labels_to_masks(labels), w0=10, sigma=5)
    assert_allclose(weight_map(labels, 10, 5, border="all"), expected, atol=ATOL)


def test_seed_example_values():
    labels = seed_discs()
    expected = seed_make_weight_map(labels_to_masks(labels))
    result = weight_map(labels, border="all")
    assert_allclose(result, expected, atol=ATOL)
    # The gap between the two close discs carries the highest weight of the background.
    gap = result[32, 16]
    assert gap > 0.9 * result[labels == 0].max()


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("balanced", (0.25, 0.75)), ("inverse", (100 / 150, 100 / 50)), ("none", (1.0, 1.0)),
     ((0.3, 2.0), (0.3, 2.0))],
)
def test_class_weight_rules(mode, expected):
    assert class_weight_values(100, 25, mode) == pytest.approx(expected)
    labels = np.zeros((10, 10), dtype=np.uint8)
    labels[:5, :5] = 1
    result = weight_map(labels, w0=0, class_weights=mode)
    assert_allclose(result[0, 0], expected[1], rtol=1e-6)
    assert_allclose(result[9, 9], expected[0], rtol=1e-6)


def test_cache_renders_new_parameters_like_a_fresh_computation():
    labels = random_labels((60, 70), 15, seed=5)
    cache = WeightMapCache(labels)
    for w0, sigma in [(10, 5), (10, 3), (40, 8), (100, 25), (5, 1)]:
        assert_allclose(cache.render(w0, sigma), reference_weight_map(labels, w0, sigma),
                        atol=ATOL)
        assert cache.covers(w0, sigma)


@pytest.mark.parametrize("border", ["background", "all"])
@pytest.mark.parametrize("spatial_dims", [None, 2])
def test_cache_update_recomputes_edits_exactly(border, spatial_dims):
    rng = np.random.default_rng(1)
    shape = (3, 40, 50) if spatial_dims else (60, 80)
    labels = random_labels(shape, 10, seed=7)
    cache = WeightMapCache(labels, border=border, spatial_dims=spatial_dims)
    cache.render(10, 5)
    for step in range(12):
        edited = labels.copy()
        start = [rng.integers(0, max(n - 6, 1)) for n in shape]
        box = tuple(slice(s, s + rng.integers(1, 6)) for s in start)
        edited[box] = [0, labels.max() + 7, *np.unique(labels)[-2:]][step % 4]
        changed = cache.update(edited)
        assert (changed is None) == np.array_equal(edited, labels)
        labels = edited
        expected = _brute_force_planes(labels, border, spatial_dims)
        assert_allclose(cache.render(10, 5), expected, atol=ATOL)
    assert np.array_equal(cache.labels, labels)


def test_cache_update_with_a_region_hint_and_through_object_counts():
    labels = np.zeros((40, 40), dtype=np.int32)
    cache = WeightMapCache(labels, border="all")
    cache.render(10, 5)
    for value, box in [(1, (slice(5, 15), slice(5, 15))), (2, (slice(5, 15), slice(17, 27))),
                       (0, (slice(5, 15), slice(5, 15)))]:
        labels = labels.copy()
        labels[box] = value
        cache.update(labels, region=box)
        assert_allclose(cache.render(10, 5), reference_weight_map(labels, border="all"),
                        atol=ATOL)


def test_cache_keeps_its_own_copy():
    labels = random_labels((20, 20), 3)
    cache = WeightMapCache(labels)
    before = cache.render()
    labels[:] = 0
    assert_allclose(cache.render(), before)


def _brute_force_planes(labels, border, spatial_dims):
    if not spatial_dims:
        return reference_weight_map(labels, 10, 5, border=border)
    return np.stack([reference_weight_map(p, 10, 5, border=border) for p in labels])


def test_huge_sparse_ids():
    labels = np.zeros((20, 30), dtype=np.int64)
    labels[2:8, 2:8] = 2**31 - 1
    labels[2:8, 10:16] = 3
    labels[12:18, 2:8] = 2**40
    assert_allclose(weight_map(labels), reference_weight_map(labels), atol=ATOL)


def test_no_background_at_all():
    labels = np.ones((8, 9), dtype=np.uint8)
    labels[:, 4:] = 2
    assert_allclose(weight_map(labels), reference_weight_map(labels), atol=ATOL)
    assert_allclose(weight_map(labels, border="all"),
                    reference_weight_map(labels, border="all"), atol=ATOL)


def test_output_is_float32_and_input_untouched():
    labels = random_labels((16, 16), 3)
    copy = labels.copy()
    result = weight_map(labels)
    assert result.dtype == np.float32
    assert result.shape == labels.shape
    assert np.array_equal(labels, copy)


def test_border_radius():
    assert border_radius(10, 5, 1e-4) == pytest.approx(5 * np.sqrt(2 * np.log(1e5)))
    assert border_radius(1e-5, 5, 1e-4) == 0.0


@pytest.mark.parametrize(
    ("labels", "error", "message"),
    [
        (np.zeros((4, 4), dtype=float), TypeError, "astype"),
        (np.zeros((4, 4), dtype=bool), TypeError, "skimage.measure.label"),
        (-np.ones((4, 4), dtype=int), ValueError, "negative"),
        (np.int32(3), ValueError, "scalar"),
    ],
)
def test_bad_labels_say_what_to_change(labels, error, message):
    with pytest.raises(error, match=message):
        weight_map(labels)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sigma": 0}, "sigma"),
        ({"w0": -1}, "w0"),
        ({"border": "inner"}, "border"),
        ({"class_weights": "equal"}, "class_weights"),
        ({"spacing": (1, 2, 3)}, "spacing"),
        ({"spatial_dims": 3}, "spatial_dims"),
    ],
)
def test_bad_parameters_say_what_to_change(kwargs, message):
    with pytest.raises(ValueError, match=message):
        weight_map(np.zeros((4, 4), dtype=np.uint8), **kwargs)


def test_update_rejects_a_new_shape():
    cache = WeightMapCache(np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="new WeightMapCache"):
        cache.update(np.zeros((5, 4), dtype=np.uint8))


# -- degenerate inputs -------------------------------------------------------------
@pytest.mark.parametrize("mode", ["balanced", "inverse"])
@pytest.mark.parametrize("fill", [0, 7], ids=["no object", "no background"])
def test_a_single_class_weighs_one_not_zero(mode, fill):
    labels = np.full((12, 10), fill, dtype=np.uint8)
    assert class_weight_values(labels.size, int((labels != 0).sum()), mode) == (1.0, 1.0)
    result = weight_map(labels, class_weights=mode)
    assert_allclose(result, np.ones(labels.shape))  # the loss of such an image is not 0


def test_an_empty_plane_of_a_stack_weighs_one():
    stack = np.zeros((2, 20, 20), dtype=np.uint16)
    stack[1, 2:8, 2:8] = 1
    stack[1, 2:8, 10:16] = 2
    result = weight_map(stack, spatial_dims=2)
    assert_allclose(result[0], 1.0)
    assert_allclose(result[1], brute_force_weight_map(stack[1]), atol=ATOL)


@pytest.mark.parametrize(
    ("shape", "spatial_dims"),
    [((0, 5, 5), None), ((0, 5, 5), 2), ((0, 5, 5), 1), ((5, 0, 5), 1), ((0, 0), 1), ((0,), None)],
)
def test_labels_without_pixels_give_an_empty_map(shape, spatial_dims):
    labels = np.zeros(shape, dtype=np.uint16)
    cache = WeightMapCache(labels, spatial_dims=spatial_dims)
    result = cache.render(10, 5)
    assert result.shape == shape and result.dtype == np.float32
    assert cache.labels.shape == shape and cache.labels.dtype == labels.dtype
    assert cache.n_objects == 0
    assert cache.update(labels) is None
    assert weight_map(labels, spatial_dims=spatial_dims).shape == shape


# -- parameter checks ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"w0": "10"}, TypeError, r"w0 must be a number \(int or float\), got str '10'"),
        ({"w0": True}, TypeError, "w0 must be a number"),
        ({"w0": np.inf}, ValueError, "w0 must be a finite number >= 0"),
        ({"sigma": np.nan}, ValueError, "sigma must be a finite number > 0"),
        ({"sigma": [5]}, TypeError, "sigma must be a number"),
        ({"tolerance": 0}, ValueError, "tolerance must be a finite number > 0"),
        ({"tolerance": "1e-4"}, TypeError, "tolerance must be a number"),
        ({"spatial_dims": 1.5}, TypeError, "spatial_dims must be a whole number"),
        ({"spatial_dims": True}, TypeError, "spatial_dims must be a whole number"),
        ({"spacing": (0, 1)}, ValueError, "spacing must be 2 finite numbers > 0"),
        ({"spacing": (np.nan, 1)}, ValueError, "spacing must be 2 finite numbers > 0"),
        ({"spacing": ("1", "1")}, TypeError, "spacing must be 2 finite numbers > 0"),
        ({"spacing": [[1, 1]]}, ValueError, "spacing must be 2"),
    ],
)
def test_bad_parameter_types_and_values_name_the_parameter(kwargs, error, message):
    with pytest.raises(error, match=message):
        weight_map(np.zeros((4, 4), dtype=np.uint8), **kwargs)


@pytest.mark.parametrize(
    "class_weights", [(np.nan, 1.0), (1.0, np.inf), (-1.0, 1.0), ("1", 2), (1, 2, 3), 5]
)
def test_bad_class_weights_say_what_is_allowed(class_weights):
    allowed = r"pair of finite numbers >= 0"
    with pytest.raises(ValueError, match=allowed):
        weight_map(np.zeros((4, 4), dtype=np.uint8), class_weights=class_weights)
    with pytest.raises(ValueError, match=allowed):
        class_weight_values(16, 4, class_weights)
    with pytest.raises(ValueError, match=allowed):
        WeightMapCache(np.zeros((4, 4), dtype=np.uint8)).render(class_weights=class_weights)


def test_numpy_scalars_are_accepted_as_numbers():
    labels = random_labels((24, 26), 4, seed=2)
    expected = weight_map(labels, 10, 5, class_weights=(0.5, 2.0), spacing=(1.0, 1.0))
    result = weight_map(
        labels, np.float32(10), np.int64(5), class_weights=(np.float64(0.5), np.int8(2)),
        spacing=(np.float32(1), 1), spatial_dims=np.int64(2), tolerance=np.float64(1e-4),
    )
    assert_allclose(result, expected)
    assert border_radius(np.int32(10), np.float32(5)) == pytest.approx(border_radius(10, 5))
