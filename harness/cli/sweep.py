"""`feedtax sweep`: the DataLoader worker sweep, printed as a table or JSON: over feedtax's formats on freshly
generated data (with --disk-tier, at emulated storage tiers), or (--dataset) over the user's own Dataset or DataLoader
factory, saved with --out as results.json and report.html.

Register with `app.command()(sweep)`. Imports stay cheap here: torch loads inside the command.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import typer

from feedtax.cli.options import MAX_WORKERS, Range, choices, echo, fail, ranged, shown
from feedtax.cli.sweep_formats import check_formats_sweep, sweep_at_tiers, sweep_formats, tier_names
from feedtax.vocabulary import AU_CI_PP, AU_MAX_S, AU_MAX_STEPS, FORMATS, LOADERS, TRACKS, StopRule

_FORMAT_HELP = f"Formats (repeat or comma-separate): {', '.join(FORMATS)}."
_TRACK_HELP = f"Track whose samples to load: {', '.join(TRACKS)}."
_DATASET_HELP = ("Sweep your own pipeline instead of feedtax's formats: package.module:factory, imported with the "
                 "current directory on sys.path (as python -m does). A factory taking no argument returns a torch "
                 "Dataset: each point builds DataLoader(ds, batch_size=B, num_workers=W, shuffle=False). A factory "
                 "taking num_workers and batch_size returns the DataLoader itself.")
_TRAIN_STEP_HELP = ("With --dataset: feed your own train_step(batch), package.module:function, timed by feedtax "
                    "(CUDA synchronised around it on a GPU), instead of an emulated step.")
_OUT_HELP = ("With --dataset or --disk-tier: write DIR/results.json (with --dataset after every measured point) and "
             "DIR/report.html.")
_DISK_TIER_HELP = ("Sweep feedtax's tuned loader with every shard read at these storage tiers' bandwidth and latency "
                   "(repeat or comma-separate; mlsysim's tiers: hdd, sata, nvme) and answer: Protobuf or a faster "
                   "disk? Formats default to json,protobuf. A tier faster than this machine's disk is not swept.")
_RANK_TIMEOUT_HELP = ("With --dataset under torchrun (RANK, WORLD_SIZE set): the process group's timeout, which "
                      "bounds every wait for another rank; each rank measures every point, rank 0 saves and prints.")
_DATASET_SIZE_HELP = ("Sweep a dataset of this size on disk per format (20GB, 500MiB) instead of the profile's shards: "
                      "written streaming, read once in order (its disk rate, beside fio's), then each run of each "
                      "point reads the next shards, dropped from the page cache first, so reads are cold. Nothing "
                      "holds it in memory. Refused when --data-dir has not the room.")
_KEEP_HELP = ("With --dataset-size: leave the datasets in --data-dir (their folder is printed), to read them again "
              "with fio or anything else.")
_DATA_DIR_HELP = "With --dataset-size: where the datasets go (default: the system's temporary directory)."
_FORMATS_ONLY = ("format", "track", "model", "profile", "seed", "peak_tflops", "loader", "disk_tier",
                 "dataset_size", "data_dir", "keep_data")  # not --dataset
LOADER_HELP = ("Loaders to sweep (comma-separate): default (torch's DataLoader as a student writes it, "
               "default_collate) and tuned (feedtax's); both by default.")


# Each numeric option's range (cli.options.Range), checked as the command line is read
WORKERS = Range(0, MAX_WORKERS, whole=True, listed=True)  # MAX_WORKERS says why
BATCH = Range(1, 65_536, whole=True, listed=True)  # 2**16 samples: a batch of 1 kB samples is 64 MB per prefetch
STEPS = Range(1, 100_000, whole=True)  # 100,000 steps of the default 5 ms step: over 8 minutes per point
STEP_MS = Range(0, 10_000)  # up to 10 s per step, slower than any accelerator's step at a batch feedtax sweeps
PEAK_TFLOPS = Range(0, 100_000, above=True)  # 100 PFLOP/s, past any one device
SEED = Range(0, 2**32 - 1, whole=True)  # numpy's seeds
RANK_TIMEOUT_S = Range(1, 86_400)  # a second to a day
AU_CI = Range(0, 100, above=True)  # an interval's width in percentage points: more than 0, at most AU's whole range
MAX_S = Range(0, 3_600, above=True)  # an hour of measuring per point
DATASET_SIZE = Range(10**6, 10**15, size=True)  # a MB (a few shards) to a PB
_STEPS_HELP = "Measured steps per run (warm-up steps come on top); with the consumer, the minimum."
_AU_CI_HELP = ("Measure each point with the consumer past --steps until the 95% interval of its AU is narrower than "
               "this many percentage points (or a cap: --max-steps, --max-s); wider points are marked.")


def sweep(
    ctx: typer.Context,
    format: list[str] | None = typer.Option(None, "--format", help=_FORMAT_HELP),
    workers: str = ranged("0,1,2,4", "--workers", help="Worker counts, comma-separated.", within=WORKERS),  # list[int]
    track: str = typer.Option("edge", help=_TRACK_HELP),
    step_ms: float | None = ranged(None, "--step-ms", help="Emulated accelerator: sleep this long per batch "
                                   "(default 5).", within=STEP_MS),
    model: bool = typer.Option(False, "--model", help="Feed the track's real small model instead of an emulated step."),
    device: str | None = typer.Option(None, help="Where --model or --train-step runs: cpu or cuda (default: cuda "
                                                 "when present)."),
    peak_tflops: float | None = ranged(None, "--peak-tflops", help="The device's peak TFLOP/s for MFU (default on "
                                       "a GPU: its peak at the model's precision, fp32 or tf32, from mlsysim's "
                                       "registry).", within=PEAK_TFLOPS),
    profile: str = typer.Option("ci", help="Sample sizes and dataset size from this profile."),
    batch_size: str = ranged("16", "--batch-size", help="Samples per batch; with --dataset, comma-separate several "
                             "to sweep batch sizes too.", within=BATCH),  # list[int]
    steps: int = ranged(20, "--steps", help=_STEPS_HELP, within=STEPS),
    au_ci_pp: float = ranged(AU_CI_PP, "--au-ci-pp", help=_AU_CI_HELP, within=AU_CI),
    max_steps: int | None = ranged(None, "--max-steps", help=f"The cap on measured steps per point with the consumer "
                                   f"(default {AU_MAX_STEPS}; --steps' value: a fixed count).", within=STEPS),
    max_s: float = ranged(AU_MAX_S, "--max-s", help="The cap on measured seconds per point with the consumer.",
                          within=MAX_S),
    seed: int = ranged(0, "--seed", help="Seed of the synthetic data.", within=SEED),
    as_json: bool = typer.Option(False, "--json", help="Print rows and summary as JSON."),
    dataset: str | None = typer.Option(None, "--dataset", help=_DATASET_HELP),
    train_step: str | None = typer.Option(None, "--train-step", help=_TRAIN_STEP_HELP),
    out: Path | None = typer.Option(None, "--out", help=_OUT_HELP),
    rank_timeout_s: float = ranged(300.0, "--rank-timeout-s", help=_RANK_TIMEOUT_HELP, within=RANK_TIMEOUT_S),
    loader: list[str] | None = typer.Option(None, "--loader", help=LOADER_HELP),
    disk_tier: list[str] | None = typer.Option(None, "--disk-tier", help=_DISK_TIER_HELP),
    dataset_size: int | None = ranged(None, "--dataset-size", help=_DATASET_SIZE_HELP, within=DATASET_SIZE),
    data_dir: Path | None = typer.Option(None, "--data-dir", help=_DATA_DIR_HELP),
    keep_data: bool = typer.Option(False, "--keep-data", help=_KEEP_HELP),
) -> None:
    """Sweep formats (or, with --dataset, your own pipeline's batch sizes) x DataLoader worker counts: feeding tax,
    flow equilibrium, where the wait comes from."""
    if device not in (None, "cpu", "cuda"):
        raise typer.BadParameter("--device is cpu or cuda")
    if max_steps is not None and max_steps < steps:
        raise typer.BadParameter(f"--max-steps ({max_steps}) is below --steps ({steps}), the minimum")
    stop = StopRule(au_ci_pp, max_steps if max_steps is not None else max(steps, AU_MAX_STEPS), max_s)
    given = [n for n in (*_FORMATS_ONLY, "rank_timeout_s")
             if getattr(ctx.get_parameter_source(n), "name", "DEFAULT") != "DEFAULT"]
    if dataset is not None:
        if given and given[0] != "rank_timeout_s":
            raise typer.BadParameter(f"--{given[0].replace('_', '-')} is for feedtax's own formats, not --dataset")
        return _sweep_pipeline(dataset, sorted(workers), batch_size, step_ms=step_ms,
                              train_step=train_step, device=device, steps=steps, as_json=as_json, out=out,
                              rank_timeout_s=rank_timeout_s, stop=stop)
    if train_step is not None or (out is not None and not disk_tier) or "rank_timeout_s" in given:
        raise typer.BadParameter("--train-step, --out and --rank-timeout-s go with --dataset (--out also with "
                                 "--disk-tier)")
    check_formats_sweep(batch_size, model, step_ms, track)
    from feedtax.bench import profiles

    fmts = choices(format, FORMATS, "format", ["json", "protobuf"] if disk_tier else list(profiles.CI_SWEEP.formats))
    loaders, counts = choices(loader, LOADERS, "loader"), sorted(workers)
    try:
        prof = profiles.get(profile)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    sized = _datasets(dataset_size, data_dir, keep_data, fmts, track, prof, seed, bool(disk_tier))
    if disk_tier:
        return sweep_at_tiers(tier_names(disk_tier, loaders if loader else ["tuned"]), track, fmts, counts, prof,
                               seed, batch_size[0], steps, model=model, step_ms=step_ms, device=device,
                               peak_tflops=peak_tflops, as_json=as_json, out=out, stop=stop)
    rows, summaries, gaps, reads = sweep_formats(track, fmts, counts, loaders, prof, seed, batch_size[0], steps,
                                                 model=model, step_ms=step_ms, device=device, peak_tflops=peak_tflops,
                                                 stop=stop, **sized)
    if as_json:  # the shape of results.json's loader and feeding sections
        typer.echo(json.dumps({"loader": [r.model_dump() for r in rows],
                               "feeding": {"summaries": [s.model_dump() for s in summaries],
                                           "loader_gaps": [g.model_dump() for g in gaps],
                                           "datasets": [d.model_dump() for d in reads]}}, indent=2))
        return
    from feedtax.cli.tables import print_formats

    print_formats(rows, summaries, gaps)


def _datasets(size: int | None, data_dir: Path | None, keep: bool, fmts: list[str], track: str, prof, seed: int,
              tiers: bool) -> dict:
    """sweep_formats' dataset options, after the checks: --data-dir a directory with room for every format's dataset
    (else one line with the figures, exit 2); notes where its reads can be cold by eviction only."""
    if tiers and (size is not None or data_dir is not None):
        raise typer.BadParameter("--dataset-size and --data-dir go without --disk-tier (a tier paces reads to its "
                                 "own bandwidth, cached or not)")
    if size is None:
        if data_dir is not None or keep:
            raise typer.BadParameter("--data-dir and --keep-data go with --dataset-size")
        return {}
    from feedtax.bench import ondisk, outdir
    from feedtax.probes.disk import IN_MEMORY_FS
    from feedtax.probes.host import fs_type

    where = Path(data_dir if data_dir is not None else tempfile.gettempdir())
    if not where.is_dir():
        raise fail(f"{where}: --data-dir {'is not a directory' if where.exists() else 'does not exist'}")
    plan = ondisk.plan_shards(track, fmts, seed=seed, sizes=prof.sizes, size_bytes=size)
    need = ondisk.dataset_space(size, max(b for _, b in plan.values()), len(fmts))
    try:
        outdir.check_space(where, need, f"{len(fmts)} dataset(s) of {size / 1e9:,.3g} GB (--dataset-size)",
                           hint="choose another --data-dir, a smaller --dataset-size or fewer --format")
    except outdir.OutDirError as exc:
        raise fail(str(exc)) from None
    if fs_type(where) in IN_MEMORY_FS:
        echo(f"note: {where} is in memory ({fs_type(where)}): its reads are memory reads, never cold", err=True)
    elif size <= ondisk.memory_bytes():
        echo(f"note: {size / 1e9:,.3g} GB fits in this machine's memory ({ondisk.memory_bytes() / 1e9:,.1f} GB): its "
             "reads are cold by eviction only, and a cache below this OS may still hold it", err=True)
    return {"dataset_bytes": size, "data_dir": where, "keep_data": keep}


# ---------------------------------------------------------------------------------------------
# --dataset: the user's own pipeline


def _sweep_pipeline(dataset: str, counts: list[int], sizes: list[int], *, step_ms: float | None,
                    train_step: str | None, device: str | None, steps: int, as_json: bool, out: Path | None,
                    rank_timeout_s: float = 300.0, stop: StopRule | None = None) -> None:
    """Sweep the user's pipeline; with --out save results.json after every point (a stopped sweep keeps what it
    measured, its stage marked failed or interrupted) and render report.html, also of a stopped one. Under torchrun
    every rank measures every point and rank 0 alone saves and prints; the others print only their errors."""
    from contextlib import nullcontext

    from rich.console import Console

    from feedtax import results
    from feedtax.bench import interrupts, runner
    from feedtax.bench import pipeline as pl
    from feedtax.bench.feeding import FeedingError

    if step_ms is not None and train_step is not None:
        raise typer.BadParameter("give --step-ms or --train-step, not both")
    if device is not None and train_step is None:
        raise typer.BadParameter("--device says where --train-step runs: give --train-step too")
    env = _torchrun()
    who = "" if env is None else f"rank {env[0]} of {env[1]}: "
    lead = env is None or env[0] == 0  # the process that prints and saves
    try:
        feed = pl.Feed(*_consumer(pl, train_step, step_ms, device, env), steps, stop=stop)
        started = _init_group(feed, env, rank_timeout_s)
        pipe = pl.Pipeline(dataset, distributed=env is not None)
        pipe.source(sizes[0], counts[0])  # a loader factory is called once, and its DataLoader checked, before any run
        path = runner.prepare_out(out) if out is not None and lead else None
    except (pl.PipelineError, runner.RunError) as exc:
        raise _fail(who + str(exc), lead, rank_timeout_s) from None
    plan = {"dataset": dataset, "kind": pipe.kind, "workers": counts, "batch_sizes": sizes, "steps": steps,
            "consumer": feed.spec.model_dump(), "world_size": pipe.world}
    res = pl.new_results(plan, Path.cwd()) if path is not None else None
    console = Console(stderr=True, quiet=not lead)

    def on_point(section, label: str) -> None:
        interrupts.check()  # a Ctrl-C swallowed while a DataLoader shut its workers down stops here
        status.update(f"sweeping {shown(dataset)}: {shown(label)}")
        if res is not None:
            res.pipeline = section
            results.save(res, path)

    with interrupts.latched():  # Ctrl-C, SIGTERM and SIGHUP: the same stop, saying which, exit 128 + its number
        try:
            with console.status(f"sweeping {shown(dataset)}...") as status, \
                    runner.stage(res, path, "pipeline") if res is not None else nullcontext():
                section = pl.sweep_pipeline(pipe, feed, counts, sizes, on_point)
        except (KeyboardInterrupt, pl.PipelineError, FeedingError) as exc:
            stop = exc if isinstance(exc, KeyboardInterrupt) else interrupts.received()  # a worker killed by it
            with interrupts.deferred():
                _report_partial(res, out)
            if stop is None:
                text = str(exc) if str(exc).startswith("rank ") else who + str(exc)
                raise _fail(text + (f" (what was measured is in {path})" if path else ""), lead,
                            rank_timeout_s) from None
            stop = interrupts.interruption(stop)
            raise _fail(f"{who}interrupted by {stop.name}" + (f": what was measured is in {path}" if path else ""),
                        lead, rank_timeout_s, stop.exit_code) from None
    if started:
        import torch.distributed as dist

        dist.destroy_process_group()
    if res is not None:
        res.status = "complete"
        results.save(res, path)
    if not lead:
        return
    if as_json:
        typer.echo(json.dumps({"pipeline": section.model_dump(mode="json")}, indent=2))  # ASCII: \u escapes
    else:
        from feedtax.cli.tables import print_pipeline

        print_pipeline(section)
    if res is not None:
        from feedtax.reports import html

        console.print(f"results: {shown(path)}\nreport:  {shown(html.write(res, out / 'report.html'))}")


def _torchrun() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) under torchrun, else None; a malformed environment fails in one line."""
    from feedtax.bench import ranks

    try:
        return ranks.torchrun_env()
    except ValueError as exc:
        raise fail(str(exc)) from None


