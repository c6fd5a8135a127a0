"""Data Gravity Audit: hand-checked transfer and shipping times, crossover definition and monotonicity, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from feedtax.model import assumptions, gravity
from feedtax.vocabulary import DATASET_TIERS_BYTES

PB = 10**15


def test_one_petabyte_at_100_gbit_is_22_2_hours():
    s = gravity.network_s(PB, 100, 1.0)
    assert s == pytest.approx(80_000)  # 8e15 bit / 1e11 bit/s
    assert s / 3600 == pytest.approx(22.2, abs=0.05)


@pytest.mark.parametrize("size, link, efficiency", [(PB, 100, 1.0), (10**10, 10, 0.7), (3.3e12, 25, 0.93)])
def test_network_time_is_mlsysims_transfer_time(size, link, efficiency):
    from mlsysim.core.units import Q_
    from mlsysim.physics.quantities import transfer_time

    expected = transfer_time(Q_(size, "byte"), Q_(link * efficiency, "Gbit/s")).to("s").magnitude
    assert gravity.network_s(size, link, efficiency) == pytest.approx(expected, rel=1e-12)


def test_tiers_include_1pb_at_100g_with_efficiency_1():
    g = gravity.gravity(disk_write_mb_per_s=1000, disk_read_mb_per_s=1000,
                        assumptions=assumptions.load(overrides=["link_efficiency=1"]))
    row = next(t for t in g.tiers if t.dataset_bytes == 10**15 and t.link_gbps == 100)
    assert row.network_s / 3600 == pytest.approx(22.2, abs=0.05)
    assert {t.dataset_bytes for t in g.tiers} == set(DATASET_TIERS_BYTES)


def test_sneakernet_hand_checked():
    a = assumptions.load(overrides={"drive_capacity_bytes": 20e12, "sneakernet_parallel_drives": 24,
                                    "truck_speed_km_per_h": 65, "shipping_handling_h": 24})
    (t,) = gravity.gravity([40e12], [10], distance_km=650, disk_write_mb_per_s=100, disk_read_mb_per_s=200,
                           assumptions=a).tiers
    assert t.drives == 2
    assert t.write_s == pytest.approx(40e12 / (2 * 100e6))  # two drives written at once
    assert t.read_s == pytest.approx(40e12 / (2 * 200e6))
    assert t.ship_s == pytest.approx((24 + 650 / 65) * 3600)
    assert t.sneakernet_s == pytest.approx(t.write_s + t.ship_s + t.read_s)


def test_parallel_drive_limit():
    assert gravity.copy_s(100e12, drives=5, parallel=2, bytes_per_s=1e8) == pytest.approx(100e12 / 2e8)


def test_crossover_is_where_the_times_meet():
    g = gravity.gravity(disk_write_mb_per_s=2000, disk_read_mb_per_s=2000)
    speed, handling = g.inputs["truck_speed_km_per_h"].value, g.inputs["shipping_handling_h"].value
    crossed = [t for t in g.tiers if t.crossover_km is not None]
    assert crossed
    for t in crossed:
        at = t.write_s + t.read_s + (handling + t.crossover_km / speed) * 3600
        assert at == pytest.approx(t.network_s)


def test_crossover_none_when_network_always_wins():
    assert gravity.crossover_km(net_s=10, write_s=100, read_s=100, speed_km_per_h=65, handling_h=24) is None


@pytest.mark.parametrize("disk", [150, 500, 2000, 7000])
@pytest.mark.parametrize("link", [10, 40, 100])
def test_crossover_monotonic_in_dataset_size(disk, link):
    g = gravity.gravity(links_gbps=[link], disk_write_mb_per_s=disk, disk_read_mb_per_s=disk)
    xs = [t.crossover_km for t in sorted(g.tiers, key=lambda t: t.dataset_bytes)]
    as_num = [-1.0 if x is None else x for x in xs]  # None (never) sorts below any distance
    assert as_num == sorted(as_num), xs


def test_storage_tier_from_mlsysim():
    g = gravity.gravity([10**12], [10], tier="hdd")
    assert g.inputs["disk_write_bandwidth"].source == "mlsysim:Systems.Storage.Hdd7200Rpm.bandwidth"
    assert g.inputs["disk_write_bandwidth"].value == 150
    with pytest.raises(ValueError, match="tape"):
        gravity.gravity(tier="tape")


def test_costs():
    (t,) = gravity.gravity([10**15], [100], disk_write_mb_per_s=100, disk_read_mb_per_s=100).tiers
    assert t.egress_usd == pytest.approx(1e6 * 0.09)
    assert t.drives == 50 and t.drives_usd == pytest.approx(50 * 400)


def test_cli_json(feedtax_cli):
    out = feedtax_cli("gravity", "--size", "1PB", "--link-gbps", "100", "--disk-mb-per-s", "1000", "--assume",
                      "link_efficiency=1", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["tiers"][0]["network_s"] == pytest.approx(80_000)


def test_cli_table_and_errors(feedtax_cli):
    ok = feedtax_cli("gravity", "--distance-km", "100")
    assert ok.exit_code == 0 and "crossover" in ok.output
    bad = feedtax_cli("gravity", "--assume", "nope=1")
    assert bad.exit_code == 2 and "nope" in bad.stderr and bad.stderr.count("\n") == 1


def test_figures():
    from feedtax.reports.mission_figures import sneakernet_crossover, transfer_time_radar

    g = gravity.gravity(disk_write_mb_per_s=2000, disk_read_mb_per_s=2000)
    assert transfer_time_radar(g).axes and sneakernet_crossover(g).axes


@pytest.mark.parametrize("args,message", [
    (["--link-gbps", "0"], "--link-gbps: 0 is not over 0 (use over 0, up to 1000000)"),
    (["--link-gbps", "-10"], "--link-gbps: -10 is not over 0"),
    (["--link-gbps", "nan"], "--link-gbps: nan is not a finite number"),
    (["--distance-km", "-5"], "--distance-km: -5 is under the limit 0 (use 0..40075)"),
    (["--distance-km", "nan"], "--distance-km: nan is not a finite number"),
    (["--disk-mb-per-s", "-3"], "--disk-mb-per-s: -3 is not over 0"),
    (["--disk-mb-per-s", "0"], "--disk-mb-per-s: 0 is not over 0"),  # refused, never a tier's rate
    (["--disk-mb-per-s", "inf"], "--disk-mb-per-s: inf is not a finite number"),
    (["--disk-mb-per-s", "100", "--tier", "hdd"], "not both"),
    (["--tier", "hdd", "--results", "x.json"], "not both"),
    (["--results", "/nonexistent/results.json"], "/nonexistent/results.json"),
    (["--assume", "link_efficiency=0"], "--assume link_efficiency=0: outside its range, over 0, up to 1"),
    (["--assume", "truck_speed_km_per_h=0"], "--assume truck_speed_km_per_h=0: outside its range"),
    (["--assume", "drive_capacity_bytes=-1"], "--assume drive_capacity_bytes=-1: outside its range"),
    (["--assume", "egress_usd_per_gb=nan"], "--assume egress_usd_per_gb=nan: outside its range"),
])
def test_cli_refuses_impossible_inputs_in_one_line(feedtax_cli, args, message):
    out = feedtax_cli("gravity", "--size", "1TB", *args)
    assert out.exit_code == 2 and out.stderr.startswith("feedtax: ") and message in out.stderr
    assert out.stderr.count("\n") == 1
    assert "Traceback" not in out.output


def test_cli_says_where_the_drives_rates_come_from(feedtax_cli, tmp_path):
    given = feedtax_cli("gravity", "--size", "1TB", "--disk-mb-per-s", "900", "--distance-km", "10", "--json")
    inputs = json.loads(given.stdout)["inputs"]
    assert inputs["disk_write_bandwidth"]["source"] == "given (--disk-mb-per-s)"  # typed, not measured
    assert inputs["distance"]["source"] == "given"
    measured = feedtax_cli("gravity", "--size", "1TB", "--json")  # the default: measured now
    disk = json.loads(measured.stdout)["inputs"]["disk_write_bandwidth"]
    assert disk["source"].startswith("measured now") and disk["value"] > 0
    stored = Path(__file__).parent / "data" / "results-v2.json"
    run = json.loads(stored.read_text())
    from_run = feedtax_cli("gravity", "--size", "1TB", "--results", str(stored), "--json")
    disk = json.loads(from_run.stdout)["inputs"]["disk_write_bandwidth"]
    assert disk == {**disk, "value": run["disk"]["seq_write_mb_per_s"], "source": f"measured by run {run['run_id']}"}


def test_a_run_id_from_a_results_file_is_printed_as_text(feedtax_cli, monkeypatch):
    """The drives' source names the run: a run_id holding rich markup or terminal escapes is shown as it is (the
    results reader refuses such a run_id; this holds the table to its part should one get through)."""
    from feedtax import results

    stored = results.load(Path(__file__).parent / "data" / "results-v2.json")
    for run_id in ("[/]", "[link=https://x.example]click[/link]", "r\x1b[31m\u202e"):
        monkeypatch.setattr(results, "load", lambda path, run_id=run_id: stored.model_copy(update={"run_id": run_id}))
        out = feedtax_cli("gravity", "--size", "1TB", "--results", "r.json")
        assert out.exit_code == 0, out.output
        shown = run_id.replace("\x1b", "\\x1b").replace("\u202e", "\\u202e")
        assert f"measuredbyrun{shown})" in "".join(out.stdout.split()), out.stdout  # the title wraps
        assert "\x1b" not in out.output and "\u202e" not in out.output
