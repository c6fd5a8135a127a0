"""Batch assembly in the worker: samples or column blocks -> one batch, made by one copy into its destination
(a ring slot or new arrays), timed per stage in STAGE_KEY; and the main side's numpy -> tensor wrap."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING

import numpy as np
import torch

from feedtax.formats.base import Sample
from feedtax.loader.transforms import Transform

if TYPE_CHECKING:
    from feedtax.loader.ring import ShmRing, _Filled

STAGE_KEY = "_stage_s"  # float64[4]: decode_s, transform_s, collate_s, n_samples of one batch
INDEX_KEY = "_index"  # int64[B, 2]: (shard, row) of each sample, when asked for


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
    """np.stack(rows, out=out), faster for many small rows: np.stack makes a view per row;
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
    at once, which keeps up with decode better than decoding the whole batch before stacking it."""

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
                sample_bytes = sum(np.asarray(v).nbytes for v in got[0].values())
                group = max(1, min(GROUP_ROWS, GROUP_BYTES // max(1, sample_bytes)))
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
