"""The lab record (lab.json): what a student did in `feedtax lab` next to a run's results: the Locks (predictions
committed before any number is shown), the Reflect answers, the slider iterations; its limits, loading and saving."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from feedtax.atomic import write_atomic

LAB_SCHEMA_VERSION = 1
LAB_FILE = "lab.json"

# id -> (question, choices): the three Locks, one per part of the lab, in the order the lab asks them
LOCKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "gravity": ("Will it be cheaper to stream your data over fiber or ship a physical hard drive across the "
                "country?", ("fiber", "drive")),
    "format_vs_ssd": ("If you switch from JSON to Protobuf, will your GPU utilisation increase more than if you "
                      "upgrade to a faster SSD?", ("format", "ssd")),
    "curated_vs_noisy": ("Is it more energy-efficient to use 1 million noisy samples or 10,000 curated Gold "
                         "Standard samples?", ("noisy", "curated")),
}

# --- limits: a lab.json is typed by a student and read by an instructor's tools, so every part is bounded --------
MAX_LAB_BYTES = 1 << 20  # the whole file; checked before it is read
MAX_ANSWER_CHARS = 4_000  # one Reflect answer
MAX_PROMPT_CHARS = 2_000
MAX_REFLECTIONS = 60
MAX_ITERATIONS = 2_000
MAX_KEYS = 32  # settings or outputs of one iteration
MAX_KEY_CHARS = 64
MAX_VALUE_CHARS = 200  # a setting given as text
MAX_TIERS = 64
MAX_WORKERS = 4_096  # Part 2's equilibrium: a worker count

Confidence = Literal["low", "medium", "high"]


def _not_bool(v):
    """JSON true is not the number 1 (Literal[1] alone would take it)."""
    if isinstance(v, bool):
        raise ValueError("a number is expected, not true/false")
    return v


Part = Annotated[Literal[1, 2, 3], BeforeValidator(_not_bool)]
Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY_CHARS)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Int64 = Annotated[int, Field(ge=-(1 << 63), le=(1 << 63) - 1)]


class LabFileError(ValueError):
    """A lab.json that cannot be used: one line naming the file and what is wrong."""


def _utc(value: str) -> str:
    """value itself when it is an ISO 8601 time in UTC (offset +00:00 or Z), else ValueError."""
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not an ISO 8601 time") from None
    if t.utcoffset() is None or t.utcoffset().total_seconds() != 0:
        raise ValueError(f"{value[:40]!r} is not in UTC (give +00:00 or Z)")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Lock(_Strict):
    """A prediction committed before any number is shown: one of the lock's choices, and how sure the student was."""

    lock: str = Field(description="one of LOCKS: gravity, format_vs_ssd, curated_vs_noisy")
    choice: str = Field(description="one of that lock's choices")
    confidence: Confidence
    committed_utc: str = Field(max_length=40, description="when it was committed, ISO 8601 in UTC")

    @field_validator("committed_utc")
    @classmethod
    def _committed_in_utc(cls, v: str) -> str:
        return _utc(v)

    @model_validator(mode="after")
    def _known_lock_and_choice(self) -> Lock:
        if self.lock not in LOCKS:
            raise ValueError(f"unknown lock {self.lock[:40]!r} (known: {', '.join(LOCKS)})")
        choices = LOCKS[self.lock][1]
        if self.choice not in choices:
            raise ValueError(f"lock {self.lock}: unknown choice {self.choice[:40]!r} (choose {' or '.join(choices)})")
        return self


class Reflection(_Strict):
    """A Reflect question of one part and the student's answer, stored as typed (escaped wherever it is shown)."""

    part: Part
    prompt: str = Field(max_length=MAX_PROMPT_CHARS)
    answer: str = Field(max_length=MAX_ANSWER_CHARS)


class Iteration(_Strict):
    """One setting of a part's sliders and what the lab showed for it."""

    part: Part
    at_utc: str = Field(max_length=40)
    settings: dict[Key, Annotated[str, Field(max_length=MAX_VALUE_CHARS)] | Finite | Int64 | bool] = Field(
        max_length=MAX_KEYS)
    outputs: dict[Key, Finite | None] = Field(max_length=MAX_KEYS, description="None: not computable there")

    @field_validator("at_utc")
    @classmethod
    def _at_in_utc(cls, v: str) -> str:
        return _utc(v)


