"""The plain baseline feedtax's loader is held to: what a user writes without feedtax, a torch Dataset over the same
shards decoded by the same codec, in a stock DataLoader that batches with torch's default_collate.

Two datasets, as a user would pick: IndexedSamples (map-style, one `read_sample` per item, for formats with random
access) and StreamedSamples (an IterableDataset streaming `iter_samples`, whole shards split across workers with
get_worker_info). plain_loader builds the DataLoader; which one the overhead check measures: docs/measurement.md.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from torch.utils.data import DataLoader, Dataset, IterableDataset, default_collate, get_worker_info

from feedtax import formats
from feedtax.formats.base import Sample
from feedtax.loader import shard_lengths

Access = Literal["index", "stream"]
# torch warns once per process when it wraps a read-only array (raw's memory map, arrow's buffers): it copies
# nothing there, the batch is a fresh stack, so the warning says nothing about the measurement
_READ_ONLY = "The given NumPy array is not writable"


class IndexedSamples(Dataset):
    """Map-style: item i is the i-th sample of the shards in order, read alone with the codec's read_sample."""

    def __init__(self, fmt: str, paths: Sequence[Path]):
        self.fmt = fmt
        self.codec = formats.get(fmt)
        if not self.codec.random_access:
            raise ValueError(f"{fmt} has no random access ({self.codec.random_access_note}): use StreamedSamples")
        self.index = [(Path(p), row) for p, n in zip(paths, shard_lengths(fmt, paths), strict=True)
                      for row in range(n)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> Sample:
        return self.codec.read_sample(*self.index[i])


class StreamedSamples(IterableDataset):
    """Iterable: the shards' samples streamed by the codec's iter_samples, shard k to worker k mod workers
    (every shard in the main process), so each sample comes once per epoch whatever the workers."""

    def __init__(self, fmt: str, paths: Sequence[Path]):
        self.fmt = fmt
        self.codec = formats.get(fmt)
        self.paths = [Path(p) for p in paths]

    def __iter__(self) -> Iterator[Sample]:
        info = get_worker_info()
        mine = self.paths if info is None else self.paths[info.id::info.num_workers]
        return self.codec.iter_samples(mine)


def plain_dataset(fmt: str, paths: Sequence[Path], access: Access | None = None) -> Dataset:
    """IndexedSamples or StreamedSamples; by default indexed where the format has random access, as a user
    with an indexable format would write it."""
    if access is None:
        access = "index" if formats.get(fmt).random_access else "stream"
    if access not in ("index", "stream"):
        raise ValueError(f"access must be 'index' or 'stream', not {access!r}")
    return IndexedSamples(fmt, paths) if access == "index" else StreamedSamples(fmt, paths)


def _quiet_read_only(_worker: int) -> None:
    warnings.filterwarnings("ignore", message=_READ_ONLY, category=UserWarning)


def plain_loader(fmt: str, paths: Sequence[Path], batch_size: int, *, num_workers: int = 1,
                 access: Access | None = None, persistent_workers: bool = False) -> DataLoader:
    """torch's DataLoader over plain_dataset, batches of batch_size stacked by default_collate (dicts of tensors),
    no shuffle, the last batch kept short. persistent_workers keeps the workers between epochs, so that timed
    epochs do not pay process start-up."""
    return DataLoader(plain_dataset(fmt, paths, access), batch_size=batch_size, num_workers=num_workers,
                      collate_fn=default_collate, persistent_workers=persistent_workers and num_workers > 0,
                      worker_init_fn=_quiet_read_only if num_workers > 0 else None)
