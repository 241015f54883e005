"""The network call of inference: batch normalisation folded, a compiled copy that follows the
model's weights, numpy out, serialised networks called under their lock."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_unet_weights.unet.inference import network_output
from napari_unet_weights.unet.model_cache import serialized
from napari_unet_weights.unet.model_file import UNetModel
from napari_unet_weights.unet.network import fold_batch_norm, predictor, weights_fingerprint


def trained_like(keras, seed: int = 0):
    """A small U-Net whose batch normalisations have statistics far from 0 / 1."""
    from napari_unet_weights.unet.model import build_unet

    keras.utils.set_random_seed(seed)
    net = build_unet(2, 3, depth=2, base_filters=4)
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if type(layer).__name__ == "BatchNormalization":
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(0, 0.5, n),
                               rng.normal(0, 2, n), rng.uniform(0.1, 5, n)])
    return net


def eager(net, batch: np.ndarray) -> np.ndarray:
    import keras

    return keras.ops.convert_to_numpy(net(batch, training=False))


@pytest.fixture
def batch() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(2, 32, 48, 2)).astype(np.float32)


def test_folding_gives_the_same_outputs_without_batch_norm(keras, batch):
    net = trained_like(keras)
    before = [w.copy() for w in net.get_weights()]
    folded = fold_batch_norm(net)
    kinds = [type(layer).__name__ for layer in folded.layers]
    assert "BatchNormalization" not in kinds and kinds.count("PassThrough") == 10
    assert all(layer.use_bias for layer in folded.layers if type(layer).__name__ == "Conv2D")
    np.testing.assert_allclose(eager(folded, batch), eager(net, batch), atol=1e-5)
    # the model itself is left as it was
    assert all(np.array_equal(a, b) for a, b in zip(before, net.get_weights()))
    assert "BatchNormalization" in [type(layer).__name__ for layer in net.layers]


def test_a_model_without_batch_norm_is_not_copied(keras):
    from napari_unet_weights.unet.model import build_unet

    net = build_unet(1, 2, depth=1, base_filters=2, batch_norm=False)
    assert fold_batch_norm(net) is net


def test_the_step_follows_the_weights(keras, batch):
    """Training changes the weights between two predictions: the copy is refreshed."""
    net = trained_like(keras)
    first = predictor(net)(batch)
    np.testing.assert_allclose(first, eager(net, batch), atol=1e-5)
    assert first.dtype == np.float32 and isinstance(first, np.ndarray)
    fingerprint = weights_fingerprint(net)
    net.set_weights(trained_like(keras, seed=2).get_weights())
    assert weights_fingerprint(net) != fingerprint
    second = predictor(net)(batch)
    np.testing.assert_allclose(second, eager(net, batch), atol=1e-5)
    assert np.abs(second - first).max() > 1e-3


def test_network_output_with_and_without_tta(keras, batch):
    net = trained_like(keras)
    np.testing.assert_allclose(network_output(net, batch), eager(net, batch), atol=1e-5)
    square = batch[:, :, :32]
    expected = np.mean([np.rot90(eager(net, np.ascontiguousarray(
        np.rot90(square, turns, (1, 2))[:, :, ::-1] if mirrored
        else np.rot90(square, turns, (1, 2))))[:, :, ::-1] if mirrored else eager(
        net, np.ascontiguousarray(np.rot90(square, turns, (1, 2)))), -turns, (1, 2))
        for turns in range(4) for mirrored in (False, True)], axis=0)
    tta = network_output(net, square, tta=True)
    np.testing.assert_allclose(tta, expected, atol=1e-5)
    assert np.abs(tta - eager(net, square)).max() > 1e-4  # the mean of 8 orientations


def test_a_serialised_network_runs_under_its_lock(keras, batch):
    net = trained_like(keras)
    unet = serialized(UNetModel(net, {}))
    model, lock = unet.keras_model.locked_network
    assert model is net and isinstance(lock, type(threading.Lock()))
    step = predictor(unet.keras_model)
    np.testing.assert_allclose(step(batch), eager(net, batch), atol=1e-5)
    held = []

    def check(*args, **kwargs):
        held.append(lock.locked())
        return np.zeros((1, 32, 48, 3), np.float32)

    copy = next(iter(network_copies(net)))
    original, copy.predict_on_batch = copy.predict_on_batch, check
    try:
        step(batch)
    finally:
        copy.predict_on_batch = original
    assert held == [True]


def network_copies(net):
    from napari_unet_weights.unet import network

    return [entry.model for entry in network._COPIES[net].values()]


def test_flops_counted_by_hand(keras):
    """Depth 1, 2 filters, 1 channel in, 2 classes: 456 FLOP per pixel."""
    from napari_unet_weights.unet.model import build_unet
    from napari_unet_weights.unet.network import flops_per_pixel

    by_hand = (2 * 9 * 1 * 2 + 2 * 9 * 2 * 2  # level 0: 1 → 2, 2 → 2
               + (2 * 9 * 2 * 4 + 2 * 9 * 4 * 4) / 4  # bottleneck at 1/4 of the pixels
               + 2 * 4 * 4 * 2 / 4  # 2×2 transposed 4 → 2: k² taps per input pixel
               + 2 * 9 * 4 * 2 + 2 * 9 * 2 * 2  # level 0 again: (2 + 2) → 2, 2 → 2
               + 2 * 2 * 2)  # 1×1 to the classes
    assert by_hand == 456
    assert flops_per_pixel(build_unet(1, 2, depth=1, base_filters=2)) == by_hand
