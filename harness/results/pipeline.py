"""The sweep over a user's own pipeline (`feedtax sweep --dataset`): the factory swept, its settings, and per batch
size the loader rows, the flow equilibrium, the USL fit, the wait breakdown and the transport cost."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from feedtax.results.feeding import LoaderRow, RankFeeding, ScalingFit, TransportCost, WaitBreakdown, WorkerCount
from feedtax.results.metrics import BATCH_S, MAX_WORKERS, AtLeastOne, Workers
from feedtax.vocabulary import COUNT, DURATION_S, SAMPLES_PER_S

PIPELINE_TRACK = "pipeline"  # the track of a user pipeline's rows, fits and breakdowns (its format: the factory's name)


class PipelineConsumer(BaseModel):
    """What the pipeline fed: an emulated accelerator busy step_s per batch, or the user's own train_step(batch),
    timed by feedtax (CUDA synchronised around it on a GPU)."""

    kind: Literal["emulated", "train_step"]
    step_s: Annotated[float | None, DURATION_S] = Field(None, description="emulated: seconds busy per batch")
    train_step: str | None = Field(None, description="train_step: its import path, package.module:function")
    device: str = Field(description="where the consumer runs: emulated, cpu or cuda")


class GetitemTiming(BaseModel):
    """The user's __getitem__ timed inside the DataLoader's workers (a wrapping Dataset sums its seconds in shared
    memory), over the same samples read twice: the first read, then warm (the page cache holds what the first read).
    Per batch: the seconds of a batch's __getitem__ calls added up (one worker makes a batch)."""

    num_workers: Workers
    n_samples: AtLeastOne = Field(description="samples per pass")
    first_getitem_s_per_batch: Annotated[float, BATCH_S]
    warm_getitem_s_per_batch: Annotated[float, BATCH_S] = Field(description="median of the warm passes")
    first_read: bool = Field(description="the first pass read samples this sweep had not read before (else it was "
                             "warm too, and no fetch cost can show)")


class PointRanks(BaseModel):
    """One (batch size, workers) point under torchrun, measured on every rank: each rank's feeding of the consumer,
    and the slowest rank, whose figures the point's row carries (the job's pace)."""

    batch_size: AtLeastOne
    num_workers: Workers
    slowest_rank: Annotated[int, COUNT] = Field(
        description="the rank that waited longest for data (then the longest wall): the point's row is its")
    world_samples_per_s: Annotated[float, SAMPLES_PER_S] = Field(
        description="every rank's samples over the slowest rank's wall: what the job delivers")
    ranks: list[RankFeeding] = Field(description="one per rank, in rank order")


class PipelineSummary(BaseModel):
    """One batch size: what the consumer needs, the flow equilibrium, the USL fit, where the wait comes from.

    Keyed and shaped like feedtax.results.feeding.FeedingSummary (track, format = the factory's name), so the
    feeding figures draw it unchanged."""

    track: str = PIPELINE_TRACK
    batch_size: AtLeastOne
    consumption_samples_per_s: Annotated[float, SAMPLES_PER_S] = Field(
        description="batch_size / the consumer's median step time over this batch size's rows")
    flow_equilibrium: dict[str, WorkerCount | None] = Field(
        description="the factory's name -> smallest measured worker count (>= 1) whose loader alone keeps up")
    fits: list[ScalingFit] = []
    breakdown: list[WaitBreakdown] = Field(
        default_factory=list, description="DS-Analyzer's rates at the most workers: first read (cold_samples_per_s), "
        "warm (prep), ready samples through the same DataLoader settings (in-memory), the consumer")
    breakdown_absent_reason: str | None = Field(None, description="why there is no breakdown")
    getitem: GetitemTiming | None = None
    transport: TransportCost | None = Field(None, description="ready samples through the same DataLoader settings")
    nvml_absent_reason: str | None = Field(None, description="why a GPU run has no (or no utilization) NVML figures")
    elapsed_s: Annotated[float | None, DURATION_S] = None


class PipelineResult(BaseModel):
    """`feedtax sweep --dataset`: a user's Dataset (or DataLoader factory) swept over batch sizes x worker counts."""

    factory: str = Field(description="the import path swept: package.module:function")
    name: str = Field(description="the factory's name: the format of the rows, fits and breakdowns")
    kind: Literal["dataset", "loader"] = Field(
        description="dataset: factory() returns a Dataset, feedtax builds DataLoader(ds, batch_size, num_workers, "
        "shuffle=False); loader: factory(num_workers, batch_size) returns the DataLoader")
    dataset_len: Annotated[int | None, COUNT] = Field(None, description="len() of the dataset; None: it has none")
    worker_counts: list[Annotated[int, Field(ge=0, le=MAX_WORKERS)]]
    batch_sizes: list[Annotated[int, Field(ge=1, le=10**12)]]
    steps: AtLeastOne = Field(description="measured steps per run (warm-up steps come on top)")
    consumer: PipelineConsumer
    rows: list[LoaderRow] = Field(default_factory=list, description="one per batch size x worker count, as measured; "
                                  "under torchrun the slowest rank's")
    world_size: AtLeastOne = Field(
        1, description="ranks that measured every point (torchrun); 1: one process")
    ranks: list[PointRanks] = Field(default_factory=list, description="under torchrun: every rank's figures per point")
    summaries: list[PipelineSummary] = Field(default_factory=list, description="one per batch size completed")
