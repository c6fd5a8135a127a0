"""`feedtax run`: measure every stage with progress bars, save results.json as it goes, then write the report.

Every option and output path is checked before anything is measured, and OUT is held by one run at a time. A stopped
run (Ctrl-C, SIGTERM, SIGHUP, a failed stage, a full disk) still renders a report of what it saved and says so in one
line. Only typer is imported here; the runner, rich and the report load inside the command.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from feedtax.cli import repeat as repeats
from feedtax.cli.classroom import MARKDOWN_HELP, METRICS_HELP, regression_threshold
from feedtax.cli.options import Range, choices, fail, make_console, make_table, ranged, shown
from feedtax.cli.sweep import AU_CI, DATASET_SIZE, LOADER_HELP, MAX_S, STEPS
from feedtax.vocabulary import AU_CI_PP, DEFAULT_PROFILE, FORMATS, LOADERS, TRACKS, StopRule

_TRACKS_HELP = f"Tracks to run (repeat or comma-separate): {', '.join(TRACKS)}."
_FORMATS_HELP = f"Formats to measure: {', '.join(FORMATS)}."
_DATASET_SIZE_HELP = ("The DataLoader sweep reads a dataset of this size on disk per swept format (20GB, 500MiB) "
                      "instead of shards the size of the profile's: written streaming under OUT/data, read once in "
                      "order, then each point on shards dropped from the page cache first; each track's datasets are "
                      "removed after its sweep. Refused when OUT has not the room.")
REPEAT = Range(1, 100, whole=True)  # a hundred runs of the ci profile: about four hours on 2 cores
_REPEAT_HELP = ("Measure the profile N times and merge them: OUT/results.json holds each metric over the runs' medians "
                "(n = N), so --fail-on-regression tests against the spread between runs, as a shared CI runner "
                "needs; each run is kept as OUT/repeats/run-K.json.")
_BASELINE_HELP = ("Then gate this run against BASELINE.json (a run of the same profile, tracks, formats and --repeat "
                  "on this host class): exit 1 when a metric regressed beyond --fail-on-regression, 2 when the gate "
                  "cannot judge. The baseline is read and checked before anything is measured.")
_AU_CI_HELP = ("Measure each sweep point with the consumer past the profile's steps until the 95% interval of its AU "
               f"is narrower than this many percentage points (default {AU_CI_PP:g}), or a cap (--max-steps, --max-s); "
               "wider points are marked.")
_GATE_HELP = ("With --baseline: fail when any metric is significantly worse than the baseline's (Welch's t-test) by "
              "more than PCT percent (10 or 10%) or a factor (2x: a rate below half, a time above double). Range: "
              "0%..1000%, or a factor over 1, up to 1000x.")


def run(
    profile: str = typer.Option(DEFAULT_PROFILE, help="ci (under a minute), laptop (about 7 minutes on 2 cores) or "
                                                       "full (a workstation)."),
    out: Path = typer.Option(Path("feedtax-out"), help="Directory for results.json, report.html and data/."),
    tracks: list[str] | None = typer.Option(None, help=_TRACKS_HELP),
    formats: list[str] | None = typer.Option(None, help=_FORMATS_HELP),
    seed: int = typer.Option(0, min=0, max=2**32 - 1,
                             help="Seed of the synthetic datasets (same seed: byte-identical data)."),
    keep_data: bool = typer.Option(False, help="Keep the shards under OUT/data after the run."),
    assume: list[str] | None = typer.Option(None, help="Override a projection assumption: key=value (repeat)."),
    submit: Path | None = typer.Option(None, help="Also write the results as DIR/<run_id>.json, for your instructor."),
    loader: list[str] | None = typer.Option(None, "--loader", help=LOADER_HELP),
    dataset_size: int | None = ranged(None, "--dataset-size", help=_DATASET_SIZE_HELP, within=DATASET_SIZE),
    repeat: int = ranged(1, "--repeat", metavar="N", help=_REPEAT_HELP, within=REPEAT),
    baseline: Path | None = typer.Option(None, "--baseline", metavar="BASELINE.json", help=_BASELINE_HELP),
    fail_on: Any = typer.Option(None, "--fail-on-regression", metavar="PCT|FACTORx", parser=regression_threshold,
                                help=_GATE_HELP),
    metric_globs: list[str] | None = typer.Option(None, "--metrics", metavar="GLOB", help=METRICS_HELP),
    markdown: Path | None = typer.Option(None, "--markdown", metavar="FILE", help=MARKDOWN_HELP),
    au_ci_pp: float | None = ranged(None, "--au-ci-pp", help=_AU_CI_HELP, within=AU_CI),
    max_steps: int | None = ranged(None, "--max-steps", help="The cap on measured steps per sweep point with the "
                                   "consumer (default: the profile's).", within=STEPS),
    max_s: float | None = ranged(None, "--max-s", help="The cap on measured seconds per sweep point with the consumer "
                                 "(default: the profile's; ci: 1).", within=MAX_S),
) -> None:
    """Measure, write OUT/results.json stage by stage, then OUT/report.html. A rerun keeps the previous
    results.json and report.html as results.prev.json and report.prev.html.

    Exit status: 0; 1 when the run failed, or with --baseline when a metric regressed; 2 for bad input (with
    --baseline: also a baseline that cannot be used, or runs not like with like); 128 + N when signal N stopped it.
    """

    from feedtax.bench import interrupts, ondisk, outdir, runner
    from feedtax.results.projections import AssumptionError

    prof = _profile(profile, loader, dataset_size, au_ci_pp, max_steps, max_s)
    track_list = choices(tracks, TRACKS, "track")
    format_list = choices(formats, FORMATS, "format")
    if (metric_globs or markdown is not None) and fail_on is None:
        raise fail("--metrics and --markdown belong to the regression gate: give --baseline and --fail-on-regression")
    if (baseline is None) != (fail_on is None):
        raise fail("--baseline and --fail-on-regression go together: the gate needs a baseline and a threshold")
    console = make_console(stderr=True)
    refused = (runner.RunError, outdir.OutDirError, AssumptionError)
    try:  # every output path and option, before anything is measured
        runner.preflight(out, assume or ())
        if submit is not None:
            outdir.check_writable(submit, "the submission")
    except refused as exc:
        raise fail(str(exc)) from None
    base = None if baseline is None else repeats.check_baseline(
        baseline, markdown, repeats.planned(prof, out, track_list, format_list, seed, repeat), metric_globs)
    say = lambda line: console.print(line, markup=False, highlight=False)  # noqa: E731
    with interrupts.latched():  # from here on SIGTERM and SIGHUP stop the run as Ctrl-C does
        try:
            with outdir.claim(out, lambda: ondisk.space_needed(prof, track_list, format_list, seed), say):
                _set_aside_lab(out, console)
                repeats.set_aside(out, say)
                res, report = _run_and_report(prof, out, console, repeat, say, tracks=track_list,
                                              formats=format_list, seed=seed, keep_data=keep_data,
                                              assume=assume or ())
        except refused as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt as exc:  # while OUT was being made ready: nothing measured
            stop = interrupts.interruption(exc)
            raise _stop(f"interrupted by {stop.name} before anything was measured", stop.exit_code) from None
    _summary(console, res)
    console.print(f"results: {shown(out / 'results.json')}\nreport:  {shown(report)}")
    if submit is not None:
        from feedtax.classroom.submit import SubmitError, write_submission

        try:  # a new run has no lab record yet: `feedtax lab --submit` sends one with its run
            console.print(f"submission: {shown(write_submission(res, submit))}")
        except SubmitError as exc:
            raise fail(str(exc)) from None
    if base is not None:
        repeats.gate_run(base, baseline, res, fail_on, metric_globs, markdown, console)


def _profile(name: str, loader: list[str] | None, dataset_size: int | None, au_ci_pp: float | None,
             max_steps: int | None, max_s: float | None):
    """The profile named, with the sweep's loaders, dataset size and stopping rule as the options set them."""
    from feedtax.bench import profiles

    try:
        prof = profiles.get(name)
    except ValueError as exc:
        raise fail(str(exc)) from None
    return replace(prof, sweep=replace(prof.sweep, loaders=tuple(choices(loader, LOADERS, "loader")),
                                       dataset_bytes=dataset_size, stop=_stop_rule(prof, au_ci_pp, max_steps, max_s)))


