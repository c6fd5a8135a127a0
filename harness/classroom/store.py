"""The class store: DuckDB tables derived from the `Results` model, one run's rows, and writing them.

The layout comes from the model itself (see `table_plans`), so a section added to the model gets its
table with no code here. Every run is stored whole or not at all, its submitted bytes kept in
`submissions.raw`; beside it each run's measured Lock answers, and the lab records (lab.json) in fixed
tables (`EXTRA_TABLES`). The class report reads the store through `connect` and `table_rows`.
"""

from __future__ import annotations

import operator
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel

from feedtax.results.io import now_utc
from feedtax.results.schema import Results

TABLE_NAMES = {"host": "hosts"}  # top-level section -> table, where the plural reads better
META_COLUMNS = ("run_id", "row_path", "parent_path", "row_key", "row_idx")


class CollectError(RuntimeError):
    """The collection cannot run at all (database unopenable or locked): names the file and why."""


# --- the table layout, derived from the pydantic model ---------------------------------------------

@dataclass
class Plan:
    """How one model class becomes rows of one table: its columns and its child tables."""

    table: str
    keyed: bool = False  # rows come from a dict: row_key holds the key
    # (attr path, column, DuckDB type, stored as JSON text)
    columns: list[tuple[tuple[str, ...], str, str, bool]] = field(default_factory=list)
    # (attr path, "one" | "list" | "dict", the child table's plan)
    children: list[tuple[tuple[str, ...], str, Plan]] = field(default_factory=list)
    getter: Any = field(default=None, repr=False, compare=False)  # built on first use by _values


