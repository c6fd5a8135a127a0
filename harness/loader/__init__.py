"""torch DataLoader over any format's shards: every sample exactly once per epoch, whatever the workers.

Two datasets, both yielding whole batches so batching happens in the worker, once per batch, not per
sample in the main process; each batch is made by one copy, straight into where it is delivered
from (a ring slot, see below): samples are written in as they decode (_fill), column blocks are
concatenated in by the collate_fn (Parts).

- ShardStream (IterableDataset): any format. Whole shards are dealt to workers (shard i goes to
  worker i mod W, after an optional seeded shard shuffle); sample-level shuffle is a seeded buffer
  inside each worker. A worker with no shard yields nothing.
- ShardSamples (map-style): formats with random access only. A seeded permutation of (shard, row)
  indices, cut into batches by a BatchSampler; each batch is one dataset item, read row by row.

Transport ("ring", the default): each worker assembles its batches straight into a ring of
shared-memory slots it sent to the main process once; only a slot number crosses the queue and the
main process lends the slot's rows to the batch, without a copy, until it is garbage (ShmRing).
"numpy" (pickled through the pipe) and "tensor" (torch's shared-memory tensor per batch) are the two
stock paths, kept so the difference can be measured. In the main process `to_tensors` wraps numpy
with torch.from_numpy (no copy). Every batch carries STAGE_KEY: seconds spent in the worker decoding
(fetch + parse), transforming and assembling that batch, so the per-sample transform is measured as
its own stage.
A damaged shard raises the codec's ShardError in the main process whatever the workers (_ShardFailure).
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, IterableDataset, get_worker_info

from feedtax import formats
from feedtax.formats.base import Sample, ShardError

# Sweeps oversubscribe cores on purpose (workers up to 2x cores): torch's warning is expected there.
warnings.filterwarnings("ignore", message="This DataLoader will create", category=UserWarning)

STAGE_KEY = "_stage_s"  # float64[4]: decode_s, transform_s, collate_s, n_samples of one batch
INDEX_KEY = "_index"  # int64[B, 2]: (shard, row) of each sample, when asked for
Transform = Callable[[Sample, np.random.Generator], Sample]


# ---------------------------------------------------------------------------------------------
# Per-sample transforms (numpy, in the worker)


def normalize_frames(sample: Sample, rng: np.random.Generator) -> Sample:
    """uint8 HxWx3 fields -> float32 3xHxW in about [-2, 2], randomly flipped left-right (augment)."""
    out = {}
    for name, value in sample.items():
        if value.dtype == np.uint8 and value.ndim == 3 and value.shape[-1] == 3:
            x = value[:, ::-1] if rng.random() < 0.5 else value
            out[name] = ((x.astype(np.float32) * (1 / 255.0) - 0.5) * 4.0).transpose(2, 0, 1).copy()
        else:
            out[name] = value
    return out


def spectrogram(sample: Sample, rng: np.random.Generator) -> Sample:
    """int16 `audio` -> float32 log-magnitude STFT `spec` [frames, bins] (Hann window, 50% hop)."""
    out = dict(sample)
    audio = out.pop("audio").astype(np.float32) * (1 / 32768.0)
    n = min(64, audio.size)
    hop = max(1, n // 2)
    frames = np.lib.stride_tricks.sliding_window_view(audio, n)[::hop] * np.hanning(n).astype(np.float32)
    out["spec"] = np.log1p(np.abs(np.fft.rfft(frames, axis=-1))).astype(np.float32)
    return out


def token_shift(sample: Sample, rng: np.random.Generator) -> Sample:
    """int32 `tokens` [L] -> int64 `input` [L-1] and `target` [L-1] (next-token prediction)."""
    out = dict(sample)
    tokens = out.pop("tokens").astype(np.int64)
    out["input"], out["target"] = tokens[:-1], tokens[1:]
    return out


def chain(*steps: Transform) -> Transform:
    def run(sample: Sample, rng: np.random.Generator) -> Sample:
        for step in steps:
            sample = step(sample, rng)
        return sample
    return run


TRACK_TRANSFORMS: dict[str, Transform] = {
    "cloud": token_shift,
    "edge": normalize_frames,
    "mobile": chain(normalize_frames, token_shift),
    "tiny": spectrogram,
}


def transform_for(track: str) -> Transform:
    """The track's per-sample transform: token shift (cloud), frame normalize+flip (edge), both
    (mobile), spectrogram (tiny)."""
    if track not in TRACK_TRANSFORMS:
        raise ValueError(f"unknown track {track!r}; known: {', '.join(TRACK_TRANSFORMS)}")
    return TRACK_TRANSFORMS[track]


# ---------------------------------------------------------------------------------------------
# Batches


def stack(samples: Sequence[Sample]) -> dict[str, np.ndarray]:
    """A list of samples -> field -> array [B, *shape] (one copy, per field)."""
    return {name: _stack_rows([s[name] for s in samples], None) for name in samples[0]}


@dataclass
class Parts:
    """A batch not yet assembled: per field, its row blocks [k, *shape] (slices of decoded columns),
    to be concatenated by the collate_fn straight into its destination (a ring slot in shared
    memory); `extra` holds STAGE_KEY and INDEX_KEY."""

    fields: dict[str, list[np.ndarray]]
    n: int
    extra: dict

    def spec(self) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
        """field -> (dtype, shape of one sample)."""
        return {k: (v[0].dtype, v[0].shape[1:]) for k, v in self.fields.items()}


def _stack_rows(rows: list[np.ndarray], out: np.ndarray | None) -> np.ndarray:
    """np.stack(rows, out=out), 3-25x faster for many small rows: np.stack makes a view per row;
    concatenating along the first axis of a contiguous destination (or fromiter, for scalars) does not."""
    first = rows[0]
    if any(r.shape != first.shape for r in rows):
        return np.stack(rows, out=out)  # which raises, naming the mismatch
    if first.ndim == 0:
        joined = np.fromiter(rows, first.dtype, len(rows))
        if out is None:
            return joined
        out[...] = joined
        return out
    if out is None:
        out = np.empty((len(rows), *first.shape), first.dtype)
    if not out.flags.c_contiguous:
        return np.stack(rows, out=out)
    np.concatenate(rows, out=out.reshape(len(rows) * first.shape[0], *first.shape[1:]))
    return out


def assemble(item: Parts | dict, out: dict[str, np.ndarray] | None = None) -> dict:
    """A batch dict from Parts (into `out`'s arrays [n, *shape] when given; a lone block stays a
    view); the assembly's seconds are added to STAGE_KEY's collate entry. Dicts pass through."""
    if not isinstance(item, Parts):
        return item
    t0 = time.perf_counter()
    batch = {}
    for k, blocks in item.fields.items():
        if out is not None:
            batch[k] = np.concatenate(blocks, out=out[k])
        else:
            batch[k] = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    batch.update(item.extra)
    if STAGE_KEY in batch:
        batch[STAGE_KEY] = stage = batch[STAGE_KEY].copy()
        stage[2] += time.perf_counter() - t0
    return batch


def to_tensors(batch: dict) -> dict:
    """numpy arrays -> torch tensors sharing their memory; other values (STAGE_KEY) pass through."""
    out = {}
    for k, v in batch.items():
        if k == STAGE_KEY or not isinstance(v, np.ndarray):
            out[k] = v
        else:
            out[k] = torch.from_numpy(v if v.flags.writeable else v.copy())
    return out


GROUP_ROWS, GROUP_BYTES = 64, 128 << 10


class _RowWriter:
    """One batch written a group of samples at a time into its destination: a ring slot when the
    loader lends one (sink), else new arrays. Only a cache-sized group of decoded samples is alive
    at once: decoding a whole batch before stacking it ran at 0.55-0.66 of plain decode for 12 kB
    protobuf frames here, against 0.78-0.82 in groups (measured, 2-core VM)."""

    def __init__(self, sink: ShmRing | None, batch_size: int):
        self.sink, self.batch_size = sink, batch_size
        self.out: dict[str, np.ndarray] | None = None
        self.filled: _Filled | None = None
        self.n = 0

    def add(self, samples: list[Sample]) -> None:
        if self.out is None:
            spec = {k: (np.asarray(v).dtype, np.shape(v)) for k, v in samples[0].items()}
            self.filled = self.sink.reserve(spec, self.batch_size) if self.sink is not None else None
            self.out = self.filled.out if self.filled is not None else {
                k: np.empty((self.batch_size, *shape), dtype) for k, (dtype, shape) in spec.items()}
        n = len(samples)
        for k, out in self.out.items():
            _stack_rows([s[k] for s in samples], out[self.n:self.n + n])
        self.n += n

    def finish(self, extra: dict) -> _Filled | dict:
        if self.filled is not None:
            self.filled.n, self.filled.extra = self.n, extra
            return self.filled
        return {**{k: v[:self.n] for k, v in self.out.items()}, **extra}

    def abandon(self) -> None:
        if self.filled is not None:
            self.filled.free()


def _fill(stream: Iterator, batch_size: int, *, sink: ShmRing | None, transform: Transform | None,
          rng: np.random.Generator, keyed: bool, with_index: bool, drop_last: bool) -> _Filled | dict | None:
    """The next batch from a stream of samples (or (sample, (shard, row)) pairs when keyed), decode,
    transform and the copy into the batch timed as three stages; None when the stream is done."""
    writer = _RowWriter(sink, batch_size)
    decode_s = transform_s = collate_s = 0.0
    ids: list[tuple[int, int]] = []
    group = 1  # until the first sample's size is known
    try:
        while writer.n < batch_size:
            t0 = time.perf_counter()
            got = list(islice(stream, min(group, batch_size - writer.n)))
            t1 = time.perf_counter()
            decode_s += t1 - t0
            if not got:
                break
            if keyed:
                if with_index:
                    ids += [i for _, i in got]
                got = [sample for sample, _ in got]
            if transform is not None:
                got = [transform(sample, rng) for sample in got]
                t0, t1 = t1, time.perf_counter()
                transform_s += t1 - t0
            if writer.n == 0:
                group = max(1, min(GROUP_ROWS, GROUP_BYTES // max(1, sum(np.asarray(v).nbytes for v in got[0].values()))))
            writer.add(got)
            collate_s += time.perf_counter() - t1
    except BaseException:  # a bad shard or sample: its reserved slot goes back to the ring
        writer.abandon()
        raise
    if writer.n == 0 or (writer.n < batch_size and drop_last):
        writer.abandon()
        return None
    extra = {STAGE_KEY: np.array([decode_s, transform_s, collate_s, writer.n])}
    if with_index:
        extra[INDEX_KEY] = np.array(ids, dtype=np.int64)
    return writer.finish(extra)


def _worker() -> tuple[int, int]:
    info = get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


class ShardStream(IterableDataset):
    """Stream whole shards, dealt across DataLoader workers, as batches; any format.

    sink: the loader's ShmRing, set by make_loader, so batches of samples are written straight into
    a shared-memory slot.

    Without transform or sample shuffle, batches of columnar formats (csv, parquet, raw) are sliced
    from the shard's decoded columns (Codec.iter_columns) and concatenated into the slot by the
    collate_fn; otherwise samples are written into the batch a group at a time (_fill).
    """

    sink: ShmRing | None = None

    def __init__(self, fmt: str, paths: Sequence[Path], *, batch_size: int, shuffle_shards: bool = False,
                 shuffle_samples: bool = False, shuffle_buffer: int = 256, seed: int = 0, epochs: int = 1,
                 drop_last: bool = False, transform: Transform | None = None, with_index: bool = False,
                 columns: bool = True):
        self.fmt, self.paths = fmt, [Path(p) for p in paths]
        self.batch_size, self.shuffle_shards, self.shuffle_samples = batch_size, shuffle_shards, shuffle_samples
        self.shuffle_buffer, self.seed, self.epochs, self.drop_last = max(1, shuffle_buffer), seed, epochs, drop_last
        self.transform, self.with_index, self.columns = transform, with_index, columns

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
        codec = formats.get(self.fmt)
        try:
            if self.columns and codec.columnar and self.transform is None and not self.shuffle_samples:
                yield from self._column_batches(self._my_shards(worker, workers), codec.iter_columns)
            else:
                yield from self._sample_batches(worker, workers)
        except ShardError as exc:
            yield _ShardFailure.of(exc)

    def _sample_batches(self, worker: int, workers: int) -> Iterator[_Filled | dict]:
        """Batches of samples, written into their destination a group at a time (_fill)."""
        codec = formats.get(self.fmt)
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
    """Samples per shard: from the footer for parquet, by streaming otherwise (once, at set-up)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq
        return [pq.ParquetFile(p).metadata.num_rows for p in paths]
    codec = formats.get(fmt)
    return [sum(1 for _ in codec.iter_shard(Path(p))) for p in paths]


