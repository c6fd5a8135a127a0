"""Intake: one submitted file, from bytes on disk to a validated `Results`, or the reason it is refused.

Every file is size-checked before it is read, depth-checked before it is parsed, parsed as plain
JSON (never executed or unpickled), migrated to this schema version, validated with the pydantic
`Results` model and checked against the physical plausibility bounds each metric declares on its results
field (`_rule`).
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from feedtax.classroom.submit import RUN_ID_PATTERN
from feedtax.results import migrations
from feedtax.results.lab import MAX_LAB_BYTES, LabFileError, LabRecord, parse_lab
from feedtax.results.metrics import metrics_by_name
from feedtax.results.schema import SCHEMA_VERSION, Results

# --- limits (documented in docs/instructors.md) --------------------------------------------------
# 32 MiB is far above any real submission and keeps one hostile file from exhausting memory.
# Checked before reading.
MAX_SUBMISSION_BYTES = 32 << 20
# 64 levels allow any future section while staying far below Python's recursion limit, so the parser
# cannot be driven into a RecursionError. Checked before parsing, without recursion (bracket
# counting outside strings).
MAX_JSON_DEPTH = 64
INT64 = (-(1 << 63), (1 << 63) - 1)  # DuckDB BIGINT: a larger integer cannot be stored


class Reject(Exception):
    """A submission refused: its reject kind (docs/instructors.md lists them), the reason, and its run_id if known."""

    def __init__(self, kind: str, reason: str, run_id: str | None = None):
        super().__init__(reason)
        self.kind, self.reason, self.run_id = kind, reason, run_id


# --- reading and parsing, hostile-input first ------------------------------------------------------

def read_limited(path: Path, limit: int | None = None) -> bytes:
    """The file's bytes, refusing non-regular files and anything over `limit` (MAX_SUBMISSION_BYTES) unread."""
    limit = MAX_SUBMISSION_BYTES if limit is None else limit
    try:
        st = os.stat(path)
    except OSError as exc:
        raise Reject("unreadable", f"cannot stat: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise Reject("not_a_file", "not a regular file (a directory, device or pipe)")
    if st.st_size > limit:
        raise Reject("too_large", f"{st.st_size:,} bytes: over the {limit:,}-byte limit for a submission")
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)  # the file may have grown since stat
    except OSError as exc:
        raise Reject("unreadable", f"cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise Reject("too_large", f"over the {limit:,}-byte limit for a submission")
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
        raise Reject("empty", "empty file" if not data else "only whitespace")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Reject("not_utf8", f"not UTF-8 text (byte {exc.start}): not a results.json") from None
    data = data.removeprefix(b"\xef\xbb\xbf")
    deepest, still_open = json_depth(data)
    if deepest > MAX_JSON_DEPTH:
        raise Reject("too_deep", f"nested {deepest} levels deep: over the limit of {MAX_JSON_DEPTH}")
    try:
        doc = from_json(data, allow_inf_nan=True)
    except ValueError as exc:
        msg = str(exc)
        if still_open > 0 or msg.startswith("EOF while parsing"):
            raise Reject("truncated", f"ends before the JSON is complete (at byte {len(data):,}; "
                                      f"{max(still_open, 0)} bracket(s) unclosed): "
                                      "truncated or still being written") from None
        raise Reject("not_json", f"not JSON: {msg}") from None
    if not isinstance(doc, dict):
        raise Reject("wrong_top_level_type", f"top level is a JSON {_json_type(doc)}, expected an object")
    return doc


def _json_type(x: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(x), "null")


def read_lab(path: Path) -> tuple[LabRecord, bytes]:
    """A submitted lab record (<run_id>.lab.json) and its bytes, read with its own size limit and validated as
    every lab.json is; Reject kind `lab_invalid` with the reason otherwise."""
    try:
        data = read_limited(path, MAX_LAB_BYTES)
        return parse_lab(data, str(path)), data
    except Reject as r:
        raise Reject("lab_invalid", f"lab record: {r.reason}") from None
    except LabFileError as exc:
        raise Reject("lab_invalid", str(exc).removeprefix(f"{path}: ")) from None


# --- schema versions ------------------------------------------------------------------------------
def migrate(doc: dict) -> tuple[dict, int]:
    """The document at SCHEMA_VERSION and the version it came in (feedtax.results.migrations, as every reader);
    unknown or unmigratable versions refused."""
    try:
        return migrations.migrate(doc)
    except migrations.MigrationError as exc:
        raise Reject("unknown_schema_version", str(exc)) from None


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
            raise Reject("missing_section", f"missing required section(s): {', '.join(missing)}", run_id) from None
        where = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'top level'}: {e['msg']}" for e in errors[:3])
        raise Reject("schema", f"{where} ({len(errors)} problem(s) against schema {SCHEMA_VERSION})", run_id) from None
    if not RUN_ID_PATTERN.match(res.run_id):
        raise Reject("bad_run_id", f"run_id {res.run_id[:60]!r} is not 1-128 letters, digits, '.', '_' or '-'")
    for name in REQUIRED_NONEMPTY:
        if not getattr(res, name):
            raise Reject("missing_section", f"section {name} is empty: no measurements to collect", res.run_id)
    try:
        from datetime import datetime

        datetime.fromisoformat(res.created_utc)
    except ValueError:
        raise Reject("schema", f"created_utc {res.created_utc[:40]!r} is not an ISO 8601 time", res.run_id) from None
    non_finite, problems = check_numbers(doc)
    for kind, found in (("non_finite", non_finite), ("implausible", problems)):
        if found:
            more = f" (+{len(found) - 3} more)" if len(found) > 3 else ""
            raise Reject(kind, "; ".join(found[:3]) + more, res.run_id)
    return res


_DIST_KEYS = frozenset(("median", "q1", "q3", "min", "max", "mean", "stdev", "n"))


@functools.cache
def _rule(name: str) -> tuple[float, float, str] | None:
    """(low, high, why) bounding every number named `name`, or None: the bounds its results field declares
    (vocabulary.Metric), applied wherever the name appears in a submission."""
    metric = metrics_by_name().get(name)
    if metric is None or metric.low is None or metric.high is None:
        return None
    return metric.low, metric.high, metric.why


def _path(node: tuple | None) -> str:
    parts = []
    while node is not None:
        node, key = node
        parts.append(f"[{key}]" if type(key) is int else f".{key}")
    return "".join(reversed(parts)).lstrip(".")


def check_numbers(doc: dict) -> tuple[list[str], list[str]]:
    """(non-finite numbers, values outside their declared bounds or the 64-bit range or inconsistent
    distributions), by path.

    An iterative walk over every number, so nesting cannot exhaust the stack; paths are only spelled out for problems.
    """
    bad: list[str] = []
    problems: list[str] = []
    lo64, hi64 = INT64

    def number(node: tuple, name: str, v: float | int) -> None:
        if type(v) is float and v - v != 0:  # NaN or +-inf
            spelled = "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
            bad.append(f"{_path(node)} is {spelled}: "
                       "not a finite number (a measurement that failed or divided by zero)")
        elif type(v) is int and not lo64 <= v <= hi64:
            problems.append(f"{_path(node)} = {str(v)[:20]}... "
                            "is out of the 64-bit range: no count or size is that large")
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
