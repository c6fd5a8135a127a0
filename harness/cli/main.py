"""The `feedtax` command line. Start-up stays cheap: every heavy import happens inside a command."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from feedtax.cli.classroom import class_report_cmd, collect_cmd, compare_cmd
from feedtax.cli.gravity import gravity_cmd
from feedtax.cli.options import choices, fail
from feedtax.cli.probe import probe_app
from feedtax.cli.sweep import sweep
from feedtax.vocabulary import FORMATS, TRACKS

app = typer.Typer(
    help="feedtax: measure what it costs to feed an accelerator, on this machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.add_typer(probe_app, name="probe")
app.command("gravity")(gravity_cmd)
app.command("sweep")(sweep)
app.command("collect")(collect_cmd)
app.command("class-report")(class_report_cmd)
app.command("compare")(compare_cmd)





@app.command()
def run(
    profile: str = typer.Option("laptop", help="ci (<60 s), laptop (a few minutes) or full (a workstation)."),
    out: Path = typer.Option(Path("feedtax-out"), help="Directory for results.json, report.html and data/."),
    tracks: list[str] | None = typer.Option(None, help=f"Tracks to run (repeat or comma-separate): {', '.join(TRACKS)}."),
    formats: list[str] | None = typer.Option(None, help=f"Formats to measure: {', '.join(FORMATS)}."),
    seed: int = typer.Option(0, help="Seed of the synthetic datasets (same seed: byte-identical data)."),
    keep_data: bool = typer.Option(False, help="Keep the shards under OUT/data after the run."),
    assume: list[str] | None = typer.Option(None, help="Override a projection assumption: key=value (repeat)."),
    submit: Path | None = typer.Option(None, help="Also write the results as DIR/<run_id>.json, for your instructor."),
) -> None:
    """Measure, write OUT/results.json stage by stage, then OUT/report.html."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from feedtax.measure import profiles, runner
    from feedtax.reports import html
    from feedtax.results.projections import AssumptionError

    try:
        prof = profiles.get(profile)
    except ValueError as exc:
        raise fail(str(exc))
    track_list = choices(tracks, TRACKS, "track")
    format_list = choices(formats, FORMATS, "format")
    console = Console(stderr=True)

    class Bars:
        def __init__(self, progress: Progress):
            self.progress, self.task = progress, None

        def start(self, description: str, total: int) -> None:
            self.task = self.progress.add_task(description, total=total)

        def advance(self) -> None:
            self.progress.advance(self.task)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    res = None
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            res = runner.run(prof, out, tracks=track_list, formats=format_list, seed=seed,
                             keep_data=keep_data, assume=assume or (), progress=Bars(progress))
    except (runner.RunError, AssumptionError) as exc:
        raise fail(str(exc))
    except KeyboardInterrupt:
        _report_partial(out)
        raise fail(f"interrupted: what was measured is in {out / 'results.json'}", 130)
    except Exception as exc:
        _report_partial(out)
        raise fail(f"run failed: {type(exc).__name__}: {exc} (partial results in {out / 'results.json'})", 1)
    report = html.write(res, out / "report.html")
    _summary(console, res)
    console.print(f"results: {out / 'results.json'}\nreport:  {report}")
    if submit is not None:
        from feedtax.classroom.submit import SubmitError, write_submission

        try:
            console.print(f"submission: {write_submission(res, submit)}")
        except SubmitError as exc:
            raise fail(str(exc))


def _report_partial(out: Path) -> None:
    """Render whatever a stopped run saved, so the user still gets a report."""
    from feedtax import results
    from feedtax.reports import html

    try:
        html.write(results.load(out / "results.json"), out / "report.html")
    except Exception:  # nothing saved yet, or unreadable: results.json itself says what there is
        pass


def _summary(console, res) -> None:
    from rich.table import Table

    table = Table(title=f"format costs ({res.profile} profile; median, one process)")
    for col in ("track", "format", "bytes/sample", "ratio", "encode/s", "decode/s cold", "decode/s warm"):
        table.add_column(col, justify="left" if col in ("track", "format") else "right")

    def d(x) -> str:
        return f"{x.median:,.0f}" + (" [red]![/red]" if x.unstable else "")

    for r in res.formats:
        table.add_row(r.track, r.format, f"{r.bytes_per_sample:,.0f}", f"{r.compression_ratio:.2f}x",
                      d(r.encode_samples_per_s), d(r.decode_samples_per_s_cold), d(r.decode_samples_per_s_warm))
    console.print(table)
    if any(not r.cold_cache.evicted for r in res.formats):
        console.print("[yellow]note: the page cache could not be evicted for some shards (tmpfs?): their 'cold' reads were warm.[/yellow]")


@app.command()
def report(
    results_file: Path = typer.Argument(..., help="A results.json written by `feedtax run`."),
    out: Path | None = typer.Option(None, help="Where to write the HTML (default: report.html beside the results)."),
) -> None:
    """Re-render the HTML report from a results file alone."""
    from feedtax import results
    from feedtax.reports import html

    try:
        res = results.load(results_file)
    except results.ResultsFileError as exc:
        raise fail(str(exc))
    target = out or results_file.with_name("report.html")
    try:
        html.write(res, target)
    except OSError as exc:
        raise fail(f"{target}: cannot write report: {exc.strerror or exc}")
    typer.echo(str(target))


@app.command()
def project(
    results_file: Path = typer.Argument(..., help="A results.json written by `feedtax run`."),
    assume: list[str] | None = typer.Option(None, help="Override an assumption: key=value (repeat)."),
    out: Path | None = typer.Option(None, help="Write the re-projected results here (default: print a summary only)."),
    json_out: bool = typer.Option(False, "--json", help="Print the projections as JSON."),
) -> None:
    """Re-project a run's measurements through mlsysim (other assumptions, no new measurement)."""
    from feedtax import results
    from feedtax.model.project import project_results
    from feedtax.results.projections import AssumptionError

    try:
        res = results.load(results_file)
        project_results(res, assume)
    except (results.ResultsFileError, AssumptionError, ValueError) as exc:
        raise fail(f"{results_file}: {exc}" if not str(exc).startswith(str(results_file)) else str(exc))
    if out is not None:
        results.save(res, out)
    if json_out:
        import json

        typer.echo(json.dumps({"projections": {t: p.model_dump(mode="json") for t, p in res.projections.items()},
                               "model_validation": [v.model_dump(mode="json") for v in res.model_validation]}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="missions, projected from this machine's measurements")
    for col in ("track", "verdict", "binding constraint", "format", "bottleneck stage", "accelerator wait"):
        table.add_column(col)
    for t, p in res.projections.items():
        table.add_row(t, p.verdict, p.binding_constraint, p.format, p.pipeline.bottleneck_stage,
                      f"{p.pipeline.accelerator_wait_fraction:.0%}")
    Console().print(table)


@app.command()
def schema() -> None:
    """Print the JSON Schema of results.json."""
    import json

    from feedtax import results

    typer.echo(json.dumps(results.json_schema(), indent=2))


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
