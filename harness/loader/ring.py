"""The shared-memory ring transport, worker -> main: each worker assembles its batches straight into a slot of
its own ring; only the slot number crosses the queue, and the main process lends the slot's rows to the batch."""

from __future__ import annotations

import os
import uuid
import weakref
from dataclasses import dataclass

import numpy as np
import torch

from feedtax.loader.batches import STAGE_KEY, Parts, assemble
from feedtax.loader.datasets import _ShardFailure

_RINGS: weakref.WeakValueDictionary[str, ShmRing] = weakref.WeakValueDictionary()  # main: token -> ring


class ShmRing:
    """Worker -> main transport through a ring of shared-memory slots made once per worker (collate_fn).

    Why: a batch crossing the process boundary otherwise costs a pickle of its bytes through a pipe
    or, as torch shared-memory tensors, a fresh shared segment plus a file descriptor handed over per
    batch whatever its size (measured: docs/loader.md). Here each worker, on its first batch,
    allocates `slots` shared buffers (per field [slots, cap, *shape]) and a free flag per slot, and
    sends them once; after that it assembles each batch straight into a free slot (the batch's only
    copy) and sends only (slot, rows). The main process hands out the slot's rows themselves (no
    copy) and frees the slot when the last array or tensor over it is garbage (_Lease): a slot is
    busy while its message is in flight and while the consumer holds the batch. A batch that does
    not fit (other fields or shapes, more rows than cap) or finds no free slot crosses as pickled
    numpy instead: never blocks, never wrong. Flags change under one multiprocessing lock, whose
    barriers order the consumer's last use before the slot's reuse.
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
