"""The sweep over a user's own pipeline (`feedtax sweep --dataset`): their Dataset, or DataLoader factory, x batch
sizes x worker counts into an emulated step or their own train_step; then the flow equilibrium, the USL fit and
where the wait comes from.

Per batch size and worker count two runs, as feedtax's own sweep (bench.sweep): the loader alone (ingestion) and
feeding the consumer (feeding tax, AU). Per batch size, before its rows, the wait breakdown's passes at the most
workers (bench.pipeline_passes: the same samples read first then warm, each __getitem__ timed in the workers, and
ready samples through the same DataLoader settings); after them the transport cost with ready samples.
Under a process group (torchrun) each rank reads its share through a DistributedSampler and measures every point,
the runs started together (bench.ranks); a point's row is the slowest rank's, every rank's figures beside it.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from feedtax import results
from feedtax.bench import ranks
from feedtax.bench.consumers import Consumer, Drain
from feedtax.bench.feeding import row_intervals
from feedtax.bench.pipeline_passes import (
    Passes,
    PipelineError,
    dataset_len,
    measure,
    measure_passes,
    one_line,
    release,
    transport_cost,
    wait_breakdown,
)
from feedtax.bench.scaling import flow_equilibrium, scaling_fit
from feedtax.probes import host, nvml
from feedtax.results.feeding import LoaderRow
from feedtax.results.pipeline import PIPELINE_TRACK, PipelineConsumer, PipelineResult, PipelineSummary, PointRanks
from feedtax.vocabulary import StopRule

LOADER_PARAMS = ("num_workers", "batch_size")  # what a loader factory takes
_SETTINGS = ("collate_fn", "pin_memory", "drop_last", "timeout", "worker_init_fn", "multiprocessing_context",
             "prefetch_factor")  # a user's DataLoader's settings that the breakdown's loaders keep


def resolve(path: str, what: str) -> Callable:
    """The callable at "package.module:function", imported with the current directory on sys.path (as python -m)."""
    module, _, attr = path.partition(":")
    names = [*module.split("."), *attr.split(".")]
    if path.count(":") != 1 or not all(n.isidentifier() for n in names):
        raise PipelineError(f"{what} {path!r}: expected package.module:function")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        obj = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module + ".").startswith(exc.name + "."):
            raise PipelineError(f"{what} {path}: no module named {exc.name!r} (looked in {cwd} and the installed "
                                "packages)") from None
        raise PipelineError(f"{what} {path}: importing {module} failed: {exc}") from None
    except Exception as exc:
        raise PipelineError(f"{what} {path}: importing {module} raised {one_line(exc)}") from None
    for name in attr.split("."):
        if not hasattr(obj, name):
            raise PipelineError(f"{what} {path}: module {module} has no attribute {attr!r}")
        obj = getattr(obj, name)
    if not callable(obj):
        raise PipelineError(f"{what} {path}: a {type(obj).__name__}, not a function")
    return obj


def factory_kind(factory: Callable, path: str) -> str:
    """"loader" when the factory takes num_workers and batch_size, "dataset" when it needs no argument."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to read (a builtin): called with none
        return "dataset"
    required = [n for n, p in params.items()
                if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if all(n in params for n in LOADER_PARAMS) and set(required) <= set(LOADER_PARAMS):
        return "loader"
    if required:
        raise PipelineError(f"--dataset {path} takes ({', '.join(required)}): a dataset factory takes no argument, "
                            "a loader factory takes num_workers and batch_size")
    return "dataset"


class Pipeline:
    """A user's factory, giving a DataLoader per (batch size, workers): DataLoader(its dataset, shuffle=False), the
    dataset made once, or whatever the loader factory returns, checked against what was asked."""

    def __init__(self, path: str, distributed: bool = False):
        """distributed: under an initialised process group, each rank reads its own share (a DistributedSampler)."""
        self.path, self.distributed = path, distributed
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
        self.factory = resolve(path, "--dataset")
        self.kind = factory_kind(self.factory, path)
        self.name = getattr(self.factory, "__name__", path.rpartition(":")[2])
        self.dataset = self._dataset() if self.kind == "dataset" else None
        self.length = dataset_len(self.dataset) if self.dataset is not None else None

    def _call(self, **kwargs) -> Any:
        try:
            return self.factory(**kwargs)
        except Exception as exc:
            raise PipelineError(f"--dataset {self.path} raised {one_line(exc)}") from exc

    def _dataset(self) -> Any:
        ds = self._call()
        if isinstance(ds, DataLoader):
            raise PipelineError(f"--dataset {self.path} returned a DataLoader: a loader factory takes num_workers "
                                "and batch_size")
        mapping = hasattr(ds, "__getitem__") and hasattr(ds, "__len__")
        if isinstance(ds, (str, bytes)) or not (isinstance(ds, Dataset) or mapping):
            raise PipelineError(f"--dataset {self.path} returned {type(ds).__name__}, not a torch Dataset")
        return ds

    def loader(self, batch_size: int, num_workers: int) -> DataLoader:
        if self.dataset is not None:
            if not self.distributed:
                return DataLoader(self.dataset, batch_size=batch_size, num_workers=num_workers, shuffle=False)
            if self.length is None:
                raise PipelineError(f"--dataset {self.path}: a dataset without len() (an IterableDataset) cannot be "
                                    "split over ranks by a DistributedSampler: give a loader factory that shards it")
            return DataLoader(self.dataset, batch_size=batch_size, num_workers=num_workers,
                              sampler=DistributedSampler(self.dataset, shuffle=False))
        dl = self._call(num_workers=num_workers, batch_size=batch_size)
        if not isinstance(dl, DataLoader):
            raise PipelineError(f"--dataset {self.path} returned {type(dl).__name__}, not a torch DataLoader")
        sampler = dl.sampler if dl.batch_sampler is None else getattr(dl.batch_sampler, "sampler", dl.sampler)
        if self.distributed and not isinstance(sampler, DistributedSampler):
            raise PipelineError(f"--dataset {self.path} returned a DataLoader without a DistributedSampler: under "
                                f"torchrun ({self.world} ranks) each rank reads its own share: give it "
                                "sampler=DistributedSampler(dataset)")
        if dl.num_workers != num_workers or dl.batch_size not in (None, batch_size):
            raise PipelineError(f"--dataset {self.path} was asked for num_workers={num_workers}, batch_size="
                                f"{batch_size} and returned a DataLoader with num_workers={dl.num_workers}, "
                                f"batch_size={dl.batch_size}")
        return dl

    def source(self, batch_size: int, num_workers: int) -> tuple[Any, dict]:
        """The dataset and the DataLoader settings to rebuild a loader of it with (a loader factory's own)."""
        if self.dataset is not None:
            return self.dataset, {}
        dl = self.loader(batch_size, num_workers)
        self.length = dataset_len(dl.dataset)
        return dl.dataset, {k: getattr(dl, k) for k in _SETTINGS if getattr(dl, k, None) is not None}


class _GuardedStep:
    """The consumer, whose failure is reported naming it (the train_step's path), the run and the step."""

    def __init__(self, consumer: Consumer, what: str, where: str):
        self.consumer, self.what, self.where, self.steps = consumer, what, where, 0
        self.flops_per_sample, self.device = None, getattr(consumer, "device", "unknown")

    def step(self, batch: Any) -> float:
        self.steps += 1
        try:
            return float(self.consumer.step(batch))
        except Exception as exc:
            raise PipelineError(f"{self.what} raised at step {self.steps} ({self.where}): {one_line(exc)}") from exc


@dataclass
class Feed:
    """What every run of one pipeline sweep shares: the consumer, its description, the measured steps, the NVML
    sampler of a train_step on a GPU (as feedtax's own model consumer gets)."""

    consumer: Consumer
    spec: PipelineConsumer
    steps: int
    sampler_factory: Callable[[], Any] | None = None
    nvml_note: str | None = None
    stop: StopRule | None = None  # the run with the consumer until its AU interval is narrow (one process only: under
    # torchrun every rank runs `steps`, as a step that synchronises the ranks needs)

    def __post_init__(self) -> None:
        import torch

        if str(self.consumer.device).startswith("cuda") and torch.cuda.is_available() and not self.sampler_factory:
            self.sampler_factory = nvml.cuda_sampler(str(self.consumer.device))


def measure_point(pipe: Pipeline, feed: Feed, batch_size: int, w: int) -> tuple[LoaderRow, PointRanks | None]:
    """One (batch size, workers) point: its row; under a process group measured on every rank (each run started
    together), the row the slowest rank's and every rank's figures beside it."""
    if not pipe.distributed:
        return measure_row(pipe, feed, batch_size, w), None
    device = str(feed.consumer.device)
    alone = ranks.measure_ranks(lambda: _run(pipe, feed, batch_size, w, False), device)
    fed = ranks.measure_ranks(lambda: _run(pipe, feed, batch_size, w, True), device)
    mine = _loader_row(pipe, feed, batch_size, w, alone, fed)
    rows = ranks.gather(mine.model_dump(), f"the rows of batch size {batch_size}, {w} workers")
    return LoaderRow(**rows[fed.slowest_rank]), PointRanks(
        batch_size=batch_size, num_workers=w, slowest_rank=fed.slowest_rank,
        world_samples_per_s=fed.world_samples_per_s, ranks=fed.ranks)


def _run(pipe: Pipeline, feed: Feed, batch_size: int, w: int, fed: bool):
    """One run at a point: the loader alone, or feeding the consumer (under the NVML sampler)."""
    warm = 2 + 2 * max(w, 1)
    where = f"{pipe.path}, batch size {batch_size}, {w} workers"
    if not fed:
        return measure(pipe.loader(batch_size, w), Drain(), where + ", loader alone", warm, feed.steps, workers=w)
    what = f"train_step {feed.spec.train_step}" if feed.spec.train_step else "the emulated step"
    with contextlib.ExitStack() as stack:
        sampler = stack.enter_context(feed.sampler_factory()) if feed.sampler_factory is not None else None
        return measure(pipe.loader(batch_size, w), _GuardedStep(feed.consumer, what, where), where, warm, feed.steps,
                       sampler, workers=w, stop=None if pipe.distributed else feed.stop)


def measure_row(pipe: Pipeline, feed: Feed, batch_size: int, w: int) -> LoaderRow:
    """One (batch size, workers) point in this process: the loader alone, then feeding the consumer."""
    alone = _run(pipe, feed, batch_size, w, False)
    return _loader_row(pipe, feed, batch_size, w, alone, _run(pipe, feed, batch_size, w, True))


def _loader_row(pipe: Pipeline, feed: Feed, batch_size: int, w: int, alone, fed) -> LoaderRow:
    """A point's row from its two runs (bench.feeding.FeedingResult): the loader alone and feeding the consumer."""
    gpu = fed.nvml or {}
    if gpu.get("reason"):  # NVML absent, a reader that failed, or a run too short for its utilization
        feed.nvml_note = gpu["reason"]
    return LoaderRow(
        track=PIPELINE_TRACK, format=pipe.name, num_workers=w, batch_size=batch_size, samples_per_s=fed.samples_per_s,
        feeding_tax=fed.feeding_tax, au=fed.au, step_s=fed.compute_s / fed.steps, **row_intervals(fed),
        ingestion_samples_per_s=alone.samples_per_s,
        ingestion_samples_per_s_ci95=alone.samples_per_s_ci95, ingestion_mb_per_s=alone.mb_per_s, mb_per_s=fed.mb_per_s,
        wait_s=fed.wait_s, compute_s=fed.compute_s, wall_s=fed.wall_s, step_wall_s_iqr=fed.step_wall_s.iqr,
        unstable=fed.step_wall_s.unstable, consumer=feed.spec.kind, device=str(feed.consumer.device),
        nvml_util_gpu_pct=gpu.get("util_gpu_pct_mean"), nvml_idle_fraction=gpu.get("idle_fraction"),
        nvml_power_w=gpu.get("power_w_mean"), nvml_energy_j=gpu.get("energy_j"),
    )


def rows_reach(pipe: Pipeline, batch_size: int, w: int, steps: int) -> int:
    """How far into the dataset rows at batch_size read: in order from 0 (their warm-up and measured steps and the
    workers' prefetch, on every rank), or all of it for a loader factory, whose order feedtax does not know."""
    if pipe.length is None or pipe.kind == "loader":
        return pipe.length or 0
    world = getattr(pipe, "world", 1)  # a DistributedSampler gives each rank every world-th sample
    return min(pipe.length, (2 + 2 * max(w, 1) + steps + 2 * max(w, 1) + 2) * batch_size * world)


def summarize(pipe: Pipeline, feed: Feed, batch_size: int, rows: list[LoaderRow], passes: Passes | str,
              started: float) -> PipelineSummary:
    """One batch size's conclusions: the consumer's rate (the median step), equilibrium, fit, breakdown, transport."""
    step = float(np.median([r.step_s for r in rows]))
    consumption = batch_size / step if step > 0 else float("inf")
    ingestion = {r.num_workers: r.ingestion_samples_per_s for r in rows}
    fit = scaling_fit(PIPELINE_TRACK, pipe.name, ingestion, consumption,
                      intervals={r.num_workers: r.ingestion_samples_per_s_ci95 for r in rows
                                 if r.ingestion_samples_per_s_ci95})
    return PipelineSummary(
        batch_size=batch_size, consumption_samples_per_s=consumption,
        flow_equilibrium={pipe.name: flow_equilibrium(ingestion, consumption)}, fits=[fit] if fit else [],
        breakdown=[wait_breakdown(pipe, passes, consumption)] if isinstance(passes, Passes) else [],
        breakdown_absent_reason=passes if isinstance(passes, str) else None,
        getitem=passes.getitem if isinstance(passes, Passes) else None,
        transport=transport_cost(pipe, batch_size), nvml_absent_reason=feed.nvml_note,
        elapsed_s=time.perf_counter() - started,
    )


def sweep_pipeline(pipe: Pipeline, feed: Feed, worker_counts: Sequence[int], batch_sizes: Sequence[int],
                   on_point: Callable[[PipelineResult, str], None] | None = None) -> PipelineResult:
    """Sweep batch sizes x worker counts; on_point(section, label) after every measured point (to save it)."""
    section = PipelineResult(factory=pipe.path, name=pipe.name, kind=pipe.kind, dataset_len=pipe.length,
                             worker_counts=list(worker_counts), batch_sizes=list(batch_sizes), steps=feed.steps,
                             consumer=feed.spec, world_size=pipe.world)
    try:
        _sweep(pipe, feed, section, on_point)
    except BaseException as exc:  # Ctrl-C or an error mid-run: the runs' DataLoader workers shut down now
        release(exc)
        raise
    return section


def _sweep(pipe: Pipeline, feed: Feed, section: PipelineResult,
           on_point: Callable[[PipelineResult, str], None] | None) -> None:
    most, reach = max(section.worker_counts), 0
    for k, b in enumerate(section.batch_sizes):
        started = time.perf_counter()
        passes = measure_passes(pipe, b, most, max(feed.steps, 4 * max(most, 1)), k, reach)
        section.dataset_len = pipe.length
        _tick(on_point, section, f"batch {b}: breakdown")
        rows = []
        for w in section.worker_counts:
            row, point = measure_point(pipe, feed, b, w)
            rows.append(row)
            section.rows.append(row)
            if point is not None:
                section.ranks.append(point)
            _tick(on_point, section, f"batch {b}, {w} workers")
        reach = max(reach, rows_reach(pipe, b, most, feed.steps))
        section.summaries.append(summarize(pipe, feed, b, rows, passes, started))
        _tick(on_point, section, f"batch {b}: transport")


def new_results(plan: dict, data_dir: Path) -> results.Results:
    """A fresh results document for a pipeline sweep (profile "pipeline"): this host, the plan, nothing measured."""
    config = results.RunConfig(profile="pipeline", seed=0, tracks=[], formats=[], samples_per_track=0,
                               samples_per_shard=0, warmups=0, repeats=0, min_time_s=0.0, sizes={}, sweep=plan,
                               data_dir=str(data_dir))
    return results.Results(run_id=results.new_run_id(), profile="pipeline", created_utc=results.now_utc(),
                           host=host.collect(data_dir), config=config)


def _tick(on_point: Callable[[PipelineResult, str], None] | None, section: PipelineResult, label: str) -> None:
    if on_point is not None:
        on_point(section, label)
