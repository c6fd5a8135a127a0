"""The wait breakdown: the binding stage, and no fetch rate from a page cache that was not evicted."""

from __future__ import annotations

from feedtax import formats
from feedtax.bench.breakdown import binding_stage


def test_binding_stage_is_the_slowest():
    assert binding_stage(fetch=100, prep=500, transport=1000, compute=800) == "fetch"
    assert binding_stage(fetch=None, prep=500, transport=1000, compute=800) == "prep"
    assert binding_stage(fetch=None, prep=5000, transport=1000, compute=800) == "compute"


def test_breakdown_gives_no_fetch_rate_when_the_cache_was_not_evicted(tmp_path, track_samples, monkeypatch):
    """Epochs after an eviction run 10x slower, but the eviction reports pages still cached: no fetch rate."""
    import feedtax.bench.breakdown as breakdown
    from feedtax.probes import pagecache

    paths = formats.get("raw").write(track_samples["tiny"], tmp_path, samples_per_shard=8)
    after_eviction = []
    monkeypatch.setattr(pagecache, "evict", lambda paths: after_eviction.append(True) or
                        pagecache.Eviction(evicted=False, resident_fraction=1.0))
    real = breakdown.epoch_rate

    def slow_after_eviction(loader, stages=None):
        secs, n, first = real(loader, stages)
        return (secs * 10 if after_eviction and after_eviction.pop() else secs), n, first

    monkeypatch.setattr(breakdown, "epoch_rate", slow_after_eviction)
    b = breakdown.wait_breakdown("tiny", "raw", paths, num_workers=0, batch_size=4, consumer_per_s=1e6, rounds=2)
    assert not b.cache_evicted and b.fetch_samples_per_s is None and b.binding != "fetch"
    assert b.cold_samples_per_s < b.warm_samples_per_s / 3  # the slow epochs (10x) were there to be mistaken
