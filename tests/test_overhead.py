"""The loader's own overhead against a plain DataLoader and decode: both batches paired, the paired-round arithmetic,
the target rule, the ring's batch cap, older results files."""

from __future__ import annotations

import pytest

from feedtax import formats


def test_loader_overhead_reports_both_batches_paired(tmp_path, track_samples):
    from feedtax.bench.overhead import AMORTIZED_BATCH_DECODE_S, loader_overhead
    from feedtax.results.feeding import LoaderOverhead

    paths = formats.get("raw").write(track_samples["tiny"], tmp_path, samples_per_shard=8)
    o = loader_overhead("tiny", "raw", paths, decode_samples_per_s=20000.0, batch_size=4, rounds=3)
    assert isinstance(o, LoaderOverhead) and o.column_batches and o.batch_size == 4 and o.rounds == 3
    assert o.amortized_batch_size == round(20000 * AMORTIZED_BATCH_DECODE_S)
    assert o.ratio == pytest.approx(o.loader_samples_per_s / 20000.0)
    assert o.amortized_ratio == pytest.approx(o.amortized_loader_samples_per_s / 20000.0)
    assert o.per_batch_s is not None
    lo, hi = o.amortized_paired_ratio_iqr
    assert 0 < lo <= o.amortized_paired_ratio <= hi
    assert o.paired_decode_samples_per_s > 0 and o.in_process_ratio > 0 and o.amortized_in_process_ratio > 0
    assert o.plain_dataset == "stream" and o.plain_samples_per_s > 0 and o.amortized_plain_samples_per_s > 0
    for ratio, (q1, q3) in ((o.vs_plain_ratio, o.vs_plain_ratio_iqr),
                            (o.amortized_vs_plain_ratio, o.amortized_vs_plain_ratio_iqr)):
        assert 0 < q1 <= ratio <= q3
    assert o.raw_bytes_per_sample == sum(v.nbytes for v in track_samples["tiny"][0].values())
    assert o.decode_s_per_byte == pytest.approx(1 / (o.paired_decode_samples_per_s * o.raw_bytes_per_sample))
    share = o.decode_s_per_byte / (o.decode_s_per_byte + o.copy_s_per_byte)
    assert o.copy_s_per_byte > 0 and o.decode_target_applies == (share >= 0.9)
    decode_ok = o.amortized_paired_ratio >= 0.9 or not o.decode_target_applies
    assert o.meets_target == (min(o.vs_plain_ratio, o.amortized_vs_plain_ratio) >= 1.0 and decode_ok)
    busy = o.amortized_worker_decode_s_per_batch + o.amortized_worker_collate_s_per_batch
    assert 0 < busy < 1.5 * o.amortized_wall_s_per_batch  # per batch, one clock: a worker is never busier than the wall
    LoaderOverhead.model_validate_json(o.model_dump_json())


def test_max_batch_bytes_keeps_the_ring_within_shared_memory(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from feedtax.bench.overhead import AMORTIZED_BATCH_MAX_BYTES, max_batch_bytes

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(64 << 20, 0, 64 << 20))  # Docker's default /dev/shm
    assert 4 * max_batch_bytes(4) <= 16 << 20  # four slots within a quarter of it
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(24 << 30, 0, 24 << 30))
    assert max_batch_bytes(4) == AMORTIZED_BATCH_MAX_BYTES  # plenty: the cap binds
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(1 << 20, 0, 1 << 20))
    assert max_batch_bytes(4) == 1 << 20  # nearly none: the floor
    monkeypatch.undo()
    assert max_batch_bytes(4, shm=str(tmp_path / "absent")) == 4 << 20


def test_loader_overhead_of_an_older_results_file_still_loads():
    from feedtax.results.feeding import LoaderOverhead

    old = {"track": "edge", "format": "raw", "batch_size": 16, "loader_samples_per_s": 1.0, "decode_samples_per_s": 2.0,
           "ratio": 0.5, "amortized_batch_size": 64, "amortized_loader_samples_per_s": 1.5, "amortized_ratio": 0.75,
           "per_batch_s": None, "column_batches": True}
    o = LoaderOverhead.model_validate(old)
    assert o.amortized_paired_ratio is None and o.meets_target is None
    paired = LoaderOverhead.model_validate(old | {"amortized_paired_ratio": 0.95, "rounds": 5})
    assert paired.vs_plain_ratio is None and paired.meets_target is None  # before the plain baseline: no verdict


