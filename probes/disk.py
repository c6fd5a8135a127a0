"""Disk bandwidth, IOPS and latency on the filesystem of a directory, bounded by size and time.

Sequential write (fsync included), each write followed by the first read of what it wrote (the read a dataset
streamed once gets, and what fio measures on its freshly laid-out file), then re-reads of the same file: cold and
warm, random 4 KiB read IOPS with p50/p99 latency, and a sequential read block-size sweep. Re-reads that run well
above the first read are served by a cache below this OS (a hypervisor's, a drive's), which no guest can evict:
they are flagged, and the model uses the first read. Cold reads are made cold after fsync with
posix_fadvise(DONTNEED) (probes.pagecache, confirmed with mincore) and, where the filesystem allows,
also measured with O_DIRECT into page-aligned (mmap) buffers. Access patterns copy fio's psync
engine at queue depth 1 (pread, fadvise hints) so scripts/fio_compare.py can check them.
MB means 1e6 bytes throughout.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from feedtax.probes.diskio import (
    MB,
    PAGE_BYTES,
    ProbeError,
    direct_allowed,
    free_bytes,
    oserror_reason,
    rand_read,
    random_offsets,
    segment_iops,
    seq_read,
    write_test_file,
)
from feedtax.probes.host import fs_type, under_hypervisor
from feedtax.probes.pagecache import evict, resident_fraction
from feedtax.results.probes import BlockSizeResult, DiskResult
from feedtax.stats import summarize

SWEEP_BLOCK_BYTES = tuple(4096 << (2 * i) for i in range(6))  # 4 KiB, 16 KiB, ..., 4 MiB
SWEEP_MAX_BYTES = 64 << 20  # per block size: the sweep is a shape, not a second full read
MAX_RAND_OPS = 20_000
RAND_SEGMENTS = 5  # random reads are split into this many segments for an IOPS distribution
IN_MEMORY_FS = frozenset({"tmpfs", "ramfs", "devtmpfs", "hugetlbfs"})
SMALL_FILE_BYTES = 1 << 30  # drive and hypervisor caches commonly hold hundreds of MB to a few GB
EVICTED_MAX_RESIDENT = 0.05  # the threshold feedtax.probes.pagecache.evict uses
TEST_FILE_PREFIX, TEST_FILE_SUFFIX = ".feedtax-disk-", ".bin"  # hidden, so a directory listing stays the user's
# share of the time budget at which each phase stops repeating (cumulative)
_PHASE_END = {"write": 0.30, "cold": 0.45, "direct": 0.58, "warm": 0.68, "random": 0.80, "sweep": 1.0}
CACHED_BELOW_RATIO = 1.2  # re-reads this much faster than the first read: a cache below this OS serves them

Progress = Callable[[str], None]


def _repeat(fn: Callable[[], float], *, repeats: int, until: float) -> list[float]:
    """Results of fn (each one measurement), at least once and up to `repeats` while another one fits before
    `until`. Not feedtax.stats.time_repeats: a cold read cannot be looped (the second pass is warm),
    and the probe has a time budget."""
    out: list[float] = []
    while True:
        t0 = time.perf_counter()
        out.append(fn())
        if len(out) >= repeats or time.perf_counter() + (time.perf_counter() - t0) > until:
            return out


def _check_dir(path: Path) -> None:
    if not path.exists():
        raise ProbeError(path, "does not exist")
    if not path.is_dir():
        raise ProbeError(path, "is not a directory")


def _setup_warnings(path: Path, size_bytes: int, size: int, kind: str) -> list[str]:
    """What the user should know before trusting the figures: rounding, in-memory filesystems, caches below the OS."""
    warnings: list[str] = []
    if size != size_bytes:
        warnings.append(f"size rounded down from {size_bytes} to {size} bytes, a whole number of blocks")
    if kind in IN_MEMORY_FS:
        warnings.append(f"{kind} keeps files in memory: cold and direct reads measure RAM, not a disk")
    if under_hypervisor():
        warnings.append("running in a virtual machine: the hypervisor's cache sits below this OS, no guest can evict "
                        "it, and it may serve 'cold' reads at memory speed")
    if size < SMALL_FILE_BYTES:
        warnings.append(f"a {size / MB:.0f} MB file can fit in a drive's or hypervisor's cache (often "
                        f"hundreds of MB to GBs); cold figures may be optimistic; use --size above that cache")
    return warnings


@dataclass
class _Probe:
    """One probe's test file and what its phases found so far."""

    file: Path
    size: int
    block: int
    repeats: int
    end: dict[str, float]
    say: Progress
    warnings: list[str]
    residency: list[float | None] = field(default_factory=list)
    o_direct: bool = False
    evicted: bool = False

    def cold(self) -> None:
        self.residency.append(evict([self.file]).resident_fraction)

    def seq_mb_per_s(self, *, direct: bool, evict_first: bool) -> float:
        if evict_first:
            self.cold()
        seconds, nbytes = seq_read(self.file, self.size, self.block, direct=direct)
        if nbytes < self.size:
            raise ProbeError(self.file, f"file is smaller than asked: read {nbytes} of {self.size} bytes")
        return nbytes / MB / seconds

    def write_then_read(self, free: int) -> tuple[list[float], list[float]]:
        """Per round, MB/s of writing the file and of the first read of what was written: O_DIRECT where the
        filesystem allows it (as fio's --direct=1), else buffered after eviction."""
        self.say(f"writing {self.size / MB:.0f} MB in {self.block}-byte blocks, each write read back once")
        writes: list[float] = []

        def one_round() -> float:
            writes.append(self.size / MB / write_test_file(self.file, self.size, self.block, free))
            if not writes[1:]:  # asked of the written file: some filesystems take the open, then refuse the read
                self.o_direct = direct_allowed(self.file)
            return self.seq_mb_per_s(direct=self.o_direct, evict_first=not self.o_direct)

        first = _repeat(one_round, repeats=self.repeats, until=self.end["write"])
        on_disk = os.stat(self.file)
        if on_disk.st_size < self.size:
            self.warnings.append(f"file is smaller than asked: {on_disk.st_size} of {self.size} bytes")
        if on_disk.st_blocks * 512 < 0.9 * self.size:
            self.warnings.append("file occupies fewer blocks than its size (sparse or compressing filesystem)")
        return writes, first

    def sequential_reads(self, kind: str) -> tuple[list[float], list[float], list[float]]:
        """Cold (evicted), O_DIRECT (where allowed) and warm sequential reads, MB/s per repeat."""
        self.say("cold sequential reads (after eviction)")
        cold = _repeat(lambda: self.seq_mb_per_s(direct=False, evict_first=True), repeats=self.repeats,
                       until=self.end["cold"])
        self.evicted = all(r is not None and r < EVICTED_MAX_RESIDENT for r in self.residency)
        if not self.evicted:
            seen = ", ".join("unknown" if r is None else f"{r:.0%}" for r in self.residency)
            self.warnings.append(f"eviction not confirmed by mincore (pages still resident: {seen}); "
                                 "cold reads may be warm")
        direct: list[float] = []
        if self.o_direct:
            self.say("O_DIRECT sequential reads")
            direct = _repeat(lambda: self.seq_mb_per_s(direct=True, evict_first=False), repeats=self.repeats,
                             until=self.end["direct"])
        else:
            self.warnings.append(f"{kind} does not allow O_DIRECT; cold reads rely on eviction alone")
        self.say("warm sequential reads")
        seq_read(self.file, self.size, self.block, direct=False)
        cached = resident_fraction([self.file])
        if cached is not None and cached < 0.95:
            self.warnings.append(f"only {cached:.0%} of the file stayed in the page cache: warm reads are partly cold")
        warm = _repeat(lambda: self.seq_mb_per_s(direct=False, evict_first=False), repeats=max(self.repeats, 5),
                       until=self.end["warm"])
        return cold, direct, warm

    def random_reads(self, rand_ops: int, seed: int) -> tuple[np.ndarray, list[float], str]:
        """Latencies, IOPS per segment and the method of queue-depth-1 random 4 KiB reads."""
        self.say("random 4 KiB reads")
        if not self.o_direct:
            self.cold()
        lat, ends = rand_read(self.file, random_offsets(self.size, rand_ops, seed), direct=self.o_direct,
                              until=self.end["random"])
        if not self.o_direct:
            last = self.residency[-1]
            self.evicted = self.evicted and last is not None and last < EVICTED_MAX_RESIDENT
        method = "O_DIRECT pread" if self.o_direct else "buffered pread after eviction, POSIX_FADV_RANDOM"
        return lat, segment_iops(ends, RAND_SEGMENTS), method

    def block_sweep(self) -> list[BlockSizeResult]:
        """One bounded cold sequential pass per block size, sharing what is left of the time budget."""
        self.say("block size sweep")
        sweep = []
        steps = [b for b in SWEEP_BLOCK_BYTES if b <= self.size]
        for i, block in enumerate(steps):
            now = time.perf_counter()
            until = now + max(self.end["sweep"] - now, 0.05 * len(steps)) / (len(steps) - i)
            if not self.o_direct:
                self.cold()
            seconds, nbytes = seq_read(self.file, min(self.size, SWEEP_MAX_BYTES), block, direct=self.o_direct,
                                       until=until)
            sweep.append(BlockSizeResult(block_size_bytes=block, bytes_read=nbytes,
                                         seq_read_mb_per_s=nbytes / MB / seconds,
                                         method="O_DIRECT" if self.o_direct else "buffered after eviction"))
        return sweep


