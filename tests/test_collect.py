"""Class collection: good submissions ingested once, every bad one named with its reason, nothing lost.

The corpus is generated: one real (small) run measured on this machine, then varied copies of it
(other run_ids, hosts and speeds), plus hostile and broken files of every kind collect refuses.
"""

from __future__ import annotations

import copy
import functools
import json
import pickle
import random
import re
from pathlib import Path
from typing import Literal

import duckdb
import pytest
import typer
from pydantic import BaseModel
from typer.testing import CliRunner

from feedtax.classroom import collect as c
from feedtax.cli.classroom import collect_cmd
from feedtax.measure.profiles import Profile, SweepPlan, get
from feedtax.results.schema import Results
from feedtax.stats import Distribution

N_GOOD = 20
_DIST_STATS = ("median", "iqr", "q1", "q3", "mean", "stdev", "min", "max")


TEST_PROFILE = Profile(
    name="ci", description="tests: every stage, tiny sizes", samples_per_track=24, samples_per_shard=12, sizes=get("ci").sizes,
    warmups=1, repeats=3, min_time_s=0.0, format_budget_s=1.0, disk_probe_bytes=4 << 20, disk_probe_budget_s=0.5,
    memory_probe_bytes=4 << 20,
    sweep=SweepPlan(tracks=("tiny",), formats=("json", "raw"), batch_size=8, steps=4, step_s=0.001, max_workers=1,
                    worker_counts=(0, 1)))


@functools.cache
def base_run(tracks: tuple[str, ...] = ("tiny", "edge"), formats: tuple[str, ...] = ("json", "parquet", "raw")) -> str:
    """A real results.json of a small run of every stage on this machine, as JSON text (once per session)."""
    import tempfile

    from feedtax.measure import runner

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


HOSTS = [("AMD EPYC 7B13", "ext4", False, "vm"), ("Apple M2", "apfs", False, None), ("Intel Core i7-1165G7", "ext4", False, None),
         ("Intel Xeon E5-2680", "xfs", True, None), ("AMD Ryzen 9 7950X", "btrfs", False, None), ("Intel Xeon Platinum", "ext4", True, "vm")]


def variant(base: dict, i: int, seed: int = 0) -> dict:
    """Submission i: its own run_id, one of a few host kinds, and rates scaled as a different machine would give."""
    rng = random.Random(seed * 100_003 + i)
    doc = copy.deepcopy(base)
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
    for row in doc.get("model_validation", []):
        row["error_pp"] = max(-100.0, min(100.0, row["error_pp"] + rng.gauss(0, 3)))
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
        "nan": (doc_with(7, lambda d: None).replace(b'"bytes_per_sample": ', b'"bytes_per_sample": NaN, "x": ', 1), "non_finite"),
        "infinity": (doc_with(8, lambda d: d["formats"][0].update(compression_ratio=1e400)) .replace(b"Infinity", b"1e999"), "non_finite"),
        "negative_bytes": (doc_with(9, lambda d: d["formats"][0].update(bytes_per_sample=-5.0)), "implausible"),
        "absurd_rate": (doc_with(10, lambda d: distribution(d, median=5e12, q3=6e12, max=7e12, mean=5e12)), "implausible"),
        "inconsistent_dist": (doc_with(11, lambda d: distribution(d, median=10.0, min=20.0)), "implausible"),
        "bad_run_id": (doc_with(12, lambda d: d.update(run_id="../../etc/passwd")), "bad_run_id"),
        "deep": (b'{"schema_version": 1, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "too_deep"),
        "huge_int": (doc_with(13, lambda d: d["formats"][0].update(n_shards=10**30)), "implausible"),
    }
    out = {}
    for name, (data, kind) in cases.items():
        p = folder / f"bad_{name}.json"
        p.write_bytes(data)
        out[name] = (p, kind)
    big = folder / "bad_oversized.json"
    with open(big, "wb") as f:  # sparse: refused by its size before a byte is read
        f.truncate(c.MAX_SUBMISSION_BYTES + 1)
    out["oversized"] = (big, "too_large")
    return out


def snapshot(db: Path) -> dict[str, list]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        return {t: con.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall() for t in tables}
    finally:
        con.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    good = write_good(root / "good", N_GOOD)
    bad = write_bad(root / "bad")
    return root, good, bad


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


