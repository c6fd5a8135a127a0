"""The root of results.json: a run's configuration, stages and every section's model."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from feedtax.results.audits import GravityResult, Ledger, SelectionResult
from feedtax.results.feeding import FeedingSummary, LoaderOverhead, LoaderRow
from feedtax.results.probes import DiskResult, EnergyResult, HostInfo, MemoryResult
from feedtax.results.projections import Assumptions, Projection, ValidationRow
from feedtax.stats import Distribution
from feedtax.vocabulary import Format, Track

SCHEMA_VERSION = 1


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
