"""The loader's torch datasets and sampler (feedtax.loader.datasets): shards dealt to workers, the columnar
formats' column API the stream slices batches from, index reads, synthetic batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import digest

from feedtax import formats
from feedtax.formats.base import ShardError
from feedtax.loader import LoaderConfig, make_loader, shard_lengths
from feedtax.loader.datasets import ShardSamples, ShardStream, SyntheticBatches, _EpochPermutations

COLUMNAR = ["raw", "parquet", "csv"]






def test_shards_are_dealt_round_robin_and_cover_all():
    ds = ShardStream("raw", [f"s{i}" for i in range(7)], batch_size=2, shuffle_shards=True, seed=0)
    dealt = [ds.shards_of(w, 3, epoch=0) for w in range(3)]
    assert sorted(sum(dealt, [])) == list(range(7))
    assert [len(d) for d in dealt] == [3, 2, 2]


def test_synthetic_batches_split_across_workers():
    batch = {"x": np.arange(8, dtype=np.float32).reshape(4, 2)}
    loader = make_loader("raw", [], LoaderConfig(num_workers=2), dataset=SyntheticBatches(batch, 5))
    got = list(loader)
    assert len(got) == 5 and all(torch.equal(b["x"], torch.from_numpy(batch["x"])) for b in got)


@pytest.mark.parametrize("fmt", COLUMNAR)
def test_column_api_matches_samples(shard_sets, fmt):
    samples, paths = shard_sets
    codec = formats.get(fmt)
    assert codec.columnar
    rows = []
    for p in paths[fmt]:
        for cols in codec.iter_columns(p):
            n = len(next(iter(cols.values())))
            assert all(len(v) == n for v in cols.values())
            rows += [{k: v[i] for k, v in cols.items()} for i in range(n)]
    assert [digest(r) for r in rows] == [digest(s) for s in samples]


def test_non_columnar_formats_say_so(shard_sets):
    _, paths = shard_sets
    codec = formats.get("json")
    assert not codec.columnar
    with pytest.raises(NotImplementedError):
        codec.iter_columns(paths["json"][0])


def test_epoch_permutations_are_seeded_and_hold_each_index_once_per_epoch():
    order = list(_EpochPermutations(7, 2, seed=3))
    assert sorted(order[:7]) == sorted(order[7:]) == list(range(7)) and order[:7] != order[7:]
    assert order == list(_EpochPermutations(7, 2, seed=3)) and len(_EpochPermutations(7, 2, seed=3)) == 14


def test_index_reads_locate_rows_and_refuse_stream_only_formats(shard_sets):
    _, paths = shard_sets
    ds = ShardSamples("raw", paths["raw"])
    assert len(ds) == 23 and ds.locate(0) == (0, 0) and ds.locate(12) == (2, 2) and ds.locate(22) == (4, 2)
    with pytest.raises(ValueError):
        ShardSamples("json", paths["json"])


@pytest.mark.parametrize("fmt", ["raw", "parquet"])
def test_shard_lengths_come_from_checked_headers(tmp_path, track_samples, fmt):
    """Set-up reads each shard's count through the codec: a damaged footer or a truncation is the codec's
    ShardError naming the file (pyarrow's ArrowInvalid or OSError before), whether or not a loader is made."""
    paths = formats.get(fmt).write(track_samples["mobile"][:12], tmp_path, samples_per_shard=5)
    assert shard_lengths(fmt, paths) == [5, 5, 2]
    data = paths[1].read_bytes()
    i = data.index(b'"crop"') + 1  # raw: a field name in the header; parquet: the footer's length
    second = data[:i] + b"b" + data[i + 1:] if fmt == "raw" else data[:-8] + bytes(4) + data[-4:]
    for damaged in (data[: len(data) // 2], second):
        paths[1].write_bytes(damaged)
        for build in (lambda: shard_lengths(fmt, paths),
                      lambda: make_loader(fmt, paths, LoaderConfig(batch_size=4, shuffle_samples=True))):
            with pytest.raises(ShardError) as info:
                build()
            assert info.value.path == paths[1] and info.value.position


@pytest.mark.parametrize("fmt", ["raw", "parquet"])
def test_index_read_past_a_shard_shortened_after_set_up_is_shard_error(tmp_path, track_samples, fmt):
    """A shard rewritten with fewer samples under a loader: the row it held is a ShardError, not an IndexError."""
    codec = formats.get(fmt)
    samples = track_samples["mobile"][:10]
    paths = codec.write(samples, tmp_path, samples_per_shard=5)
    ds = ShardSamples(fmt, paths)
    codec.write(samples[5:8], tmp_path / "short", samples_per_shard=5)[0].replace(paths[1])
    with pytest.raises(ShardError, match="held 5 samples when the loader was made") as info:
        ds[[0, 9]]
    assert info.value.path == paths[1] and info.value.position == "sample 4"
