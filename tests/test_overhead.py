"""The loader's own overhead against decode: both batches paired, the ring's batch cap, older results files."""

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
    assert o.meets_target == (o.amortized_paired_ratio >= 0.9)
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
