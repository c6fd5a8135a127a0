"""The assumptions file: every number that is neither measured here nor in mlsysim, each with its source, and the
values each may take.

load() validates model/assumptions.json and applies `--assume key=value` overrides, each value within its range
(`allowed`); each value is handed out as a Sourced {value, unit, source="assumption:<key>"} so projections can show
its origin.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import ValidationError

from feedtax.results.projections import Assumption, AssumptionError, Assumptions

DEFAULT_PATH = Path(__file__).with_name("assumptions.json")

# Every assumption is a quantity: finite, never negative, and at most MAX_VALUE, so that its products with the
# measured numbers stay within a float's range. Most divide something (a rate, a count, a speed, a capacity, a
# deadline), so they are over 0; these may be 0: a price, a delay, a latency, a distance or an amount that may be none.
MAY_BE_ZERO = frozenset({"drive_price_usd", "egress_usd_per_gb", "shipping_handling_h", "sneakernet_distance_km",
                         "hdd_request_latency_s", "sata_ssd_request_latency_s", "cpu_active_power_w",
                         "transmission_energy_cut", "tiny_context_s", "tiny_inflight_windows",
                         "tiny_buffer_sram_fraction_max"})
FRACTIONS = frozenset({"link_efficiency", "ble_link_efficiency", "llama_training_mfu", "transmission_energy_cut",
                       "tiny_buffer_sram_fraction_max"})  # shares of a whole: at most 1
MAX_VALUE = 1e18


def allowed(key: str) -> str:
    """The range of the assumption `key`, as the CLI states ranges: '0..1', 'over 0, up to 1e+18'."""
    top = f"{1 if key in FRACTIONS else MAX_VALUE:g}"
    return f"0..{top}" if key in MAY_BE_ZERO else f"over 0, up to {top}"


def in_range(key: str, value: float) -> bool:
    """Whether `value` is finite and within the range of the assumption `key`."""
    low_ok = value >= 0 if key in MAY_BE_ZERO else value > 0
    return math.isfinite(value) and low_ok and value <= (1 if key in FRACTIONS else MAX_VALUE)


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
        if not in_range(key, entries[key].value):
            raise AssumptionError(f"{path}: assumption {key!r} = {entries[key].value:g} is outside its range, "
                                  f"{allowed(key)}")
    if overrides is not None and not isinstance(overrides, Mapping):
        overrides = parse_overrides(overrides)
    for key, value in (overrides or {}).items():
        if key not in entries:
            raise AssumptionError(f"--assume {key}: unknown assumption; known: {', '.join(sorted(entries))}")
        if not in_range(key, float(value)):
            raise AssumptionError(f"--assume {key}={float(value):g}: outside its range, {allowed(key)}")
        entries[key] = entries[key].model_copy(update={"value": float(value), "overridden": True})
    return Assumptions(entries=entries)
