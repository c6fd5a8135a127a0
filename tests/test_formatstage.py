"""The format stage's figures are consistent with the files it wrote and the samples it read."""

from __future__ import annotations

import pytest

from feedtax import formats
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