class LabRecord(_Strict):
    """What one student did in `feedtax lab` on one run (lab.json, beside that run's results.json)."""

    lab_schema_version: Annotated[Literal[1], BeforeValidator(_not_bool)] = LAB_SCHEMA_VERSION
    run_id: str = Field(min_length=1, max_length=128, description="the run_id of the results.json it belongs to")
    locks: list[Lock] = Field(default_factory=list, max_length=len(LOCKS), description="at most one per lock id")
    reflections: list[Reflection] = Field(default_factory=list, max_length=MAX_REFLECTIONS)
    iterations: list[Iteration] = Field(default_factory=list, max_length=MAX_ITERATIONS)
    tiers_examined: list[Annotated[str, Field(max_length=MAX_KEY_CHARS)]] = Field(
        default_factory=list, max_length=MAX_TIERS,
        description="Part 1's 5-Move Rule: the dataset-size tiers looked at")
    equilibrium_found: int | None = Field(
        None, ge=0, le=MAX_WORKERS, description="Part 2: the DataLoader worker count the student settled on")

    @field_validator("locks")
    @classmethod
    def _one_lock_per_id(cls, locks: list[Lock]) -> list[Lock]:
        seen = set()
        for lk in locks:
            if lk.lock in seen:
                raise ValueError(f"a second Lock for {lk.lock}: a Lock is committed once")
            seen.add(lk.lock)
        return locks

    def lock(self, lock_id: str) -> Lock | None:
        """The student's Lock of that id, or None where it was not committed."""
        return next((lk for lk in self.locks if lk.lock == lock_id), None)


def lab_path(results_path: Path) -> Path:
    """Where a run's lab record lives: beside its results.json."""
    return Path(results_path).parent / LAB_FILE


def lab_json_schema() -> dict:
    return LabRecord.model_json_schema()


def _non_finite(doc) -> str | None:
    """The path of the first NaN or infinite number in a parsed document, or None (an iterative walk)."""
    stack = [("", doc)]
    while stack:
        where, v = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            return f"{where or 'top level'} is {v}"
        if isinstance(v, dict):
            stack += [(f"{where}.{k}" if where else str(k), x) for k, x in v.items()]
        elif isinstance(v, list):
            stack += [(f"{where}[{i}]", x) for i, x in enumerate(v)]
    return None


def load_lab(path: Path) -> LabRecord:
    """The lab record at path, validated strictly (a number written as text is refused); LabFileError otherwise:
    missing, not a file, over MAX_LAB_BYTES, not JSON, a wrong type, an unknown lock or choice, a second Lock of
    one id, a NaN or infinite number."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise LabFileError(f"{path}: not a regular file")
        if size > MAX_LAB_BYTES:
            raise LabFileError(f"{path}: {size:,} bytes, over the {MAX_LAB_BYTES:,}-byte limit of a lab record")
        with open(path, "rb") as f:
            data = f.read(MAX_LAB_BYTES + 1)
    except OSError as exc:
        raise LabFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_lab(data, str(path))


def parse_lab(data: bytes, source: str) -> LabRecord:
    """A lab record from a lab.json's bytes, validated as load_lab does; LabFileError names `source`."""
    if len(data) > MAX_LAB_BYTES:
        raise LabFileError(f"{source}: over the {MAX_LAB_BYTES:,}-byte limit of a lab record")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise LabFileError(f"{source}: not JSON: {str(exc)[:120] or type(exc).__name__}") from None
    if not isinstance(doc, dict):
        raise LabFileError(f"{source}: top level is not a JSON object")
    if (bad := _non_finite(doc)) is not None:
        raise LabFileError(f"{source}: {bad[:120]}: not a finite number")
    try:
        return LabRecord.model_validate(doc, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        raise LabFileError(f"{source}: not a valid lab record (lab schema {LAB_SCHEMA_VERSION}): {where}: "
                           f"{first['msg'][:200]} ({exc.error_count()} problem(s))") from None


def save_lab(record: LabRecord, path: Path) -> None:
    """Write the record atomically and durably; LabFileError (nothing written) when it would exceed MAX_LAB_BYTES,
    so every lab.json saved loads again."""
    try:  # re-checked as stored: a record changed after it was built (a Lock appended twice) is caught here
        data = LabRecord.model_validate(record.model_dump()).model_dump_json().encode()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise LabFileError(f"{path}: not saved: {'.'.join(map(str, first['loc'])) or 'top level'}: "
                           f"{first['msg'][:200]}") from None
    if len(data) > MAX_LAB_BYTES:
        raise LabFileError(f"{path}: the record is {len(data):,} bytes, over the {MAX_LAB_BYTES:,}-byte limit of a "
                           "lab record: keep fewer iterations")
    try:
        write_atomic(Path(path), data, durable=True)
    except OSError as exc:
        raise LabFileError(f"{path}: cannot write: {exc.strerror or exc}") from None