def _stop_rule(prof, au_ci_pp: float | None, max_steps: int | None, max_s: float | None) -> StopRule | None:
    """The profile's stopping rule for each sweep point, with what --au-ci-pp, --max-steps and --max-s change."""
    given = {k: v for k, v in (("au_ci_pp", au_ci_pp), ("max_steps", max_steps), ("max_s", max_s)) if v is not None}
    if not given:
        return prof.sweep.stop
    if max_steps is not None and max_steps < prof.sweep.steps:
        raise fail(f"--max-steps ({max_steps}) is below the {prof.name} profile's {prof.sweep.steps} measured steps, "
                   "the minimum")
    return replace(prof.sweep.stop or StopRule(), **given)


def _run_and_report(prof, out: Path, console, repeat: int, say, **options):
    """The run (or its repeats, merged), then its report: (results, report path). A run that stops renders what it
    saved and ends the command with one line: 1 for a failure or a full disk, 128 + the signal's number for a
    signal."""
    from feedtax.bench import interrupts, outdir, runner
    from feedtax.cli.progress import for_console
    from feedtax.reports import html
    from feedtax.results.projections import AssumptionError

    saved = out / "results.json"
    try:
        with for_console(console) as progress:
            if repeat == 1:
                res = runner.run(prof, out, progress=progress, **options)
            else:
                res = repeats.measure_repeats(prof, out, progress, repeat, say, **options)
            interrupts.check()  # a signal that came while the last save ran
            progress.start("report", 1)
            report = html.write(res, out / "report.html")
            progress.advance()
        return res, report
    except (runner.RunError, outdir.OutDirError, AssumptionError):
        raise
    except runner.DiskFull as exc:
        _report_partial(out)
        raise _stop(str(exc), 1) from None
    except KeyboardInterrupt as exc:
        stop = interrupts.interruption(exc)
    except Exception as exc:
        if (stop := interrupts.received()) is None:
            _report_partial(out)
            raise _stop(f"run failed: {type(exc).__name__}: {exc} (partial results in {saved})", 1) from None
    _report_partial(out)
    where = f"what was measured is in {saved}" if saved.exists() else "nothing was measured yet"
    raise _stop(f"interrupted by {stop.name}: {where}", stop.exit_code)


