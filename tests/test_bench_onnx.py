"""benchmarks/bench_onnx.py: what it reports on tiny sizes, and its verdict rule (it never
asserts a time)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from reference import require_dsb_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_onnx",
                                                  ROOT / "benchmarks" / "bench_onnx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_verdict_needs_speed_and_agreement(bench):
    fast = {"whole 1024": {"onnx_over_keras": 1.5}, "tiled 4096": {"onnx_over_keras": 1.2}}
    slow = {**fast, "tiled 4096": {"onnx_over_keras": 0.9}}
    agrees, differs = {"labels_map_min": 1.0}, {"labels_map_min": 0.998}
    assert bench.verdict(fast, agrees).startswith("onnx")
    assert bench.verdict(slow, agrees).startswith("keras stays")
    assert "do not agree" in bench.verdict(fast, differs)
    assert "do not agree" in bench.verdict(fast, None)


def test_a_tiny_run_reports_both_engines_and_their_agreement(bench, keras):
    data = require_dsb_folder()
    result = bench.run(sizes=(64, 96), rounds=1, images=1, batch_size=2, data=data)
    assert set(result["speed"]) == {"whole 64", "tiled 96"}
    for row in result["speed"].values():
        assert row["keras"]["mp_per_s"] > 0 and row["onnx"]["mp_per_s"] > 0
        assert math.isclose(row["onnx_over_keras"],
                            row["keras"]["seconds"] / row["onnx"]["seconds"], rel_tol=0.01)
    assert result["speed"]["whole 64"]["tiles"] == 1
    agree = result["agreement"]
    assert agree["images"] == 1 and agree["per_image"][0]["id"] == bench.split_ids(1)[0]
    assert agree["labels_map_min"] >= bench.MIN_AGREEMENT and agree["max_dp"] < 1e-4
    assert len(result["load_average"]) == 6 and result["onnx_threads"] >= 1
