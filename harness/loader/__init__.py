"""torch DataLoader over any format's shards, every sample exactly once per epoch whatever the workers: a
worker's dataset (datasets) decodes samples or column blocks, runs the track's per-sample transform
(transforms) and assembles the batch by one copy (batches) straight into a shared-memory slot of its ring
(ring); only the slot number crosses to the main process, which lends the slot's rows to the batch as tensors
until they are garbage, and every batch carries STAGE_KEY, the worker's decode, transform and collate seconds.
make_loader (build) picks dataset, sampler and transport from a LoaderConfig; docs/loader.md tells the
design and the measurements behind it."""

from feedtax.loader.batches import INDEX_KEY, STAGE_KEY, Parts, assemble, stack, to_tensors
from feedtax.loader.build import FeedLoader, LoaderConfig, make_loader, ring_slots
from feedtax.loader.datasets import ShardSamples, ShardStream, SyntheticBatches, shard_lengths
from feedtax.loader.ring import ShmRing
from feedtax.loader.transforms import (
    TRACK_TRANSFORMS,
    Transform,
    chain,
    normalize_frames,
    spectrogram,
    token_shift,
    transform_for,
)

__all__ = [
    "INDEX_KEY", "STAGE_KEY", "TRACK_TRANSFORMS", "FeedLoader", "LoaderConfig", "Parts", "ShardSamples",
    "ShardStream", "ShmRing", "SyntheticBatches", "Transform", "assemble", "chain", "make_loader",
    "normalize_frames", "ring_slots", "shard_lengths", "spectrogram", "stack", "to_tensors", "token_shift",
    "transform_for",
]