def test_reasons_are_specific(corpus, tmp_path):
    _, _, bad = corpus
    report = c.collect([p for p, _ in bad.values()], tmp_path / "db.duckdb")
    why = {Path(r.path).name: r.reason for r in report.rejected}
    assert "NaN" in why["bad_nan.json"]
    assert "host" in why["bad_no_host.json"]
    assert "99" in why["bad_future_version.json"] and "newer" in why["bad_future_version.json"]
    assert "bytes_per_sample" in why["bad_negative_bytes.json"]
    assert "decode_samples_per_s_cold" in why["bad_absurd_rate.json"] and "1e+09" in why["bad_absurd_rate.json"]
    assert "limit" in why["bad_oversized.json"] and "deep" in why["bad_deep.json"]
    assert "formats.0.n_samples" in why["bad_wrong_type.json"]
    assert report.table_rows["runs"] == 0  # nothing of a rejected file is stored


def test_cli_exit_status_reflects_rejections(corpus, tmp_path):
    root, good, bad = corpus
    runner = CliRunner()
    db = tmp_path / "c.duckdb"
    ok = runner.invoke(cli_app(), ["collect", str(root / "good"), "--db", str(db)])
    assert ok.exit_code == 0, ok.output
    assert f"{N_GOOD} collected" in ok.output
    again = runner.invoke(cli_app(), ["collect", str(root / "good"), "--db", str(db), "--json"])
    assert again.exit_code == 0 and len(json.loads(again.stdout)["duplicates"]) == N_GOOD
    mixed = runner.invoke(cli_app(), ["collect", str(root), "--db", str(db)])
    assert mixed.exit_code == 1
    for path, kind in bad.values():
        assert f"{path}: {kind}:" in mixed.output
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
    doc["formats"][0]["bytes_per_sample"] *= 2
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


def test_raw_bytes_of_every_accepted_run_are_stored(corpus, tmp_path):
    _, good, _ = corpus
    db = tmp_path / "c.duckdb"
    c.collect(list(good.values())[:3], db)
    con = duckdb.connect(str(db), read_only=True)
    stored = dict(con.execute("SELECT run_id, raw FROM submissions").fetchall())
    con.close()
    for rid, raw in stored.items():
        assert raw == good[rid].read_bytes()
        assert Results.model_validate_json(raw).run_id == rid


def test_a_file_failing_mid_insert_leaves_nothing_and_others_are_kept(corpus, tmp_path, monkeypatch):
    _, good, _ = corpus
    paths = list(good.values())[:5]
    victim = json.loads(paths[2].read_text())["run_id"]
    real = c._insert

    def flaky(con, table, cols, rows):
        real(con, table, cols, rows)  # submissions and other tables go in first, then formats fails
        if table == "formats" and any(victim in r for r in rows):
            raise duckdb.ConversionException("disk full (simulated)")

    monkeypatch.setattr(c, "_insert", flaky)
    report = c.collect(paths, tmp_path / "c.duckdb")
    assert [r.run_id for r in report.rejected] == [victim] and report.rejected[0].kind == "database"
    assert len(report.accepted) == 4
    snap = snapshot(tmp_path / "c.duckdb")
    assert not any(victim in str(row) for rows in snap.values() for row in rows)
    assert len(snap["formats"]) == 4 * 6


def test_migration_hook_upgrades_an_older_version(corpus, tmp_path, monkeypatch):
    _, good, _ = corpus
    doc = json.loads(next(iter(good.values())).read_text())
    doc["schema_version"] = 0
    doc["profile_name"] = doc.pop("profile")  # pretend v0 called it profile_name
    p = tmp_path / "v0.json"
    p.write_text(json.dumps(doc))
    monkeypatch.setattr(c, "MIGRATIONS", {0: lambda d: {**{k: v for k, v in d.items() if k != "profile_name"}, "profile": d["profile_name"]}})
    report = c.collect([p], tmp_path / "c.duckdb")
    assert len(report.accepted) == 1 and "migrated from schema_version 0" in report.accepted[0].warnings[0]


def test_depth_is_measured_without_recursion_and_ignores_brackets_in_strings():
    assert c.json_depth(b'{"a": [1, {"b": "[[[[{{{{"}]}') == (3, 0)
    assert c.json_depth(b"[" * 200_000) == (200_000, 200_000)
    assert c.json_depth(b'{"a": "\\"[["}') == (1, 0)


