"""Harness overhead: feedtax's loader at 1 worker against a plain torch DataLoader at 1 worker (same shards, same
decoder, default_collate) and against the format's one-process decode rate.

Runs feedtax.bench.overhead.loader_overhead (what results.json reports): paired rounds that alternate a decode
pass, a timed copy of the amortized batch's bytes, the plain loader's pass and feedtax's, at the sweep's batch (64
here) and at an amortized batch whose decode takes AMORTIZED_BATCH_DECODE_S; the fixed per-batch cost comes from
the two. The check: feedtax / plain >= VS_PLAIN_TARGET at both batches, and the amortized paired ratio to decode
>= vocabulary.OVERHEAD_TARGET where decode costs more per byte than the copy. Also printed: the ratio with no
worker (the cost of forming batches alone) and the worker's split of its batch time. Results go to extra_info.
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


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("ok" if ok else "FAILS")


@pytest.mark.parametrize("kind", ["cloud", "edge", "tiny"])
@pytest.mark.parametrize("fmt", formats.NAMES)
def test_loader_one_worker_vs_plain_and_decode(benchmark, bench_samples, tmp_path, fmt, kind):
    codec = formats.get(fmt)
    paths = codec.write(bench_samples[kind], tmp_path, samples_per_shard=250)
    decode = _decode_rate(codec, paths)
    benchmark.group = f"loader 1 worker {kind}"
    o = benchmark.pedantic(lambda: loader_overhead(kind, fmt, paths, decode_samples_per_s=decode, batch_size=64),
                           rounds=1, iterations=1)
    benchmark.extra_info.update(o.model_dump())
    per_batch = f"{o.per_batch_s * 1e3:.2f} ms" if o.per_batch_s is not None else "n/a"
    lo, hi = o.amortized_paired_ratio_iqr
    plo, phi = o.vs_plain_ratio_iqr
    alo, ahi = o.amortized_vs_plain_ratio_iqr
    applies = "applies" if o.decode_target_applies else "n/a"
    print(f"\n{kind} {fmt}: vs plain DataLoader ({o.plain_dataset}): batch {o.batch_size} {o.vs_plain_ratio:.2f} "
          f"[{plo:.2f}-{phi:.2f}] ({o.loader_samples_per_s:,.0f} vs {o.plain_samples_per_s:,.0f}/s), "
          f"batch {o.amortized_batch_size} {o.amortized_vs_plain_ratio:.2f} [{alo:.2f}-{ahi:.2f}] "
          f"({o.amortized_loader_samples_per_s:,.0f} vs {o.amortized_plain_samples_per_s:,.0f}/s) | "
          f"vs decode {o.paired_decode_samples_per_s:,.0f}/s: batch {o.batch_size} {o.paired_ratio:.2f} "
          f"(no worker {o.in_process_ratio:.2f}), batch {o.amortized_batch_size} {o.amortized_paired_ratio:.2f} "
          f"[{lo:.2f}-{hi:.2f}] (no worker {o.amortized_in_process_ratio:.2f}) | per byte: decode "
          f"{o.decode_s_per_byte * 1e9:.3f} ns, copy {o.copy_s_per_byte * 1e9:.3f} ns: decode target {applies} | "
          f"fixed per batch {per_batch} | 1 worker per batch: decode {o.amortized_worker_decode_s_per_batch * 1e3:.2f} "
          f"copy {o.amortized_worker_collate_s_per_batch * 1e3:.2f} of {o.amortized_wall_s_per_batch * 1e3:.2f} ms | "
          f"check: plain {_verdict(o.meets_plain_target)}, decode {_verdict(o.meets_decode_target)}, "
          f"overall {_verdict(o.meets_target)}")