def _create_test_file(path: Path, free: int) -> Path:
    try:  # create first: a read-only directory should say so, not that it is full
        fd, name = tempfile.mkstemp(prefix=TEST_FILE_PREFIX, suffix=TEST_FILE_SUFFIX, dir=path)
    except OSError as exc:
        raise ProbeError(path, oserror_reason(exc, free)) from None
    os.close(fd)
    return Path(name)


def leftover_test_files(directory: Path) -> list[Path]:
    """Test files in directory that a probe killed outright (SIGKILL, a power cut) could not remove; only a caller
    that knows no probe is running there (a run holding its output directory) may delete them."""
    return sorted(Path(directory).glob(f"{TEST_FILE_PREFIX}*{TEST_FILE_SUFFIX}"))


def _closing_warnings(elapsed: float, time_budget_s: float, kind: str, dists: dict) -> list[str]:
    """What the run itself says about the figures: a busy CPU, an overrun budget, cold reads at warm speed, noise."""
    warnings = []
    load, cores = os.getloadavg()[0], len(os.sched_getaffinity(0))
    if load > 0.5 * cores:
        warnings.append(f"CPU busy during the probe (1-min load {load:.1f} on {cores} cores): queue-depth-1 reads "
                        f"wait for a CPU after each I/O, so figures may be low")
    if elapsed > 1.2 * time_budget_s:
        warnings.append(f"took {elapsed:.1f} s against a budget of {time_budget_s:.1f} s: "
                        "each phase measures at least once")
    cold_mb, warm_mb = dists["seq_read_mb_per_s_cold"].median, dists["seq_read_mb_per_s_warm"].median
    if kind not in IN_MEMORY_FS and cold_mb > 0.5 * warm_mb:
        warnings.append(f"cold reads ran at {cold_mb / warm_mb:.0%} of warm: a cache below the OS (drive, "
                        f"hypervisor) may have served them")
    return warnings + [f"{k}: unstable ({d.note})" for k, d in dists.items() if d.unstable]


