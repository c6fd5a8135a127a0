"""The feeding tax: how long the consumer waits for each batch, measured step by step.

Per step: wait_s (blocked in next(loader)), compute_s (what the consumer reports busy), wall_s
(from asking for the batch to the end of the step: the wait, the consumer's host time and the
loop's own bookkeeping; only a progress callback is left out), so the steps' walls add up to the
elapsed time. Over the measured steps (warm-up steps excluded, MLPerf Storage's rule): AU =
sum(compute) / sum(wall), feeding_tax = 1 - AU. An exhausted loader is restarted (a new epoch), and
that restart is counted as waiting, as the consumer really waits for it. Beside it, MLPerf Storage's (DLIO's) AU:
the first step of each epoch left out of both sums, an emulated consumer's nominal step time as its compute
(mlperf_au), so a figure can be set beside a submission's.
MFU = achieved FLOP/s / the device's peak FLOP/s (feedtax.model.peaks); None (absent) when either is unknown.
AU carries a 95% interval (au_ci95, and feeding_tax_ci95 = 1 - its ends): the ratio sum(compute) / sum(wall)
re-estimated over circular blocks of steps (feedtax.stats.ratio_ci, as samples_per_s_ci95). With a StopRule the
loop runs past the minimum `steps` until that interval is narrower than the rule's target, or a cap is reached
(docs/measurement.md, "How many steps").
Also the loader alone: epoch_rate times one whole pass, count_samples counts a format's shards once.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from feedtax.bench import interrupts
from feedtax.bench.consumers import Consumer
from feedtax.bench.ranks import RankFeeding
from feedtax.loader import INDEX_KEY, STAGE_KEY, shard_lengths
from feedtax.stats import Distribution, ratio_ci, summarize
from feedtax.vocabulary import AU_CI_PP, StopRule


class FeedingError(RuntimeError):
    """The loader or the consumer failed, or gave nothing to measure: says which, at which batch, and why."""


class StepRecord(BaseModel):
    """One consumer step: when it began (from the first measured step), and where its time went."""

    t_s: float
    wait_s: float
    compute_s: float
    wall_s: float
    samples: int
    bytes: int
    warmup: bool
    epoch_start: bool = False
    nominal_s: float | None = Field(None, description="the consumer's nominal step time (emulated), else None")


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
    au: float = Field(description="accelerator utilization: compute / wall over the measured steps")
    mlperf_au: float = Field(description="MLPerf Storage / DLIO's AU: nominal compute (measured where the consumer "
                             "has no nominal step) / wall, the first step of each epoch left out of both")
    feeding_tax: float = Field(description="1 - au: fraction of wall time the consumer waited")
    au_ci95: tuple[float, float] | None = Field(
        None, description="95% interval of au from the step-to-step spread: sum(compute) / sum(wall) over circular "
        "blocks of steps (feedtax.stats.ratio_ci), clipped to [0, 1]; run-to-run drift is not in it")
    feeding_tax_ci95: tuple[float, float] | None = Field(None, description="(1 - au_ci95's high, 1 - its low)")
    au_ci_wide: bool = Field(False, description="au_ci95 is as wide as au_ci_target_pp or wider (with a stop rule: a "
                             "cap ended the run first, stopped_by says which)")
    au_ci_target_pp: float = Field(AU_CI_PP, description="the width au_ci95 is held to: the rule's, else AU_CI_PP")
    stopped_by: Literal["steps", "au_ci", "max_steps", "max_s"] = Field(
        "steps", description="steps: the fixed count (no rule); au_ci: the interval narrowed below the rule's target; "
        "max_steps or max_s: a cap")
    min_steps: int | None = Field(None, description="the rule's minimum (the steps asked for); None without a rule")
    mlperf_au_ci95: tuple[float, float] | None = Field(
        None, description="95% interval of mlperf_au, the same bootstrap over the steps it keeps; None: none kept")
    samples_per_s: float
    samples_per_s_ci95: tuple[float, float] | None = Field(
        None, description="95% interval of samples_per_s from the step-to-step spread (feedtax.stats.ratio_ci); "
        "run-to-run drift is not in it")
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
    ranks: list[RankFeeding] | None = Field(
        None, description="every rank's figures under a torch.distributed process group (bench.ranks), else None")
    slowest_rank: int | None = Field(None, description="the rank that waited longest for data (then the longest wall)")
    world_samples_per_s: float | None = Field(
        None, description="every rank's samples over the slowest rank's wall: what the job delivers")


_MAX_DEPTH = 16  # how deep a batch's containers are searched for tensors


def _leaves(batch: Any) -> Iterator[Any]:
    """The tensors and arrays in a batch of any structure default_collate or a user's collate makes: a tensor,
    tuples and lists, mappings, dataclasses and objects holding them (feedtax's own bookkeeping keys skipped)."""
    stack = [(batch, 0)]
    seen: set[int] = set()
    while stack:
        obj, depth = stack.pop()
        if hasattr(obj, "shape") and hasattr(obj, "dtype"):
            yield obj
            continue
        if depth >= _MAX_DEPTH or id(obj) in seen or isinstance(obj, (str, bytes, int, float, bool, type(None))):
            continue
        seen.add(id(obj))
        if isinstance(obj, Mapping):
            items = [v for k, v in obj.items() if k not in (STAGE_KEY, INDEX_KEY)]
        elif isinstance(obj, (list, tuple)):
            items = list(obj)
        elif dataclasses.is_dataclass(obj):
            items = [getattr(obj, f.name) for f in dataclasses.fields(obj)]
        elif hasattr(obj, "__dict__") and not isinstance(obj, type):
            items = list(vars(obj).values())
        else:
            continue
        stack += [(v, depth + 1) for v in reversed(items)]


def samples_and_bytes(batch: Any) -> tuple[int, int]:
    """(samples, bytes) of a batch: samples from the leading dimension of its first tensor or array (0 when it
    holds none), bytes of all of them."""
    n, nbytes, first = 0, 0, True
    for v in _leaves(batch):
        if first and len(v.shape):
            n, first = int(v.shape[0]), False
        nbytes += int(v.nbytes) if hasattr(v, "nbytes") else int(v.numel() * v.element_size())
    return n, nbytes


def measure_feeding(
    loader: Iterable[dict],
    consumer: Consumer,
    *,
    warmup_steps: int,
    steps: int,
    peak_flop_per_s: float | None = None,
    sampler: Any | None = None,
    on_step: Callable[[int], None] | None = None,
    keep_timeline: bool = True,
    batch_size_of: Callable[[Any], int] | None = None,
    ci_block: int | None = None,
    stop: StopRule | None = None,
) -> FeedingResult:
    """Feed `steps` batches (after `warmup_steps`) from loader to consumer.step(batch) and time it; with a stop rule,
    `steps` is the minimum and the run goes on until the AU's interval is narrow enough or a cap is reached.

    sampler: an optional feedtax.probes.nvml.NvmlSampler, started at the first measured step and stopped at
    the end; its summary lands in .nvml. peak_flop_per_s: the device peak for MFU (feedtax.model.peaks).
    batch_size_of: samples in a batch, for batches whose first tensor does not lead with the batch dimension.
    ci_block: the fewest steps per bootstrap block for samples_per_s_ci95 and au_ci95 (a round of the workers: their
    batches arrive in bursts); blocks are at least about steps^(1/3) long.
    """
    if steps < 1 or warmup_steps < 0:
        raise ValueError("steps must be >= 1 and warmup_steps >= 0")
    if stop is not None and stop.max_steps < steps:
        raise ValueError(f"the stop rule's max_steps ({stop.max_steps}) is below the minimum steps ({steps})")
    try:
        raw, stage_rows, epochs, t_origin, stopped_by = _feed(loader, consumer, warmup_steps, steps, sampler, on_step,
                                                              batch_size_of, stop, ci_block)
    except BaseException:
        if sampler is not None:
            sampler.stop()  # no sampling thread left running behind an error
        raise
    nvml = sampler.stop() if sampler is not None else None
    t_origin = t_origin or (raw[0][0] if raw else 0.0)
    records = [StepRecord(t_s=t0 - t_origin, wait_s=t1 - t0, compute_s=busy, wall_s=t_end - t0, samples=n, bytes=nb,
                          warmup=warm, epoch_start=first, nominal_s=nominal)
               for t0, t1, busy, t_end, n, nb, warm, first, nominal in raw]
    measured = [r for r in records if not r.warmup]
    wait = sum(r.wait_s for r in measured)
    compute = sum(r.compute_s for r in measured)
    wall = sum(r.wall_s for r in measured)
    samples = sum(r.samples for r in measured)
    au = min(1.0, compute / wall) if wall > 0 else 0.0
    flops = consumer.flops_per_sample
    achieved = flops * samples / wall if flops and wall > 0 else None
    mfu = achieved / peak_flop_per_s if achieved and peak_flop_per_s else None
    block = _block(ci_block, len(measured))
    target_pp = stop.au_ci_pp if stop is not None else AU_CI_PP
    au_ci = au_interval([r.compute_s for r in measured], [r.wall_s for r in measured], block=block)
    return FeedingResult(
        steps=len(measured), warmup_steps=warmup_steps, epochs_started=epochs, au=au, feeding_tax=1.0 - au,
        au_ci95=au_ci, feeding_tax_ci95=(1.0 - au_ci[1], 1.0 - au_ci[0]) if au_ci is not None else None,
        au_ci_wide=au_ci is None or (au_ci[1] - au_ci[0]) * 100 >= target_pp, au_ci_target_pp=target_pp,
        stopped_by=stopped_by, min_steps=steps if stop is not None else None,
        mlperf_au=mlperf_au(measured), mlperf_au_ci95=mlperf_au_interval(measured, ci_block),
        samples_per_s=samples / wall if wall > 0 else 0.0,
        samples_per_s_ci95=ratio_ci([r.samples for r in measured], [r.wall_s for r in measured], block=block)
        if wall > 0 else None,
        mb_per_s=sum(r.bytes for r in measured) / wall / 1e6 if wall > 0 else 0.0,
        wait_s=wait, compute_s=compute, wall_s=wall,
        step_wall_s=summarize([r.wall_s for r in measured], "s"),
        step_wait_s=summarize([r.wait_s for r in measured], "s"),
        stages=_stage_seconds(stage_rows), flops_per_sample=flops, achieved_flop_per_s=achieved,
        peak_flop_per_s=peak_flop_per_s, mfu=mfu, nvml=nvml.model_dump() if hasattr(nvml, "model_dump") else nvml,
        timeline=records if keep_timeline else [],
    )


def _block(ci_block: int | None, n: int) -> int:
    """Steps per bootstrap block over n steps: about n^(1/3), at least ci_block."""
    return max(ci_block or 1, math.ceil(max(n, 1) ** (1 / 3)))


def au_interval(compute: Sequence[float], wall: Sequence[float], *,
                block: int | None = None) -> tuple[float, float] | None:
    """95% interval of AU = sum(compute) / sum(wall) over consecutive steps (feedtax.stats.ratio_ci: blocks of steps
    resampled, the ratio recomputed), clipped to [0, 1] as AU is; None when there is no wall time."""
    if not len(wall) or sum(wall) <= 0:
        return None
    lo, hi = ratio_ci(compute, wall, block=block)
    return min(1.0, max(0.0, lo)), min(1.0, max(0.0, hi))


def _narrow(raw: list[tuple], target_pp: float, ci_block: int | None) -> bool:
    """Whether the AU interval over these raw steps is narrower than target_pp."""
    ci = au_interval([r[2] for r in raw], [r[3] - r[0] for r in raw], block=_block(ci_block, len(raw)))
    return ci is not None and (ci[1] - ci[0]) * 100 < target_pp


def _feed(loader: Iterable, consumer: Consumer, warmup_steps: int, steps: int, sampler: Any | None,
          on_step: Callable[[int], None] | None, batch_size_of: Callable[[Any], int] | None = None,
          stop: StopRule | None = None,
          ci_block: int | None = None) -> tuple[list[tuple], list[np.ndarray], int, float | None, str]:
    """The timed loop: (per step (t0, t1, busy, t_end, samples, bytes, warm, epoch start, nominal step), the
    measured steps' worker stage seconds, epochs started, the clock at the first measured step, what stopped it).
    The sampler starts there. Past `steps` measured steps a stop rule checks the AU's interval every `every` steps
    (after a step's wall ends, so the check's time is in no step) and the caps after every step."""
    raw: list[tuple] = []  # StepRecords are built after the loop: the loop's own cost stays small
    stage_rows: list[np.ndarray] = []
    with interrupts.between_batches:  # a latched signal stops here; starting workers (a fork) is not cut short
        it = iter(loader)
    epochs = 1
    t_origin = None
    stopped_by = "steps"
    try:
        for i in itertools.count():
            warm = i < warmup_steps
            if not warm and t_origin is None:
                t_origin = time.perf_counter()
                if sampler is not None:
                    sampler.start()
            with interrupts.between_batches:  # a signal stops the run between batches, never inside torch's hand-over
                t0 = time.perf_counter()
                batch = next(it, None)
                first = i == 0
                if batch is None:  # epoch over: start another, the consumer waits for it
                    it, batch = _restart(loader, i)
                    epochs, first = epochs + 1, True
                t1 = time.perf_counter()
            stage = batch.pop(STAGE_KEY, None) if isinstance(batch, dict) else None
            busy = float(consumer.step(batch))
            n, nbytes = samples_and_bytes(batch)
            if batch_size_of is not None:
                n = int(batch_size_of(batch))
            elif n == 0:
                raise FeedingError(f"batch {i + 1} holds no tensor or array with a batch dimension: pass batch_size_of "
                                   "to say how many samples a batch has")
            if stage is not None and not warm:
                stage_rows.append(np.asarray(stage, dtype=np.float64))
            nominal = getattr(consumer, "last_nominal_s", None)
            raw.append((t0, t1, busy, time.perf_counter(), n, nbytes, warm, first, nominal))
            if on_step is not None:
                on_step(i)
            measured = i + 1 - warmup_steps
            if measured < steps:
                continue
            if stop is None:
                break
            capped = measured >= stop.max_steps or raw[-1][3] - t_origin >= stop.max_s
            # at a cap the interval is checked too: narrow since the last check, it stopped on the interval all the
            # same (a point stopped by a cap is one still wide)
            if ((measured - steps) % stop.every == 0 or capped) and _narrow(raw[warmup_steps:], stop.au_ci_pp,
                                                                           ci_block):
                stopped_by = "au_ci"
                break
            if capped:
                stopped_by = "max_steps" if measured >= stop.max_steps else "max_s"
                break
    finally:
        with interrupts.deferred():  # the iterator shuts its workers down whole: a signal waits for the next check
            it = None
    return raw, stage_rows, epochs, t_origin, stopped_by


def row_intervals(fed: FeedingResult) -> dict[str, Any]:
    """A run's AU interval and how it was measured, as a results row's fields (results.feeding.LoaderRow)."""
    return {"au_ci95": fed.au_ci95, "feeding_tax_ci95": fed.feeding_tax_ci95, "au_ci_wide": fed.au_ci_wide,
            "au_ci_target_pp": fed.au_ci_target_pp, "steps": fed.steps, "stopped_by": fed.stopped_by}


def mlperf_au(measured: Sequence[StepRecord]) -> float:
    """MLPerf Storage / DLIO's AU over measured steps: sum of compute / sum of step walls, both without the first
    step of each epoch (DLIO's metric_exclude_start_steps = 1), compute the nominal step where the consumer has one.
    DLIO averages per-epoch AUs; here the measured window's steps are pooled (docs/measurement.md)."""
    compute, wall = _mlperf_steps(measured)
    return min(1.0, sum(compute) / sum(wall)) if sum(wall) > 0 else 0.0


def mlperf_au_interval(measured: Sequence[StepRecord], ci_block: int | None = None) -> tuple[float, float] | None:
    """95% interval of mlperf_au: the same block bootstrap (au_interval) over the steps it keeps."""
    compute, wall = _mlperf_steps(measured)
    return au_interval(compute, wall, block=_block(ci_block, len(wall)))


def _mlperf_steps(measured: Sequence[StepRecord]) -> tuple[list[float], list[float]]:
    """(compute, wall) of the steps DLIO's rule keeps: no epoch's first step; compute the nominal step where the
    consumer has one."""
    kept = [r for r in measured if not r.epoch_start]
    return [r.nominal_s if r.nominal_s is not None else r.compute_s for r in kept], [r.wall_s for r in kept]


def _restart(loader: Iterable[dict], delivered: int) -> tuple[Iterator[dict], dict]:
    """A new epoch's iterator and its first batch; an error when the loader gives none."""
    it = iter(loader)
    batch = next(it, None)
    if batch is None:
        raise FeedingError("the loader yields no batches" if delivered == 0 else
                           f"the loader ran out after {delivered} batches and gives none when restarted "
                           "(a one-shot iterator cannot start another epoch)")
    return it, batch


def _stage_seconds(stage_rows: list[np.ndarray]) -> StageSeconds:
    """The mean worker stage seconds per batch, or all None when no batch carried them."""
    if not stage_rows:
        return StageSeconds(decode_s_per_batch=None, transform_s_per_batch=None, collate_s_per_batch=None)
    s = np.mean(stage_rows, axis=0)
    return StageSeconds(decode_s_per_batch=float(s[0]), transform_s_per_batch=float(s[1]),
                        collate_s_per_batch=float(s[2]))


# ---------------------------------------------------------------------------------------------
# The loader alone


def epoch_rate(loader: Iterable[dict], stages: list | None = None) -> tuple[float, int, float]:
    """(seconds for one whole pass from iter(), samples, seconds to the first batch); each batch's
    STAGE_KEY is appended to stages when given."""
    t0 = time.perf_counter()
    n, first = 0, None
    for batch in interrupts.fetched(loader):
        if first is None:
            first = time.perf_counter() - t0
        n += samples_and_bytes(batch)[0]
        if stages is not None:
            stages.append(batch[STAGE_KEY])
    return time.perf_counter() - t0, n, first or 0.0


_COUNTS: dict[tuple, int] = {}


def count_samples(fmt: str, paths: Sequence[Path]) -> int:
    """Samples in a format's shards, counted once per (format, paths) in this process."""
    key = (fmt, tuple(str(p) for p in paths))
    if key not in _COUNTS:
        _COUNTS[key] = sum(shard_lengths(fmt, paths))
    return _COUNTS[key]
