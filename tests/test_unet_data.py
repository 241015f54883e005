"""Training samples: reading pairs, the split, targets, patches and augmentation (no TF)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_unet_weights.unet.config import TrainConfig
from napari_unet_weights.unet.training.data import (
    PatchSampler,
    augment_patch,
    datasets,
    load_samples,
    prepare_sample,
    split_indices,
    validation_patches,
)
from reference import discs, noisy_image


def pairs(n: int, size: int = 32):
    labels = [discs((size, size), [(8 + i % 3, 9), (20, 22 - i % 4)], 5) for i in range(n)]
    return [noisy_image(label, seed=i) for i, label in enumerate(labels)], labels


def write_folder(root, images, labels):
    for kind, arrays in (("images", images), ("labels", labels)):
        (root / kind).mkdir(parents=True)
        for i, array in enumerate(arrays):
            tifffile.imwrite(root / kind / f"s{i}.tif", array)
    return root


def test_load_samples_accepts_rgb_and_two_folders(tmp_path):
    images, labels = pairs(2)
    rgb = [(np.stack([im] * 3, axis=-1) * 255).astype(np.uint8) for im in images]
    folder = write_folder(tmp_path / "data", rgb, labels)
    samples = load_samples(folder / "images", folder / "labels")
    assert [s.name for s in samples] == ["s0", "s1"]
    np.testing.assert_array_equal(samples[0].image, rgb[0])
    np.testing.assert_array_equal(samples[1].labels, labels[1])
    two_channels = [np.stack([im, im], axis=-1) for im in images]
    assert load_samples(two_channels, labels)[1].image.shape == (32, 32, 2)
    with pytest.raises(ValueError, match="sample 0 has 5 channels"):
        load_samples([np.stack([images[0]] * 5, axis=-1)], labels[:1])


def test_ids_above_65535_reach_the_targets_unchanged():
    """uint32 labels are not narrowed: two touching objects 65535 and 65537 keep their ids,
    and the larger id keeps its pixels where they touch (a uint16 copy would make it 1)."""
    labels = np.zeros((12, 14), np.uint32)
    labels[2:10, 2:7] = 65537
    labels[2:10, 7:12] = 65535
    image = noisy_image(labels)
    sample = load_samples([image], [labels])[0]
    assert sample.labels.dtype == np.uint32
    np.testing.assert_array_equal(sample.labels, labels)
    prepared = prepare_sample(sample, TrainConfig(n_classes=2))
    expected = (labels > 0).astype(np.uint8)
    expected[2:10, 7] = 0  # the gap is cut from the smaller id, 65535
    np.testing.assert_array_equal(prepared.target, expected)
    np.testing.assert_array_equal(prepared.labels, labels)


def test_split_indices_hold_out_the_fraction_with_the_seed():
    train_ids, val_ids = split_indices(10, 0.2, seed=0)
    assert len(val_ids) == 2 and sorted(train_ids + val_ids) == list(range(10))
    assert val_ids == sorted(np.random.default_rng(0).permutation(10)[:2].tolist())
    assert split_indices(10, 0.2, seed=0) != split_indices(10, 0.2, seed=1)
    train_ids, val_ids = split_indices(3, 0.66, seed=0)  # the largest fraction that works
    assert len(train_ids) == 1 and len(val_ids) == 2
    with pytest.raises(ValueError, match=r"a validation fraction of 0\.9 leaves 0 of 3 samples "
                                         r"for training; use a fraction of at most 0\.66"):
        split_indices(3, 0.9, seed=0)
    with pytest.raises(ValueError, match="1 sample is too few for a validation split"):
        split_indices(1, 0.5, seed=0)


def test_a_given_validation_set_replaces_the_split(tmp_path):
    images, labels = pairs(4)
    others = pairs(6)
    val_folder = write_folder(tmp_path / "val", others[0][4:], others[1][4:])
    train_set, val_set, record = datasets(images, labels, val_folder, 0.5, seed=3)
    assert [s.name for s in train_set] == [0, 1, 2, 3]  # all train
    assert [s.name for s in val_set] == ["s0", "s1"]
    assert record == {"by": "index", "source": "given", "train": [0, 1, 2, 3],
                      "validation": ["s0", "s1"]}
    train_set, val_set, record = datasets(images, labels, None, 0.5, seed=3)
    assert record["seed"] == 3 and record["validation_fraction"] == 0.5
    assert sorted(record["train"] + record["validation"]) == [0, 1, 2, 3]
    assert [s.name for s in val_set] == record["validation"]


def test_a_validation_set_of_training_images_is_validation_on_training(tmp_path):
    images, labels = pairs(3)
    data = write_folder(tmp_path / "data", images, labels)
    _, val_set, record = datasets(data, None, data, 0.2, seed=0)
    assert record["source"] == "training" and record["given"] is True
    assert [s.name for s in val_set] == ["s0", "s1", "s2"]
    copy = write_folder(tmp_path / "copy", images[1:], labels[1:])  # other names, same pixels
    for name in ("s0", "s1"):
        for kind in ("images", "labels"):
            (copy / kind / f"{name}.tif").rename(copy / kind / f"copy_{name}.tif")
    assert datasets(data, None, copy, 0.2, seed=0)[2]["source"] == "training"
    others = pairs(6)
    mixed = write_folder(tmp_path / "mixed", [images[0], others[0][5]],
                         [labels[0], others[1][5]])
    record = datasets(data, None, mixed, 0.2, seed=0)[2]
    assert record["source"] == "given" and record["also_training"] == 1
    changed = [labels[0].copy()]
    changed[0][0, 0] = 9  # one pixel differs: an independent image
    record = datasets(images, labels, (images[:1], changed), 0.2, seed=0)[2]
    assert record["source"] == "given" and "also_training" not in record


def test_training_labels_without_any_object_are_refused(tmp_path):
    images, labels = pairs(2)
    empty = [np.zeros_like(labels[0])]
    with pytest.raises(ValueError, match=r"the label image of the training data holds no "
                                         r"object \(every pixel is 0\): a model would only "
                                         r"learn background"):
        datasets(write_folder(tmp_path / "empty", images[:1], empty), None, "training", 0.2,
                 seed=0)
    with pytest.raises(ValueError, match="the 2 label images of the training data hold no"):
        datasets(images, empty * 2, "training", 0.2, seed=0)
    datasets(images, [empty[0], labels[1]], "training", 0.2, seed=0)  # one with objects: fine


def test_augmentation_moves_image_target_and_weights_together():
    target = np.random.default_rng(0).integers(0, 3, (8, 8)).astype(np.uint8)
    x = target[..., None].astype(np.float32)  # image, target and weights: one pattern
    weights = (1 + 10 * target).astype(np.float32)
    placements = set()
    for seed in range(8):
        ax, ay, aw = augment_patch(np.random.default_rng(seed), x, target, weights)
        np.testing.assert_array_equal(aw, 1 + 10 * ay)
        levels = [np.unique(ax[..., 0][ay == c]) for c in range(3)]
        assert all(level.size == 1 for level in levels)  # one intensity per class ...
        assert levels[0][0] < levels[1][0] < levels[2][0]  # ... in the same order
        placements.add(ay.tobytes())
    assert len(placements) > 2  # rotated and flipped differently


def test_patches_are_cut_from_padded_samples_and_are_reproducible():
    images, labels = pairs(2, size=20)
    config = TrainConfig(patch_size=32, depth=2, augment=False, augment_intensity=False,
                         augment_objects=False, augment_noise=False, augment_blur=False,
                         augment_scale=1.0, augment_stain=False)
    prepared = [prepare_sample(s, config) for s in load_samples(images, labels)]
    sampler = PatchSampler(prepared, config)
    xs, ys, ws = sampler.batch(np.random.default_rng(5), 3)
    assert xs.shape == (3, 32, 32, 1) and ys.dtype == np.uint8 and ws.dtype == np.float32
    # a 20-px sample padded to 32 by mirroring: the patch is the whole padded sample
    source = [p for p in prepared if np.array_equal(p.x, xs[0][:20, :20])]
    assert source, "the patch is not the top-left aligned padded sample"
    np.testing.assert_array_equal(xs[0][20:24, :20], source[0].x[19:15:-1])
    again = sampler.batch(np.random.default_rng(5), 3)
    np.testing.assert_array_equal(again[0], xs)
    patches = validation_patches(prepared, 32, seed=1)
    assert patches[0].shape == (8, 32, 32, 1)  # 4 per image
    np.testing.assert_array_equal(validation_patches(prepared, 32, seed=1)[1], patches[1])
