"""Every command of the `feedtax` CLI: the app, assembled from one module per command group.

Start-up stays cheap: the command modules import only typer, and every heavy import (torch, mlsysim,
matplotlib, pyarrow, numpy) happens inside a command. Options are parsed through cli.options.
"""

import typer

# modules, not their functions: `run` and `sweep` would otherwise hide the submodules of the same name
from feedtax.cli import classroom, gravity, lab, probe, results, run, sweep

app = typer.Typer(
    help="feedtax: measure what it costs to feed an accelerator, on this machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # every command and group inherits it
)



def _version(value: bool) -> None:
    if value:
        import feedtax

        typer.echo(f"feedtax {feedtax.__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", "-V", is_eager=True, callback=_version,
                                        help="Print feedtax's version (it names the commit it was built from).")):
    """feedtax: measure what it costs to feed an accelerator, on this machine."""


app.add_typer(probe.probe_app, name="probe")
app.command("gravity")(gravity.gravity_cmd)
app.command("sweep")(sweep.sweep)
app.command("collect")(classroom.collect_cmd)
app.command("class-report")(classroom.class_report_cmd)
app.command("compare")(classroom.compare_cmd)
app.command("run")(run.run)
app.command("report")(results.report)
app.command("project")(results.project)
app.command("schema")(results.schema)
app.command("lab")(lab.lab_cmd)


def main() -> None:
    """The `feedtax` console script (and `python -m feedtax`)."""
    app()


__all__ = ["app", "main"]
