"""Harness overhead: the DataLoader at 1 worker vs the format's one-process decode rate, same shards.

Runs harness.sweep.loader_overhead (what results.json reports): at the sweep's batch (64 here) and at
an amortized batch whose decode takes AMORTIZED_BATCH_DECODE_S, so torch's fixed per-batch cost is
a few percent; the fixed cost itself comes from the two. The issue's check wants amortized >= 0.9.
Ratios go to extra_info and are printed. Run: python -m pytest benchmarks/test_loader_overhead.py -s"""

from __future__ import annotations

import time

import pytest

import formats
from harness.sweep import loader_overhead


def _decode_rate(codec, paths) -> float:
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        n = sum(1 for _ in codec.iter_samples(paths))
        best = max(best, n / (time.perf_counter() - t0))
    return best


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
    print(f"\n{kind} {fmt}: decode {decode:,.0f}/s | batch {o.batch_size}: {o.loader_samples_per_s:,.0f}/s "
          f"ratio {o.ratio:.2f} | batch {o.amortized_batch_size}: {o.amortized_loader_samples_per_s:,.0f}/s "
          f"ratio {o.amortized_ratio:.2f} | fixed per batch {per_batch}")
