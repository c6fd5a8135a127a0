"""Class collection: good submissions ingested once, every bad one named with its reason, nothing lost.

The corpus is generated: one real (small) run measured on this machine, then varied copies of it
(other run_ids, hosts and speeds), plus hostile and broken files of every kind collect refuses.
test_intake, test_store, test_submit, test_class_report and the collect benchmark build theirs here.
"""

from __future__ import annotations

import functools
import json
import pickle
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import orjson
import psutil
import pytest
import typer
from conftest import small_tmpfs
from typer.testing import CliRunner

from feedtax.bench.profiles import Profile, SweepPlan, get
from feedtax.classroom import collect as c
from feedtax.classroom import intake, store
from feedtax.classroom import prepare as prep
from feedtax.cli.classroom import collect_cmd

N_GOOD = 20
_DIST_STATS = ("median", "iqr", "q1", "q3", "mean", "stdev", "min", "max")


TEST_PROFILE = Profile(
    name="ci", description="tests: every stage, tiny sizes", samples_per_track=24, samples_per_shard=12,
    sizes=get("ci").sizes, warmups=1, repeats=3, min_time_s=0.0, format_budget_s=1.0, disk_probe_bytes=4 << 20,
    disk_probe_budget_s=0.5, memory_probe_bytes=4 << 20,
    sweep=SweepPlan(tracks=("tiny",), formats=("json", "raw"), batch_size=8, steps=4, step_s=0.001, max_workers=1,
                    worker_counts=(0, 1)))


@functools.cache
def base_run(tracks: tuple[str, ...] = ("tiny", "edge"), formats: tuple[str, ...] = ("json", "parquet", "raw")) -> str:
    """A real results.json of a small run of every stage on this machine, as JSON text (once per session)."""
    import tempfile

    from feedtax.bench import runner

    with tempfile.TemporaryDirectory() as d:
        res = runner.run(TEST_PROFILE, Path(d), tracks=list(tracks), formats=list(formats))
    assert res.status == "complete"
    return res.model_dump_json(indent=2)


def _scale(obj, factor: float) -> None:
    """Multiply every rate (names with per_s or iops) in place, distributions included."""
    stack = [obj]
    while stack:
        o = stack.pop()
        for k, v in list(o.items()) if isinstance(o, dict) else list(enumerate(o)):
            rate = isinstance(k, str) and re.search(r"per_s(_|$)|iops", k) is not None
            if rate and isinstance(v, (int, float)) and not isinstance(v, bool):
                o[k] = v * factor
            elif rate and isinstance(v, dict) and "median" in v:
                for stat in _DIST_STATS:
                    v[stat] *= factor
            elif isinstance(v, (dict, list)):
                stack.append(v)


HOSTS = [("AMD EPYC 7B13", "ext4", False, "vm"), ("Apple M2", "apfs", False, None),
         ("Intel Core i7-1165G7", "ext4", False, None), ("Intel Xeon E5-2680", "xfs", True, None),
         ("AMD Ryzen 9 7950X", "btrfs", False, None), ("Intel Xeon Platinum", "ext4", True, "vm")]


