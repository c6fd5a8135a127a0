"""Writing a file whole (a reader sees the old file or the new one, never half of one) and holding a directory for
one process at a time (an exclusive lock file that names its holder).

The one implementation every part uses (results.json, shards, reports, a run's output directory); it imports nothing
of feedtax.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def write_atomic(path: Path, data: bytes, *, durable: bool) -> None:
    """Replace path with data via a temp file and rename, so a reader sees the old file or the new one,
    never half of one; durable also fsyncs the file and its directory (the rename survives a crash).
    Any failure, a full disk or a signal's exception alike, removes the temp file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            fsync_path(path.parent)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:  # a failed write says which file, as open() does
            exc.filename = str(path)
        raise


def fsync_path(path: Path) -> None:
    """A file or a directory (its entries: a rename into it) on disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LockHeld(RuntimeError):
    """Another process holds the lock: `holder` is what it wrote into the lock file ('' if it has not yet)."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path, self.holder = Path(path), holder
        super().__init__(f"{path}: held by {holder or 'another process'}")


class Lock:
    """A held exclusive lock; `describe` replaces what the lock file tells a process that finds it held."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def describe(self, holder: str) -> None:
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, holder.encode(), 0)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


@contextmanager
def exclusive_lock(path: Path, holder: str) -> Iterator[Lock]:
    """Hold an exclusive flock on the file at path for the block, writing `holder` into it; LockHeld (with what the
    holder wrote) when another process holds it. The kernel drops the lock when its process dies, even by
    SIGKILL; the file is removed on release (a stale one from a killed process is simply taken over)."""
    path = Path(path)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            text = os.pread(fd, 4096, 0).decode(errors="replace").strip() if exc.errno in (
                errno.EWOULDBLOCK, errno.EAGAIN) else None
            os.close(fd)
            if text is None:
                raise
            raise LockHeld(path, text) from None
        if _same_file(fd, path):  # else its holder removed it between our open and flock: lock the new one
            break
        os.close(fd)
    lock = Lock(fd)
    try:
        lock.describe(holder)
        yield lock
    finally:
        path.unlink(missing_ok=True)  # before the unlock: a waiter that locked the old file sees it gone and retries
        os.close(fd)
