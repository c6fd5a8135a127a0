"""Reading and writing results.json: atomic, durable, stage by stage, and one loader for every reader."""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from feedtax.results.schema import SCHEMA_VERSION, Results


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id() -> str:
    """Sortable and unique: UTC time plus random suffix."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def json_schema() -> dict:
    return Results.model_json_schema()


def write_atomic(path: Path, data: bytes, *, durable: bool) -> None:
    """Replace path with data via a temp file and rename, so a reader sees the old file or the new one,
    never half of one; durable also fsyncs the file and its directory (the rename survives a crash)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if durable:
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def save(results: Results, path: Path) -> None:
    """Write results.json atomically and durably (it is what a stopped run leaves)."""
    write_atomic(path, results.model_dump_json(indent=2).encode(), durable=True)


class ResultsFileError(ValueError):
    """A results file that cannot be used: names the file and what is wrong."""


def load(path: Path) -> Results:
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return Results.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        raise ResultsFileError(f"{path}: not a valid feedtax results file (schema {SCHEMA_VERSION}): {where}: {first['msg']} ({exc.error_count()} problem(s))") from None
