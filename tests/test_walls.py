"""walls: mlsysim's DataModel and TransformationModel on a mission node, hand-checked."""

from __future__ import annotations

import math

import pytest

from feedtax.model import walls
from feedtax.model.sources import measured


def test_storage_node_records_the_bandwidth_and_an_unknown_capacity_as_nan():
    node = walls.storage_node("Hardware.Tiny.nRF52840", measured(10, "MB/s"))
    assert node.storage.bandwidth.to("MB/s").magnitude == pytest.approx(10)
    assert math.isnan(node.storage.capacity.magnitude)


def test_data_wall_is_demand_over_storage_supply():
    node = walls.storage_node("Hardware.Tiny.nRF52840", measured(10, "MB/s"))
    wall = walls.data_wall("Hardware.Tiny.nRF52840", node, "measured", 5e6)
    assert (wall.demand_mb_per_s, wall.supply_mb_per_s) == (pytest.approx(5), pytest.approx(10))
    assert wall.utilization == pytest.approx(0.5) and not wall.stalled


def test_transform_wall_hand_checked():
    # 1000 bytes at 100 samples/s: 10 ms of transform per sample against the accelerator's step
    easy = walls.transform_wall(1000, 100, 50)
    assert easy.transform_time_s == pytest.approx(0.01) and easy.accelerator_step_time_s == pytest.approx(0.02)
    assert not easy.is_bottleneck and easy.accelerator_utilization == pytest.approx(1)
    hard = walls.transform_wall(1000, 100, 200)
    assert hard.is_bottleneck and hard.accelerator_utilization == pytest.approx(0.5)
