"""A run's output directory: checked writable, held by one run at a time (OUT/.feedtax.lock), cleared of what a
killed run left there, checked for room for the shards, and the previous run's results kept as results.prev.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from feedtax.atomic import Lock, LockHeld, exclusive_lock
from feedtax.probes.disk import leftover_test_files
from feedtax.results.io import now_utc
from feedtax.vocabulary import FORMATS, TRACKS

LOCK_NAME = ".feedtax.lock"
WRITE_TEST_PREFIX = ".feedtax-write-test-"
TEMP_NAMES = ("results.json.tmp", "report.html.tmp")  # write_atomic's temp files of what only a run writes here
_SHARD_FOLDER = re.compile(rf"(sweep-)?({'|'.join(TRACKS)})-({'|'.join(FORMATS)})(-encode)?")
KEPT = {"results.json": "results.prev.json", "report.html": "report.prev.html"}

Say = Callable[[str], None]


class OutDirError(RuntimeError):
    """The output directory cannot take this run (unwritable, held by another run, too full): one line for the user."""


def check_writable(directory: Path, what: str) -> None:
    """Create directory (and its parents) if needed and write a file in it, or OutDirError naming it and why."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=WRITE_TEST_PREFIX, dir=directory)  # unique: a class folder is shared
        os.close(fd)
        Path(probe).unlink(missing_ok=True)  # a run clearing leftovers here may have taken it already
    except OSError as exc:
        raise OutDirError(f"{directory}: cannot write {what} there: {exc.strerror or exc}") from None


def free_bytes(directory: Path) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def _size(path: Path) -> int:
    try:
        if path.is_dir():
            return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
        return path.lstat().st_size
    except FileNotFoundError:  # a write test's file, removed by the run that made it
        return 0


def _unfinished(out_dir: Path) -> bool:
    """Whether results.json here is a run's that stopped without finishing: its status still 'running' while this
    process holds the lock, so the process that wrote it is gone."""
    try:
        return json.loads((out_dir / "results.json").read_bytes()).get("status") == "running"
    except (OSError, ValueError, AttributeError):
        return False


def shard_folders(data_dir: Path) -> list[Path]:
    """The folders a run writes its shards into under data_dir (by name: anything else there is not feedtax's)."""
    if not data_dir.is_dir():
        return []
    return [p for p in sorted(data_dir.iterdir()) if _SHARD_FOLDER.fullmatch(p.name) and not p.is_symlink()]


def remove_shards(data_dir: Path) -> None:
    """Remove a run's shard folders, then data_dir itself if that leaves it empty."""
    for p in shard_folders(data_dir):
        shutil.rmtree(p, ignore_errors=True)
    try:
        data_dir.rmdir()
    except OSError:  # absent, or holding something not ours
        pass


def remove_stale(out_dir: Path, say: Say) -> int:
    """Remove what a run killed outright left in out_dir: the disk probe's hidden test file, temp files of
    interrupted writes and, when that run did not finish, its shard folders in data/. One line says what and how
    many bytes; returns the bytes removed."""
    data = out_dir / "data"
    found = leftover_test_files(data) + [p for n in TEMP_NAMES if (p := out_dir / n).exists()]
    found += sorted(out_dir.glob(f"{WRITE_TEST_PREFIX}*"))
    shards = shard_folders(data) if _unfinished(out_dir) else []
    removed = 0
    for p in found + shards:
        removed += _size(p)
        shutil.rmtree(p) if p in shards else p.unlink(missing_ok=True)
    if found or shards:
        what = [f"{n} {kind}" for n, kind in ((len(shards), "shard folder(s)"), (len(found), "hidden or temp file(s)"))
                if n]
        say(f"removed what a run that did not finish left in {out_dir}: {' and '.join(what)} ({removed:,} bytes)")
    return removed


def check_space(out_dir: Path, need: int, what: str,
                hint: str = "choose another --out or fewer --tracks/--formats") -> None:
    """OutDirError naming the path, its free space and the need when out_dir's filesystem has less than need bytes;
    hint: what else the user can change."""
    free = free_bytes(out_dir)
    if free < need:
        has, needs = f"{free / 1e6:,.1f} MB", f"{need / 1e6:,.1f} MB"
        if has == needs:  # close enough to round alike: in bytes
            has, needs = f"{free:,} bytes", f"{need:,} bytes"
        raise OutDirError(f"{out_dir}: not enough free space for {what}: {has} free, about {needs} needed (free some "
                          f"space, or {hint})")


def keep_previous(out_dir: Path, say: Say) -> None:
    """Keep the previous run's results.json as results.prev.json and its report.html as report.prev.html (replacing
    an older pair), so a rerun never silently overwrites a measurement; one line says so."""
    if not (out_dir / "results.json").exists():
        return
    for name, kept in KEPT.items():
        (out_dir / kept).unlink(missing_ok=True)  # an older pair goes: the kept report is always the kept results'
        if (out_dir / name).exists():
            os.replace(out_dir / name, out_dir / kept)
    say(f"kept the previous run's results as {out_dir / KEPT['results.json']}"
        + (f" and {KEPT['report.html']}" if (out_dir / KEPT["report.html"]).exists() else ""))


_held: dict[str, Lock] = {}  # directories this process holds: a nested claim on one is the outer claim


def _holder() -> str:
    return f"pid {os.getpid()}, started {now_utc()}"


@contextmanager
def claim(out_dir: Path, need: Callable[[], tuple[int, str]], say: Say) -> Iterator[Lock]:
    """Hold out_dir for one run: lock it (OutDirError naming the run holding it), remove what a killed run left,
    check the room `need()` asks for ((bytes, what for), measured once the leftovers are gone), keep the previous
    results. A claim nested in one of this process on the same directory does nothing more."""
    key = os.path.realpath(out_dir)
    if key in _held:
        yield _held[key]
        return
    try:
        with exclusive_lock(Path(out_dir) / LOCK_NAME, _holder()) as lock:
            _held[key] = lock
            try:
                remove_stale(Path(out_dir), say)
                check_space(Path(out_dir), *need())
                keep_previous(Path(out_dir), say)
                yield lock
            finally:
                del _held[key]
    except LockHeld as exc:
        raise OutDirError(f"{out_dir}: another feedtax run is writing here ({exc.holder or 'it has not said which'}): "
                          "wait for it to finish, or choose another --out") from None
