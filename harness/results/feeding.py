"""The DataLoader sweep's results: loader rows, scaling fits, wait breakdowns, transport, overhead."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from feedtax.results.metrics import (
    BATCH_S,
    MAX_WORKERS,
    MODELLED_S,
    RATE_RATIO,
    SHARD_SAMPLES,
    AtLeastOne,
    Share,
    Workers,
)
from feedtax.vocabulary import (
    BYTES,
    BYTES_PER_SAMPLE,
    COUNT,
    DURATION_S,
    FEEDING_TAX,
    FRACTION,
    JOULES,
    MB_PER_S,
    OVERHEAD_TARGET,
    PERCENT,
    SAMPLES_PER_S,
    UTILIZATION,
    WATTS,
    LoaderKind,
    Metric,
)

WorkerCount = Annotated[int, Field(ge=1, le=MAX_WORKERS)]  # a flow equilibrium: 0 workers load in series with the
# consumer, so it is 1 worker or more
Rate = Annotated[float, Field(ge=SAMPLES_PER_S.low, le=SAMPLES_PER_S.high)]  # an end of a rate's interval
RatioBound = Annotated[float, Field(ge=RATE_RATIO.low, le=RATE_RATIO.high)]  # a quartile of a ratio's rounds
GPU_BUSY_PCT = replace(PERCENT, better="higher")  # NVML utilization: the share of time any kernel ran
IDLE_FRACTION = replace(FRACTION, better="lower")
FITTED_SAMPLES_PER_S = replace(SAMPLES_PER_S, why="a fit's single-worker rate is bounded as the rates it fits")
PEAK_FLOP_PER_S = Metric("FLOP/s", "higher", 0, 1e19, "1e19 FLOP/s is beyond any single device's peak")
S_PER_BYTE = Metric("s/B", "lower", 0, 1e3, "a byte is not decoded or copied in negative time, nor in 17 minutes")
IPC_S_PER_BATCH = replace(BATCH_S, low=-BATCH_S.high, why="a difference of two batch times: either may be larger")
# the harness's own cost: at 1 worker, feedtax's loader should deliver at least this share of a plain DataLoader's rate
VS_PLAIN_TARGET = 1.0
CI_TARGET_PP = Metric("pp", None, 0, 100, "an interval's target width: more than 0, at most the whole range of AU")


class ConsumerSpec(BaseModel):
    """The consumer to feed: emulated (sleep step_s per batch) or the track's real model."""

    kind: Literal["emulated", "model"] = "emulated"
    step_s: Annotated[float | None, DURATION_S] = 0.005
    device: str | None = None  # model: cuda when present else cpu


