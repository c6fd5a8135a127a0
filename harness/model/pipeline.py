"""The lab's pipeline model: mlsysim's evaluate_pipeline (read -> decode -> transform against a required rate),
its keyword arguments built from one format's measured costs, and its result as a PipelineOut."""

from __future__ import annotations

import math
from collections.abc import Mapping

from feedtax.model.inputs import FormatMeasure
from feedtax.model.sources import derived, measured, quantity
from feedtax.results.projections import PipelineOut, Sourced

PIPELINE_ARGS = ("sample_size", "compression_ratio", "read_bandwidth", "base_decode_rate_per_second",
                 "compression_decode_work", "transform_rate_per_second", "required_rate_per_second")
BASELINE_FORMAT = "raw"     # the physical-limit reference every format's decode work is relative to


def run_pipeline(inputs: Mapping[str, Sourced]) -> PipelineOut:
    """Call mlsysim's evaluate_pipeline on recorded inputs (quantities for the two with units)."""
    from mlsysim.labs.experiments.v1_04_experiments import evaluate_pipeline

    kwargs = {k: (quantity(inputs[k]) if k in ("sample_size", "read_bandwidth") else inputs[k].value)
              for k in PIPELINE_ARGS}
    r = evaluate_pipeline(**kwargs)
    return PipelineOut(**{k: getattr(r, k) for k in PipelineOut.model_fields})


def pipeline_inputs(fm: FormatMeasure, baseline: FormatMeasure | None, *, read_bandwidth: Sourced,
                    scale: list[Sourced], transform_per_core: Sourced, required: Sourced) -> dict[str, Sourced]:
    """evaluate_pipeline's keyword arguments for one format; per-core rates are multiplied by `scale`
    (target cores x their speed relative to this machine's, or this machine's worker count).

    The model wants compression_ratio >= 1; a format larger than raw (text) is passed as its on-disk size
    with ratio raw/raw, which gives the same bytes read per sample. Decode work is relative to the raw
    baseline's measured decode rate, so base rate x 1/work is the format's own measured rate.
    """
    ratio = fm.raw_bytes_per_sample / fm.bytes_per_sample
    raw = measured(fm.raw_bytes_per_sample, "byte", "in-memory bytes of one measured sample")
    on_disk = measured(fm.bytes_per_sample, "byte", f"{fm.format} bytes on disk per sample")
    if ratio >= 1:
        sample_size = raw
        compression = measured(ratio, "", f"raw / {fm.format} bytes on disk")
    else:
        sample_size = on_disk
        compression = measured(fm.bytes_per_sample / fm.bytes_per_sample, "",
                               f"{fm.format} is larger than raw ({ratio:.2f}x): passed as its on-disk size, ratio 1")
    base = baseline or fm
    per_core = measured(base.decode_samples_per_s, "", f"{base.format} decode samples/s, one process, cold cache")
    factor = math.prod(s.value for s in scale)
    by = " x ".join(s.source for s in scale)
    return {
        "sample_size": sample_size,
        "compression_ratio": compression,
        "read_bandwidth": read_bandwidth,
        "base_decode_rate_per_second": derived(per_core.value * factor, "", [per_core, *scale],
                                               f"{base.format} decode rate x {by}"),
        "compression_decode_work": measured(base.decode_samples_per_s / fm.decode_samples_per_s, "",
                                            f"{base.format} decode rate / {fm.format} decode rate (measured)"),
        "transform_rate_per_second": derived(transform_per_core.value * factor, "", [transform_per_core, *scale],
                                             f"transform rate x {by}"),
        "required_rate_per_second": required,
    }
