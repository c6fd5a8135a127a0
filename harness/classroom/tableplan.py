"""The class store's table layout, derived from a pydantic model: one table per section of rows, nested records as
prefixed columns, free-form values as JSON text (`table_plans`), and one run's rows per table (`rows_of`).

A section added to the `Results` model gets its table with no code here; feedtax.classroom.store writes the rows.
"""

from __future__ import annotations

import operator
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from pydantic import BaseModel

from feedtax.results.schema import Results

TABLE_NAMES = {"host": "hosts"}  # top-level section -> table, where the plural reads better
META_COLUMNS = ("run_id", "row_path", "parent_path", "row_key", "row_idx")

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
