"""Disk tiers, measured: feedtax's tuned loader swept with every shard read throttled to a storage tier's bandwidth
and latency (feedtax.loader.throttle; the tiers from feedtax.model.tiers), and the Lock's answer: does switching JSON
to Protobuf raise AU more than a faster disk does? A point is measured as the worker sweep measures one
(feedtax.bench.sweep), under the tier's throttle; a tier faster than this machine's own disk is not swept."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from feedtax.bench.consumers import make_consumer
from feedtax.bench.sweep import EMULATED, _Feed, _gpu_peak, _measure_row
from feedtax.loader import transform_for
from feedtax.loader.throttle import Throttle, applied
from feedtax.probes import nvml
from feedtax.results.feeding import ConsumerSpec, LoaderRow
from feedtax.results.tiers import DiskTierResult, Lock2Answer, StorageTier, TierRow, TierSweep
from feedtax.vocabulary import StopRule

DISK_PROBE_BYTES = 64 << 20  # this disk's sequential read: enough to pass a drive's small write cache, a few seconds
DISK_PROBE_BUDGET_S = 5.0
LOCK_FORMATS = ("json", "protobuf")  # the Lock's question: from JSON to Protobuf


def sweep_tiers(track: str, formats: Sequence[str], shards: Mapping[str, Sequence[Path]], worker_counts: Sequence[int],
                tiers: Sequence[StorageTier], *, batch_size: int, consumer: ConsumerSpec = EMULATED, steps: int = 20,
                on_step: Callable[[str], None] | None = None, disk_seq_read_mb_per_s: float | None = None,
                disk_source: str = "given by the caller", peak_flop_per_s: float | None = None,
                stop: StopRule | None = None) -> DiskTierResult:
    """Every reachable tier x format x worker count (tiers slowest first), each point the tuned loader alone and then
    feeding the consumer with every shard read through the tier's throttle; then the Lock's answers.

    A tier is reachable when its bandwidth is at most this machine's sequential read (disk_seq_read_mb_per_s: by
    default measured now, in the shards' directory); a faster one cannot be made by holding reads back, and is
    reported with the reason instead of swept. on_step(label) after every run, the label led by the tier's name.
    peak_flop_per_s: a model consumer's peak for MFU on a GPU (default: mlsysim's, as the worker sweep takes it).
    stop: each run with the consumer goes on past `steps` until its AU interval is narrow (vocabulary.StopRule).
    """
    started = time.perf_counter()
    if disk_seq_read_mb_per_s is None:
        disk_seq_read_mb_per_s, disk_source = this_disk(Path(shards[formats[0]][0]).parent)
    feed = dataclasses.replace(_make_feed(track, consumer, batch_size, steps, on_step, peak_flop_per_s), stop=stop)
    sweeps = []
    for tier in sorted(tiers, key=lambda t: t.bandwidth_bytes_per_s):
        reason = unreachable_reason(tier, disk_seq_read_mb_per_s)
        if reason is not None:
            sweeps.append(TierSweep(tier=tier, reachable=False, reason=reason))
            continue
        tick = dataclasses.replace(feed, on_step=lambda label, t=tier.name: on_step(f"{t}: {label}")) \
            if on_step is not None else feed
        rows = [_point(tick, fmt, [Path(p) for p in shards[fmt]], w, tier) for fmt in formats for w in worker_counts]
        sweeps.append(TierSweep(tier=tier, reachable=True, rows=rows))
    return DiskTierResult(track=track, batch_size=batch_size, consumer=consumer,
                          disk_seq_read_mb_per_s=disk_seq_read_mb_per_s, disk_source=disk_source, tiers=sweeps,
                          lock2=lock2_answers(sweeps, worker_counts), elapsed_s=time.perf_counter() - started)


def measure_point(track: str, fmt: str, num_workers: int, tier: StorageTier | None,
                  shards: Sequence[Path] | Mapping[str, Sequence[Path]], *, batch_size: int, step_s: float,
                  steps: int, disk_seq_read_mb_per_s: float | None = None) -> LoaderRow:
    """One point: the tuned loader over fmt's shards (its paths, or a dict of every format's) at num_workers, alone
    and feeding an emulated step of step_s, every shard read at the tier's pace (None: unthrottled); a TierRow.

    With disk_seq_read_mb_per_s, a tier faster than that disk is refused (ValueError, the reason): it cannot be made.
    """
    if tier is not None and (reason := unreachable_reason(tier, disk_seq_read_mb_per_s)) is not None:
        raise ValueError(f"disk tier {tier.name}: {reason}")
    paths = shards[fmt] if isinstance(shards, Mapping) else shards
    feed = _make_feed(track, ConsumerSpec(kind="emulated", step_s=step_s), batch_size, steps, None)
    return _point(feed, fmt, [Path(p) for p in paths], num_workers, tier)


def unreachable_reason(tier: StorageTier, disk_seq_read_mb_per_s: float | None) -> str | None:
    """Why a tier cannot be emulated on this machine (faster than its own disk reads), or None when it can (or the
    disk's rate is unknown)."""
    if disk_seq_read_mb_per_s is None or tier.bandwidth_bytes_per_s <= disk_seq_read_mb_per_s * 1e6:
        return None
    return f"not reachable here (this disk reads {disk_seq_read_mb_per_s:,.0f} MB/s)"


def this_disk(where: Path) -> tuple[float, str]:
    """This machine's sequential read under `where` (cold, MB/s) and where the figure came from."""
    from feedtax.probes.disk import measure_disk

    d = measure_disk(where, DISK_PROBE_BYTES, time_budget_s=DISK_PROBE_BUDGET_S)
    return d.seq_read_mb_per_s_first, (f"measured now: first sequential read of {DISK_PROBE_BYTES >> 20} MiB just "
                                       f"written in {where}")


def lock2_answers(sweeps: Sequence[TierSweep], worker_counts: Sequence[int]) -> list[Lock2Answer]:
    """Per worker count, JSON at the slowest tier swept against Protobuf there and JSON at the fastest tier swept;
    one answer saying why, where that cannot be measured (fewer than two tiers swept, json or protobuf not swept)."""
    swept = sorted((t for t in sweeps if t.reachable), key=lambda t: t.tier.bandwidth_bytes_per_s)
    if len(swept) < 2:
        missing = [f"{t.tier.name} is {t.reason}" for t in sweeps if not t.reachable]
        why = "it needs two disk tiers swept" + (f", and {'; '.join(missing)}" if missing else
                                                 f"; only {', '.join(t.tier.name for t in sweeps) or 'none'} asked for")
        return [Lock2Answer(reason=why)]
    have = {r.format for t in swept for r in t.rows}
    if not set(LOCK_FORMATS) <= have:
        return [Lock2Answer(reason=f"it needs json and protobuf swept; swept: {', '.join(sorted(have))}")]
    slow, fast = swept[0], swept[-1]
    answers = []
    for w in worker_counts:
        points = (slow.row("json", w), slow.row("protobuf", w), fast.row("json", w))
        if all(p is not None for p in points):
            answers.append(Lock2Answer.of(w, *points))
    return answers


def _make_feed(track: str, consumer: ConsumerSpec, batch_size: int, steps: int,
               on_step: Callable[[str], None] | None, peak_flop_per_s: float | None = None) -> _Feed:
    """What every point shares, as the worker sweep sets it up: consumer, transform, and on a GPU its peak for MFU
    and an NVML sampler."""
    cons = make_consumer(consumer, track)
    peak, sampler = peak_flop_per_s if consumer.kind == "model" else None, None
    if cons.device.startswith("cuda"):
        peak, _ = _gpu_peak(cons.device, getattr(cons, "precision", "fp32"), peak_flop_per_s)
        sampler = nvml.cuda_sampler(cons.device)
    return _Feed(track, consumer, cons, batch_size, steps, None, transform_for(track), peak, sampler, on_step)


def _point(feed: _Feed, fmt: str, paths: list[Path], w: int, tier: StorageTier | None) -> TierRow:
    """One sweep point with the loaders it makes reading through a fresh throttle of the tier (none for None)."""
    throttle = Throttle(tier.bandwidth_bytes_per_s, tier.latency_s) if tier is not None else None
    with applied(throttle):
        row = _measure_row(feed, fmt, paths, w)
    got = throttle.stats() if throttle is not None else None
    return TierRow(**row.model_dump(), disk_tier=tier.name if tier is not None else None,
                   read_bytes=got.bytes if got else 0, read_requests=got.requests if got else 0,
                   read_bytes_per_s=got.bytes_per_s if got else None)


__all__ = ["LOCK_FORMATS", "lock2_answers", "measure_point", "sweep_tiers", "this_disk", "unreachable_reason"]