def _unwrap(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _duck_type(tp: Any) -> tuple[str, bool]:
    """(DuckDB type, stored as JSON text) for a scalar annotation; anything structured becomes JSON text."""
    tp = _unwrap(tp)
    origin = typing.get_origin(tp)
    if origin is Literal:
        kinds = {type(a) for a in typing.get_args(tp)}
        tp = kinds.pop() if len(kinds) == 1 else object
    elif origin in (Union, types.UnionType):
        args = {_unwrap(a) for a in typing.get_args(tp) if a is not type(None)}
        if args <= {int, float}:
            return "DOUBLE", False
        return "VARCHAR", True
    return {bool: ("BOOLEAN", False), int: ("BIGINT", False), float: ("DOUBLE", False),
            str: ("VARCHAR", False)}.get(tp, ("VARCHAR", True))


def _container(tp: Any) -> tuple[str, type[BaseModel]] | None:
    """("one" | "list" | "dict", model) when tp holds models as rows, else None."""
    tp = _unwrap(tp)
    if _is_model(tp):
        return "one", tp
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (list, tuple) and args and _is_model(_unwrap(args[0])):
        return "list", _unwrap(args[0])
    if origin is dict and len(args) == 2 and _is_model(_unwrap(args[1])):
        return "dict", _unwrap(args[1])
    return None


def _fill(plan: Plan, model: type[BaseModel], attrs: tuple[str, ...], prefix: str, depth: int, top: bool) -> None:
    for name, info in model.model_fields.items():
        path, col = attrs + (name,), prefix + name
        held = _container(info.annotation) if depth < 8 else None  # recursive models stop as JSON
        if held and held[0] == "one" and not top:
            _fill(plan, held[1], path, col + "_", depth + 1, False)  # nested model: flattened columns
        elif held:
            kind, sub = held
            child_name = TABLE_NAMES.get(col, col) if top else f"{plan.table}_{col}"
            child = Plan(child_name, keyed=kind == "dict")
            _fill(child, sub, (), "", depth + 1, False)
            plan.children.append((path, kind, child))
        else:
            if col in META_COLUMNS and not (top and col == "run_id"):
                col += "_value"
            while any(col == c for _, c, _, _ in plan.columns):  # a_b and a.b would collide
                col += "_"
            plan.columns.append((path, col, *_duck_type(info.annotation)))


def table_plans(model: type[BaseModel] = Results) -> Plan:
    """The plan of the `runs` table (the model's scalars) with one child table per section of rows.

    Nested models become prefixed columns (a Distribution under decode_samples_per_s_cold gives
    decode_samples_per_s_cold_median, ...); lists of models and dicts of models become child tables
    (row_key holds the dict key); free-form dicts, lists of scalars and Any become JSON text columns.
    """
    plan = Plan("runs")
    _fill(plan, model, (), "", 0, True)
    return plan


def all_plans(plan: Plan) -> list[Plan]:
    out, stack = [], [plan]
    while stack:
        p = stack.pop()
        out.append(p)
        stack += [c for _, _, c in p.children]
    return out


def _meta(plan: Plan) -> list[tuple[str, str]]:
    if plan.table == "runs":
        return []
    return [("run_id", "VARCHAR"), ("row_path", "VARCHAR"), ("parent_path", "VARCHAR")] + (
        [("row_key", "VARCHAR")] if plan.keyed else [("row_idx", "BIGINT")])


def _get(obj: Any, attrs: tuple[str, ...]) -> Any:
    for a in attrs:
        if obj is None:
            return None
        obj = getattr(obj, a, None)
    return obj


def _json_text(value: Any) -> str | None:
    """A structured value as the JSON text of its column (None stays NULL)."""
    if value is None:
        return None
    from pydantic_core import to_json

    return to_json(value).decode()


def _values(p: Plan, obj: Any) -> tuple:
    """The plan's column values of obj: one C-level attrgetter call, or step by step where a nested model is None."""
    if p.getter is None:
        names = [".".join(a) for a, _, _, _ in p.columns]
        p.getter = (operator.attrgetter(*names) if len(names) > 1 else
                                    (lambda o, n=names[0]: (operator.attrgetter(n)(o),)) if names else (lambda o: ()),
                                    [i for i, c in enumerate(p.columns) if c[3]])
    get, json_cols = p.getter
    try:
        values = get(obj)
    except AttributeError:
        values = tuple(_get(obj, a) for a, _, _, _ in p.columns)
    if json_cols:
        values = list(values)
        for i in json_cols:
            values[i] = _json_text(values[i])
        values = tuple(values)
    return values


def rows_of(results: BaseModel, plan: Plan) -> dict[str, list[tuple]]:
    """Rows per table for one run, in each table's column order (meta columns first)."""
    out: dict[str, list[tuple]] = {}
    run_id = results.run_id
    stack: list[tuple[Plan, Any, tuple, str]] = [(plan, results, (), "")]
    while stack:
        p, obj, meta, path = stack.pop()
        out.setdefault(p.table, []).append(meta + _values(p, obj))
        for attrs, kind, child in p.children:
            value = _get(obj, attrs)
            if value is None:
                continue
            where = (path + "." if path else "") + ".".join(attrs)
            if kind == "one":
                stack.append((child, value, (run_id, where, path or None) + ((None,) if child.keyed else (0,)), where))
            elif kind == "list":
                stack += [(child, v, (run_id, f"{where}[{i}]", path or None, i), f"{where}[{i}]")
                          for i, v in enumerate(value)]
            else:
                stack += [(child, v, (run_id, f"{where}[{k!r}]", path or None, str(k)), f"{where}[{k!r}]")
                          for k, v in value.items()]
    return out


# --- the database ----------------------------------------------------------------------------------
SUBMISSIONS = [("run_id", "VARCHAR PRIMARY KEY"), ("content_sha256", "VARCHAR"), ("bytes_sha256", "VARCHAR"),
               ("size_bytes", "BIGINT"), ("source_path", "VARCHAR"), ("original_schema_version", "BIGINT"),
               ("collected_utc", "VARCHAR"), ("warnings", "VARCHAR"), ("raw", "BLOB")]


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
        con.execute("ROLLBACK")
        raise


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect(db_path: Path, *, read_only: bool = False):
    """A DuckDB connection, or CollectError naming the file (missing, locked by another collect, not DuckDB)."""
    import duckdb

    if read_only and not Path(db_path).is_file():
        raise CollectError(f"{db_path}: no such database (run `feedtax collect` first)")
    try:
        return duckdb.connect(str(db_path), read_only=read_only)
    except duckdb.Error as exc:
        raise CollectError(f"{db_path}: cannot open the database: {str(exc).splitlines()[0]}") from None


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


def _insert(con, table: str, cols: list[tuple[str, str]], rows: list[tuple]) -> None:
    import pyarrow as pa

    if not rows:
        return
    columns = list(zip(*rows, strict=True))
    arrays = [pa.array(list(v), type=getattr(pa, _ARROW[t.split()[0]])())
              for v, (_, t) in zip(columns, cols, strict=True)]
    batch = pa.Table.from_arrays(arrays, names=[c for c, _ in cols])
    con.register("_feedtax_batch", batch)
    try:
        con.execute(f"INSERT INTO {_q(table)} BY NAME SELECT * FROM _feedtax_batch")
    finally:
        con.unregister("_feedtax_batch")


@dataclass
class Prepared:
    """A validated submission reduced to what is inserted: its rows per table and the submissions row."""

    path: Path
    run_id: str
    rows: dict[str, list[tuple]]
    submission: tuple
    content_sha256: str
    warnings: list[str]


def write_batch(con, plan: Plan, batch: list[Prepared]) -> None:
    """Insert a batch of submissions in one transaction: all of it or none of it."""
    plans = {p.table: p for p in all_plans(plan)}
    tables: dict[str, list[tuple]] = {t: [] for t in [*plans, *EXTRA_TABLES]}
    stamp = now_utc()
    for item in batch:
        for t, rows in item.rows.items():
            tables[t] += rows
    subs = [item.submission[:6] + (stamp,) + item.submission[7:] for item in batch]
    con.execute("BEGIN TRANSACTION")
    try:
        _insert(con, "submissions", [(c, t) for c, t in SUBMISSIONS], subs)
        for t, rows in tables.items():
            p = plans.get(t)
            _insert(con, t, EXTRA_TABLES[t] if p is None else _meta(p) + [(col, typ) for _, col, typ, _ in p.columns],
                    rows)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def table_rows(con) -> dict[str, int]:
    """Row count of every table in the database."""
    tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY 1")
    names = [r[0] for r in tables.fetchall()]
    return {n: con.execute(f"SELECT count(*) FROM {_q(n)}").fetchone()[0] for n in names}
