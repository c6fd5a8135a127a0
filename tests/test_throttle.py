"""loader.throttle: reads through the throttle are byte-exact in every format; the bucket holds a tier's bandwidth at
the reader with 0 and 2 workers (8 MB at 20 MB/s takes 0.4 s); each request adds its latency; a damaged shard still
raises the codec's ShardError; the loader picks up the throttle of an applied() block."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import digest

from feedtax import formats
from feedtax.formats.base import ShardError
from feedtax.loader import LoaderConfig, make_loader
from feedtax.loader.throttle import Throttle, active, applied, throttled

MB = 1e6
FAST = 1e12  # a bandwidth no test reaches: only the latency counts


def _bytes_of(paths) -> int:
    return sum(Path(p).stat().st_size for p in paths)


@pytest.mark.parametrize("fmt", formats.NAMES)
def test_reads_through_the_throttle_are_byte_exact(shard_sets, fmt):
    samples, paths = shard_sets
    codec = formats.get(fmt)
    slow = throttled(codec, Throttle(FAST))
    got = list(slow.iter_samples(paths[fmt]))
    assert [digest(s) for s in got] == [digest(s) for s in samples]
    assert all(a[k].dtype == b[k].dtype and a[k].shape == b[k].shape for a, b in zip(got, samples, strict=True)
               for k in a)
    if codec.columnar:
        cols = [c for p in paths[fmt] for c in slow.iter_columns(p)]
        plain = [c for p in paths[fmt] for c in codec.iter_columns(p)]
        for a, b in zip(cols, plain, strict=True):
            assert all(np.ascontiguousarray(a[k]).tobytes() == np.ascontiguousarray(b[k]).tobytes() for k in a)
    if codec.random_access:
        assert digest(slow.read_sample(paths[fmt][1], 3)) == digest(samples[5 + 3])


@pytest.mark.parametrize("fmt", ["json", "raw"])
def test_a_throttled_loader_delivers_every_sample_unchanged(shard_sets, fmt):
    samples, paths = shard_sets
    loader = make_loader(fmt, paths[fmt], LoaderConfig(batch_size=4, num_workers=2), throttle=Throttle(FAST))
    got = Counter()
    for batch in loader:
        fields = {k: v.numpy() for k, v in batch.items() if not k.startswith("_")}
        got.update(digest({k: v[i] for k, v in fields.items()}) for i in range(len(next(iter(fields.values())))))
    assert got == Counter(digest(s) for s in samples)


@pytest.fixture(scope="module")
def eight_mb(tmp_path_factory):
    """8 raw shards of 10 samples of 100,000 bytes: a little over 8 MB on disk."""
    rng = np.random.default_rng(0)
    samples = [{"x": rng.integers(0, 255, 100_000, dtype=np.uint8)} for _ in range(80)]
    return formats.get("raw").write(samples, tmp_path_factory.mktemp("eight"), samples_per_shard=10)


@pytest.mark.parametrize("workers", [0, 2])
def test_the_bucket_holds_the_bandwidth_at_the_reader(eight_mb, workers):
    """8 MB at 20 MB/s: 0.4 s of reading, whether one process reads or two workers share the bucket."""
    throttle = Throttle(20 * MB)
    loader = make_loader("raw", eight_mb, LoaderConfig(batch_size=10, num_workers=workers), throttle=throttle)
    t0 = time.perf_counter()
    n = sum(len(batch["x"]) for batch in loader)
    wall = time.perf_counter() - t0
    got = throttle.stats()
    assert n == 80 and got.bytes == _bytes_of(eight_mb) and got.requests == len(eight_mb)
    want_s = got.bytes / (20 * MB)
    assert got.bytes_per_s == pytest.approx(20 * MB, rel=0.10)
    assert got.reading_s == pytest.approx(want_s, rel=0.10)
    assert wall >= 0.9 * want_s  # the loader cannot outrun its disk, with any number of workers


def test_each_request_adds_its_latency():
    throttle = Throttle(FAST, latency_s=0.05)
    t0 = time.perf_counter()
    for _ in range(6):
        throttle.read(1)
    assert time.perf_counter() - t0 == pytest.approx(6 * 0.05, rel=0.10)
    assert throttle.stats().requests == 6 and throttle.stats().reading_s == pytest.approx(0.3, rel=0.10)


def test_bandwidth_and_latency_add_up():
    """4 MB in 5 requests at 20 MB/s and 20 ms each: 0.2 s of transfer and 0.1 s of latency."""
    throttle = Throttle(20 * MB, latency_s=0.02)
    t0 = time.perf_counter()
    for _ in range(5):
        throttle.read(800_000)
    assert time.perf_counter() - t0 == pytest.approx(0.3, rel=0.10)
    assert throttle.stats().bytes == 4_000_000


def test_random_access_reads_are_one_request_per_sample(shard_sets):
    samples, paths = shard_sets
    throttle = Throttle(FAST)
    cfg = LoaderConfig(batch_size=4, shuffle_samples=True, seed=2)
    loader = make_loader("raw", paths["raw"], cfg, throttle=throttle)
    assert loader.mode == "index" and sum(len(b["crop"]) for b in loader) == len(samples)
    rows = [5, 5, 5, 5, 3]
    shares = {p: -(-Path(p).stat().st_size // r) for p, r in zip(paths["raw"], rows, strict=True)}
    assert throttle.stats().requests == len(samples)
    assert throttle.stats().bytes == sum(shares[p] * r for p, r in zip(paths["raw"], rows, strict=True))


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_a_damaged_shard_still_raises_the_codecs_error(tmp_path, track_samples, fmt, workers):
    paths = formats.get(fmt).write(track_samples["mobile"][:12], tmp_path, samples_per_shard=4)
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[: len(data) // 2])
    loader = make_loader(fmt, paths, LoaderConfig(batch_size=4, num_workers=workers), throttle=Throttle(FAST))
    with pytest.raises(ShardError) as info:
        for _ in loader:
            pass
    assert info.value.path == paths[1] and info.value.problem


def test_a_missing_shard_is_the_codecs_error(tmp_path):
    with pytest.raises(ShardError, match="no such shard file|No such file"):
        list(throttled(formats.get("json"), Throttle(FAST)).iter_shard(tmp_path / "gone.jsonl"))


def test_applied_sets_the_loaders_default_and_restores_it(shard_sets):
    _, paths = shard_sets
    outer, inner = Throttle(FAST), Throttle(FAST)
    with applied(outer):
        with applied(inner):
            assert active() is inner
            list(make_loader("csv", paths["csv"], LoaderConfig(batch_size=8)))
        assert active() is outer
        list(make_loader("csv", paths["csv"], LoaderConfig(batch_size=8), throttle=Throttle(FAST)))
    assert active() is None
    assert inner.stats().requests == len(paths["csv"]) and outer.stats().requests == 0


@pytest.mark.parametrize("args", [(0.0,), (float("inf"),), (-1.0,), (1e6, -0.1)])
def test_a_bad_tier_is_refused(args):
    with pytest.raises(ValueError, match="must be"):
        Throttle(*args)


def test_reset_empties_the_counters():
    throttle = Throttle(FAST)
    throttle.read(10)
    throttle.reset()
    assert throttle.stats().bytes == 0 and throttle.stats().requests == 0 and throttle.stats().bytes_per_s is None


def test_a_bucket_with_depth_lets_that_burst_through_then_holds_the_rate():
    throttle = Throttle(10 * MB, depth_bytes=1_000_000)
    throttle.read(1_000_000)  # the banked burst: no wait
    assert throttle.stats().reading_s == pytest.approx(0.0, abs=0.02)
    throttle.read(1_000_000)  # then 1 MB at 10 MB/s
    assert throttle.stats().reading_s == pytest.approx(0.1, rel=0.10, abs=0.01)
