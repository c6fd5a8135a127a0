"""The metric declarations of the results schema, read by field name or walked over the whole schema.

A metric is declared once, as ``Annotated[..., Metric(...)]`` metadata on a results field; a field name means
the same metric wherever it appears (a test holds every model to that), so readers of raw documents (collect)
can look metrics up by name alone.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Iterator

from pydantic import BaseModel

from feedtax.vocabulary import Metric


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


__all__ = ["Metric", "metric_fields", "metric_of", "metrics_by_name"]
