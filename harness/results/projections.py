"""Sourced numbers, assumptions, and the mission projections and model validation built on them."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from feedtax.results.metrics import MODELLED_S, Share, Workers, modelled
from feedtax.vocabulary import (
    BYTES_PER_SAMPLE,
    FEEDING_TAX,
    FRACTION,
    MB_PER_S,
    PERCENTAGE_POINTS,
    UTILIZATION,
    WATTS,
    Track,
)

WAIT_FRACTION = replace(FRACTION, better="lower")
VALUE = modelled("its unit field")  # an assumption's, a sourced number's, a check's value and limit
RATE = modelled("1/s", low=0)
DEMAND_MB_PER_S = replace(MB_PER_S, better=None)  # what a mission needs: neither more nor less is better


class Sourced(BaseModel):
    """One number with its unit (a pint string, "" for plain numbers) and where it came from."""

    value: Annotated[float, VALUE]
    unit: str
    source: str
    note: str | None = None
    derived_from: list[str] = Field(default_factory=list, description="sources of the values it was computed from")


class Assumption(BaseModel):
    """One entry of the assumptions file."""

    value: Annotated[float, VALUE]
    unit: str
    source: str
    note: str
    overridden: bool = False


class AssumptionError(ValueError):
    """An unusable assumptions file or override: names the key and what is wrong."""


class Assumptions(BaseModel):
    """All assumptions, by key."""

    entries: dict[str, Assumption]

    def value(self, key: str) -> float:
        return self._get(key).value

    def sourced(self, key: str) -> Sourced:
        """The assumption as a projection input, source "assumption:<key>"."""
        a = self._get(key)
        return Sourced(value=a.value, unit=a.unit, source=f"assumption:{key}", note=a.note)

    def _get(self, key: str) -> Assumption:
        if key not in self.entries:
            raise AssumptionError(f"unknown assumption {key!r}; known: {', '.join(sorted(self.entries))}")
        return self.entries[key]


class PipelineOut(BaseModel):
    """evaluate_pipeline's results (the contract's names)."""

    read_rate_per_second: Annotated[float, RATE]
    decode_rate_per_second: Annotated[float, RATE]
    transform_rate_per_second: Annotated[float, RATE]
    service_rate_per_second: Annotated[float, RATE]
    required_rate_per_second: Annotated[float, RATE]
    bottleneck_stage: str
    accelerator_wait_fraction: Annotated[float, WAIT_FRACTION]


class Check(BaseModel):
    """One mission constraint: value against limit. kind "max": value must not exceed limit; "min": reach it."""

    name: str
    value: Annotated[float, VALUE]
    limit: Annotated[float, VALUE]
    unit: str
    kind: Literal["max", "min"]
    ok: bool
    headroom: Annotated[float, modelled("x")] = Field(
        description="limit/value for max, value/limit for min: < 1 means violated")
    detail: str


class DataWall(BaseModel):
    """mlsysim DataModel on a node with a storage entry: demand against the slowest modeled data path."""

    node: str
    storage_source: str
    demand_mb_per_s: Annotated[float, DEMAND_MB_PER_S]
    supply_mb_per_s: Annotated[float, MB_PER_S]
    utilization: Annotated[float, modelled("x", low=0)] = Field(description="demand / supply")
    bottleneck: str
    stalled: bool


class TransformWall(BaseModel):
    """mlsysim TransformationModel for one sample: transform time against the accelerator's time per sample."""

    transform_time_s: Annotated[float, MODELLED_S]
    accelerator_step_time_s: Annotated[float, MODELLED_S]
    accelerator_utilization: Annotated[float, UTILIZATION]
    is_bottleneck: bool


class FormatProjection(BaseModel):
    format: str
    inputs: dict[str, Sourced]
    pipeline: PipelineOut
    checks: list[Check]
    facts: dict[str, Sourced] = {}


class Alternative(BaseModel):
    """An architectural alternative (mobile: pre-process on the glasses, send less)."""

    name: str
    bytes_per_frame: Annotated[float, BYTES_PER_SAMPLE]
    radio_power_w: Annotated[float, WATTS]
    cut_vs_baseline: Annotated[float, modelled("fraction", high=1)] = Field(
        description="1 - alternative radio energy / baseline radio energy")
    meets_cut: bool


class Projection(BaseModel):
    """One mission: the verdict, its binding constraint, the headline pipeline and its sourced inputs."""

    track: Track
    verdict: Literal["meets", "misses"]
    binding_constraint: str
    format: str = Field(description="the headline format: the one with the most headroom on its checks")
    pipeline: PipelineOut
    inputs: dict[str, Sourced]
    checks: list[Check]
    facts: dict[str, Sourced] = {}
    per_format: list[FormatProjection]
    data_wall: DataWall | None = None
    transformation: TransformWall | None = None
    alternatives: list[Alternative] = []


class ValidationRow(BaseModel):
    track: str
    format: str
    num_workers: Workers
    predicted_feeding_tax: Annotated[float, FEEDING_TAX] = Field(
        description="modelled (mlsysim) from the measured stage rates, not measured from steps: it has no interval")
    measured_feeding_tax: Annotated[float, FEEDING_TAX]
    measured_feeding_tax_ci95: tuple[Share, Share] | None = Field(
        None, description="the measured row's feeding_tax_ci95 (predicted_feeding_tax is modelled: it has none); None "
        "before schema 6")
    error_pp: Annotated[float, PERCENTAGE_POINTS] = Field(description="predicted - measured feeding tax, x 100")
    model: str
    rates_at: Literal["point", "one_worker"] | None = Field(
        None, description="the per-worker stage rates the prediction used: point, those this point's own workers ran "
        "at (their sharing of the cores included); one_worker, the 1-worker row's (no clocks at the point, or "
        "num_workers = 0); None before schema 6")
    likely_reason: str | None = None
