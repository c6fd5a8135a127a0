"""Page cache control for cold reads: flush and evict files (posix_fadvise DONTNEED after fsync, no
root needed), and check page residency with mincore so the report can say whether it worked."""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
_MAP_FAILED = ctypes.c_void_p(-1).value


@dataclass(frozen=True)
class Eviction:
    """Outcome of evicting files: whether their pages left the cache, as mincore sees it."""

    evicted: bool
    resident_fraction: float | None  # after eviction; None where mincore could not tell
    method: str = "fsync + posix_fadvise(POSIX_FADV_DONTNEED)"


def resident_pages(path: os.PathLike | str) -> tuple[int, int]:
    """(resident pages, total pages) of a file, from mincore over a read-only mapping."""
    size = os.path.getsize(path)
    if size == 0:
        return 0, 0
    page = mmap.PAGESIZE
    pages = (size + page - 1) // page
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, _MAP_FAILED):
            raise OSError(ctypes.get_errno(), f"mmap failed for {path}")
        try:
            vec = ctypes.create_string_buffer(pages)
            if _libc.mincore(addr, size, vec) != 0:
                raise OSError(ctypes.get_errno(), f"mincore failed for {path}")
            return sum(b & 1 for b in vec.raw), pages
        finally:
            _libc.munmap(addr, size)
    finally:
        os.close(fd)


def resident_fraction(paths: Iterable[os.PathLike | str]) -> float | None:
    resident = total = 0
    try:
        for p in paths:
            r, t = resident_pages(p)
            resident, total = resident + r, total + t
    except OSError:
        return None
    return resident / total if total else 0.0


def evict(paths: Iterable[os.PathLike | str]) -> Eviction:
    """Write back and drop the files' cached pages; report the residency left (0 when it worked)."""
    paths = [Path(p) for p in paths]
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    fraction = resident_fraction(paths)
    return Eviction(evicted=fraction is not None and fraction < 0.05, resident_fraction=fraction)
