"""What the DataLoader sweep reads on disk: its own shards, sized from the profile; or datasets larger than memory
(--dataset-size): one track x format written streaming to a size on disk, its first read after writing, and
consecutive windows of it for the sweep's points, each evicted from the page cache first. And the room a run needs.

Nothing here holds the dataset: the writer holds one shard, the read pass one 1 MiB buffer, and a window only its
shards' paths and sample counts (known from the writer, so no text shard is decoded to count it). What makes a read
cold is said in docs/measurement.md ("Datasets larger than memory").
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from feedtax import datasets
from feedtax import formats as codecs
from feedtax.bench.formatstage import shard_bytes
from feedtax.bench.profiles import Profile, SweepPlan
from feedtax.probes import pagecache
from feedtax.results.feeding import DatasetRead

ESTIMATE_SAMPLES = 8  # encoded in memory per track x format to estimate its shards' bytes
ESTIMATE_MARGIN = 1.2  # a few samples predict the shards closely, not exactly (compression varies with the data)
RESULTS_ROOM_BYTES = 8 << 20  # results.json and report.html, each written beside its previous copy
SHARD_TARGET_BYTES = 8_000_000  # a dataset's shards: thousands per 20 GB, and each one's encode buffers bounded
MIN_SHARDS = 16  # a smaller dataset still gives up to 8 workers 2 shards each
READ_BLOCK_BYTES = 1 << 20  # the read pass's request size: fio's --bs=1M, which docs/measurement.md compares it with
READ_BUDGET_S = 120.0  # the read pass stops here (bytes read recorded): 20 GB at 170 MB/s or faster is read whole


@dataclass
class DiskDataset:
    """A dataset on disk: its shards in order, the samples each holds, its bytes and how long writing took."""

    track: str
    format: str
    paths: list[Path]
    lengths: list[int]
    nbytes: int
    samples_per_shard: int
    write_s: float

    @property
    def samples(self) -> int:
        return sum(self.lengths)


@dataclass
class ReadPass:
    """The dataset's first read after writing: its shards in order in 1 MiB requests, each evicted first."""

    read_bytes: int
    read_s: float
    resident_before: float | None  # the page cache's share of the dataset before the pass (mincore); 0 is cold
    whole: bool  # False: the pass stopped at its time budget

    @property
    def read_mb_per_s(self) -> float:
        return self.read_bytes / 1e6 / self.read_s if self.read_s > 0 else 0.0


def samples_per_shard(bytes_per_sample: float, size_bytes: int) -> int:
    """Samples per shard of a dataset of size_bytes: about SHARD_TARGET_BYTES on disk, or a MIN_SHARDS-th of a smaller
    dataset, so the shard count grows with the size and the memory a shard takes does not."""
    return max(1, math.ceil(min(SHARD_TARGET_BYTES, size_bytes / MIN_SHARDS) / max(bytes_per_sample, 1.0)))


def write_dataset(track: str, fmt: str, directory: Path, size_bytes: int, *, seed: int, sizes: datasets.Sizes,
                  per_shard: int, on_shard: Callable[[int], None] | None = None,
                  processes: int | None = None) -> DiskDataset:
    """Samples 0, 1, 2, ... of a track written as fmt until size_bytes are on disk (whole shards: at most one shard
    over). Shard k holds samples k*per_shard onwards, generated and encoded by one of `processes` (default: this
    machine's usable cores), written in order here: the same bytes as one process writes. Each shard is written back
    and dropped from the page cache as it lands, so dirty pages never pile up and the first read finds none of it
    cached; on_shard(bytes so far) after each."""
    from feedtax.formats.base import shard_path, write_shard

    codec = codecs.get(fmt)
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    lengths: list[int] = []
    nbytes = 0
    t0 = time.perf_counter()
    n_proc = processes or len(os.sched_getaffinity(0))
    with ProcessPoolExecutor(n_proc, mp_context=mp.get_context("fork"), initializer=_quiet) as pool:
        ahead: deque[Future] = deque()
        k = 0
        try:
            while nbytes < size_bytes:
                while len(ahead) < 2 * n_proc:  # a few shards in flight: memory bounded, every process busy
                    ahead.append(pool.submit(_encoded, fmt, track, seed, sizes, k * per_shard, per_shard))
                    k += 1
                data = ahead.popleft().result()
                path = shard_path(codec, directory, len(paths))
                write_shard(path, data)
                paths.append(path)
                lengths.append(per_shard)
                nbytes += len(data)
                pagecache.evict([path])
                if on_shard is not None:
                    on_shard(nbytes)
        finally:
            for f in ahead:
                f.cancel()
    return DiskDataset(track, fmt, paths, lengths, nbytes, per_shard, time.perf_counter() - t0)


