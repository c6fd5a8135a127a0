"""`feedtax collect --export parquet DIR`: every table of the class database as Parquet that pyarrow and DuckDB read
back row for row, schema.sql and load.sql that IMPORT DATABASE rebuilds the database from; the folder whole or
absent (a full disk, a folder not empty, a missing database, an unknown format: one line, nothing left behind).

The class is collected from generated submissions (test_collect's), with lab records, so the BLOB and JSON-text
columns travel too; the instructors' guide's SQL and Python for the export run here against a real export.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import small_tmpfs
from test_collect import snapshot, write_good

from feedtax.classroom import collect as c
from feedtax.classroom import export as x
from feedtax.classroom.store import CollectError

N_RUNS = 4
DOCS = Path(__file__).resolve().parents[1] / "docs" / "instructors.md"


@pytest.fixture(scope="module")
def inbox(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """N_RUNS good submissions, two of them with a lab record."""
    from test_lab_record import record

    from feedtax.results.lab import save_lab

    folder = tmp_path_factory.mktemp("inbox")
    good = write_good(folder, N_RUNS)
    for rid in sorted(good)[:2]:
        save_lab(record(run_id=rid), folder / f"{rid}.lab.json")
    return folder, good


@pytest.fixture(scope="module")
def class_db(inbox, tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("db") / "class.duckdb"
    report = c.collect([inbox[0]], db)
    assert report.ok and len(report.accepted) == N_RUNS and len(report.labs) == 2
    return db


def tables_of(db: Path) -> dict[str, list[str]]:
    """Every table of the database and its columns, in order."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT table_name, column_name FROM duckdb_columns() JOIN duckdb_tables() "
                           "USING (database_name, schema_name, table_name) WHERE database_name = current_database() "
                           "ORDER BY table_name, column_index").fetchall()
    finally:
        con.close()
    out: dict[str, list[str]] = {}
    for t, col in rows:
        out.setdefault(t, []).append(col)
    return out


def submitted(row: dict) -> bytes:
    """A submissions row's submitted bytes, read from Parquet: `raw`, decompressed where the store compresses it (as
    its raw_codec column says)."""
    codec = row.get("raw_codec")
    if codec is None:
        return row["raw"]
    return pa.Codec(codec).decompress(row["raw"], decompressed_size=row["size_bytes"], asbytes=True)


def leftovers(parent: Path) -> list[str]:
    """Temporary export folders left beside an export."""
    return [p.name for p in parent.iterdir() if p.name.endswith(".export")]


# --- the round trip --------------------------------------------------------------------------------------------------

def test_every_table_is_a_parquet_file_that_reads_back_row_for_row(class_db, inbox, tmp_path):
    out = tmp_path / "class-parquet"
    report = x.export_parquet(class_db, out)
    tables = tables_of(class_db)
    assert sorted(t.table for t in report.tables) == sorted(tables)
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{t}.parquet" for t in tables] + ["load.sql",
                                                                                                 "schema.sql"])
    assert leftovers(tmp_path) == []
    con = duckdb.connect(str(class_db), read_only=True)
    try:
        for t in report.tables:
            path = Path(t.file)
            assert path == out / f"{t.table}.parquet" and t.bytes == path.stat().st_size
            stored = con.execute(f'SELECT * FROM "{t.table}" ORDER BY ALL').fetchall()
            assert t.rows == len(stored)
            table = pq.read_table(path)  # pyarrow: the same columns in the same order, the same row count
            assert table.column_names == tables[t.table] and table.num_rows == len(stored), t.table
            assert con.execute(f"SELECT * FROM read_parquet('{path}') ORDER BY ALL").fetchall() == stored, t.table
    finally:
        con.close()
    assert report.rows == sum(t.rows for t in report.tables) and report.rows > 0

    _, good = inbox
    subs = pq.read_table(out / "submissions.parquet").to_pylist()
    assert {s["run_id"]: submitted(s) for s in subs} == {rid: p.read_bytes() for rid, p in good.items()}
    formats = pq.read_table(out / "formats.parquet").to_pylist()
    for rid, path in good.items():  # a few values against the submitted files themselves
        listed = json.loads(path.read_text())["formats"]
        mine = sorted((f["row_idx"], f["track"], f["format"], f["decode_samples_per_s_cold_median"])
                      for f in formats if f["run_id"] == rid)
        assert mine == [(i, f["track"], f["format"], f["decode_samples_per_s_cold"]["median"])
                        for i, f in enumerate(listed)]
    empty = [t for t in report.tables if t.rows == 0]
    for t in empty:  # a table no run filled still has its columns
        assert pq.read_schema(t.file).names == tables[t.table]


