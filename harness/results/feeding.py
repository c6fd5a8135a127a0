"""The DataLoader sweep's results: loader rows, scaling fits, wait breakdowns, transport, overhead."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from feedtax.vocabulary import OVERHEAD_TARGET


class ConsumerSpec(BaseModel):
    """The consumer to feed: emulated (sleep step_s per batch) or the track's real model."""

    kind: Literal["emulated", "model"] = "emulated"
    step_s: float | None = 0.005
    device: str | None = None  # model: cuda when present else cpu


class LoaderRow(BaseModel):
    """One format at one worker count: the loader alone and feeding the consumer."""

    track: str
    format: str
    num_workers: int
    batch_size: int
    samples_per_s: float = Field(description="delivered to the consumer, warm-up excluded")
    feeding_tax: float
    au: float
    step_s: float = Field(description="the consumer's step time (mean measured compute per step)")
    ingestion_samples_per_s: float = Field(description="the loader alone, no consumer")
    ingestion_mb_per_s: float = Field(description="in-memory bytes/s of the loader alone, 1e6 B/s")
    mb_per_s: float
    wait_s: float = Field(description="blocked waiting for batches, measured steps")
    compute_s: float = Field(description="the consumer's busy time: its sleep, or the timed training step")
    wall_s: float = Field(description="wait + compute + the consumer's own host time (a model's input "
                          "preparation and copy to the device) + the loop's bookkeeping: all of it counts against AU")
    step_wall_s_iqr: float
    unstable: bool
    consumer: str
    device: str
    mfu: float | None = None
    decode_s_per_batch: float | None = None
    transform_s_per_batch: float | None = None
    collate_s_per_batch: float | None = None
    nvml_util_gpu_pct: float | None = Field(None, description="NVML utilization.gpu, mean over the run: a coarse duty "
                                            "cycle (share of time any kernel ran), not SM occupancy; None without NVML")
    nvml_idle_fraction: float | None = Field(None, description="1 - NVML utilization: to set against feeding_tax")
    nvml_power_w: float | None = None
    nvml_energy_j: float | None = None


class ScalingPoint(BaseModel):
    num_workers: int
    samples_per_s: float
    extrapolated: bool


class ScalingFit(BaseModel):
    """Universal Scalability Law over the measured ingestion rates of one format."""

    track: str
    format: str
    model: str = "usl"
    lam_per_s: float = Field(description="single-worker rate of the fit")
    sigma: float = Field(description="contention")
    kappa: float = Field(description="coherency (crosstalk)")
    measured_workers: list[int]
    rel_rmse: float
    note: str | None = None
    predicted: list[ScalingPoint]
    flow_equilibrium_predicted: int | None = Field(None, description="from the fit, beyond the largest measured count "
                                                   "(always extrapolated), when no measured count kept up")


class TransportCost(BaseModel):
    """The DataLoader's own per-batch cost with ready data (no decode): at full speed, with no
    consumer, and as the wait each step of a consumer sees."""

    batch_size: int
    batch_bytes: int
    in_process_s_per_batch: float = Field(description="num_workers=0, no consumer: making a ready batch in the main process")
    worker_s_per_batch: float | None = Field(None, description="num_workers=1, no consumer: one batch handed over from "
                                             "the worker, at full speed (the slower of worker and main process)")
    ipc_s_per_batch: float = Field(description="worker_s_per_batch - in_process_s_per_batch: what the handover adds")
    transport_s_per_batch: float = Field(description="num_workers=1, consumer sleeping step_s: the wait per step for a "
                                         "ready batch (what the main process's receive costs each step)")


class WaitBreakdown(BaseModel):
    """DS-Analyzer's differential rates for one format at one worker count, samples/s."""

    track: str
    format: str
    num_workers: int
    in_memory_samples_per_s: float = Field(description="synthetic in-memory batches: the loader's ceiling")
    warm_samples_per_s: float = Field(description="prep only (fetch from the page cache)")
    cold_samples_per_s: float = Field(description="prep + fetch (page cache evicted)")
    prep_samples_per_s: float
    fetch_samples_per_s: float | None = Field(description="None: the cache was not evicted, or cold epochs were not "
                                              "slower than warm ones by more than their own spread (fetch hidden)")
    consumer_samples_per_s: float
    binding: Literal["fetch", "prep", "transport", "compute"]
    cache_evicted: bool
    rounds: int | None = Field(None, description="warm and cold epochs, alternating, after a warm-up epoch; rates are medians")
    decode_s_per_batch: float | None = None
    transform_s_per_batch: float | None = None
    collate_s_per_batch: float | None = None


