"""The Zero-Waste Audit of one selection run: what each processing location sends, and the cut it reaches."""

from __future__ import annotations

import pytest

from feedtax.model.assumptions import load
from feedtax.model.zerowaste import audit
from feedtax.results.audits import SelectionRow


def _row(pool: int, kept: int) -> SelectionRow:
    return SelectionRow(scenario="many noisy", label_quality="low", flip_rate=0.3, filter_ratio=1 - kept / pool,
                        pool_samples=pool, kept_samples=kept, epochs=3, samples_processed=pool + 3 * kept,
                        bytes_processed=(pool + 3 * kept) * 128, accuracy=0.9, reached_target=True, wall_s=0.5,
                        energy_j=7.5, energy_source="estimated: wall time x cpu_active_power_w")


@pytest.mark.parametrize("pool, kept", [(20_000, 2_000), (20_000, 10_000), (20_000, 16_000)])
def test_local_processing_sends_only_the_kept_samples(pool, kept):
    a = load()
    local, cloud = audit(_row(pool, kept), 32, "local", a), audit(_row(pool, kept), 32, "cloud", a)
    assert local.sent_bytes == kept * 128 and cloud.sent_bytes == pool * 128
    assert local.cut == pytest.approx(1 - kept / pool) and cloud.cut == pytest.approx(0)
    assert local.meets_cut is (1 - kept / pool >= a.value("transmission_energy_cut")) and not cloud.meets_cut
    assert local.baseline_transmission_j == pytest.approx(cloud.transmission_j)


def test_the_ledger_holds_every_axis_with_its_source():
    t = audit(_row(20_000, 2_000), 32, "local", load()).ledger.tracks[0]
    assert [r.axis for r in t.rows] == ["compute", "memory", "radio"]
    assert all(r.joules > 0 and r.energy_per_unit.source.startswith("mlsysim:") for r in t.rows[:2])
    assert t.rows[0].amount.value == (20_000 + 3 * 2_000) * 4 * 32  # FLOPs: samples x 4 x features
    assert t.move_j == pytest.approx(t.rows[1].joules + t.rows[2].joules)
    assert t.measured_joules is None  # an estimate is not shown as measured


def test_an_unknown_location_is_refused():
    with pytest.raises(ValueError, match="unknown processing location 'moon'"):
        audit(_row(100, 10), 32, "moon", load())
