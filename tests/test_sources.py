"""sources: registry values carry their mlsysim path, derived values carry what they came from."""

from __future__ import annotations

import pytest

from feedtax.model import sources


def test_from_mlsysim_converts_and_names_the_path():
    hbm = sources.from_mlsysim("Hardware.Cloud.H100.memory.capacity", "byte")
    assert hbm.value == 80 * 2**30 and hbm.unit == "byte"
    assert hbm.source == "mlsysim:Hardware.Cloud.H100.memory.capacity"


def test_derived_is_measured_when_any_part_is():
    peak = sources.from_mlsysim("Hardware.Cloud.H100.memory.bandwidth", "MB/s")
    mixed = sources.derived(2 * peak.value, "MB/s", [peak, sources.measured(2)], "two of them")
    assert mixed.source == "measured" and mixed.derived_from == [peak.source, "measured"]
    registry_only = sources.derived(peak.value, "MB/s", [peak], "the same")
    assert registry_only.source == peak.source


def test_quantity_keeps_the_unit():
    assert sources.quantity(sources.measured(1500, "MB/s")).to("GB/s").magnitude == pytest.approx(1.5)


def test_frame_4k_bytes_hand_checked():
    frame = sources.frame_4k_bytes()
    assert frame.value == 3840 * 2160 * 3 and frame.unit == "byte"
    assert len(frame.derived_from) == 3 and all(s.startswith("mlsysim:core.units.") for s in frame.derived_from)
