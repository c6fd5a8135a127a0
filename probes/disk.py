"""Disk bandwidth, IOPS and latency on the filesystem of a directory, bounded by size and time.

Sequential write (fsync included), sequential read cold and warm, random 4 KiB read IOPS with
p50/p99 latency, and a sequential read block-size sweep. Cold reads are made cold after fsync with
posix_fadvise(DONTNEED) (probes.pagecache, confirmed with mincore) and, where the filesystem allows,
also measured with O_DIRECT into page-aligned (mmap) buffers. Access patterns copy fio's psync
engine at queue depth 1 (pread, fadvise hints) so scripts/fio_compare.py can check them.
MB means 1e6 bytes throughout.
"""

from __future__ import annotations

import errno
import mmap
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from feedtax.probes.host import fs_type, under_hypervisor
from feedtax.probes.pagecache import evict, resident_fraction
from feedtax.results.probes import BlockSizeResult, DiskResult
from feedtax.stats import summarize

MB = 1e6
PAGE_BYTES = 4096
RAND_BLOCK_BYTES = 4096
SWEEP_BLOCK_BYTES = tuple(4096 << (2 * i) for i in range(6))  # 4 KiB, 16 KiB, ..., 4 MiB
SWEEP_MAX_BYTES = 64 << 20  # per block size: the sweep is a shape, not a second full read
MAX_RAND_OPS = 20_000
RAND_SEGMENTS = 5  # random reads are split into this many segments for an IOPS distribution
IN_MEMORY_FS = frozenset({"tmpfs", "ramfs", "devtmpfs", "hugetlbfs"})
SMALL_FILE_BYTES = 1 << 30  # drive and hypervisor caches commonly hold hundreds of MB to a few GB
EVICTED_MAX_RESIDENT = 0.05  # the threshold feedtax.probes.pagecache.evict uses
# share of the time budget at which each phase stops repeating (cumulative)
_PHASE_END = {"write": 0.20, "cold": 0.45, "direct": 0.60, "warm": 0.70, "random": 0.80, "sweep": 1.0}

Progress = Callable[[str], None]


class ProbeError(Exception):
    """A probe that cannot run or finish honestly: names the path and the reason."""

    def __init__(self, path: os.PathLike | str, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def free_bytes(path: os.PathLike | str) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _reason(exc: OSError, free: int | None) -> str:
    """A plain-words reason for an OSError met while creating or writing the test file."""
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full ({errno.errorcode[code]}); {free if free is not None else 'unknown'} bytes were free"
    if code == errno.EROFS:
        return "read-only filesystem: cannot write the test file"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied: cannot write a file in this directory"
    return f"{exc.strerror or exc} ({errno.errorcode.get(code, code)})"


def _aligned(nbytes: int) -> mmap.mmap:
    """A page-aligned, writable buffer (anonymous mmap), as O_DIRECT requires."""
    return mmap.mmap(-1, nbytes)


def write_test_file(path: Path, size: int, block: int, free: int) -> float:
    """Write size bytes in block-sized writes, fsync; seconds. Every 4 KiB page is random and unique,
    so compressing or deduplicating storage cannot shortcut the write."""
    pool = np.frombuffer(np.random.default_rng().bytes(block), dtype=np.uint8).copy()
    stamps = pool.view(np.uint64).reshape(-1, PAGE_BYTES // 8)[:, 0]
    stamps[:] = np.arange(stamps.size, dtype=np.uint64)
    view = memoryview(pool)
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        t0 = time.perf_counter()
        try:
            while written < size:
                n, done = min(block, size - written), 0
                while done < n:
                    done += os.write(fd, view[done:n])
                written += n
                stamps += stamps.size
            os.fsync(fd)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise ProbeError(path.parent, f"disk full ({errno.errorcode[exc.errno]}) after writing {written} of "
                                              f"{size} bytes; {free} bytes were free before the probe") from None
            raise ProbeError(path.parent, _reason(exc, free)) from None
        return time.perf_counter() - t0
    finally:
        os.close(fd)


def _open_read(path: Path, *, direct: bool, advice: int) -> int:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECT if direct else 0))
    os.posix_fadvise(fd, 0, 0, advice)  # fio's default fadvise_hint=1 does the same
    return fd


def seq_read(path: Path, size: int, block: int, *, direct: bool, until: float | None = None) -> tuple[float, int]:
    """Read the file from the start in block-sized preads: (seconds, bytes), stopping early at `until`."""
    buf = _aligned(block) if direct else bytearray(block)
    view = memoryview(buf)
    fd = _open_read(path, direct=direct, advice=os.POSIX_FADV_SEQUENTIAL)
    try:
        off = 0
        t0 = time.perf_counter()
        while off < size:
            got = os.preadv(fd, [view], off)
            if got <= 0:
                break
            off += got
            if until is not None and time.perf_counter() > until:
                break
        return time.perf_counter() - t0, off
    finally:
        os.close(fd)
        view.release()
        if direct:
            buf.close()