def _encoded(fmt: str, track: str, seed: int, sizes: datasets.Sizes, start: int, n: int) -> bytes:
    """The bytes of the shard holding samples start..start+n-1 (in a pool's process)."""
    from feedtax.formats.base import encode_checked

    return encode_checked(codecs.get(fmt), [datasets.sample(track, i, seed, sizes) for i in range(start, start + n)],
                          start)


def _quiet() -> None:
    """A pool process leaves signals to the one that started it, which stops the pool (interrupts.py)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)


def read_pass(ds: DiskDataset, budget_s: float = READ_BUDGET_S) -> ReadPass:
    """The dataset read once from its first shard in order, as fio's sequential read does (buffered, 1 MiB
    requests, the file's cached pages dropped before): the disk's rate on this dataset. Decoding is the sweep's."""
    before = pagecache.resident_fraction(ds.paths)
    buf = bytearray(READ_BLOCK_BYTES)
    total, whole = 0, True
    t0 = time.perf_counter()
    for path in ds.paths:
        if time.perf_counter() - t0 > budget_s:
            whole = False
            break
        pagecache.evict([path])
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            while n := os.readv(fd, [buf]):
                total += n
        finally:
            os.close(fd)
    seconds = time.perf_counter() - t0
    pagecache.evict(ds.paths)  # the windows start cold too
    return ReadPass(total, seconds, before, whole)


@dataclass
class Windows:
    """A cursor over a dataset's shards: each take is the next consecutive shards (wrapping at the end, counted),
    evicted before they are handed out, so no byte is read twice until the whole dataset has been."""

    ds: DiskDataset
    next: int = 0
    wraps: int = 0
    taken_bytes: int = 0
    not_evicted: list[float] = field(default_factory=list)  # residency left where an eviction did not take

    def take(self, samples: int, shards: int = 1) -> tuple[list[Path], int]:
        """(paths, samples in them): the fewest next shards, at least `shards` of them, holding at least `samples`
        (the whole dataset at most). A loader deals whole shards to its workers: 2 per worker keep every one busy."""
        paths: list[Path] = []
        n = 0
        while (n < samples or len(paths) < shards) and len(paths) < len(self.ds.paths):
            if self.next >= len(self.ds.paths):
                self.next, self.wraps = 0, self.wraps + 1
            paths.append(self.ds.paths[self.next])
            n += self.ds.lengths[self.next]
            self.next += 1
        gone = pagecache.evict(paths)
        if not gone.evicted:
            self.not_evicted.append(gone.resident_fraction if gone.resident_fraction is not None else math.nan)
        self.taken_bytes += sum(p.stat().st_size for p in paths)
        return paths, n


def plan_shards(track: str, fmts: Sequence[str], *, seed: int, sizes: datasets.Sizes,
                size_bytes: int) -> dict[str, tuple[int, int]]:
    """Per format: samples per shard and a shard's bytes at most, estimated from a few samples encoded in memory."""
    few = list(datasets.generate(track, ESTIMATE_SAMPLES, seed, sizes))
    plan = {}
    for fmt in fmts:
        per_sample = shard_bytes(fmt, few, 1000, 1000) / 1000
        per = samples_per_shard(per_sample, size_bytes)
        plan[fmt] = (per, int(per * per_sample * ESTIMATE_MARGIN))
    return plan


def dataset_space(size_bytes: int, largest_shard_bytes: int, datasets_at_once: int) -> int:
    """Bytes on disk the datasets need at once: each one's size and one shard over."""
    return datasets_at_once * (size_bytes + largest_shard_bytes)


def memory_bytes() -> int:
    """This machine's memory (MemTotal): a dataset larger than it cannot sit in the page cache whole."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def prepare(track: str, fmts: Sequence[str], directory: Path, size_bytes: int, *, seed: int, sizes: datasets.Sizes,
            tick: Callable[[], None] | None = None,
            ) -> tuple[dict[str, Windows], dict[str, ReadPass]]:
    """Every format's dataset of size_bytes written (directory/sweep-TRACK-FORMAT) and read once: its windows and its
    first read. tick() once per hundredth of each dataset written (a bar of 100 x formats). The caller checks the
    free space first (dataset_space)."""
    plan = plan_shards(track, fmts, seed=seed, sizes=sizes, size_bytes=size_bytes)
    windows, passes = {}, {}
    for fmt in fmts:
        done = 0

        def landed(nbytes: int) -> None:
            nonlocal done
            while tick is not None and done < min(100, 100 * nbytes // size_bytes):
                done += 1
                tick()

        ds = write_dataset(track, fmt, directory / f"sweep-{track}-{fmt}", size_bytes, seed=seed, sizes=sizes,
                           per_shard=plan[fmt][0], on_shard=landed)
        landed(size_bytes)
        passes[fmt] = read_pass(ds)
        windows[fmt] = Windows(ds)
    return windows, passes


def remove(windows: dict[str, Windows]) -> None:
    """The datasets' shards and folders gone."""
    for w in windows.values():
        for p in w.ds.paths:
            p.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            w.ds.paths[0].parent.rmdir()


