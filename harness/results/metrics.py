"""The metric declarations of the results schema, read by field name or walked over the whole schema.

A metric is declared once, as ``Annotated[..., Metric(...)]`` metadata on a results field; a field name means
the same metric wherever it appears (a test holds every model to that), so readers of raw documents (collect)
can look metrics up by name alone.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Iterator
from dataclasses import replace
from typing import Annotated

from pydantic import BaseModel, Field

from feedtax.vocabulary import COUNT, RATIO, S_PER_BATCH, SECONDS, SETTING_S, Metric

# --- bounds of results fields: every number of results.json has a range, declared once on its field ----------------
# The vocabulary's open metrics, bounded here for the results fields that carry them (a bound refuses only nonsense,
# so it changes nothing in the file format).
MODELLED_S = replace(SECONDS, low=0, high=1e30, why="a modelled time is not negative, and beyond 1e30 s an overflow")
RUN_SETTING_S = replace(SETTING_S, low=0, high=86_400,
                        why="a run is told to spend seconds on a measurement, and not more than a day")
BATCH_S = replace(S_PER_BATCH, low=0, high=1e6, why="a batch takes no negative time, and 1e6 s (11 days) is no batch")
RATE_RATIO = replace(RATIO, low=0, high=1e6, why="a rate over another rate of the same data on the same machine")
SHARD_SAMPLES = replace(COUNT, high=1e9, why="a count is not negative, and 1e9 samples is not one shard")
MAX_WORKERS = 100_000  # DataLoader workers: processes on one host
# Numbers that are not metrics: their bounds as pydantic constraints.
Share = Annotated[float, Field(ge=0, le=1)]  # a fraction of a whole (a flip rate, a share filtered, a fit's sigma)
AtLeastOne = Annotated[int, COUNT, Field(ge=1)]  # a count where zero is meaningless (samples measured, batch size)
Workers = Annotated[int, COUNT, Field(le=MAX_WORKERS)]
Seed = Annotated[int, Field(ge=0, le=(1 << 63) - 1)]  # numpy refuses a negative seed; DuckDB stores 64 bits


def modelled(unit: str, low: float = -1e30, high: float = 1e30) -> Metric:
    """A modelled quantity (a projection, an audit, an assumption): no better side, and bounded only against overflow,
    since assumptions a user overrides can make a model extreme. A Metric, so checked when a file is read, never
    when the model computes it."""
    return Metric(unit, None, low, high, "a modelled quantity beyond 1e30 in size is an overflow, not a model")


def metric_of(model: type[BaseModel], field: str) -> Metric | None:
    """The Metric declared on model.field, or None."""
    info = model.model_fields[field]
    return next((m for m in info.metadata if isinstance(m, Metric)), None)


def _models_in(annotation: typing.Any) -> Iterator[type[BaseModel]]:
    """The pydantic models an annotation holds (through Optional, list, dict, tuple, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def metric_fields(model: type[BaseModel] | None = None) -> Iterator[tuple[str, str, Metric | None]]:
    """Every field of the schema under `model` (default: Results), as (dotted path, field name, Metric or None).

    Paths name nested models by field (``formats.decode_samples_per_s_warm``); each model is visited once per path.
    """
    if model is None:
        from feedtax.results.schema import Results

        model = Results
    stack: list[tuple[str, type[BaseModel], frozenset]] = [("", model, frozenset())]
    while stack:
        prefix, m, seen = stack.pop()
        for name, info in m.model_fields.items():
            path = f"{prefix}.{name}" if prefix else name
            yield path, name, metric_of(m, name)
            for sub in _models_in(info.annotation):
                if sub not in seen:
                    stack.append((path, sub, seen | {m}))


@functools.cache
def metrics_by_name() -> dict[str, Metric]:
    """Field name -> its Metric, over the whole Results schema (a name declared two ways raises ValueError)."""
    out: dict[str, Metric] = {}
    for path, name, metric in metric_fields():
        if metric is None:
            continue
        if out.setdefault(name, metric) != metric:
            raise ValueError(f"results field {name!r} is declared as two different metrics (at {path})")
    return out


__all__ = ["BATCH_S", "MAX_WORKERS", "MODELLED_S", "RATE_RATIO", "RUN_SETTING_S", "AtLeastOne", "Metric", "Seed",
           "Share", "Workers", "metric_fields", "metric_of", "metrics_by_name", "modelled"]
