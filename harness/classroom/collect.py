"""Class collection: validate a class's results.json submissions (and their lab records) and ingest them into DuckDB.

Each file goes through intake (read with limits, parse, migrate, validate, plausibility) and, when
good, into the store once, keyed by run_id, with its measured Lock answers; bad ones are named with a
reason. A <run_id>.lab.json goes in after its run, replacing an older lab record of that run unless it
changes a Lock already collected. This module finds the files, runs each through both, and reports what
became of every one. Files are prepared (validated and turned into rows) by a pool of processes
(feedtax.classroom.prepare), judged here in order, and inserted by the store's writer in a thread of its own.
"""

from __future__ import annotations

import gc
import hashlib
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from feedtax.classroom import prepare as prep
from feedtax.classroom.intake import (
    Accepted,
    CollectReport,
    Duplicate,
    Invalid,
    LabCollected,
    Reject,
    Rejected,
    read_lab,
)
from feedtax.classroom.prepare import Entry
from feedtax.classroom.store import (
    Batch,
    CollectError,
    Plan,
    Prepared,
    backfill_fingerprints,
    connect,
    describe,
    ensure_tables,
    join,
    lab_rows,
    stored_lab,
    table_rows,
    write_extra,
)
from feedtax.classroom.submit import LAB_SUFFIX
from feedtax.classroom.writer import BatchWriter, refused
from feedtax.results.lab import LabRecord
from feedtax.results.validate import read_limited, run_key

DUCKDB_MEMORY_LIMIT = "256MB"
BATCH_FILES = 100  # files per insert transaction (about 25 MB of rows held); a failing batch is retried file by file


def submission_files(paths: Iterable[Path | str]) -> tuple[dict[str, Path], list[Rejected]]:
    """Files named, plus *.json under directories named (symlinked directories not followed); in order, once each, by
    their real path."""
    files: dict[str, Path] = {}
    missing = []
    for p in map(Path, paths):
        if p.is_dir():
            for root, dirs, names in os.walk(p):
                dirs.sort()
                for name in sorted(names):
                    if name.lower().endswith(".json"):
                        q = Path(root) / name
                        files.setdefault(os.path.realpath(q), q)
        elif p.exists() or p.is_symlink():
            files.setdefault(os.path.realpath(p), p)
        else:
            missing.append(Rejected(path=str(p), kind="missing", reason="no such file or directory"))
    return files, missing


class _Known:
    """The runs in the store and those collected now, by what identifies a run: its run_id compared without case or
    surrounding space (validate.run_key), and the fingerprint of its measurements (Results.measurements_sha256)."""

    def __init__(self, con):
        rows = con.execute("SELECT run_id, content_sha256, source_path, measurements_sha256, bytes_sha256 "
                           "FROM submissions")
        self.by_key: dict[str, tuple[str, str, str, str | None]] = {}  # run key -> (run_id, content, source, measured)
        self.by_measurements: dict[str, tuple[str, str]] = {}  # measurements -> (run_id, source)
        self.by_bytes: dict[str, tuple[str, str]] = {}  # the submitted file's sha256 -> (run_id, source)
        for run_id, content, source, measured, digest in rows.fetchall():
            self.by_key[run_key(run_id)] = (run_id, content, source, measured)
            if measured:
                self.by_measurements.setdefault(measured, (run_id, source))
            self.by_bytes.setdefault(digest, (run_id, source))

    def ids(self) -> set[str]:
        return {v[0] for v in self.by_key.values()}

    def add(self, item: Prepared) -> None:
        self.by_key[run_key(item.run_id)] = (item.run_id, item.content_sha256, str(item.path), item.measurements_sha256)
        self.by_measurements.setdefault(item.measurements_sha256, (item.run_id, str(item.path)))
        self.by_bytes.setdefault(item.bytes_sha256, (item.run_id, str(item.path)))

    def forget(self, item: Prepared) -> None:
        self.by_key.pop(run_key(item.run_id), None)
        if self.by_measurements.get(item.measurements_sha256, (None,))[0] == item.run_id:
            del self.by_measurements[item.measurements_sha256]
        if self.by_bytes.get(item.bytes_sha256, (None,))[0] == item.run_id:
            del self.by_bytes[item.bytes_sha256]

    def judge(self, item: Prepared, report: CollectReport) -> str:
        """"new" (to be stored), "known" (its run_id is stored: already there, or a conflict), or "refused": a copy
        of a stored run under another run_id (named as a duplicate of it)."""
        stored = self.by_key.get(run_key(item.run_id))
        if stored is not None and stored[0] == item.run_id:
            _already(item, stored[1:3], report)
            return "known"
        if stored is not None and stored[3] != item.measurements_sha256:
            report.conflicts.append(Rejected(
                path=str(item.path), kind="conflict", run_id=item.run_id,
                reason=f"run_id {item.run_id} is run_id {stored[0]} (collected from {stored[2]}: run_ids are compared "
                       "without case) with different measurements; kept that one"))
            return "refused"
        twin = (stored[0], stored[2]) if stored is not None else self.by_measurements.get(item.measurements_sha256)
        if twin is not None:
            report.rejected.append(Rejected(
                path=str(item.path), kind="duplicate", run_id=item.run_id,
                reason=f"the same measurements as run {twin[0]} (collected from {twin[1]}) under another run_id: "
                       "a run is counted once"))
            return "refused"
        return "new"


