"""feedtax.probes.counters: counter arithmetic on recorded readings (wraps included), and absent counters said so."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedtax.probes import counters as energy
from feedtax.probes.counters import (
    CounterError,
    EnergyMeter,
    _Counter,
    counter_delta,
    counter_total,
    energy_result,
    measure_energy,
    rapl_counters,
    window_warning,
)

RAPL_RANGE_UJ = 262143328850  # max_energy_range_uj as a Skylake-SP package reports it


def test_counter_delta_plain_and_wrapped():
    assert counter_delta(1_000, 4_500, RAPL_RANGE_UJ) == 3_500
    assert counter_delta(RAPL_RANGE_UJ - 100, 50, RAPL_RANGE_UJ) == 150
    with pytest.raises(CounterError, match="went backwards"):
        counter_delta(5_000, 10, None)  # NVML: a 64-bit mJ counter only goes back on a driver reload
    with pytest.raises(CounterError, match="above the counter's range"):
        counter_delta(RAPL_RANGE_UJ + 1, 10, RAPL_RANGE_UJ)


def test_counter_total_over_a_recorded_sequence_with_a_wrap():
    # package-0 read every 5 s at ~60 W: 300 J a step, wrapping between the 3rd and 4th reading
    readings = [261_542_000_000, 261_842_000_000, 262_142_000_000, 298_671_150, 598_671_150]
    total, wraps = counter_total(readings, RAPL_RANGE_UJ)
    assert wraps == 1
    assert total == 300_000_000 * 4


def test_counter_total_without_readings_between():
    assert counter_total([7], RAPL_RANGE_UJ) == (0, 0)
    assert counter_total([10, 10, 10], None) == (0, 0)


def test_window_warning_thresholds():
    assert "shorter than the counter's update period" in window_warning(0.05, 0.1)
    assert "under 10 counter updates" in window_warning(0.5, 0.1)
    assert window_warning(1.0, 0.1) is None
    assert window_warning(0.02, energy.RAPL_UPDATE_S) is None


def fake(name, source, values, unit, max_range, period):
    return _Counter(name, source, lambda: 0, unit, max_range, period, list(values))


def test_energy_result_sums_by_kind():
    counters = [
        fake("rapl:package-0", "rapl", [RAPL_RANGE_UJ - 1_000_000, 2_000_000], 1e-6, RAPL_RANGE_UJ, 0.001),
        fake("rapl:package-0/dram", "rapl", [0, 500_000], 1e-6, RAPL_RANGE_UJ, 0.001),
        fake("nvml:gpu0", "nvml", [10_000, 70_000], 1e-3, None, 0.1),
        fake("nvml:gpu1", "nvml", [10_000, 10_000], 1e-3, None, 0.1),
    ]
    r = energy_result(counters, 2.0, {})
    by = {c.name: c for c in r.counters}
    assert by["rapl:package-0"].energy_j == pytest.approx(3.0) and by["rapl:package-0"].wraps == 1
    assert by["rapl:package-0"].average_power_w == pytest.approx(1.5)
    assert r.cpu_package_j == pytest.approx(3.0)
    assert r.dram_j == pytest.approx(0.5)
    assert r.gpu_j == pytest.approx(60.0)
    assert by["nvml:gpu1"].warning == "counter did not change over the window"


def test_energy_result_flags_short_windows_and_reloads():
    r = energy_result([fake("nvml:gpu0", "nvml", [5_000, 100], 1e-3, None, 0.1)], 0.05, {})
    assert r.counters[0].energy_j is None and "went backwards" in r.counters[0].warning
    assert r.gpu_j is None
    r = energy_result([fake("nvml:gpu0", "nvml", [5_000, 5_004], 1e-3, None, 0.1)], 0.05, {})
    assert "update period" in r.counters[0].warning and r.warnings


def powercap(root: Path, start_uj: int) -> Path:
    zone = root / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "max_energy_range_uj").write_text(f"{RAPL_RANGE_UJ}\n")
    (zone / "energy_uj").write_text(f"{start_uj}\n")
    sub = root / "intel-rapl:0:0"
    sub.mkdir()
    (sub / "name").write_text("dram\n")
    (sub / "max_energy_range_uj").write_text(f"{RAPL_RANGE_UJ}\n")
    (sub / "energy_uj").write_text("1000\n")
    return zone / "energy_uj"


def test_meter_reads_rapl_files_across_a_wrap(tmp_path):
    counter = powercap(tmp_path, RAPL_RANGE_UJ - 2_000_000)
    with EnergyMeter(powercap_root=tmp_path, nvml=False, sample_every_s=None) as meter:
        counter.write_text("3000000\n")
    r = meter.result
    by = {c.name: c for c in r.counters}
    assert set(by) == {"rapl:package-0", "rapl:package-0/dram"}
    assert by["rapl:package-0"].energy_j == pytest.approx(5.0) and by["rapl:package-0"].wraps == 1
    assert r.cpu_package_j == pytest.approx(5.0) and r.dram_j == 0.0
    assert r.absent == {"nvml": "not requested"}


def test_absent_rapl_says_why(tmp_path, monkeypatch):
    assert "no " in rapl_counters(tmp_path / "none")[1]
    assert "no RAPL zones" in rapl_counters(tmp_path)[1]
    powercap(tmp_path / "pc", 0)
    real = Path.read_text

    def denied(self, *a, **kw):
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied")
        return real(self, *a, **kw)

    monkeypatch.setattr(Path, "read_text", denied)
    counters, why = rapl_counters(tmp_path / "pc")
    assert counters == [] and "permission denied" in why and "energy_uj" in why


def test_measure_energy_on_this_machine_reports_absence_or_counters(tmp_path):
    r = measure_energy(0.01, powercap_root=tmp_path / "none")
    assert "no " in r.absent["rapl"]
    has_gpu = any(c.source == "nvml" for c in r.counters)
    assert has_gpu != ("nvml" in r.absent)
    assert r.window_s >= 0.01


def test_nvml_that_cannot_list_its_gpus_gives_no_counters_and_says_why(monkeypatch):
    import sys
    import types
    from contextlib import ExitStack

    fake = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    def lost():
        raise NVMLError("GPU is lost")

    fake.NVMLError, fake.nvmlDeviceGetCount = NVMLError, lost
    fake.nvmlInit = fake.nvmlShutdown = lambda: None
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    with ExitStack() as stack:
        counters, reason = energy.nvml_counters(stack)
    assert counters == [] and "GPU is lost" in reason
