"""The store: every section of a run stored, raw bytes kept; an older store migrated; a full disk named and a failed
commit never hidden; a pipe or device refused as a database."""

from __future__ import annotations

import json
import os

import duckdb
import pytest
from test_collect import make_corpus

from feedtax.classroom import collect as c
from feedtax.classroom import prepare as prep
from feedtax.classroom import store
from feedtax.results.schema import Results


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def test_raw_bytes_of_every_accepted_run_are_stored(corpus, tmp_path):
    _, good, _ = corpus
    db = tmp_path / "c.duckdb"
    c.collect(list(good.values())[:3], db)
    con = duckdb.connect(str(db), read_only=True)
    stored = {r[0]: r[1:] for r in con.execute("SELECT run_id, raw, raw_codec, size_bytes FROM submissions").fetchall()}
    con.close()
    assert len(stored) == 3
    for rid, (raw, codec, size) in stored.items():
        assert codec == "zstd" and len(raw) < size  # kept compressed
        assert store.raw_bytes(raw, codec, size) == good[rid].read_bytes()


def test_every_section_of_a_real_run_is_stored(corpus, tmp_path):
    _, good, _ = corpus
    report = c.collect([next(iter(good.values()))], tmp_path / "c.duckdb")
    rows = report.table_rows
    for section in ("formats", "loader", "transforms", "model_validation", "projections", "projections_checks",
                    "feeding", "gravity_tiers", "selection_rows", "disk_distributions", "hosts", "config", "stages"):
        assert rows.get(section, 0) >= 1, section


# --- the fixed tables: measured Lock answers and lab records ------------------------------------------------

def test_fixed_tables_are_added_to_an_older_database_and_hold_a_lab_record(tmp_path):
    from test_lab_record import record

    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    con.execute("CREATE TABLE submissions (run_id VARCHAR PRIMARY KEY)")  # a database from before the lab
    store.ensure_tables(con, store.table_plans())
    have = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert set(store.EXTRA_TABLES) <= have

    lab = record(run_id="r1")
    store.write_extra(con, store.lab_rows(lab, b"{}", "sha", "inbox/r1.lab.json"))
    assert store.stored_lab(con, "r1") == ("sha", "inbox/r1.lab.json", sorted(
        (k.lock, k.choice, k.confidence, k.committed_utc) for k in lab.locks))
    settings = con.execute("SELECT settings FROM lab_iterations WHERE row_idx = 0").fetchone()[0]
    assert json.loads(settings) == lab.iterations[0].settings
    smaller = record(run_id="r1", reflections=[], iterations=[])
    store.write_extra(con, store.lab_rows(smaller, b"{}", "sha2", "x"), replace_run="r1")  # a newer record
    counts = {t: con.execute(f"SELECT count(*) FROM {t} WHERE run_id = 'r1'").fetchone()[0] for t in store.LAB_TABLES}
    assert counts == {"lab_records": 1, "lab_locks": 3, "lab_reflections": 0, "lab_iterations": 0}
    assert store.stored_lab(con, "nobody") is None
    con.close()


# --- an older store, a full disk, a database that is not a file ------------------------------------------------------

def test_an_older_store_gains_the_measurements_fingerprint_and_copies_of_its_runs_are_named(corpus, tmp_path):
    _, good, _ = corpus
    (rid, path), (other_rid, _) = list(good.items())[:2]
    db = tmp_path / "old.duckdb"
    c.collect(list(good.values())[:2], db)
    con = duckdb.connect(str(db))
    con.execute("ALTER TABLE submissions DROP COLUMN measurements_sha256")  # as a store from before it,
    for r in (rid, other_rid):  # and from before its raw bytes were compressed
        con.execute("UPDATE submissions SET raw = ? WHERE run_id = ?", [good[r].read_bytes(), r])
    con.execute("ALTER TABLE submissions DROP COLUMN raw_codec")
    con.close()
    copy = tmp_path / "copy.json"
    copy.write_text(json.dumps({**json.loads(path.read_text()), "run_id": "someone-else"}))
    report = c.collect([copy], db)
    assert [(r.kind, r.run_id) for r in report.rejected] == [("duplicate", "someone-else")] and rid in \
        report.rejected[0].reason
    con = duckdb.connect(str(db), read_only=True)
    filled = dict(con.execute("SELECT run_id, measurements_sha256 FROM submissions").fetchall())
    plain = con.execute("SELECT count(*) FROM submissions WHERE raw_codec IS NULL").fetchone()[0]
    con.close()
    assert plain == 2  # the older runs' raw bytes stay as they were, read as they are
    assert filled == {r: Results.model_validate_json(good[r].read_bytes()).measurements_sha256()
                      for r in (rid, other_rid)}


