"""`feedtax sweep` over feedtax's own formats: shards freshly written (or, with --dataset-size, a dataset larger than
memory read cold window by window), both loaders or the tuned one at emulated storage tiers.

The command and its options are feedtax.cli.sweep's; this module runs what they ask for.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import typer
from rich.console import Console

from feedtax.cli.options import echo, echo_json, fail
from feedtax.vocabulary import TRACKS, StopRule


def sweep_formats(track: str, fmts: list[str], counts: list[int], loaders: list[str], prof, seed: int,
                  batch_size: int, steps: int, *, model: bool, step_ms: float | None, device: str | None,
                  peak_tflops: float | None, tiers: list | None = None, stop: StopRule | None = None,
                  dataset_bytes: int | None = None, data_dir: Path | None = None, keep_data: bool = False) -> tuple:
    """Both loaders (or those asked for) over freshly written shards of each format: rows, summaries, gaps and the
    datasets read (with dataset_bytes: each format's dataset of that size in data_dir, read cold window by window;
    keep_data: left there, for fio or a look, else removed);
    with tiers, the tuned loader at each storage tier instead: (DiskTierResult,)."""
    from feedtax.bench import interrupts
    from feedtax.bench.loadergap import sweep_loaders
    from feedtax.results.feeding import ConsumerSpec

    if device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise fail("--device cuda asked for, but torch sees no CUDA device (absent)")
    spec = ConsumerSpec(kind="model", step_s=None, device=device) if model else \
        ConsumerSpec(kind="emulated", step_s=(step_ms if step_ms is not None else 5.0) / 1000.0)
    peak = peak_tflops * 1e12 if peak_tflops is not None else None
    with interrupts.latched():  # Ctrl-C, SIGTERM and SIGHUP stop it the same way, and the shards go
        work = Path(tempfile.mkdtemp(prefix="feedtax-sweep-", dir=data_dir))
        try:
            shards, windows, reads = _shards(track, fmts, work, prof, seed, batch_size, max(counts, default=0), steps,
                                             dataset_bytes)
            from rich.console import Console
            console = Console(stderr=True)
            with console.status("sweeping...") as status:
                if tiers is not None:
                    from feedtax.bench.tiers import sweep_tiers

                    return (sweep_tiers(track, fmts, shards, counts, tiers, batch_size=batch_size, consumer=spec,
                                        steps=steps, stop=stop, peak_flop_per_s=peak,
                                        on_step=lambda label: status.update(f"sweeping: {label}")),)
                got = sweep_loaders(track, fmts, shards, counts, batch_size=batch_size, consumer=spec, steps=steps,
                                    loaders=loaders, stop=stop, peak_flop_per_s=peak, windows=windows,
                                    on_step=lambda label: status.update(f"sweeping: {label}"))
            from feedtax.bench import ondisk

            return (*got, [ondisk.summary(windows[f], reads[f]) for f in fmts] if windows else [])
        except KeyboardInterrupt as exc:
            raise stopped(exc) from None
        except OSError as exc:
            if interrupts.received() is not None:
                raise stopped(interrupts.received()) from None
            raise fail(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc.strerror or exc)) from None
        except Exception:
            if interrupts.received() is None:
                raise
            raise stopped(interrupts.received()) from None  # a worker the same signal stopped first
        finally:
            with interrupts.deferred():
                if keep_data and interrupts.received() is None:
                    echo(f"kept: {work}", err=True)
                else:
                    shutil.rmtree(work, ignore_errors=True)


def _shards(track: str, fmts: list[str], work: Path, prof, seed: int, batch_size: int, most: int, steps: int,
            dataset_bytes: int | None) -> tuple[dict, dict | None, dict | None]:
    """The shards each format's points read: the profile's samples (shards, None, None); or, with dataset_bytes, one
    window of each format's dataset for the breakdown and the default loader's fixes, the windows each point's runs
    take from, and each dataset's first read."""
    from feedtax import datasets
    from feedtax import formats as codecs

    if dataset_bytes is None:
        samples = list(datasets.generate(track, prof.samples_per_track, seed, prof.sizes))
        return {f: codecs.get(f).write(samples, work / f, samples_per_shard=prof.samples_per_shard)
                for f in fmts}, None, None
    from feedtax.bench import ondisk
    from feedtax.cli.progress import for_console

    with for_console(Console(stderr=True)) as progress:
        progress.start(f"writing {len(fmts)} dataset(s) of {dataset_bytes / 1e9:,.3g} GB", len(fmts) * 100)
        windows, reads = ondisk.prepare(track, fmts, work, dataset_bytes, seed=seed, sizes=prof.sizes,
                                        tick=progress.advance)
    for fmt in fmts:
        r, ds = reads[fmt], windows[fmt].ds
        echo(f"{track}/{fmt}: {ds.nbytes / 1e9:,.3f} GB in {len(ds.paths):,} shards ({ds.samples:,} samples), "
             f"written in {ds.write_s:,.1f} s; first read {r.read_mb_per_s:,.0f} MB/s"
             + ("" if r.whole else f" (its first {r.read_bytes / 1e9:,.2f} GB, the pass's time budget)"), err=True)
    first = (steps + 2 * most + 4) * batch_size  # as many as a profile's sweep shards hold (ondisk.sweep_samples)
    return {f: windows[f].take(first, 2 * most)[0] for f in fmts}, windows, reads


def stopped(exc: BaseException, saved: str = "") -> typer.Exit:
    """fail() for a sweep stopped by Ctrl-C, SIGTERM or SIGHUP: which signal, and where what it measured is (`saved`);
    exit 128 + the signal's number (130, 143, 129), as a shell reports a process the signal ended."""
    from feedtax.bench import interrupts

    stop = interrupts.interruption(exc)
    return fail(f"interrupted by {stop.name}{saved}", stop.exit_code)


def tier_names(given: list[str], loaders: list[str]) -> list[str]:
    """The --disk-tier names, each known (else one line naming the known ones); the tuned loader only."""
    from feedtax.model.tiers import TIER_NAMES

    names = list(dict.fromkeys(v.strip() for item in given for v in item.split(",") if v.strip()))
    unknown = [n for n in names if n not in TIER_NAMES]
    if unknown or not names:
        raise fail(f"--disk-tier: unknown tier {', '.join(unknown) or '(none given)'}; known: {', '.join(TIER_NAMES)}")
    if loaders != ["tuned"]:
        raise fail("--disk-tier sweeps feedtax's tuned loader only: leave out --loader, or give --loader tuned")
    return names


def sweep_at_tiers(names: list[str], track: str, fmts: list[str], counts: list[int], prof, seed: int,
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
    (result,) = sweep_formats(track, fmts, counts, ["tuned"], prof, seed, batch_size, steps,
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


def check_formats_sweep(sizes: list[int], model: bool, step_ms: float | None, track: str) -> None:
    """The formats sweep's options checked together: one batch size, --step-ms or --model, a known track."""
    if len(sizes) > 1:
        raise typer.BadParameter("several batch sizes are swept with --dataset only")
    if model and step_ms is not None:
        raise typer.BadParameter("give --step-ms or --model, not both")
    if track not in TRACKS:
        raise typer.BadParameter(f"unknown track {track!r}; choose from {', '.join(TRACKS)}")
