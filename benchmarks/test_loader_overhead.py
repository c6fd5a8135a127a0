"""Harness overhead: the DataLoader at 1 worker vs the format's one-process decode rate, same shards.

Each benchmark round streams the shards 4 times through one worker (start-up excluded); the ratio
loader / decode is recorded in extra_info ("ratio") and printed. The issue's check wants >= 0.9.
Run: python -m pytest benchmarks/test_loader_overhead.py -s"""

from __future__ import annotations

import time

import pytest

import formats
from benchmarks.conftest import N
from harness.loader import LoaderConfig, make_loader

EPOCHS = 4


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
    loader = make_loader(fmt, paths, LoaderConfig(batch_size=64, num_workers=1, epochs=EPOCHS, persistent_workers=True))
    next(iter(loader))  # start the worker outside the timing

    def stream() -> int:
        return sum(len(b[next(k for k in b if not k.startswith("_"))]) for b in loader)

    benchmark.group = f"loader 1 worker {kind}"
    count = benchmark.pedantic(stream, rounds=3, iterations=1)
    assert count == N * EPOCHS
    rate = N * EPOCHS / benchmark.stats.stats.min
    benchmark.extra_info.update(decode_samples_per_s=decode, loader_samples_per_s=rate, ratio=rate / decode)
    print(f"\n{kind} {fmt}: decode {decode:,.0f}/s, loader@1 {rate:,.0f}/s, ratio {rate / decode:.2f}")
