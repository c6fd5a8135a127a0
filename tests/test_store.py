"""The store: a table per section of the model, later ones included; every section of a run stored, raw bytes kept."""

from __future__ import annotations

import json
from typing import Literal

import duckdb
import pytest
from pydantic import BaseModel
from test_collect import base_run, make_corpus

from feedtax.classroom import collect as c
from feedtax.classroom import intake, store
from feedtax.results.schema import Results
from feedtax.stats import Distribution


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"))


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
    plan = store.table_plans(Extended)
    tables = {p.table: p for p in store.all_plans(plan)}
    assert {"future_rows", "future_summary", "future_summary_equilibrium", "future_projections",
            "future_projections_checks"} <= set(tables)
    assert "step_wall_s_median" in [col for _, col, _, _ in tables["future_rows"].columns]
    rows = store.rows_of(res, plan)
    assert len(rows["future_rows"]) == 3 and len(rows["future_projections_checks"]) == 1
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    store.ensure_tables(con, plan)
    for p in store.all_plans(plan):
        store._insert(con, p.table, store._meta(p) + [(col, t) for _, col, t, _ in p.columns], rows.get(p.table, []))
    got = con.execute("SELECT num_workers, feeding_tax FROM future_rows ORDER BY 1").fetchall()
    assert got == [(0, 0.5), (1, 0.25), (2, 0.5 / 3)]
    assert con.execute("SELECT row_key, num_workers FROM future_summary_equilibrium").fetchall() == [("tiny/raw", 2)]
    assert con.execute("SELECT p.row_key, k.name FROM future_projections p JOIN future_projections_checks k "
                       "ON k.parent_path = p.row_path").fetchall() == [("cloud", "rate")]
    assert json.loads(con.execute("SELECT inputs FROM future_projections").fetchone()[0]) == {"read_mb_per_s": 100.0}
    con.close()

    base["future_rows"][1]["feeding_tax"] = 1.4
    problems = intake.implausible(Extended.model_validate(base).model_dump())
    assert any("future_rows[1].feeding_tax" in p and "[0, 1]" in p for p in problems)


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
