"""The root of results.json: a run's configuration, stages and every section's model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from feedtax.results.audits import GravityResult, Ledger, SelectionResult
from feedtax.results.feeding import DatasetRead, FeedingSummary, LoaderOverhead, LoaderRow, WorkerCount
from feedtax.results.loaders import LoaderGap
from feedtax.results.metrics import RUN_SETTING_S, SHARD_SAMPLES, AtLeastOne, Seed
from feedtax.results.pipeline import PipelineResult
from feedtax.results.probes import DiskResult, EnergyResult, HostInfo, MemoryResult
from feedtax.results.projections import Assumptions, Projection, ValidationRow
from feedtax.results.tiers import DiskTierResult
from feedtax.stats import Distribution
from feedtax.vocabulary import (
    BYTES,
    BYTES_PER_SAMPLE,
    COMPRESSION_RATIO,
    COUNT,
    DURATION_S,
    FRACTION,
    MB_PER_S,
    SAMPLES_PER_S,
    Format,
    Track,
)

SCHEMA_VERSION = 7  # what each version changed: docs/results-schema.md; older files: feedtax.results.migrations
# a count; collect's samples_per_s name pattern also matched this name, so that rule's upper bound (1e9) is kept
SampleSize = Annotated[int, Field(ge=1, le=10**9)]  # one dimension of a synthetic sample (a length, a side)
# the sections a run measured (two runs that hold the same are one run, whatever their run_ids); the rest is settings,
# provenance, or modelled from these (projections, gravity, the energy ledger, model validation)
MEASURED_SECTIONS = ("disk", "memory", "formats", "transforms", "loader", "feeding", "selection", "energy", "pipeline",
                     "disk_tiers")


class CacheState(BaseModel):
    """How the cold reads were made cold, and whether mincore confirmed it."""

    method: str
    evicted: bool
    resident_fraction_max: Annotated[float | None, FRACTION] = Field(
        description="worst page residency seen right after eviction")


class FormatResult(BaseModel):
    """What one format costs for one track's samples: size on disk, encode and decode speed (one process)."""

    track: Track
    format: Format
    n_samples: AtLeastOne = Field(
        description="samples measured: all the track's, or fewer whole shards for a format too slow for the budget")
    n_shards: AtLeastOne
    bytes_on_disk: Annotated[int, BYTES]
    bytes_per_sample: Annotated[float, BYTES_PER_SAMPLE]
    raw_bytes_per_sample: Annotated[int, BYTES_PER_SAMPLE] = Field(description="the sample's in-memory size")
    compression_ratio: Annotated[float, COMPRESSION_RATIO] = Field(
        description="raw bytes / bytes on disk (>1: smaller than raw)")
    random_access: bool
    encode_samples_per_s: Annotated[Distribution, SAMPLES_PER_S]
    encode_mb_per_s: Annotated[Distribution, MB_PER_S] = Field(
        description="shard bytes written per second, 1e6 bytes/s")
    decode_samples_per_s_cold: Annotated[Distribution, SAMPLES_PER_S]
    decode_mb_per_s_cold: Annotated[Distribution, MB_PER_S] = Field(
        description="shard bytes read per second, 1e6 bytes/s")
    decode_samples_per_s_warm: Annotated[Distribution, SAMPLES_PER_S]
    decode_mb_per_s_warm: Annotated[Distribution, MB_PER_S]
    cold_cache: CacheState


class TransformResult(BaseModel):
    """The track's per-sample transform (the loader's prep stage), one process, warm data."""

    track: Track
    transform: str
    samples_per_s: Annotated[Distribution, SAMPLES_PER_S]


class Feeding(BaseModel):
    """The sweep's conclusions: the flow equilibrium per track and format, and where the wait comes from."""

    flow_equilibrium: dict[str, dict[str, WorkerCount | None]] = Field(
        description="track -> format -> smallest measured worker count (>= 1) whose ingestion keeps up with the "
        "consumer; null: never")
    summaries: list[FeedingSummary] = []
    shards: dict[str, Annotated[int, Field(ge=1, le=10**12)]] = Field(
        default_factory=dict, description="track -> shards per format the sweep streamed "
        "(at least 2 per worker, so stream-only formats can keep every worker busy)")
    loader_overhead: list[LoaderOverhead] = Field(
        default_factory=list,
        description="1-worker loader throughput vs the format stage's decode rate of the same shards")
    loader_gaps: list[LoaderGap] = Field(
        default_factory=list, description="points where the default loader trails the tuned one by more than "
        "GAP_PP: the costs that differ and the fixes tried")
    datasets: list[DatasetRead] = Field(
        default_factory=list, description="with --dataset-size: the sweep's datasets on disk, their first read and "
        "how the points read them; empty: the sweep's shards were profile-sized")


