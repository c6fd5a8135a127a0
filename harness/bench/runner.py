"""`feedtax run`: the stages in order, each saving results.json as it goes.

profile -> host, disk and memory probes -> datasets per track -> format stage (and each track's
transform) -> DataLoader sweep -> selection experiment -> projections through mlsysim ->
results.json -> report.html. Energy counters are read over all the measuring stages.
Before measuring, the output directory is checked and held (feedtax.bench.outdir). Ctrl-C, SIGTERM, SIGHUP or a
failure (a full disk too) marks the stage and the run as such, removes the shards, and leaves a valid results.json
holding everything measured up to then.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

from feedtax import datasets, results
from feedtax.bench import interrupts, ondisk, outdir
from feedtax.bench.formatstage import measure_format
from feedtax.bench.profiles import Profile, SweepPlan
from feedtax.probes import host
from feedtax.probes.counters import EnergyMeter
from feedtax.probes.disk import measure_disk
from feedtax.probes.memory import measure_memory
from feedtax.stats import rates, summarize, time_repeats
from feedtax.vocabulary import FORMATS, TRACKS


class Progress(Protocol):
    """What the runner tells the user about: a named task of known size, advancing."""

    def start(self, description: str, total: int) -> None: ...
    def advance(self) -> None: ...


class _Silent:
    def start(self, description: str, total: int) -> None:
        pass

    def advance(self) -> None:
        pass


_SILENT = _Silent()


class _Checked:
    """A progress that, at every measurement boundary, raises a Ctrl-C that a finalizer swallowed."""

    def __init__(self, inner: Progress) -> None:
        self.inner = inner

    def start(self, description: str, total: int) -> None:
        interrupts.check()
        self.inner.start(description, total)

    def advance(self) -> None:
        interrupts.check()
        self.inner.advance()


class RunError(RuntimeError):
    """A run that cannot start or continue, with a message for the user."""


class DiskFull(RuntimeError):
    """The disk filled while measuring: one line naming what could not be written, the free space once the shards
    were removed, and where the results are."""


def prepare_out(out_dir: Path) -> Path:
    """Create the output directory and check it is writable before measuring anything."""
    try:
        outdir.check_writable(out_dir, "results")
    except outdir.OutDirError as exc:
        raise RunError(str(exc)) from None
    return out_dir / "results.json"


def preflight(out_dir: Path, assume: Sequence[str] = ()) -> Path:
    """Refuse a bad --assume or an unwritable output directory before anything is measured; results.json's path."""
    if assume:
        from feedtax.model import assumptions

        assumptions.load(overrides=list(assume))
    return prepare_out(out_dir)


@contextmanager
def stage(res: results.Results, path: Path, name: str) -> Iterator[None]:
    """Record a stage's start, end and outcome in results.json."""
    record = results.Stage(name=name, status="running", started_utc=results.now_utc())
    res.stages.append(record)
    t0 = time.perf_counter()
    try:
        results.save(res, path)
        yield
    except KeyboardInterrupt as exc:
        stop = interrupts.interruption(exc)
        record.status, record.error, res.status = "interrupted", f"interrupted by {stop.name}", "interrupted"
        raise
    except BaseException as exc:
        if (stop := interrupts.received()) is not None:  # e.g. a DataLoader worker killed by the same signal
            record.status, record.error, res.status = "interrupted", f"interrupted by {stop.name}", "interrupted"
            raise stop from exc
        record.status = res.status = "failed"
        record.error = f"{type(exc).__name__}: {exc}"
        raise
    else:
        record.status = "complete"
    finally:
        record.elapsed_s = time.perf_counter() - t0
        with interrupts.deferred():  # a signal now stops the next stage, not this save
            results.save(res, path)


