"""The module paths of before the feature folders (issue 20) import what they did."""

from __future__ import annotations

import importlib

import pytest

from napari_unet_weights._moved import MOVED


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_old_module_path_is_the_moved_module(old, new):
    module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert module.__spec__.name == new  # the module keeps its own spec


def test_packages_that_were_modules_keep_their_names():
    from napari_unet_weights import io, metrics, weights
    from napari_unet_weights.io import files
    from napari_unet_weights.metrics import matching
    from napari_unet_weights.weights import exact

    for package, module in ((weights, exact), (metrics, matching), (io, files)):
        for name in vars(module):
            if not name.startswith("__"):
                assert getattr(package, name) is getattr(module, name), (package, name)


def test_unet_train_is_still_the_function():
    from napari_unet_weights.unet import train

    train_module = importlib.import_module("napari_unet_weights.unet.train")  # as before
    assert train_module.__name__ == "napari_unet_weights.unet.training.train"
    assert callable(train) and train is train_module.train
