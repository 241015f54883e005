"""memory: one measure of the free memory and one budget policy, used by prediction's
tiles (unet.tiling) and by lazy weight maps (lazy_weights) alike."""

from __future__ import annotations

import sys

import pytest

import napari_unet_weights.runtime.memory as memory
from napari_unet_weights.runtime.memory import available_memory, memory_budget
from napari_unet_weights.unet.tiling import (
    ACTIVATIONS_PER_FILTER,
    MAX_MEMORY_BUDGET,
    MEMORY_SHARE,
    auto_tile_shape,
)
from napari_unet_weights.weights.lazy import (
    AUTO_MEMORY_BUDGET,
    AUTO_MEMORY_SHARE,
    resolve_memory_budget,
)

#: A model's metadata (tiles are multiples of 4) and its bytes per pixel.
TINY = {"n_classes": 3, "input": {"n_channels": 1},
        "architecture": {"depth": 2, "base_filters": 4}}
PER_PIXEL = 4 * (1 + 3 + ACTIVATIONS_PER_FILTER * 4)


def test_the_policy_a_share_at_most_a_cap():
    assert memory_budget(1000, 0.25, available=2000) == 500
    assert memory_budget(1000, 0.25, available=8000) == 1000
    assert memory_budget(1000, 0.125, available=4001) == 500  # rounded down
    assert memory_budget(1000, 0.25, available=0) == 0


def test_the_cap_where_nothing_can_be_measured(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: None)
    assert memory_budget(1000, 0.25) == 1000
    assert resolve_memory_budget("auto") == AUTO_MEMORY_BUDGET
    assert auto_tile_shape(TINY, None, batch_size=1) == auto_tile_shape(
        TINY, None, batch_size=1, available=10**15)  # the cap, as with plenty of memory


@pytest.mark.parametrize("available", [2**20, 2**27, 2**30, 2**40])
def test_both_users_follow_the_policy(monkeypatch, available):
    """Weight maps and tiles size their budgets from the same measure with the same rule:
    each with its own share and cap."""
    monkeypatch.setattr(memory, "available_memory", lambda: available)
    assert resolve_memory_budget("auto") == min(AUTO_MEMORY_BUDGET,
                                                int(available * AUTO_MEMORY_SHARE))
    assert AUTO_MEMORY_SHARE == 1 / 8 and AUTO_MEMORY_BUDGET == 256 * 2**20
    assert (MEMORY_SHARE, MAX_MEMORY_BUDGET) == (0.25, 2 * 2**30)
    budget = min(MAX_MEMORY_BUDGET, int(available * MEMORY_SHARE))
    side = auto_tile_shape(TINY, None, batch_size=1)[0]
    assert side == auto_tile_shape(TINY, None, batch_size=1, available=available)[0]
    if 64 < side < 2048:  # between MIN_TILE and MAX_TILE: the largest tile in the budget
        assert side * side * PER_PIXEL <= budget < (side + 4) ** 2 * PER_PIXEL


def test_available_memory_without_psutil_reads_meminfo(monkeypatch):
    with_psutil = available_memory()
    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil raises ImportError
    without = available_memory()
    assert with_psutil > 0 and without > 0
    assert abs(without - with_psutil) < 0.5 * with_psutil  # the same figure, moments apart
    monkeypatch.setattr(memory, "_meminfo_available", lambda: None)
    assert available_memory() > 0  # os.sysconf's free pages