def collect(paths: Iterable[Path | str], db_path: Path, *, batch_files: int = BATCH_FILES,
            workers: int | None = None, progress: Any = None) -> CollectReport:
    """Validate every submission and ingest the good ones into db_path, once per run; then the lab records.

    A run_id already collected with the same content is a duplicate (nothing changes); with other
    content it is a conflict (rejected, the stored run kept); run_ids are compared without case. The same
    measurements under another run_id are rejected as a duplicate of the run collected first. Each file is
    all-or-nothing: inserts go in batches of transactions, and a batch that fails is rolled back and retried file
    by file; a full disk is named as such. workers: the processes preparing the files (prepare.start: by default one
    per usable core; 1: this process alone). progress: told of each file as it is judged (`start(description, total)`,
    `advance()`, as feedtax.cli.progress's).
    """
    t0 = time.perf_counter()
    report = CollectReport(db_path=str(db_path))
    found, missing = submission_files(paths)
    report.rejected += missing
    labs = [p for p in found.values() if p.name.lower().endswith(LAB_SUFFIX)]
    files = [(p, real) for real, p in found.items() if not p.name.lower().endswith(LAB_SUFFIX)]
    plan = prep.plan()
    pool = prep.start(workers, len(files))  # forked before DuckDB or the writer's thread exists
    try:
        con = connect(db_path)
    except BaseException:
        prep.stop(pool)
        raise
    # DuckDB caches the database's blocks up to its memory limit (80% of RAM by default): bounded, a collect's memory
    # stays bounded however large the class grows (256 MB: about half the peak RSS of 1 GB at 10,000 submissions, in
    # the same time; docs/instructors.md). Not much lower: a checkpoint pins the blocks it rewrites, and at 48 MB one
    # failed (fatally) once a class passed 1,500 submissions. One DuckDB thread: the pool's processes take the other
    # cores.
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")
    con.execute("SET threads = 1")
    gc_was_enabled = gc.isenabled()
    gc.disable()  # thousands of live rows make every automatic collection rescan them all: collect after each batch
    try:
        known = _open(con, plan, db_path)
        if progress is not None:
            progress.start("results files", len(files))
        run_of = _collect_runs(con, pool, files, known, report, batch_files, progress)
        prep.stop(pool)
        if progress is not None and labs:
            progress.start("lab records", len(labs))
        _collect_labs(con, labs, run_of, known.ids(), report, progress)
        report.table_rows = table_rows(con)
    finally:
        prep.stop(pool)
        con.close()
        if gc_was_enabled:
            gc.enable()
    report.elapsed_s = time.perf_counter() - t0
    return report


def _open(con, plan: Plan, db_path: Path) -> _Known:
    """The store's tables made current (an older store gains the tables, columns and fingerprints it lacks), and the
    runs it holds; CollectError when that cannot be written."""
    import duckdb

    try:
        ensure_tables(con, plan)
        backfill_fingerprints(con)
    except duckdb.Error as exc:
        raise CollectError(f"{db_path}: cannot prepare tables: {describe(exc, db_path)}") from None
    return _Known(con)


