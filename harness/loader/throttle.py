"""Disk-tier emulation: every shard read the loader makes served at a storage tier's bandwidth and per-request latency
by one token bucket shared by all worker processes, and measured at the reader (bytes over time spent reading).

The codec still reads from wherever the bytes are (the page cache, normally) and not one byte changes: the throttle
only holds each read back until the tier would have delivered it. docs/disk-tiers.md tells the design.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from feedtax.formats.base import Codec, Columns, Sample

# slots of the shared state: the bucket, then the reader's measurements
_TOKENS, _STAMP, _BYTES, _REQUESTS, _BUSY_S, _LAST_END = range(6)


@dataclass(frozen=True)
class ThrottleStats:
    """What the readers got through one throttle, summed over every process: bytes, requests, and the time at least
    one read was outstanding (from a request to its delivery), so bytes / reading_s is the rate seen at the reader."""

    bytes: int
    requests: int
    reading_s: float

    @property
    def bytes_per_s(self) -> float | None:
        return self.bytes / self.reading_s if self.reading_s > 0 else None


class Throttle:
    """A token bucket of bytes refilled at bandwidth_bytes_per_s, shared by every process that holds it (its state
    lives in shared memory, made in `context`, the multiprocessing context of the DataLoader's workers: the default
    one, fork on Linux, as feedtax's loader uses), plus latency_s per read request.

    A request of n bytes takes n + latency_s x bandwidth tokens: its latency occupies the device as a queue-depth-1
    disk's seek does, so requests from several workers are served one after another and together never exceed the
    tier's bandwidth. The bucket may go into debt: a request waits until the debt it leaves is repaid, so requests
    are served in the order they asked. depth_bytes is the burst an idle device banks (0: none, as a disk has none).
    """

    def __init__(self, bandwidth_bytes_per_s: float, latency_s: float = 0.0, *, depth_bytes: float = 0.0,
                 context: multiprocessing.context.BaseContext | None = None):
        if not bandwidth_bytes_per_s > 0 or not math.isfinite(bandwidth_bytes_per_s):
            raise ValueError(f"a throttle's bandwidth must be a finite number > 0 B/s, got {bandwidth_bytes_per_s!r}")
        if not latency_s >= 0 or not depth_bytes >= 0:
            raise ValueError(f"latency ({latency_s!r} s) and depth ({depth_bytes!r} B) must be >= 0")
        self.bandwidth_bytes_per_s, self.latency_s, self.depth_bytes = bandwidth_bytes_per_s, latency_s, depth_bytes
        self._state = (context or multiprocessing.get_context()).Array("d", 6)  # with its own lock
        self.reset()

    def __repr__(self) -> str:
        return f"Throttle({self.bandwidth_bytes_per_s:g} B/s, {self.latency_s:g} s per request)"

    def reset(self) -> None:
        """A full bucket (depth_bytes) and zeroed measurements."""
        with self._state.get_lock():
            self._state[:] = [self.depth_bytes, time.monotonic(), 0.0, 0.0, 0.0, 0.0]

    def read(self, nbytes: int) -> None:
        """One read request of nbytes: return once the tier would have delivered it (its latency included)."""
        s, rate = self._state, self.bandwidth_bytes_per_s
        asked = time.monotonic()
        with s.get_lock():
            s[_TOKENS] = min(self.depth_bytes, s[_TOKENS] + (asked - s[_STAMP]) * rate)
            s[_STAMP] = asked
            s[_TOKENS] -= nbytes + self.latency_s * rate
            due = asked + max(0.0, -s[_TOKENS] / rate)
            s[_BYTES] += nbytes
            s[_REQUESTS] += 1
        while (left := due - time.monotonic()) > 0:
            time.sleep(left)
        done = time.monotonic()
        with s.get_lock():  # the union of [asked, done] over requests: time at least one read was outstanding
            s[_BUSY_S] += max(0.0, done - max(asked, s[_LAST_END]))
            s[_LAST_END] = max(s[_LAST_END], done)

    def stats(self) -> ThrottleStats:
        with self._state.get_lock():
            s = list(self._state)
        return ThrottleStats(bytes=int(s[_BYTES]), requests=int(s[_REQUESTS]), reading_s=s[_BUSY_S])


_ACTIVE: list[Throttle | None] = [None]


@contextmanager
def applied(throttle: Throttle | None) -> Iterator[Throttle | None]:
    """Within the block, loaders made by feedtax.loader.make_loader without a throttle of their own read through this
    one (None: none), so code that builds its loaders deep inside (feedtax.bench.sweep) can be swept at a tier."""
    before = _ACTIVE[0]
    _ACTIVE[0] = throttle
    try:
        yield throttle
    finally:
        _ACTIVE[0] = before


def active() -> Throttle | None:
    """The throttle set by the innermost applied() block, else None."""
    return _ACTIVE[0]


def throttled(codec: Codec, throttle: Throttle | None, rows: Mapping[Path, int] | None = None) -> Codec:
    """The codec with every shard read first held back by throttle (the codec itself when throttle is None).

    Streaming a shard (iter_shard, iter_columns) is one request of the shard's file size: every format reads its whole
    file to stream it. A random-access read (read_sample) is one request of the sample's share of its shard's file,
    size / rows[path] (the whole file where rows does not know the shard). A file that cannot be sized is charged
    nothing and left to the codec, whose error (ShardError) comes through unchanged.
    """
    if throttle is None:
        return codec

    def iter_shard(path: Path) -> Iterator[Sample]:
        throttle.read(_size(path))
        yield from codec.iter_shard(path)

    def iter_columns(path: Path) -> Iterator[Columns]:
        throttle.read(_size(path))
        yield from codec.iter_shard_columns(path)

    def read_sample(path: Path, index: int) -> Sample:
        n = (rows or {}).get(Path(path))
        throttle.read(-(-_size(path) // n) if n else _size(path))
        return codec.read_shard_sample(path, index)

    return dataclasses.replace(
        codec, iter_shard=iter_shard,
        iter_shard_columns=iter_columns if codec.iter_shard_columns is not None else None,
        read_shard_sample=read_sample if codec.read_shard_sample is not None else None)


def _size(path: Path) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


__all__ = ["Throttle", "ThrottleStats", "active", "applied", "throttled"]
