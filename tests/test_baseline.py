"""The plain baseline: a stock DataLoader over the codec's samples gives every sample once, with the codec's bytes."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from feedtax import formats
from feedtax.bench.baseline import IndexedSamples, StreamedSamples, plain_dataset, plain_loader

# raw's and arrow's arrays are read-only views: torch says so once when default_collate wraps one
pytestmark = pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")
RANDOM_ACCESS = [f for f in formats.NAMES if formats.get(f).random_access]


def _unbatch(batches) -> list[dict]:
    """default_collate's dicts of stacked tensors back into samples of numpy arrays."""
    out = []
    for batch in batches:
        assert all(isinstance(v, torch.Tensor) for v in batch.values())
        n = len(next(iter(batch.values())))
        out += [{k: v[i].numpy() for k, v in batch.items()} for i in range(n)]
    return out


@pytest.mark.parametrize("fmt", formats.NAMES)
def test_streamed_samples_are_the_codecs_each_once_in_order(shard_sets, sample_digest, fmt):
    samples, paths = shard_sets
    got = _unbatch(plain_loader(fmt, paths[fmt], 4, num_workers=0, access="stream"))
    decoded = list(formats.get(fmt).iter_samples(paths[fmt]))
    assert [sample_digest(s) for s in got] == [sample_digest(s) for s in decoded]
    assert Counter(map(sample_digest, got)) == Counter(map(sample_digest, samples))  # the round trip: as written


@pytest.mark.parametrize("fmt", RANDOM_ACCESS)
def test_indexed_samples_are_the_codecs_each_once_in_order(shard_sets, sample_digest, fmt):
    samples, paths = shard_sets
    loader = plain_loader(fmt, paths[fmt], 4, num_workers=0, access="index")
    assert isinstance(loader.dataset, IndexedSamples) and len(loader.dataset) == len(samples)
    got = _unbatch(loader)
    assert [sample_digest(s) for s in got] == [sample_digest(s) for s in formats.get(fmt).iter_samples(paths[fmt])]
    sizes = [len(next(iter(b.values()))) for b in loader]
    assert sizes == [4] * (len(samples) // 4) + ([len(samples) % 4] if len(samples) % 4 else [])  # the last one short


@pytest.mark.parametrize("fmt", formats.NAMES)
def test_workers_share_the_shards_so_every_sample_comes_once(shard_sets, sample_digest, fmt):
    samples, paths = shard_sets
    want = Counter(map(sample_digest, samples))
    for workers in (1, 2):
        loader = plain_loader(fmt, paths[fmt], 4, num_workers=workers, persistent_workers=True)
        for _ in range(2):  # a second epoch over the same (persistent) workers delivers them all again
            assert Counter(map(sample_digest, _unbatch(loader))) == want, (fmt, workers)


def test_the_default_dataset_is_indexed_where_the_format_has_random_access(shard_sets):
    _, paths = shard_sets
    for fmt in formats.NAMES:
        ds = plain_dataset(fmt, paths[fmt])
        assert isinstance(ds, IndexedSamples if formats.get(fmt).random_access else StreamedSamples), fmt


def test_index_access_without_random_access_and_an_unknown_access_are_refused(shard_sets):
    _, paths = shard_sets
    stream_only = next(f for f in formats.NAMES if not formats.get(f).random_access)
    with pytest.raises(ValueError, match=f"{stream_only} has no random access"):
        plain_dataset(stream_only, paths[stream_only], "index")
    with pytest.raises(ValueError, match="access must be 'index' or 'stream'"):
        plain_dataset("raw", paths["raw"], "mmap")
