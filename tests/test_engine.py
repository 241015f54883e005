"""The dask engine: threads, progress, cancel; a 2-process LocalCluster that loads the
model once per worker."""

from __future__ import annotations

import threading
import time

import dask
import dask.array as da
import numpy as np
import pytest

from napari_unet_weights.metrics.matching import evaluate
from napari_unet_weights.runtime.engine import ComputationCancelled, Engine, output_keys
from napari_unet_weights.unet.model_cache import load_counts
from napari_unet_weights.unet.model_file import BUNDLED_MODEL
from napari_unet_weights.unet.predict import PredictionCancelled, segment


def test_threads_compute_as_dask_with_progress_over_the_results():
    array = da.arange(100, chunks=10) ** 2
    steps = []
    total, (pieces, *_) = Engine(progress=lambda d, t: steps.append((d, t))).compute(
        array.sum(), [dask.delayed(abs)(-k) for k in range(3)])
    assert total == sum(k * k for k in range(100)) and pieces == 0
    assert steps[-1] == (4, 4) and len(output_keys(array.sum(), [array])) == 11


def test_threads_stop_between_tasks_and_wait_for_the_running_one():
    started, finished = [], []

    def task(k):
        started.append(k)
        time.sleep(0.05)
        finished.append(k)
        return k

    tasks = [dask.delayed(task)(k, dask_key_name=f"task-{k}") for k in range(20)]
    engine = Engine(threads=1, should_stop=lambda: len(finished) >= 2)
    with pytest.raises(ComputationCancelled, match="after 2 of 20"):
        engine.compute(tasks)
    assert len(started) <= 3 and started == finished  # nothing left running


def test_engine_arguments_are_checked():
    with pytest.raises(ValueError, match="not both"):
        Engine(workers=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="positive integer"):
        Engine(workers=0)
    assert repr(Engine()) == "Engine(threads)" and not Engine().distributed


@pytest.mark.cluster
def test_a_two_process_cluster_loads_the_model_once_per_worker(keras, tmp_path, capsys):
    """4 blocks on 2 worker processes, twice: each worker loads the model file once (not
    once per block); the labels agree with in memory; cancel cancels the futures."""
    rng = np.random.default_rng(0)
    image = np.zeros((256, 256), np.uint8)
    rows, cols = np.mgrid[:256, :256]
    for r, c in rng.integers(10, 246, (20, 2)):
        image[(rows - r) ** 2 + (cols - c) ** 2 < 64] = 200
    lazy = da.from_array(image, chunks=128)
    expected = segment(image, BUNDLED_MODEL)
    with Engine(workers=2, progress_bar=True) as engine:
        for run, scheduler in enumerate([engine, engine.client]):  # as the README's recipe
            labels = segment(lazy, BUNDLED_MODEL, block_shape=128, scheduler=scheduler,
                             out=tmp_path / f"labels{run}.zarr")
        assert "100% Completed" in capsys.readouterr().out  # distributed's bar, for the CLI
        loads = engine.client.run(load_counts)  # per worker: {model file: loads}
        assert evaluate(expected, labels[...]).map >= 0.98 and expected.max() > 15
        path = str(BUNDLED_MODEL.resolve())
        assert len(loads) == 2 and all(set(count) <= {path} for count in loads.values())
        assert all(count.get(path, 0) <= 1 for count in loads.values())  # 8 blocks
        assert sum(count.get(path, 0) for count in loads.values()) >= 1
        one_done = threading.Event()
        with pytest.raises(PredictionCancelled):
            segment(lazy, BUNDLED_MODEL, block_shape=64, scheduler=engine.client,
                    progress=lambda done, total: done and one_done.set(),
                    should_stop=one_done.is_set)
        assert not engine.client.futures  # the futures were cancelled and released
