"""Intake: what a class submission must be beyond a valid results file, and every reason one is refused.

A submission is read as every reader reads a results file (feedtax.results.validate: size and type checked before
reading, depth and duplicate keys before parsing, plain JSON never executed or unpickled, migrated, validated
strictly, every number within its field's declared bounds, derived fields consistent); then it must hold format
measurements to compare. Lab records (<run_id>.lab.json) are read with their own limit. The kinds a class adds
(duplicates, conflicts, the database, lab records) are listed in `KINDS` with the results file's own, and what became
of each file of a collection is said with the models here (`CollectReport`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from feedtax.results import validate as results_validate
from feedtax.results.lab import MAX_LAB_BYTES, LabFileError, LabRecord, parse_lab
from feedtax.results.plausible import check_numbers, implausible
from feedtax.results.validate import MAX_JSON_DEPTH, MAX_RESULTS_BYTES, RUN_ID_PATTERN, Invalid, Read, json_depth

MAX_SUBMISSION_BYTES = MAX_RESULTS_BYTES  # a submission is a results file (documented in docs/instructors.md)
REQUIRED_NONEMPTY = ("formats",)  # a submission without format measurements has nothing to compare

# every reject kind of `feedtax collect`: the results file's own (results.validate.KINDS), then the class's
KINDS: dict[str, str] = {
    "missing": "no such file or directory",
    **results_validate.KINDS,
    "duplicate": "the same measurements as a run already collected, under another run_id",
    "conflict": "its run_id was already collected with different content",
    "database": "the database refused the rows (a full disk is named as such)",
    "lab_invalid": "a lab record that is not valid",
    "lab_run_id_mismatch": "a lab record whose run_id is not that of the results file beside it",
    "lab_no_run": "a lab record whose run is not in the database",
    "lab_conflict": "a lab record that changes a Lock already collected",
}


class Reject(Invalid):
    """A submission refused for what a class needs of it (see KINDS); a results file's own refusals are Invalid."""


# --- what became of each file of a collection (feedtax.classroom.collect) ------------------------------

class Accepted(BaseModel):
    """A run collected now, with any warnings about it."""

    path: str
    run_id: str
    warnings: list[str] = []


class Duplicate(BaseModel):
    """Same run_id and same content as a run already collected: nothing changes."""

    path: str
    run_id: str
    collected_from: str


class Rejected(BaseModel):
    """A file refused (or in conflict with a run already collected): its reject kind and why."""

    path: str
    kind: str
    reason: str
    run_id: str | None = None


class LabCollected(BaseModel):
    """A lab record stored now (collected: the run's first; replaced: a newer one) or already there (unchanged)."""

    path: str
    run_id: str
    status: Literal["collected", "replaced", "unchanged"]


class CollectReport(BaseModel):
    """What became of every file of one collection, and the database's row counts after it."""

    db_path: str
    accepted: list[Accepted] = []
    labs: list[LabCollected] = []
    duplicates: list[Duplicate] = []
    conflicts: list[Rejected] = []
    rejected: list[Rejected] = []
    elapsed_s: float = 0.0
    table_rows: dict[str, int] = {}

    @property
    def ok(self) -> bool:
        """True when nothing was rejected (duplicates are fine: collecting twice is allowed)."""
        return not self.rejected and not self.conflicts


def admit(path: Path, data: bytes | None = None) -> Read:
    """The submission at path (its bytes, when already read) validated as every results file is, holding
    measurements to compare; Invalid (or Reject) with the kind and reason otherwise."""
    read = results_validate.read(path) if data is None else results_validate.from_bytes(data)
    for name in REQUIRED_NONEMPTY:
        if not getattr(read.results, name):
            raise Reject("missing_section", f"section {name} is empty: no measurements to collect",
                         read.results.run_id)
    return read


def read_lab(path: Path) -> tuple[LabRecord, bytes]:
    """A submitted lab record (<run_id>.lab.json) and its bytes, read with its own size limit and validated as
    every lab.json is; Reject kind `lab_invalid` with the reason otherwise."""
    try:
        data = results_validate.read_limited(path, MAX_LAB_BYTES)
        return parse_lab(data, str(path)), data
    except Invalid as r:
        raise Reject("lab_invalid", f"lab record: {r.reason.replace('a results file', 'a lab record')}") from None
    except LabFileError as exc:
        raise Reject("lab_invalid", str(exc).removeprefix(f"{path}: ")) from None


__all__ = ["KINDS", "MAX_JSON_DEPTH", "MAX_SUBMISSION_BYTES", "REQUIRED_NONEMPTY", "RUN_ID_PATTERN", "Accepted",
           "CollectReport", "Duplicate", "Invalid", "LabCollected", "Reject", "Rejected", "admit", "check_numbers",
           "implausible", "json_depth", "read_lab"]
