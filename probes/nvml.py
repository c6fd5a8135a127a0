"""A background NVML sampler: GPU utilization, memory, power, energy and clocks at a fixed period.

NVML's "utilization.gpu" is a coarse duty cycle: the percent of the last sample period (1/6 s to 1 s
depending on the GPU) during which at least one kernel ran. It says nothing about how full the SMs
were, so it is labelled as such and cross-checked against the timing-based feeding tax.
pynvml is imported lazily; without it (or without a driver) the sampler is absent, never faked.
The reader is injectable, so the summary logic is tested on recorded readings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from itertools import pairwise

import numpy as np
from pydantic import BaseModel, Field

UTILIZATION_LABEL = "NVML utilization.gpu: coarse duty cycle (share of time any kernel ran), not SM occupancy"
ENERGY_WRAP = 2**64  # nvmlDeviceGetTotalEnergyConsumption is an unsigned long long of mJ
# utilization.gpu averages over NVML's last sample period, up to 1 s: earlier readings include the time before
SETTLE_S = 1.0


class NvmlReading(BaseModel):
    """One sample. Any field NVML could not give is None."""

    t_s: float
    util_gpu_pct: float | None = None
    util_mem_pct: float | None = None
    mem_used_bytes: int | None = None
    power_w: float | None = None
    energy_mj: int | None = None
    sm_clock_mhz: float | None = None
    mem_clock_mhz: float | None = None


class NvmlSummary(BaseModel):
    available: bool
    reason: str | None = None
    label: str = UTILIZATION_LABEL
    device_name: str | None = None
    period_s: float | None = None
    n: int = 0
    duration_s: float | None = None
    util_gpu_pct_mean: float | None = None
    util_gpu_pct_median: float | None = None
    idle_fraction: float | None = Field(None, description="1 - mean utilization / 100 (NVML duty cycle)")
    zero_util_fraction: float | None = Field(None, description="share of readings at 0% utilization")
    mem_used_bytes_max: int | None = None
    power_w_mean: float | None = None
    energy_j: float | None = Field(None, description="energy counter delta (wrap handled), else power integrated")
    energy_source: str | None = None
    sm_clock_mhz_median: float | None = None
    mem_clock_mhz_median: float | None = None
    readings: list[NvmlReading] = []


def energy_delta_mj(first: int, last: int, wrap: int = ENERGY_WRAP) -> int:
    """last - first of a wrapping counter (one wrap at most between the two readings)."""
    return last - first if last >= first else last + wrap - first


def summarize_readings(readings: list[NvmlReading], *, period_s: float | None = None,
                       device_name: str | None = None, keep: bool = True, settle_s: float = 0.0) -> NvmlSummary:
    """Utilization, idle fraction, memory, power and energy over recorded readings. Utilization
    comes only from readings at least settle_s into the run: NVML averages each over its own last
    period, so an earlier one also covers time before the run. Energy and power use every reading."""
    if not readings:
        return NvmlSummary(available=True, reason="no readings taken (run shorter than one period?)",
                           period_s=period_s, device_name=device_name)

    def values(name: str, since_s: float = 0.0) -> np.ndarray:
        return np.array([getattr(r, name) for r in readings if getattr(r, name) is not None and r.t_s >= since_s],
                        dtype=np.float64)

    util, power = values("util_gpu_pct", settle_s), values("power_w")
    reason = None
    if not util.size and values("util_gpu_pct").size:
        reason = (f"no utilization: the run lasted {readings[-1].t_s - readings[0].t_s:.2f} s, and NVML's reading "
                  f"covers up to {settle_s:.0f} s before it (measure more steps)")
    mem, sm, mclk = values("mem_used_bytes"), values("sm_clock_mhz"), values("mem_clock_mhz")
    energy = [r.energy_mj for r in readings if r.energy_mj is not None]
    energy_j, source = None, None
    if len(energy) >= 2:
        total = sum(energy_delta_mj(a, b) for a, b in pairwise(energy))  # each step may wrap
        energy_j, source = total / 1000.0, "NVML total energy counter delta"
    elif power.size >= 2:
        pts = [(r.t_s, r.power_w) for r in readings if r.power_w is not None]
        t, p = np.array(pts).T
        energy_j, source = float(np.sum((p[1:] + p[:-1]) / 2 * np.diff(t))), "power integrated (trapezoid)"
    return NvmlSummary(
        available=True, reason=reason, device_name=device_name, period_s=period_s, n=len(readings),
        duration_s=readings[-1].t_s - readings[0].t_s,
        util_gpu_pct_mean=float(util.mean()) if util.size else None,
        util_gpu_pct_median=float(np.median(util)) if util.size else None,
        idle_fraction=float(1 - util.mean() / 100) if util.size else None,
        zero_util_fraction=float(np.mean(util == 0)) if util.size else None,
        mem_used_bytes_max=int(mem.max()) if mem.size else None,
        power_w_mean=float(power.mean()) if power.size else None,
        energy_j=energy_j, energy_source=source,
        sm_clock_mhz_median=float(np.median(sm)) if sm.size else None,
        mem_clock_mhz_median=float(np.median(mclk)) if mclk.size else None,
        readings=readings if keep else [],
    )


def pynvml_reader(index: int = 0, device_id: str | None = None) -> tuple[Callable[[], dict], Callable[[], None], str]:
    """(read, close, device name) over pynvml for one GPU, by index or by device_id (a PCI bus id
    "0000:3b:00.0" or a UUID "GPU-..."); raises NvmlUnavailable where absent."""
    from feedtax.probes.gpu import NvmlUnavailable, nvml_session

    session = ExitStack()  # NVML held open until close(): the sampler's lifetime, not a with-block's
    pynvml = session.enter_context(nvml_session())
    try:
        if device_id is None:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        elif device_id.startswith("GPU-"):
            handle = pynvml.nvmlDeviceGetHandleByUUID(device_id)
        else:
            handle = pynvml.nvmlDeviceGetHandleByPciBusId(device_id)
    except pynvml.NVMLError as exc:
        session.close()  # initialised: release it, or NVML stays held for the process
        raise NvmlUnavailable(f"NVML has no usable GPU {device_id or index}: {exc}") from None

    def get(fn, *args):
        try:
            return fn(handle, *args)
        except pynvml.NVMLError:
            return None

    name = get(pynvml.nvmlDeviceGetName)
    name = name.decode() if isinstance(name, bytes) else name

    def read() -> dict:
        util, mem = get(pynvml.nvmlDeviceGetUtilizationRates), get(pynvml.nvmlDeviceGetMemoryInfo)
        power = get(pynvml.nvmlDeviceGetPowerUsage)
        return {
            "util_gpu_pct": util.gpu if util is not None else None,
            "util_mem_pct": util.memory if util is not None else None,
            "mem_used_bytes": mem.used if mem is not None else None,
            "power_w": power / 1000.0 if power is not None else None,
            "energy_mj": get(pynvml.nvmlDeviceGetTotalEnergyConsumption),
            "sm_clock_mhz": get(pynvml.nvmlDeviceGetClockInfo, pynvml.NVML_CLOCK_SM),
            "mem_clock_mhz": get(pynvml.nvmlDeviceGetClockInfo, pynvml.NVML_CLOCK_MEM),
        }

    return read, session.close, name or "unknown"


class NvmlSampler:
    """Reads the GPU every period_s on a daemon thread between start() and stop().

    reader: a function returning a reading's fields as a dict (tests inject recorded ones); by
    default pynvml. Where NVML is absent, start() does nothing and stop() says why. As a context
    manager, leaving the block (normally or by an exception) stops the thread and closes NVML.
    """

    def __init__(self, period_s: float = 0.05, index: int = 0, reader: Callable[[], dict] | None = None,
                 device_name: str | None = None, keep_readings: bool = True, device_id: str | None = None,
                 settle_s: float = SETTLE_S):
        self.period_s, self.index, self.keep, self.settle_s = period_s, index, keep_readings, settle_s
        self._reader, self._close, self.device_name = reader, None, device_name
        self.reason: str | None = None
        self.readings: list[NvmlReading] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0: float | None = None
        self._error: str | None = None
        if reader is None:
            from feedtax.probes.gpu import NvmlUnavailable

            try:
                self._reader, self._close, self.device_name = pynvml_reader(index, device_id)
            except NvmlUnavailable as exc:
                self.reason = str(exc)

    def __enter__(self) -> NvmlSampler:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def available(self) -> bool:
        return self._reader is not None

    def _read(self) -> bool:
        """Append one reading; False (the error kept for the summary) where the reader raised."""
        try:
            fields = self._reader()
        except Exception as exc:  # a reader failure ends sampling; it must not kill the run
            self._error = f"reader failed after {len(self.readings)} readings: {exc!r}"
            return False
        self.readings.append(NvmlReading(t_s=time.perf_counter() - self._t0, **fields))
        return True

    def _loop(self) -> None:
        next_t = self._t0
        while not self._stop.is_set() and self._read():
            next_t += self.period_s
            self._stop.wait(max(0.0, next_t - time.perf_counter()))

    def _halt(self) -> bool:
        """Stop and join the thread; whether one was running."""
        thread, self._thread = self._thread, None
        if thread is None:
            return False
        self._stop.set()
        thread.join()
        return True

    def start(self) -> None:
        if not self.available or self._thread is not None:
            return
        self.readings, self._stop, self._t0, self._error = [], threading.Event(), time.perf_counter(), None
        self._thread = threading.Thread(target=self._loop, name="nvml-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> NvmlSummary:
        """The summary of the readings so far; safe before start(), twice, or after a reader error."""
        if not self.available:
            return NvmlSummary(available=False, reason=self.reason)
        if self._t0 is None:
            return NvmlSummary(available=True, reason="the sampler was never started",
                               period_s=self.period_s, device_name=self.device_name)
        if self._halt() and self._error is None:
            self._read()  # a last reading at the end of the measured span
        summary = summarize_readings(self.readings, period_s=self.period_s, device_name=self.device_name,
                                     keep=self.keep, settle_s=self.settle_s)
        return summary.model_copy(update={"reason": self._error}) if self._error else summary

    def close(self) -> None:
        """Stop a running thread, then release NVML (once)."""
        self._halt()
        if self._close is not None:
            close, self._close = self._close, None
            close()


def cuda_sampler(device: str) -> Callable[[], NvmlSampler]:
    """NVML samplers for the consumer's GPU, found by PCI bus id (else UUID): CUDA_VISIBLE_DEVICES
    renumbers CUDA's devices, so CUDA's index need not be NVML's."""
    import torch

    dev = torch.device(device)
    props = torch.cuda.get_device_properties(dev)
    if all(hasattr(props, a) for a in ("pci_domain_id", "pci_bus_id", "pci_device_id")):
        device_id = f"{props.pci_domain_id:08x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}.0"
    elif getattr(props, "uuid", None) is not None:
        device_id = f"GPU-{props.uuid}"
    else:
        device_id = None  # NVML's index, as CUDA's: right unless CUDA_VISIBLE_DEVICES reorders
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    return lambda: NvmlSampler(index=index, device_id=device_id)
