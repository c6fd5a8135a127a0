"""Reading a user's opaque Dataset for the pipeline sweep: the wait breakdown's passes (the same samples read first,
then warm, each __getitem__ timed in the workers), ready samples through the same DataLoader settings (the loader's
ceiling and its transport cost), and the guards that name the pipeline, the run and the batch in an error.

feedtax cannot evict the files of a Dataset it does not know, so "cold" is the first read of samples this sweep has
not read before (whatever the page cache held), and the warm passes read them again.
"""

from __future__ import annotations

import math
import multiprocessing
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from torch.utils.data import DataLoader, Dataset, IterableDataset

from feedtax.bench import interrupts
from feedtax.bench.breakdown import binding_stage
from feedtax.bench.consumers import Consumer, Drain, EmulatedConsumer
from feedtax.bench.feeding import FeedingError, FeedingResult, measure_feeding, samples_and_bytes
from feedtax.results.feeding import TransportCost, WaitBreakdown
from feedtax.results.pipeline import PIPELINE_TRACK, GetitemTiming
from feedtax.vocabulary import StopRule

WARM_ROUNDS = 3  # warm passes (and ready-data passes) per breakdown; rates are medians
TRANSPORT_STEPS = 20
TRANSPORT_STEP_S = 0.01  # the consumer ready batches wait behind, as bench.breakdown.transport_cost's
WORKER_SETTINGS = ("timeout", "worker_init_fn", "multiprocessing_context", "prefetch_factor")


class PipelineError(ValueError):
    """A user pipeline that cannot be swept: one line naming what (the factory, the train_step) and where."""


class Source(Protocol):
    """What the passes need of a pipeline: its import path, its name and a dataset with DataLoader settings."""

    path: str
    name: str

    def source(self, batch_size: int, num_workers: int) -> tuple[Any, dict]: ...


def one_line(exc: BaseException) -> str:
    """An error in one line; a DataLoader worker's re-raised error ends with the original one's."""
    text = str(exc).strip()
    if "Original Traceback" in text:
        return text.splitlines()[-1].strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


class Guard:
    """The user's loader, whose failure is reported naming the pipeline and the run (`where`) and the batch."""

    def __init__(self, loader: Any, where: str):
        self.loader, self.where = loader, where

    def __iter__(self) -> Iterator:
        try:
            with interrupts.between_batches:  # a signal stops between batches, never inside torch's hand-over
                it = iter(self.loader)
        except Exception as exc:
            raise PipelineError(f"{self.where}: the loader cannot be iterated: {one_line(exc)}") from exc
        batches = 0
        try:
            while True:
                try:
                    with interrupts.between_batches:
                        batch = next(it)
                except StopIteration:
                    return
                except Exception as exc:
                    raise PipelineError(f"{self.where}: the loader raised at batch {batches + 1}: "
                                        f"{one_line(exc)}") from exc
                batches += 1
                yield batch
        finally:
            with interrupts.deferred():  # the iterator's finalizer shuts its workers down
                it = None


def release(exc: BaseException) -> None:
    """Drop the locals of the finished frames an error (and its causes) hold, so the DataLoader iterators among them,
    and their workers, go now: left to a later garbage collection (a worker's re-raised error is a reference cycle),
    torch waits seconds on each worker it can no longer reach."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        traceback.clear_frames(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__


def measure(loader: Any, consumer: Consumer, where: str, warm: int, steps: int, sampler=None,
            workers: int = 1, stop: StopRule | None = None) -> FeedingResult:
    """bench.feeding.measure_feeding over the guarded loader; its errors (no batch, no tensor) name `where`. The rate's
    and the AU's intervals are bootstrapped in blocks of at least one round of the workers; with a stop rule `steps`
    is the minimum."""
    try:
        return measure_feeding(Guard(loader, where), consumer, warmup_steps=warm, steps=steps, sampler=sampler,
                               keep_timeline=False, ci_block=max(workers, math.ceil(steps ** (1 / 3))), stop=stop)
    except FeedingError as exc:
        raise PipelineError(f"{where}: {exc}") from exc


def dataset_len(dataset: Any) -> int | None:
    """len(dataset), or None for an IterableDataset or a dataset without one."""
    try:
        return None if isinstance(dataset, IterableDataset) else len(dataset)
    except TypeError:
        return None


class TimedDataset(Dataset):
    """The user's dataset with each __getitem__ timed where it runs (in a worker); seconds and calls add up in shared
    memory, which the main process reads (and zeroes) between passes."""

    def __init__(self, dataset: Any, context: Any = None):
        self.dataset = dataset
        self.totals = (context or multiprocessing.get_context()).Array("d", 2)  # seconds, calls

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        t0 = time.perf_counter()
        sample = self.dataset[index]
        dt = time.perf_counter() - t0
        with self.totals.get_lock():
            self.totals[0] += dt
            self.totals[1] += 1
        return sample

    def take(self) -> tuple[float, int]:
        """(seconds, calls) since the last take."""
        with self.totals.get_lock():
            out = (self.totals[0], int(self.totals[1]))
            self.totals[0] = self.totals[1] = 0.0
        return out


class ReadyDataset(Dataset):
    """One pre-made sample, returned at once for every index: the DataLoader's own cost, nothing to load."""

    def __init__(self, sample: Any, n: int):
        self.sample, self.n = sample, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> Any:
        return self.sample


