"""A results file read as hostile input, for every reader (results.load: report, compare, project, lab; the class
collection): size and type checked before reading, plain JSON parsed by a parser with its own nesting limit, depth
and duplicate keys checked, migrated, validated strictly, and every number checked against its field's declared bounds
(results.plausible).

Each refusal is an `Invalid` with its kind (docs/instructors.md lists them) and a one-line reason.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from feedtax.results import migrations
from feedtax.results.plausible import Survey, inconsistent, survey
from feedtax.results.schema import SCHEMA_VERSION, Results

# --- limits (documented in docs/instructors.md) ------------------------------------------------------------------
# 32 MiB is far above any real results file and keeps one hostile file from exhausting memory. Checked before reading.
MAX_RESULTS_BYTES = 32 << 20
# 64 levels allow any future section while staying far below Python's recursion limit, so no parser can be driven
# into a RecursionError. The parser (pydantic_core) itself stops at about 200 levels without recursing in Python; the
# limit is checked on what it parsed (or, for text it refuses, by counting brackets outside strings).
MAX_JSON_DEPTH = 64
# The one run-id rule: a run_id names its submission file (<run_id>.json) and keys its rows. \A..\Z, not ^..$: `$`
# also matches before a trailing newline, so "run\n" would pass a .match().
RUN_ID_PATTERN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
BOM = b"\xef\xbb\xbf"
# what each kind of refusal means, in the words docs/instructors.md uses
KINDS = {
    "unreadable": "no such file, or no permission", "not_a_file": "a directory, device or pipe named as a file",
    "too_large": f"over {MAX_RESULTS_BYTES >> 20} MiB", "empty": "zero bytes or only whitespace",
    "not_utf8": "binary data", "too_deep": f"nested more than {MAX_JSON_DEPTH} levels",
    "duplicate_key": "a key twice in one JSON object", "truncated": "the JSON ends early",
    "not_json": "anything else the JSON parser refuses", "wrong_top_level_type": "not a JSON object",
    "unknown_schema_version": "no schema_version, or one this feedtax cannot read",
    "missing_section": "a required section absent", "schema": "a field of the wrong type or value",
    "bad_run_id": "a run_id that cannot name a file", "non_finite": "NaN or Infinity",
    "implausible": "a number outside its field's bounds, or a derived field that disagrees with its sources",
}


class Invalid(ValueError):
    """A results file refused: its kind (one of KINDS), the one-line reason, and its run_id where known."""

    def __init__(self, kind: str, reason: str, run_id: str | None = None):
        super().__init__(reason)
        self.kind, self.reason, self.run_id = kind, reason, run_id


def run_key(run_id: str) -> str:
    """A run_id as runs are compared: case-folded and stripped ("Run-1" and "run-1" are one run)."""
    return run_id.strip().casefold()


# --- reading and parsing, hostile-input first ----------------------------------------------------------------------

def read_limited(path: Path, limit: int | None = None) -> bytes:
    """The file's bytes: a FIFO, device, directory or anything over `limit` (MAX_RESULTS_BYTES) refused unread.

    stat first (a pipe or /dev/zero is refused without being opened), then opened non-blocking and checked again
    on the open file, so a file swapped for a pipe in between cannot block the reader."""
    limit = MAX_RESULTS_BYTES if limit is None else limit
    try:
        st = os.stat(path)
    except OSError as exc:
        raise Invalid("unreadable", f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise Invalid("not_a_file", "not a regular file (a directory, device or pipe): not read")
    if st.st_size > limit:
        raise Invalid("too_large", f"{st.st_size:,} bytes: over the {limit:,}-byte limit for a results file")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise Invalid("unreadable", f"cannot read: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Invalid("not_a_file", "not a regular file (a directory, device or pipe): not read")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)  # the file may have grown since stat
    except OSError as exc:
        raise Invalid("unreadable", f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise Invalid("too_large", f"over the {limit:,}-byte limit for a results file")
    return data


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def _scan(data: bytes) -> tuple[int, int, int]:
    """(deepest nesting, nesting still open at the end, keys) of JSON text, counted without recursion or parsing.

    Brackets and colons inside strings do not count; outside strings every colon ends a key. Without a backslash
    before a quote every quote delimits a string, so string interiors are found vectorized; otherwise strings are
    removed by a regex first."""
    import numpy as np

    if b'\\"' in data:
        data = _STRING.sub(b"", data)
    a = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(a == ord('"'))
    opens = (a == ord("[")) | (a == ord("{"))
    pos = np.flatnonzero(opens | (a == ord("]")) | (a == ord("}")))
    colons = np.flatnonzero(a == ord(":"))
    if quotes.size:  # a bracket or colon is inside a string when an odd number of quotes precede it
        pos = pos[np.searchsorted(quotes, pos) % 2 == 0]
        colons = colons[np.searchsorted(quotes, colons) % 2 == 0]
    if pos.size == 0:
        return 0, 0, int(colons.size)
    depth = np.cumsum(np.where(opens[pos], 1, -1))
    return int(depth.max()), int(depth[-1]), int(colons.size)


def json_depth(data: bytes) -> tuple[int, int]:
    """(deepest nesting, nesting still open at the end) of JSON text, counted without recursion or parsing."""
    return _scan(data)[:2]


def _text_keys(data: bytes) -> int:
    """How many keys JSON text writes, all levels: its colons outside strings (in JSON only a key's colon is)."""
    import numpy as np

    if b'\\"' in data:  # a quote inside a string: remove the strings, then every colon left is a key's
        return _STRING.sub(b"", data).count(b":")
    a = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(a == ord('"'))
    colons = np.flatnonzero(a == ord(":"))
    return int(np.count_nonzero(np.searchsorted(quotes, colons) % 2 == 0))


def _first_duplicate(data: bytes) -> str:
    """The first key found twice in one object (a slower parse, run only when the key counts disagree)."""
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict:
        keys = [k for k, _ in items]
        if len(set(keys)) < len(keys) and not found:
            found.append(next(k for i, k in enumerate(keys) if k in keys[:i]))
        return dict(items)

    json.loads(data, object_pairs_hook=pairs)
    return found[0] if found else "?"


def parse(data: bytes) -> dict:
    """A JSON object from bytes (a UTF-8 BOM is skipped); empty, non-UTF-8, too deep, duplicate-key, truncated or
    non-object input refused. NaN, Infinity, 1e999 and huge integers parse here and are refused by check_numbers."""
    return _parse(data)[0]


def _parse(data: bytes) -> tuple[dict, Survey]:
    """parse, and the survey of the document's numbers, keys and depth that checked it (results.plausible).

    orjson parses plain JSON (the common case, and the fastest); what it refuses is parsed again by pydantic_core, which
    also reads NaN, Infinity and huge numbers (for check_numbers to name). Both refuse nesting past their own limit
    without recursing in Python; nesting past MAX_JSON_DEPTH is refused from the survey, and a text the parsers refuse
    is scanned (_scan) to say why."""
    import orjson
    from pydantic_core import from_json

    data = data.removeprefix(BOM)
    if not data.strip():
        raise Invalid("empty", "empty file" if not data else "only whitespace")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid("not_utf8", f"not UTF-8 text (byte {exc.start}): not a results.json") from None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        doc = None
    try:
        doc = from_json(data, allow_inf_nan=True) if doc is None else doc
    except ValueError as exc:
        deepest, still_open, _ = _scan(data)
        _refuse_depth(deepest)
        msg = str(exc)
        if still_open > 0 or msg.startswith("EOF while parsing"):
            raise Invalid("truncated", f"ends before the JSON is complete (at byte {len(data):,}; "
                                       f"{max(still_open, 0)} bracket(s) unclosed): "
                                       "truncated or still being written") from None
        raise Invalid("not_json", f"not JSON: {msg}") from None
    if not isinstance(doc, dict):
        _refuse_depth(_scan(data)[0])
        raise Invalid("wrong_top_level_type", f"top level is a JSON {_json_type(doc)}, expected an object")
    found = survey(doc)
    _refuse_depth(found.depth)
    if found.keys != _text_keys(data):
        raise Invalid("duplicate_key", f"the key {_first_duplicate(data)[:60]!r} appears twice in one object: "
                                       "which one counts is undefined", _run_id(doc))
    return doc, found


def _refuse_depth(deepest: int) -> None:
    if deepest > MAX_JSON_DEPTH:
        raise Invalid("too_deep", f"nested {deepest} levels deep: over the limit of {MAX_JSON_DEPTH}")


def _json_type(x: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(x), "null")


def _run_id(doc: dict) -> str | None:
    return doc.get("run_id") if isinstance(doc.get("run_id"), str) else None


def migrate(doc: dict) -> tuple[dict, int]:
    """The document at SCHEMA_VERSION and the version it came in (feedtax.results.migrations); unknown or
    unmigratable versions refused."""
    try:
        return migrations.migrate(doc)
    except migrations.MigrationError as exc:
        raise Invalid("unknown_schema_version", str(exc), _run_id(doc)) from None


# --- validation ------------------------------------------------------------------------------------------------------
_BOUND_ERRORS = frozenset(("greater_than", "greater_than_equal", "less_than", "less_than_equal"))


def _schema_problem(exc: ValidationError, run_id: str | None) -> Invalid:
    """The pydantic errors as one refusal: a missing section, numbers outside their declared bounds, or the rest."""
    errors = exc.errors()
    missing = [str(e["loc"][0]) for e in errors if e["type"] == "missing" and len(e["loc"]) == 1]
    if missing:
        return Invalid("missing_section", f"missing required section(s): {', '.join(missing)}", run_id)

    def where(e: dict) -> str:
        return ".".join(map(str, e["loc"])) or "top level"

    if all(e["type"] in _BOUND_ERRORS for e in errors):
        said = "; ".join(f"{where(e)} = {str(e['input'])[:24]}: {e['msg']}" for e in errors[:3])
        return Invalid("implausible", said + (f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""), run_id)
    said = "; ".join(f"{where(e)}: {e['msg']}" for e in errors[:3])
    return Invalid("schema", f"{said} ({len(errors)} problem(s) against schema {SCHEMA_VERSION})", run_id)


def _refuse(kind: str, found: list[str], run_id: str | None) -> None:
    if found:
        more = f" (+{len(found) - 3} more)" if len(found) > 3 else ""
        raise Invalid(kind, "; ".join(found[:3]) + more, run_id)


def validate(doc: dict, data: bytes | None = None, numbers: Survey | None = None) -> Results:
    """The pydantic model of a migrated document, or Invalid naming the first problems.

    Non-finite numbers are looked for first (whatever field they are in; `numbers`, the parse's survey of this very
    document, when it has one). Validation is strict (a number written as a string is refused, not coerced, so the
    checks on the parsed document see every number the model holds); `data`, the document's own JSON bytes when it
    needed no migration, is validated directly, which is faster. Then the run_id rule, the numbers' declared bounds
    and the derived fields (results.plausible)."""
    run_id = _run_id(doc)
    numbers = numbers or survey(doc)
    non_finite, problems = numbers.non_finite, numbers.problems
    _refuse("non_finite", non_finite, run_id)
    try:
        res = Results.model_validate_json(data if data is not None else json.dumps(doc), strict=True)
    except ValidationError as exc:
        raise _schema_problem(exc, run_id) from None
    if not RUN_ID_PATTERN.fullmatch(res.run_id):
        raise Invalid("bad_run_id", f"run_id {res.run_id[:60]!r} is not 1-128 letters, digits, '.', '_' or '-' "
                                    "(starting with a letter or digit)")
    try:
        datetime.fromisoformat(res.created_utc)
    except ValueError:
        raise Invalid("schema", f"created_utc {res.created_utc[:40]!r} is not an ISO 8601 time", res.run_id) from None
    _refuse("implausible", problems + inconsistent(res), res.run_id)
    return res


@dataclass
class Read:
    """A results file read and validated: the model, its bytes, the version it was written with, and the top-level
    sections this feedtax does not know (validation ignores them)."""

    results: Results
    data: bytes
    version: int
    unknown: list[str]


def from_bytes(data: bytes) -> Read:
    """A results file's bytes parsed, migrated and validated; Invalid otherwise."""
    text = data.removeprefix(BOM)
    doc, found = _parse(text)
    doc, version = migrate(doc)
    current = version == SCHEMA_VERSION  # not migrated: the parse's bytes and survey are this document's
    res = validate(doc, text if current else None, found if current else None)
    return Read(res, data, version, sorted(set(doc) - set(Results.model_fields)))


def read(path: Path, limit: int | None = None) -> Read:
    """The results file at path, read within the limits, parsed, migrated and validated; Invalid otherwise."""
    return from_bytes(read_limited(path, limit))


__all__ = ["KINDS", "MAX_JSON_DEPTH", "MAX_RESULTS_BYTES", "RUN_ID_PATTERN", "Invalid", "Read", "from_bytes",
           "json_depth", "migrate", "parse", "read", "read_limited", "run_key", "validate"]
