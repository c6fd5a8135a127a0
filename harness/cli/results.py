"""`feedtax report`, `feedtax project` and `feedtax schema`: work on a saved results.json, measuring nothing.

Plain functions with typer parameters, registered in feedtax.cli; the results models, mlsysim and the
report load inside the commands.
"""

from __future__ import annotations

from pathlib import Path

import typer

from feedtax.cli.options import echo, fail, make_console, make_table, shown

_RESULTS_FILE_HELP = "A results.json written by `feedtax run`."


def report(
    results_file: Path = typer.Argument(..., help=_RESULTS_FILE_HELP),
    out: Path | None = typer.Option(None, help="Where to write the HTML (default: report.html beside the results)."),
) -> None:
    """Re-render the HTML report from a results file alone."""
    from feedtax import results
    from feedtax.reports import html

    try:
        res = results.load(results_file)
    except results.ResultsFileError as exc:
        raise fail(str(exc)) from None
    target = out or results_file.with_name("report.html")
    try:
        html.write(res, target)
    except OSError as exc:
        raise fail(f"{target}: cannot write report: {exc.strerror or exc}") from None
    echo(target)


def project(
    results_file: Path = typer.Argument(..., help=_RESULTS_FILE_HELP),
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
        before = {t: (p.verdict, p.binding_constraint) for t, p in res.projections.items()}
        old = res.assumptions
        project_results(res, assume)
    except (results.ResultsFileError, AssumptionError, ValueError) as exc:
        named = str(exc).startswith(str(results_file))
        raise fail(str(exc) if named else f"{results_file}: {exc}") from None
    if out is not None:
        results.save(res, out)
    if json_out:
        import json

        typer.echo(json.dumps({"projections": {t: p.model_dump(mode="json") for t, p in res.projections.items()},
                               "model_validation": [v.model_dump(mode="json") for v in res.model_validation]},
                              indent=2))
        return
    table = make_table(title="missions, projected from this machine's measurements")
    for col in ("track", "verdict", "binding constraint", "format", "bottleneck stage", "accelerator wait"):
        table.add_column(col)
    for t, p in res.projections.items():
        table.add_row(*map(shown, (t, p.verdict, p.binding_constraint, p.format, p.pipeline.bottleneck_stage)),
                      f"{p.pipeline.accelerator_wait_fraction:.0%}")
    console = make_console()
    for key, e in (res.assumptions.entries.items() if res.assumptions else []):
        if e.overridden:
            was = old.entries[key].value if old is not None and key in old.entries else None
            had = f" (the run had {was:g})" if was is not None else ""
            console.print(f"assumed {shown(key)} = {e.value:g} {shown(e.unit)}{had}")
    console.print(table)
    for t, p in res.projections.items():
        if t in before and before[t] != (p.verdict, p.binding_constraint):
            console.print(shown(f"{t}: was {before[t][0]} (binding: {before[t][1]}), now {p.verdict} "
                                f"(binding: {p.binding_constraint})"))


def schema() -> None:
    """Print the JSON Schema of results.json."""
    import json

    from feedtax import results

    typer.echo(json.dumps(results.json_schema(), indent=2))
