"""torch DataLoader over any format's shards: every sample exactly once per epoch, whatever the workers.

Two datasets, both yielding whole batches (dicts of stacked numpy arrays) so batching happens in the
worker, once per batch, not once per sample in the main process:

- ShardStream (IterableDataset): any format. Whole shards are dealt to workers (shard i goes to
  worker i mod W, after an optional seeded shard shuffle); sample-level shuffle is a seeded buffer
  inside each worker. A worker with no shard yields nothing.
- ShardSamples (map-style): formats with random access only. A seeded permutation of (shard, row)
  indices, cut into batches by a BatchSampler; each batch is one dataset item, read row by row.

Transport ("ring", the default): each worker copies its batches into a ring of shared-memory slots
it sent to the main process once; only a slot number crosses the queue and the main process copies
the rows out as the message arrives (ShmRing). "numpy" (pickled through the pipe) and "tensor"
(torch's shared-memory tensor per batch) are the two stock paths, kept so the difference can be
measured. In the main process `to_tensors` wraps numpy with torch.from_numpy (no copy).
Every batch carries STAGE_KEY: seconds spent in the worker decoding (fetch + parse), transforming
and stacking that batch, so the per-sample transform is measured as its own stage.
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Literal, Sequence

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, IterableDataset, get_worker_info

import formats
from formats.base import Sample

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
    return {name: np.stack([s[name] for s in samples]) for name in samples[0]}


def to_tensors(batch: dict) -> dict:
    """numpy arrays -> torch tensors sharing their memory; other values (STAGE_KEY) pass through."""
    out = {}
    for k, v in batch.items():
        if k == STAGE_KEY or not isinstance(v, np.ndarray):
            out[k] = v
        else:
            out[k] = torch.from_numpy(v if v.flags.writeable else v.copy())
    return out


class _Batcher:
    """Accumulates samples (with their (shard,row) ids) into timed batches.

    decode_s of a batch = wall time from the batch's start to its last sample, minus transform time:
    one clock read per sample at most (the transform's), none without a transform.
    """

    def __init__(self, batch_size: int, transform: Transform | None, rng: np.random.Generator, with_index: bool):
        self.batch_size, self.transform, self.rng, self.with_index = batch_size, transform, rng, with_index
        self.samples: list[Sample] = []
        self.ids: list[tuple[int, int]] = []
        self.transform_s = 0.0

    def add(self, sample: Sample, ident: tuple[int, int], started: float) -> dict | None:
        """Add one sample; return the finished batch when full (started: when this batch began)."""
        if self.transform is not None:
            t0 = time.perf_counter()
            sample = self.transform(sample, self.rng)
            self.transform_s += time.perf_counter() - t0
        self.samples.append(sample)
        self.ids.append(ident)
        return self.flush(started) if len(self.samples) >= self.batch_size else None

    def flush(self, started: float) -> dict | None:
        if not self.samples:
            return None
        t0 = time.perf_counter()
        batch = stack(self.samples)
        if self.with_index:
            batch[INDEX_KEY] = np.array(self.ids, dtype=np.int64)
        t1 = time.perf_counter()
        decode_s = max(0.0, t0 - started - self.transform_s)
        batch[STAGE_KEY] = np.array([decode_s, self.transform_s, t1 - t0, len(self.samples)])
        self.samples, self.ids = [], []
        self.transform_s = 0.0
        return batch


def _worker() -> tuple[int, int]:
    info = get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


class ShardStream(IterableDataset):
    """Stream whole shards, dealt across DataLoader workers, as batches; any format.

    Without transform or sample shuffle, batches of columnar formats (raw, parquet) are sliced from
    the shard's decoded columns (Codec.iter_columns): a batch within one chunk is a view (the
    transport's copy is then the only one), one spanning chunks is concatenated; otherwise samples
    are stacked per batch.
    """

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

    def __iter__(self) -> Iterator[dict]:
        worker, workers = _worker()
        codec = formats.get(self.fmt)
        if self.columns and codec.columnar and self.transform is None and not self.shuffle_samples:
            yield from self._column_batches(self._my_shards(worker, workers), codec.iter_columns)
        else:
            yield from self._sample_batches(worker, workers)

    def _sample_batches(self, worker: int, workers: int) -> Iterator[dict]:
        codec = formats.get(self.fmt)
        rng = np.random.default_rng([self.seed, worker, 1])
        batcher = _Batcher(self.batch_size, self.transform, rng, self.with_index)

        def samples():
            for shard in self._my_shards(worker, workers):
                for row, sample in enumerate(codec.iter_shard(self.paths[shard])):
                    yield sample, (shard, row)

        stream = samples()
        if self.shuffle_samples:
            stream = _buffer_shuffle(stream, self.shuffle_buffer, np.random.default_rng([self.seed, worker, 2]))
        t0 = time.perf_counter()
        for sample, ident in stream:
            if (batch := batcher.add(sample, ident, t0)) is not None:
                yield batch
                t0 = time.perf_counter()
        if not self.drop_last and (batch := batcher.flush(t0)) is not None:
            yield batch

    def _column_batches(self, shards: Iterator[int], reader) -> Iterator[dict]:
        size = self.batch_size
        pieces: list[dict[str, np.ndarray]] = []
        ids: list[np.ndarray] = []
        have, decode_s = 0, 0.0

        def emit() -> dict:
            nonlocal pieces, ids, have, decode_s
            t0 = time.perf_counter()
            if len(pieces) == 1:
                batch = dict(pieces[0])
            else:
                batch = {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}
            if self.with_index:
                batch[INDEX_KEY] = np.concatenate(ids)
            batch[STAGE_KEY] = np.array([decode_s, 0.0, time.perf_counter() - t0, have])
            pieces, ids, have, decode_s = [], [], 0, 0.0
            return batch

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

    def __getitem__(self, indices: Sequence[int]) -> dict:
        codec = formats.get(self.fmt)
        rng = np.random.default_rng([self.seed, int(indices[0]), 3])
        batcher = _Batcher(len(indices) + 1, self.transform, rng, self.with_index)
        started = time.perf_counter()
        for index in indices:
            shard, row = self.locate(int(index))
            batcher.add(codec.read_sample(self.paths[shard], row), (shard, row), started)
        return batcher.flush(started)


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

    def with_(self, **changes) -> "LoaderConfig":
        return replace(self, **changes)


class FeedLoader:
    """A DataLoader plus the main-side conversion to tensors (and pinning, where CUDA exists)."""

    def __init__(self, dataloader: DataLoader, *, pin: bool, mode: str, ring: "ShmRing | None" = None):
        self.dataloader, self.pin, self.mode, self.ring = dataloader, pin, mode, ring

    def __iter__(self) -> Iterator[dict]:
        if self.ring is not None and not self.dataloader.persistent_workers:
            self.ring.forget()  # the previous pass's workers are gone: unmap their rings
        for batch in self.dataloader:
            batch = to_tensors(batch)
            if self.pin:
                batch = {k: v.pin_memory() if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            yield batch


def _identity(x):
    return x


_RINGS: "weakref.WeakValueDictionary[str, ShmRing]" = weakref.WeakValueDictionary()  # main: token -> ring


class ShmRing:
    """Worker -> main transport through a ring of shared-memory slots made once per worker (collate_fn).

    Why: a batch crossing the process boundary otherwise costs a pickle of its bytes through a pipe
    (~0.9 GB/s on a 2-core VM: 2.2 ms per 0.8 MB batch) or, as torch shared-memory tensors, a fresh
    shared segment plus a file descriptor handed over per batch (~1.9 ms even for 28 kB). Here each
    worker, on its first batch, allocates `slots` shared buffers (per field [slots, cap, *shape]) and
    a free flag per slot, and sends them once; after that it copies each batch into a free slot and
    sends only (slot, rows). The main process copies the rows out into its own arrays while
    unpickling the message, i.e. as it arrives, before the DataLoader reorders anything, and frees
    the slot: every delivered batch owns its memory, and a slot is busy only while its message is in
    flight. A batch that does not fit (other fields or shapes, more rows than cap) or finds no free
    slot crosses as pickled numpy instead: never blocks, never wrong. Flags change under one
    multiprocessing lock, whose barriers order the copy-out before the slot's reuse on any CPU.
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

    def _create(self, arrays: dict[str, np.ndarray]) -> None:
        cap = max(self.batch_size, len(next(iter(arrays.values()))))
        try:
            tensors = {k: torch.from_numpy(np.empty((self.slots, cap, *v.shape[1:]), v.dtype)).share_memory_()
                       for k, v in arrays.items()}
            flags = torch.ones(self.slots, dtype=torch.uint8).share_memory_()
        except RuntimeError:  # no shared memory to be had (a small /dev/shm): pickled numpy from now on
            self.mine = False
            return
        key = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.mine = (key, {k: t.numpy() for k, t in tensors.items()}, flags.numpy(), (tensors, flags))

    def __call__(self, batch: dict) -> object:
        """In a worker: the batch copied into a free slot (a _SlotMessage), or the batch as it is."""
        t0 = time.perf_counter()
        arrays = {k: v for k, v in batch.items() if k != STAGE_KEY and isinstance(v, np.ndarray)}
        if not arrays:
            return batch
        if self.mine is None:
            self._create(arrays)
        if self.mine is False:
            return batch
        key, views, flags, tensors = self.mine
        n = len(next(iter(arrays.values())))
        if list(arrays) != list(views) or any(
                v.dtype != views[k].dtype or v.shape[1:] != views[k].shape[2:] or len(v) != n or n > views[k].shape[1]
                for k, v in arrays.items()):
            return batch
        with self.lock:
            free = np.flatnonzero(flags)
            if not free.size:
                return batch
            slot = int(free[0])
            flags[slot] = 0
        for k, v in arrays.items():
            np.copyto(views[k][slot, :n], v)
        rest = {k: v for k, v in batch.items() if k not in arrays}
        if STAGE_KEY in rest:  # the copy into the slot assembles this batch: count it as collate
            rest[STAGE_KEY] = stage = rest[STAGE_KEY].copy()
            stage[2] += time.perf_counter() - t0
        self.mine = (key, views, flags, None)
        return _SlotMessage(self.token, key, slot, n, rest, tensors)


class _SlotMessage:
    """What crosses the queue for a ring batch; it unpickles, in the main process, as _take_slot."""

    def __init__(self, *args):
        self.args = args

    def __reduce__(self):
        return _take_slot, self.args


def _take_slot(token: str, key: str, slot: int, n: int, rest: dict, tensors) -> dict:
    """Main process, as the message arrives: copy the slot's rows out, then free the slot."""
    ring = _RINGS[token]
    if tensors is not None:  # the worker's first message: its ring, mapped here once
        fields, flags = tensors
        ring.received[key] = ({k: t.numpy() for k, t in fields.items()}, flags.numpy(), tensors)
    views, flags, _ = ring.received[key]
    out = {k: v[slot, :n].copy() for k, v in views.items()}
    with ring.lock:
        flags[slot] = 1
    out.update(rest)
    return out


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
    # a worker normally has at most prefetch_factor batches requested: that many slots plus a spare
    # (more are requested only once other workers have finished; those cross as pickled numpy)
    ring = ShmRing(config.batch_size, config.prefetch_factor + 1) if w > 0 and config.transport == "ring" else None
    collate = ring or (to_tensors if w > 0 and config.transport == "tensor" else _identity)
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
