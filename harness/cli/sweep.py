"""`feedtax sweep`: the DataLoader worker sweep, printed as a table or JSON: over feedtax's formats on freshly
generated data (with --disk-tier, at emulated storage tiers), or (--dataset) over the user's own Dataset or DataLoader
factory, saved with --out as results.json and report.html.

Register with `app.command()(sweep)`. Imports stay cheap here: torch loads inside the command.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import typer

from feedtax.cli.options import MAX_WORKERS, Range, choices, echo, echo_json, fail, ranged, shown
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
_FORMATS_ONLY = ("format", "track", "model", "profile", "seed", "peak_tflops", "loader", "disk_tier")  # not --dataset
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
    _check_formats_sweep(batch_size, model, step_ms, track)
    from feedtax.bench import profiles

    fmts = choices(format, FORMATS, "format", ["json", "protobuf"] if disk_tier else list(profiles.CI_SWEEP.formats))
    loaders = choices(loader, LOADERS, "loader")
    counts = sorted(workers)
    try:
        prof = profiles.get(profile)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if disk_tier:
        return _sweep_at_tiers(_tier_names(disk_tier, loaders if loader else ["tuned"]), track, fmts, counts, prof,
                               seed, batch_size[0], steps, model=model, step_ms=step_ms, device=device,
                               peak_tflops=peak_tflops, as_json=as_json, out=out, stop=stop)

    rows, summaries, gaps = _sweep_formats(track, fmts, counts, loaders, prof, seed, batch_size[0], steps,
                                           model=model, step_ms=step_ms, device=device, peak_tflops=peak_tflops,
                                           stop=stop)
    if as_json:  # the shape of results.json's loader and feeding sections
        typer.echo(json.dumps({"loader": [r.model_dump() for r in rows],
                               "feeding": {"summaries": [s.model_dump() for s in summaries],
                                           "loader_gaps": [g.model_dump() for g in gaps]}}, indent=2))
        return
    from feedtax.cli.tables import print_formats

    print_formats(rows, summaries, gaps)


def _sweep_formats(track: str, fmts: list[str], counts: list[int], loaders: list[str], prof, seed: int,
                   batch_size: int, steps: int, *, model: bool, step_ms: float | None, device: str | None,
                   peak_tflops: float | None, tiers: list | None = None, stop: StopRule | None = None) -> tuple:
    """Both loaders (or those asked for) over freshly written shards of each format: rows, summaries and gaps; with
    tiers, the tuned loader at each storage tier instead: (DiskTierResult,)."""
    from feedtax import datasets
    from feedtax import formats as codecs
    from feedtax.bench import interrupts
    from feedtax.bench.loadergap import sweep_loaders
    from feedtax.results.feeding import ConsumerSpec

    if device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise fail("--device cuda asked for, but torch sees no CUDA device (absent)")
    spec = ConsumerSpec(kind="model", step_s=None, device=device) if model else \
        ConsumerSpec(kind="emulated", step_s=(step_ms if step_ms is not None else 5.0) / 1000.0)
    with interrupts.latched():  # Ctrl-C, SIGTERM and SIGHUP stop it the same way, and the shards go
        work = Path(tempfile.mkdtemp(prefix="feedtax-sweep-"))
        try:
            samples = list(datasets.generate(track, prof.samples_per_track, seed, prof.sizes))
            shards = {f: codecs.get(f).write(samples, work / f, samples_per_shard=prof.samples_per_shard)
                      for f in fmts}
            from rich.console import Console
            console = Console(stderr=True)
            with console.status("sweeping...") as status:
                if tiers is not None:
                    from feedtax.bench.tiers import sweep_tiers

                    return (sweep_tiers(track, fmts, shards, counts, tiers, batch_size=batch_size, consumer=spec,
                                        steps=steps, stop=stop,
                                        on_step=lambda label: status.update(f"sweeping: {label}"),
                                        peak_flop_per_s=peak_tflops * 1e12 if peak_tflops is not None else None),)
                return sweep_loaders(
                    track, fmts, shards, counts, batch_size=batch_size, consumer=spec, steps=steps, loaders=loaders,
                    stop=stop, peak_flop_per_s=peak_tflops * 1e12 if peak_tflops is not None else None,
                    on_step=lambda label: status.update(f"sweeping: {label}"))
        except KeyboardInterrupt as exc:
            raise _stopped(exc) from None
        except Exception:
            if interrupts.received() is None:
                raise
            raise _stopped(interrupts.received()) from None  # a worker the same signal stopped first
        finally:
            with interrupts.deferred():
                shutil.rmtree(work, ignore_errors=True)


def _stopped(exc: BaseException, saved: str = "") -> typer.Exit:
    """fail() for a sweep stopped by Ctrl-C, SIGTERM or SIGHUP: which signal, and where what it measured is (`saved`);
    exit 128 + the signal's number (130, 143, 129), as a shell reports a process the signal ended."""
    from feedtax.bench import interrupts

    stop = interrupts.interruption(exc)
    return fail(f"interrupted by {stop.name}{saved}", stop.exit_code)


