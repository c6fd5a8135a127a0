"""The disk probe's I/O primitives, as fio's psync engine does them at queue depth 1.

Writes with fsync, sequential and random preads (buffered with fadvise hints, or O_DIRECT into page-aligned mmap
buffers), so scripts/fio_compare.py can hold the probe against fio pattern for pattern. MB means 1e6 bytes.
"""

from __future__ import annotations

import errno
import mmap
import os
import time
from itertools import pairwise
from pathlib import Path

import numpy as np

MB = 1e6
PAGE_BYTES = 4096
RAND_BLOCK_BYTES = 4096


class ProbeError(Exception):
    """A probe that cannot run or finish honestly: names the path and the reason."""

    def __init__(self, path: os.PathLike | str, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def free_bytes(path: os.PathLike | str) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def oserror_reason(exc: OSError, free: int | None) -> str:
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
            raise ProbeError(path.parent, oserror_reason(exc, free)) from None
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


def rand_read(path: Path, offsets: np.ndarray, *, direct: bool,
              until: float | None = None) -> tuple[np.ndarray, np.ndarray]:
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
    chosen = np.random.default_rng(seed).choice(pages, size=min(n, pages), replace=False)
    return chosen.astype(np.int64) * RAND_BLOCK_BYTES


def segment_iops(ends_s: np.ndarray, segments: int) -> list[float]:
    """Reads per second of wall time (loop overhead included, as fio counts it) in each of `segments`
    consecutive runs of reads, given the time each read ended."""
    bounds = np.linspace(0, ends_s.size, segments + 1).astype(int)
    out = []
    for a, b in pairwise(bounds):
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
