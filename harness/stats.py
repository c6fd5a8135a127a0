"""Timing distributions, pyperf style: warm-ups excluded, calibrated loops, repeats, median and IQR.

A value is one repeat's time per loop; a repeat runs enough loops to last at least min_time_s
(calibrated from the warm-ups, as pyperf does), so fast operations are not timer noise.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
from pydantic import BaseModel

UNSTABLE_SPREAD = 0.10  # pyperf warns when the standard deviation exceeds 10% of the mean


class Distribution(BaseModel):
    """Summary of repeated measurements of one quantity."""

    median: float
    iqr: float
    q1: float
    q3: float
    mean: float
    stdev: float
    min: float
    max: float
    n: int
    unit: str
    unstable: bool
    note: str | None = None


def summarize(values: list[float] | np.ndarray, unit: str) -> Distribution:
    """Median, IQR and spread of values; flags the set unstable when its relative spread is > 10%."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("no values to summarize")
    q1, median, q3 = (float(x) for x in np.percentile(v, [25, 50, 75]))
    mean = float(v.mean())
    stdev = float(v.std(ddof=1)) if v.size > 1 else 0.0
    notes = []
    if v.size > 1 and mean and stdev / abs(mean) > UNSTABLE_SPREAD:
        notes.append(f"standard deviation is {stdev / abs(mean):.0%} of the mean")
    if median and (q3 - q1) / abs(median) > UNSTABLE_SPREAD:
        notes.append(f"IQR is {(q3 - q1) / abs(median):.0%} of the median")
    return Distribution(
        median=median, iqr=q3 - q1, q1=q1, q3=q3, mean=mean, stdev=stdev,
        min=float(v.min()), max=float(v.max()), n=int(v.size), unit=unit,
        unstable=bool(notes), note="; ".join(notes) or None,
    )


def rates(seconds_per_loop: list[float], amount: float) -> list[float]:
    """amount / time for each timing (e.g. samples per second)."""
    return [amount / s for s in seconds_per_loop]


def time_repeats(
    fn: Callable[[], object],
    *,
    warmups: int,
    repeats: int,
    min_time_s: float,
    setup: Callable[[], object] | None = None,
    on_repeat: Callable[[], None] | None = None,
) -> list[float]:
    """Seconds per call of fn for each repeat, warm-ups excluded; setup runs untimed before every call."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")

    def once() -> float:
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    warm = [once() for _ in range(max(warmups, 1))]
    loops = max(1, math.ceil(min_time_s / max(min(warm), 1e-9)))
    values = []
    for _ in range(repeats):
        values.append(sum(once() for _ in range(loops)) / loops)
        if on_repeat is not None:
            on_repeat()
    return values


BOOTSTRAP_REPLICATES = 1000
CI_LEVEL = 0.95


def ratio_ci(numer: list[float] | np.ndarray, denom: list[float] | np.ndarray, *, block: int | None = None,
             replicates: int = BOOTSTRAP_REPLICATES, seed: int = 0) -> tuple[float, float]:
    """95% interval of sum(numer) / sum(denom) over consecutive steps (e.g. samples over step walls): a circular
    moving-block bootstrap, since neighbouring steps share a worker's round; blocks of about n^(1/3) steps."""
    x, y = np.asarray(numer, dtype=np.float64), np.asarray(denom, dtype=np.float64)
    n = x.size
    if n == 0 or n != y.size:
        raise ValueError("need as many numerators as denominators, at least one")
    block = max(1, min(n, block or math.ceil(n ** (1 / 3))))
    m = math.ceil(n / block)
    starts = np.random.default_rng(seed).integers(0, n, size=(replicates, m))
    # a replicate is m circular blocks from random starts cut to n steps (the last block keeps what is left); its sums
    # come from prefix sums over the series twice over, so a replicate costs m reads, not n (cheap enough for
    # bench.feeding to check an interval while it measures)
    lengths = np.full(m, block)
    lengths[-1] = n - (m - 1) * block

    def sums(v: np.ndarray) -> np.ndarray:
        prefix = np.concatenate(([0.0], np.cumsum(np.concatenate((v, v)))))
        return (prefix[starts + lengths] - prefix[starts]).sum(1)

    return interval(sums(x) / sums(y))


def interval(replicates: np.ndarray) -> tuple[float, float]:
    """The central CI_LEVEL interval of bootstrap replicates (percentile method)."""
    lo, hi = np.percentile(replicates, [50 * (1 - CI_LEVEL), 50 * (1 + CI_LEVEL)])
    return float(lo), float(hi)