class LoaderRow(BaseModel):
    """One format at one worker count and one loader: the loader alone and feeding the consumer."""

    track: str
    format: str
    loader: LoaderKind = Field("tuned", description="default: torch's DataLoader as a student writes it "
                               "(feedtax.bench.baseline); tuned: feedtax's loader")
    dataset_access: Literal["index", "stream"] | None = Field(
        None, description="the default loader's dataset: map-style read by index, or streamed; None: tuned")
    num_workers: Workers
    batch_size: AtLeastOne
    samples_per_s: Annotated[float, SAMPLES_PER_S] = Field(description="delivered to the consumer, warm-up excluded")
    feeding_tax: Annotated[float, FEEDING_TAX]
    au: Annotated[float, UTILIZATION]
    mlperf_au: Annotated[float | None, UTILIZATION] = Field(
        None, description="MLPerf Storage / DLIO's AU: nominal compute, first step of each epoch left out")
    mlperf_au_ci95: tuple[Share, Share] | None = Field(
        None, description="95% interval of mlperf_au, the same bootstrap over the steps it keeps; None before schema "
        "6, or where it keeps none (the pipeline sweep's rows have no mlperf_au)")
    au_ci95: tuple[Share, Share] | None = Field(
        None, description="95% interval of au from the step-to-step spread: circular blocks of steps resampled and "
        "sum(compute) / sum(wall) recomputed (feedtax.stats.ratio_ci); run-to-run drift is not in it. None: not "
        "measured (written before schema 6)")
    feeding_tax_ci95: tuple[Share, Share] | None = Field(
        None, description="95% interval of feeding_tax: (1 - au_ci95's high, 1 - its low); None before schema 6")
    au_ci_wide: bool | None = Field(
        None, description="au_ci95 is au_ci_target_pp wide or wider: the run reached a cap (stopped_by) before its "
        "interval narrowed; None before schema 6")
    au_ci_target_pp: Annotated[float | None, CI_TARGET_PP] = Field(
        None, description="the width the AU interval was measured to (feedtax sweep --au-ci-pp); None before schema 6")
    steps: AtLeastOne | None = Field(
        None, description="measured steps of the run with the consumer (warm-up excluded): the minimum asked for, or "
        "more where the AU interval needed them; None before schema 6")
    stopped_by: Literal["steps", "au_ci", "max_steps", "max_s"] | None = Field(
        None, description="what ended that run: steps (a fixed count), au_ci (the interval narrowed), max_steps or "
        "max_s (a cap); None before schema 6")
    step_s: Annotated[float, DURATION_S] = Field(
        description="the consumer's step time (mean measured compute per step)")
    ingestion_samples_per_s: Annotated[float, SAMPLES_PER_S] = Field(description="the loader alone, no consumer")
    ingestion_samples_per_s_ci95: tuple[Rate, Rate] | None = Field(
        None, description="its 95% interval from the step-to-step spread (a block bootstrap); None before schema 4")
    ingestion_mb_per_s: Annotated[float, MB_PER_S] = Field(
        description="in-memory bytes/s of the loader alone, 1e6 B/s")
    mb_per_s: Annotated[float, MB_PER_S]
    wait_s: Annotated[float, DURATION_S] = Field(description="blocked waiting for batches, measured steps")
    compute_s: Annotated[float, DURATION_S] = Field(
        description="the consumer's busy time: its sleep, or the timed training step")
    wall_s: Annotated[float, DURATION_S] = Field(
        description="wait + compute + the consumer's own host time (a model's input preparation and copy to the "
        "device) + the loop's bookkeeping: all of it counts against AU")
    step_wall_s_iqr: Annotated[float, Field(ge=0, le=DURATION_S.high)]
    unstable: bool
    consumer: str
    device: str
    mfu: Annotated[float | None, UTILIZATION] = None
    decode_s_per_batch: Annotated[float | None, BATCH_S] = None
    transform_s_per_batch: Annotated[float | None, BATCH_S] = None
    collate_s_per_batch: Annotated[float | None, BATCH_S] = None
    nvml_util_gpu_pct: Annotated[float | None, GPU_BUSY_PCT] = Field(
        None, description="NVML utilization.gpu, mean over the run: a coarse duty cycle (share of time any kernel "
        "ran), not SM occupancy; None without NVML")
    nvml_idle_fraction: Annotated[float | None, IDLE_FRACTION] = Field(
        None, description="1 - NVML utilization: to set against feeding_tax")
    nvml_power_w: Annotated[float | None, WATTS] = None
    nvml_energy_j: Annotated[float | None, JOULES] = None


class ScalingPoint(BaseModel):
    num_workers: Workers
    samples_per_s: Annotated[float, SAMPLES_PER_S]
    extrapolated: bool
    ci95: tuple[Rate, Rate] | None = Field(
        None, description="95% interval of the prediction, refitting over the measured points' intervals")
    informative: bool = Field(True, description="the interval is narrow enough to read a prediction from "
                              "(feedtax.bench.scaling.MAX_REL_CI_WIDTH)")


class ScalingFit(BaseModel):
    """Universal Scalability Law over the measured ingestion rates of one format."""

    track: str
    format: str
    model: str = "usl"
    lam_per_s: Annotated[float, FITTED_SAMPLES_PER_S] = Field(description="single-worker rate of the fit")
    sigma: Share = Field(description="contention")
    kappa: Share = Field(description="coherency (crosstalk)")
    measured_workers: list[WorkerCount]
    rel_rmse: Annotated[float, Field(ge=0, le=1e3)] = Field(description="relative RMS error of the fit")
    lam_ci95: tuple[Rate, Rate] | None = None
    sigma_ci95: tuple[Share, Share] | None = None
    kappa_ci95: tuple[Share, Share] | None = None
    note: str | None = None
    predicted: list[ScalingPoint]
    flow_equilibrium_predicted: WorkerCount | None = Field(
        None, description="from the fit, beyond the largest measured count (always extrapolated), when no measured "
        "count kept up: the first informative count whose interval lies wholly above the consumer's rate")

    def reach(self) -> ScalingPoint | None:
        """The furthest prediction worth reading (the last informative point); None where no interval is narrow."""
        return next((p for p in reversed(self.predicted) if p.informative), None)