def _tier_names(given: list[str], loaders: list[str]) -> list[str]:
    """The --disk-tier names, each known (else one line naming the known ones); the tuned loader only."""
    from feedtax.model.tiers import TIER_NAMES

    names = list(dict.fromkeys(v.strip() for item in given for v in item.split(",") if v.strip()))
    unknown = [n for n in names if n not in TIER_NAMES]
    if unknown or not names:
        raise fail(f"--disk-tier: unknown tier {', '.join(unknown) or '(none given)'}; known: {', '.join(TIER_NAMES)}")
    if loaders != ["tuned"]:
        raise fail("--disk-tier sweeps feedtax's tuned loader only: leave out --loader, or give --loader tuned")
    return names


def _sweep_at_tiers(names: list[str], track: str, fmts: list[str], counts: list[int], prof, seed: int,
                    batch_size: int, steps: int, *, as_json: bool, out: Path | None, **consumer) -> None:
    """The tuned loader at each storage tier asked for: a table per tier and the Lock's answer in words (or the
    DiskTierResult as JSON); with --out, results.json (disk_tiers) and report.html."""
    from feedtax.bench import runner
    from feedtax.model.tiers import storage_tiers

    try:
        path = runner.prepare_out(out) if out is not None else None
    except runner.RunError as exc:
        raise fail(str(exc)) from None
    known = storage_tiers()
    (result,) = _sweep_formats(track, fmts, counts, ["tuned"], prof, seed, batch_size, steps,
                               tiers=[known[n] for n in names], **consumer)
    if path is not None:  # results.json holding the tiers' sweep (its rows in disk_tiers), and its report
        from feedtax import results
        from feedtax.reports import html

        res = runner._new_results(prof, out, Path(tempfile.gettempdir()), [track], fmts, seed)
        res.disk_tiers, res.status = result, "complete"
        results.save(res, path)
        html.write(res, out / "report.html")
    if as_json:
        echo_json(result.model_dump_json(indent=2))
        return
    from feedtax.cli.tables import print_tiers

    print_tiers(result)
    if path is not None:
        echo(f"results: {path}\nreport:  {out / 'report.html'}", err=True)


def _check_formats_sweep(sizes: list[int], model: bool, step_ms: float | None, track: str) -> None:
    """The formats sweep's options checked together: one batch size, --step-ms or --model, a known track."""
    if len(sizes) > 1:
        raise typer.BadParameter("several batch sizes are swept with --dataset only")
    if model and step_ms is not None:
        raise typer.BadParameter("give --step-ms or --model, not both")
    if track not in TRACKS:
        raise typer.BadParameter(f"unknown track {track!r}; choose from {', '.join(TRACKS)}")


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
