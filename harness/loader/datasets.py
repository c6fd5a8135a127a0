"""The torch datasets and sampler the loader reads through: whole batches made in the worker from a format's
shards (ShardStream, ShardSamples) or from one ready batch (SyntheticBatches); a damaged shard as _ShardFailure."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from feedtax import formats
from feedtax.formats.base import Sample, ShardError
from feedtax.loader.batches import INDEX_KEY, STAGE_KEY, Parts, _fill
from feedtax.loader.throttle import Throttle, throttled
from feedtax.loader.transforms import Transform

if TYPE_CHECKING:
    from feedtax.loader.ring import ShmRing, _Filled


def _worker() -> tuple[int, int]:
    info = get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


class ShardStream(IterableDataset):
    """Stream whole shards, dealt across DataLoader workers, as batches; any format.

    Whole shards are dealt to workers (shard i goes to worker i mod W, after an optional seeded shard
    shuffle); sample-level shuffle is a seeded buffer inside each worker. A worker with no shard yields
    nothing. sink: the loader's ShmRing, set by make_loader, so batches of samples are written straight
    into a shared-memory slot.

    Without transform or sample shuffle, batches of columnar formats (csv, parquet, raw) are sliced
    from the shard's decoded columns (Codec.iter_columns) and concatenated into the slot by the
    collate_fn; otherwise samples are written into the batch a group at a time (_fill).
    """

    sink: ShmRing | None = None
    throttle: Throttle | None = None  # set by make_loader: shard reads at a disk tier's pace (loader.throttle)

    def __init__(self, fmt: str, paths: Sequence[Path], *, batch_size: int, shuffle_shards: bool = False,
                 shuffle_samples: bool = False, shuffle_buffer: int = 256, seed: int = 0, epochs: int = 1,
                 drop_last: bool = False, transform: Transform | None = None, with_index: bool = False):
        self.fmt, self.paths = fmt, [Path(p) for p in paths]
        self.batch_size, self.shuffle_shards, self.shuffle_samples = batch_size, shuffle_shards, shuffle_samples
        self.shuffle_buffer, self.seed, self.epochs, self.drop_last = max(1, shuffle_buffer), seed, epochs, drop_last
        self.transform, self.with_index = transform, with_index

    def shards_of(self, worker: int, workers: int, epoch: int) -> list[int]:
        """The shard indices one worker reads in one epoch: a seeded order, dealt round robin."""
        order = np.arange(len(self.paths))
        if self.shuffle_shards:
            np.random.default_rng([self.seed, epoch]).shuffle(order)
        return [int(i) for i in order[worker::workers]]

    def _my_shards(self, worker: int, workers: int) -> Iterator[int]:
        for epoch in range(self.epochs):
            yield from self.shards_of(worker, workers, epoch)

    def __iter__(self) -> Iterator[Parts | _Filled | dict | _ShardFailure]:
        worker, workers = _worker()
        codec = throttled(formats.get(self.fmt), self.throttle)
        try:
            if codec.columnar and self.transform is None and not self.shuffle_samples:
                yield from self._column_batches(self._my_shards(worker, workers), codec.iter_columns)
            else:
                yield from self._sample_batches(worker, workers)
        except ShardError as exc:
            yield _ShardFailure.of(exc)

    def _sample_batches(self, worker: int, workers: int) -> Iterator[_Filled | dict]:
        """Batches of samples, written into their destination a group at a time (_fill)."""
        codec = throttled(formats.get(self.fmt), self.throttle)
        rng = np.random.default_rng([self.seed, worker, 1])
        keyed = self.with_index or self.shuffle_samples  # (sample, (shard, row)) pairs, else bare samples

        def samples():
            for shard in self._my_shards(worker, workers):
                rows = codec.iter_shard(self.paths[shard])
                yield from (((s, (shard, row)) for row, s in enumerate(rows)) if keyed else rows)

        stream = samples()
        if self.shuffle_samples:
            stream = _buffer_shuffle(stream, self.shuffle_buffer, np.random.default_rng([self.seed, worker, 2]))
        while (batch := _fill(stream, self.batch_size, sink=self.sink, transform=self.transform, rng=rng,
                              keyed=keyed, with_index=self.with_index, drop_last=self.drop_last)) is not None:
            yield batch

    def _column_batches(self, shards: Iterator[int], reader) -> Iterator[Parts]:
        """Batches of row blocks sliced from each shard's decoded columns, in shard order."""
        size = self.batch_size
        pieces: list[dict[str, np.ndarray]] = []
        ids: list[np.ndarray] = []
        have, decode_s = 0, 0.0

        def emit() -> Parts:
            nonlocal pieces, ids, have, decode_s
            extra = {STAGE_KEY: np.array([decode_s, 0.0, 0.0, have])}
            if self.with_index:
                extra[INDEX_KEY] = np.concatenate(ids)
            parts = Parts({k: [p[k] for p in pieces] for k in pieces[0]}, have, extra)
            pieces, ids, have, decode_s = [], [], 0, 0.0
            return parts

        for shard in shards:
            chunks = reader(self.paths[shard])
            row = 0
            while True:
                t0 = time.perf_counter()
                cols = next(chunks, None)
                decode_s += time.perf_counter() - t0
                if cols is None:
                    break
                n = len(next(iter(cols.values())))
                start = 0
                while start < n:
                    take = min(size - have, n - start)
                    pieces.append({k: v[start:start + take] for k, v in cols.items()})
                    if self.with_index:
                        ids.append(np.stack([np.full(take, shard), np.arange(row + start, row + start + take)], axis=1))
                    have += take
                    start += take
                    if have == size:
                        yield emit()
                row += n
        if have and not self.drop_last:
            yield emit()


