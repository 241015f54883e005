"""unet.model_cache: the one model cache (block tasks and the Segment widget), keyed by
the file's path, modification time and size (no TensorFlow: loading is faked)."""

from __future__ import annotations

import os
from collections import Counter
from types import SimpleNamespace

import pytest

from napari_unet_weights.unet import model_cache
from napari_unet_weights.unet.model_cache import (
    MAX_MODELS,
    ModelFile,
    cached_model,
    is_cached,
    load_cached,
    load_counts,
)


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch):
    """An empty cache whose loads are counted, and a load that needs no TensorFlow."""
    monkeypatch.setattr(model_cache, "_CACHE", {})
    monkeypatch.setattr(model_cache, "_LOADS", Counter())
    monkeypatch.setattr(model_cache, "load_model",
                        lambda path: SimpleNamespace(keras_model=object(), metadata={},
                                                     path=str(path)))
    monkeypatch.setattr(model_cache, "UNetModel", lambda keras, metadata: SimpleNamespace(
        keras_model=keras, metadata=metadata))


def model_file(folder, name="m.keras", content=b"model"):
    path = folder / name
    path.write_bytes(content)
    return path


def test_a_file_is_loaded_once_while_it_is_unchanged(tmp_path):
    path = model_file(tmp_path)
    reference = ModelFile.of(path)
    assert not is_cached(reference)
    first = load_cached(path)
    assert is_cached(reference) and load_cached(str(path)) is first
    assert cached_model(ModelFile.of(tmp_path / "." / "m.keras")) is first  # one key
    assert load_counts() == {str(path.resolve()): 1}


def test_the_key_is_path_mtime_and_size(tmp_path):
    path = model_file(tmp_path)
    before = ModelFile.of(path)
    assert before == ModelFile(str(path.resolve()), path.stat().st_mtime_ns, 5)
    first = load_cached(path)
    path.write_bytes(b"a bigger model")  # rewritten with the same time stamp: the size tells
    os.utime(path, ns=(before.mtime_ns, before.mtime_ns))
    second = load_cached(path)
    assert second is not first and not is_cached(before)  # the stale model is dropped
    os.utime(path, ns=(before.mtime_ns + 10**9,) * 2)  # touched: loaded again
    assert load_cached(path) is not second
    assert load_counts() == {str(path.resolve()): 3}


def test_at_most_max_models_are_kept(tmp_path):
    paths = [model_file(tmp_path, f"m{i}.keras") for i in range(MAX_MODELS + 1)]
    first = load_cached(paths[0])
    for path in paths[1:MAX_MODELS]:
        load_cached(path)
    assert load_cached(paths[0]) is first  # used again: the least recent is now paths[1]
    load_cached(paths[-1])
    assert is_cached(ModelFile.of(paths[0])) and not is_cached(ModelFile.of(paths[1]))


def test_a_missing_file_is_said(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        load_cached(tmp_path / "missing.keras")


def test_the_segment_widget_loads_through_the_cache(tmp_path):
    """Its worker's loader is the cache: a second run of the unchanged file loads nothing."""
    from napari_unet_weights._widgets.segment.widget import _load_core

    path = model_file(tmp_path)
    load = _load_core().load_model
    assert load(path) is load(path)
    assert load_counts() == {str(path.resolve()): 1}