class Stage(BaseModel):
    name: str
    status: Literal["running", "complete", "interrupted", "failed"]
    started_utc: str
    elapsed_s: Annotated[float | None, DURATION_S] = None
    error: str | None = None


class RunConfig(BaseModel):
    """The run's settings. A pipeline sweep (`feedtax sweep --dataset`) measures no formats and writes 0 for the
    format stage's counts; a run that measured formats has at least 1 of each (results.plausible)."""

    profile: str
    seed: Seed
    tracks: list[Track]
    formats: list[Format]
    samples_per_track: Annotated[int, COUNT]
    samples_per_shard: Annotated[int, SHARD_SAMPLES]
    warmups: Annotated[int, COUNT]
    repeats: Annotated[int, COUNT]
    min_time_s: Annotated[float, RUN_SETTING_S]
    disk_probe_bytes: Annotated[int | None, BYTES] = None
    memory_probe_bytes: Annotated[int | None, BYTES] = None
    format_budget_s: Annotated[float | None, RUN_SETTING_S] = Field(
        None, description="per track x format; slower formats are measured on fewer samples")
    sizes: dict[str, SampleSize | list[SampleSize]] = Field(description="the synthetic samples' dimensions")
    sweep: dict | None = Field(
        None, description="the DataLoader sweep's plan: tracks, formats, batch size, steps, consumer step")
    data_dir: str
    dataset_bytes: Annotated[int | None, BYTES] = Field(
        None, description="--dataset-size: each swept track x format's bytes on disk; None: profile-sized shards")


class Merged(BaseModel):
    """`feedtax run --repeat N`: this document merges N runs of one profile on one host (feedtax.classroom.merge), so a
    test on it sees the spread between runs. Each Distribution is over the runs' medians (n = runs), each compared
    single value is their median, its spread under `spreads`; what is not compared is the first run's."""

    runs: AtLeastOne = Field(description="the runs merged")
    run_ids: list[str] = Field(description="their run_ids, in the order they ran (OUT/repeats/run-K.json)")
    method: Literal["medians"] = Field("medians", description="each metric over the runs' medians, n = runs")
    spreads: dict[str, Distribution] = Field(
        default_factory=dict, description="metric name (as `feedtax compare --all` prints it) -> its values over the "
        "runs, for metrics a run holds as one number (a loader row's samples_per_s): compare tests these")


class Results(BaseModel):
    schema_version: Literal[7] = SCHEMA_VERSION
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
    loader: list[LoaderRow] = Field(
        default_factory=list, description="the worker sweep: one row per track x format x loader x workers")
    feeding: Feeding | None = None
    selection: SelectionResult | None = Field(None, description="the Zero-Waste experiment: noisy many vs curated few")
    assumptions: Assumptions | None = Field(None, description="every assumption the projections used, with its source")
    projections: dict[str, Projection] = Field(
        default_factory=dict, description="per track: the mission through mlsysim")
    model_validation: list[ValidationRow] = []
    gravity: GravityResult | None = None
    energy_ledger: Ledger | None = None
    energy: EnergyResult | None = Field(
        None, description="energy counters over the measuring stages; absent ones say why")
    pipeline: PipelineResult | None = Field(None, description="`feedtax sweep --dataset`: a user's own pipeline swept")
    disk_tiers: DiskTierResult | None = Field(None, description="`feedtax sweep --disk-tier`: the tuned loader at "
                                              "emulated storage tiers, and the format-or-disk answer")
    merged: Merged | None = Field(None, description="`feedtax run --repeat N`: the runs this one merges; None: one run")

    def measurements_sha256(self) -> str:
        """What identifies a run's measurements, whatever its run_id: the SHA-256 of the canonical JSON of its measured
        sections (MEASURED_SECTIONS: as the model holds them, keys sorted, so neither formatting, nor key order, nor
        5 vs 5.0 matter). Settings, host, stages, timestamps and what is modelled from the measurements are left out."""
        import hashlib

        import orjson

        measured = self.model_dump(mode="json", include=set(MEASURED_SECTIONS))
        return hashlib.sha256(orjson.dumps(measured, option=orjson.OPT_SORT_KEYS)).hexdigest()

    def tuned_rows(self) -> list[LoaderRow]:
        """The sweep's rows for feedtax's tuned loader: what the equilibrium, fits and projections stand on."""
        return [r for r in self.loader if r.loader == "tuned"]

    def tuned_summaries(self) -> list[FeedingSummary]:
        return [s for s in self.feeding.summaries if s.loader == "tuned"] if self.feeding else []