def _stop(message: str, code: int) -> typer.Exit:
    """`fail`, also where stderr went with a closed terminal (SIGHUP): the exit code still says what happened."""
    try:
        return fail(message, code)
    except OSError:
        return typer.Exit(code)


def _set_aside_lab(out: Path, console) -> None:
    """A new run gets a new run_id, so the lab record of the run it replaces is kept as lab-<that run_id>.json
    (a lab record names its run; `feedtax lab --submit` submits it with that run's results)."""
    from feedtax.results.lab import LabFileError, lab_path, load_lab

    old = lab_path(out / "results.json")
    if not old.is_file():
        return
    try:
        kept = old.with_name(f"lab-{load_lab(old).run_id}.json")
    except LabFileError:
        kept = old.with_name("lab-unreadable.json")
    old.replace(kept)
    console.print(f"note: the earlier run's lab record is kept as {shown(kept)}")


def _report_partial(out: Path) -> None:
    """Render whatever a stopped run saved, so the user still gets a report."""
    from feedtax import results
    from feedtax.reports import html

    try:
        html.write(results.load(out / "results.json"), out / "report.html")
    except (Exception, KeyboardInterrupt):  # nothing saved yet, a full disk, or a second signal: results.json says
        pass


def _summary(console, res) -> None:
    """The format costs as a table on the console (medians, unstable ones marked, a note if not evicted), then the
    answers the report opens with."""
    import textwrap

    table = make_table(title=f"format costs ({res.profile} profile; median, one process)")
    for col in ("track", "format", "bytes per sample", "ratio", "encode/s", "decode/s cold", "decode/s warm"):
        table.add_column(col, justify="left" if col in ("track", "format") else "right")

    def d(x) -> str:
        return f"{x.median:,.0f}" + (" [red]![/red]" if x.unstable else "")

    for r in res.formats:
        table.add_row(r.track, r.format, f"{r.bytes_per_sample:,.0f}", f"{r.compression_ratio:.2f}x",
                      d(r.encode_samples_per_s), d(r.decode_samples_per_s_cold), d(r.decode_samples_per_s_warm))
    console.print(table)
    if any(not r.cold_cache.evicted for r in res.formats):
        console.print("[yellow]note: the page cache could not be evicted for some shards (tmpfs?): "
                      "their 'cold' reads were warm.[/yellow]")
    from rich.markup import escape

    from feedtax.reports.answers import answers

    for a in answers(res):  # the report's opening, in the same words
        console.print(f"\n[bold]{escape(a.question)}[/bold]")
        for line in a.lines:  # a hanging indent: wrapped lines stay clear of the dash
            console.print(escape(textwrap.fill(line, width=console.width - 1, initial_indent="  - ",
                                               subsequent_indent="    ", break_on_hyphens=False)))