class Indices:
    """A sampler over indices the main process sets before each pass (persistent workers keep their dataset copy)."""

    def __init__(self):
        self.indices: list[int] = []

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.indices))

    def __len__(self) -> int:
        return len(self.indices)


def loader_kwargs(settings: dict, workers: int, persistent: bool = False) -> dict:
    """DataLoader keyword arguments from the user's settings at `workers` (worker-only ones dropped at 0)."""
    kw = {k: v for k, v in settings.items() if workers > 0 or k not in WORKER_SETTINGS}
    return {**kw, "num_workers": workers, "persistent_workers": persistent and workers > 0}


def one_pass(loader: Any, order: Indices | None = None, indices: Sequence[int] = ()) -> tuple[float, int]:
    """(seconds, samples) of one whole pass over loader (over `indices`, when it reads them from `order`)."""
    if order is not None:
        order.indices = list(indices)
    t0, n = time.perf_counter(), 0
    for i, batch in enumerate(loader):
        k = samples_and_bytes(batch)[0]
        if k == 0:
            raise PipelineError(f"{getattr(loader, 'where', 'the loader')}: batch {i + 1} holds no tensor or array "
                                "with a batch dimension")
        n += k
    return time.perf_counter() - t0, n


def first_sample(dataset: Any, where: str) -> Any:
    """The dataset's first sample, made in this process: the ready data."""
    try:
        return next(iter(dataset)) if isinstance(dataset, IterableDataset) else dataset[0]
    except Exception as exc:
        raise PipelineError(f"{where}: reading the first sample raised {one_line(exc)}") from exc


@dataclass
class Passes:
    """The breakdown's passes at the most workers, timed before the consumer's rate is known."""

    num_workers: int
    n: int
    first_s: float
    warm_s: list[float]
    ready_s: list[float]
    first_getitem_s: float
    warm_getitem_s: list[float]
    getitem: GetitemTiming


def block(length: int, n: int, k: int, head: int, reach: int) -> tuple[range, bool]:
    """The k-th breakdown's n samples, from the dataset's end backwards, and whether none was read before it (the
    first `head` samples start the workers and make the ready sample; the rows have read the first `reach`)."""
    n = min(n, length)
    start = length - (k + 1) * n
    if k == 0 or start >= max(head, reach):
        start = max(start, 0)
        return range(start, start + n), start >= head
    return range(length - n, length), False


