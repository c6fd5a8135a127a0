"""The default torch DataLoader a student writes beside feedtax's tuned loader, over the same shards, decoder and
consumer: both sweeps, and at every point where the default trails by more than GAP_PP of AU, why and what fixes it.

Why: the per-batch costs of the two loaders taken apart (fetch, collate, handover; results.loaders.LoaderGap), each
measured, not estimated. What fixes it: the point rerun with one change a student can make (one intra-op thread,
persistent workers, twice the batch, pinned memory where there is CUDA), and the AU each gave.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset, default_collate

from feedtax.bench.baseline import plain_dataset, plain_loader
from feedtax.bench.consumers import make_consumer
from feedtax.bench.feeding import measure_feeding
from feedtax.bench.sweep import run_sweep
from feedtax.loader import transform_for
from feedtax.results.feeding import ConsumerSpec, FeedingSummary, LoaderRow
from feedtax.results.loaders import FixTrial, LoaderGap
from feedtax.vocabulary import GAP_PP, LOADERS, LoaderKind

REPEATS = 7  # timings per per-batch cost; the median is kept


@dataclass(frozen=True)
class Fix:
    """One change to the default loader's point: what, as code, and where it can matter."""

    name: str
    code: str
    applies: Callable[[int], bool]  # by worker count
    threads: int | None = None
    persistent_workers: bool = False
    batch_factor: int = 1
    pin_memory: bool = False


FIXES = (
    Fix("one intra-op thread", "torch.set_num_threads(1)", lambda w: w == 0 and torch.get_num_threads() > 1,
        threads=1),
    Fix("persistent workers", "DataLoader(..., persistent_workers=True)", lambda w: w > 0, persistent_workers=True),
    Fix("twice the batch", "DataLoader(..., batch_size=2 * batch_size)", lambda w: True, batch_factor=2),
    Fix("pinned memory", "DataLoader(..., pin_memory=True)", lambda w: torch.cuda.is_available(), pin_memory=True),
)


def sweep_loaders(track: str, formats: Sequence[str], shards: dict[str, Sequence[Path]], worker_counts: Sequence[int],
                  *, batch_size: int, consumer: ConsumerSpec, steps: int, loaders: Sequence[LoaderKind] = LOADERS,
                  on_step: Callable[[str], None] | None = None, on_row: Callable[[LoaderRow], None] | None = None,
                  **sweep_options) -> tuple[list[LoaderRow], list[FeedingSummary], list[LoaderGap]]:
    """run_sweep once per loader (default first), then the gaps where both were measured: rows, summaries, gaps."""
    rows: list[LoaderRow] = []
    summaries: list[FeedingSummary] = []
    for kind in sorted(loaders, key=LOADERS.index):
        got, summary = run_sweep(track, formats, shards, worker_counts, batch_size=batch_size, consumer=consumer,
                                 steps=steps, on_step=on_step, on_row=on_row, loader=kind, **sweep_options)
        rows += got
        summaries.append(summary)
    gaps = loader_gaps(rows, summaries, shards, consumer=consumer, steps=steps,
                       transform=sweep_options.get("transform", True)) if len(summaries) == 2 else []
    return rows, summaries, gaps