def _collect_runs(con, pool: ProcessPoolExecutor | None, files: list[tuple[Path, str]], known: _Known,
                  report: CollectReport, batch_files: int, progress: Any) -> dict[str, str | None]:
    """Every results file validated and, when new, inserted in batches; each file's run_id (None: not collected),
    to pair the lab records with."""
    import duckdb

    answered = {r[0] for r in con.execute("SELECT DISTINCT run_id FROM measured_answers").fetchall()}
    run_of: dict[str, str | None] = {}
    backfill: list[tuple] = []  # measured answers of runs collected before they were computed

    def chunks() -> Iterator[list[Entry]]:
        """The files read, CHUNK_FILES to prepare at a time (or a few times as many already decided: their bytes
        stored, or unreadable)."""
        chunk: list[Entry] = []
        to_prepare, most = 0, min(prep.CHUNK_FILES, batch_files)
        for (path, real), loaded in zip(files, _loaded(files), strict=True):
            chunk.append(_entry(path, real, loaded, known, answered))
            to_prepare += type(chunk[-1][2]) is tuple
            if to_prepare >= most or len(chunk) >= 8 * most:
                yield chunk
                chunk, to_prepare = [], 0
        if chunk:
            yield chunk

    def written(stored: list[Prepared], failed: list[tuple[Prepared, str]]) -> None:
        report.accepted += [Accepted(path=str(p.path), run_id=p.run_id, warnings=p.warnings) for p in stored]
        for p, why in failed:
            known.forget(p)
            report.rejected.append(Rejected(path=str(p.path), kind="database", run_id=p.run_id, reason=why))
        gc.collect()  # automatic collection is off during a collect: once per batch instead

    pending: list[Batch] = []
    with BatchWriter(con, report.db_path, written) as writer:
        for chunk, (prepared, batch) in prep.in_order(prep.prepare_chunk, chunks(), pool):
            keep = _judge(chunk, iter(prepared), known, report, answered, run_of, backfill)
            for _ in chunk if progress is not None else ():
                progress.advance()
            pending.append(batch.select(keep))
            while sum(len(b.items) for b in pending) >= batch_files:
                full, rest = join(pending).split(batch_files)
                writer.submit(full)
                pending[:] = [rest]
        writer.submit(join(pending))
    if backfill:
        try:
            write_extra(con, {"measured_answers": backfill})
        except duckdb.Error as exc:
            why = describe(exc, report.db_path)
            report.rejected.append(Rejected(path=report.db_path, kind="database", reason="the measured answers of "
                                            f"runs collected before them were not filled in: {why}"))
    return run_of


READ_THREADS = 2  # files read and hashed ahead of the collect, in threads (reading and hashing release the GIL)
READ_AHEAD = 16  # files read ahead at most (about 4 MB of laptop-profile results files)


def _loaded(files: list[tuple[Path, str]]) -> Iterator[tuple[bytes, str] | Invalid]:
    """Each file's bytes and their sha256 (or why it cannot be read), in order, read a few files ahead in threads:
    a re-collect is mostly this (about 0.45 ms a file of 254 KB in one thread)."""
    def load(path: Path) -> tuple[bytes, str] | Invalid:
        try:
            data = read_limited(path)
        except Invalid as r:
            return r
        return data, hashlib.sha256(data).hexdigest()

    with ThreadPoolExecutor(READ_THREADS, thread_name_prefix="feedtax-collect-read") as threads:
        ahead: deque[Future] = deque()
        try:
            for path, _ in files:
                ahead.append(threads.submit(load, path))
                if len(ahead) > READ_AHEAD:
                    yield ahead.popleft().result()
            while ahead:
                yield ahead.popleft().result()
        finally:
            for future in ahead:
                future.cancel()


def _entry(path: Path, real: str, loaded: tuple[bytes, str] | Invalid, known: _Known, answered: set[str]) -> Entry:
    """One results file (and its real path) as read: its bytes to validate; or, when these very bytes are collected,
    its Duplicate (not parsed again); or why it cannot be read."""
    if isinstance(loaded, Invalid):
        return path, real, Rejected(path=str(path), kind=loaded.kind, reason=loaded.reason, run_id=loaded.run_id)
    stored = known.by_bytes.get(loaded[1])
    if stored is not None and stored[0] in answered:
        return path, real, Duplicate(path=str(path), run_id=stored[0], collected_from=stored[1])
    return path, real, loaded


