"""NVIDIA GPUs through NVML (the nvidia-ml-py package, imported lazily): name, driver, memory, PCIe
link and the total-energy counter. Where NVML is absent the answer says so and why; nothing is faked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from feedtax.results.probes import GpuInfo, GpuReport


class NvmlUnavailable(Exception):
    """NVML cannot be used here; the message says why."""


@contextmanager
def nvml_session() -> Iterator[Any]:
    """The initialised pynvml module for the duration of the block; raises NvmlUnavailable."""
    try:
        import pynvml
    except ImportError:
        raise NvmlUnavailable("nvidia-ml-py (pynvml) is not installed") from None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:  # e.g. NVML Shared Library Not Found: no NVIDIA driver
        raise NvmlUnavailable(f"NVML did not initialise: {exc}") from None
    try:
        yield pynvml
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:  # a failed shutdown must not hide the block's answer or error, or discard a run
            pass


def _get(nvml: Any, fn: Callable[..., Any], *args: Any) -> Any:
    """A query's answer, or None where this GPU or driver does not support it."""
    try:
        value = fn(*args)
    except nvml.NVMLError:
        return None
    return value.decode() if isinstance(value, bytes) else value


def total_energy_mj(nvml: Any, handle: Any) -> int | None:
    """The GPU's total-energy counter in millijoules, None where unsupported."""
    return _get(nvml, nvml.nvmlDeviceGetTotalEnergyConsumption, handle)


def _gpu_info(nvml: Any, index: int, h: Any) -> GpuInfo:
    """One GPU's description from its handle; each unsupported query is None."""
    memory = _get(nvml, nvml.nvmlDeviceGetMemoryInfo, h)
    return GpuInfo(
        index=index, name=_get(nvml, nvml.nvmlDeviceGetName, h) or "unknown",
        uuid=_get(nvml, nvml.nvmlDeviceGetUUID, h),
        memory_total_bytes=memory.total if memory is not None else None,
        pcie_link_gen_current=_get(nvml, nvml.nvmlDeviceGetCurrPcieLinkGeneration, h),
        pcie_link_gen_max=_get(nvml, nvml.nvmlDeviceGetMaxPcieLinkGeneration, h),
        pcie_link_width_current=_get(nvml, nvml.nvmlDeviceGetCurrPcieLinkWidth, h),
        pcie_link_width_max=_get(nvml, nvml.nvmlDeviceGetMaxPcieLinkWidth, h),
        total_energy_mj=total_energy_mj(nvml, h),
    )


def _describe_gpus(nvml: Any) -> GpuReport:
    """Every GPU of an initialised NVML; a GPU whose handle fails is left out and named in the reason.

    NVML errors here (count, handle) become the report's reason, never a traceback to the caller.
    """
    versions = {"driver_version": _get(nvml, nvml.nvmlSystemGetDriverVersion),
                "nvml_version": _get(nvml, nvml.nvmlSystemGetNVMLVersion)}
    try:
        count = nvml.nvmlDeviceGetCount()
    except nvml.NVMLError as exc:
        return GpuReport(available=False, reason=f"NVML could not count the GPUs: {exc}", **versions)
    gpus, failed = [], []
    for i in range(count):
        try:
            h = nvml.nvmlDeviceGetHandleByIndex(i)
        except nvml.NVMLError as exc:  # e.g. GPU is lost, or no permission on its device node
            failed.append(f"GPU {i}: {exc}")
            continue
        gpus.append(_gpu_info(nvml, i, h))
    reason = f"NVML could not open {len(failed)} of {count} GPUs: " + "; ".join(failed) if failed else None
    return GpuReport(available=bool(gpus) or not failed, reason=reason, gpus=gpus, **versions)


def collect_gpus() -> GpuReport:
    """Describe every GPU NVML sees; available=False with the reason where NVML is absent or fails."""
    try:
        with nvml_session() as nvml:
            return _describe_gpus(nvml)
    except NvmlUnavailable as exc:
        return GpuReport(available=False, reason=str(exc))