def measure_transform(track: str, samples: list, profile: Profile, on_repeat) -> results.TransformResult:
    """The track's per-sample transform (the loader's prep stage) over its samples, one process."""
    import numpy as np

    from feedtax.loader import transform_for

    fn, rng = transform_for(track), np.random.default_rng(0)
    seconds = time_repeats(lambda: [fn(s, rng) for s in samples], warmups=profile.warmups, repeats=profile.repeats,
                           min_time_s=profile.min_time_s, on_repeat=on_repeat)
    return results.TransformResult(track=track, transform=fn.__name__,
                                   samples_per_s=summarize(rates(seconds, len(samples)), "samples/s"))


def run_sweep_stage(res: results.Results, path: Path, shards: dict, tracks: list[str], formats: list[str],
                    plan: SweepPlan, progress: Progress) -> None:
    """The DataLoader sweep per track, then the loader's own overhead at one worker, saving as it goes."""
    from feedtax.bench.loadergap import sweep_loaders
    from feedtax.bench.overhead import loader_overhead
    from feedtax.results.feeding import ConsumerSpec, LoaderRow

    workers = plan.workers(res.host.usable_cores)
    runs = len(formats) * (2 * len(workers) * len(plan.loaders) + ("tuned" in plan.loaders)) + len(plan.loaders)
    progress.start("DataLoader sweep", len(tracks) * runs)
    res.feeding = results.Feeding(flow_equilibrium={})
    decode = {(f.track, f.format): f.decode_samples_per_s_warm.median for f in res.formats}
    sizes = datasets.Sizes.from_json(res.config.sizes)
    data_dir = Path(res.config.data_dir)
    for i, track in enumerate(tracks):
        windows = None
        if plan.dataset_bytes:  # a dataset larger than memory per format, read cold window by window
            sweep_shards, windows, reads = _datasets(res, track, formats, plan, max(workers), progress)
            progress.start("DataLoader sweep", (len(tracks) - i) * runs)
        else:
            sweep_shards = ondisk.write_sweep_shards(track, formats, data_dir, plan, max(workers), res.config.seed,
                                                     sizes)
        res.feeding.shards[track] = len(next(iter(sweep_shards.values())))
        def keep(row: LoaderRow) -> None:  # a stopped sweep keeps every point it measured
            res.loader.append(row)
            results.save(res, path)

        _, summaries, gaps = sweep_loaders(
            track, formats, sweep_shards, workers, batch_size=plan.batch_size,
            consumer=ConsumerSpec(kind="emulated", step_s=plan.step_s), steps=plan.steps, loaders=plan.loaders,
            on_step=lambda label: progress.advance(), on_row=keep, stop=plan.stop, windows=windows,
        )
        if windows is not None:  # each track's datasets go before the next track's are written
            res.feeding.datasets += [ondisk.summary(windows[f], reads[f]) for f in formats]
            ondisk.remove(windows)
        res.feeding.summaries += summaries
        res.feeding.flow_equilibrium[track] = summaries[-1].flow_equilibrium  # the tuned loader's, where swept
        res.feeding.loader_gaps += gaps
        results.save(res, path)
    progress.start("the loader's own overhead", len(tracks) * len(formats))  # slower steps: a stage of their own
    for track in tracks:
        for fmt in formats:
            res.feeding.loader_overhead.append(loader_overhead(
                track, fmt, shards[track, fmt], decode_samples_per_s=decode[track, fmt], batch_size=plan.batch_size))
            progress.advance()
            results.save(res, path)


def _datasets(res: results.Results, track: str, formats: list[str], plan: SweepPlan, max_workers: int,
              progress: Progress) -> tuple[dict, dict, dict]:
    """One track's datasets of plan.dataset_bytes under the run's data directory, written and read once: the shards
    the breakdown and the default loader's fixes read (a first window, the size of the profile's sweep shards), the
    windows each point's runs take, the first reads."""
    progress.start(f"{track}: {len(formats)} dataset(s) of {plan.dataset_bytes / 1e9:,.3g} GB", len(formats) * 100)
    windows, reads = ondisk.prepare(track, formats, Path(res.config.data_dir), plan.dataset_bytes,
                                    seed=res.config.seed, sizes=datasets.Sizes.from_json(res.config.sizes),
                                    tick=progress.advance)
    first = ondisk.sweep_samples(plan, max_workers)[0]
    return {f: windows[f].take(first, 2 * max_workers)[0] for f in formats}, windows, reads


