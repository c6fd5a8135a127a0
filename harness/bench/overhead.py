"""The harness's own cost: the DataLoader at one worker against the format's one-process decode rate.

Measured at the sweep's batch and at an amortized batch (its decode takes AMORTIZED_BATCH_DECODE_S), in
paired rounds that alternate a decode pass with loader passes over the same shards; the fixed per-batch
cost comes from the two batch sizes. Why the amortized batch is sized so: docs/measurement.md.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from feedtax import formats as codecs
from feedtax.bench.feeding import count_samples, epoch_rate, samples_and_bytes
from feedtax.loader import LoaderConfig, make_loader, ring_slots
from feedtax.results.feeding import LoaderOverhead

# The amortized batch: big enough that torch's fixed per-batch cost at 1 worker (the worker->main
# message and the index round trip) is a few percent of the batch's decode time, so the ratio shows the
# harness's per-sample overhead; capped in bytes so the ring's slots fit in shared memory (max_batch_bytes).
AMORTIZED_BATCH_DECODE_S = 0.01
AMORTIZED_BATCH_MAX_BYTES = 32 << 20
MIN_TIMED_BATCHES = 12


def max_batch_bytes(slots: int, shm: str = "/dev/shm") -> int:
    """The largest batch one worker's ring may hold: its slots within a quarter of shared memory's free
    space (a tmpfs slot past the space left faults on write, it does not fail to allocate), at most
    AMORTIZED_BATCH_MAX_BYTES, at least 1 MiB; 4 MiB where shared memory cannot be inspected."""
    try:
        free = shutil.disk_usage(shm).free
    except OSError:
        return 4 << 20
    return max(1 << 20, min(AMORTIZED_BATCH_MAX_BYTES, free // (4 * slots)))


def _rate(seconds: float, n: int) -> float:
    return n / seconds if seconds > 0 else 0.0


def amortized_batch_size(fmt: str, paths: Sequence[Path], batch_size: int, decode_samples_per_s: float) -> int:
    """The batch whose decode takes AMORTIZED_BATCH_DECODE_S, within max_batch_bytes, at least batch_size."""
    first = next(iter(make_loader(fmt, paths[:1], LoaderConfig(batch_size=1))))
    sample_bytes = samples_and_bytes(first)[1]
    return max(batch_size, min(math.ceil(decode_samples_per_s * AMORTIZED_BATCH_DECODE_S),
                               max_batch_bytes(ring_slots(LoaderConfig())) // max(sample_bytes, 1)))


@dataclass
class _Rounds:
    """Per round: the decode rate, and per batch size the loader's rates (alone and against decode)."""

    sizes: list[int]
    decode: list[float] = field(default_factory=list)
    rate: dict[int, list[float]] = field(default_factory=dict)
    ratios: dict[int, list[float]] = field(default_factory=dict)
    in_process: dict[int, list[float]] = field(default_factory=dict)
    stages: dict[int, list[np.ndarray]] = field(default_factory=dict)  # the worker's own clock, per batch

    def __post_init__(self) -> None:
        for per_size in (self.rate, self.ratios, self.in_process, self.stages):
            per_size.update({b: [] for b in self.sizes})


def _paired_rounds(codec, paths: Sequence[Path], loaders: dict, sizes: list[int], passes: int, rounds: int) -> _Rounds:
    """`rounds` rounds, each a decode pass then every loader's pass (0 and 1 worker per batch size)."""
    out = _Rounds(sizes)
    for loader in loaders.values():  # warm-up: workers started (persistent), files opened once
        epoch_rate(loader)
    for _ in range(max(1, rounds)):  # whole passes: a shard's decode is never left out of the window
        t0 = time.perf_counter()  # the format stage's way: every sample decoded and let go, as many as a loader pass
        n = sum(sum(1 for _ in codec.iter_samples(paths)) for _ in range(passes))
        d = _rate(time.perf_counter() - t0, n)
        out.decode.append(d)
        for b in sizes:
            secs, n, _ = epoch_rate(loaders[b, 0])
            out.in_process[b].append(_rate(secs, n) / d)
            secs, n, _ = epoch_rate(loaders[b, 1], out.stages[b])
            out.rate[b].append(_rate(secs, n))
            out.ratios[b].append(out.rate[b][-1] / d)
    return out


def _fixed_per_batch_s(batch_size: int, big: int, loader_rate: dict[int, float]) -> float | None:
    """The per-batch intercept of the loader's time per batch over the two batch sizes; None when the
    sizes are too close for a fit or the intercept is negative (noise, not a cost)."""
    if not (big >= 2 * batch_size and loader_rate[batch_size] > 0 and loader_rate[big] > 0):
        return None
    per_sample = (big / loader_rate[big] - batch_size / loader_rate[batch_size]) / (big - batch_size)
    per_batch = batch_size / loader_rate[batch_size] - batch_size * per_sample
    return per_batch if per_batch > 0 else None


def loader_overhead(track: str, fmt: str, paths: Sequence[Path], *, decode_samples_per_s: float,
                    batch_size: int = 64, rounds: int = 5, transport: str = "ring") -> LoaderOverhead:
    """The loader at one worker against decode, at the sweep's batch and at an amortized batch (its
    decode takes AMORTIZED_BATCH_DECODE_S at decode_samples_per_s), in `rounds` paired rounds; the
    fixed per-batch cost from the two batch sizes."""
    codec = codecs.get(fmt)
    n_samples = count_samples(fmt, paths)
    big = amortized_batch_size(fmt, paths, batch_size, decode_samples_per_s)
    sizes = sorted({batch_size, big})
    epochs = {b: max(1, math.ceil(MIN_TIMED_BATCHES * b / max(n_samples, 1))) for b in sizes}
    loaders = {(b, w): make_loader(fmt, paths, LoaderConfig(batch_size=b, num_workers=w, epochs=epochs[b],
                                                            persistent_workers=True, transport=transport))
               for b in sizes for w in (0, 1)}
    r = _paired_rounds(codec, paths, loaders, sizes, max(epochs.values()), rounds)
    loader_rate = {b: float(np.median(r.rate[b])) for b in sizes}
    q1, q3 = np.percentile(r.ratios[big], [25, 75])
    decode_s, _, collate_s, rows = np.sum(r.stages[big], axis=0)
    per_batch_rows = rows / len(r.stages[big])
    return LoaderOverhead(
        track=track, format=fmt, batch_size=batch_size, loader_samples_per_s=loader_rate[batch_size],
        decode_samples_per_s=decode_samples_per_s, ratio=loader_rate[batch_size] / decode_samples_per_s,
        amortized_batch_size=big, amortized_loader_samples_per_s=loader_rate[big],
        amortized_ratio=loader_rate[big] / decode_samples_per_s,
        per_batch_s=_fixed_per_batch_s(batch_size, big, loader_rate), column_batches=codec.columnar,
        rounds=max(1, rounds), paired_decode_samples_per_s=float(np.median(r.decode)),
        paired_ratio=float(np.median(r.ratios[batch_size])), amortized_paired_ratio=float(np.median(r.ratios[big])),
        amortized_paired_ratio_iqr=(float(q1), float(q3)),
        in_process_ratio=float(np.median(r.in_process[batch_size])),
        amortized_in_process_ratio=float(np.median(r.in_process[big])),
        amortized_worker_decode_s_per_batch=float(decode_s / len(r.stages[big])),
        amortized_worker_collate_s_per_batch=float(collate_s / len(r.stages[big])),
        amortized_wall_s_per_batch=float(per_batch_rows / loader_rate[big]),
    )