def test_import_database_rebuilds_the_same_tables_from_a_moved_export(class_db, tmp_path):
    x.export_parquet(class_db, tmp_path / "first")
    moved = tmp_path / "elsewhere" / "class parquet's copy"  # load.sql names its files relative to the folder
    moved.parent.mkdir()
    (tmp_path / "first").rename(moved)
    rebuilt = tmp_path / "rebuilt.duckdb"
    con = duckdb.connect(str(rebuilt))
    try:
        con.execute("IMPORT DATABASE '" + str(moved).replace("'", "''") + "'")
        declared = con.execute("SELECT sql FROM duckdb_tables() ORDER BY ALL").fetchall()
    finally:
        con.close()
    assert snapshot(rebuilt) == snapshot(class_db)
    original = duckdb.connect(str(class_db), read_only=True)
    try:  # the same declarations: types and the submissions' primary key
        assert declared == original.execute("SELECT sql FROM duckdb_tables() ORDER BY ALL").fetchall()
    finally:
        original.close()


def test_odd_table_names_get_safe_file_names_and_still_round_trip(tmp_path):
    db = tmp_path / "odd.duckdb"
    names = ("a b", "a_b", "../up", "Ünï")
    con = duckdb.connect(str(db))
    for i, name in enumerate(names):
        con.execute(f'CREATE TABLE "{name}" (v BIGINT, "it\'s" VARCHAR)')
        con.execute(f'INSERT INTO "{name}" VALUES (?, ?)', [i, name])
    con.close()
    report = x.export_parquet(db, tmp_path / "out")
    files = [Path(t.file) for t in report.tables]
    assert len(set(files)) == len(names) and all(f.parent == tmp_path / "out" and f.exists() for f in files)
    assert all(re.fullmatch(r"[A-Za-z0-9_]+\.parquet", f.name) for f in files)
    con = duckdb.connect()
    con.execute(f"IMPORT DATABASE '{tmp_path / 'out'}'")
    assert [con.execute(f'SELECT v, "it\'s" FROM "{n}"').fetchall() for n in names] == [
        [(i, n)] for i, n in enumerate(names)]


# --- the command line ------------------------------------------------------------------------------------------------

def test_cli_exports_alone_or_after_collecting(class_db, inbox, tmp_path, feedtax_cli):
    before = class_db.stat().st_mtime_ns
    alone = feedtax_cli("collect", "--db", class_db, "--export", "parquet", tmp_path / "alone")
    assert alone.exit_code == 0, alone.output
    n = len(tables_of(class_db))
    assert f"{n} tables of {class_db} as Parquet" in alone.stdout and str(tmp_path / "alone") in alone.stdout
    assert len(alone.stdout.splitlines()) == 1 and alone.stderr == ""
    assert class_db.stat().st_mtime_ns == before  # read, never written

    (tmp_path / "empty").mkdir()  # an empty folder takes the export
    db = tmp_path / "new.duckdb"
    both = feedtax_cli("collect", inbox[0], "--db", db, "--export", "PARQUET", tmp_path / "empty", "--json")
    assert both.exit_code == 0, both.output
    doc = json.loads(both.stdout)
    assert len(doc["accepted"]) == N_RUNS  # the collect report, as without --export ...
    assert {t["table"]: t["rows"] for t in doc["export"]["tables"]} == doc["table_rows"]  # ... and the export
    for t in doc["export"]["tables"]:
        assert pq.read_metadata(t["file"]).num_rows == t["rows"]
    only = json.loads(feedtax_cli("collect", "--db", db, "--export", "parquet", tmp_path / "j", "--json").stdout)
    assert list(only) == ["export"] and only["export"]["rows"] == sum(doc["table_rows"].values())


def test_cli_collects_then_exports_even_when_files_are_rejected(inbox, tmp_path, feedtax_cli):
    folder = tmp_path / "inbox"
    shutil.copytree(inbox[0], folder)
    (folder / "broken.json").write_text("{")
    db = tmp_path / "c.duckdb"
    ran = feedtax_cli("collect", folder, "--db", db, "--export", "parquet", tmp_path / "out")
    assert ran.exit_code == 1 and "broken.json: truncated" in ran.stderr
    assert f"{N_RUNS} collected" in ran.stdout and "tables of" in ran.stdout
    assert pq.read_metadata(tmp_path / "out" / "runs.parquet").num_rows == N_RUNS


def one_line_error(ran, *names: object) -> str:
    """The command failed with exit 2, one line on stderr naming each of names, no traceback; that line."""
    assert ran.exit_code == 2, ran.output
    lines = ran.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("feedtax: ") and "Traceback" not in ran.output, ran.stderr
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    return lines[0]


def test_cli_refuses_in_one_line_and_leaves_everything_as_it_was(class_db, inbox, tmp_path, feedtax_cli):
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    fresh = tmp_path / "fresh.duckdb"
    cases = {
        "not empty": (["--db", class_db, "--export", "parquet", full], [full, "not empty"]),
        "not empty, checked before collecting": ([inbox[0], "--db", fresh, "--export", "parquet", full],
                                                 [full, "not empty"]),
        "a file": (["--db", class_db, "--export", "parquet", a_file], [a_file, "not a folder"]),
        "unknown format": (["--db", class_db, "--export", "csv", tmp_path / "out"], ["'csv'", "parquet"]),
        "no database": (["--db", tmp_path / "nope.duckdb", "--export", "parquet", tmp_path / "out"],
                        [tmp_path / "nope.duckdb", "no such database"]),
        "not a database": (["--db", a_file, "--export", "parquet", tmp_path / "out"], [a_file]),
        "nothing to do": (["--db", class_db], ["submissions", "--export"]),
        "one value": (["--db", class_db, "--export", "parquet"], ["--export", "2 arguments"]),
    }
    before = sorted(p.name for p in tmp_path.iterdir())
    for case, (args, names) in cases.items():
        one_line_error(feedtax_cli("collect", *args), *names)
        assert sorted(p.name for p in tmp_path.iterdir()) == before, case  # no DIR, no temp folder, no database
    assert [p.name for p in full.iterdir()] == ["notes.txt"] and a_file.read_text() == "mine"