def summary(windows: Windows, first: ReadPass) -> DatasetRead:
    """A dataset's record in results: how it was written, its first read, how the points read it."""
    ds = windows.ds
    return DatasetRead(track=ds.track, format=ds.format, bytes_on_disk=ds.nbytes, samples=ds.samples,
                shards=len(ds.paths),
                samples_per_shard=ds.samples_per_shard, dataset_write_s=ds.write_s, first_read_bytes=first.read_bytes,
                first_read_s=first.read_s, first_read_mb_per_s=first.read_mb_per_s, first_read_whole=first.whole,
                resident_before=first.resident_before, memory_bytes=memory_bytes(),
                windows_bytes=windows.taken_bytes, windows_wrapped=windows.wraps,
                evictions_failed=len(windows.not_evicted))


def space_needed(profile: Profile, tracks: Sequence[str], formats: Sequence[str], seed: int) -> tuple[int, str]:
    """Bytes the run will need at most on its output directory's filesystem, estimated from the profile before
    anything is written (the disk probe's test file, or every shard at once, plus results), and what for."""
    plan = profile.sweep
    sweep_n, sweep_per_shard = sweep_samples(plan, max(plan.workers(len(os.sched_getaffinity(0))), default=0))
    shards = 0
    for track in tracks:
        samples = list(datasets.generate(track, ESTIMATE_SAMPLES, seed, profile.sizes))
        for fmt in formats:
            shards += shard_bytes(fmt, samples, profile.samples_per_track, profile.samples_per_shard)
            if track in plan.tracks and fmt in plan.formats:
                shards += shard_bytes(fmt, samples, sweep_n, sweep_per_shard)
    need = max(int(shards * ESTIMATE_MARGIN) + _datasets_room(profile, tracks, formats, seed),
               profile.disk_probe_bytes) + RESULTS_ROOM_BYTES
    sized = f" and {plan.dataset_bytes / 1e9:,.3g} GB datasets (--dataset-size)" if plan.dataset_bytes else ""
    return need, f"the {profile.name} profile's disk probe and shards{sized}"


def _datasets_room(profile: Profile, tracks: Sequence[str], formats: Sequence[str], seed: int) -> int:
    """With --dataset-size: the most one sweep track's datasets take at once (each track's go after its sweep)."""
    plan = profile.sweep
    fmts = [f for f in plan.formats if f in formats]
    if not plan.dataset_bytes or not fmts:
        return 0
    return max((dataset_space(plan.dataset_bytes, max(b for _, b in shards.values()), len(fmts))
                for t in plan.tracks if t in tracks
                for shards in [plan_shards(t, fmts, seed=seed, sizes=profile.sizes,
                                           size_bytes=plan.dataset_bytes)]), default=0)


def sweep_samples(plan: SweepPlan, max_workers: int) -> tuple[int, int]:
    """Samples of the sweep's own shards and samples per shard: enough for the measured steps, in at least 2 shards
    per worker."""
    n = max(2 * max_workers, (plan.steps + 2 * max_workers + 4) * plan.batch_size)
    return n, max(1, n // (2 * max(max_workers, 1)))


def write_sweep_shards(track: str, formats: list[str], data_dir: Path, plan: SweepPlan, max_workers: int,
                       seed: int, sizes: datasets.Sizes) -> dict[str, list[Path]]:
    """The sweep's own shards: enough samples for the measured steps, in at least 2 shards per worker.

    Stream-only formats deal whole shards to workers, so the format stage's few large shards (fewer
    still for a slow format measured on a budget) would leave workers idle and cap scaling."""
    from feedtax import formats as codecs

    n, per_shard = sweep_samples(plan, max_workers)
    samples = list(datasets.generate(track, n, seed, sizes))
    return {fmt: codecs.get(fmt).write(samples, data_dir / f"sweep-{track}-{fmt}", samples_per_shard=per_shard)
            for fmt in formats}
