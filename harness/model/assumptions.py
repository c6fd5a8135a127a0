"""The assumptions file: every number that is neither measured here nor in mlsysim, each with its source.

load() validates model/assumptions.json and applies `--assume key=value` overrides; each value is
handed out as a Sourced {value, unit, source="assumption:<key>"} so projections can show its origin.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import ValidationError

from feedtax.results.projections import Assumption, AssumptionError, Assumptions

DEFAULT_PATH = Path(__file__).with_name("assumptions.json")


def parse_overrides(items: Iterable[str] | None) -> dict[str, float]:
    """Parse ["key=value", ...]; a malformed item or a non-numeric value is an AssumptionError naming it."""
    out: dict[str, float] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key:
            raise AssumptionError(f"--assume {item!r}: expected key=value")
        try:
            value = float(raw)
        except ValueError:
            raise AssumptionError(f"--assume {key}={raw!r}: value is not a number") from None
        if not math.isfinite(value):
            raise AssumptionError(f"--assume {key}={raw!r}: value must be finite")
        out[key] = value
    return out


def load(path: Path | None = None, overrides: Mapping[str, float] | Iterable[str] | None = None) -> Assumptions:
    """Read and validate the assumptions file, then apply overrides (a mapping, or "key=value" strings)."""
    path = Path(path) if path is not None else DEFAULT_PATH
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise AssumptionError(f"{path}: cannot read assumptions: {exc}") from None
    entries = {}
    for key, entry in raw.items():
        if key.startswith("_"):
            continue
        try:
            entries[key] = Assumption.model_validate(entry)
        except ValidationError as exc:
            raise AssumptionError(f"{path}: assumption {key!r}: {exc.errors()[0]['msg']}") from None
        if not entries[key].source.strip():
            raise AssumptionError(f"{path}: assumption {key!r} has no source")
    if overrides is not None and not isinstance(overrides, Mapping):
        overrides = parse_overrides(overrides)
    for key, value in (overrides or {}).items():
        if key not in entries:
            raise AssumptionError(f"--assume {key}: unknown assumption; known: {', '.join(sorted(entries))}")
        entries[key] = entries[key].model_copy(update={"value": float(value), "overridden": True})
    return Assumptions(entries=entries)
