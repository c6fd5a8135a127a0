"""The `default` loader: what a student writes without feedtax, a torch Dataset over the same shards decoded by the
same codec (and the track's transform, per sample), in a stock DataLoader with torch's default settings that batches
with default_collate. The sweep measures it beside feedtax's tuned loader; the overhead check holds the tuned one to it.

Two datasets, as a user would pick: IndexedSamples (map-style, one `read_sample` per item, for formats with random
access) and StreamedSamples (an IterableDataset streaming `iter_samples`, whole shards split across workers with
get_worker_info). plain_loader builds the DataLoader; docs/measurement.md says which is used where.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from torch.utils.data import DataLoader, Dataset, IterableDataset, default_collate, get_worker_info

from feedtax import formats
from feedtax.formats.base import Sample
from feedtax.loader import Transform, shard_lengths

Access = Literal["index", "stream"]
# torch warns once per process when it wraps a read-only array (raw's memory map, arrow's buffers): it copies
# nothing there, the batch is a fresh stack, so the warning says nothing about the measurement
_READ_ONLY = "The given NumPy array is not writable"
warnings.filterwarnings("ignore", message=_READ_ONLY, category=UserWarning)  # in this process (and forked workers)


class IndexedSamples(Dataset):
    """Map-style: item i is the i-th sample of the shards in order, read alone with the codec's read_sample."""

    def __init__(self, fmt: str, paths: Sequence[Path], transform: Transform | None = None):
        self.fmt, self.transform, self.rng = fmt, transform, np.random.default_rng(0)
        self.codec = formats.get(fmt)
        if not self.codec.random_access:
            raise ValueError(f"{fmt} has no random access ({self.codec.random_access_note}): use StreamedSamples")
        self.paths = [Path(p) for p in paths]
        self.starts = np.cumsum([0, *shard_lengths(fmt, self.paths)])  # per shard, not per sample: any dataset size

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, i: int) -> Sample:
        if not 0 <= i < len(self):
            raise IndexError(f"sample {i} of {len(self)}")
        shard = int(np.searchsorted(self.starts, i, side="right") - 1)
        sample = self.codec.read_sample(self.paths[shard], int(i - self.starts[shard]))
        return sample if self.transform is None else self.transform(sample, self.rng)


class StreamedSamples(IterableDataset):
    """Iterable: the shards' samples streamed by the codec's iter_samples, shard k to worker k mod workers
    (every shard in the main process), so each sample comes once per epoch whatever the workers."""

    def __init__(self, fmt: str, paths: Sequence[Path], transform: Transform | None = None):
        self.fmt, self.transform, self.rng = fmt, transform, np.random.default_rng(0)
        self.codec = formats.get(fmt)
        self.paths = [Path(p) for p in paths]

    def __iter__(self) -> Iterator[Sample]:
        info = get_worker_info()
        mine = self.paths if info is None else self.paths[info.id::info.num_workers]
        if self.transform is None:
            return self.codec.iter_samples(mine)
        return (self.transform(s, self.rng) for s in self.codec.iter_samples(mine))


def default_access(fmt: str) -> Access:
    """How a user reads a format's samples: by index where it has random access, else streamed."""
    return "index" if formats.get(fmt).random_access else "stream"


def plain_dataset(fmt: str, paths: Sequence[Path], access: Access | None = None,
                  transform: Transform | None = None) -> Dataset:
    """IndexedSamples or StreamedSamples (default_access unless given), each sample through transform if given."""
    access = access or default_access(fmt)
    if access not in ("index", "stream"):
        raise ValueError(f"access must be 'index' or 'stream', not {access!r}")
    return IndexedSamples(fmt, paths, transform) if access == "index" else StreamedSamples(fmt, paths, transform)


def _quiet_read_only(_worker: int) -> None:
    warnings.filterwarnings("ignore", message=_READ_ONLY, category=UserWarning)


def plain_loader(fmt: str, paths: Sequence[Path], batch_size: int, *, num_workers: int = 1,
                 access: Access | None = None, persistent_workers: bool = False, transform: Transform | None = None,
                 pin_memory: bool = False) -> DataLoader:
    """torch's DataLoader over plain_dataset, batches of batch_size stacked by default_collate (dicts of tensors),
    no shuffle, the last batch kept short, every other setting torch's default. persistent_workers keeps the
    workers between epochs (the overhead check's timed epochs then do not pay process start-up)."""
    return DataLoader(plain_dataset(fmt, paths, access, transform), batch_size=batch_size, num_workers=num_workers,
                      collate_fn=default_collate, persistent_workers=persistent_workers and num_workers > 0,
                      pin_memory=pin_memory, worker_init_fn=_quiet_read_only if num_workers > 0 else None)