class FeedingSummary(BaseModel):
    track: str
    consumer: ConsumerSpec
    batch_size: int
    consumption_samples_per_s: float = Field(description="batch_size / the consumer's step time")
    flow_equilibrium: dict[str, int | None] = Field(description="format -> smallest measured worker count (>= 1) keeping up")
    fits: list[ScalingFit] = []
    breakdown: list[WaitBreakdown] = []
    transport: TransportCost | None = None
    peak_flop_per_s: float | None = Field(None, description="the device peak MFU is taken against; None: no MFU")
    peak_source: str | None = Field(None, description="where the peak came from, or why it is absent")
    nvml_absent_reason: str | None = Field(None, description="why a GPU run has no (or no utilization) NVML figures")
    elapsed_s: float | None = None


class LoaderOverhead(BaseModel):
    """The harness's own cost: loader throughput at 1 worker vs the format's one-process decode rate,
    at the sweep's batch and at a batch that amortizes the DataLoader's fixed per-batch cost.

    Two baselines: the format stage's figure (measured earlier in the run), and the same decode
    re-measured here in rounds that alternate with the loader (paired: each round's ratio shares
    that moment's machine state, so drift and noisy neighbours cancel; the median is reported).
    The in-process ratio (no worker) isolates the cost of forming batches from the transport's.
    """

    track: str
    format: str
    batch_size: int = Field(description="the sweep's batch")
    loader_samples_per_s: float = Field(description="1 worker at batch_size, no consumer, no transform")
    decode_samples_per_s: float = Field(description="the format stage's warm decode rate, same shards")
    ratio: float = Field(description="loader / decode at the sweep's batch: torch's per-batch cost included")
    amortized_batch_size: int = Field(description="decode time of a batch >= AMORTIZED_BATCH_DECODE_S (byte-capped)")
    amortized_loader_samples_per_s: float
    amortized_ratio: float = Field(description="loader / the format stage's decode at amortized_batch_size")
    per_batch_s: float | None = Field(description="fixed seconds per batch at 1 worker (fit of the two batch "
                                                  "sizes: time = per_batch_s + rows x per_sample); None when "
                                                  "the amortized batch is under twice the sweep's, or the fit "
                                                  "is lost in noise (intercept <= 0)")
    column_batches: bool = Field(description="batches sliced from the shard's decoded columns (csv, parquet, raw)")
    rounds: int | None = Field(None, description="paired rounds (decode, then the loader, alternating)")
    paired_decode_samples_per_s: float | None = Field(None, description="median decode rate of the rounds")
    paired_ratio: float | None = Field(None, description="median over rounds of loader / decode, sweep's batch")
    amortized_paired_ratio: float | None = Field(None, description="median over rounds of loader / decode at "
                                                 "amortized_batch_size: the check wants >= 0.9")
    amortized_paired_ratio_iqr: tuple[float, float] | None = Field(None, description="quartiles of the rounds")
    in_process_ratio: float | None = Field(None, description="no worker (batches formed in this process) / "
                                           "decode, median of rounds, sweep's batch: the batching cost alone")
    amortized_in_process_ratio: float | None = None
    amortized_worker_decode_s_per_batch: float | None = Field(None, description="1 worker, amortized batch: "
                                                              "decoding, by the worker's own clock")
    amortized_worker_collate_s_per_batch: float | None = Field(None, description="... writing the batch into its "
                                                               "slot (the batch's one copy)")
    amortized_wall_s_per_batch: float | None = Field(None, description="... delivered rows / loader rate; minus the "
                                                     "two above: the DataLoader's own per-batch cost")

    @property
    def meets_target(self) -> bool | None:
        r = self.amortized_paired_ratio
        return None if r is None else r >= OVERHEAD_TARGET
