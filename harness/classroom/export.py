"""Exporting the class database as Parquet, for readers other than feedtax (pandas, pyarrow, Spark, DuckDB elsewhere).

One Parquet file per table (`<table>.parquet`, written by DuckDB's own `COPY ... (FORMAT PARQUET)`), plus
`schema.sql` and `load.sql` as DuckDB's `EXPORT DATABASE` writes them, so `IMPORT DATABASE 'DIR'` rebuilds the
database. The folder appears whole or not at all: everything is written into a temporary sibling folder, each file's
row count read back from its Parquet metadata and checked against its table, and only then renamed into place.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import time
from pathlib import Path

from pydantic import BaseModel, computed_field

from feedtax.atomic import fsync_path
from feedtax.classroom.store import CollectError, _q, _rollback, connect, describe

FORMATS = ("parquet",)
SCHEMA_SQL, LOAD_SQL = "schema.sql", "load.sql"
_SAFE_NAME = re.compile(r"[A-Za-z0-9_]+")


class ExportError(CollectError):
    """The export cannot be written (the folder is not empty, a full disk, a file that does not read back): one line
    naming the folder and why. Nothing of the export is left behind."""


class ExportedTable(BaseModel):
    """One table written: its name, rows, and its Parquet file (a path within the export folder) and size."""

    table: str
    rows: int
    file: str
    bytes: int


class ExportReport(BaseModel):
    """What one export wrote: the database it read, the folder it wrote, and every table."""

    db_path: str
    out_dir: str
    format: str = "parquet"
    tables: list[ExportedTable] = []
    elapsed_s: float = 0.0

    @computed_field
    @property
    def rows(self) -> int:
        """Rows in all tables."""
        return sum(t.rows for t in self.tables)

    @computed_field
    @property
    def bytes(self) -> int:
        """Bytes of all Parquet files."""
        return sum(t.bytes for t in self.tables)


def check_target(out_dir: Path) -> None:
    """ExportError unless out_dir is missing or an empty folder (an export never mixes with other files)."""
    out_dir = Path(out_dir)
    try:
        if not out_dir.is_dir():
            if out_dir.exists() or out_dir.is_symlink():
                raise ExportError(f"{out_dir}: exists and is not a folder: export into a new or empty folder")
            return
        if any(out_dir.iterdir()):
            raise ExportError(f"{out_dir}: the folder is not empty: export into a new or empty folder")
    except OSError as exc:
        raise ExportError(f"{out_dir}: cannot use the folder: {exc.strerror or exc}") from None


def export_parquet(db_path: Path, out_dir: Path) -> ExportReport:
    """Write every table of the class database at db_path as out_dir/<table>.parquet, with schema.sql and load.sql
    (`IMPORT DATABASE 'out_dir'` rebuilds the database), and return what was written.

    The database is opened read-only (CollectError when it is missing, locked by a collect, or not DuckDB). out_dir
    must be missing or empty (ExportError). The files go into a temporary folder beside out_dir, are read back (each
    Parquet file must hold its table's row count) and synced, and the folder is renamed into place; on any failure,
    a full disk included (named as such, with the space left), it is removed and out_dir is as it was.
    """
    t0 = time.perf_counter()
    db_path, out_dir = Path(db_path), Path(out_dir)
    check_target(out_dir)
    con = connect(db_path, read_only=True)
    try:
        target = Path(os.path.abspath(out_dir))
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.export")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()  # the umask's permissions, as out_dir made by mkdir would have
        except OSError as exc:
            raise ExportError(f"{out_dir}: cannot write the export: {_said(exc, out_dir, tmp)}") from None
        try:
            tables = _write(con, tmp, out_dir)
            _sync(tmp)
            check_target(out_dir)  # something may have appeared there meanwhile: never mixed with it
            os.replace(tmp, target)  # a missing or empty folder is replaced whole
            fsync_path(target.parent)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, OSError):
                raise ExportError(f"{out_dir}: cannot write the export: {_said(exc, out_dir, tmp)}") from None
            raise
    finally:
        con.close()
    return ExportReport(db_path=str(db_path), out_dir=str(out_dir), tables=tables,
                        elapsed_s=time.perf_counter() - t0)


def _write(con, tmp: Path, out_dir: Path) -> list[ExportedTable]:
    """Every table of the database's main schema into tmp, in one read transaction (one consistent state of the
    database), each file checked against its table's row count; then schema.sql and load.sql."""
    import duckdb
    import pyarrow.parquet as pq

    con.execute("BEGIN TRANSACTION")
    try:
        found = con.execute("SELECT table_name, sql FROM duckdb_tables() WHERE database_name = current_database() "
                            "AND schema_name = 'main' AND NOT temporary ORDER BY table_name").fetchall()
        files = _file_names([t for t, _ in found])
        tables = []
        for table, _ in found:
            path = tmp / files[table]
            try:
                rows = con.execute(f"SELECT count(*) FROM {_q(table)}").fetchone()[0]
                con.execute(f"COPY {_q(table)} TO {_literal(path)} (FORMAT PARQUET)")
            except duckdb.Error as exc:
                said = describe(exc, out_dir).replace(str(tmp), str(out_dir))
                raise ExportError(f"{out_dir}: cannot export table {table}: {said}") from None
            try:
                written = pq.read_metadata(path).num_rows
            except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
                raise ExportError(f"{out_dir}: {files[table]} does not read back as Parquet: {exc}") from None
            if written != rows:
                raise ExportError(f"{out_dir}: {files[table]} holds {written} rows, table {table} {rows}: "
                                  "nothing was exported")
            tables.append(ExportedTable(table=table, rows=rows, file=str(out_dir / files[table]),
                                        bytes=path.stat().st_size))
    finally:
        _rollback(con)  # a read: nothing to commit, and a failed statement has ended the transaction anyway
    (tmp / SCHEMA_SQL).write_text("".join(f"{sql.rstrip().rstrip(';')};\n" for _, sql in found))
    (tmp / LOAD_SQL).write_text("".join(f"COPY {_q(t)} FROM {_literal(Path(files[t]))} (FORMAT 'parquet');\n"
                                        for t, _ in found))
    return tables


def _file_names(tables: list[str]) -> dict[str, str]:
    """Each table's file: <table>.parquet; a name that is not letters, digits and underscores has those replaced (and
    a number added where two would meet), so a file name never leaves the folder or clashes."""
    names: dict[str, str] = {}
    taken = {t.lower() for t in tables if _SAFE_NAME.fullmatch(t)}
    for t in tables:
        if _SAFE_NAME.fullmatch(t):
            names[t] = f"{t}.parquet"
            continue
        base = re.sub(r"[^A-Za-z0-9_]", "_", t) or "table"
        name, i = base, 1
        while name.lower() in taken:
            name, i = f"{base}_{i}", i + 1
        taken.add(name.lower())
        names[t] = f"{name}.parquet"
    return names


def _literal(path: Path) -> str:
    """A path as a SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def _said(exc: OSError, out_dir: Path, tmp: Path) -> str:
    """An OSError in one line: a full disk as `describe` names it (the space left where out_dir is written); the
    temporary folder named as out_dir, the folder the user named."""
    if exc.errno == errno.ENOSPC:
        said = describe(exc, out_dir)
    else:
        said = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    return said.replace(str(tmp), str(out_dir))


def _sync(folder: Path) -> None:
    """Every file in folder, and the folder, on disk: the renamed export survives a crash whole."""
    for entry in folder.iterdir():
        fsync_path(entry)
    fsync_path(folder)
