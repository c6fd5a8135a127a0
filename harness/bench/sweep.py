"""The worker sweep: formats x worker counts x one consumer for one loader, then the flow equilibrium, a scaling
fit and where the wait comes from.

Per format and worker count two runs: the loader alone (ingestion rate) and the loader feeding the
consumer (feeding tax, AU, samples/s, MFU and NVML on a GPU). The loader is feedtax's tuned one or the default
torch DataLoader a student writes (feedtax.bench.baseline). The equilibrium and the USL fit are
feedtax.bench.scaling's, the wait breakdown and the transport cost feedtax.bench.breakdown's.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from feedtax.bench.baseline import default_access, plain_loader
from feedtax.bench.breakdown import ready_batch, transport_cost, wait_breakdown
from feedtax.bench.consumers import Consumer, Drain, make_consumer
from feedtax.bench.feeding import StopRule, count_samples, measure_feeding, row_intervals
from feedtax.bench.ondisk import Windows
from feedtax.bench.scaling import flow_equilibrium, scaling_fit
from feedtax.loader import LoaderConfig, make_loader, transform_for
from feedtax.model.peaks import peak_flops
from feedtax.probes import nvml
from feedtax.results.feeding import ConsumerSpec, FeedingSummary, LoaderRow, WaitBreakdown
from feedtax.vocabulary import LoaderKind

EMULATED = ConsumerSpec()  # the default consumer: an emulated accelerator


@dataclass
class _Feed:
    """What every run of one sweep shares: the consumer, its device, MFU peak and NVML sampler."""

    track: str
    spec: ConsumerSpec
    consumer: Consumer
    batch_size: int
    steps: int
    warmup_steps: int | None
    transform: Any
    peak_flop_per_s: float | None
    sampler_factory: Callable[[], Any] | None
    on_step: Callable[[str], None] | None
    loader: LoaderKind = "tuned"
    nvml_note: str | None = None
    stop: StopRule | None = None  # with the consumer: run until the AU interval is narrow (None: `steps` exactly)
    windows: Mapping[str, Windows] | None = None  # per format, a dataset larger than memory: a cold window per run


def run_sweep(
    track: str,
    formats: Sequence[str],
    shards: dict[str, Sequence[Path]],
    worker_counts: Sequence[int],
    *,
    batch_size: int,
    consumer: ConsumerSpec = EMULATED,
    steps: int = 20,
    warmup_steps: int | None = None,
    transform: bool = True,
    breakdown: bool = True,
    breakdown_formats: Sequence[str] | None = None,
    peak_flop_per_s: float | None = None,
    sampler_factory: Callable[[], Any] | None = None,
    on_step: Callable[[str], None] | None = None,
    on_row: Callable[[LoaderRow], None] | None = None,
    loader: LoaderKind = "tuned",
    stop: StopRule | None = None,
    windows: Mapping[str, Windows] | None = None,
) -> tuple[list[LoaderRow], FeedingSummary]:
    """Sweep formats x worker counts for one track, one consumer and one loader; rows and the summary.

    A model consumer on a GPU gets, per run with the consumer, an NVML sampler (sampler_factory;
    by default feedtax.probes.nvml.NvmlSampler on the consumer's GPU) and MFU against peak_flop_per_s, or
    else the device's peak at the model's precision from mlsysim's registry (feedtax.model.peaks; absent,
    with the reason, when unknown).
    Every format's flow equilibrium is judged against one consumer rate: the median step over all runs.
    on_step(label) is called after every measured run (for a progress bar): per format and worker
    count two runs (loader alone, with consumer), plus one per format for the breakdown and one
    for the transport cost. The default loader has no wait breakdown (its workers carry no stage clocks); its
    transport is a ready batch handed over as torch does it, new shared-memory tensors per batch.
    stop: the run with the consumer takes `steps` as its minimum and goes on until its AU's interval is narrower than
    stop.au_ci_pp or a cap (vocabulary.StopRule); None: `steps` exactly. The loader alone always runs `steps`.
    windows: per format, a dataset on disk (feedtax.bench.ondisk): each run reads its own next shards, evicted first,
    instead of `shards`, which the breakdown, the ready batch and the default loader's fixes then use.
    """
    started = time.perf_counter()
    tf = transform_for(track) if transform else None
    cons = make_consumer(consumer, track)
    peak_source = None
    if cons.device.startswith("cuda"):
        peak_flop_per_s, peak_source = _gpu_peak(cons.device, getattr(cons, "precision", "fp32"), peak_flop_per_s)
        sampler_factory = sampler_factory or nvml.cuda_sampler(cons.device)
    elif peak_flop_per_s and consumer.kind == "model":
        peak_source = "given by the user"
    feed = _Feed(track, consumer, cons, batch_size, steps, warmup_steps, tf, peak_flop_per_s, sampler_factory, on_step,
                 loader, stop=stop, windows=windows)
    rows: list[LoaderRow] = []
    ingestion: dict[str, dict[int, float]] = {}
    for fmt in formats:
        paths = [Path(p) for p in shards[fmt]]
        ingestion[fmt] = {}
        for w in worker_counts:
            rows.append(_measure_row(feed, fmt, paths, w))
            ingestion[fmt][w] = rows[-1].ingestion_samples_per_s
            if on_row is not None:
                on_row(rows[-1])
    step = float(np.median([r.step_s for r in rows])) if rows else math.nan
    consumption = batch_size / step if step > 0 else math.inf
    equilibrium = {fmt: flow_equilibrium(ingestion[fmt], consumption) for fmt in formats}
    intervals = {fmt: {r.num_workers: r.ingestion_samples_per_s_ci95 for r in rows
                       if r.format == fmt and r.ingestion_samples_per_s_ci95} for fmt in formats}
    fits = [f for fmt in formats
            if (f := scaling_fit(track, fmt, ingestion[fmt], consumption, intervals=intervals[fmt])) is not None]
    first = ready_batch(formats[0], shards[formats[0]], batch_size, tf) if formats else None
    todo = [f for f in formats if breakdown and loader == "tuned"
            and (breakdown_formats is None or f in breakdown_formats)]
    parts = _breakdowns(feed, todo, shards, worker_counts, consumption, first, formats[0] if formats else None)
    handover = "ring" if loader == "tuned" else "tensor"
    transport = transport_cost(first, transport=handover) if first is not None else None
    _tick(on_step, f"{track} transport")
    summary = FeedingSummary(
        track=track, loader=loader, consumer=consumer, batch_size=batch_size, consumption_samples_per_s=consumption,
        flow_equilibrium=equilibrium, fits=fits, breakdown=parts, transport=transport,
        peak_flop_per_s=peak_flop_per_s, peak_source=peak_source, nvml_absent_reason=feed.nvml_note,
        elapsed_s=time.perf_counter() - started,
    )
    return rows, summary


def _measure_row(feed: _Feed, fmt: str, paths: list[Path], w: int) -> LoaderRow:
    """One format at w workers: the loader alone, then feeding the consumer (under the NVML sampler)."""
    warm = feed.warmup_steps if feed.warmup_steps is not None else 2 + 2 * max(w, 1)
    most = feed.stop.max_steps if feed.stop is not None else feed.steps  # sized for the cap: no epoch restarts

    def new_loader(steps: int):
        need = (warm + steps + 2 * max(w, 1) + 2) * feed.batch_size
        if feed.windows is None:
            mine, n_samples = paths, count_samples(fmt, paths)
        else:  # the next cold shards, 2 per worker at least
            mine, n_samples = feed.windows[fmt].take(need, 2 * w)
        if feed.loader == "default":  # one epoch per iterator, as a student's loop: measure_feeding restarts it
            return plain_loader(fmt, mine, feed.batch_size, num_workers=w, transform=feed.transform)
        epochs = max(1, math.ceil(need / max(n_samples, 1)) + 1)
        cfg = LoaderConfig(batch_size=feed.batch_size, num_workers=w, epochs=epochs)
        return make_loader(fmt, mine, cfg, transform=feed.transform)

    alone = measure_feeding(new_loader(feed.steps), Drain(), warmup_steps=warm, steps=feed.steps, keep_timeline=False,
                            ci_block=max(w, math.ceil(feed.steps ** (1 / 3))))
    _tick(feed.on_step, f"{feed.track}/{fmt} w={w} {feed.loader} loader alone")
    with contextlib.ExitStack() as stack:
        sampler = stack.enter_context(feed.sampler_factory()) if feed.sampler_factory is not None else None
        fed = measure_feeding(new_loader(most), feed.consumer,
                              warmup_steps=warm, steps=feed.steps, peak_flop_per_s=feed.peak_flop_per_s,
                              sampler=sampler, keep_timeline=False, ci_block=max(w, 1), stop=feed.stop)
    gpu = fed.nvml or {}
    if gpu.get("reason"):  # NVML absent, a reader that failed, or a run too short for its utilization
        feed.nvml_note = gpu["reason"]
    _tick(feed.on_step, f"{feed.track}/{fmt} w={w} {feed.loader} loader with consumer")
    return LoaderRow(
        track=feed.track, format=fmt, loader=feed.loader,
        dataset_access=default_access(fmt) if feed.loader == "default" else None, num_workers=w,
        batch_size=feed.batch_size, samples_per_s=fed.samples_per_s,
        feeding_tax=fed.feeding_tax, au=fed.au, mlperf_au=fed.mlperf_au, mlperf_au_ci95=fed.mlperf_au_ci95,
        step_s=fed.compute_s / fed.steps,
        **row_intervals(fed),
        ingestion_samples_per_s=alone.samples_per_s,
        ingestion_samples_per_s_ci95=alone.samples_per_s_ci95, ingestion_mb_per_s=alone.mb_per_s,
        mb_per_s=fed.mb_per_s, wait_s=fed.wait_s, compute_s=fed.compute_s, wall_s=fed.wall_s,
        step_wall_s_iqr=fed.step_wall_s.iqr, unstable=fed.step_wall_s.unstable,
        consumer=feed.spec.kind, device=str(feed.consumer.device), mfu=fed.mfu,
        decode_s_per_batch=alone.stages.decode_s_per_batch,
        transform_s_per_batch=alone.stages.transform_s_per_batch,
        collate_s_per_batch=alone.stages.collate_s_per_batch,
        nvml_util_gpu_pct=gpu.get("util_gpu_pct_mean"), nvml_idle_fraction=gpu.get("idle_fraction"),
        nvml_power_w=gpu.get("power_w_mean"), nvml_energy_j=gpu.get("energy_j"),
    )


def _breakdowns(feed: _Feed, todo: Sequence[str], shards: dict[str, Sequence[Path]], worker_counts: Sequence[int],
                consumption: float, first: dict | None, first_format: str | None) -> list[WaitBreakdown]:
    """The wait breakdown of each format in todo at the most workers; the first format reuses its ready batch."""
    parts = []
    for fmt in todo:
        parts.append(wait_breakdown(feed.track, fmt, shards[fmt], num_workers=max(worker_counts),
                                    batch_size=feed.batch_size, consumer_per_s=consumption, transform=feed.transform,
                                    sample_batch=first if fmt == first_format else None))
        _tick(feed.on_step, f"{feed.track}/{fmt} breakdown")
    return parts


def _gpu_peak(device: str, precision: str, given: float | None) -> tuple[float | None, str]:
    """The GPU's peak for MFU at the precision the model runs in (fp32, or tf32 where torch lets
    cuDNN use it): the user's, else mlsysim's registry."""
    import torch

    return peak_flops(torch.cuda.get_device_name(torch.device(device)), precision, user_peak=given)


def _tick(on_step: Callable[[str], None] | None, label: str) -> None:
    if on_step is not None:
        on_step(label)
