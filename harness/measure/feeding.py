"""The feeding tax: how long the consumer waits for each batch, measured step by step.

Per step: wait_s (blocked in next(loader)), compute_s (what the consumer reports busy), wall_s
(from asking for the batch to the end of the step: the wait, the consumer's host time and the
loop's own bookkeeping; only a progress callback is left out), so the steps' walls add up to the
elapsed time. Over the measured steps (warm-up steps excluded, MLPerf Storage's rule): AU =
sum(compute) / sum(wall), feeding_tax = 1 - AU. An exhausted loader is restarted (a new epoch), and
that restart is counted as waiting, as the consumer really waits for it.
MFU = achieved FLOP/s / the device's peak FLOP/s; None (absent) when either is unknown.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from feedtax.loader import INDEX_KEY, STAGE_KEY
from feedtax.stats import Distribution, summarize


class StepRecord(BaseModel):
    """One consumer step: when it began (from the first measured step), and where its time went."""

    t_s: float
    wait_s: float
    compute_s: float
    wall_s: float
    samples: int
    bytes: int
    warmup: bool


class StageSeconds(BaseModel):
    """Worker-side seconds per batch over the measured steps (summed over workers, so they can
    exceed wall time with several workers): decode (fetch + parse), transform, collate (stack)."""

    decode_s_per_batch: float | None
    transform_s_per_batch: float | None
    collate_s_per_batch: float | None


class FeedingResult(BaseModel):
    """What measure_feeding found over the measured (non-warm-up) steps."""

    steps: int
    warmup_steps: int
    epochs_started: int
    au: float = Field(description="accelerator utilization: compute / wall (MLPerf Storage)")
    feeding_tax: float = Field(description="1 - au: fraction of wall time the consumer waited")
    samples_per_s: float
    mb_per_s: float = Field(description="in-memory batch bytes delivered per second, 1e6 B/s")
    wait_s: float
    compute_s: float
    wall_s: float
    step_wall_s: Distribution
    step_wait_s: Distribution
    stages: StageSeconds
    flops_per_sample: float | None = None
    achieved_flop_per_s: float | None = None
    peak_flop_per_s: float | None = None
    mfu: float | None = Field(None, description="achieved / peak FLOP/s; None where either is unknown")
    nvml: Any | None = Field(None, description="feedtax.probes.nvml.NvmlSummary over the measured steps, or None")
    timeline: list[StepRecord] = []


def samples_and_bytes(batch: dict) -> tuple[int, int]:
    """(samples, bytes) of a batch of tensors/arrays."""
    n, nbytes = 0, 0
    for k, v in batch.items():
        if k in (STAGE_KEY, INDEX_KEY) or not hasattr(v, "shape"):
            continue
        if not n and len(v.shape):
            n = int(v.shape[0])
        nbytes += int(v.nbytes) if hasattr(v, "nbytes") else int(v.numel() * v.element_size())
    return n, nbytes


def measure_feeding(
    loader: Iterable[dict],
    consumer: Any,
    *,
    warmup_steps: int,
    steps: int,
    peak_flop_per_s: float | None = None,
    sampler: Any | None = None,
    on_step: Callable[[int], None] | None = None,
    keep_timeline: bool = True,
) -> FeedingResult:
    """Feed `steps` batches (after `warmup_steps`) from loader to consumer.step(batch) and time it.

    sampler: an optional feedtax.probes.nvml.NvmlSampler, started at the first measured step and stopped at
    the end; its summary lands in .nvml. peak_flop_per_s: the device peak for MFU (see peak_flops).
    """
    if steps < 1 or warmup_steps < 0:
        raise ValueError("steps must be >= 1 and warmup_steps >= 0")
    raw: list[tuple] = []  # per step (t0, t1, busy, t_end, samples, bytes, warm); StepRecords built after
    stage_rows: list[np.ndarray] = []
    it = iter(loader)
    epochs = 1
    t_origin = None
    try:
        for i in range(warmup_steps + steps):
            warm = i < warmup_steps
            if not warm and t_origin is None:
                t_origin = time.perf_counter()
                if sampler is not None:
                    sampler.start()
            t0 = time.perf_counter()
            batch = next(it, None)
            if batch is None:  # epoch over: start another, the consumer waits for it
                it = iter(loader)
                epochs += 1
                batch = next(it, None)
                if batch is None:
                    raise RuntimeError("the loader yields no batches" if i == 0 else
                                       f"the loader ran out after {i} batches and gives none when restarted "
                                       "(a one-shot iterator cannot start another epoch)")
            t1 = time.perf_counter()
            stage = batch.pop(STAGE_KEY, None) if isinstance(batch, dict) else None
            busy = float(consumer.step(batch))
            n, nbytes = samples_and_bytes(batch)
            if stage is not None and not warm:
                stage_rows.append(np.asarray(stage, dtype=np.float64))
            raw.append((t0, t1, busy, time.perf_counter(), n, nbytes, warm))
            if on_step is not None:
                on_step(i)
    except BaseException:
        if sampler is not None:
            sampler.stop()  # no sampling thread left running behind an error
        raise
    nvml = sampler.stop() if sampler is not None else None
    t_origin = t_origin or (raw[0][0] if raw else 0.0)
    records = [StepRecord(t_s=t0 - t_origin, wait_s=t1 - t0, compute_s=busy, wall_s=t_end - t0, samples=n, bytes=nb,
                          warmup=warm) for t0, t1, busy, t_end, n, nb, warm in raw]
    measured = [r for r in records if not r.warmup]
    wait = sum(r.wait_s for r in measured)
    compute = sum(r.compute_s for r in measured)
    wall = sum(r.wall_s for r in measured)
    samples = sum(r.samples for r in measured)
    au = min(1.0, compute / wall) if wall > 0 else 0.0
    flops = getattr(consumer, "flops_per_sample", None)
    achieved = flops * samples / wall if flops and wall > 0 else None
    mfu = achieved / peak_flop_per_s if achieved and peak_flop_per_s else None
    if stage_rows:
        s = np.mean(stage_rows, axis=0)
        stages = StageSeconds(decode_s_per_batch=float(s[0]), transform_s_per_batch=float(s[1]),
                              collate_s_per_batch=float(s[2]))
    else:
        stages = StageSeconds(decode_s_per_batch=None, transform_s_per_batch=None, collate_s_per_batch=None)
    return FeedingResult(
        steps=steps, warmup_steps=warmup_steps, epochs_started=epochs, au=au, feeding_tax=1.0 - au,
        samples_per_s=samples / wall if wall > 0 else 0.0,
        mb_per_s=sum(r.bytes for r in measured) / wall / 1e6 if wall > 0 else 0.0,
        wait_s=wait, compute_s=compute, wall_s=wall,
        step_wall_s=summarize([r.wall_s for r in measured], "s"),
        step_wait_s=summarize([r.wait_s for r in measured], "s"),
        stages=stages, flops_per_sample=flops, achieved_flop_per_s=achieved, peak_flop_per_s=peak_flop_per_s,
        mfu=mfu, nvml=nvml.model_dump() if hasattr(nvml, "model_dump") else nvml,
        timeline=records if keep_timeline else [],
    )


# ---------------------------------------------------------------------------------------------
# Device peak FLOP/s for MFU


def peak_flops(device_name: str | None, precision: str = "fp32", *, registry: Iterable[Any] | None = None,
               user_peak: float | None = None) -> tuple[float | None, str]:
    """(peak FLOP/s, where it came from) for a GPU name as NVML/torch reports it.

    The registry (default: mlsysim's Hardware.Cloud/Edge nodes, imported lazily: slow) is matched by
    the longest node name contained in the device name ("NVIDIA H100 80GB HBM3" -> "NVIDIA H100").
    A user-given peak wins; with neither, (None, "absent").
    """
    if user_peak:
        return float(user_peak), "given by the user"
    if not device_name:
        return None, "absent: no GPU"
    if registry is None:
        registry = _mlsysim_nodes()
    name = device_name.lower().replace("tesla ", "nvidia ")  # NVML: "Tesla T4", the registry: "NVIDIA T4"
    best = None
    for node in registry:
        node_name = str(getattr(node, "name", "")).lower()
        if node_name and node_name in name and (best is None or len(node_name) > len(best.name)):
            best = node
    if best is None:
        return None, f"absent: {device_name!r} is not in mlsysim's registry (give --peak-tflops)"
    value = (getattr(best.compute, "precision_flops", None) or {}).get(precision)
    if value is None:  # its headline peak is another precision's (T4: fp16 65 TFLOP/s, fp32 8.1): not a stand-in
        return None, f"absent: mlsysim's registry has no {precision} peak for {best.name} (give --peak-tflops)"
    flops = float(value.to("flop/s").magnitude) if hasattr(value, "to") else float(value)
    return flops, f"mlsysim registry: {best.name} {precision}"


def _mlsysim_nodes() -> list[Any]:
    from mlsysim import Hardware  # slow import: only when a GPU is present and MFU is asked for

    nodes = []
    for group in (Hardware.Cloud, Hardware.Edge):
        for attr in dir(group):
            node = getattr(group, attr)
            if hasattr(node, "compute") and hasattr(node, "name"):
                nodes.append(node)
    return nodes
