"""The harness's own cost: feedtax's loader at one worker against a plain torch DataLoader over the same shards
(bench.baseline), and against the format's one-process decode rate.

Measured at the sweep's batch and at an amortized batch (its decode takes AMORTIZED_BATCH_DECODE_S), in paired
rounds: each round decodes the shards, times one copy of the amortized batch's bytes, then runs the plain loader
and feedtax's over the same shards, so every round's ratios share that moment's machine state. The fixed per-batch
cost comes from the two batch sizes. Why the batch is sized so, and which baseline: docs/measurement.md.
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
from feedtax.bench import interrupts
from feedtax.bench.baseline import Access, plain_loader
from feedtax.bench.feeding import count_samples, epoch_rate, samples_and_bytes
from feedtax.loader import LoaderConfig, make_loader, ring_slots
from feedtax.results.feeding import LoaderOverhead, decode_target_applies

# The amortized batch: big enough that torch's fixed per-batch cost at 1 worker (the worker->main
# message and the index round trip) is a few percent of the batch's decode time, so the ratio shows the
# harness's per-sample overhead; capped in bytes so the ring's slots fit in shared memory (max_batch_bytes).
AMORTIZED_BATCH_DECODE_S = 0.01
AMORTIZED_BATCH_MAX_BYTES = 32 << 20
MIN_TIMED_BATCHES = 12
COPY_REPEATS = 3  # copies of the amortized batch's bytes timed per round (their median)


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


def sample_bytes(fmt: str, paths: Sequence[Path]) -> int:
    """In-memory bytes of one decoded sample (the loader's first batch of one)."""
    first = next(iter(make_loader(fmt, paths[:1], LoaderConfig(batch_size=1))))
    return samples_and_bytes(first)[1]


def amortized_batch_size(fmt: str, paths: Sequence[Path], batch_size: int, decode_samples_per_s: float) -> int:
    """The batch whose decode takes AMORTIZED_BATCH_DECODE_S, within max_batch_bytes, at least batch_size."""
    return max(batch_size, min(math.ceil(decode_samples_per_s * AMORTIZED_BATCH_DECODE_S),
                               max_batch_bytes(ring_slots(LoaderConfig())) // max(sample_bytes(fmt, paths), 1)))


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> tuple[float, tuple[float, float]]:
    """The median of per-round ratios numerator / denominator, and their quartiles (a round whose
    denominator is 0 gives 0)."""
    ratios = [n / d if d > 0 else 0.0 for n, d in zip(numerators, denominators, strict=True)]
    if not ratios:
        raise ValueError("no rounds to pair")
    q1, median, q3 = np.percentile(ratios, [25, 50, 75])
    return float(median), (float(q1), float(q3))


def copy_seconds(nbytes: int, repeats: int = COPY_REPEATS) -> float:
    """Seconds for one copy of nbytes between two buffers already touched (as the ring's reused slots are):
    the median of `repeats`."""
    src = np.ones(max(nbytes, 1), np.uint8)
    dst = np.zeros_like(src)
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _plain_pass(loader, epochs: int) -> tuple[float, int]:
    """(seconds, samples) for `epochs` whole passes of a plain DataLoader (feedtax's loader does them in one)."""
    t0 = time.perf_counter()
    n = sum(samples_and_bytes(batch)[0] for _ in range(epochs) for batch in interrupts.fetched(loader))
    return time.perf_counter() - t0, n


@dataclass
class _Rounds:
    """Per round: decode rate and one copy's seconds; per batch size the plain loader's rate and feedtax's
    (1 worker, and no worker) with the worker's own stage clock per batch."""

    sizes: list[int]
    decode: list[float] = field(default_factory=list)
    copy_s: list[float] = field(default_factory=list)
    plain: dict[int, list[float]] = field(default_factory=dict)
    rate: dict[int, list[float]] = field(default_factory=dict)
    in_process: dict[int, list[float]] = field(default_factory=dict)
    stages: dict[int, list[np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for per_size in (self.plain, self.rate, self.in_process, self.stages):
            per_size.update({b: [] for b in self.sizes})


def _paired_rounds(codec, paths: Sequence[Path], loaders: dict, plains: dict, epochs: dict[int, int],
                   copy_bytes: int, rounds: int) -> _Rounds:
    """`rounds` rounds, each a decode pass, a timed copy, then per batch size the plain loader's pass and
    feedtax's (no worker, 1 worker)."""
    sizes = sorted(epochs)
    out = _Rounds(sizes)
    for loader in loaders.values():  # warm-up: workers started (persistent), files opened once
        epoch_rate(loader)
    for loader in plains.values():
        _plain_pass(loader, 1)
    passes = max(epochs.values())
    for _ in range(max(1, rounds)):  # whole passes: a shard's decode is never left out of the window
        t0 = time.perf_counter()  # the format stage's way: every sample decoded and let go, as many as a loader pass
        n = sum(sum(1 for _ in codec.iter_samples(paths)) for _ in range(passes))
        out.decode.append(_rate(time.perf_counter() - t0, n))
        out.copy_s.append(copy_seconds(copy_bytes))
        for b in sizes:
            out.plain[b].append(_rate(*_plain_pass(plains[b], epochs[b])))
            secs, n, _ = epoch_rate(loaders[b, 0])
            out.in_process[b].append(_rate(secs, n))
            secs, n, _ = epoch_rate(loaders[b, 1], out.stages[b])
            out.rate[b].append(_rate(secs, n))
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
                    batch_size: int = 64, rounds: int = 5, transport: str = "ring",
                    plain_access: Access = "stream") -> LoaderOverhead:
    """feedtax's loader at one worker against a plain DataLoader (bench.baseline, dataset `plain_access`) and
    against decode, at the sweep's batch and at an amortized batch (its decode takes AMORTIZED_BATCH_DECODE_S
    at decode_samples_per_s), in `rounds` paired rounds; per byte, decode's cost against one copy's."""
    codec = codecs.get(fmt)
    n_samples = count_samples(fmt, paths)
    per_sample = sample_bytes(fmt, paths)
    big = amortized_batch_size(fmt, paths, batch_size, decode_samples_per_s)
    sizes = sorted({batch_size, big})
    epochs = {b: max(1, math.ceil(MIN_TIMED_BATCHES * b / max(n_samples, 1))) for b in sizes}
    loaders = {(b, w): make_loader(fmt, paths, LoaderConfig(batch_size=b, num_workers=w, epochs=epochs[b],
                                                            persistent_workers=True, transport=transport))
               for b in sizes for w in (0, 1)}
    plains = {b: plain_loader(fmt, paths, b, num_workers=1, access=plain_access, persistent_workers=True)
              for b in sizes}
    r = _paired_rounds(codec, paths, loaders, plains, epochs, big * per_sample, rounds)
    return _result(track, fmt, r, batch_size=batch_size, big=big, per_sample=per_sample,
                   decode_samples_per_s=decode_samples_per_s, column_batches=codec.columnar,
                   rounds=max(1, rounds), plain_access=plain_access)


def _result(track: str, fmt: str, r: _Rounds, *, batch_size: int, big: int, per_sample: int,
            decode_samples_per_s: float, column_batches: bool, rounds: int, plain_access: Access) -> LoaderOverhead:
    """The rounds' medians and paired ratios as a LoaderOverhead."""
    loader_rate = {b: float(np.median(r.rate[b])) for b in r.sizes}
    decode_ratio = {b: paired_ratio(r.rate[b], r.decode) for b in r.sizes}
    plain_ratio = {b: paired_ratio(r.rate[b], r.plain[b]) for b in r.sizes}
    decode_s, _, collate_s, rows = np.sum(r.stages[big], axis=0)
    paired_decode = float(np.median(r.decode))
    decode_per_byte = 1.0 / (paired_decode * per_sample) if paired_decode > 0 and per_sample > 0 else None
    copy_per_byte = float(np.median(r.copy_s)) / max(big * per_sample, 1)
    return LoaderOverhead(
        track=track, format=fmt, batch_size=batch_size, loader_samples_per_s=loader_rate[batch_size],
        decode_samples_per_s=decode_samples_per_s, ratio=loader_rate[batch_size] / decode_samples_per_s,
        amortized_batch_size=big, amortized_loader_samples_per_s=loader_rate[big],
        amortized_ratio=loader_rate[big] / decode_samples_per_s,
        per_batch_s=_fixed_per_batch_s(batch_size, big, loader_rate), column_batches=column_batches,
        rounds=rounds, paired_decode_samples_per_s=paired_decode,
        paired_ratio=decode_ratio[batch_size][0], amortized_paired_ratio=decode_ratio[big][0],
        amortized_paired_ratio_iqr=decode_ratio[big][1],
        in_process_ratio=paired_ratio(r.in_process[batch_size], r.decode)[0],
        amortized_in_process_ratio=paired_ratio(r.in_process[big], r.decode)[0],
        amortized_worker_decode_s_per_batch=float(decode_s / len(r.stages[big])),
        amortized_worker_collate_s_per_batch=float(collate_s / len(r.stages[big])),
        amortized_wall_s_per_batch=float(rows / len(r.stages[big]) / loader_rate[big]),
        plain_dataset=plain_access, plain_samples_per_s=float(np.median(r.plain[batch_size])),
        vs_plain_ratio=plain_ratio[batch_size][0], vs_plain_ratio_iqr=plain_ratio[batch_size][1],
        amortized_plain_samples_per_s=float(np.median(r.plain[big])),
        amortized_vs_plain_ratio=plain_ratio[big][0], amortized_vs_plain_ratio_iqr=plain_ratio[big][1],
        raw_bytes_per_sample=per_sample, copy_s_per_byte=copy_per_byte, decode_s_per_byte=decode_per_byte,
        decode_target_applies=None if decode_per_byte is None else decode_target_applies(decode_per_byte,
                                                                                          copy_per_byte),
    )
