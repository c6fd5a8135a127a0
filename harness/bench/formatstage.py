"""The format stage: per track x format, bytes on disk and encode/decode throughput in one process.

Encode writes shards (page cache, no fsync). Decode streams every sample back; "cold" evicts the
shards' pages first (fsync + posix_fadvise DONTNEED, checked with mincore), "warm" reads them
from the page cache. Each is a distribution over repeats (feedtax.stats).
A format too slow to repeat over all samples within the profile's per-format budget is measured on
a prefix of whole shards (a per-sample cost does not depend on the count); n_samples says how many.
`shard_bytes` says, before a run writes anything, how much disk its shards will take.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from feedtax import formats
from feedtax.formats.base import Sample, sample_nbytes, schema_of
from feedtax.probes import pagecache
from feedtax.results.schema import CacheState, FormatResult
from feedtax.stats import rates, summarize, time_repeats


def _decode_all(codec: formats.Codec, paths: list[Path], expected: int) -> None:
    n = sum(1 for _ in codec.iter_samples(paths))
    if n != expected:
        raise RuntimeError(f"{codec.name}: decoded {n} samples, wrote {expected}")


def shard_bytes(fmt: str, samples: list[Sample], n: int, samples_per_shard: int) -> int:
    """Bytes n samples like these take on disk in shards of samples_per_shard, from encoding two and all of `samples`
    (at least 3) in memory: a shard's fixed bytes plus a per-sample slope, and a page per shard for the filesystem's
    rounding up."""
    codec, schema = formats.get(fmt), schema_of(samples[0])
    small, large = (len(codec.encode_shard(s, schema)) for s in (samples[:2], samples))
    per_sample = (large - small) / (len(samples) - 2)
    fixed = max(small - 2 * per_sample, 0.0)
    shards = -(-n // samples_per_shard)
    return int(shards * (fixed + os.sysconf("SC_PAGE_SIZE")) + n * per_sample)


def samples_within_budget(
    codec: formats.Codec, samples: list[Sample], scratch: Path, *, samples_per_shard: int, passes: int, budget_s: float
) -> int:
    """How many samples (whole shards, at least one) the passes can process within budget_s, from one
    untimed encode + decode of the first shard."""
    probe = samples[:samples_per_shard]
    t0 = time.perf_counter()
    paths = codec.write(probe, scratch, samples_per_shard=samples_per_shard)
    _decode_all(codec, paths, len(probe))
    per_sample_s = (time.perf_counter() - t0) / len(probe)
    shutil.rmtree(scratch, ignore_errors=True)
    affordable = int(budget_s / (passes * per_sample_s))
    return max(len(probe), min(len(samples), affordable // samples_per_shard * samples_per_shard))


def measure_format(
    track: str,
    fmt: str,
    samples: list[Sample],
    workdir: Path,
    *,
    samples_per_shard: int,
    warmups: int,
    repeats: int,
    min_time_s: float,
    budget_s: float | None = None,
    on_repeat: Callable[[], None] | None = None,
) -> tuple[FormatResult, list[Path]]:
    """Measure one format on one track's samples; returns the result and the kept shard paths.

    budget_s bounds the time of the encode, cold and warm passes together (None: all samples).
    """
    codec = formats.get(fmt)
    scratch = workdir / f"{track}-{fmt}-encode"
    final = workdir / f"{track}-{fmt}"
    if budget_s is not None:
        passes = 3 * (max(warmups, 1) + repeats)
        samples = samples[: samples_within_budget(codec, samples, scratch, samples_per_shard=samples_per_shard,
                                                   passes=passes, budget_s=budget_s)]
    n = len(samples)

    def fresh() -> None:
        shutil.rmtree(scratch, ignore_errors=True)

    try:
        encode_s = time_repeats(
            lambda: codec.write(samples, scratch, samples_per_shard=samples_per_shard),
            setup=fresh, warmups=warmups, repeats=repeats, min_time_s=min_time_s, on_repeat=on_repeat,
        )
    except BaseException:  # a full disk or a signal: no half-written scratch shards stay behind
        fresh()
        raise
    shutil.rmtree(final, ignore_errors=True)
    scratch.rename(final)
    paths = sorted(final.iterdir())
    size = sum(p.stat().st_size for p in paths)

    residency: list[float | None] = []

    def evict() -> None:
        residency.append(pagecache.evict(paths).resident_fraction)

    cold_s = time_repeats(lambda: _decode_all(codec, paths, n), setup=evict, warmups=warmups,
                          repeats=repeats, min_time_s=min_time_s, on_repeat=on_repeat)
    warm_s = time_repeats(lambda: _decode_all(codec, paths, n), warmups=warmups, repeats=repeats,
                          min_time_s=min_time_s, on_repeat=on_repeat)

    known = [r for r in residency if r is not None]
    cache = CacheState(
        method="fsync + posix_fadvise(POSIX_FADV_DONTNEED), checked with mincore",
        evicted=len(known) == len(residency) and all(r < 0.05 for r in known),
        resident_fraction_max=max(known) if known else None,
    )
    raw = sample_nbytes(schema_of(samples[0]))
    mb = size / 1e6
    result = FormatResult(
        track=track, format=fmt, n_samples=n, n_shards=len(paths), bytes_on_disk=size,
        bytes_per_sample=size / n, raw_bytes_per_sample=raw, compression_ratio=raw * n / size,
        random_access=codec.random_access,
        encode_samples_per_s=summarize(rates(encode_s, n), "samples/s"),
        encode_mb_per_s=summarize(rates(encode_s, mb), "MB/s"),
        decode_samples_per_s_cold=summarize(rates(cold_s, n), "samples/s"),
        decode_mb_per_s_cold=summarize(rates(cold_s, mb), "MB/s"),
        decode_samples_per_s_warm=summarize(rates(warm_s, n), "samples/s"),
        decode_mb_per_s_warm=summarize(rates(warm_s, mb), "MB/s"),
        cold_cache=cache,
    )
    return result, paths
