"""Sourced numbers: every model input as {value, unit, source}, measured here, looked up in mlsysim's registry
(source "mlsysim:<dotted path>"), or derived from other sourced numbers; and mlsysim quantities built from them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from feedtax.results.projections import Sourced


def measured(value: float, unit: str = "", note: str | None = None) -> Sourced:
    return Sourced(value=float(value), unit=unit, source="measured", note=note)


def from_mlsysim(path: str, unit: str = "") -> Sourced:
    """A registry value by its dotted path below the mlsysim package, converted to unit; source names the path."""
    import mlsysim

    obj: Any = mlsysim
    for part in path.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    if hasattr(obj, "to"):
        value = obj.to(unit).magnitude if unit else obj.to("").magnitude
    else:
        value = obj
    return Sourced(value=float(value), unit=unit, source=f"mlsysim:{path}")


def from_mlsysim_object(path: str) -> Any:
    """The registry object itself (a hardware node, a model) at a dotted path below the mlsysim package."""
    import mlsysim

    obj: Any = mlsysim
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def derived(value: float, unit: str, parts: Iterable[Sourced], note: str) -> Sourced:
    """A value computed from other sourced values: source "measured" if any part is, else the first part's."""
    parts = list(parts)
    sources = list(dict.fromkeys(s for p in parts for s in [p.source, *p.derived_from]))
    primary = "measured" if "measured" in sources else sources[0]
    return Sourced(value=float(value), unit=unit, source=primary, note=note, derived_from=sources)


def quantity(s: Sourced):
    """A sourced number as an mlsysim (pint) quantity in its unit."""
    from mlsysim.core.units import Q_

    return Q_(s.value, s.unit)


def frame_4k_bytes() -> Sourced:
    """Bytes of one raw 4K RGB frame, from mlsysim's video constants."""
    w = from_mlsysim("core.units.VIDEO_4K_WIDTH")
    h = from_mlsysim("core.units.VIDEO_4K_HEIGHT")
    px = from_mlsysim("core.units.VIDEO_BYTES_PER_PIXEL_RGB", "byte")
    return Sourced(value=w.value * h.value * px.value, unit="byte", source=w.source,
                   derived_from=[w.source, h.source, px.source], note="one raw 4K RGB frame")