def measure_disk(
    path: Path,
    size_bytes: int,
    *,
    block_size_bytes: int = 1 << 20,
    time_budget_s: float = 60.0,
    repeats: int = 3,
    rand_ops: int = MAX_RAND_OPS,
    progress: Progress | None = None,
    seed: int = 0,
) -> DiskResult:
    """Measure the disk under directory `path` with one test file of size_bytes, removed afterwards.

    Each phase measures at least once, then repeats while its share of time_budget_s lasts.
    Raises ProbeError (path and reason) for a missing or unwritable directory or a full disk.
    """
    path = Path(path)
    _check_dir(path)
    if block_size_bytes < PAGE_BYTES or block_size_bytes % PAGE_BYTES:
        raise ProbeError(path, f"block size {block_size_bytes} bytes is not a multiple of {PAGE_BYTES} bytes")
    if size_bytes < max(block_size_bytes, PAGE_BYTES):
        raise ProbeError(path, f"size {size_bytes} bytes is smaller than one block ({block_size_bytes} bytes)")
    size = size_bytes - size_bytes % block_size_bytes
    kind = fs_type(path)
    t_start = time.perf_counter()
    free = free_bytes(path)
    test_file = _create_test_file(path, free)
    try:  # from here on every exit, a signal's exception included, removes the test file
        probe = _Probe(file=test_file, size=size, block=block_size_bytes, repeats=repeats,
                       end={k: t_start + f * time_budget_s for k, f in _PHASE_END.items()},
                       say=progress or (lambda _msg: None), warnings=_setup_warnings(path, size_bytes, size, kind))
        if free < size:
            raise ProbeError(path, f"disk full for this size: the probe needs {size} bytes, {free} bytes free")
        write, read_first = probe.write_then_read(free)
        read_cold, read_direct, read_warm = probe.sequential_reads(kind)
        lat, iops, rand_method = probe.random_reads(rand_ops, seed)
        sweep = probe.block_sweep()
    finally:
        test_file.unlink(missing_ok=True)

    elapsed = time.perf_counter() - t_start
    dists = {
        "seq_write_mb_per_s": summarize(write, "MB/s"),
        "seq_read_mb_per_s_first": summarize(read_first, "MB/s"),
        "seq_read_mb_per_s_cold": summarize(read_cold, "MB/s"),
        "seq_read_mb_per_s_warm": summarize(read_warm, "MB/s"),
        "rand_read_iops_4k": summarize(iops, "IOPS"),
    }
    if read_direct:
        dists["seq_read_mb_per_s_direct"] = summarize(read_direct, "MB/s")
    repeats = dists["seq_read_mb_per_s_direct" if read_direct else "seq_read_mb_per_s_cold"].median
    speedup = repeats / dists["seq_read_mb_per_s_first"].median
    cached_below = kind not in IN_MEMORY_FS and speedup > CACHED_BELOW_RATIO
    warnings = probe.warnings + _closing_warnings(elapsed, time_budget_s, kind, dists)
    if cached_below:
        warnings.append(f"re-reads of the same file ran {speedup:.2f}x the first read after writing: a cache below "
                        "this OS (a hypervisor's, a drive's) is serving them; the model uses the first read")
    known = [r for r in probe.residency if r is not None]
    return DiskResult(
        path=str(path), fs_type=kind, size_bytes=size, block_size_bytes=block_size_bytes,
        seq_write_mb_per_s=dists["seq_write_mb_per_s"].median,
        seq_read_mb_per_s_first=dists["seq_read_mb_per_s_first"].median,
        first_read_method="O_DIRECT" if probe.o_direct else "buffered after eviction",
        repeat_read_speedup=speedup, repeats_cached_below_os=cached_below,
        seq_read_mb_per_s_cold=dists["seq_read_mb_per_s_cold"].median,
        seq_read_mb_per_s_warm=dists["seq_read_mb_per_s_warm"].median,
        seq_read_mb_per_s_direct=dists["seq_read_mb_per_s_direct"].median if read_direct else None,
        rand_read_iops_4k=dists["rand_read_iops_4k"].median,
        read_latency_p50_s=float(np.percentile(lat, 50)), read_latency_p99_s=float(np.percentile(lat, 99)),
        rand_read_ops=int(lat.size), rand_read_method=rand_method,
        cache_evicted=probe.evicted, cache_resident_fraction_max=max(known) if known else None,
        o_direct=probe.o_direct, distributions=dists, block_sizes=sweep, warnings=warnings, elapsed_s=elapsed,
    )
