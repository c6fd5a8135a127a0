"""Class collection: validate a class's results.json submissions and ingest them into DuckDB.

Each file goes through intake (read with limits, parse, migrate, validate, plausibility) and, when
good, into the store once, keyed by run_id; bad ones are named with a reason. This module finds the
files, runs each through both, and reports what became of every one.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from feedtax.classroom.intake import Reject, migrate, parse, read_limited, validate
from feedtax.classroom.store import (
    CollectError,
    Plan,
    Prepared,
    connect,
    ensure_tables,
    rows_of,
    table_plans,
    table_rows,
    write_batch,
)
from feedtax.results.schema import SCHEMA_VERSION, Results

BATCH_FILES = 200  # files per insert transaction; a failing batch is retried file by file


class Accepted(BaseModel):
    """A run collected now, with any warnings about it."""

    path: str
    run_id: str
    warnings: list[str] = []


class Duplicate(BaseModel):
    """Same run_id and same content as a run already collected: nothing changes."""

    path: str
    run_id: str
    collected_from: str


class Rejected(BaseModel):
    """A file refused (or in conflict with a run already collected): its reject kind and why."""

    path: str
    kind: str
    reason: str
    run_id: str | None = None


class CollectReport(BaseModel):
    """What became of every file of one collection, and the database's row counts after it."""

    db_path: str
    accepted: list[Accepted] = []
    duplicates: list[Duplicate] = []
    conflicts: list[Rejected] = []
    rejected: list[Rejected] = []
    elapsed_s: float = 0.0
    table_rows: dict[str, int] = {}

    @property
    def ok(self) -> bool:
        """True when nothing was rejected (duplicates are fine: collecting twice is allowed)."""
        return not self.rejected and not self.conflicts


def submission_files(paths: Iterable[Path | str]) -> tuple[list[Path], list[Rejected]]:
    """Files named, plus *.json under directories named (symlinked directories not followed); in order, once each."""
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
    return list(files.values()), missing


def prepare(path: Path, plan: Plan) -> Prepared:
    """Read, parse, migrate, validate and check one file, and turn it into rows; raises Reject with the reason."""
    data = read_limited(path)
    doc, original = migrate(parse(data))
    unknown = sorted(set(doc) - set(Results.model_fields))
    res = validate(doc, data if original == SCHEMA_VERSION else None)
    warnings = []
    if unknown:
        warnings.append(f"sections this feedtax does not know were kept only in submissions.raw: "
                        f"{', '.join(unknown)[:200]}")
    if original != SCHEMA_VERSION:
        warnings.append(f"migrated from schema_version {original} to {SCHEMA_VERSION}")
    content = hashlib.sha256(res.model_dump_json().encode()).hexdigest()
    submission = (res.run_id, content, hashlib.sha256(data).hexdigest(), len(data), str(path), original, None,
                  json.dumps(warnings), data)
    return Prepared(path, res.run_id, rows_of(res, plan), submission, content, warnings)


def collect(paths: Iterable[Path | str], db_path: Path, *, batch_files: int = BATCH_FILES) -> CollectReport:
    """Validate every submission and ingest the good ones into db_path, once per run_id.

    A run_id already collected with the same content is a duplicate (nothing changes); with other
    content it is a conflict (rejected, the stored run kept). Each file is all-or-nothing: inserts
    go in batches of transactions, and a batch that fails is rolled back and retried file by file.
    """
    import duckdb

    t0 = time.perf_counter()
    report = CollectReport(db_path=str(db_path))
    files, missing = submission_files(paths)
    report.rejected += missing
    plan = table_plans()
    con = connect(db_path)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # thousands of live rows make every automatic collection rescan them all: collect after each batch
    try:
        try:
            ensure_tables(con, plan)
        except duckdb.Error as exc:
            raise CollectError(f"{db_path}: cannot prepare tables: {str(exc).splitlines()[0]}") from None
        stored = con.execute("SELECT run_id, content_sha256, source_path FROM submissions").fetchall()
        known = {r[0]: (r[1], r[2]) for r in stored}
        pending: list[Prepared] = []

        def flush() -> None:
            if not pending:
                return
            try:
                write_batch(con, plan, pending)
                report.accepted += [Accepted(path=str(p.path), run_id=p.run_id, warnings=p.warnings) for p in pending]
            except duckdb.Error:
                for p in pending:  # find the file that failed; the others go in one by one
                    try:
                        write_batch(con, plan, [p])
                        report.accepted.append(Accepted(path=str(p.path), run_id=p.run_id, warnings=p.warnings))
                    except duckdb.Error as exc:
                        known.pop(p.run_id, None)
                        report.rejected.append(Rejected(path=str(p.path), kind="database", run_id=p.run_id,
                                                        reason=f"the database refused it: {str(exc).splitlines()[0]}"))
            pending.clear()
            gc.collect()

        for path in files:
            try:
                item = prepare(path, plan)
            except Reject as r:
                report.rejected.append(Rejected(path=str(path), kind=r.kind, reason=r.reason, run_id=r.run_id))
                continue
            rid = item.run_id
            if rid in known:
                content, source = known[rid]
                if content == item.content_sha256:
                    report.duplicates.append(Duplicate(path=str(path), run_id=rid, collected_from=source))
                else:
                    report.conflicts.append(Rejected(
                        path=str(path), kind="conflict", run_id=rid,
                        reason=f"run_id {rid} was already collected from {source} with different content; "
                               "kept that one"))
                continue
            known[rid] = (item.content_sha256, str(path))
            pending.append(item)
            if len(pending) >= batch_files:
                flush()
        flush()
        report.table_rows = table_rows(con)
    finally:
        con.close()
        if gc_was_enabled:
            gc.enable()
    report.elapsed_s = time.perf_counter() - t0
    return report
