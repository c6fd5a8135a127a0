"""What the lab's parts compute, on a stored laptop run: the audit at this disk's rates, feeding points measured
or modelled (and said so), a point measured live, the selection re-run at one setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedtax.lab import workbench as wb
from feedtax.results import load

LAPTOP = Path(__file__).parent / "data" / "results-v4.json"


@pytest.fixture(scope="module")
def res():
    return load(LAPTOP)


def test_the_audit_writes_and_reads_drives_at_this_disks_measured_rates(res):
    g = wb.gravity_tiers(res, 4_700, 10, wb.MEASURED_DISK)
    assert g.inputs["disk_write_bandwidth"].value == res.disk.seq_write_mb_per_s
    assert g.inputs["disk_read_bandwidth"].value == res.disk.seq_read_mb_per_s_first
    assert g.inputs["disk_read_bandwidth"].source == "measured" and len(g.tiers) == len(wb.DATASET_TIERS_BYTES)
    hdd = wb.gravity_tiers(res, 4_700, 10, "hdd", sizes=[10**15])
    assert hdd.inputs["disk_read_bandwidth"].source.startswith("mlsysim:") and len(hdd.tiers) == 1
    assert hdd.tiers[0].sneakernet_s > g.tiers[3].sneakernet_s  # 1 PB: an HDD is slower than this SSD


@pytest.mark.parametrize("size, tier", [(1.2e10, 10**10), (4e14, 10**15), (2e12, 10**12), (9e16, 10**16)])
def test_a_slider_position_falls_in_its_nearest_size_tier(size, tier):
    assert wb.nearest_tier(size) == tier


def test_a_measured_point_is_the_runs_and_a_live_one_wins(res):
    row = next(r for r in res.tuned_rows() if r.format == "json" and r.num_workers == 2)
    p = wb.feeding_point(res, "json", 2, wb.MEASURED_DISK)
    assert p.measured and p.source == "measured in this run" and p.feeding_tax == row.feeding_tax
    assert p.au_ci95 is None and p.feeding_tax_ci95 is None  # a file from before intervals: none made up
    live = row.model_copy(update={"feeding_tax": 0.25, "au": 0.75, "au_ci95": (0.70, 0.78),
                                  "feeding_tax_ci95": (0.22, 0.30), "au_ci_wide": True})
    p = wb.feeding_point(res, "json", 2, wb.MEASURED_DISK, [live])
    assert p.source == "measured here, live" and p.au == 0.75
    assert p.au_ci95 == (0.70, 0.78) and p.feeding_tax_ci95 == pytest.approx((0.22, 0.30)) and p.au_ci_wide


def test_an_unmeasured_point_is_modelled_and_says_so(res):
    p = wb.feeding_point(res, "json", 8, wb.MEASURED_DISK)
    assert not p.measured and p.source.startswith("modelled: mlsysim") and 0 <= p.feeding_tax <= 1
    assert p.au_ci95 is None  # a model's figure has no measured interval
    assert p.au == pytest.approx(1 - p.feeding_tax)
    at1, at8 = wb.feeding_point(res, "json", 1, "hdd"), wb.feeding_point(res, "json", 8, "hdd")
    assert not at1.measured  # a disk tier is never the run's own measurement
    assert at8.feeding_tax <= at1.feeding_tax  # the model: more workers never wait longer


def test_the_measured_equilibrium_is_the_sweeps(res):
    summary = next(s for s in res.tuned_summaries() if s.track == wb.swept_track(res))
    assert all(wb.measured_equilibrium(res, f) == n for f, n in summary.flow_equilibrium.items())


def test_a_point_measured_live_is_a_real_sweep_row(res, tmp_path):
    row = wb.measure_live(res, "protobuf", 1, wb.MEASURED_DISK, tmp_path)
    assert (row.track, row.format, row.num_workers, row.loader) == (wb.swept_track(res), "protobuf", 1, "tuned")
    assert 0 <= row.feeding_tax <= 1 and row.ingestion_samples_per_s > 0 and row.disk_tier is None
    hdd = wb.measure_live(res, "protobuf", 1, "hdd", tmp_path)  # reads held to an HDD's pace: measured, not modelled
    assert hdd.disk_tier == "hdd" and hdd.read_bytes_per_s <= 1.1 * wb.tier_read_mb_per_s("hdd") * 1e6
    point = wb.feeding_point(res, "protobuf", 1, "hdd", [hdd])
    assert point.source == "measured here, live" and point.au_ci95 == hdd.au_ci95 is not None  # with its interval


def test_a_tier_faster_than_this_disk_is_refused_not_faked(res, tmp_path):
    slow_disk = res.model_copy(update={"disk": res.disk.model_copy(update={"seq_read_mb_per_s_first": 1.0})})
    with pytest.raises(ValueError, match="not reachable here"):
        wb.measure_live(slow_disk, "protobuf", 1, "sata", tmp_path)


def test_the_selection_reruns_at_the_chosen_setting(res):
    row, audit = wb.zero_waste(res, 0.6, "medium", "local")
    assert (row.label_quality, row.filter_ratio) == ("medium", 0.6)
    assert row.kept_samples == pytest.approx(row.pool_samples * 0.4, abs=1)
    assert audit.cut == pytest.approx(1 - row.kept_samples / row.pool_samples)


def test_the_lock_measured_live_sets_the_format_switch_against_the_faster_disk(res, tmp_path):
    answer, rows = wb.lock2_live(res, 1, tmp_path)
    assert [(r.format, r.disk_tier) for r in rows] == [("json", "hdd"), ("protobuf", "hdd"), ("json", "sata")]
    assert answer.measured and answer.format_gain_pp == pytest.approx((rows[1].au - rows[0].au) * 100)
    assert answer.disk_gain_pp == pytest.approx((rows[2].au - rows[0].au) * 100)
    assert wb.lock2_live_sentences(rows) == [answer.sentence() + " (measured now)"]
    assert wb.lock2_live_sentences(rows[:2]) == []  # two of the three points answer nothing


def test_a_format_the_sweep_left_out_is_modelled_from_its_format_stage_rates(res):
    unswept = res.model_copy(update={"loader": [r for r in res.loader if r.format != "json"]})
    assert "json" in wb.formats_of(unswept)
    p = wb.feeding_point(unswept, "json", 2, wb.MEASURED_DISK)
    assert not p.measured and "format-stage decode and transform rates" in p.source and 0 <= p.feeding_tax <= 1
