"""The NVML sampler's logic on recorded readings (an injected reader and a fake pynvml module)."""

from __future__ import annotations

import sys
import time
import types

import pytest

from feedtax.probes.nvml import ENERGY_WRAP, NvmlReading, NvmlSampler, energy_delta_mj, summarize_readings

RECORDED = [  # t, util %, power W, energy mJ (wraps between the 3rd and 4th reading)
    (0.0, 0, 60.0, ENERGY_WRAP - 3000),
    (0.1, 50, 200.0, ENERGY_WRAP - 1000),
    (0.2, 100, 300.0, ENERGY_WRAP - 500),
    (0.3, 100, 300.0, 29500),
    (0.4, 0, 80.0, 37500),
]


def _readings(with_energy=True):
    return [NvmlReading(t_s=t, util_gpu_pct=u, power_w=p, energy_mj=e if with_energy else None,
                        mem_used_bytes=1000 * i, sm_clock_mhz=1500, mem_clock_mhz=2600)
            for i, (t, u, p, e) in enumerate(RECORDED)]


def test_energy_delta_handles_wrap():
    assert energy_delta_mj(100, 250) == 150
    assert energy_delta_mj(ENERGY_WRAP - 10, 5) == 15


def test_summary_of_recorded_readings():
    s = summarize_readings(_readings(), period_s=0.1, device_name="Fake GPU")
    assert s.available and s.n == 5 and s.duration_s == pytest.approx(0.4)
    assert s.util_gpu_pct_mean == pytest.approx(50.0) and s.util_gpu_pct_median == 50
    assert s.idle_fraction == pytest.approx(0.5) and s.zero_util_fraction == pytest.approx(0.4)
    assert s.energy_j == pytest.approx((3000 + 37500) / 1000) and "counter" in s.energy_source
    assert s.mem_used_bytes_max == 4000 and s.power_w_mean == pytest.approx(188.0)
    assert "coarse duty cycle" in s.label


def test_energy_from_power_when_the_counter_is_absent():
    s = summarize_readings(_readings(with_energy=False))
    # trapezoid over (60,200,300,300,80) W at 0.1 s steps
    assert s.energy_j == pytest.approx(0.1 * (130 + 250 + 300 + 190)) and "trapezoid" in s.energy_source


def test_utilization_only_from_readings_past_nvmls_averaging_period():
    """A reading averages NVML's last period (up to 1 s): the idle GPU before the run must not count."""
    idle_then_busy = [NvmlReading(t_s=t / 10, util_gpu_pct=0.0 if t < 10 else 80.0, power_w=100.0) for t in range(25)]
    s = summarize_readings(idle_then_busy, settle_s=1.0)
    assert s.util_gpu_pct_mean == 80.0 and s.idle_fraction == pytest.approx(0.2) and s.reason is None
    assert s.power_w_mean == 100.0  # power and energy use every reading
    short = summarize_readings(idle_then_busy[:6], settle_s=1.0)
    assert short.util_gpu_pct_mean is None and short.idle_fraction is None and "measure more steps" in short.reason


def test_empty_readings_say_so():
    s = summarize_readings([])
    assert s.n == 0 and s.util_gpu_pct_mean is None and s.reason


def test_sampler_thread_with_injected_reader():
    fields = iter([{"util_gpu_pct": u, "energy_mj": e} for _, u, _, e in RECORDED * 200])
    sampler = NvmlSampler(period_s=0.005, reader=lambda: next(fields), device_name="Fake GPU")
    sampler.start()
    time.sleep(0.05)
    s = sampler.stop()
    assert s.available and s.n >= 3 and s.device_name == "Fake GPU"
    ts = [r.t_s for r in s.readings]
    assert ts == sorted(ts)