def test_the_measurements_fingerprint_ignores_the_run_id_formatting_and_what_is_modelled(corpus):
    _, good, _ = corpus
    run = Results.model_validate_json(next(iter(good.values())).read_bytes())
    renamed = run.model_copy(update={"run_id": "other", "created_utc": "2030-01-01T00:00:00+00:00",
                                     "projections": {}, "gravity": None, "stages": []})
    reread = Results.model_validate_json(json.dumps(json.loads(run.model_dump_json()), indent=3, sort_keys=True))
    assert run.measurements_sha256() == renamed.measurements_sha256() == reread.measurements_sha256()
    faster = run.model_copy(deep=True)
    faster.formats[0].encode_samples_per_s.median *= 1.000001
    assert faster.measurements_sha256() != run.measurements_sha256()


class _FullDiskAtCommit:
    """A DuckDB connection whose COMMIT fails as on a full disk: DuckDB has then ended the transaction itself, so a
    ROLLBACK after it fails too ("no transaction is active")."""

    def __init__(self, con):
        self.con = con

    def execute(self, sql, *args):
        if sql == "COMMIT":
            self.con.execute("ROLLBACK")
            raise duckdb.TransactionException('Failed to commit: Could not write file "x.wal": No space left on device')
        return self.con.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.con, name)


def test_a_failed_commit_is_reported_as_itself_and_a_full_disk_by_name(corpus, tmp_path):
    _, good, _ = corpus
    db = tmp_path / "c.duckdb"
    plan = store.table_plans()
    con = duckdb.connect(str(db))
    store.ensure_tables(con, plan)
    item = prep.prepare(next(iter(good.values())), plan)
    with pytest.raises(duckdb.TransactionException, match="No space left") as err:
        store.insert_tables(_FullDiskAtCommit(con), store.batch_tables(plan, [item]))
    said = store.describe(err.value, db)
    assert said.startswith("disk full: ") and f"bytes free on {tmp_path}" in said
    assert store.describe(duckdb.ConstraintException("Duplicate key"), db) == "Duplicate key"
    assert con.execute("SELECT count(*) FROM submissions").fetchone() == (0,)  # nothing half-stored
    con.close()


def test_the_store_draws_no_progress_bar_into_a_commands_output(tmp_path):
    """DuckDB draws a progress bar on stdout for a statement over 2 s: into `feedtax collect --json`'s JSON."""
    con = store.connect(tmp_path / "c.duckdb")
    assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone() == (False,)
    con.close()
    con = store.connect(tmp_path / "c.duckdb", read_only=True)
    assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone() == (False,)
    con.close()


def test_a_pipe_or_a_device_is_refused_as_a_database_unopened(tmp_path):
    fifo, zero = tmp_path / "fifo.duckdb", tmp_path / "zero.duckdb"
    os.mkfifo(fifo)
    zero.symlink_to("/dev/zero")
    for path in (fifo, zero, tmp_path):
        for read_only in (False, True):
            with pytest.raises(store.CollectError, match="not a regular file"):
                store.connect(path, read_only=read_only)
    with pytest.raises(store.CollectError, match="no such database"):
        store.connect(tmp_path / "none.duckdb", read_only=True)
    assert not (tmp_path / "none.duckdb").exists()