def measure_passes(pipe: Source, batch_size: int, w: int, n_batches: int, k: int, reach: int) -> Passes | str:
    """A block of samples read first, then warm (WARM_ROUNDS times) at w workers, each __getitem__ timed; then a ready
    sample through the same settings. A string says why there is no breakdown."""
    dataset, settings = pipe.source(batch_size, w)
    length = dataset_len(dataset)
    if length is None:
        return "the dataset has no len() (an IterableDataset): no samples to read twice, no __getitem__ to time"
    if length < 2 * batch_size:
        return f"the dataset holds {length} samples, fewer than 2 batches of {batch_size}"
    where = f"{pipe.path}, batch size {batch_size}, {w} workers, breakdown"
    head = w * batch_size
    samples, first_read = block(length, n_batches * batch_size, k, head + 1, reach)
    ctx = settings.get("multiprocessing_context")
    timed = TimedDataset(dataset, multiprocessing.get_context(ctx) if isinstance(ctx, str) else ctx)
    order = Indices()
    loader = Guard(DataLoader(timed, batch_size=batch_size, sampler=order, **loader_kwargs(settings, w, True)),
                   where)
    if w > 0:  # start the persistent workers on samples before the block
        one_pass(loader, order, range(min(head, samples.start) or len(samples)))
    timed.take()
    first_s, n = one_pass(loader, order, samples)
    first_get = timed.take()[0]
    warm_s, warm_get = [], []
    for _ in range(WARM_ROUNDS):
        warm_s.append(one_pass(loader, order, samples)[0])
        warm_get.append(timed.take()[0])
    del loader
    ready = Guard(DataLoader(ReadyDataset(first_sample(dataset, where), n), batch_size=batch_size,
                             **loader_kwargs(settings, w, True)), where + ", ready samples")
    one_pass(ready)  # workers started, caches warm
    ready_s = [one_pass(ready)[0] for _ in range(WARM_ROUNDS)]
    per_batch = batch_size / n
    return Passes(w, n, first_s, warm_s, ready_s, first_get, warm_get, GetitemTiming(
        num_workers=w, n_samples=n, first_getitem_s_per_batch=first_get * per_batch,
        warm_getitem_s_per_batch=float(np.median(warm_get)) * per_batch, first_read=first_read))


def _slower(first: float, warm: list[float]) -> bool:
    """Whether the first read took longer than the median warm one by more than the warm ones' spread (and 2%)."""
    median = float(np.median(warm))
    return first - median > max(float(np.ptp(warm)), 0.02 * median)


def wait_breakdown(pipe: Source, p: Passes, consumption: float) -> WaitBreakdown:
    """DS-Analyzer's rates: fetch = n / (first - warm) when the first read of samples unread before was slower than
    the warm ones, both by the pass's wall time and by the workers' __getitem__ time; else not measured (it hid, or
    was noise). Nothing was evicted."""
    warm = float(np.median(p.warm_s))
    slower = p.getitem.first_read and _slower(p.first_s, p.warm_s) and _slower(p.first_getitem_s, p.warm_getitem_s)
    fetch = p.n / (p.first_s - warm) if slower else None
    prep, in_memory = p.n / warm, p.n / float(np.median(p.ready_s))
    return WaitBreakdown(
        track=PIPELINE_TRACK, format=pipe.name, num_workers=p.num_workers, in_memory_samples_per_s=in_memory,
        warm_samples_per_s=prep, cold_samples_per_s=p.n / p.first_s, prep_samples_per_s=prep,
        fetch_samples_per_s=fetch, consumer_samples_per_s=consumption,
        binding=binding_stage(fetch, prep, in_memory, consumption), cache_evicted=False, rounds=WARM_ROUNDS)


def transport_cost(pipe: Source, batch_size: int) -> TransportCost | None:
    """A ready sample through the same DataLoader settings, per batch: made at 0 workers and handed over by 1, at
    full speed, and the wait per step behind a consumer at 1 worker. None for an empty dataset."""
    dataset, settings = pipe.source(batch_size, 1)
    if dataset_len(dataset) == 0:
        return None
    where = f"{pipe.path}, batch size {batch_size}, transport"
    sample = first_sample(dataset, where)

    def loader(w: int, n: int) -> DataLoader:
        return DataLoader(ReadyDataset(sample, n), batch_size=batch_size, **loader_kwargs(settings, w))

    def run(w: int, consumer: Consumer) -> float:
        r = measure(loader(w, (TRANSPORT_STEPS + 8) * batch_size), consumer, where, 4, TRANSPORT_STEPS)
        return (r.wall_s if isinstance(consumer, Drain) else r.wait_s) / r.steps

    batch = next(iter(Guard(loader(0, batch_size), where)))
    full_speed = {w: run(w, Drain()) for w in (0, 1)}
    return TransportCost(batch_size=batch_size, batch_bytes=samples_and_bytes(batch)[1],
                         in_process_s_per_batch=full_speed[0], worker_s_per_batch=full_speed[1],
                         ipc_s_per_batch=full_speed[1] - full_speed[0],
                         transport_s_per_batch=run(1, EmulatedConsumer(TRANSPORT_STEP_S)))