class TransportCost(BaseModel):
    """The DataLoader's own per-batch cost with ready data (no decode): at full speed, with no
    consumer, and as the wait each step of a consumer sees."""

    batch_size: AtLeastOne
    batch_bytes: Annotated[int, BYTES]
    in_process_s_per_batch: Annotated[float, BATCH_S] = Field(
        description="num_workers=0, no consumer: making a ready batch in the main process")
    worker_s_per_batch: Annotated[float | None, BATCH_S] = Field(
        None, description="num_workers=1, no consumer: one batch handed over from the worker, at full speed (the "
        "slower of worker and main process); None: a schema 1 file from before it was measured")
    ipc_s_per_batch: Annotated[float | None, IPC_S_PER_BATCH] = Field(
        description="worker_s_per_batch - in_process_s_per_batch: what the handover adds; None where "
        "worker_s_per_batch is")
    transport_s_per_batch: Annotated[float, BATCH_S] = Field(
        description="num_workers=1, consumer sleeping step_s: the wait per step for a ready batch (what the main "
        "process's receive costs each step)")


class WaitBreakdown(BaseModel):
    """DS-Analyzer's differential rates for one format at one worker count, samples/s."""

    track: str
    format: str
    num_workers: Workers
    in_memory_samples_per_s: Annotated[float, SAMPLES_PER_S] = Field(
        description="synthetic in-memory batches: the loader's ceiling")
    warm_samples_per_s: Annotated[float, SAMPLES_PER_S] = Field(description="prep only (fetch from the page cache)")
    cold_samples_per_s: Annotated[float, SAMPLES_PER_S] = Field(description="prep + fetch (page cache evicted)")
    prep_samples_per_s: Annotated[float, SAMPLES_PER_S]
    fetch_samples_per_s: Annotated[float | None, SAMPLES_PER_S] = Field(
        description="None: the cache was not evicted, or cold epochs were not slower than warm ones by more than "
        "their own spread (fetch hidden)")
    consumer_samples_per_s: Annotated[float, SAMPLES_PER_S]
    binding: Literal["fetch", "prep", "transport", "compute"]
    cache_evicted: bool
    rounds: Annotated[int | None, COUNT] = Field(
        None, description="warm and cold epochs, alternating, after a warm-up epoch; rates are medians")
    decode_s_per_batch: Annotated[float | None, BATCH_S] = None
    transform_s_per_batch: Annotated[float | None, BATCH_S] = None
    collate_s_per_batch: Annotated[float | None, BATCH_S] = None


class FeedingSummary(BaseModel):
    track: str
    loader: LoaderKind = "tuned"
    consumer: ConsumerSpec
    batch_size: AtLeastOne
    consumption_samples_per_s: Annotated[float, SAMPLES_PER_S] = Field(
        description="batch_size / the consumer's step time")
    flow_equilibrium: dict[str, WorkerCount | None] = Field(
        description="format -> smallest measured worker count (>= 1) keeping up")
    fits: list[ScalingFit] = []
    breakdown: list[WaitBreakdown] = []
    transport: TransportCost | None = None
    peak_flop_per_s: Annotated[float | None, PEAK_FLOP_PER_S] = Field(
        None, description="the device peak MFU is taken against; None: no MFU")
    peak_source: str | None = Field(None, description="where the peak came from, or why it is absent")
    nvml_absent_reason: str | None = Field(None, description="why a GPU run has no (or no utilization) NVML figures")
    elapsed_s: Annotated[float | None, DURATION_S] = None


def decode_share_with_one_copy(decode_s_per_byte: float, copy_s_per_byte: float) -> float:
    """decode / (decode + copy): the most of the one-process decode rate a worker reaches that decodes each byte
    and then copies it once (into its batch), the two in series."""
    total = decode_s_per_byte + copy_s_per_byte
    return decode_s_per_byte / total if total > 0 else 0.0


def decode_target_applies(decode_s_per_byte: float, copy_s_per_byte: float, target: float = OVERHEAD_TARGET) -> bool:
    """Whether a format is held to `target` of its decode rate: only where decode costs enough more per byte than
    one copy that a loader making that copy can reach it (decode_share_with_one_copy >= target; at 0.9, decode
    at least 9 copies per byte)."""
    return decode_share_with_one_copy(decode_s_per_byte, copy_s_per_byte) >= target


