"""The project's vocabulary: tracks, formats, what a metric means, and the named constants every layer shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TRACKS: tuple[str, ...] = ("cloud", "edge", "mobile", "tiny")
FORMATS: tuple[str, ...] = ("csv", "json", "parquet", "protobuf", "raw")
Track = Literal["cloud", "edge", "mobile", "tiny"]
Format = Literal["csv", "json", "parquet", "protobuf", "raw"]

# the energy ledger's axes (EnergyRadar)
Axis = Literal["compute", "memory", "storage", "network", "radio"]
AXES: tuple[str, ...] = ("compute", "memory", "storage", "network", "radio")
CONVENTION = "bytes read + bytes written per second (a copy of N bytes counts 2N, as STREAM Copy); 1 MB = 1e6 bytes"

# the harness's own cost: at 1 worker, the loader should deliver at least this share of the format's decode rate
OVERHEAD_TARGET = 0.9
# model validation names a likely reason where predicted and measured feeding tax differ by more than this
VALIDATION_LIMIT_PP = 10.0

# the Data Gravity Audit's dataset tiers (10 GB -> 10 PB) and link speeds (the lab's slider ends)
DATASET_TIERS_BYTES: tuple[int, ...] = (10**10, 10**12, 10**14, 10**15, 10**16)
LINK_GBPS: tuple[float, ...] = (10.0, 100.0)
SECONDS_PER_HOUR = 3600.0
BYTES_PER_MB = 1e6  # MB means 10^6 bytes everywhere in feedtax
BYTES_PER_GB = 1e9

# one color per format in every figure
FORMAT_COLORS = {"csv": "#d62728", "json": "#ff7f0e", "parquet": "#2ca02c", "protobuf": "#1f77b4", "raw": "#7f7f7f"}


@dataclass(frozen=True)
class Metric:
    """What a results field measures, declared once on the field (``Annotated[float, Metric(...)]``).

    collect's plausibility checks, compare's better/worse and the report's labels all read it.
    better: "higher" (throughputs), "lower" (durations, costs) or None (a setting or a count: no direction).
    low..high: the range a real run on real hardware can produce, and why (shown when a value falls outside).
    """

    unit: str
    better: Literal["higher", "lower"] | None = None
    low: float | None = None
    high: float | None = None
    why: str = ""
