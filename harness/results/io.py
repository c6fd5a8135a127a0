"""Reading and writing results.json: atomic, durable, stage by stage, and one loader for every reader."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path

from feedtax.atomic import write_atomic
from feedtax.results.schema import Results
from feedtax.results.validate import Invalid, read


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
    """A results file that cannot be used: one line naming the file and what is wrong; `kind` says which check
    refused it (feedtax.results.validate.KINDS)."""

    def __init__(self, message: str, kind: str | None = None):
        super().__init__(message)
        self.kind = kind


_UNREAD = ("unreadable", "not_a_file", "too_large")  # refused before a byte was parsed


def load(path: Path) -> Results:
    """The results file at path, read as hostile input, migrated from the schema version it was written with and
    validated as the class collection validates a submission (feedtax.results.validate: size, type and depth
    limits, duplicate keys, strict types, finite numbers within their declared bounds, derived fields).

    Every reader (report, project, compare, lab) loads through here; a file that cannot be used raises
    ResultsFileError, one line naming the file and the problem.
    """
    try:
        return read(Path(path)).results
    except Invalid as exc:
        said = exc.reason if exc.kind in _UNREAD else f"not a valid feedtax results file: {exc.reason}"
        raise ResultsFileError(f"{path}: {said}", exc.kind) from None
