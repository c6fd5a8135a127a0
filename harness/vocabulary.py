"""The project's vocabulary: tracks, formats and the named constants every layer shares."""

from __future__ import annotations

from typing import Literal

TRACKS: tuple[str, ...] = ("cloud", "edge", "mobile", "tiny")
FORMATS: tuple[str, ...] = ("csv", "json", "parquet", "protobuf", "raw")
Track = Literal["cloud", "edge", "mobile", "tiny"]
Format = Literal["csv", "json", "parquet", "protobuf", "raw"]

Axis = Literal["compute", "memory", "storage", "network", "radio"]
AXES: tuple[str, ...] = ("compute", "memory", "storage", "network", "radio")
OVERHEAD_TARGET = 0.9  # the check: loader at 1 worker >= 90% of the decode rate
CONVENTION = "bytes read + bytes written per second (a copy of N bytes counts 2N, as STREAM Copy); 1 MB = 1e6 bytes"