def variant(base: dict, i: int, seed: int = 0) -> dict:
    """Submission i: its own run_id, one of a few host kinds, and rates scaled as a different machine would give."""
    rng = random.Random(seed * 100_003 + i)
    doc = orjson.loads(orjson.dumps(base))  # a deep copy, ten times faster than copy.deepcopy
    doc["run_id"] = f"20260101T{i // 3600 % 24:02d}{i // 60 % 60:02d}{i % 60:02d}Z-{seed:02x}{i:06x}"
    cpu, fs, rot, vm = HOSTS[i % len(HOSTS)]
    doc["host"].update(cpu_model=cpu, virtualization=vm)
    if doc["host"].get("data_dir"):
        doc["host"]["data_dir"].update(fs_type=fs, rotational=rot)
    _scale(doc["formats"], rng.lognormvariate(0, 0.3) * (20 if i == 7 else 1))  # run 7: a much faster machine
    if doc.get("disk"):
        _scale(doc["disk"], rng.lognormvariate(0, 0.3) * (0.2 if rot else 1.0))
    for row in doc.get("loader", []):  # another machine waits more or less
        row["feeding_tax"] = min(1.0, max(0.0, row["feeding_tax"] * rng.uniform(0.6, 1.4)))
        row["au"] = 1.0 - row["feeding_tax"]
    for row in doc.get("model_validation", []):  # ... and the model misses it by more or less
        measured = row["predicted_feeding_tax"] - (row["error_pp"] + rng.gauss(0, 3)) / 100
        row["measured_feeding_tax"] = min(1.0, max(0.0, measured))
        row["error_pp"] = 100 * (row["predicted_feeding_tax"] - row["measured_feeding_tax"])
    return doc


def write_good(folder: Path, n: int, seed: int = 0) -> dict[str, Path]:
    base = json.loads(base_run())
    out = {}
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        doc = variant(base, i, seed)
        path = folder / f"{doc['run_id']}.json"
        path.write_text(json.dumps(doc, indent=1))
        out[doc["run_id"]] = path
    return out


