"""A GPU's peak FLOP/s for MFU, from the user or from mlsysim's hardware registry.

mlsysim is imported lazily, inside _mlsysim_nodes (it is slow to import): only when a GPU is present and
no peak was given.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def peak_flops(device_name: str | None, precision: str = "fp32", *, registry: Iterable[Any] | None = None,
               user_peak: float | None = None) -> tuple[float | None, str]:
    """(peak FLOP/s, where it came from) for a GPU name as NVML/torch reports it.

    The registry (default: mlsysim's Hardware.Cloud/Edge nodes, imported lazily: slow) is matched by
    the longest node name contained in the device name ("NVIDIA H100 80GB HBM3" -> "NVIDIA H100").
    A user-given peak wins; with neither, (None, "absent").
    """
    if user_peak:
        return float(user_peak), "given by the user"
    if not device_name:
        return None, "absent: no GPU"
    if registry is None:
        registry = _mlsysim_nodes()
    name = device_name.lower().replace("tesla ", "nvidia ")  # NVML: "Tesla T4", the registry: "NVIDIA T4"
    best = None
    for node in registry:
        node_name = str(getattr(node, "name", "")).lower()
        if node_name and node_name in name and (best is None or len(node_name) > len(best.name)):
            best = node
    if best is None:
        return None, f"absent: {device_name!r} is not in mlsysim's registry (give --peak-tflops)"
    value = (getattr(best.compute, "precision_flops", None) or {}).get(precision)
    if value is None:  # its headline peak is another precision's (a T4's is fp16): never a stand-in
        return None, f"absent: mlsysim's registry has no {precision} peak for {best.name} (give --peak-tflops)"
    flops = float(value.to("flop/s").magnitude) if hasattr(value, "to") else float(value)
    return flops, f"mlsysim registry: {best.name} {precision}"


def _mlsysim_nodes() -> list[Any]:
    """Every node of mlsysim's Hardware.Cloud and Hardware.Edge groups (anything with a name and compute)."""
    from mlsysim import Hardware  # slow import: only when a GPU is present and MFU is asked for

    nodes = []
    for group in (Hardware.Cloud, Hardware.Edge):
        for attr in dir(group):
            node = getattr(group, attr)
            if hasattr(node, "compute") and hasattr(node, "name"):
                nodes.append(node)
    return nodes
