"""The model checked against this machine: the feeding tax each sweep point should show, predicted by mlsysim from
the sweep's measured per-worker stage rates, beside the feeding tax the sweep measured (docs/model.md)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field

from feedtax.model.inputs import FormatMeasure
from feedtax.model.pipeline import pipeline_inputs, run_pipeline
from feedtax.model.sources import measured
from feedtax.results.projections import ValidationRow
from feedtax.vocabulary import VALIDATION_LIMIT_PP


class StageRates(BaseModel):
    """Measured per-worker stage rates of one track x format on this machine (from the sweep's breakdown)."""

    track: str
    format: str
    bytes_per_sample: float
    raw_bytes_per_sample: float
    decode_samples_per_s_per_worker: float
    transform_samples_per_s_per_worker: float
    read_mb_per_s: float
    transport_s_per_batch: float | None = Field(None, description="worker->main transfer per batch, if measured")
    collate_s_per_batch: float | None = Field(None, description="assembling a batch in the worker, per batch")


def _field(row: Any, name: str, default: Any = None) -> Any:
    return row.get(name, default) if isinstance(row, Mapping) else getattr(row, name, default)


def _reason(error_pp: float, workers: int, rates: StageRates, step_s: float, cpus: int | None,
            noisy: bool = False) -> str:
    """The likeliest reason a sweep point's prediction is off by more than the limit."""
    if workers == 0:
        return "num_workers=0: loading runs in the consumer's process; per-batch Python overheads add to every step"
    if cpus is not None and workers >= cpus:
        return (f"{workers} workers and the consumer on {cpus} CPUs: the workers' rates measured here include their "
                "sharing of the cores, not the consumer's process taking its turn on them")
    if noisy:
        return ("the measured point is noisy (its step times' stdev or IQR is over 10% of their centre): rerun on a "
                "quieter machine")
    if error_pp < 0:
        if rates.transport_s_per_batch and rates.transport_s_per_batch > 0.1 * step_s:
            return (f"transport cost: {rates.transport_s_per_batch * 1e3:.2f} ms per batch moving batches from "
                    "workers to the main process, measured with one small ready batch, may be larger for these")
        return "per-batch costs the model does not see (worker start-up in a short run, a busy moment)"
    return ("the loader ran faster than the stage rates predict (page cache hits, or the prefetch queue covering "
            "a short run)")


def _sequential_tax(rates: StageRates, batch: int, step_s: float) -> float:
    """num_workers=0: mlsysim DataStallModel, sequential (load and compute in one process, no overlap)."""
    from mlsysim.core.units import Q_
    from mlsysim.solvers import DataStallModel

    per_sample_s = (1 / rates.decode_samples_per_s_per_worker + 1 / rates.transform_samples_per_s_per_worker
                    + rates.bytes_per_sample / (rates.read_mb_per_s * 1e6))
    io_s = batch * per_sample_s + (rates.transport_s_per_batch or 0.0)
    return DataStallModel().solve(compute_time=Q_(step_s, "s"), io_time=Q_(io_s, "s")).sequential_stall


def _pipelined_tax(rates: StageRates, workers: int, batch: int, step_s: float) -> float:
    """num_workers >= 1: evaluate_pipeline on one serial per-worker rate x workers, then the per-batch transport.

    A worker decodes, transforms and collates each batch in series, so one rate stands for both stages;
    the main process receives every batch between steps, so that wait adds to each step, in series:
    tax = 1 - (1 - pipeline wait) x step / (step + transport).
    """
    serial = 1 / (1 / rates.decode_samples_per_s_per_worker + 1 / rates.transform_samples_per_s_per_worker
                  + (rates.collate_s_per_batch or 0.0) / batch)
    fm = FormatMeasure(track=rates.track, format=rates.format, bytes_per_sample=rates.bytes_per_sample,
                       raw_bytes_per_sample=rates.raw_bytes_per_sample, decode_samples_per_s=serial)
    n = measured(workers, "", "DataLoader workers of this sweep point")
    inputs = pipeline_inputs(fm, None, read_bandwidth=measured(rates.read_mb_per_s, "MB/s"), scale=[n],
                             transform_per_core=measured(serial),
                             required=measured(batch / step_s, "", "consumer samples/s: batch / step"))
    pipe_wait = run_pipeline(inputs).accelerator_wait_fraction
    receive_s = rates.transport_s_per_batch or 0.0
    return 1 - (1 - pipe_wait) * step_s / (step_s + receive_s)


def at_point(rates: StageRates, row: Any, workers: int) -> StageRates | None:
    """The stage rates one sweep point's own workers ran at, or None where the point has no stage clocks.

    The per-worker rates from one worker overstate what each of N workers gets once N workers and the consumer's
    process outnumber the cores: the workers' own clocks, read at that point (the loader alone, so only the loader's
    processes share the cores), say how fast each really decoded, transformed and collated a batch there."""
    decode, transform = _field(row, "decode_s_per_batch"), _field(row, "transform_s_per_batch")
    if workers < 1 or not decode or not transform:
        return None
    batch = int(_field(row, "batch_size"))
    collate = _field(row, "collate_s_per_batch")
    return rates.model_copy(update={"decode_samples_per_s_per_worker": batch / decode,
                                    "transform_samples_per_s_per_worker": batch / transform,
                                    "collate_s_per_batch": rates.collate_s_per_batch if collate is None else collate})


def predicted_tax(rates: StageRates, workers: int, batch: int, step_s: float) -> tuple[float, str]:
    """The feeding tax mlsysim predicts at one point from measured stage rates, and the model that gave it."""
    if workers == 0:
        return _sequential_tax(rates, batch, step_s), "mlsysim DataStallModel (sequential)"
    return _pipelined_tax(rates, workers, batch, step_s), "mlsysim evaluate_pipeline + measured per-batch transport"


def model_validation(rows: Iterable[Any], stage_rates: Iterable[StageRates], *,
                     cpu_count: int | None = None) -> list[ValidationRow]:
    """Predicted feeding tax per sweep point from the measured stage rates vs the measured one.

    Rows need track, format, num_workers, batch_size, step_s, feeding_tax (mappings or objects); a row
    whose track x format has no stage rates is skipped. An error over VALIDATION_LIMIT_PP gets a likely reason.
    """
    by_key = {(r.track, r.format): r for r in stage_rates}
    out = []
    for row in rows:
        track, fmt = _field(row, "track"), _field(row, "format")
        rates = by_key.get((track, fmt))
        if rates is None:
            continue
        workers, batch = int(_field(row, "num_workers")), int(_field(row, "batch_size"))
        step_s, measured_tax = float(_field(row, "step_s")), float(_field(row, "feeding_tax"))
        here = at_point(rates, row, workers)
        predicted, model = predicted_tax(here or rates, workers, batch, step_s)
        error = (predicted - measured_tax) * 100
        cpus = _field(row, "cpu_count", cpu_count)
        reason = (_reason(error, workers, rates, step_s, cpus, bool(_field(row, "unstable", False)))
                  if abs(error) > VALIDATION_LIMIT_PP else None)
        ci = _field(row, "feeding_tax_ci95", None)
        out.append(ValidationRow(track=track, format=fmt, num_workers=workers, predicted_feeding_tax=predicted,
                                 measured_feeding_tax=measured_tax, measured_feeding_tax_ci95=tuple(ci) if ci else None,
                                 error_pp=error, model=model, rates_at="one_worker" if here is None else "point",
                                 likely_reason=reason))
    return out