class LoaderOverhead(BaseModel):
    """The harness's own cost: feedtax's loader at 1 worker against a plain torch DataLoader at 1 worker over the
    same shards and decoder (feedtax.bench.baseline), and against the format's one-process decode rate, at the
    sweep's batch and at a batch that amortizes the DataLoader's fixed per-batch cost.

    Decode has two baselines: the format stage's figure (measured earlier in the run), and the same decode
    re-measured here in rounds that alternate with the loaders (paired: each round's ratio shares that moment's
    machine state, so drift and noisy neighbours cancel; the median is reported). The plain DataLoader runs in the
    same rounds. The in-process ratio (no worker) isolates the cost of forming batches from the transport's.
    """

    track: str
    format: str
    batch_size: AtLeastOne = Field(description="the sweep's batch")
    loader_samples_per_s: Annotated[float, SAMPLES_PER_S] = Field(
        description="1 worker at batch_size, no consumer, no transform")
    decode_samples_per_s: Annotated[float, SAMPLES_PER_S] = Field(
        description="the format stage's warm decode rate, same shards")
    ratio: Annotated[float, RATE_RATIO] = Field(
        description="loader / decode at the sweep's batch: torch's per-batch cost included")
    amortized_batch_size: AtLeastOne = Field(
        description="decode time of a batch >= AMORTIZED_BATCH_DECODE_S (byte-capped)")
    amortized_loader_samples_per_s: Annotated[float, SAMPLES_PER_S]
    amortized_ratio: Annotated[float, RATE_RATIO] = Field(
        description="loader / the format stage's decode at amortized_batch_size")
    per_batch_s: Annotated[float | None, MODELLED_S] = Field(
        description="fixed seconds per batch at 1 worker (fit of the two batch sizes: time = per_batch_s + rows x "
        "per_sample); None when the amortized batch is under twice the sweep's, or the fit is lost in noise "
        "(intercept <= 0)")
    column_batches: bool = Field(description="batches sliced from the shard's decoded columns (csv, parquet, raw)")
    rounds: Annotated[int | None, COUNT] = Field(
        None, description="paired rounds (decode, then the loaders, alternating)")
    paired_decode_samples_per_s: Annotated[float | None, SAMPLES_PER_S] = Field(
        None, description="median decode rate of the rounds")
    paired_ratio: Annotated[float | None, RATE_RATIO] = Field(
        None, description="median over rounds of loader / decode, sweep's batch")
    amortized_paired_ratio: Annotated[float | None, RATE_RATIO] = Field(
        None, description="median over rounds of loader / decode at amortized_batch_size: held to "
                    "vocabulary.OVERHEAD_TARGET where decode_target_applies")
    amortized_paired_ratio_iqr: tuple[RatioBound, RatioBound] | None = Field(
        None, description="quartiles of the rounds")
    in_process_ratio: Annotated[float | None, RATE_RATIO] = Field(
        None, description="no worker (batches formed in this process) / decode, median of rounds, sweep's batch: the "
        "batching cost alone")
    amortized_in_process_ratio: Annotated[float | None, RATE_RATIO] = None
    amortized_worker_decode_s_per_batch: Annotated[float | None, BATCH_S] = Field(
        None, description="1 worker, amortized batch: decoding, by the worker's own clock")
    amortized_worker_collate_s_per_batch: Annotated[float | None, BATCH_S] = Field(
        None, description="... writing the batch into its slot (the batch's one copy)")
    amortized_wall_s_per_batch: Annotated[float | None, BATCH_S] = Field(
        None, description="... delivered rows / loader rate; minus the two above: the DataLoader's own per-batch cost")
    plain_dataset: Literal["index", "stream"] | None = Field(
        None, description="the plain DataLoader's dataset: stream (an IterableDataset over the codec's "
        "iter_samples) or index (map-style, the codec's read_sample per item)")
    plain_samples_per_s: Annotated[float | None, SAMPLES_PER_S] = Field(
        None, description="the plain DataLoader at 1 worker (default_collate), sweep's batch, median of rounds")
    vs_plain_ratio: Annotated[float | None, RATE_RATIO] = Field(
        None, description="median over rounds of feedtax's loader / the plain DataLoader, sweep's batch: held to "
        "VS_PLAIN_TARGET")
    vs_plain_ratio_iqr: tuple[RatioBound, RatioBound] | None = Field(None, description="quartiles of the rounds")
    amortized_plain_samples_per_s: Annotated[float | None, SAMPLES_PER_S] = Field(
        None, description="the plain DataLoader at amortized_batch_size, median of rounds")
    amortized_vs_plain_ratio: Annotated[float | None, RATE_RATIO] = Field(
        None, description="as vs_plain_ratio at amortized_batch_size: held to VS_PLAIN_TARGET")
    amortized_vs_plain_ratio_iqr: tuple[RatioBound, RatioBound] | None = Field(
        None, description="quartiles of the rounds")
    raw_bytes_per_sample: Annotated[int | None, BYTES_PER_SAMPLE] = Field(
        None, description="the sample's in-memory size: the bytes the per-byte costs are taken over")
    copy_s_per_byte: Annotated[float | None, S_PER_BYTE] = Field(
        None, description="one copy of the amortized batch's bytes in this process (warm buffers), per byte, median "
        "of rounds")
    decode_s_per_byte: Annotated[float | None, S_PER_BYTE] = Field(
        None, description="1 / (paired decode rate x raw_bytes_per_sample)")
    decode_target_applies: bool | None = Field(
        None, description="decode / (decode + copy) per byte >= OVERHEAD_TARGET: only then is amortized_paired_ratio "
        "held to OVERHEAD_TARGET (below it, a loader's one copy per byte alone keeps it from the target)")

    @property
    def meets_plain_target(self) -> bool | None:
        """At both batches at least VS_PLAIN_TARGET of the plain DataLoader; None where not measured."""
        r = (self.vs_plain_ratio, self.amortized_vs_plain_ratio)
        return None if None in r else min(r) >= VS_PLAIN_TARGET

    @property
    def meets_decode_target(self) -> bool | None:
        """The amortized paired ratio against OVERHEAD_TARGET where the decode target applies; None where it does
        not apply or was not measured."""
        if not self.decode_target_applies or self.amortized_paired_ratio is None:
            return None
        return self.amortized_paired_ratio >= OVERHEAD_TARGET

    @property
    def meets_target(self) -> bool | None:
        """The overhead check: meets_plain_target, and meets_decode_target where the decode target applies;
        None for a result measured before the plain baseline (or without paired rounds)."""
        if self.meets_plain_target is None or self.decode_target_applies is None:
            return None
        return self.meets_plain_target and self.meets_decode_target is not False


