"""The store's table layout follows the model: a section a later stage adds gets its tables with no code, nested
records become prefixed columns and child tables, and its numbers are checked against their declared bounds."""

from __future__ import annotations

import json
from typing import Literal

import duckdb
from pydantic import BaseModel
from test_collect import base_run

from feedtax.classroom import intake, store, tableplan
from feedtax.results.schema import Results
from feedtax.stats import Distribution


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
    plan = tableplan.table_plans(Extended)
    tables = {p.table: p for p in tableplan.all_plans(plan)}
    assert {"future_rows", "future_summary", "future_summary_equilibrium", "future_projections",
            "future_projections_checks"} <= set(tables)
    assert "step_wall_s_median" in [col for _, col, _, _ in tables["future_rows"].columns]
    rows = tableplan.rows_of(res, plan)
    assert len(rows["future_rows"]) == 3 and len(rows["future_projections_checks"]) == 1
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    store.ensure_tables(con, plan)
    for p in tableplan.all_plans(plan):
        columns = tableplan._meta(p) + [(col, t) for _, col, t, _ in p.columns]
        store._insert(con, p.table, columns, rows.get(p.table, []))
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