def write_bad(folder: Path) -> dict[str, tuple[Path, str]]:
    """One file per way a submission goes wrong: name -> (path, the reject kind expected)."""
    folder.mkdir(parents=True, exist_ok=True)
    good = json.loads(base_run())
    text = json.dumps(good, indent=1)

    def doc_with(i: int, change) -> bytes:
        d = variant(good, 900 + i)
        change(d)
        return json.dumps(d).encode()

    def distribution(d, **stats):
        d["formats"][0]["decode_samples_per_s_cold"].update(stats)

    cases: dict[str, tuple[bytes, str]] = {
        "empty": (b"", "empty"),
        "whitespace": (b"  \n\t", "empty"),
        "not_json": (b"track,format,decode\ncloud,csv,1234\n", "not_json"),
        "pickle": (pickle.dumps({"run_id": "x"}), "not_utf8"),
        "truncated": (text[: len(text) // 2].encode(), "truncated"),
        "array": (b"[1, 2, 3]", "wrong_top_level_type"),
        "string": (b'"results"', "wrong_top_level_type"),
        "future_version": (doc_with(1, lambda d: d.update(schema_version=99)), "unknown_schema_version"),
        "old_version": (doc_with(2, lambda d: d.update(schema_version=0)), "unknown_schema_version"),
        "no_version": (doc_with(3, lambda d: d.pop("schema_version")), "unknown_schema_version"),
        "no_host": (doc_with(4, lambda d: d.pop("host")), "missing_section"),
        "no_formats": (doc_with(5, lambda d: d.update(formats=[])), "missing_section"),
        "wrong_type": (doc_with(6, lambda d: d["formats"][0].update(n_samples="many")), "schema"),
        "nan": (doc_with(7, lambda d: None).replace(b'"bytes_per_sample": ', b'"bytes_per_sample": NaN, "x": ', 1),
                "non_finite"),
        "infinity": (doc_with(8, lambda d: d["formats"][0].update(compression_ratio=1e400))
                     .replace(b"Infinity", b"1e999"), "non_finite"),
        "negative_bytes": (doc_with(9, lambda d: d["formats"][0].update(bytes_per_sample=-5.0)), "implausible"),
        "absurd_rate": (doc_with(10, lambda d: distribution(d, median=5e12, q3=6e12, max=7e12, mean=5e12)),
                        "implausible"),
        "inconsistent_dist": (doc_with(11, lambda d: distribution(d, median=10.0, min=20.0)), "implausible"),
        "bad_run_id": (doc_with(12, lambda d: d.update(run_id="../../etc/passwd")), "bad_run_id"),
        "deep": (b'{"schema_version": 1, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "too_deep"),
        "huge_int": (doc_with(13, lambda d: d["formats"][0].update(n_shards=10**30)), "implausible"),
        "duplicate_key": (doc_with(14, lambda d: None).replace(b'"profile": "ci"', b'"profile": "ci", "profile": "x"',
                                                               1), "duplicate_key"),
        "run_id_newline": (doc_with(15, lambda d: d.update(run_id=d["run_id"] + "\n")), "bad_run_id"),
        "unbounded_setting": (doc_with(16, lambda d: d["config"].update(min_time_s=1e308)), "implausible"),
        "negative_count": (doc_with(17, lambda d: d["config"].update(samples_per_track=-5)), "implausible"),
        "no_repeats": (doc_with(18, lambda d: d["config"].update(repeats=0)), "implausible"),
        "load_average": (doc_with(19, lambda d: d["host"].update(load_average_1m=1e308)), "implausible"),
        "inconsistent_ratio": (doc_with(20, lambda d: d["formats"][0].update(compression_ratio=1e3)), "implausible"),
    }
    out = {}
    for name, (data, kind) in cases.items():
        p = folder / f"bad_{name}.json"
        p.write_bytes(data)
        out[name] = (p, kind)
    big = folder / "bad_oversized.json"
    with open(big, "wb") as f:  # sparse: refused by its size before a byte is read
        f.truncate(intake.MAX_SUBMISSION_BYTES + 1)
    out["oversized"] = (big, "too_large")
    return out


def snapshot(db: Path) -> dict[str, list]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        return {t: con.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall() for t in tables}
    finally:
        con.close()


def make_corpus(root: Path) -> tuple[Path, dict[str, Path], dict[str, tuple[Path, str]]]:
    """root/good: N_GOOD good submissions by run_id; root/bad: one file per reject kind."""
    good = write_good(root / "good", N_GOOD)
    bad = write_bad(root / "bad")
    return root, good, bad


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def cli_app() -> typer.Typer:
    app = typer.Typer()
    app.command("collect")(collect_cmd)
    app.command("noop")(lambda: None)  # two commands: typer keeps the command name in the CLI
    return app


def test_corpus_good_ingested_once_bad_named_and_second_collect_changes_nothing(corpus, tmp_path):
    root, good, bad = corpus
    db = tmp_path / "class.duckdb"
    assert len(good) >= 20 and len({k for _, k in bad.values()}) >= 8

    report = c.collect([root], db, batch_files=7)  # small batches: several transactions
    assert sorted(a.run_id for a in report.accepted) == sorted(good)
    got = {Path(r.path).name: r for r in report.rejected}
    for name, (path, kind) in bad.items():
        assert path.name in got, f"{name} was not rejected"
        assert got[path.name].kind == kind, f"{name}: {got[path.name].kind}: {got[path.name].reason}"
        assert got[path.name].reason
    assert len(report.rejected) == len(bad) and not report.ok and not report.duplicates
    counts = report.table_rows
    assert counts["runs"] == counts["submissions"] == counts["hosts"] == N_GOOD
    assert counts["formats"] == 6 * N_GOOD

    before = snapshot(db)
    again = c.collect([root], db)
    assert not again.accepted and len(again.duplicates) == N_GOOD and len(again.rejected) == len(bad)
    assert snapshot(db) == before


def test_unchanged_files_are_known_by_their_bytes_and_not_parsed_again(corpus, tmp_path, monkeypatch):
    """Re-collecting a class: a file whose bytes are stored is already there without being validated again (the
    slow part); a file with other bytes but the same run (re-indented) still goes through intake and is a duplicate."""
    _, good, _ = corpus
    db = tmp_path / "class.duckdb"
    assert c.collect(list(good.values()), db).ok
    before = snapshot(db)
    parsed = []
    real = prep.prepare
    monkeypatch.setattr(prep, "prepare", lambda path, *a, **kw: parsed.append(Path(path).name) or real(path, *a, **kw))
    reindented = tmp_path / "reindented.json"
    first = next(iter(good.values()))
    reindented.write_text(json.dumps(json.loads(first.read_text()), indent=4))
    again = c.collect([*good.values(), reindented], db)
    assert parsed == ["reindented.json"], "only the file whose bytes are new was parsed"
    assert again.ok and not again.accepted and len(again.duplicates) == N_GOOD + 1
    assert {d.run_id for d in again.duplicates} == set(good) and snapshot(db) == before


def test_cli_exit_status_reflects_rejections(corpus, tmp_path):
    root, good, bad = corpus
    runner = CliRunner()
    db = tmp_path / "c.duckdb"
    ok = runner.invoke(cli_app(), ["collect", str(root / "good"), "--db", str(db)])
    assert ok.exit_code == 0, ok.output
    assert f"{N_GOOD} collected" in ok.output
    again = runner.invoke(cli_app(), ["collect", str(root / "good"), "--db", str(db), "--json"])
    assert again.exit_code == 0 and len(json.loads(again.stdout)["duplicates"]) == N_GOOD
    mixed = runner.invoke(cli_app(), ["collect", str(root), "--db", str(db), "--workers", "2"])  # in a pool of 2
    assert mixed.exit_code == 1
    for path, kind in bad.values():
        assert f"{path}: {kind}:" in mixed.output
    no_workers = runner.invoke(cli_app(), ["collect", str(root), "--db", str(db), "--workers", "0"])
    assert no_workers.exit_code == 2 and "--workers" in no_workers.output
    missing = runner.invoke(cli_app(), ["collect", str(tmp_path / "nowhere.json"), "--db", str(db)])
    assert missing.exit_code == 1 and "no such file" in missing.output
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    assert runner.invoke(cli_app(), ["collect", str(empty_dir), "--db", str(db)]).exit_code == 2
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("hello")
    broken = runner.invoke(cli_app(), ["collect", str(root / "good"), "--db", str(not_a_db)])
    assert broken.exit_code == 2 and "notes.txt" in broken.output


def test_conflict_is_rejected_and_never_overwrites(corpus, tmp_path):
    root, good, _ = corpus
    db = tmp_path / "c.duckdb"
    rid, path = next(iter(good.items()))
    c.collect([path], db)
    before = snapshot(db)
    doc = json.loads(path.read_text())
    _scale(doc["formats"][0], 2.0)  # its first format's rates doubled, consistently
    other = tmp_path / "edited.json"
    other.write_text(json.dumps(doc))
    reformatted = tmp_path / "same_content.json"
    reformatted.write_text(json.dumps(json.loads(path.read_text())))  # other bytes, same content
    report = c.collect([other, reformatted], db)
    assert [x.run_id for x in report.conflicts] == [rid] and "different content" in report.conflicts[0].reason
    assert [d.run_id for d in report.duplicates] == [rid] and not report.ok
    assert snapshot(db) == before
    # the same run twice in one call: first wins, second conflicts
    report = c.collect([other, path], tmp_path / "fresh.duckdb")
    assert len(report.accepted) == 1 and len(report.conflicts) == 1


def test_a_file_failing_mid_insert_leaves_nothing_and_others_are_kept(corpus, tmp_path, monkeypatch):
    _, good, _ = corpus
    paths = list(good.values())[:5]
    victim = json.loads(paths[2].read_text())["run_id"]
    real = store._insert_table

    def flaky(con, table, batch):
        real(con, table, batch)  # submissions and other tables go in first, then formats fails
        if table == "formats" and victim in batch.column("run_id").to_pylist():
            raise duckdb.ConversionException("disk full (simulated)")

    monkeypatch.setattr(store, "_insert_table", flaky)
    report = c.collect(paths, tmp_path / "c.duckdb")
    assert [r.run_id for r in report.rejected] == [victim] and report.rejected[0].kind == "database"
    assert len(report.accepted) == 4
    snap = snapshot(tmp_path / "c.duckdb")
    assert not any(victim in str(row) for rows in snap.values() for row in rows)
    assert len(snap["formats"]) == 4 * 6


def test_a_database_that_stops_fatally_ends_the_collect_in_one_line_keeping_what_was_stored(corpus, tmp_path,
                                                                                              monkeypatch):
    """DuckDB invalidates a database after a fatal error (a checkpoint that could not pin its blocks): no file after
    it can be stored, so the collect stops at once, naming the database, instead of refusing every file one by one."""
    _, good, _ = corpus
    paths = list(good.values())[:6]
    real, calls = store._insert_table, []

    def fatal(con, table, batch):
        calls.append(table)
        if table == "submissions" and calls.count("submissions") == 2:  # the second batch
            raise duckdb.FatalException("Failed to create checkpoint (simulated)")
        real(con, table, batch)

    monkeypatch.setattr(store, "_insert_table", fatal)
    db = tmp_path / "c.duckdb"
    with pytest.raises(store.CollectError) as err:
        c.collect(paths, db, batch_files=3)
    assert str(err.value).startswith(f"{db}: the database stopped: ") and "\n" not in str(err.value)
    assert calls.count("submissions") == 2  # not retried file by file
    assert _consistent(db) == 3  # the first batch stays whole


# --- lab records: <run_id>.lab.json beside <run_id>.json -----------------------------------------------

def _lab(run_id: str, **changes):
    from test_lab_record import record

    return record(run_id=run_id, **changes)


def _inbox(corpus, folder: Path, n: int) -> list[str]:
    """n of the corpus's good submissions copied into folder; their run_ids."""
    good = corpus[1]
    folder.mkdir(parents=True, exist_ok=True)
    rids = sorted(good)[:n]
    for rid in rids:
        (folder / f"{rid}.json").write_bytes(good[rid].read_bytes())
    return rids


def test_lab_records_go_in_with_their_runs_and_bad_ones_are_named(corpus, tmp_path):
    from feedtax.results.lab import save_lab

    inbox = tmp_path / "inbox"
    a, b, bad, other = _inbox(corpus, inbox, 4)
    save_lab(_lab(a), inbox / f"{a}.lab.json")
    save_lab(_lab(b), inbox / f"{b}.lab.json")
    (inbox / f"{bad}.lab.json").write_text(_lab(bad).model_dump_json().replace('"equilibrium_found":4',
                                                                               '"equilibrium_found":NaN'))
    save_lab(_lab("20990101T000000Z-nobody"), inbox / "20990101T000000Z-nobody.lab.json")  # no results anywhere
    (inbox / f"{other}.json").rename(inbox / "alice.json")
    save_lab(_lab(a), inbox / "alice.lab.json")  # beside alice.json, but of run a
    db = tmp_path / "c.duckdb"

    report = c.collect([inbox], db)
    assert sorted(x.run_id for x in report.accepted) == sorted([a, b, bad, other])  # every results file goes in
    assert sorted((x.run_id, x.status) for x in report.labs) == [(a, "collected"), (b, "collected")]
    kinds = {Path(r.path).name: (r.kind, r.reason) for r in report.rejected}
    assert kinds[f"{bad}.lab.json"][0] == "lab_invalid" and "not a finite number" in kinds[f"{bad}.lab.json"][1]
    assert kinds["20990101T000000Z-nobody.lab.json"][0] == "lab_no_run"
    assert kinds["alice.lab.json"][0] == "lab_run_id_mismatch" and "alice.json" in kinds["alice.lab.json"][1]
    assert len(report.rejected) == 3 and not report.ok

    snap = snapshot(db)
    assert len(snap["lab_records"]) == 2 and len(snap["lab_locks"]) == 6 and len(snap["lab_reflections"]) == 4
    assert len(snap["measured_answers"]) == 3 * 4  # every run's three Locks, lab record or not
    con = duckdb.connect(str(db), read_only=True)
    stored = con.execute("SELECT answer FROM lab_reflections WHERE run_id = ? ORDER BY row_idx", [a]).fetchall()
    con.close()
    assert stored[1][0] == "<script>alert('x')</script>"  # stored as typed

    out = CliRunner().invoke(cli_app(), ["collect", str(inbox), "--db", str(tmp_path / "cli.duckdb")])
    assert out.exit_code == 1 and "lab records: 2 collected, 0 unchanged" in out.output
    assert f"{inbox / (bad + '.lab.json')}: lab_invalid:" in out.output


def test_a_newer_lab_record_replaces_the_older_unless_it_changes_a_lock(corpus, tmp_path):
    from feedtax.results.lab import Lock, Reflection, save_lab

    inbox = tmp_path / "inbox"
    (rid,) = _inbox(corpus, inbox, 1)
    lab_file, db = inbox / f"{rid}.lab.json", tmp_path / "c.duckdb"
    first = _lab(rid, locks=_lab(rid).locks[:1], reflections=[])
    save_lab(first, lab_file)
    assert [x.status for x in c.collect([inbox], db).labs] == ["collected"]
    assert [x.status for x in c.collect([inbox], db).labs] == ["unchanged"]

    grown = _lab(rid)  # two more Locks and the reflections, the first Lock as it was
    save_lab(grown, lab_file)
    report = c.collect([inbox], db)
    assert [x.status for x in report.labs] == ["replaced"] and report.ok
    before = snapshot(db)
    assert len(before["lab_locks"]) == 3 and len(before["lab_records"]) == 1

    changed = grown.model_copy(update={"locks": [Lock(lock="gravity", choice="drive", confidence="high",
                                                      committed_utc=grown.locks[0].committed_utc),
                                                 *grown.locks[1:]],
                                       "reflections": [Reflection(part=1, prompt="p", answer="after the numbers")]})
    save_lab(changed, lab_file)
    report = c.collect([inbox], db)
    assert [(x.kind, x.run_id) for x in report.conflicts] == [("lab_conflict", rid)]
    assert "gravity" in report.conflicts[0].reason and not report.labs
    assert snapshot(db) == before  # the Locks first committed are kept


def test_measured_answers_are_filled_in_for_runs_collected_before_them(corpus, tmp_path):
    from feedtax.results.lab import save_lab

    inbox = tmp_path / "inbox"
    rids = _inbox(corpus, inbox, 2)
    db = tmp_path / "c.duckdb"
    c.collect([inbox], db)
    con = duckdb.connect(str(db))
    con.execute("DROP TABLE measured_answers")  # as a database collected before the lab existed
    con.execute("DROP TABLE lab_locks")
    con.close()
    again = c.collect([inbox], db)
    assert len(again.duplicates) == 2 and again.ok
    got = snapshot(db)["measured_answers"]
    assert sorted({r[0] for r in got}) == sorted(rids) and len(got) == 6
    lab_only = inbox / f"{rids[0]}.lab.json"  # a lab record alone: its run was collected before
    save_lab(_lab(rids[0]), lab_only)
    report = c.collect([lab_only], db)
    assert [(x.run_id, x.status) for x in report.labs] == [(rids[0], "collected")] and report.ok


# --- what identifies a run: its run_id, without case, and its measurements -------------------------------------------

def _copy(path: Path, folder: Path, name: str, **changes) -> Path:
    doc = json.loads(path.read_text())
    doc.update(changes)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / name
    out.write_text(json.dumps(doc))
    return out


def test_a_run_is_counted_once_whatever_its_run_id_says(corpus, tmp_path):
    _, good, _ = corpus
    (rid, path), (other_rid, other) = list(good.items())[:2]
    db, copies = tmp_path / "c.duckdb", tmp_path / "copies"
    assert [a.run_id for a in c.collect([path], db).accepted] == [rid]
    before = snapshot(db)
    renamed = _copy(path, copies, "renamed.json", run_id=rid + "-again")  # the same measurements, another id
    upper = _copy(path, copies, "upper.json", run_id=rid.swapcase())  # "...Z-00" as "...z-00"
    newline = _copy(path, copies, "newline.json", run_id=rid + "\n")
    clash = _copy(other, copies, "clash.json", run_id=rid.swapcase())  # another run under the same id, its case changed
    report = c.collect([renamed, upper, newline, clash], db)
    got = {Path(r.path).name: r for r in report.rejected + report.conflicts}
    assert got["renamed.json"].kind == got["upper.json"].kind == "duplicate"
    assert rid in got["renamed.json"].reason and str(path) in got["renamed.json"].reason
    assert got["newline.json"].kind == "bad_run_id" and got["clash.json"].kind == "conflict"
    assert not report.accepted and not report.duplicates and snapshot(db) == before
    # within one collection too: the first file of a run goes in, a copy under another id is named
    fresh = c.collect([other, _copy(other, copies, "twin.json", run_id=other_rid + "-twin")], tmp_path / "f.duckdb")
    assert [a.run_id for a in fresh.accepted] == [other_rid]
    assert [(r.kind, r.run_id) for r in fresh.rejected] == [("duplicate", other_rid + "-twin")]


# --- a full disk -----------------------------------------------------------------------------------------------------


def _consistent(db: Path) -> int:
    """The number of runs, after checking every run is in every table it should be, and no table holds a run the
    submissions do not."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        subs = {r[0] for r in con.execute("SELECT run_id FROM submissions").fetchall()}
        for table in ("runs", "hosts", "formats", "measured_answers"):
            assert {r[0] for r in con.execute(f"SELECT DISTINCT run_id FROM {table}").fetchall()} == subs, table
        return len(subs)
    finally:
        con.close()


def test_a_full_disk_is_named_and_the_store_stays_whole(corpus, tmp_path):
    _, good, _ = corpus
    with small_tmpfs(tmp_path / "small", "size=1M") as small:
        db = small / "class.duckdb"
        report = c.collect(list(good.values()), db, batch_files=4)
        full = [r for r in report.rejected if r.kind == "database"]
        assert full and report.accepted, "the disk did not fill: make the tmpfs smaller"
        for r in full:
            assert r.reason.startswith("disk full: ") and f"bytes free on {small}" in r.reason, r.reason
            assert "rollback" not in r.reason
        stored = _consistent(db)
        assert stored == len(report.accepted) and stored + len(full) == len(good)
        out = CliRunner().invoke(cli_app(), ["collect", *map(str, good.values()), "--db", str(db)])
        assert out.exit_code == 1 and "database: disk full: " in out.output and "Traceback" not in out.output
        subprocess.run(["mount", "-o", "remount,size=64M", str(small)], check=True, timeout=30)
        again = c.collect(list(good.values()), db)  # space freed: the rest go in, the stored ones are there already
        assert again.ok and len(again.accepted) == len(full) and len(again.duplicates) == stored
        assert _consistent(db) == len(good)


# --- validating in a pool of processes -------------------------------------------------------------------------------


def _unstamped(snap: dict[str, list]) -> dict[str, list]:
    """A snapshot without collected_utc (when each batch was built)."""
    at = [name for name, _ in store.SUBMISSIONS].index("collected_utc")
    return snap | {"submissions": [row[:at] + row[at + 1:] for row in snap["submissions"]]}


def test_a_pool_of_processes_collects_what_this_process_alone_does(corpus, tmp_path):
    """Validation in forked processes, a chunk of files at a time: the same rows, and the same verdict on every file
    in the same order (copies, conflicts and bad files among them), as validating here, with batches of any size."""
    root, good, _ = corpus
    (rid, first), (_, second) = list(good.items())[:2]
    extra = tmp_path / "extra"
    extra.mkdir()
    shutil.copy(first, extra / "copy.json")  # the same bytes again
    _copy(first, extra, "clash.json", created_utc="2026-02-02T00:00:00+00:00")  # the same run_id, other content
    _copy(second, extra, "twin.json", run_id=rid + "-twin")  # another run's measurements under a new run_id
    got = {}
    for workers, batch_files in ((1, 100), (2, 7), (3, 3)):
        db = tmp_path / f"w{workers}.duckdb"
        report = c.collect([root, extra], db, batch_files=batch_files, workers=workers)
        got[workers] = report.model_dump(exclude={"db_path", "elapsed_s"}), _unstamped(snapshot(db))
    assert got[1] == got[2] == got[3]
    report = got[1][0]
    assert len(report["accepted"]) == N_GOOD and len(report["duplicates"]) == 1 and len(report["conflicts"]) == 1
    assert "duplicate" in {r["kind"] for r in report["rejected"]}


def test_batches_split_select_and_join_back_to_the_same_rows(corpus, monkeypatch):
    _, good, _ = corpus
    monkeypatch.setattr(store, "now_utc", lambda: "2026-12-02T00:00:00+00:00")  # one stamp: no second may tick between
    plan = store.table_plans()
    items = [prep.prepare(p, plan) for p in list(good.values())[:5]]
    whole = store.batch_tables(plan, items)

    def rows(batch):
        return {t: table.to_pylist() for t, table in batch.tables}

    head, tail = whole.split(2)
    assert [p.run_id for p in head.items + tail.items] == [p.run_id for p in items]
    assert rows(store.join([head, tail])) == rows(whole)
    assert rows(whole.select([False, True, False, False, True])) == rows(store.batch_tables(plan, [items[1], items[4]]))
    assert rows(whole.one(3)) == rows(store.batch_tables(plan, [items[3]]))
    assert whole.select([True] * 5) is whole and not whole.select([False] * 5).tables


def test_a_signal_stops_a_pooled_collect_keeping_whole_runs_and_no_process(tmp_path):
    """SIGTERM (or Ctrl-C) in the middle of a collect whose files are validated by a pool: one line naming the signal,
    exit 128 + its number, every run stored whole, the pool's processes gone; collecting again adds the rest."""
    folder = tmp_path / "class"
    good = write_good(folder, 160, seed=3)
    db = tmp_path / "class.duckdb"
    proc = subprocess.Popen([sys.executable, "-m", "feedtax", "collect", str(folder), "--db", str(db)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.extend(proc.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while not any("results files: 0/160" in line for line in said) and time.monotonic() < deadline:
        time.sleep(0.05)  # the pool forked, the database open: the files are being collected
    pool = psutil.Process(proc.pid).children()
    assert len(pool) >= 2, f"no pool: {said}"
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    reader.join(timeout=10)
    err = "".join(said)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert said[-1].startswith(f"feedtax: {db}: interrupted by SIGTERM") and "Traceback" not in err, err
    psutil.wait_procs(pool, timeout=10)
    assert not [p for p in pool if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    stored = _consistent(db)
    assert stored < len(good), "the collect ended before the signal: give it more files"
    again = c.collect([folder], db)
    assert again.ok and len(again.accepted) == len(good) - stored and _consistent(db) == len(good)


def test_a_collect_shows_its_progress_on_stderr_and_its_json_alone_on_stdout(corpus, tmp_path):
    root, good, _ = corpus
    db = tmp_path / "c.duckdb"
    done = subprocess.run([sys.executable, "-m", "feedtax", "collect", str(root / "good"), "--db", str(db), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["accepted"]) == len(good)
    lines = done.stderr.splitlines()
    n = len(good)
    assert lines[0].endswith(f"s] results files: 0/{n}") and lines[-1].endswith(f"s] results files: {n}/{n}")