def _new_results(profile: Profile, out_dir: Path, data_dir: Path, tracks: Sequence[str], formats: Sequence[str],
                 seed: int) -> results.Results:
    """A fresh results document: the run's configuration and this host, nothing measured yet."""
    config = results.RunConfig(
        profile=profile.name, seed=seed, tracks=list(tracks), formats=list(formats),
        samples_per_track=profile.samples_per_track, samples_per_shard=profile.samples_per_shard,
        warmups=profile.warmups, repeats=profile.repeats, min_time_s=profile.min_time_s,
        disk_probe_bytes=profile.disk_probe_bytes, memory_probe_bytes=profile.memory_probe_bytes,
        format_budget_s=profile.format_budget_s,
        sizes=profile.sizes.to_json(),
        sweep=asdict(profile.sweep), data_dir=str(data_dir), dataset_bytes=profile.sweep.dataset_bytes,
    )
    return results.Results(
        run_id=results.new_run_id(), profile=profile.name, created_utc=results.now_utc(),
        host=host.collect(out_dir), config=config,
    )


def run_probe_stage(res: results.Results, path: Path, profile: Profile, data_dir: Path, progress: Progress) -> None:
    """The disk probe (in the data directory) and the memory probe."""
    progress.start("disk and memory probes", 2)
    data_dir.mkdir(parents=True, exist_ok=True)
    res.disk = measure_disk(data_dir, profile.disk_probe_bytes, time_budget_s=profile.disk_probe_budget_s)
    progress.advance()
    results.save(res, path)
    res.memory = measure_memory(profile.memory_probe_bytes)
    progress.advance()


def run_format_stage(res: results.Results, path: Path, profile: Profile, tracks: Sequence[str],
                     formats: Sequence[str], seed: int, data_dir: Path,
                     progress: Progress) -> dict[tuple[str, str], list[Path]]:
    """Every track x format's costs and each track's transform, saving as it goes; the shards written."""
    shards: dict[tuple[str, str], list[Path]] = {}
    passes_per_format = 3 * profile.repeats
    progress.start("format costs", len(tracks) * (len(formats) * passes_per_format + profile.repeats))
    for track in tracks:
        samples = list(datasets.generate(track, profile.samples_per_track, seed, profile.sizes))
        for fmt in formats:
            result, shards[track, fmt] = measure_format(
                track, fmt, samples, data_dir,
                samples_per_shard=profile.samples_per_shard, warmups=profile.warmups,
                repeats=profile.repeats, min_time_s=profile.min_time_s,
                budget_s=profile.format_budget_s, on_repeat=progress.advance,
            )
            res.formats.append(result)
            results.save(res, path)
        res.transforms.append(measure_transform(track, samples, profile, progress.advance))
        results.save(res, path)
    return shards


def _measure(res: results.Results, path: Path, profile: Profile, tracks: Sequence[str], formats: Sequence[str],
             data_dir: Path, assume: Sequence[str], progress: Progress, meter: EnergyMeter) -> None:
    """Every stage in order, each recorded in results.json; energy is read over the measuring ones."""
    seed = res.config.seed
    with meter:
        with stage(res, path, "probes"):
            run_probe_stage(res, path, profile, data_dir, progress)
        with stage(res, path, "formats"):
            shards = run_format_stage(res, path, profile, tracks, formats, seed, data_dir, progress)
        plan = profile.sweep
        sweep_tracks = [t for t in plan.tracks if t in tracks]
        sweep_formats = [f for f in plan.formats if f in formats]
        if sweep_tracks and sweep_formats:
            with stage(res, path, "sweep"):
                run_sweep_stage(res, path, shards, sweep_tracks, sweep_formats, plan, progress)
        with stage(res, path, "selection"):
            from feedtax.bench import selection

            progress.start("selection experiment", 1)
            res.selection = selection.run(selection.CONFIGS[profile.selection])
            progress.advance()
    with stage(res, path, "projections"):
        from feedtax.model.project import project_results

        progress.start("projections through mlsysim", 1)
        project_results(res, list(assume))
        progress.advance()
    res.status = "complete"