def test_the_plain_baseline_can_be_the_indexed_dataset(tmp_path, track_samples):
    from feedtax.bench.overhead import loader_overhead

    paths = formats.get("raw").write(track_samples["tiny"], tmp_path, samples_per_shard=8)
    o = loader_overhead("tiny", "raw", paths, decode_samples_per_s=20000.0, batch_size=4, rounds=1,
                        plain_access="index")
    assert o.plain_dataset == "index" and o.plain_samples_per_s > 0 and o.rounds == 1
    assert o.vs_plain_ratio_iqr[0] == o.vs_plain_ratio == o.vs_plain_ratio_iqr[1]  # one round: no spread


def test_paired_ratio_is_the_median_of_per_round_ratios_with_quartiles():
    from feedtax.bench.overhead import paired_ratio

    assert paired_ratio([2, 4, 6, 8, 10], [1, 2, 3, 4, 5]) == (2.0, (2.0, 2.0))  # drift cancels round by round
    assert paired_ratio([1, 2, 3, 4, 5], [1, 1, 1, 1, 1]) == (3.0, (2.0, 4.0))
    # not the ratio of medians: each round's numerator goes with its own denominator
    median, _ = paired_ratio([10, 1, 5], [10, 1, 1])
    assert median == 1.0 and 5 / 1 != median
    assert paired_ratio([3.0], [0.0]) == (0.0, (0.0, 0.0))  # a round with nothing to compare to
    with pytest.raises(ValueError):
        paired_ratio([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="no rounds"):
        paired_ratio([], [])


def test_copy_seconds_times_a_copy():
    from feedtax.bench.overhead import copy_seconds

    assert copy_seconds(1 << 16, repeats=2) > 0 and copy_seconds(0) > 0


def test_the_decode_target_applies_only_where_a_loader_making_one_copy_can_reach_it():
    from feedtax.results.feeding import decode_share_with_one_copy, decode_target_applies

    assert decode_share_with_one_copy(3.0, 1.0) == 0.75 and decode_share_with_one_copy(0.0, 0.0) == 0.0
    assert decode_target_applies(2e-9, 1e-10)  # a text format: parsing a byte costs 20 copies of it
    assert decode_target_applies(9.0, 1.0)  # 9 copies: the share is 0.9, the target exactly
    assert not decode_target_applies(5e-10, 1e-10)  # costlier than a copy, but one copy still holds it to 0.83
    assert not decode_target_applies(5e-11, 1e-10)  # cheaper than the copy: at most half the decode rate
    assert decode_target_applies(5e-10, 1e-10, target=0.8) and not decode_target_applies(1.0, 1.0, target=0.51)


def _overhead(**fields):
    from feedtax.results.feeding import LoaderOverhead

    base = {"track": "edge", "format": "raw", "batch_size": 16, "loader_samples_per_s": 1.0,
            "decode_samples_per_s": 1.0, "ratio": 1.0, "amortized_batch_size": 64,
            "amortized_loader_samples_per_s": 1.0, "amortized_ratio": 1.0, "per_batch_s": None,
            "column_batches": True, "amortized_paired_ratio": 0.95, "vs_plain_ratio": 1.2,
            "amortized_vs_plain_ratio": 1.1, "decode_s_per_byte": 2e-9, "copy_s_per_byte": 1e-10,
            "decode_target_applies": True}
    return LoaderOverhead.model_validate(base | fields)


def test_meets_target_asks_for_the_plain_loaders_rate_everywhere_and_decode_only_where_it_applies():
    assert _overhead().meets_target is True
    assert _overhead(amortized_paired_ratio=0.8).meets_target is False  # applies: below OVERHEAD_TARGET fails
    far_below = _overhead(amortized_paired_ratio=0.5, decode_target_applies=False, decode_s_per_byte=5e-10)
    assert far_below.meets_target is True and far_below.meets_decode_target is None  # does not apply: not held to it
    assert _overhead(vs_plain_ratio=0.99).meets_target is False  # the sweep's batch
    assert _overhead(amortized_vs_plain_ratio=0.99, decode_target_applies=False).meets_target is False
    assert _overhead(vs_plain_ratio=1.0, amortized_vs_plain_ratio=1.0, amortized_paired_ratio=0.9).meets_target
    assert _overhead(vs_plain_ratio=None).meets_target is None  # measured before the plain baseline
    assert _overhead(decode_target_applies=None).meets_target is None