def rand_read(path: Path, offsets: np.ndarray, *, direct: bool, until: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """pread 4 KiB at each offset, queue depth 1: (latency of each read, time each read ended), both in
    seconds from the first read's start. Stops at perf_counter time `until` after at least a tenth of the reads."""
    buf = _aligned(RAND_BLOCK_BYTES)
    view = memoryview(buf)
    lat_ns = np.empty(len(offsets), dtype=np.int64)
    end_ns = np.empty(len(offsets), dtype=np.int64)
    clock, min_ops = time.perf_counter_ns, max(1, len(offsets) // 10)
    stop_ns = int(until * 1e9) if until is not None else 1 << 62  # perf_counter_ns shares perf_counter's clock
    fd = _open_read(path, direct=direct, advice=os.POSIX_FADV_RANDOM)
    try:
        n = 0
        start = clock()
        for off in offsets.tolist():
            t0 = clock()
            os.preadv(fd, [view], off)
            t1 = clock()
            lat_ns[n], end_ns[n] = t1 - t0, t1 - start
            n += 1
            if t1 > stop_ns and n >= min_ops:
                break
    finally:
        os.close(fd)
        view.release()
        buf.close()
    return lat_ns[:n] / 1e9, end_ns[:n] / 1e9


def random_offsets(size: int, n: int, seed: int = 0) -> np.ndarray:
    """n distinct 4 KiB-aligned offsets in a file of size bytes (no page read twice, as fio's random map)."""
    pages = size // RAND_BLOCK_BYTES
    return np.random.default_rng(seed).choice(pages, size=min(n, pages), replace=False).astype(np.int64) * RAND_BLOCK_BYTES


def segment_iops(ends_s: np.ndarray, segments: int) -> list[float]:
    """Reads per second of wall time (loop overhead included, as fio counts it) in each of `segments`
    consecutive runs of reads, given the time each read ended."""
    bounds = np.linspace(0, ends_s.size, segments + 1).astype(int)
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b > a:
            out.append((b - a) / (ends_s[b - 1] - (ends_s[a - 1] if a else 0.0)))
    return out


def direct_allowed(path: Path) -> bool:
    """Whether this filesystem accepts O_DIRECT opens and aligned reads."""
    try:
        seq_read(path, PAGE_BYTES, PAGE_BYTES, direct=True)
        return True
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
            return False
        raise


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
    say = progress or (lambda _msg: None)
    _check_dir(path)
    if block_size_bytes < PAGE_BYTES or block_size_bytes % PAGE_BYTES:
        raise ProbeError(path, f"block size {block_size_bytes} bytes is not a multiple of {PAGE_BYTES} bytes")
    if size_bytes < max(block_size_bytes, PAGE_BYTES):
        raise ProbeError(path, f"size {size_bytes} bytes is smaller than one block ({block_size_bytes} bytes)")
    warnings: list[str] = []
    size = size_bytes - size_bytes % block_size_bytes
    if size != size_bytes:
        warnings.append(f"size rounded down from {size_bytes} to {size} bytes, a whole number of blocks")
    kind = fs_type(path)
    if kind in IN_MEMORY_FS:
        warnings.append(f"{kind} keeps files in memory: cold and direct reads measure RAM, not a disk")
    if under_hypervisor():
        warnings.append("running in a virtual machine: the hypervisor's cache sits below this OS, no guest can evict "
                        "it, and it may serve 'cold' reads at memory speed")
    if size < SMALL_FILE_BYTES:
        warnings.append(f"a {size / MB:.0f} MB file can fit in a drive's or hypervisor's cache (often "
                        f"hundreds of MB to GBs); cold figures may be optimistic; use --size above that cache")

    t_start = time.perf_counter()
    end = {k: t_start + f * time_budget_s for k, f in _PHASE_END.items()}
    free = free_bytes(path)
    try:  # create first: a read-only directory should say so, not that it is full
        fd, name = tempfile.mkstemp(prefix=".feedtax-disk-", suffix=".bin", dir=path)
    except OSError as exc:
        raise ProbeError(path, _reason(exc, free)) from None
    os.close(fd)
    file = Path(name)
    residency: list[float | None] = []

    def cold() -> None:
        residency.append(evict([file]).resident_fraction)

    def seq_mb_per_s(*, direct: bool, evict_first: bool) -> float:
        if evict_first:
            cold()
        seconds, nbytes = seq_read(file, size, block_size_bytes, direct=direct)
        if nbytes < size:
            raise ProbeError(file, f"file is smaller than asked: read {nbytes} of {size} bytes")
        return nbytes / MB / seconds

    try:
        if free < size:
            raise ProbeError(path, f"disk full for this size: the probe needs {size} bytes, {free} bytes free")
        say(f"writing {size / MB:.0f} MB in {block_size_bytes}-byte blocks")
        write = _repeat(lambda: size / MB / write_test_file(file, size, block_size_bytes, free), repeats=repeats, until=end["write"])
        on_disk = os.stat(file)
        if on_disk.st_size < size:
            warnings.append(f"file is smaller than asked: {on_disk.st_size} of {size} bytes")
        if on_disk.st_blocks * 512 < 0.9 * size:
            warnings.append("file occupies fewer blocks than its size (sparse or compressing filesystem)")

        say("cold sequential reads (after eviction)")
        read_cold = _repeat(lambda: seq_mb_per_s(direct=False, evict_first=True), repeats=repeats, until=end["cold"])
        evicted = all(r is not None and r < EVICTED_MAX_RESIDENT for r in residency)
        if not evicted:
            seen = ", ".join("unknown" if r is None else f"{r:.0%}" for r in residency)
            warnings.append(f"eviction not confirmed by mincore (pages still resident: {seen}); cold reads may be warm")

        o_direct = direct_allowed(file)
        read_direct: list[float] = []
        if o_direct:
            say("O_DIRECT sequential reads")
            read_direct = _repeat(lambda: seq_mb_per_s(direct=True, evict_first=False), repeats=repeats, until=end["direct"])
        else:
            warnings.append(f"{kind} does not allow O_DIRECT; cold reads rely on eviction alone")

        say("warm sequential reads")
        seq_read(file, size, block_size_bytes, direct=False)
        cached = resident_fraction([file])
        if cached is not None and cached < 0.95:
            warnings.append(f"only {cached:.0%} of the file stayed in the page cache: warm reads are partly cold")
        read_warm = _repeat(lambda: seq_mb_per_s(direct=False, evict_first=False), repeats=max(repeats, 5),
                            until=end["warm"])

        say("random 4 KiB reads")
        if not o_direct:
            cold()
        lat, ends = rand_read(file, random_offsets(size, rand_ops, seed), direct=o_direct, until=end["random"])
        iops = segment_iops(ends, RAND_SEGMENTS)
        rand_method = "O_DIRECT pread" if o_direct else "buffered pread after eviction, POSIX_FADV_RANDOM"
        if not o_direct:
            evicted = evicted and residency[-1] is not None and residency[-1] < EVICTED_MAX_RESIDENT

        say("block size sweep")
        sweep = []
        steps = [b for b in SWEEP_BLOCK_BYTES if b <= size]
        for i, block in enumerate(steps):
            now = time.perf_counter()
            until = now + max(end["sweep"] - now, 0.05 * len(steps)) / (len(steps) - i)
            if not o_direct:
                cold()
            seconds, nbytes = seq_read(file, min(size, SWEEP_MAX_BYTES), block, direct=o_direct, until=until)
            sweep.append(BlockSizeResult(block_size_bytes=block, bytes_read=nbytes, seq_read_mb_per_s=nbytes / MB / seconds,
                                         method="O_DIRECT" if o_direct else "buffered after eviction"))
    finally:
        file.unlink(missing_ok=True)

    elapsed = time.perf_counter() - t_start
    load, cores = os.getloadavg()[0], len(os.sched_getaffinity(0))
    if load > 0.5 * cores:
        warnings.append(f"CPU busy during the probe (1-min load {load:.1f} on {cores} cores): queue-depth-1 reads "
                        f"wait for a CPU after each I/O, so figures may be low")
    if elapsed > 1.2 * time_budget_s:
        warnings.append(f"took {elapsed:.1f} s against a budget of {time_budget_s:.1f} s: each phase measures at least once")
    dists = {
        "seq_write_mb_per_s": summarize(write, "MB/s"),
        "seq_read_mb_per_s_cold": summarize(read_cold, "MB/s"),
        "seq_read_mb_per_s_warm": summarize(read_warm, "MB/s"),
        "rand_read_iops_4k": summarize(iops, "IOPS"),
    }
    if read_direct:
        dists["seq_read_mb_per_s_direct"] = summarize(read_direct, "MB/s")
    cold_mb, warm_mb = dists["seq_read_mb_per_s_cold"].median, dists["seq_read_mb_per_s_warm"].median
    if kind not in IN_MEMORY_FS and cold_mb > 0.5 * warm_mb:
        warnings.append(f"cold reads ran at {cold_mb / warm_mb:.0%} of warm: a cache below the OS (drive, "
                        f"hypervisor) may have served them")
    warnings += [f"{k}: unstable ({d.note})" for k, d in dists.items() if d.unstable]
    known = [r for r in residency if r is not None]
    return DiskResult(
        path=str(path), fs_type=kind, size_bytes=size, block_size_bytes=block_size_bytes,
        seq_write_mb_per_s=dists["seq_write_mb_per_s"].median,
        seq_read_mb_per_s_cold=cold_mb, seq_read_mb_per_s_warm=warm_mb,
        seq_read_mb_per_s_direct=dists["seq_read_mb_per_s_direct"].median if read_direct else None,
        rand_read_iops_4k=dists["rand_read_iops_4k"].median,
        read_latency_p50_s=float(np.percentile(lat, 50)), read_latency_p99_s=float(np.percentile(lat, 99)),
        rand_read_ops=int(lat.size), rand_read_method=rand_method,
        cache_evicted=evicted, cache_resident_fraction_max=max(known) if known else None,
        o_direct=o_direct, distributions=dists, block_sizes=sweep, warnings=warnings, elapsed_s=elapsed,
    )