def loader_gaps(rows: Sequence[LoaderRow], summaries: Sequence[FeedingSummary], shards: dict[str, Sequence[Path]], *,
                consumer: ConsumerSpec, steps: int, transform: bool = True) -> list[LoaderGap]:
    """A LoaderGap for every (track, format, workers) whose default AU trails the tuned one by more than GAP_PP."""
    tuned = {(r.track, r.format, r.num_workers): r for r in rows if r.loader == "tuned"}
    handover = {s.loader: s.transport.transport_s_per_batch for s in summaries if s.transport is not None}
    consumption = {s.track: s.consumption_samples_per_s for s in summaries if s.loader == "default"}
    costs: dict[str, tuple[float, float]] = {}
    gaps = []
    for d in (r for r in rows if r.loader == "default"):
        t = tuned.get((d.track, d.format, d.num_workers))
        if t is None or (t.au - d.au) * 100 <= GAP_PP:
            continue
        tf = transform_for(d.track) if transform else None
        if d.format not in costs:
            costs[d.format] = _default_costs(d.format, shards[d.format], d.batch_size, tf, d.step_s)
        fetch, collate = costs[d.format]
        tuned_fetch = None if t.decode_s_per_batch is None else t.decode_s_per_batch + (t.transform_s_per_batch or 0)
        gaps.append(LoaderGap(
            track=d.track, format=d.format, num_workers=d.num_workers, batch_size=d.batch_size, default_au=d.au,
            tuned_au=t.au, default_au_ci95=d.au_ci95, tuned_au_ci95=t.au_ci95,
            default_ingestion_samples_per_s=d.ingestion_samples_per_s,
            consumption_samples_per_s=consumption.get(d.track, d.batch_size / d.step_s),
            intra_op_threads=torch.get_num_threads(), default_fetch_s_per_batch=fetch,
            tuned_fetch_s_per_batch=tuned_fetch, default_collate_s_per_batch=collate,
            tuned_collate_s_per_batch=t.collate_s_per_batch,
            default_handover_s_per_batch=handover.get("default") if d.num_workers else None,
            tuned_handover_s_per_batch=handover.get("tuned") if d.num_workers else None,
            fixes=[_try(fix, d, shards[d.format], tf, consumer, steps) for fix in FIXES if fix.applies(d.num_workers)],
        ))
    return gaps


def _default_costs(fmt: str, paths: Sequence[Path], batch_size: int, transform, idle_s: float) -> tuple[float, float]:
    """(fetch, collate) seconds per batch of the default loader in this process: its dataset's samples read and
    transformed one by one over a whole pass (median of 3 passes, so a stream's opening of each shard counts once per
    shard as it does in the loader), then default_collate on a batch of them right after an idle of idle_s (the
    consumer's step), as the main process meets it at 0 workers (torch's intra-op threads have gone to sleep)."""
    dataset = plain_dataset(fmt, paths, transform=transform)
    passes, batch = [], []
    for _ in range(3):
        n, t0 = 0, time.perf_counter()
        for sample in _samples(dataset):
            if len(batch) < batch_size:
                batch.append(sample)
            n += 1
        passes.append((time.perf_counter() - t0) / max(n, 1))
    collate = []
    for _ in range(REPEATS):
        time.sleep(idle_s)
        t0 = time.perf_counter()
        default_collate(batch)
        collate.append(time.perf_counter() - t0)
    return float(np.median(passes)) * batch_size, float(np.median(collate)) * batch_size / max(len(batch), 1)


def _samples(dataset) -> Iterator:
    return iter(dataset) if isinstance(dataset, IterableDataset) else (dataset[i] for i in range(len(dataset)))


def _try(fix: Fix, row: LoaderRow, paths: Sequence[Path], transform, spec: ConsumerSpec, steps: int) -> FixTrial:
    """The default loader's point rerun with fix over the same shards and samples (a larger batch takes fewer steps);
    an emulated consumer's step grows with the batch (the same compute per sample)."""
    k = fix.batch_factor
    if spec.kind == "emulated" and spec.step_s is not None:
        spec = spec.model_copy(update={"step_s": spec.step_s * k})
    loader = plain_loader(row.format, paths, row.batch_size * k, num_workers=row.num_workers, transform=transform,
                          persistent_workers=fix.persistent_workers, pin_memory=fix.pin_memory)
    warm = max(1, (2 + 2 * max(row.num_workers, 1)) // k)
    with _threads(fix.threads):
        fed = measure_feeding(loader, make_consumer(spec, row.track), warmup_steps=warm, steps=max(2, steps // k),
                              keep_timeline=False)
    return FixTrial(fix=fix.name, code=fix.code, au=fed.au, au_ci95=fed.au_ci95, mlperf_au=fed.mlperf_au,
                    mlperf_au_ci95=fed.mlperf_au_ci95)


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """torch's intra-op threads set to n for the block (unchanged for None), then put back."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


__all__ = ["FIXES", "Fix", "loader_gaps", "sweep_loaders"]