def _buffer_shuffle(stream, size: int, rng: np.random.Generator):
    """Seeded shuffle buffer (as tf.data / webdataset): exactly once, locally random order."""
    buf = []
    for item in stream:
        buf.append(item)
        if len(buf) >= size:
            j = int(rng.integers(len(buf)))
            buf[j], buf[-1] = buf[-1], buf[j]
            yield buf.pop()
    rng.shuffle(buf)
    yield from buf


def shard_lengths(fmt: str, paths: Sequence[Path]) -> list[int]:
    """Samples per shard (once, at set-up): from the checked header where the format has one (parquet, raw), by
    streaming otherwise; a damaged shard is its ShardError."""
    codec = formats.get(fmt)
    return [codec.count(p) for p in paths]


def _read_row(codec: formats.Codec, path: Path, row: int, length: int) -> Sample:
    """One sample by index; a shard that no longer holds the row it held at set-up is a ShardError, not an
    IndexError (it was truncated or rewritten under the loader)."""
    try:
        return codec.read_sample(path, row)
    except IndexError:
        raise ShardError(path, f"sample {row}", f"the shard held {length} samples when the loader was made, "
                                                "now fewer") from None


class ShardSamples(Dataset):
    """Random access by (shard, row), for formats that have it: item = a list of global indices (a batch
    of a seeded permutation, cut by a BatchSampler), returned as one batch, read row by row."""

    sink: ShmRing | None = None  # as ShardStream's
    throttle: Throttle | None = None  # as ShardStream's

    def __init__(self, fmt: str, paths: Sequence[Path], *, transform: Transform | None = None,
                 seed: int = 0, with_index: bool = False):
        codec = formats.get(fmt)
        if not codec.random_access:
            raise ValueError(f"{fmt} has no random access ({codec.random_access_note}); use ShardStream")
        self.fmt, self.paths = fmt, [Path(p) for p in paths]
        self.lengths = shard_lengths(fmt, self.paths)
        self.starts = np.cumsum([0] + self.lengths)
        self.transform, self.seed, self.with_index = transform, seed, with_index

    def __len__(self) -> int:
        return int(self.starts[-1])

    def locate(self, index: int) -> tuple[int, int]:
        shard = int(np.searchsorted(self.starts, index, side="right") - 1)
        return shard, int(index - self.starts[shard])

    def __getitem__(self, indices: Sequence[int]) -> _Filled | dict | _ShardFailure:
        rows = dict(zip(self.paths, self.lengths, strict=True)) if self.throttle is not None else None
        codec = throttled(formats.get(self.fmt), self.throttle, rows)
        rng = np.random.default_rng([self.seed, int(indices[0]), 3])
        ids = [self.locate(int(index)) for index in indices]
        stream = ((_read_row(codec, self.paths[shard], row, self.lengths[shard]), (shard, row)) for shard, row in ids)
        try:
            return _fill(stream, len(ids), sink=self.sink, transform=self.transform, rng=rng, keyed=True,
                         with_index=self.with_index, drop_last=False)
        except ShardError as exc:
            return _ShardFailure.of(exc)


@dataclass(frozen=True)
class _ShardFailure:
    """A ShardError met in a DataLoader worker, sent to the main process as data and raised there as
    itself: torch's own re-raise would turn it into a RuntimeError holding the worker's traceback
    text, so `except ShardError` and its path would work with 0 workers only. In the main process
    (no worker) the error is raised where it happens."""

    path: str
    position: str
    problem: str

    @staticmethod
    def of(exc: ShardError) -> _ShardFailure:
        if get_worker_info() is None:
            raise exc
        return _ShardFailure(str(exc.path), exc.position, exc.problem)


class _EpochPermutations(torch.utils.data.Sampler):
    """Indices 0..n-1 in a seeded order per epoch, epochs back to back."""

    def __init__(self, n: int, epochs: int, seed: int):
        self.n, self.epochs, self.seed = n, epochs, seed

    def __len__(self) -> int:
        return self.n * self.epochs

    def __iter__(self):
        for epoch in range(self.epochs):
            yield from np.random.default_rng([self.seed, epoch]).permutation(self.n).tolist()


class SyntheticBatches(IterableDataset):
    """A pre-built batch, yielded n_batches times per epoch (batch i by worker i mod W), after an
    optional deliberate cost of load_s_per_sample x batch size (one sleep to a deadline per batch).

    Ready data with zero cost measures the DataLoader's own transport (IPC + collation); with a
    known cost it is the controlled case of the feeding-tax checks; filled from real samples it is
    DS-Analyzer's "synthetic in-memory batches".
    """

    def __init__(self, batch: dict[str, np.ndarray], n_batches: int, *, load_s_per_sample: float = 0.0):
        self.batch, self.n_batches, self.load_s_per_sample = batch, n_batches, load_s_per_sample
        self.size = len(next(iter(batch.values())))

    def __iter__(self) -> Iterator[dict]:
        worker, workers = _worker()
        cost = self.load_s_per_sample * self.size
        for _ in range(worker, self.n_batches, workers):
            t0 = time.perf_counter()
            deadline = t0 + cost
            while (left := deadline - time.perf_counter()) > 0:
                time.sleep(left)
            t1 = time.perf_counter()
            out = {k: v.copy() for k, v in self.batch.items()}
            out[STAGE_KEY] = np.array([t1 - t0, 0.0, time.perf_counter() - t1, self.size])
            yield out
