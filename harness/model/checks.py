"""What every mission projection shares: a check of a value against a limit, the per-format pipeline and
cores-needed checks, the choice of the best format, and assembling the track's Projection."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from feedtax.model.inputs import FormatMeasure, Measured
from feedtax.model.pipeline import BASELINE_FORMAT, pipeline_inputs, run_pipeline
from feedtax.model.sources import measured
from feedtax.results.projections import Check, FormatProjection, PipelineOut, Projection, Sourced

# per format: the mission's own checks and facts beside the shared pipeline and cores checks
ExtraChecks = Callable[[FormatMeasure], tuple[list[Check], dict[str, Sourced]]]


def check(name: str, value: float, limit: float, unit: str, kind: str, detail: str) -> Check:
    """kind "max": value must not exceed limit; "min": value must reach it. Headroom > 1 means it passes."""
    if kind == "max":
        ok, headroom = value <= limit, (limit / value if value > 0 else math.inf)
    else:
        ok, headroom = value >= limit, (value / limit if limit > 0 else math.inf)
    return Check(name=name, value=value, limit=limit, unit=unit, kind=kind, ok=ok, headroom=headroom, detail=detail)


def pipeline_check(p: PipelineOut) -> Check:
    return check("pipeline service rate", p.service_rate_per_second, p.required_rate_per_second, "samples/s", "min",
                 f"evaluate_pipeline: bottleneck {p.bottleneck_stage}, accelerator waits "
                 f"{p.accelerator_wait_fraction:.0%}")


def per_core_service(fm: FormatMeasure, transform_per_core: float) -> float:
    """Samples/s one worker sustains doing decode then transform in series (measured rates)."""
    return 1.0 / (1.0 / fm.decode_samples_per_s + 1.0 / transform_per_core)


def cores_check(name: str, required: float, fm: FormatMeasure, transform_per_core: float,
                cores: Sourced, speed: Sourced) -> Check:
    needed = required / (per_core_service(fm, transform_per_core) * speed.value)
    return check(name, needed, cores.value, "cores", "max",
                 f"{fm.format}: decode + transform per worker, scaled by {speed.source}; limit {cores.source}")


def best_format(per_format: list[FormatProjection]) -> FormatProjection:
    """The format with the most headroom on its own checks (the shared ones are the same for all)."""
    return max(per_format, key=lambda fp: min(c.headroom for c in fp.checks))


def assemble(track: str, per_format: list[FormatProjection], shared: list[Check], **extra: Any) -> Projection:
    """The track's Projection: the shared checks plus the best format's, the tightest one binding."""
    best = best_format(per_format)
    checks = shared + best.checks
    binding = min(checks, key=lambda c: c.headroom)
    return Projection(track=track, verdict="meets" if all(c.ok for c in checks) else "misses",
                      binding_constraint=binding.name, format=best.format, pipeline=best.pipeline,
                      inputs=best.inputs, checks=checks, facts={**extra.pop("facts", {}), **best.facts},
                      per_format=per_format, **extra)


def _formats(m: Measured, track: str) -> tuple[list[FormatMeasure], FormatMeasure | None]:
    fms = m.of(track)
    if not fms:
        raise ValueError(f"no measured formats for track {track!r}")
    return fms, next((f for f in fms if f.format == BASELINE_FORMAT), None)


def project_formats(m: Measured, track: str, *, read_bandwidth: Sourced, cores: Sourced, speed: Sourced,
                    required: Sourced, extra_checks: ExtraChecks | None = None) -> list[FormatProjection]:
    """Pipeline + cores-needed check for every measured format, plus per-format extras."""
    fms, baseline = _formats(m, track)
    transform = measured(m.transform_samples_per_s[track], "", f"{track} transform samples/s, one worker")
    out = []
    for fm in fms:
        inputs = pipeline_inputs(fm, baseline, read_bandwidth=read_bandwidth, scale=[cores, speed],
                                 transform_per_core=transform, required=required)
        p = run_pipeline(inputs)
        checks = [pipeline_check(p),
                  cores_check("decode cores needed", required.value, fm, transform.value, cores, speed)]
        facts: dict[str, Sourced] = {}
        if extra_checks is not None:
            more, facts = extra_checks(fm)
            checks += more
        out.append(FormatProjection(format=fm.format, inputs=inputs, pipeline=p, checks=checks, facts=facts))
    return out
