"""benchmarks/bench_backends.py: its measures, on the process's backend with tiny sizes (it
never asserts a time, only what it reports and how the shares are computed)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "bench_backends", ROOT / "benchmarks" / "bench_backends.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_yardstick_and_the_share(bench):
    assert bench.matmul_gflops(128, repeats=1) > 0
    # 2 MP/s of a 90 GFLOP/MP network = 180 GFLOP/s: 60 % of a 300 GFLOP/s matmul
    assert math.isclose(bench.share(2.0, 90.0, 300.0), 0.6)
    image = bench.disc_image(64)
    assert image.dtype == np.uint8 and image.shape == (64, 64) and (image == 180).any()


def test_the_old_automatic_tile(bench):
    """Before issue 21: 32 activations per filter, the largest square of the budget."""
    metadata = {"n_classes": 3, "input": {"n_channels": 1},
                "architecture": {"depth": 4, "base_filters": 16}}
    side = bench.legacy_tile(metadata, 4)[0]
    assert side % 16 == 0 and 64 <= side <= 2048


def test_one_backend_reports_every_path(bench, keras):
    result = bench.run_backend(sizes=(64,), rounds=1, matmul=256, before=True)
    assert result["backend"] == keras.backend.backend()
    assert 80 < result["gflop_per_mp"] < 110  # the bundled 16-filter model: 92
    assert set(result["paths"]) == {"whole 64", "default 64", "before: eager whole 64",
                                    "before: eager default 64",
                                    "compiled, not folded, default 64"}
    yardstick = max(result["yardstick_gflops"])
    assert len(result["yardstick_gflops"]) == 2  # before and after the round
    for path in result["paths"].values():
        assert path["mp_per_s"] > 0
        assert math.isclose(path["share"], path["mp_per_s"] * result["gflop_per_mp"]
                            / yardstick, rel_tol=0.02, abs_tol=2e-3)
    assert result["paths"]["default 64"]["tile_shape"] == [64, 64]
