"""Reading and writing results.json: atomic, durable, stage by stage, and one loader for every reader."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from feedtax.atomic import write_atomic
from feedtax.results.migrations import MigrationError, migrate
from feedtax.results.schema import SCHEMA_VERSION, Results


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id() -> str:
    """Sortable and unique: UTC time plus random suffix."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def json_schema() -> dict:
    return Results.model_json_schema()


def save(results: Results, path: Path) -> None:
    """Write results.json atomically and durably (it is what a stopped run leaves)."""
    write_atomic(path, results.model_dump_json(indent=2).encode(), durable=True)


class ResultsFileError(ValueError):
    """A results file that cannot be used: names the file and what is wrong."""


def load(path: Path) -> Results:
    """The results file at path, migrated from the schema version it was written with and validated.

    Every reader (report, project, compare) loads through here; a file that cannot be used raises ResultsFileError,
    one line naming the file and the problem.
    """
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, not UTF-8 or too deep: validation says so in pydantic's words
        doc = None
    try:
        version = doc.get("schema_version") if isinstance(doc, dict) else None
        if isinstance(doc, dict) and not (type(version) is int and version == SCHEMA_VERSION):
            return Results.model_validate(migrate(doc)[0])  # 2.0 or "2" is refused, as collect does
        return Results.model_validate_json(text)
    except MigrationError as exc:
        raise ResultsFileError(f"{path}: not a valid feedtax results file: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        raise ResultsFileError(f"{path}: not a valid feedtax results file (schema {SCHEMA_VERSION}): {where}: "
                               f"{first['msg']} ({exc.error_count()} problem(s))") from None
