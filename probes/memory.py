"""Memory copy bandwidth with numpy, on one core and on all cores the process may use.

Convention (STREAM's "Copy"): a copy of N bytes counts 2N bytes moved, N read plus N written; the
write-allocate traffic some CPUs add is not counted. MB = 1e6 bytes. numpy's copy releases the GIL,
so threads run the copies in parallel.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path

import numpy as np
import psutil

from feedtax.results.probes import MemoryResult
from feedtax.stats import rates, summarize, time_repeats

MB = 1e6
LLC_MULTIPLE = 4  # arrays this many times the last-level cache measure DRAM, not cache


def last_level_cache_bytes(cpu: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> int | None:
    """Size of cpu0's largest-level cache from sysfs, or None where it is not exposed."""
    best: tuple[int, int] | None = None
    for index in cpu.glob("index*"):
        try:
            level = int((index / "level").read_text())
            text = (index / "size").read_text().strip().upper()
        except (OSError, ValueError):
            continue
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        size = int(text.rstrip("KMG")) * mult
        if best is None or (level, size) > best:
            best = (level, size)
    return best[1] if best else None


def _copy_all(pool: ThreadPoolExecutor, dst: np.ndarray, src: np.ndarray, threads: int) -> None:
    bounds = np.linspace(0, src.size, threads + 1).astype(int)
    list(pool.map(lambda ab: np.copyto(dst[ab[0]:ab[1]], src[ab[0]:ab[1]]), pairwise(bounds)))


def measure_memory(
    size_bytes: int = 512 << 20,
    *,
    threads: int | None = None,
    repeats: int = 5,
    min_time_s: float = 0.2,
) -> MemoryResult:
    """Copy bandwidth of a size_bytes array into another, one thread then `threads` threads
    (default: the cores this process may run on). Raises ValueError when the arrays cannot fit."""
    if size_bytes < 1 << 20:
        raise ValueError(f"size {size_bytes} bytes is too small to measure memory (at least 1 MiB)")
    available = psutil.virtual_memory().available
    if 2 * size_bytes > available // 2:
        raise ValueError(f"two arrays of {size_bytes} bytes do not fit in half the available memory "
                         f"({available} bytes)")
    threads = threads or len(os.sched_getaffinity(0))
    warnings = []
    llc = last_level_cache_bytes()
    if llc and size_bytes < LLC_MULTIPLE * llc:
        warnings.append(f"arrays of {size_bytes} bytes are under {LLC_MULTIPLE}x the {llc}-byte last-level cache: "
                        f"part of the copy is served by cache")
    src = np.ones(size_bytes, dtype=np.uint8)  # written, so every page is really allocated
    dst = np.zeros_like(src)
    moved_mb = 2 * size_bytes / MB
    one = time_repeats(lambda: np.copyto(dst, src), warmups=1, repeats=repeats, min_time_s=min_time_s)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        many = time_repeats(lambda: _copy_all(pool, dst, src, threads), warmups=1, repeats=repeats,
                            min_time_s=min_time_s)
    dists = {
        "copy_mb_per_s_one_core": summarize(rates(one, moved_mb), "MB/s"),
        "copy_mb_per_s_all_cores": summarize(rates(many, moved_mb), "MB/s"),
    }
    warnings += [f"{k}: unstable ({d.note})" for k, d in dists.items() if d.unstable]
    return MemoryResult(
        size_bytes=size_bytes, copy_mb_per_s_one_core=dists["copy_mb_per_s_one_core"].median,
        copy_mb_per_s_all_cores=dists["copy_mb_per_s_all_cores"].median, threads=threads,
        last_level_cache_bytes=llc, distributions=dists, warnings=warnings,
    )
