"""Harness overhead: the DataLoader at 1 worker vs the format's one-process decode rate, same shards.

Runs feedtax.bench.overhead.loader_overhead (what results.json reports): paired rounds that alternate a decode
pass with loader passes, at the sweep's batch (64 here) and at an amortized batch whose decode takes
AMORTIZED_BATCH_DECODE_S, so torch's fixed per-batch cost is a few percent; the fixed cost itself
comes from the two. The target is an amortized paired ratio of at least vocabulary.OVERHEAD_TARGET. Also
printed: the ratio with no worker (the cost of forming batches alone). Ratios go to extra_info.
Run: python -m pytest benchmarks/test_loader_overhead.py -s"""

from __future__ import annotations

import time

import pytest

from feedtax import formats
from feedtax.bench.overhead import loader_overhead


def _decode_rate(codec, paths) -> float:
    """As the format stage's warm figure: median of passes over the shards, samples decoded and let go."""
    rates = []
    for _ in range(5):
        t0 = time.perf_counter()
        n = sum(1 for _ in codec.iter_samples(paths))
        rates.append(n / (time.perf_counter() - t0))
    return sorted(rates)[2]


@pytest.mark.parametrize("kind", ["cloud", "edge", "tiny"])
@pytest.mark.parametrize("fmt", formats.NAMES)
def test_loader_one_worker_vs_decode(benchmark, bench_samples, tmp_path, fmt, kind):
    codec = formats.get(fmt)
    paths = codec.write(bench_samples[kind], tmp_path, samples_per_shard=250)
    decode = _decode_rate(codec, paths)
    benchmark.group = f"loader 1 worker {kind}"
    o = benchmark.pedantic(lambda: loader_overhead(kind, fmt, paths, decode_samples_per_s=decode, batch_size=64),
                           rounds=1, iterations=1)
    benchmark.extra_info.update(o.model_dump())
    per_batch = f"{o.per_batch_s * 1e3:.2f} ms" if o.per_batch_s is not None else "n/a"
    lo, hi = o.amortized_paired_ratio_iqr
    print(f"\n{kind} {fmt}: decode {o.paired_decode_samples_per_s:,.0f}/s | batch {o.batch_size}: "
          f"{o.loader_samples_per_s:,.0f}/s paired {o.paired_ratio:.2f} (no worker {o.in_process_ratio:.2f}) | "
          f"batch {o.amortized_batch_size}: {o.amortized_loader_samples_per_s:,.0f}/s paired "
          f"{o.amortized_paired_ratio:.2f} [{lo:.2f}-{hi:.2f}] (no worker {o.amortized_in_process_ratio:.2f}) | "
          f"fixed per batch {per_batch} | 1 worker per batch: decode {o.amortized_worker_decode_s_per_batch * 1e3:.2f} "
          f"copy {o.amortized_worker_collate_s_per_batch * 1e3:.2f} of {o.amortized_wall_s_per_batch * 1e3:.2f} ms")
