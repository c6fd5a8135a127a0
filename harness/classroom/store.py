"""The class store: DuckDB tables derived from the `Results` model (feedtax.classroom.tableplan), and writing them.

Every run is stored whole or not at all, its submitted bytes kept in `submissions.raw`; beside it each run's
measured Lock answers, and the lab records (lab.json) in fixed tables (`EXTRA_TABLES`). A database from an older
feedtax gets the tables and columns it lacks (`ensure_tables`, `backfill_fingerprints`). The class report reads the
store through `connect` and `table_rows`.
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from feedtax.classroom.tableplan import (  # noqa: F401  (the layout's names, as the store's users know them)
    META_COLUMNS,
    TABLE_NAMES,
    Plan,
    _meta,
    all_plans,
    rows_of,
    table_plans,
)
from feedtax.results.io import now_utc


class CollectError(RuntimeError):
    """The collection cannot run at all (database unopenable or locked): names the file and why."""


# --- the database ----------------------------------------------------------------------------------
# bytes_sha256: the file as submitted (the same bytes again are "already there" without being parsed); content_sha256:
# the validated run (a re-collected file with the same content is "already there"); measurements_sha256:
# its measurements alone (Results.measurements_sha256: the same under another run_id is a duplicate). A store from
# before measurements_sha256 gets the column, filled in from each run's raw bytes (backfill_fingerprints).
# raw: the submitted bytes, compressed as raw_codec says ("zstd"; NULL: as submitted, in a store from before
# raw_codec), size_bytes long once decompressed (raw_bytes). Compressed, a class's JSON takes a sixth of the space, and
# DuckDB holds a sixth as much in memory while inserting it.
SUBMISSIONS = [("run_id", "VARCHAR PRIMARY KEY"), ("content_sha256", "VARCHAR"), ("bytes_sha256", "VARCHAR"),
               ("size_bytes", "BIGINT"), ("source_path", "VARCHAR"), ("original_schema_version", "BIGINT"),
               ("collected_utc", "VARCHAR"), ("warnings", "VARCHAR"), ("raw", "BLOB"),
               ("measurements_sha256", "VARCHAR"), ("raw_codec", "VARCHAR")]
_BYTES_SHA256 = [name for name, _ in SUBMISSIONS].index("bytes_sha256")
RAW_CODEC = "zstd"
RAW_LEVEL = 1  # zstd's fastest: about 6x smaller for a results.json, at about 0.5 ms per 250 kB here


def pack_raw(data: bytes) -> bytes:
    """A submission's bytes as submissions.raw stores them (RAW_CODEC)."""
    return _codec(RAW_CODEC, RAW_LEVEL).compress(data, asbytes=True)


@functools.cache
def _codec(name: str, level: int | None = None):
    import pyarrow as pa

    return pa.Codec(name, compression_level=level)


def raw_bytes(raw: bytes, codec: str | None, size_bytes: int) -> bytes:
    """The submitted bytes from a submissions row's raw, raw_codec and size_bytes."""
    if codec is None:
        return bytes(raw)
    return _codec(codec).decompress(raw, decompressed_size=size_bytes, asbytes=True)


# Fixed tables beside the model's: every run's measured Lock answers (computed at collect time from its results),
# and the lab records, one per run (the latest submitted; its Locks never change once stored).
EXTRA_TABLES: dict[str, list[tuple[str, str]]] = {
    "measured_answers": [("run_id", "VARCHAR"), ("lock", "VARCHAR"), ("answer", "VARCHAR"), ("reason", "VARCHAR"),
                         ("evidence", "VARCHAR")],
    "lab_records": [("run_id", "VARCHAR PRIMARY KEY"), ("lab_schema_version", "BIGINT"),
                    ("content_sha256", "VARCHAR"), ("source_path", "VARCHAR"), ("collected_utc", "VARCHAR"),
                    ("tiers_examined", "VARCHAR"), ("equilibrium_found", "BIGINT"), ("raw", "BLOB")],
    "lab_locks": [("run_id", "VARCHAR"), ("lock", "VARCHAR"), ("choice", "VARCHAR"), ("confidence", "VARCHAR"),
                  ("committed_utc", "VARCHAR")],
    "lab_reflections": [("run_id", "VARCHAR"), ("row_idx", "BIGINT"), ("part", "BIGINT"), ("prompt", "VARCHAR"),
                        ("answer", "VARCHAR")],
    "lab_iterations": [("run_id", "VARCHAR"), ("row_idx", "BIGINT"), ("part", "BIGINT"), ("at_utc", "VARCHAR"),
                       ("settings", "VARCHAR"), ("outputs", "VARCHAR")],
}
LAB_TABLES = ("lab_records", "lab_locks", "lab_reflections", "lab_iterations")