# --- sections a later stage adds: the layout follows the model ---------------------------------------

class FutureRow(BaseModel):
    track: str
    format: str
    num_workers: int
    samples_per_s: float
    feeding_tax: float
    step_wall_s: Distribution | None = None


class Check(BaseModel):
    name: str
    ok: bool
    headroom: float


class FutureProjection(BaseModel):
    verdict: Literal["meets", "misses"]
    inputs: dict[str, float]
    checks: list[Check]


class FutureSummary(BaseModel):
    class Flow(BaseModel):
        num_workers: int | None
        samples_per_s: float

    equilibrium: dict[str, Flow]
    note: str


class Extended(Results):
    future_rows: list[FutureRow] = []
    future_summary: FutureSummary | None = None
    future_projections: dict[str, FutureProjection] = {}


def test_new_sections_get_tables_without_code(tmp_path):
    base = json.loads(base_run())
    base["future_rows"] = [{"track": "tiny", "format": "raw", "num_workers": w, "samples_per_s": 1000.0 * (w + 1),
                            "feeding_tax": 0.5 / (w + 1)} for w in range(3)]
    base["future_summary"] = {"equilibrium": {"tiny/raw": {"num_workers": 2, "samples_per_s": 3000.0}}, "note": "x"}
    base["future_projections"] = {"cloud": {"verdict": "misses", "inputs": {"read_mb_per_s": 100.0},
                                            "checks": [{"name": "rate", "ok": False, "headroom": 0.5}]}}
    res = Extended.model_validate(base)
    plan = c.table_plans(Extended)
    tables = {p.table: p for p in c.all_plans(plan)}
    assert {"future_rows", "future_summary", "future_summary_equilibrium", "future_projections",
            "future_projections_checks"} <= set(tables)
    assert "step_wall_s_median" in [col for _, col, _, _ in tables["future_rows"].columns]
    rows = c.rows_of(res, plan)
    assert len(rows["future_rows"]) == 3 and len(rows["future_projections_checks"]) == 1
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    c.ensure_tables(con, plan)
    for p in c.all_plans(plan):
        c._insert(con, p.table, c._meta(p) + [(col, t) for _, col, t, _ in p.columns], rows.get(p.table, []))
    got = con.execute("SELECT num_workers, feeding_tax FROM future_rows ORDER BY 1").fetchall()
    assert got == [(0, 0.5), (1, 0.25), (2, 0.5 / 3)]
    assert con.execute("SELECT row_key, num_workers FROM future_summary_equilibrium").fetchall() == [("tiny/raw", 2)]
    assert con.execute("SELECT p.row_key, k.name FROM future_projections p JOIN future_projections_checks k "
                       "ON k.parent_path = p.row_path").fetchall() == [("cloud", "rate")]
    assert json.loads(con.execute("SELECT inputs FROM future_projections").fetchone()[0]) == {"read_mb_per_s": 100.0}
    con.close()

    base["future_rows"][1]["feeding_tax"] = 1.4
    problems = c.implausible(Extended.model_validate(base).model_dump())
    assert any("future_rows[1].feeding_tax" in p and "[0, 1]" in p for p in problems)


def test_every_section_of_a_real_run_is_stored(corpus, tmp_path):
    _, good, _ = corpus
    report = c.collect([next(iter(good.values()))], tmp_path / "c.duckdb")
    rows = report.table_rows
    for section in ("formats", "loader", "transforms", "model_validation", "projections", "projections_checks",
                    "feeding", "gravity_tiers", "selection_rows", "disk_distributions", "hosts", "config", "stages"):
        assert rows.get(section, 0) >= 1, section


def test_plausibility_bounds_are_named():
    doc = {"formats": [{"bytes_per_sample": 0.0, "decode_samples_per_s": 2e9, "compression_ratio": 1.2}],
           "host": {"cpu_logical_cores": 0}, "loader": [{"au": -0.1, "step_s": -1.0}]}
    problems = " | ".join(c.implausible(doc))
    for what in ("bytes_per_sample", "decode_samples_per_s", "cpu_logical_cores", "au", "step_s"):
        assert what in problems
    assert "compression_ratio" not in problems