def _disk_full(exc: BaseException | None) -> OSError | None:
    """The full-disk error (ENOSPC, EDQUOT) behind exc, following its causes, else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return None


def _finish(res: results.Results, path: Path, data_dir: Path, meter: EnergyMeter, keep_data: bool) -> OSError | None:
    """Remove the shards (unless kept), then save results.json, so a full disk has room for it: kept shards go too
    if it does not fit. A signal waits until this is done. The full-disk error that stopped the save, if any."""
    with interrupts.deferred():
        res.energy = meter.result
        if not keep_data:
            outdir.remove_shards(data_dir)
        try:
            results.save(res, path)
        except OSError as exc:
            if _disk_full(exc) is None:
                raise
            if not keep_data:
                return exc
            outdir.remove_shards(data_dir)
            return _finish(res, path, data_dir, meter, keep_data=False)
    return None


def _full_message(full: OSError, out_dir: Path, path: Path, unsaved: OSError | None) -> str:
    what = f"cannot write {str(full.filename).removesuffix('.tmp')}" if full.filename else full.strerror or str(full)
    where = (f"what was measured is in {path}" if unsaved is None else
             f"{path} could not be saved either: it holds the run as last saved")
    free = outdir.free_bytes(out_dir)
    return (f"disk full ({what}): {free / 1e6:,.1f} MB ({free:,} bytes) free on {out_dir} once the shards were "
            f"removed; {where}")


def run(
    profile: Profile,
    out_dir: Path,
    *,
    tracks: Sequence[str] = TRACKS,
    formats: Sequence[str] = FORMATS,
    seed: int = 0,
    keep_data: bool = False,
    assume: Sequence[str] = (),
    progress: Progress = _SILENT,
    say: Callable[[str], None] = lambda line: None,
) -> results.Results:
    """Measure everything the profile asks for; results.json is valid after every step. `say` gets the lines about
    the output directory (what a killed run left and was removed, the previous results kept).

    Raises RunError or OutDirError before measuring (bad input, an unusable or busy OUT, too little room), DiskFull
    when the disk fills, and Interrupted on SIGINT, SIGTERM or SIGHUP."""
    path = preflight(out_dir, assume)
    data_dir = out_dir / "data"
    with outdir.claim(out_dir, lambda: ondisk.space_needed(profile, tracks, formats, seed), say) as held:
        res = _new_results(profile, out_dir, data_dir, tracks, formats, seed)
        held.describe(f"pid {os.getpid()}, run {res.run_id}, started {res.created_utc}")
        results.save(res, path)
        meter = EnergyMeter()
        with interrupts.latched():
            try:
                _measure(res, path, profile, tracks, formats, data_dir, assume, _Checked(progress), meter)
            except BaseException as exc:
                if res.status == "running":  # stopped between stages, or while a stage saved its end
                    stopped = isinstance(exc, KeyboardInterrupt) or interrupts.received() is not None
                    res.status = "interrupted" if stopped else "failed"
                full = _disk_full(exc)
                unsaved = _finish(res, path, data_dir, meter, keep_data and full is None)
                if full is not None or unsaved is not None:
                    raise DiskFull(_full_message(full or unsaved, out_dir, path, unsaved)) from exc
                raise
            unsaved = _finish(res, path, data_dir, meter, keep_data)
        if unsaved is not None:
            raise DiskFull(_full_message(unsaved, out_dir, path, unsaved))
    return res
