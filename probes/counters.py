"""Energy over a window from hardware counters: RAPL (Linux powercap) for CPU packages and DRAM, and
NVML's total-energy counter for NVIDIA GPUs. Absent counters are reported absent, with the reason.

Counters are cumulative, so energy is the sum of deltas between readings; a RAPL counter wraps at
max_energy_range_uj, so EnergyMeter also reads in the background often enough to see every wrap.
Windows shorter than a counter's update period are flagged (Zeus warns that such windows read zero):
- RAPL updates about every 1 ms (Intel SDM vol. 3B, "Platform Specific Power Management Support";
  measured by Hähnel et al., "Measuring energy consumption for short code paths using RAPL", 2012).
- NVML documents no update period for nvmlDeviceGetTotalEnergyConsumption; Yang et al., "Part-time
  Power Measurements: nvidia-smi's Lack of Attention" (arXiv:2312.02741, SC'24), found the built-in
  sensor updates about every 100 ms on A100/H100 (sampling 25 ms of each 100 ms), so 100 ms is used.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from feedtax.results.probes import CounterResult, EnergyResult

POWERCAP = Path("/sys/class/powercap")
RAPL_UPDATE_S = 0.001
NVML_ENERGY_UPDATE_S = 0.1
SAMPLE_EVERY_S = 5.0  # background reads: a RAPL range (~262 kJ) lasts minutes even at 1 kW


class CounterError(ValueError):
    """Readings that cannot be turned into energy (a counter that went backwards with no known range)."""


def counter_delta(start: int, end: int, max_range: int | None) -> int:
    """Increase of a cumulative counter from start to end, allowing one wrap at max_range."""
    if end >= start:
        return end - start
    if max_range is None:
        raise CounterError(f"counter went backwards ({start} -> {end}) and has no wrap range (driver reloaded?)")
    if start > max_range:
        raise CounterError(f"reading {start} is above the counter's range {max_range}")
    return max_range - start + end


def counter_total(readings: Sequence[int], max_range: int | None) -> tuple[int, int]:
    """(total increase, wraps seen) over consecutive readings; each gap may hold at most one wrap."""
    total = wraps = 0
    for a, b in pairwise(readings):
        total += counter_delta(a, b, max_range)
        wraps += b < a
    return total, wraps


def window_warning(window_s: float, update_period_s: float) -> str | None:
    """Why a window is too short for a counter that updates every update_period_s, or None."""
    if window_s < update_period_s:
        return (f"window {window_s:.4g} s is shorter than the counter's update period (~{update_period_s:g} s): "
                f"energy may read zero or one whole step")
    if window_s < 10 * update_period_s:
        return (f"window {window_s:.4g} s spans under 10 counter updates (~{update_period_s:g} s each): "
                f"up to {update_period_s / window_s:.0%} quantisation error")
    return None


@dataclass
class _Counter:
    name: str
    source: str
    read: Callable[[], int]
    joules_per_unit: float
    max_range: int | None
    update_period_s: float
    values: list[int] = field(default_factory=list)


def rapl_counters(root: Path = POWERCAP) -> tuple[list[_Counter], str | None]:
    """Readable RAPL zones under root, or ([], why none can be read)."""
    if not root.is_dir():
        return [], f"no {root} directory (no powercap driver: not Linux, not supported, or hidden by a VM/container)"
    zones = sorted(p for p in root.glob("intel-rapl:*") if (p / "energy_uj").exists())
    if not zones:
        return [], f"no RAPL zones with energy_uj under {root}"
    counters = []
    for zone in zones:
        energy = zone / "energy_uj"
        try:
            int(energy.read_text())
            max_range = int((zone / "max_energy_range_uj").read_text())
            name = (zone / "name").read_text().strip()
        except PermissionError:
            return [], f"permission denied reading {energy} (root only since Linux 5.10, CVE-2020-8694)"
        except (OSError, ValueError) as exc:
            return [], f"cannot read {zone}: {exc}"
        parent = zone.name.count(":") > 1 and (root / zone.name.rsplit(":", 1)[0] / "name")
        label = f"{parent.read_text().strip()}/{name}" if parent and parent.exists() else name
        counters.append(_Counter(f"rapl:{label}", "rapl", lambda p=energy: int(p.read_text()), 1e-6, max_range,
                                 RAPL_UPDATE_S))
    return counters, None


def nvml_counters(stack: ExitStack) -> tuple[list[_Counter], str | None]:
    """One counter per GPU whose NVML total-energy counter reads, the session held open by stack."""
    from feedtax.probes.gpu import NvmlUnavailable, nvml_session, total_energy_mj

    try:
        nvml: Any = stack.enter_context(nvml_session())
    except NvmlUnavailable as exc:
        return [], str(exc)
    counters, unsupported = [], []
    try:
        handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
    except nvml.NVMLError as exc:  # a GPU lost or in a bad state: no NVML counters, and say why
        return [], f"NVML could not list the GPUs: {exc}"
    for i, handle in enumerate(handles):
        if total_energy_mj(nvml, handle) is None:
            unsupported.append(i)
            continue
        counters.append(_Counter(f"nvml:gpu{i}", "nvml", lambda h=handle: total_energy_mj(nvml, h), 1e-3, None,
                                 NVML_ENERGY_UPDATE_S))
    if not counters:
        return [], "no GPU supports the total-energy counter" if unsupported else "NVML sees no GPU"
    return counters, None


class EnergyMeter:
    """Context manager: reads every available counter on enter and exit (and in the background every
    sample_every_s, so no wrap is missed); the EnergyResult is in .result after exit."""

    def __init__(self, *, powercap_root: Path = POWERCAP, nvml: bool = True,
                 sample_every_s: float | None = SAMPLE_EVERY_S):
        self.powercap_root, self.use_nvml, self.sample_every_s = powercap_root, nvml, sample_every_s
        self.result: EnergyResult | None = None
        self._counters: list[_Counter] = []
        self._absent: dict[str, str] = {}
        self._stack = ExitStack()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        with self._lock:
            for c in self._counters:
                c.values.append(c.read())

    def _background(self) -> None:
        while not self._stop.wait(self.sample_every_s):
            self.sample()

    def __enter__(self) -> EnergyMeter:
        rapl, why = rapl_counters(self.powercap_root)
        if why:
            self._absent["rapl"] = why
        gpus, why = nvml_counters(self._stack) if self.use_nvml else ([], "not requested")
        if why:
            self._absent["nvml"] = why
        self._counters = rapl + gpus
        self._t0 = time.perf_counter()
        self.sample()
        if self._counters and self.sample_every_s:
            self._thread = threading.Thread(target=self._background, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.sample()
            window = time.perf_counter() - self._t0
            self._stop.set()
            if self._thread:
                self._thread.join()
            self.result = energy_result(self._counters, window, self._absent)
        finally:
            self._stack.close()


def energy_result(counters: list[_Counter], window_s: float, absent: dict[str, str]) -> EnergyResult:
    """Turn the counters' readings over a window into an EnergyResult (pure: no reads)."""
    results, warnings = [], []
    for c in counters:
        warning = window_warning(window_s, c.update_period_s)
        try:
            units, wraps = counter_total(c.values, c.max_range)
            joules = units * c.joules_per_unit
            if units == 0:
                warning = f"{warning}; " if warning else ""
                warning += "counter did not change over the window"
        except CounterError as exc:
            joules, wraps, warning = None, 0, str(exc)
        results.append(CounterResult(
            name=c.name, source=c.source, energy_j=joules,
            average_power_w=joules / window_s if joules is not None and window_s > 0 else None,
            update_period_s=c.update_period_s, readings=len(c.values), wraps=wraps, warning=warning,
        ))
        if warning:
            warnings.append(f"{c.name}: {warning}")

    def total(pick: Callable[[CounterResult], bool]) -> float | None:
        chosen = [r.energy_j for r in results if pick(r)]
        return sum(chosen) if chosen and None not in chosen else None

    return EnergyResult(
        window_s=window_s, counters=results, absent=absent,
        cpu_package_j=total(lambda r: r.source == "rapl" and r.name.removeprefix("rapl:").startswith("package")
                            and "/" not in r.name),
        dram_j=total(lambda r: r.source == "rapl" and r.name.endswith("dram")),
        gpu_j=total(lambda r: r.source == "nvml"),
        warnings=warnings,
    )


def measure_energy(work: Callable[[], object] | float, **meter_args: Any) -> EnergyResult:
    """Energy while work() runs, or over an idle window of `work` seconds."""
    with EnergyMeter(**meter_args) as meter:
        if callable(work):
            work()
        else:
            time.sleep(work)
    return meter.result  # type: ignore[return-value]  # set by __exit__