class DatasetRead(BaseModel):
    """A dataset larger than memory (--dataset-size): one track x format written streaming to its size on disk, read
    once in order as fio reads a file (the disk's rate on it), then read cold by the sweep's points, each point's
    runs on the next shards, evicted first (feedtax.bench.ondisk)."""

    track: str
    format: str
    bytes_on_disk: Annotated[int, BYTES] = Field(description="the dataset's shards: --dataset-size, at most one "
                                                 "shard over")
    samples: Annotated[int, COUNT]
    shards: AtLeastOne
    samples_per_shard: Annotated[int, SHARD_SAMPLES]
    dataset_write_s: Annotated[float, DURATION_S] = Field(description="generating, encoding and writing it, streaming")
    first_read_bytes: Annotated[int, BYTES] = Field(
        description="read by the first pass: all of it, unless first_read_whole is false (the pass's time budget)")
    first_read_s: Annotated[float, DURATION_S]
    first_read_mb_per_s: Annotated[float, MB_PER_S] = Field(
        description="the first pass: buffered 1 MiB reads in shard order, every shard's cached pages dropped first")
    first_read_whole: bool
    resident_before: Annotated[float | None, FRACTION] = Field(
        description="the page cache's share of the dataset before the first pass (mincore); None: not readable")
    memory_bytes: Annotated[int, BYTES] = Field(description="this machine's memory (MemTotal)")
    windows_bytes: Annotated[int, BYTES] = Field(description="read by the sweep's points, each run on shards "
                                                 "nothing had read since they were written or last read")
    windows_wrapped: Annotated[int, COUNT] = Field(
        description="times the points' windows came back to the first shard (0: no byte was read twice)")
    evictions_failed: Annotated[int, COUNT] = Field(
        description="windows whose cached pages did not leave the page cache (mincore): those reads were not cold")

    @property
    def larger_than_memory(self) -> bool:
        return self.bytes_on_disk > self.memory_bytes


class RankFeeding(BaseModel):
    """One rank's feeding over its measured steps, as that rank measured it (feedtax.measure, or a point of
    `feedtax sweep --dataset`, under a torch.distributed process group: bench.ranks gathers them)."""

    rank: Annotated[int, COUNT]
    world_size: AtLeastOne
    hostname: str
    device: str = Field(description="where the rank's consumer runs: emulated, cpu, cuda:0, ...")
    steps: AtLeastOne
    samples: Annotated[int, COUNT] = Field(description="samples the rank's consumer took over the measured steps")
    feeding_tax: Annotated[float, FEEDING_TAX]
    au: Annotated[float, UTILIZATION]
    au_ci95: tuple[Share, Share] | None = Field(
        None, description="95% interval of the rank's au (as a loader row's); None before schema 6")
    feeding_tax_ci95: tuple[Share, Share] | None = Field(
        None, description="(1 - au_ci95's high, 1 - its low); None before schema 6")
    samples_per_s: Annotated[float, SAMPLES_PER_S]
    wait_s: Annotated[float, DURATION_S]
    compute_s: Annotated[float, DURATION_S]
    wall_s: Annotated[float, DURATION_S]
    median_step_wall_s: Annotated[float, DURATION_S]