class ShardSamples(Dataset):
    """Random access by (shard, row): item = a list of global indices, returned as one batch."""

    sink: ShmRing | None = None  # as ShardStream's

    def __init__(self, fmt: str, paths: Sequence[Path], *, transform: Transform | None = None,
                 seed: int = 0, with_index: bool = False, lengths: Sequence[int] | None = None):
        codec = formats.get(fmt)
        if not codec.random_access:
            raise ValueError(f"{fmt} has no random access ({codec.random_access_note}); use ShardStream")
        self.fmt, self.paths = fmt, [Path(p) for p in paths]
        self.lengths = list(lengths) if lengths is not None else shard_lengths(fmt, self.paths)
        self.starts = np.cumsum([0] + self.lengths)
        self.transform, self.seed, self.with_index = transform, seed, with_index

    def __len__(self) -> int:
        return int(self.starts[-1])

    def locate(self, index: int) -> tuple[int, int]:
        shard = int(np.searchsorted(self.starts, index, side="right") - 1)
        return shard, int(index - self.starts[shard])

    def __getitem__(self, indices: Sequence[int]) -> _Filled | dict | _ShardFailure:
        codec = formats.get(self.fmt)
        rng = np.random.default_rng([self.seed, int(indices[0]), 3])
        ids = [self.locate(int(index)) for index in indices]
        stream = ((codec.read_sample(self.paths[shard], row), (shard, row)) for shard, row in ids)
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
    """Indices 0..n-1 in a seeded order per epoch (or in order), epochs back to back."""

    def __init__(self, n: int, epochs: int, shuffle: bool, seed: int):
        self.n, self.epochs, self.shuffle, self.seed = n, epochs, shuffle, seed

    def __len__(self) -> int:
        return self.n * self.epochs

    def __iter__(self):
        for epoch in range(self.epochs):
            order = np.random.default_rng([self.seed, epoch]).permutation(self.n) if self.shuffle else np.arange(self.n)
            yield from order.tolist()