def answer_rows(run_id: str, answers: dict) -> list[tuple]:
    """measured_answers rows of one run, from feedtax.classroom.locks.measured_answers."""
    return [(run_id, k, a.answer, a.reason, a.evidence) for k, a in answers.items()]


def lab_rows(lab, raw: bytes, content_sha256: str, source: str) -> dict[str, list[tuple]]:
    """Rows per lab table of one lab record (a feedtax.results.lab.LabRecord) and its submitted bytes."""
    from pydantic_core import to_json

    run = lab.run_id
    return {
        "lab_records": [(run, lab.lab_schema_version, content_sha256, source, now_utc(),
                         to_json(lab.tiers_examined).decode(), lab.equilibrium_found, raw)],
        "lab_locks": [(run, k.lock, k.choice, k.confidence, k.committed_utc) for k in lab.locks],
        "lab_reflections": [(run, i, r.part, r.prompt, r.answer) for i, r in enumerate(lab.reflections)],
        "lab_iterations": [(run, i, it.part, it.at_utc, to_json(it.settings).decode(), to_json(it.outputs).decode())
                           for i, it in enumerate(lab.iterations)],
    }


def stored_lab(con, run_id: str) -> tuple[str, str, list[tuple]] | None:
    """(content_sha256, source_path, its Locks as (lock, choice, confidence, committed_utc)) of the run's stored lab
    record, or None."""
    found = con.execute("SELECT content_sha256, source_path FROM lab_records WHERE run_id = ?", [run_id]).fetchone()
    if found is None:
        return None
    locks = con.execute("SELECT lock, choice, confidence, committed_utc FROM lab_locks WHERE run_id = ? ORDER BY 1",
                        [run_id]).fetchall()
    return found[0], found[1], locks


def write_extra(con, rows: dict[str, list[tuple]], *, replace_run: str | None = None) -> None:
    """Insert rows of the fixed tables in one transaction, first deleting replace_run's lab rows (a newer record)."""
    con.execute("BEGIN TRANSACTION")
    try:
        if replace_run is not None:
            for t in LAB_TABLES:
                con.execute(f"DELETE FROM {_q(t)} WHERE run_id = ?", [replace_run])
        for t, r in rows.items():
            _insert(con, t, EXTRA_TABLES[t], r)
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise


def _rollback(con) -> None:
    """Roll back the open transaction, if any: a COMMIT that failed (a full disk) has already ended it, and a second
    error must not hide the first."""
    import duckdb

    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