def _fake_pynvml(fail_init: bool, fail_handle: bool = False):
    """A pynvml stand-in; m.shutdowns counts nvmlShutdown calls."""
    m = types.ModuleType("pynvml")
    m.shutdowns = 0

    class NVMLError(Exception):
        pass

    m.NVMLError = NVMLError
    m.NVML_CLOCK_SM, m.NVML_CLOCK_MEM = 1, 2

    def init():
        if fail_init:
            raise NVMLError("NVML Shared Library Not Found")

    def shutdown():
        m.shutdowns += 1

    def handle(i):
        if fail_handle:
            raise NVMLError("GPU is lost")
        return "h"

    m.nvmlInit, m.nvmlShutdown = init, shutdown
    m.nvmlDeviceGetHandleByIndex = handle
    m.nvmlDeviceGetHandleByPciBusId = lambda bus: f"bus {bus}"
    m.nvmlDeviceGetHandleByUUID = lambda uuid: f"uuid {uuid}"
    m.nvmlDeviceGetName = lambda h: b"Fake H100"
    m.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=70, memory=20)
    m.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=123, total=1000)
    m.nvmlDeviceGetPowerUsage = lambda h: 250000  # mW
    m.nvmlDeviceGetTotalEnergyConsumption = lambda h: 5000

    def unsupported(h, clock):
        raise NVMLError("Not Supported")

    m.nvmlDeviceGetClockInfo = unsupported
    return m


def test_pynvml_reader_over_a_fake_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(fail_init=False))
    sampler = NvmlSampler(period_s=0.01)
    assert sampler.available and sampler.device_name == "Fake H100"
    sampler.start()
    time.sleep(0.03)
    s = sampler.stop()
    r = s.readings[0]
    assert r.util_gpu_pct == 70 and r.power_w == 250.0 and r.mem_used_bytes == 123 and r.sm_clock_mhz is None
    assert s.energy_j == 0.0


def test_reader_finds_the_gpu_by_bus_id_or_uuid(monkeypatch):
    """CUDA_VISIBLE_DEVICES renumbers CUDA's GPUs: the sampler must be able to name NVML's by id."""
    fake = _fake_pynvml(fail_init=False)
    handles = []
    fake.nvmlDeviceGetName = lambda h: handles.append(h) or b"Fake H100"
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    cases = ((None, "h"), ("00000000:3b:00.0", "bus 00000000:3b:00.0"), ("GPU-1234", "uuid GPU-1234"))
    for device_id, expected in cases:
        NvmlSampler(index=3, device_id=device_id).close()
        assert handles[-1] == expected


def test_absent_nvml_is_reported_not_faked(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(fail_init=True))
    sampler = NvmlSampler()
    sampler.start()
    s = sampler.stop()
    assert not s.available and "did not initialise" in s.reason and s.n == 0


def test_reader_releases_nvml_when_the_handle_fails(monkeypatch):
    fake = _fake_pynvml(fail_init=False, fail_handle=True)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    sampler = NvmlSampler(index=3)
    assert not sampler.available and "GPU 3" in sampler.reason and "GPU is lost" in sampler.reason
    assert fake.shutdowns == 1  # nvmlInit succeeded, so it must be matched by one nvmlShutdown


def test_context_manager_stops_the_thread_and_closes_on_error(monkeypatch):
    fake = _fake_pynvml(fail_init=False)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    with pytest.raises(RuntimeError, match="run failed"):
        with NvmlSampler(period_s=0.005) as sampler:
            sampler.start()
            thread = sampler._thread
            raise RuntimeError("run failed")
    assert not thread.is_alive() and fake.shutdowns == 1
    sampler.close()  # closing again is harmless: NVML is released once
    assert fake.shutdowns == 1


def test_stop_before_start_says_so():
    s = NvmlSampler(reader=lambda: {"util_gpu_pct": 1}).stop()
    assert s.available and s.n == 0 and "never started" in s.reason


def test_stop_after_the_reader_failed_keeps_earlier_readings():
    calls = iter(range(1000))

    def flaky():
        if next(calls) >= 2:
            raise RuntimeError("driver went away")
        return {"util_gpu_pct": 50}

    sampler = NvmlSampler(period_s=0.001, reader=flaky, settle_s=0.0)
    sampler.start()
    sampler._thread.join(timeout=5)  # the loop ends by itself at the reader's error
    s = sampler.stop()
    assert s.n == 2 and s.util_gpu_pct_mean == 50 and "driver went away" in s.reason
    assert sampler.stop().n == 2  # stopping twice is harmless