def _judge(chunk: list[Entry], prepared: Iterator[Prepared | Rejected], known: _Known, report: CollectReport,
           answered: set[str], run_of: dict[str, str | None], backfill: list[tuple]) -> list[bool]:
    """What became of each file of a chunk, in order, against the runs known: for each validated one, whether it is
    new (to be stored)."""
    keep: list[bool] = []
    for _, real, what in chunk:
        run_of[real] = None
        if isinstance(what, Duplicate):
            report.duplicates.append(what)
            run_of[real] = what.run_id
            continue
        item = what if isinstance(what, Rejected) else next(prepared)
        if isinstance(item, Rejected):
            report.rejected.append(item)
            continue
        verdict = known.judge(item, report)
        keep.append(verdict == "new")
        if verdict == "refused":
            continue
        rid = run_of[real] = item.run_id
        if verdict == "known":
            if rid not in answered:
                backfill += item.rows["measured_answers"]
            answered.add(rid)
            continue
        known.add(item)
        answered.add(rid)
    return keep


def _already(item: Prepared, stored: tuple[str, str], report: CollectReport) -> None:
    """A run_id already collected: the same content is a duplicate, other content a conflict (the stored run kept)."""
    content, source = stored
    if content == item.content_sha256:
        report.duplicates.append(Duplicate(path=str(item.path), run_id=item.run_id, collected_from=source))
    else:
        report.conflicts.append(Rejected(
            path=str(item.path), kind="conflict", run_id=item.run_id,
            reason=f"run_id {item.run_id} was already collected from {source} with different content; kept that one"))


# --- lab records ------------------------------------------------------------------------------------

def _lab_run(path: Path, lab: LabRecord, run_of: dict[str, str | None], known: set[str]) -> str:
    """The stored run a lab record goes with: that of the results file beside it (alice.lab.json -> alice.json)
    where one was collected now, else its own run_id's; Reject when there is none or the run_ids differ."""
    partner = path.with_name(path.name[: -len(LAB_SUFFIX)] + ".json")
    real = os.path.realpath(partner)
    if real in run_of:
        rid = run_of[real]
        if rid is None or rid not in known:
            raise Reject("lab_no_run", f"its results file {partner.name} was not collected: a lab record goes in "
                                       "with its run", lab.run_id)
        if rid != lab.run_id:
            raise Reject("lab_run_id_mismatch", f"its run_id {lab.run_id!r} is not that of {partner.name} beside it "
                                                f"({rid})", lab.run_id)
    if lab.run_id not in known:
        raise Reject("lab_no_run", f"run {lab.run_id!r} is not in the database: collect its results "
                                   f"({lab.run_id}.json) with it", lab.run_id)
    return lab.run_id


def _changed_locks(stored: list[tuple], lab: LabRecord) -> list[str]:
    """The Locks of the stored record that the new one drops or changes (a Lock is committed once)."""
    now = {(k.lock, k.choice, k.confidence, k.committed_utc) for k in lab.locks}
    return [row[0] for row in stored if tuple(row) not in now]


def _collect_labs(con, labs: list[Path], run_of: dict[str, str | None], known: set[str],
                  report: CollectReport, progress: Any = None) -> None:
    """Each lab record validated, paired with its run and stored: new, replacing an older one of that run, or
    unchanged; refused (named with the reason) when invalid, without a run, or changing a Lock already stored."""
    import duckdb

    for path in labs:
        if progress is not None:
            progress.advance()
        try:
            lab, raw = read_lab(path)
            rid = _lab_run(path, lab, run_of, known)
        except Invalid as r:
            report.rejected.append(Rejected(path=str(path), kind=r.kind, reason=r.reason, run_id=r.run_id))
            continue
        content = hashlib.sha256(lab.model_dump_json().encode()).hexdigest()
        stored = stored_lab(con, rid)
        if stored is not None and stored[0] == content:
            report.labs.append(LabCollected(path=str(path), run_id=rid, status="unchanged"))
            continue
        if stored is not None and (changed := _changed_locks(stored[2], lab)):
            report.conflicts.append(Rejected(
                path=str(path), kind="lab_conflict", run_id=rid,
                reason=f"changes the Lock(s) {', '.join(changed)} of the lab record collected from {stored[1]}: "
                       "a Lock is committed once; kept that one"))
            continue
        try:
            write_extra(con, lab_rows(lab, raw, content, str(path)), replace_run=rid if stored else None)
        except duckdb.Error as exc:
            report.rejected.append(Rejected(path=str(path), kind="database", run_id=rid,
                                            reason=refused(exc, report.db_path)))
            continue
        report.labs.append(LabCollected(path=str(path), run_id=rid, status="replaced" if stored else "collected"))