# ---------------------------------------------------------------------------------------------
# The loader


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

    def with_(self, **changes) -> LoaderConfig:
        return replace(self, **changes)


class FeedLoader:
    """A DataLoader plus the main-side conversion to tensors (and pinning, where CUDA exists)."""

    def __init__(self, dataloader: DataLoader, *, pin: bool, mode: str, ring: ShmRing | None = None):
        self.dataloader, self.pin, self.mode, self.ring = dataloader, pin, mode, ring

    def __iter__(self) -> Iterator[dict]:
        if self.ring is not None and not self.dataloader.persistent_workers:
            self.ring.forget()  # the previous pass's workers are gone: unmap their rings
        for batch in self.dataloader:
            if isinstance(batch, _ShardFailure):
                raise ShardError(batch.path, batch.position, batch.problem)
            batch = to_tensors(batch)
            if self.pin:
                batch = {k: v.pin_memory() if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            yield batch


def _assembled_tensors(item: Parts | dict | _ShardFailure) -> dict | _ShardFailure:
    return item if isinstance(item, _ShardFailure) else to_tensors(assemble(item))


_RINGS: weakref.WeakValueDictionary[str, ShmRing] = weakref.WeakValueDictionary()  # main: token -> ring


class ShmRing:
    """Worker -> main transport through a ring of shared-memory slots made once per worker (collate_fn).

    Why: a batch crossing the process boundary otherwise costs a pickle of its bytes through a pipe
    (~0.9 GB/s on a 2-core VM: 2.2 ms per 0.8 MB batch) or, as torch shared-memory tensors, a fresh
    shared segment plus a file descriptor handed over per batch (~1.9 ms even for 28 kB). Here each
    worker, on its first batch, allocates `slots` shared buffers (per field [slots, cap, *shape]) and
    a free flag per slot, and sends them once; after that it assembles each batch straight into a
    free slot (the batch's only copy) and sends only (slot, rows). The main process hands out the
    slot's rows themselves (no copy) and frees the slot when the last array or tensor over it is
    garbage (_Lease): a slot is busy while its message is in flight and while the consumer holds
    the batch. A batch that does not fit (other fields or shapes, more rows than cap) or finds no
    free slot crosses as pickled numpy instead: never blocks, never wrong. Flags change under one
    multiprocessing lock, whose barriers order the consumer's last use before the slot's reuse.
    """

    def __init__(self, batch_size: int, slots: int):
        self.batch_size, self.slots = batch_size, slots
        self.token = uuid.uuid4().hex
        self.lock = torch.multiprocessing.get_context().Lock()
        self._setup()
        _RINGS[self.token] = self

    def _setup(self) -> None:
        self.mine = None  # worker: (key, field -> view [slots, cap, ...], flags, (tensors, flags) until sent) or False
        self.received: dict[str, tuple] = {}  # main: key -> (field -> view, flags, tensors kept alive)

    def __getstate__(self) -> dict:  # to a spawned worker: no rings, a worker makes its own
        return {"batch_size": self.batch_size, "slots": self.slots, "token": self.token, "lock": self.lock}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._setup()

    def forget(self) -> None:
        """Main: drop the rings received so far (their workers have exited)."""
        self.received.clear()

    def _create(self, spec: dict[str, tuple[np.dtype, tuple[int, ...]]], n: int) -> None:
        cap = max(self.batch_size, n)
        try:
            tensors = {k: torch.from_numpy(np.empty((self.slots, cap, *shape), dtype)).share_memory_()
                       for k, (dtype, shape) in spec.items()}
            flags = torch.ones(self.slots, dtype=torch.uint8).share_memory_()
        except RuntimeError:  # no shared memory to be had (a small /dev/shm): pickled numpy from now on
            self.mine = False
            return
        key = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.mine = (key, {k: t.numpy() for k, t in tensors.items()}, flags.numpy(), (tensors, flags))

    def reserve(self, spec: dict[str, tuple[np.dtype, tuple[int, ...]]], n: int) -> _Filled | None:
        """In a worker: a free slot taken for a batch of up to n rows of `spec` (field -> dtype, row
        shape), as a _Filled whose `out` views the dataset writes into; None when no slot fits."""
        if self.mine is None:
            self._create(spec, n)
        if self.mine is False:
            return None
        _, views, flags, _ = self.mine
        if list(spec) != list(views) or n > next(iter(views.values())).shape[1] or any(
                dtype != views[k].dtype or shape != views[k].shape[2:] for k, (dtype, shape) in spec.items()):
            return None
        with self.lock:
            free = np.flatnonzero(flags)
            if not free.size:
                return None
            slot = int(free[0])
            flags[slot] = 0
        return _Filled(self, slot, {k: v[slot, :n] for k, v in views.items()})

    def __call__(self, item: Parts | _Filled | dict) -> object:
        """In a worker (collate_fn): a batch written into a slot by the dataset (_Filled), assembled
        (Parts) or copied (dict) into a free slot, sent as a _SlotMessage; or, when it cannot use a
        slot, the assembled batch itself."""
        if isinstance(item, _ShardFailure):
            return item
        if isinstance(item, _Filled):
            if item.ring is not self:  # written into another ring (never with fork or spawn): copy it out
                return item.release()
            return self._message(item.slot, item.n, item.extra or {})
        parts = item
        if not isinstance(item, Parts):  # a ready batch: each field one block, its copy into the slot its collate
            arrays = {k: v for k, v in item.items() if k != STAGE_KEY and isinstance(v, np.ndarray)}
            if not arrays or len({len(v) for v in arrays.values()}) > 1:
                return item
            parts = Parts({k: [v] for k, v in arrays.items()}, len(next(iter(arrays.values()))),
                          {k: v for k, v in item.items() if k not in arrays})
        filled = self.reserve(parts.spec(), parts.n)
        if filled is None:
            return assemble(item)
        out = {k: v[:parts.n] for k, v in filled.out.items()}
        rest = {k: v for k, v in assemble(parts, out).items() if k not in out}
        return self._message(filled.slot, parts.n, rest)

    def _message(self, slot: int, n: int, rest: dict) -> _SlotMessage:
        key, views, flags, tensors = self.mine
        self.mine = (key, views, flags, None)  # the ring's tensors travel with the first message only
        return _SlotMessage(self.token, key, slot, n, rest, tensors)


@dataclass
class _Filled:
    """A slot a worker's dataset writes a batch into: `out` views [cap, ...] per field; the dataset
    sets n (rows written) and extra (STAGE_KEY, INDEX_KEY) and yields it to the ring."""

    ring: ShmRing
    slot: int
    out: dict[str, np.ndarray]
    n: int = 0
    extra: dict | None = None

    def release(self) -> dict:
        """The rows as a batch of private arrays, the slot given back (a batch that won't be sent)."""
        batch = {k: v[:self.n].copy() for k, v in self.out.items()}
        batch.update(self.extra or {})
        self.free()
        return batch

    def free(self) -> None:
        with self.ring.lock:
            self.ring.mine[2][self.slot] = 1


class _SlotMessage:
    """What crosses the queue for a ring batch; it unpickles, in the main process, as _take_slot."""

    def __init__(self, *args):
        self.args = args

    def __reduce__(self):
        return _take_slot, self.args


class _Lease:
    """A slot lent to the main process: freed when the last of its field arrays is garbage."""

    def __init__(self, lock, flags: np.ndarray, slot: int, n_fields: int):
        self.lock, self.flags, self.slot, self.left = lock, flags, slot, n_fields

    def release(self) -> None:
        self.left -= 1
        if self.left == 0:
            with self.lock:
                self.flags[self.slot] = 1


def _take_slot(token: str, key: str, slot: int, n: int, rest: dict, tensors) -> dict:
    """Main process, as the message arrives: the slot's rows as arrays (no copy) lent to the batch;
    the slot returns to the worker once nothing refers to them any more (tensors made from them
    included), so a consumer that keeps batches just makes the worker fall back to pickling."""
    ring = _RINGS[token]
    if tensors is not None:  # the worker's first message: its ring, mapped here once
        fields, flags = tensors
        ring.received[key] = ({k: t.numpy() for k, t in fields.items()}, flags.numpy(), tensors)
    views, flags, _ = ring.received[key]
    lease = _Lease(ring.lock, flags, slot, len(views))
    out = {}
    for k, v in views.items():
        out[k] = v[slot, :n]
        weakref.finalize(out[k], lease.release).atexit = False
    out.update(rest)
    return out


def ring_slots(config: LoaderConfig) -> int:
    """Slots per worker's ring: a worker normally has at most prefetch_factor batches requested, plus
    the batch the consumer holds and the one replacing it (more are requested only once other
    workers have finished, or when the consumer keeps batches: those cross as pickled numpy)."""
    return config.prefetch_factor + 2


def make_loader(fmt: str, paths: Sequence[Path], config: LoaderConfig = LoaderConfig(), *,
                transform: Transform | None = None, with_index: bool = False,
                dataset: Dataset | IterableDataset | None = None) -> FeedLoader:
    """A loader over a format's shards (or over `dataset`, which must yield batches like ShardStream).

    pin_memory is honoured only where CUDA is available (pinning needs a CUDA context).
    """
    w = config.num_workers
    sampler = None
    if dataset is None:
        if config.shuffle_samples and config.random_access and formats.get(fmt).random_access:
            dataset = ShardSamples(fmt, paths, transform=transform, seed=config.seed, with_index=with_index)
            base = _EpochPermutations(len(dataset), config.epochs, True, config.seed)
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
    collate = ring or (_assembled_tensors if w > 0 and config.transport == "tensor" else assemble)
    dl = DataLoader(
        dataset, batch_size=None, sampler=sampler, num_workers=w, collate_fn=collate,
        prefetch_factor=config.prefetch_factor if w > 0 else None,
        persistent_workers=config.persistent_workers and w > 0,
    )
    return FeedLoader(dl, pin=pin, mode=mode, ring=ring)


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


def synthetic_batch(samples: Sequence[Sample], batch_size: int) -> dict[str, np.ndarray]:
    """A batch of batch_size built from real samples (cycled), for SyntheticBatches."""
    return stack([samples[i % len(samples)] for i in range(batch_size)])
