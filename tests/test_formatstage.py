"""The format stage's figures are consistent with the files it wrote and the samples it read."""

from __future__ import annotations

import pytest

from feedtax import formats
from feedtax.bench import formatstage
from feedtax.bench.formatstage import measure_format, samples_within_budget


@pytest.mark.parametrize("fmt", ["parquet", "raw"])
def test_sizes_ratios_and_rates_are_consistent(tmp_path, track_samples, fmt):
    samples = track_samples["edge"]
    r, paths = measure_format("edge", fmt, samples, tmp_path, samples_per_shard=10, warmups=1, repeats=5,
                              min_time_s=0.0)
    size = sum(p.stat().st_size for p in paths)
    assert (r.n_samples, r.n_shards, r.bytes_on_disk) == (24, 3, size)
    assert r.bytes_per_sample == pytest.approx(size / 24)
    assert r.raw_bytes_per_sample == 24 * 24 * 3 + 8
    assert r.compression_ratio == pytest.approx(r.raw_bytes_per_sample * 24 / size)
    for rate, mb in ((r.decode_samples_per_s_warm, r.decode_mb_per_s_warm),
                     (r.decode_samples_per_s_cold, r.decode_mb_per_s_cold)):
        assert rate.n == 5 and rate.min <= rate.median <= rate.max
        # samples/s and MB/s come from the same timings: their ratio is the bytes per sample
        assert mb.median * 1e6 / rate.median == pytest.approx(size / 24, rel=1e-6)
    assert r.cold_cache.evicted, "shards under pytest's tmp dir are on disk here; eviction must be confirmed"
    assert r.random_access == formats.get(fmt).random_access
    assert len(list(formats.get(fmt).iter_samples(paths))) == 24
    assert [p.name for p in tmp_path.iterdir()] == [f"edge-{fmt}"], "scratch copies must be cleaned up"


def test_budget_measures_whole_shards_and_at_least_one(tmp_path, track_samples):
    samples = track_samples["edge"]  # 24 samples
    codec = formats.get("json")
    tiny = samples_within_budget(codec, samples, tmp_path / "s", samples_per_shard=5, passes=18, budget_s=1e-9)
    ample = samples_within_budget(codec, samples, tmp_path / "s", samples_per_shard=5, passes=18, budget_s=1e9)
    assert (tiny, ample) == (5, 24)
    assert not (tmp_path / "s").exists()
    r, paths = measure_format("edge", "json", samples, tmp_path, samples_per_shard=5, warmups=1, repeats=5,
                              min_time_s=0.0, budget_s=1e-9)
    assert (r.n_samples, r.n_shards, len(paths)) == (5, 1, 1)


@pytest.mark.parametrize("fmt", formats.NAMES)
def test_shard_bytes_predicts_the_shards_from_a_few_samples(tmp_path, fmt):
    """The pre-flight estimate of a run's disk use: from 8 samples, the bytes 200 take in shards of 50 on disk
    (whole pages), within the margin the runner allows it."""
    from feedtax import datasets
    from feedtax.bench.ondisk import ESTIMATE_MARGIN
    from feedtax.bench.profiles import get

    for track in datasets.TRACKS:
        samples = list(datasets.generate(track, 200, 3, get("ci").sizes))
        paths = formats.get(fmt).write(samples, tmp_path / track, samples_per_shard=50)
        written = sum(p.stat().st_blocks * 512 for p in paths)
        estimate = formatstage.shard_bytes(fmt, samples[:8], 200, 50)
        assert written / ESTIMATE_MARGIN <= estimate <= written * ESTIMATE_MARGIN, (track, estimate, written)


def test_an_interrupted_encode_leaves_no_scratch_shards(tmp_path, track_samples, monkeypatch):
    """Ctrl-C, SIGTERM or SIGHUP mid-encode (a KeyboardInterrupt in the run) leaves only what was there."""
    calls = []

    def stop(*a, **kw):
        calls.append(real(*a, **kw))
        if len(calls) > 2:  # with shards written
            raise KeyboardInterrupt
        return calls[-1]

    from feedtax.formats import base

    real = base.write_shards
    monkeypatch.setattr(base, "write_shards", stop)
    with pytest.raises(KeyboardInterrupt):
        measure_format("edge", "raw", track_samples["edge"], tmp_path, samples_per_shard=10, warmups=1, repeats=3,
                       min_time_s=0.0)
    assert list(tmp_path.iterdir()) == []