def _fail(message: str, lead: bool, timeout_s: float, code: int = 2):
    """fail(message), said by this rank; under torchrun the other ranks then wait for rank 0 to have said its own
    (torchrun stops every rank once one exits)."""
    from feedtax.bench import ranks

    exit_ = fail(message, code)
    ranks.leave(lead, timeout_s + 30)
    return exit_


def _init_group(feed, env: tuple[int, int, int] | None, timeout_s: float) -> bool:
    """Under torchrun, the process group (nccl for a consumer on CUDA with a GPU per local rank, else gloo: nccl
    refuses two ranks on one GPU), unless the caller made one: whether it was started here."""
    if env is None:
        return False
    import torch

    from feedtax.bench import ranks

    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    cuda = str(feed.consumer.device).startswith("cuda") and torch.cuda.device_count() >= local
    backend = "nccl" if cuda else "gloo"
    try:
        return ranks.init_from_env(backend, timeout_s)
    except (RuntimeError, ValueError) as exc:
        line = " ".join(str(exc).split())[:300]
        raise fail(f"rank {env[0]} of {env[1]}: the {backend} process group did not start within {timeout_s:g} s "
                   f"(--rank-timeout-s): {line}") from None


def _consumer(pl, train_step: str | None, step_ms: float | None, device: str | None, env=None) -> tuple:
    """(consumer, its PipelineConsumer): the user's train_step, timed by feedtax, or an emulated step (default 5 ms).
    Under torchrun a train_step on CUDA runs on the rank's local GPU (LOCAL_RANK)."""
    from feedtax.bench.consumers import as_consumer
    from feedtax.results.pipeline import PipelineConsumer

    if train_step is not None:
        if device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise fail("--device cuda asked for, but torch sees no CUDA device (absent)")
        if env is not None and device != "cpu":
            import torch

            if torch.cuda.is_available():
                torch.cuda.set_device(env[2] % torch.cuda.device_count())
        consumer = as_consumer(pl.resolve(train_step, "--train-step"), device=device)
        return consumer, PipelineConsumer(kind="train_step", train_step=train_step, device=str(consumer.device))
    step_s = (step_ms if step_ms is not None else 5.0) / 1000.0
    return as_consumer(step_s), PipelineConsumer(kind="emulated", step_s=step_s, device="emulated")


def _report_partial(res, out: Path | None) -> None:
    """The report of a stopped sweep, from what it saved."""
    if res is None or res.pipeline is None:
        return
    from feedtax.reports import html

    try:
        html.write(res, out / "report.html")
    except Exception:  # the error being reported matters more; results.json holds what was measured
        pass
