"""Class collection: validate a class's results.json submissions and ingest them into DuckDB.

Every file is size-checked before it is read, depth-checked before it is parsed, parsed as plain
JSON (never executed or unpickled), migrated to this schema version, validated with the pydantic
`Results` model and checked against physical plausibility bounds. Good runs are ingested once,
keyed by run_id; bad ones are named with a reason. The DuckDB layout is derived from the `Results`
model itself (see `table_plans`), so a section added to the model gets its table with no code here.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import operator
import os
import re
import stat
import time
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel, ValidationError

from feedtax.results.io import now_utc
from feedtax.results.schema import SCHEMA_VERSION, Results

# --- limits (documented in docs/instructors.md) --------------------------------------------------
# A ci results.json is ~75 kB and a full run with loader timelines a few MB: 32 MiB is far above
# any real submission and keeps one hostile file from exhausting memory. Checked before reading.
MAX_SUBMISSION_BYTES = 32 << 20
# Real files nest about 6 levels; 64 allows any future section while staying far below Python's
# recursion limit, so the parser cannot be driven into a RecursionError. Checked before parsing,
# without recursion (bracket counting outside strings).
MAX_JSON_DEPTH = 64
INT64 = (-(1 << 63), (1 << 63) - 1)  # DuckDB BIGINT: a larger integer cannot be stored
BATCH_FILES = 200  # files per insert transaction; a failing batch is retried file by file

TABLE_NAMES = {"host": "hosts"}  # top-level section -> table, where the plural reads better
META_COLUMNS = ("run_id", "row_path", "parent_path", "row_key", "row_idx")

RejectKind = Literal[
    "missing", "not_a_file", "unreadable", "too_large", "empty", "not_utf8", "too_deep", "truncated",
    "not_json", "non_finite", "wrong_top_level_type", "unknown_schema_version", "missing_section",
    "schema", "bad_run_id", "implausible", "conflict", "database",
]

# --- physical plausibility bounds ----------------------------------------------------------------
# (pattern on a field's name, low, high, why). Applied to every number of that name anywhere in a
# submission (a Distribution's min..max under the name), so later sections are covered by naming.
PLAUSIBLE: list[tuple[re.Pattern, float, float, str]] = [(re.compile(p), lo, hi, why) for p, lo, hi, why in [
    (r"samples_per_s", 0, 1e9, "1e9 samples/s of even a 100-byte sample is 100 GB/s, beyond one host's memory bandwidth"),
    (r"mb_per_s", 0, 1e7, "10 TB/s (1e7 MB/s) is above the HBM of the fastest accelerator (~5 TB/s) and any host's DRAM"),
    (r"iops", 0, 1e8, "1e8 IOPS is ~30 of today's fastest NVMe drives at once"),
    (r"(^|_)bytes_per_(sample|frame)$", 1e-9, 1e10, "a sample has bytes, and 10 GB is not one sample"),
    (r"compression_ratio$", 1e-9, 1e6, "a ratio of sizes is positive; 1e6x is beyond any real codec on this data"),
    (r"(^|_)(feeding_tax|au|mfu|gpu_mfu|accelerator_utilization)$", 0, 1, "a fraction of time or of peak"),
    (r"(^|_)fraction(_|$)", 0, 1, "a fraction"),
    (r"_pct(_mean|_median)?$", 0, 100, "a percentage"),
    (r"error_pp$", -100, 100, "a difference of two fractions, in percentage points"),
    (r"(^|_)(latency_p\d+|elapsed|wall|wait|compute|step|window|duration|jitter|period)_s$", 0, 1e9,
     "a duration is not negative (1e9 s is 30 years)"),
    (r"_w(_mean)?$", 0, 1e5, "one host or accelerator draws well under 100 kW"),
    (r"_j$", 0, 1e13, "energy is not negative; 1e13 J is 100 kW for 3 years"),
    (r"^memory_total_bytes$", 1, 1e14, "100 TB of RAM is beyond any single host"),
    (r"(^|_)bytes(_|$)", 0, 1e18, "a byte count is not negative (1e18 is an exabyte)"),
    (r"^(n|n_samples|n_shards|steps|readings|rand_read_ops|threads|batch_size|num_workers)$", 0, 1e12, "a count is not negative"),
    (r"^cpu_(logical|physical|affinity)_cores$", 1, 1e5, "a host has at least one and fewer than 100k cores"),
    (r"_mhz(_median)?$", 0, 1e5, "100 GHz is beyond any clock"),
]]
_DIST_KEYS = frozenset(("median", "q1", "q3", "min", "max", "mean", "stdev", "n"))
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # also used as a file name by submit


class CollectError(RuntimeError):
    """The collection cannot run at all (database unopenable or locked): names the file and why."""


class Accepted(BaseModel):
    path: str
    run_id: str
    warnings: list[str] = []


class Duplicate(BaseModel):
    """Same run_id and same content as a run already collected: nothing changes."""

    path: str
    run_id: str
    collected_from: str


class Rejected(BaseModel):
    path: str
    kind: str
    reason: str
    run_id: str | None = None


class CollectReport(BaseModel):
    db_path: str
    accepted: list[Accepted] = []
    duplicates: list[Duplicate] = []
    conflicts: list[Rejected] = []
    rejected: list[Rejected] = []
    elapsed_s: float = 0.0
    table_rows: dict[str, int] = {}

    @property
    def ok(self) -> bool:
        """True when nothing was rejected (duplicates are fine: collecting twice is allowed)."""
        return not self.rejected and not self.conflicts


class _Reject(Exception):
    def __init__(self, kind: str, reason: str, run_id: str | None = None):
        super().__init__(reason)
        self.kind, self.reason, self.run_id = kind, reason, run_id


# --- reading and parsing, hostile-input first ------------------------------------------------------

def submission_files(paths: Iterable[Path | str]) -> tuple[list[Path], list[Rejected]]:
    """Files named, plus *.json under directories named (symlinked directories not followed); in order, once each."""
    files: dict[str, Path] = {}
    missing = []
    for p in map(Path, paths):
        if p.is_dir():
            for root, dirs, names in os.walk(p):
                dirs.sort()
                for name in sorted(names):
                    if name.lower().endswith(".json"):
                        q = Path(root) / name
                        files.setdefault(os.path.realpath(q), q)
        elif p.exists() or p.is_symlink():
            files.setdefault(os.path.realpath(p), p)
        else:
            missing.append(Rejected(path=str(p), kind="missing", reason="no such file or directory"))
    return list(files.values()), missing


def read_limited(path: Path, limit: int | None = None) -> bytes:
    """The file's bytes, refusing non-regular files and anything over `limit` (MAX_SUBMISSION_BYTES) before reading it."""
    limit = MAX_SUBMISSION_BYTES if limit is None else limit
    try:
        st = os.stat(path)
    except OSError as exc:
        raise _Reject("unreadable", f"cannot stat: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise _Reject("not_a_file", "not a regular file (a directory, device or pipe)")
    if st.st_size > limit:
        raise _Reject("too_large", f"{st.st_size:,} bytes: over the {limit:,}-byte limit for a submission")
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)  # the file may have grown since stat
    except OSError as exc:
        raise _Reject("unreadable", f"cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise _Reject("too_large", f"over the {limit:,}-byte limit for a submission")
    return data


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def json_depth(data: bytes) -> tuple[int, int]:
    """(deepest nesting, nesting still open at the end) of JSON text, counted without recursion or parsing.

    Brackets inside strings do not count. Without a backslash before a quote every quote delimits a
    string, so string interiors are found vectorized; otherwise strings are removed by a regex first.
    """
    import numpy as np

    if b'\\"' in data:
        data = _STRING.sub(b"", data)
    a = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(a == ord('"'))
    opens = (a == ord("[")) | (a == ord("{"))
    pos = np.flatnonzero(opens | (a == ord("]")) | (a == ord("}")))
    if quotes.size:  # a bracket is inside a string when an odd number of quotes precede it
        pos = pos[np.searchsorted(quotes, pos) % 2 == 0]
    if pos.size == 0:
        return 0, 0
    depth = np.cumsum(np.where(opens[pos], 1, -1))
    return int(depth.max()), int(depth[-1])


def parse(data: bytes) -> dict:
    """A JSON object from bytes; empty, non-UTF-8, too deep, truncated or non-object input refused.

    NaN, Infinity, 1e999 and huge integers parse here and are refused by check_numbers, by path.
    """
    from pydantic_core import from_json

    if not data.strip():
        raise _Reject("empty", "empty file" if not data else "only whitespace")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Reject("not_utf8", f"not UTF-8 text (byte {exc.start}): not a results.json") from None
    data = data.removeprefix(b"\xef\xbb\xbf")
    deepest, still_open = json_depth(data)
    if deepest > MAX_JSON_DEPTH:
        raise _Reject("too_deep", f"nested {deepest} levels deep: over the limit of {MAX_JSON_DEPTH}")
    try:
        doc = from_json(data, allow_inf_nan=True)
    except ValueError as exc:
        msg = str(exc)
        if still_open > 0 or msg.startswith("EOF while parsing"):
            raise _Reject("truncated", f"ends before the JSON is complete (at byte {len(data):,}; "
                                       f"{max(still_open, 0)} bracket(s) unclosed): truncated or still being written") from None
        raise _Reject("not_json", f"not JSON: {msg}") from None
    if not isinstance(doc, dict):
        raise _Reject("wrong_top_level_type", f"top level is a JSON {_json_type(doc)}, expected an object")
    return doc


def _json_type(x: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(x), "null")


# --- schema versions ------------------------------------------------------------------------------
# MIGRATIONS[v] turns a version-v document into version v+1 (plain dict in, plain dict out), so an
# old submission is chained up to SCHEMA_VERSION before validation. Only version 1 exists so far:
# a future schema 2 adds MIGRATIONS[1] = _v1_to_v2 here and the older files keep being collectable.
MIGRATIONS: dict[int, Callable[[dict], dict]] = {}


def migrate(doc: dict) -> tuple[dict, int]:
    """The document at SCHEMA_VERSION and the version it came in; unknown or unmigratable versions refused."""
    if "schema_version" not in doc:
        raise _Reject("unknown_schema_version", "no schema_version: not a feedtax results file")
    version = doc["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise _Reject("unknown_schema_version", f"schema_version is {json.dumps(version)[:40]}, expected an integer")
    if version > SCHEMA_VERSION:
        raise _Reject("unknown_schema_version", f"schema_version {version} is newer than this feedtax reads "
                                                f"({SCHEMA_VERSION}): update feedtax to collect it")
    original, v = version, version
    while v < SCHEMA_VERSION:
        step = MIGRATIONS.get(v)
        if step is None:
            raise _Reject("unknown_schema_version", f"schema_version {original} is older than any this feedtax "
                                                    f"migrates (from: {', '.join(map(str, sorted(MIGRATIONS))) or 'none'})")
        doc = step(dict(doc))
        v += 1
        doc["schema_version"] = v
    return doc, original


# --- validation -----------------------------------------------------------------------------------
REQUIRED_NONEMPTY = ("formats",)  # a submission without format measurements has nothing to compare


def validate(doc: dict, data: bytes | None = None) -> Results:
    """The pydantic model of a migrated document, or a reason naming the first problems.

    Validation is strict (a number written as a string is refused, not coerced, so the plausibility
    check on the parsed document sees every number the model holds); `data`, the document's own
    JSON bytes when it needed no migration, is validated directly, which is faster.
    """
    run_id = doc.get("run_id") if isinstance(doc.get("run_id"), str) else None
    try:
        res = Results.model_validate_json(data if data is not None else json.dumps(doc), strict=True)
    except ValidationError as exc:
        errors = exc.errors()
        missing = [str(e["loc"][0]) for e in errors if e["type"] == "missing" and len(e["loc"]) == 1]
        if missing:
            raise _Reject("missing_section", f"missing required section(s): {', '.join(missing)}", run_id) from None
        where = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'top level'}: {e['msg']}" for e in errors[:3])
        raise _Reject("schema", f"{where} ({len(errors)} problem(s) against schema {SCHEMA_VERSION})", run_id) from None
    if not _RUN_ID.match(res.run_id):
        raise _Reject("bad_run_id", f"run_id {res.run_id[:60]!r} is not 1-128 letters, digits, '.', '_' or '-'")
    for name in REQUIRED_NONEMPTY:
        if not getattr(res, name):
            raise _Reject("missing_section", f"section {name} is empty: no measurements to collect", res.run_id)
    try:
        from datetime import datetime

        datetime.fromisoformat(res.created_utc)
    except ValueError:
        raise _Reject("schema", f"created_utc {res.created_utc[:40]!r} is not an ISO 8601 time", res.run_id) from None
    non_finite, problems = check_numbers(doc)
    for kind, found in (("non_finite", non_finite), ("implausible", problems)):
        if found:
            more = f" (+{len(found) - 3} more)" if len(found) > 3 else ""
            raise _Reject(kind, "; ".join(found[:3]) + more, res.run_id)
    return res


_RULE_CACHE: dict[str, tuple[float, float, str] | None] = {}


def _rule(name: str) -> tuple[float, float, str] | None:
    if name not in _RULE_CACHE:
        _RULE_CACHE[name] = next(((lo, hi, why) for pattern, lo, hi, why in PLAUSIBLE if pattern.search(name)), None)
    return _RULE_CACHE[name]


def _path(node: tuple | None) -> str:
    parts = []
    while node is not None:
        node, key = node
        parts.append(f"[{key}]" if type(key) is int else f".{key}")
    return "".join(reversed(parts)).lstrip(".")


def check_numbers(doc: dict) -> tuple[list[str], list[str]]:
    """(non-finite numbers, values outside PLAUSIBLE or the 64-bit integer range or inconsistent distributions), by path.

    An iterative walk over every number, so nesting cannot exhaust the stack; paths are only spelled out for problems.
    """
    bad: list[str] = []
    problems: list[str] = []
    lo64, hi64 = INT64
    rules, missing = _RULE_CACHE, object()

    def number(node: tuple, name: str, v: float | int) -> None:
        if type(v) is float and v - v != 0:  # NaN or +-inf
            spelled = "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
            bad.append(f"{_path(node)} is {spelled}: not a finite number (a measurement that failed or divided by zero)")
        elif type(v) is int and not lo64 <= v <= hi64:
            problems.append(f"{_path(node)} = {str(v)[:20]}... is out of the 64-bit range: no count or size is that large")
        else:
            rule = _rule(name)
            if rule is not None and not rule[0] <= v <= rule[1]:
                problems.append(f"{_path(node)} = {v:g} is outside [{rule[0]:g}, {rule[1]:g}]: {rule[2]}")

    stack: list[tuple[tuple | None, str, Any]] = [(None, "", doc)]
    while stack:
        node, name, value = stack.pop()
        if type(value) is dict:
            if _DIST_KEYS <= value.keys():
                b, p = _distribution_problems(node, name, value)
                bad += b
                problems += p
                continue
            items = value.items()
        else:
            items = ((i, v) for i, v in enumerate(value))
        for k, v in items:
            t = type(v)
            key = k if type(k) is str else name  # list items go by the list's name
            if t is float or t is int:
                rule = rules.get(key, missing)
                if rule is missing:
                    rule = _rule(key)
                if rule is not None or (v - v != 0 if t is float else not lo64 <= v <= hi64):
                    number((node, k), key, v)
            elif t is dict or t is list:
                stack.append(((node, k), key, v))
    return sorted(bad), sorted(problems)


def implausible(doc: dict) -> list[str]:
    """Every number problem of a document (non-finite, out of bounds, inconsistent), by path."""
    bad, problems = check_numbers(doc)
    return bad + problems


def _distribution_problems(node: tuple | None, name: str, d: dict) -> tuple[list[str], list[str]]:
    """(non-finite, inconsistent or out of bounds) for one Distribution: its statistics must be ordered and finite."""
    stats = [d[k] for k in ("min", "q1", "median", "q3", "max", "mean", "stdev")]
    if not all(type(x) in (int, float) for x in stats):
        return [], [f"{_path(node)}: a statistic is not a number"]
    if not all(math.isfinite(x) for x in stats):
        return [f"{_path(node)}: a statistic is NaN or infinite: not a finite number"], []
    lo_, q1, med, q3, hi_, mean, sd = stats
    out = []
    tol = 1e-9 * max(abs(lo_), abs(hi_), 1e-300)
    if not (lo_ - tol <= q1 <= med + tol and med - tol <= q3 <= hi_ + tol and q1 <= q3 + tol):
        out.append(f"{_path(node)}: min <= q1 <= median <= q3 <= max does not hold")
    if sd < 0 or not isinstance(d["n"], int) or d["n"] < 1 or not lo_ - tol <= mean <= hi_ + tol:
        out.append(f"{_path(node)}: negative stdev, n < 1 or mean outside min..max")
    rule = _rule(name)
    if rule and not (rule[0] <= lo_ and hi_ <= rule[1]):
        out.append(f"{_path(node)} spans {lo_:g}..{hi_:g}, outside [{rule[0]:g}, {rule[1]:g}]: {rule[2]}")
    return [], out


# --- the table layout, derived from the pydantic model ---------------------------------------------

@dataclass
class Plan:
    """How one model class becomes rows of one table: its columns and its child tables."""

    table: str
    keyed: bool = False  # rows come from a dict: row_key holds the key
    columns: list[tuple[tuple[str, ...], str, str, bool]] = field(default_factory=list)  # attr path, column, type, as JSON
    children: list[tuple[tuple[str, ...], str, Plan]] = field(default_factory=list)  # attr path, "one"/"list"/"dict", plan
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


def _cell(value: Any, as_json: bool) -> Any:
    if value is None:
        return None
    if as_json:
        from pydantic_core import to_json

        return to_json(value).decode()
    return value


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
            values[i] = _cell(values[i], True)
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
                stack += [(child, v, (run_id, f"{where}[{i}]", path or None, i), f"{where}[{i}]") for i, v in enumerate(value)]
            else:
                stack += [(child, v, (run_id, f"{where}[{k!r}]", path or None, str(k)), f"{where}[{k!r}]") for k, v in value.items()]
    return out


# --- the database ----------------------------------------------------------------------------------
SUBMISSIONS = [("run_id", "VARCHAR PRIMARY KEY"), ("content_sha256", "VARCHAR"), ("bytes_sha256", "VARCHAR"),
               ("size_bytes", "BIGINT"), ("source_path", "VARCHAR"), ("original_schema_version", "BIGINT"),
               ("collected_utc", "VARCHAR"), ("warnings", "VARCHAR"), ("raw", "BLOB")]


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
    for t, c in con.execute("SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'main'").fetchall():
        have.setdefault(t, set()).add(c)
    specs = [("submissions", SUBMISSIONS)] + [
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
    columns = list(zip(*rows))
    arrays = [pa.array(list(v), type=getattr(pa, _ARROW[t.split()[0]])()) for v, (_, t) in zip(columns, cols)]
    batch = pa.Table.from_arrays(arrays, names=[c for c, _ in cols])
    con.register("_feedtax_batch", batch)
    try:
        con.execute(f"INSERT INTO {_q(table)} BY NAME SELECT * FROM _feedtax_batch")
    finally:
        con.unregister("_feedtax_batch")


@dataclass
class _Prepared:
    """A validated submission reduced to what is inserted: its rows per table and the submissions row."""

    path: Path
    run_id: str
    rows: dict[str, list[tuple]]
    submission: tuple
    content_sha256: str
    warnings: list[str]


def prepare(path: Path, plan: Plan) -> _Prepared:
    """Read, parse, migrate, validate and check one file, and turn it into rows; raises _Reject with the reason."""
    data = read_limited(path)
    doc, original = migrate(parse(data))
    unknown = sorted(set(doc) - set(Results.model_fields))
    res = validate(doc, data if original == SCHEMA_VERSION else None)
    warnings = [f"sections this feedtax does not know were kept only in submissions.raw: {', '.join(unknown)[:200]}"] if unknown else []
    if original != SCHEMA_VERSION:
        warnings.append(f"migrated from schema_version {original} to {SCHEMA_VERSION}")
    content = hashlib.sha256(res.model_dump_json().encode()).hexdigest()
    submission = (res.run_id, content, hashlib.sha256(data).hexdigest(), len(data), str(path), original, None,
                  json.dumps(warnings), data)
    return _Prepared(path, res.run_id, rows_of(res, plan), submission, content, warnings)


def _write_batch(con, plan: Plan, batch: list[_Prepared]) -> None:
    """Insert a batch of submissions in one transaction: all of it or none of it."""
    plans = {p.table: p for p in all_plans(plan)}
    tables: dict[str, list[tuple]] = {t: [] for t in plans}
    stamp = now_utc()
    for item in batch:
        for t, rows in item.rows.items():
            tables[t] += rows
    subs = [item.submission[:6] + (stamp,) + item.submission[7:] for item in batch]
    con.execute("BEGIN TRANSACTION")
    try:
        _insert(con, "submissions", [(c, t) for c, t in SUBMISSIONS], subs)
        for t, rows in tables.items():
            p = plans[t]
            _insert(con, t, _meta(p) + [(col, typ) for _, col, typ, _ in p.columns], rows)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def table_rows(con) -> dict[str, int]:
    """Row count of every table in the database."""
    names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY 1").fetchall()]
    return {n: con.execute(f"SELECT count(*) FROM {_q(n)}").fetchone()[0] for n in names}


def collect(paths: Iterable[Path | str], db_path: Path, *, batch_files: int = BATCH_FILES) -> CollectReport:
    """Validate every submission and ingest the good ones into db_path, once per run_id.

    A run_id already collected with the same content is a duplicate (nothing changes); with other
    content it is a conflict (rejected, the stored run kept). Each file is all-or-nothing: inserts
    go in batches of transactions, and a batch that fails is rolled back and retried file by file.
    """
    import duckdb

    t0 = time.perf_counter()
    report = CollectReport(db_path=str(db_path))
    files, missing = submission_files(paths)
    report.rejected += missing
    plan = table_plans()
    con = connect(db_path)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # thousands of live rows make every automatic collection rescan them all: collect after each batch
    try:
        try:
            ensure_tables(con, plan)
        except duckdb.Error as exc:
            raise CollectError(f"{db_path}: cannot prepare tables: {str(exc).splitlines()[0]}") from None
        known = {r[0]: (r[1], r[2]) for r in con.execute("SELECT run_id, content_sha256, source_path FROM submissions").fetchall()}
        pending: list[_Prepared] = []

        def flush() -> None:
            if not pending:
                return
            try:
                _write_batch(con, plan, pending)
                report.accepted += [Accepted(path=str(p.path), run_id=p.run_id, warnings=p.warnings) for p in pending]
            except duckdb.Error:
                for p in pending:  # find the file that failed; the others go in one by one
                    try:
                        _write_batch(con, plan, [p])
                        report.accepted.append(Accepted(path=str(p.path), run_id=p.run_id, warnings=p.warnings))
                    except duckdb.Error as exc:
                        known.pop(p.run_id, None)
                        report.rejected.append(Rejected(path=str(p.path), kind="database", run_id=p.run_id,
                                                        reason=f"the database refused it: {str(exc).splitlines()[0]}"))
            pending.clear()
            gc.collect()

        for path in files:
            try:
                item = prepare(path, plan)
            except _Reject as r:
                report.rejected.append(Rejected(path=str(path), kind=r.kind, reason=r.reason, run_id=r.run_id))
                continue
            rid = item.run_id
            if rid in known:
                content, source = known[rid]
                if content == item.content_sha256:
                    report.duplicates.append(Duplicate(path=str(path), run_id=rid, collected_from=source))
                else:
                    report.conflicts.append(Rejected(
                        path=str(path), kind="conflict", run_id=rid,
                        reason=f"run_id {rid} was already collected from {source} with different content; kept that one"))
                continue
            known[rid] = (item.content_sha256, str(path))
            pending.append(item)
            if len(pending) >= batch_files:
                flush()
        flush()
        report.table_rows = table_rows(con)
    finally:
        con.close()
        if gc_was_enabled:
            gc.enable()
    report.elapsed_s = time.perf_counter() - t0
    return report