def describe(exc: BaseException, db_path: Path) -> str:
    """One line for what the database refused: a full disk named as such, with the space left where the database is."""
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if os.strerror(errno.ENOSPC) in msg or getattr(exc, "errno", None) == errno.ENOSPC:
        where = Path(os.path.abspath(db_path)).parent
        try:
            free = f"{shutil.disk_usage(where).free:,} bytes"
        except OSError:
            free = "no space"
        return f"disk full: {free} free on {where} ({msg})"
    return msg


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect(db_path: Path, *, read_only: bool = False):
    """A DuckDB connection, or CollectError naming the file (missing, locked by another collect, not DuckDB)."""
    import duckdb

    try:
        mode = os.stat(db_path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise CollectError(f"{db_path}: cannot open the database: {exc.strerror or exc}") from None
    if mode is None and read_only:
        raise CollectError(f"{db_path}: no such database (run `feedtax collect` first)")
    if mode is not None and not stat.S_ISREG(mode):  # a pipe or device would block or feed the reader forever
        raise CollectError(f"{db_path}: not a regular file (a directory, device or pipe): not a DuckDB database")
    try:
        con = duckdb.connect(str(db_path), read_only=read_only)
    except duckdb.Error as exc:
        raise CollectError(f"{db_path}: cannot open the database: {describe(exc, db_path)}") from None
    con.execute("SET enable_progress_bar = false")  # DuckDB draws one on stdout for a statement over 2 s
    return con


def ensure_tables(con, plan: Plan) -> None:
    """Create each table of the plan, and add columns a newer model has that an older database lacks."""
    have: dict[str, set[str]] = {}
    columns = con.execute("SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'main'")
    for t, c in columns.fetchall():
        have.setdefault(t, set()).add(c)
    specs = [("submissions", SUBMISSIONS), *EXTRA_TABLES.items()] + [
        (p.table, _meta(p) + [(col, typ) for _, col, typ, _ in p.columns]) for p in all_plans(plan)]
    for table, cols in specs:
        if table not in have:
            con.execute(f"CREATE TABLE {_q(table)} ({', '.join(f'{_q(c)} {t}' for c, t in cols)})")
        else:
            for c, t in cols:
                if c not in have[table]:
                    con.execute(f"ALTER TABLE {_q(table)} ADD COLUMN {_q(c)} {t.replace(' PRIMARY KEY', '')}")


_ARROW = {"VARCHAR": "string", "DOUBLE": "float64", "BIGINT": "int64", "BOOLEAN": "bool_", "BLOB": "binary"}


def _arrow(cols: list[tuple[str, str]], rows: list[tuple]):
    """Rows as an Arrow table of the columns' types, or None when there are none."""
    import pyarrow as pa

    if not rows:
        return None
    columns = list(zip(*rows, strict=True))
    arrays = [pa.array(list(v), type=getattr(pa, _ARROW[t.split()[0]])())
              for v, (_, t) in zip(columns, cols, strict=True)]
    return pa.Table.from_arrays(arrays, names=[c for c, _ in cols])


def _insert_table(con, table: str, batch) -> None:
    con.register("_feedtax_batch", batch)
    try:
        con.execute(f"INSERT INTO {_q(table)} BY NAME SELECT * FROM _feedtax_batch")
    finally:
        con.unregister("_feedtax_batch")


def _insert(con, table: str, cols: list[tuple[str, str]], rows: list[tuple]) -> None:
    batch = _arrow(cols, rows)
    if batch is not None:
        _insert_table(con, table, batch)


@dataclass
class Prepared:
    """A validated submission reduced to what is inserted: its rows per table and the submissions row."""

    path: Path
    run_id: str
    rows: dict[str, list[tuple]]
    submission: tuple
    content_sha256: str
    warnings: list[str]
    measurements_sha256: str = ""

    @property
    def bytes_sha256(self) -> str:
        """The submitted file's sha256 (its submissions row's bytes_sha256)."""
        return self.submission[_BYTES_SHA256]


@dataclass
class Batch:
    """Submissions ready to insert: each one's Prepared, and per database table one Arrow table of all their rows in
    their order (empty tables left out), with how many rows each submission has in every table. Built apart from the
    insert, so Python's work and DuckDB's run in different threads or processes."""

    items: list[Prepared]
    tables: list[tuple[str, object]]
    counts: dict[str, list[int]]  # table -> each item's row count, in items' order (every table of the plan)

    def select(self, keep: list[bool]) -> Batch:
        """The batch of the items kept, with their rows only."""
        import numpy as np

        if all(keep):
            return self
        flags = np.asarray(keep, dtype=bool)
        tables = [(t, table.filter(np.repeat(flags, self.counts[t]))) for t, table in self.tables]
        return Batch([p for p, k in zip(self.items, keep, strict=True) if k],
                     [(t, table) for t, table in tables if table.num_rows],
                     {t: [n for n, k in zip(c, keep, strict=True) if k] for t, c in self.counts.items()})

    def one(self, i: int) -> Batch:
        """The batch of item i alone."""
        return self.select([j == i for j in range(len(self.items))])

    def split(self, n: int) -> tuple[Batch, Batch]:
        """The batch of the first n items, and that of the rest."""
        parts: tuple[list, list] = ([], [])
        for t, table in self.tables:
            k = sum(self.counts[t][:n])
            for part, piece in zip(parts, (table.slice(0, k), table.slice(k)), strict=True):
                if piece.num_rows:
                    part.append((t, piece))
        return (Batch(self.items[:n], parts[0], {t: c[:n] for t, c in self.counts.items()}),
                Batch(self.items[n:], parts[1], {t: c[n:] for t, c in self.counts.items()}))


def join(batches: list[Batch]) -> Batch:
    """Batches as one, in order."""
    import pyarrow as pa

    if len(batches) == 1:
        return batches[0]
    by_table: dict[str, list] = {}
    for b in batches:
        for t, table in b.tables:
            by_table.setdefault(t, []).append(table)
    counts = {t: [n for b in batches for n in b.counts[t]] for t in batches[0].counts} if batches else {}
    return Batch([p for b in batches for p in b.items],
                 [(t, tables[0] if len(tables) == 1 else pa.concat_tables(tables)) for t, tables in by_table.items()],
                 counts)


def batch_tables(plan: Plan, items: list[Prepared]) -> Batch:
    """Submissions as a Batch: one Arrow table per database table (submissions first), stamped collected now."""
    plans = {p.table: p for p in all_plans(plan)}
    tables: dict[str, list[tuple]] = {t: [] for t in [*plans, *EXTRA_TABLES]}
    counts: dict[str, list[int]] = {"submissions": [1] * len(items)} | {t: [] for t in tables}
    stamp = now_utc()
    for item in items:
        for t in tables:
            rows = item.rows.get(t, ())
            tables[t] += rows
            counts[t].append(len(rows))
    out = [("submissions", _arrow(SUBMISSIONS, [item.submission[:6] + (stamp,) + item.submission[7:]
                                                for item in items]))]
    for t, rows in tables.items():
        p = plans.get(t)
        out.append((t, _arrow(EXTRA_TABLES[t] if p is None else _meta(p) + [(col, typ) for _, col, typ, _ in p.columns],
                              rows)))
    return Batch(list(items), [(t, b) for t, b in out if b is not None], counts)


def insert_tables(con, batch: Batch) -> None:
    """Insert a Batch's tables in one transaction: all of them or none."""
    con.execute("BEGIN TRANSACTION")
    try:
        for t, table in batch.tables:
            _insert_table(con, t, table)
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise


def backfill_fingerprints(con) -> int:
    """Fill in measurements_sha256 of runs collected before it existed, from their stored bytes; how many were. A run
    this feedtax no longer accepts keeps none (it cannot be matched as a duplicate)."""
    from feedtax.results.validate import Invalid, from_bytes

    missing = con.execute("SELECT run_id, raw, raw_codec, size_bytes FROM submissions "
                          "WHERE measurements_sha256 IS NULL").fetchall()
    filled = []
    for run_id, raw, codec, size in missing:
        try:
            filled.append((from_bytes(raw_bytes(raw, codec, size)).results.measurements_sha256(), run_id))
        except Invalid:
            continue
    if filled:
        con.executemany("UPDATE submissions SET measurements_sha256 = ? WHERE run_id = ?", filled)
    return len(filled)


def table_rows(con) -> dict[str, int]:
    """Row count of every table in the database."""
    tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY 1")
    names = [r[0] for r in tables.fetchall()]
    return {n: con.execute(f"SELECT count(*) FROM {_q(n)}").fetchone()[0] for n in names}
