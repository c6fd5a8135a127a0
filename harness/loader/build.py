"""The loader's configuration and construction: LoaderConfig, make_loader (dataset, sampler and transport
chosen from the config) and FeedLoader, the main process's side (tensors, pinning, shard errors raised)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, IterableDataset

from feedtax import formats
from feedtax.formats.base import ShardError
from feedtax.loader.batches import Parts, assemble, to_tensors
from feedtax.loader.datasets import ShardSamples, ShardStream, _EpochPermutations, _ShardFailure
from feedtax.loader.ring import ShmRing
from feedtax.loader.throttle import Throttle, active
from feedtax.loader.transforms import Transform

OVERSUBSCRIBED = "This DataLoader will create"  # the start of torch's warning about more workers than cores


@contextmanager
def _oversubscription_expected() -> Iterator[None]:
    """Sweeps oversubscribe cores on purpose (workers up to 2x cores): torch's warning about it, given
    when the DataLoader is made and when its workers start, is expected there and silenced, only there."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=OVERSUBSCRIBED, category=UserWarning)
        yield


@dataclass(frozen=True)
class LoaderConfig:
    """The DataLoader's knobs. shuffle_samples on a random-access format reads by index (a global
    permutation); on a stream-only format it uses a per-worker shuffle buffer of shuffle_buffer."""

    batch_size: int = 32
    num_workers: int = 0
    prefetch_factor: int = 2
    pin_memory: bool = False
    persistent_workers: bool = False
    shuffle_shards: bool = False
    shuffle_samples: bool = False
    shuffle_buffer: int = 256
    seed: int = 0
    epochs: int = 1
    drop_last: bool = False
    transport: Literal["ring", "numpy", "tensor"] = "ring"  # worker -> main; see ShmRing
    random_access: bool = True  # with shuffle_samples: use index reads where the format allows


class FeedLoader:
    """A DataLoader plus the main-side conversion to tensors (and pinning, where CUDA exists)."""

    def __init__(self, dataloader: DataLoader, *, pin: bool, mode: str, ring: ShmRing | None = None):
        self.dataloader, self.pin, self.mode, self.ring = dataloader, pin, mode, ring

    def __iter__(self) -> Iterator[dict]:
        if self.ring is not None and not self.dataloader.persistent_workers:
            self.ring.forget()  # the previous pass's workers are gone: unmap their rings
        with _oversubscription_expected():
            batches = iter(self.dataloader)
        try:
            for batch in batches:
                if isinstance(batch, _ShardFailure):
                    raise ShardError(batch.path, batch.position, batch.problem)
                batch = to_tensors(batch)
                if self.pin:
                    batch = {k: v.pin_memory() if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
                yield batch
        finally:
            # a raised error's traceback keeps this frame's locals: drop the iterator so its workers shut down now
            del batches


def _assembled_tensors(item: Parts | dict | _ShardFailure) -> dict | _ShardFailure:
    """The "tensor" transport's collate_fn: torch tensors, which torch moves to shared memory per batch."""
    return item if isinstance(item, _ShardFailure) else to_tensors(assemble(item))


def ring_slots(config: LoaderConfig) -> int:
    """Slots per worker's ring: a worker normally has at most prefetch_factor batches requested, plus
    the batch the consumer holds and the one replacing it (more are requested only once other
    workers have finished, or when the consumer keeps batches: those cross as pickled numpy)."""
    return config.prefetch_factor + 2


def make_loader(fmt: str, paths: Sequence[Path], config: LoaderConfig = LoaderConfig(), *,
                transform: Transform | None = None, with_index: bool = False,
                dataset: Dataset | IterableDataset | None = None, throttle: Throttle | None = None) -> FeedLoader:
    """A loader over a format's shards (or over `dataset`, which must yield batches like ShardStream).

    pin_memory is honoured only where CUDA is available (pinning needs a CUDA context). throttle: shard reads at a
    disk tier's pace (feedtax.loader.throttle); by default the one of an enclosing throttle.applied() block, if any.
    """
    w = config.num_workers
    sampler = None
    if dataset is None:
        if config.shuffle_samples and config.random_access and formats.get(fmt).random_access:
            dataset = ShardSamples(fmt, paths, transform=transform, seed=config.seed, with_index=with_index)
            base = _EpochPermutations(len(dataset), config.epochs, config.seed)
            sampler = BatchSampler(base, config.batch_size, config.drop_last)
        else:
            dataset = ShardStream(
                fmt, paths, batch_size=config.batch_size, shuffle_shards=config.shuffle_shards,
                shuffle_samples=config.shuffle_samples, shuffle_buffer=config.shuffle_buffer, seed=config.seed,
                epochs=config.epochs, drop_last=config.drop_last, transform=transform, with_index=with_index,
            )
    mode = "index" if sampler is not None else "stream"
    pin = config.pin_memory and torch.cuda.is_available()
    ring = ShmRing(config.batch_size, ring_slots(config)) if w > 0 and config.transport == "ring" else None
    if isinstance(dataset, (ShardStream, ShardSamples)):  # None: no slots to write into (no ring, or a reused dataset)
        dataset.sink = ring  # the same object as the workers' collate_fn (fork copies, spawn pickles, both together)
        dataset.throttle = throttle if throttle is not None else active()
    collate = ring or (_assembled_tensors if w > 0 and config.transport == "tensor" else assemble)
    with _oversubscription_expected():
        dl = DataLoader(
            dataset, batch_size=None, sampler=sampler, num_workers=w, collate_fn=collate,
            prefetch_factor=config.prefetch_factor if w > 0 else None,
            persistent_workers=config.persistent_workers and w > 0,
        )
    return FeedLoader(dl, pin=pin, mode=mode, ring=ring)
