"""Writing a class's batches into the store in a thread of its own, while the next batch is read and validated.

DuckDB inserts without holding the GIL, so the database's work overlaps the parsing; the Arrow tables are built before
(store.batch_tables, in the validating process), the inserts run in the writer's thread (DuckDB's). One batch at a
time: a batch is finished, and what it refused handed back, before the next one starts.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from feedtax.classroom.store import Batch, CollectError, Prepared, describe, insert_tables


def refused(exc: Exception, db_path: str) -> str:
    """Why the database refused a file, in one line: a full disk named as such."""
    said = describe(exc, db_path)
    return said if said.startswith("disk full") else f"the database refused it: {said}"


def write(con, batch: Batch, db_path: str) -> tuple[list[Prepared], list[tuple[Prepared, str]]]:
    """Insert the batch in one transaction; if it fails, one file per transaction, naming the file the database
    refuses and why: (stored, refused)."""
    import duckdb

    try:
        insert_tables(con, batch)
        return batch.items, []
    except duckdb.FatalException as exc:  # the database is invalidated: no further write can succeed
        raise CollectError(f"{db_path}: the database stopped: {describe(exc, db_path)} (the runs stored before this "
                           "batch are kept; collect again to add the rest)") from None
    except duckdb.Error:
        pass
    stored, failed = [], []
    for i, p in enumerate(batch.items):  # find the file that failed; the others go in one by one
        try:
            insert_tables(con, batch.one(i))
            stored.append(p)
        except duckdb.Error as exc:
            failed.append((p, refused(exc, db_path)))
    return stored, failed


Written = Callable[[list[Prepared], list[tuple[Prepared, str]]], None]


class BatchWriter:
    """Writes one batch at a time in a thread of its own; `written(stored, refused)` is called in the caller's thread
    when a batch is done (at the next submit, or on leaving the block). Leaving the block waits for the batch being
    written, so an interrupt never closes the database under a write. Files judged meanwhile are judged against the
    runs of the batch being written: one judged a copy of a run that the database then refuses (a full disk) is
    named a duplicate of it."""

    def __init__(self, con, db_path: str, written: Written):
        self.con, self.db_path, self.written = con, db_path, written
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="feedtax-collect-write")
        self._writing: Future | None = None

    def __enter__(self) -> BatchWriter:
        return self

    def submit(self, batch: Batch) -> None:
        """Wait for the batch being written, then start writing this one."""
        self.wait()
        if batch.items:
            self._writing = self._pool.submit(write, self.con, batch, self.db_path)

    def wait(self) -> None:
        """Wait for the batch being written, if any, and hand back what became of it."""
        if self._writing is None:
            return
        writing, self._writing = self._writing, None
        self.written(*writing.result())

    def __exit__(self, *exc) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)