# --- whole or absent -------------------------------------------------------------------------------------------------

def test_a_full_disk_is_named_and_nothing_is_left(class_db, tmp_path, feedtax_cli):
    size = x.export_parquet(class_db, tmp_path / "measure").bytes
    with small_tmpfs(tmp_path / "small", f"size={max(size // 2, 64 << 10) // 4096 * 4096}") as small:
        out = small / "class-parquet"
        ran = feedtax_cli("collect", "--db", class_db, "--export", "parquet", out)
        line = one_line_error(ran, out, "disk full: ", f"bytes free on {small}")
        assert ".export" not in line  # the temporary folder is not what the user named
        assert list(small.iterdir()) == []
        subprocess.run(["mount", "-o", f"remount,size={4 * size}", str(small)], check=True, timeout=30)
        again = feedtax_cli("collect", "--db", class_db, "--export", "parquet", out)  # room now: it goes in whole
        assert again.exit_code == 0 and sorted(p.name for p in out.iterdir()) == sorted(
            p.name for p in (tmp_path / "measure").iterdir())


def test_a_read_only_filesystem_is_one_line(class_db, tmp_path, feedtax_cli):
    with small_tmpfs(tmp_path / "ro", "ro,size=1M") as ro:
        line = one_line_error(feedtax_cli("collect", "--db", class_db, "--export", "parquet", ro / "out"),
                              ro / "out", "Read-only file system")
        assert ".export" not in line
        assert list(ro.iterdir()) == []


def test_a_full_disk_while_writing_load_sql_leaves_nothing(class_db, tmp_path, monkeypatch):
    real = Path.write_text

    def full(self, data, *a, **kw):
        if self.name == x.LOAD_SQL:
            real(self, data[: len(data) // 2], *a, **kw)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, data, *a, **kw)

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(x.ExportError) as err:
        x.export_parquet(class_db, tmp_path / "out")
    said = str(err.value)
    assert said.startswith(f"{tmp_path / 'out'}: cannot write the export: disk full: ") and "\n" not in said
    assert f"bytes free on {tmp_path}" in said and ".export" not in said
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("what", ["rows", "interrupt"])
def test_a_file_that_does_not_read_back_or_an_interrupt_leaves_nothing(class_db, tmp_path, monkeypatch, what):
    real = pq.read_metadata
    seen = []

    class Short:
        def __init__(self, meta):
            self.num_rows = meta.num_rows - 1

    def check(path, *a, **kw):
        seen.append(Path(path).name)
        meta = real(path, *a, **kw)
        if len(seen) < 3 or meta.num_rows == 0:
            return meta
        if what == "interrupt":
            raise KeyboardInterrupt
        return Short(meta)

    monkeypatch.setattr(pq, "read_metadata", check)
    with pytest.raises(KeyboardInterrupt if what == "interrupt" else x.ExportError) as err:
        x.export_parquet(class_db, tmp_path / "out")
    if what == "rows":
        assert str(err.value).startswith(f"{tmp_path / 'out'}: {seen[-1]} holds ")
    assert list(tmp_path.iterdir()) == []


def test_a_database_another_collect_holds_is_refused(class_db, tmp_path):
    db = shutil.copy(class_db, tmp_path / "held.duckdb")
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('open', flush=True); time.sleep(60)", str(db)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(CollectError, match="cannot open the database"):
            x.export_parquet(db, tmp_path / "out")
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


# --- the instructors' guide ------------------------------------------------------------------------------------------

def _guide_blocks(lang: str) -> list[str]:
    text = DOCS.read_text()
    section = text[text.index("## Exporting the class to Parquet"):]
    section = section[: section.index("\n## ", 1)]
    return re.findall(rf"```{lang}\n(.*?)```", section, flags=re.S)


def test_the_guides_sql_runs_on_a_real_export(class_db, tmp_path, monkeypatch):
    x.export_parquet(class_db, tmp_path / "class-parquet")
    monkeypatch.chdir(tmp_path)
    blocks = _guide_blocks("sql")
    assert len(blocks) >= 3
    for block in blocks:
        con = duckdb.connect()
        for statement in (s for s in block.split(";") if s.strip()):
            result = con.execute(statement)
        assert result.fetchall(), block  # each block's last query finds rows
        con.close()


def test_the_guides_python_runs_on_a_real_export(class_db, tmp_path):
    pytest.importorskip("pandas")
    x.export_parquet(class_db, tmp_path / "class-parquet")
    (script,) = _guide_blocks("python")
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "decode_samples_per_s_cold_median" in out.stdout
