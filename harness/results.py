"""The versioned schema of one run's results.json, and its stage-by-stage, crash-safe writing.

Each stage appends to the Results object and save() replaces the file atomically, so an
interrupted run leaves the last complete state on disk, valid against the schema.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from harness.assumptions import Assumptions
from harness.calibrate import Projection, ValidationRow
from harness.energy import Ledger
from harness.gravity import GravityResult
from harness.selection import SelectionResult
from harness.stats import Distribution
from harness.sweep import FeedingSummary, LoaderOverhead, LoaderRow
from probes.disk import DiskResult
from probes.energy import EnergyResult
from probes.host import HostInfo
from probes.memory import MemoryResult

SCHEMA_VERSION = 1

Track = Literal["cloud", "edge", "mobile", "tiny"]
Format = Literal["csv", "json", "parquet", "protobuf", "raw"]


class CacheState(BaseModel):
    """How the cold reads were made cold, and whether mincore confirmed it."""

    method: str
    evicted: bool
    resident_fraction_max: float | None = Field(description="worst page residency seen right after eviction")


class FormatResult(BaseModel):
    """What one format costs for one track's samples: size on disk, encode and decode speed (one process)."""

    track: Track
    format: Format
    n_samples: int = Field(description="samples measured: all the track's, or fewer whole shards for a format too slow for the budget")
    n_shards: int
    bytes_on_disk: int
    bytes_per_sample: float
    raw_bytes_per_sample: int = Field(description="the sample's in-memory size")
    compression_ratio: float = Field(description="raw bytes / bytes on disk (>1: smaller than raw)")
    random_access: bool
    encode_samples_per_s: Distribution
    encode_mb_per_s: Distribution = Field(description="shard bytes written per second, 1e6 bytes/s")
    decode_samples_per_s_cold: Distribution
    decode_mb_per_s_cold: Distribution = Field(description="shard bytes read per second, 1e6 bytes/s")
    decode_samples_per_s_warm: Distribution
    decode_mb_per_s_warm: Distribution
    cold_cache: CacheState


class TransformResult(BaseModel):
    """The track's per-sample transform (the loader's prep stage), one process, warm data."""

    track: Track
    transform: str
    samples_per_s: Distribution


class Feeding(BaseModel):
    """The sweep's conclusions: the flow equilibrium per track and format, and where the wait comes from."""

    flow_equilibrium: dict[str, dict[str, int | None]] = Field(
        description="track -> format -> smallest measured worker count (>= 1) whose ingestion keeps up with the consumer; null: never")
    summaries: list[FeedingSummary] = []
    shards: dict[str, int] = Field(default_factory=dict, description="track -> shards per format the sweep streamed "
                                   "(at least 2 per worker, so stream-only formats can keep every worker busy)")
    loader_overhead: list[LoaderOverhead] = Field(
        default_factory=list, description="1-worker loader throughput vs the format stage's decode rate of the same shards")


class Stage(BaseModel):
    name: str
    status: Literal["running", "complete", "interrupted", "failed"]
    started_utc: str
    elapsed_s: float | None = None
    error: str | None = None


class RunConfig(BaseModel):
    profile: str
    seed: int
    tracks: list[Track]
    formats: list[Format]
    samples_per_track: int
    samples_per_shard: int
    warmups: int
    repeats: int
    min_time_s: float
    disk_probe_bytes: int | None = None
    memory_probe_bytes: int | None = None
    format_budget_s: float | None = Field(None, description="per track x format; slower formats are measured on fewer samples")
    sizes: dict[str, int | list[int]]
    sweep: dict | None = Field(None, description="the DataLoader sweep's plan: tracks, formats, batch size, steps, consumer step")
    data_dir: str


class Results(BaseModel):
    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: str
    profile: str
    created_utc: str
    status: Literal["running", "complete", "interrupted", "failed"] = "running"
    host: HostInfo
    config: RunConfig
    stages: list[Stage] = []
    disk: DiskResult | None = Field(None, description="the data directory's disk: sequential and random reads, writes")
    memory: MemoryResult | None = None
    formats: list[FormatResult] = []
    transforms: list[TransformResult] = []
    loader: list[LoaderRow] = Field(default_factory=list, description="the worker sweep: one row per track x format x workers")
    feeding: Feeding | None = None
    selection: SelectionResult | None = Field(None, description="the Zero-Waste experiment: noisy many vs curated few")
    assumptions: Assumptions | None = Field(None, description="every assumption the projections used, with its source")
    projections: dict[str, Projection] = Field(default_factory=dict, description="per track: the mission through mlsysim")
    model_validation: list[ValidationRow] = []
    gravity: GravityResult | None = None
    energy_ledger: Ledger | None = None
    energy: EnergyResult | None = Field(None, description="energy counters over the measuring stages; absent ones say why")


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id() -> str:
    """Sortable and unique: UTC time plus random suffix."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def json_schema() -> dict:
    return Results.model_json_schema()


def write_atomic(path: Path, data: bytes, *, durable: bool) -> None:
    """Replace path with data via a temp file and rename, so a reader sees the old file or the new one,
    never half of one; durable also fsyncs the file and its directory (the rename survives a crash)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def save(results: Results, path: Path) -> None:
    """Write results.json atomically and durably (it is what a stopped run leaves)."""
    write_atomic(path, results.model_dump_json(indent=2).encode(), durable=True)


class ResultsFileError(ValueError):
    """A results file that cannot be used: names the file and what is wrong."""


def load(path: Path) -> Results:
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return Results.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        raise ResultsFileError(f"{path}: not a valid feedtax results file (schema {SCHEMA_VERSION}): {where}: {first['msg']} ({exc.error_count()} problem(s))") from None
