"""Turning submitted results files into the store's rows: one file (`prepare`), a chunk of files as one Batch of Arrow
tables (`prepare_chunk`), and a pool of forked processes that prepares chunks while the collect judges and inserts
the ones before (`start`, `in_order`, `stop`).

Validation is the slow part of a collect (parsing, the walk over every number, pydantic's strict validation, the rows:
about 20 ms of CPU per file), and each file's is independent of the others', so it runs on every usable core; what
depends on the other files (is this run new, a copy, a conflict?) is judged afterwards, in order, by the collect.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from feedtax.classroom.intake import Invalid, Rejected, admit
from feedtax.classroom.locks import MeasuredAnswer, measured_answers
from feedtax.classroom.store import (
    RAW_CODEC,
    Batch,
    Plan,
    Prepared,
    answer_rows,
    batch_tables,
    pack_raw,
    rows_of,
    table_plans,
)
from feedtax.results.lab import LOCKS
from feedtax.results.schema import SCHEMA_VERSION, Results

CHUNK_FILES = 25  # files a pool process prepares per task, handed back as one Batch (about 6 MB each way): the tables'
# trip back costs less per file in larger chunks (pickled and unpickled: 3.6 ms a file at 10, 2.2 at 25, 1.1 at 50),
# and 25 keeps what is in flight near 25 MB
AHEAD_PER_PROCESS = 2  # chunks in flight per pool process: one being prepared, one waiting
POOL_MIN_FILES = 40  # fewer files are prepared in the collect's own process: forking a pool costs more than it saves

# A file as the collect reads it: (path, realpath, what to prepare: its bytes and their sha256, None once sent off, or
# what the collect already decided about it, which the pool never sees)
Entry = tuple[Path, str, Any]


def prepare(path: Path, plan: Plan, data: bytes | None = None, bytes_sha256: str | None = None) -> Prepared:
    """Read (unless its bytes, and maybe their sha256, are given), parse, migrate, validate and check one file
    (intake), and turn it into rows; raises Invalid (or Reject) with the kind and reason."""
    read = admit(path, data)
    res, data = read.results, read.data
    warnings = []
    if read.unknown:
        warnings.append(f"sections this feedtax does not know were kept only in submissions.raw: "
                        f"{', '.join(read.unknown)[:200]}")
    if read.version != SCHEMA_VERSION:
        warnings.append(f"migrated from schema_version {read.version} to {SCHEMA_VERSION}")
    content = hashlib.sha256(res.__pydantic_serializer__.to_json(res)).hexdigest()  # model_dump_json's bytes
    measured = res.measurements_sha256()
    bytes_sha256 = bytes_sha256 or hashlib.sha256(data).hexdigest()
    submission = (res.run_id, content, bytes_sha256, len(data), str(path), read.version, None,
                  json.dumps(warnings), pack_raw(data), measured, RAW_CODEC)
    rows = rows_of(res, plan)
    rows["measured_answers"] = _answers(res)
    return Prepared(path, res.run_id, rows, submission, content, warnings, measured)


def _answers(res: Results) -> list[tuple]:
    """The run's measured Lock answers as rows; a run whose answers cannot be computed still goes in, saying why."""
    try:
        found = measured_answers(res)
    except Exception as exc:  # the answers are derived: they never keep a valid run out of the store
        why = f"not computable from this run: {type(exc).__name__}: {exc}"[:300]
        found = {k: MeasuredAnswer(lock=k, answer=None, reason=why, evidence=why) for k in LOCKS}
    return answer_rows(res.run_id, found)


_PLAN: list[Plan] = []


def plan() -> Plan:
    """The store's table plan, built once per process (a pool's processes inherit it)."""
    if not _PLAN:
        _PLAN.append(table_plans())
    return _PLAN[0]


def prepare_chunk(jobs: list[tuple[Path, bytes, str]]) -> tuple[list[Prepared | Rejected], Batch]:
    """Prepare files (path, bytes, sha256): each one's Prepared or Rejected, in order, and the Batch of the good ones
    (their rows moved into its tables; only their measured answers kept, for runs stored before them)."""
    out: list[Prepared | Rejected] = []
    for path, data, digest in jobs:
        try:
            out.append(prepare(path, plan(), data, digest))
        except Invalid as r:
            out.append(Rejected(path=str(path), kind=r.kind, reason=r.reason, run_id=r.run_id))
    good = [p for p in out if isinstance(p, Prepared)]
    batch = batch_tables(plan(), good)
    for p in good:
        p.rows = {"measured_answers": p.rows["measured_answers"]}
    return out, batch


# --- the pool --------------------------------------------------------------------------------------------------------

def start(workers: int | None, n_files: int) -> ProcessPoolExecutor | None:
    """The pool preparing n_files (None: the caller's process does), its processes forked now: before the caller
    opens DuckDB or starts a thread. workers: how many (default: one per usable core, and none for fewer than
    POOL_MIN_FILES files; 1: none)."""
    n = workers or len(os.sched_getaffinity(0))
    if n < 2 or n_files < (2 if workers else POOL_MIN_FILES):
        return None
    plan()
    pool = ProcessPoolExecutor(n, mp_context=mp.get_context("fork"), initializer=_leave_to_parent)
    pool.submit(int).result()  # with fork, the first task starts every process
    return pool


def _leave_to_parent() -> None:
    """A pool process leaves Ctrl-C, SIGTERM and SIGHUP to the collect, which stops the pool (as bench.ondisk's), and
    the terminal to it too: its stdout and stderr go to /dev/null, so its exit never waits on a stream's lock that a
    thread of the collect (a progress bar's) held when the process was forked."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115  (for the process's life)


def stop(pool: ProcessPoolExecutor | None) -> None:
    """Stop the pool: tasks not started are dropped, each process finishes its chunk and exits."""
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def in_order(fn: Callable, chunks: Iterator[list[Entry]], pool: ProcessPoolExecutor | None
             ) -> Iterator[tuple[list[Entry], Any]]:
    """(chunk, fn(its files to prepare)) for every chunk, in order: in the pool, a few chunks ahead of the one handed
    back (memory bounded, every process busy), or here one at a time. A chunk's bytes are dropped once sent."""
    def jobs(chunk: list[Entry]) -> list[tuple[Path, bytes, str]]:
        out = [(path, *what) for path, _, what in chunk if type(what) is tuple]
        chunk[:] = [(path, real, None if type(what) is tuple else what) for path, real, what in chunk]
        return out

    if pool is None:
        for chunk in chunks:
            yield chunk, fn(jobs(chunk))
        return
    ahead: deque[tuple[list[Entry], Future]] = deque()
    try:
        while True:
            while len(ahead) < AHEAD_PER_PROCESS * pool._max_workers:  # noqa: SLF001  (the size it was made with)
                chunk = next(chunks, None)
                if chunk is None:
                    break
                ahead.append((chunk, pool.submit(fn, jobs(chunk))))
            if not ahead:
                return
            chunk, future = ahead.popleft()
            yield chunk, future.result()
    finally:
        for _, future in ahead:
            future.cancel()
