"""Zero-Waste ledger: joules = amount x energy per unit, hand-checked per medium, measured slot kept."""

from __future__ import annotations

import pytest
from test_inputs import make_measured

from feedtax.model import assumptions
from feedtax.model import ledger as energy


@pytest.fixture(scope="module")
def ledger():
    return energy.ledger(make_measured(), assumptions.load(), formats={"mobile": "parquet"},
                         measured_joules={"cloud": (12.5, "nvml:total_energy_consumption")})


def test_rows_are_amount_times_energy(ledger):
    assert {t.track for t in ledger.tracks} == {"cloud", "edge", "mobile", "tiny"}
    for t in ledger.tracks:
        for r in t.rows:
            assert r.joules == pytest.approx(r.amount.value * r.energy_per_unit.value)
        assert t.move_over_compute == pytest.approx(t.move_j / t.compute_j)


def test_tiny_sram_hand_checked(ledger):
    tiny = next(t for t in ledger.tracks if t.track == "tiny")
    sram = next(r for r in tiny.rows if r.medium == "SRAM")
    assert sram.joules == pytest.approx(324 * 1e-12)  # 160 int16 + a float32 SNR, 1 pJ/byte
    mac = next(r for r in tiny.rows if r.axis == "compute")
    assert mac.joules == pytest.approx(20e6 * 100e-12)  # DS-CNN 20 MFLOP at 100 pJ/FLOP (CPU)


def test_mobile_radio_hand_checked(ledger):
    mobile = next(t for t in ledger.tracks if t.track == "mobile")
    assert mobile.format == "parquet"
    radio = next(r for r in mobile.rows if r.axis == "radio")
    assert radio.joules == pytest.approx(radio.amount.value * 8 * 100e3 * 1e-12)


def test_edge_dram_hand_checked(ledger):
    edge = next(t for t in ledger.tracks if t.track == "edge")
    dram = next(r for r in edge.rows if r.medium == "DRAM")
    assert dram.joules == pytest.approx(8 * 3840 * 2160 * 3 * 160e-12)


def test_sources(ledger):
    for t in ledger.tracks:
        for r in t.rows:
            assert r.energy_per_unit.source.startswith("mlsysim:") or r.energy_per_unit.source == "measured"
            assert r.amount.source.split(":")[0] in ("measured", "mlsysim", "assumption")


def test_measured_joules_slot(ledger):
    cloud = next(t for t in ledger.tracks if t.track == "cloud")
    assert cloud.measured_joules == 12.5 and cloud.measured_source.startswith("nvml")
    assert next(t for t in ledger.tracks if t.track == "edge").measured_joules is None


def test_energy_radar(ledger):
    from feedtax.reports.mission_figures import energy_radar

    assert energy_radar(ledger).axes
