"""Every command of the `feedtax` CLI: the app, assembled from one module per command group, and main(), which says
every usage error (an unknown option, a missing argument, a value out of its range) in one line.

Start-up stays cheap: the command modules import only typer, and every heavy import (torch, mlsysim,
matplotlib, pyarrow, numpy) happens inside a command. Options are parsed through cli.options.
"""

import typer

try:  # typer carries its own copy of click since 0.22
    from typer._click import exceptions as click_errors
except ImportError:  # an older typer, on click itself
    from click import exceptions as click_errors

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


def main(args: list[str] | None = None) -> None:
    """The `feedtax` console script (and `python -m feedtax`)."""
    raise SystemExit(invoke(typer.main.get_command(app), args))


def invoke(command, args: list[str] | None = None) -> int:
    """Run the app's click command on args (default: the command line) and return its exit code. A usage error is one
    line on stderr, `feedtax: --steps: 1000000000 is over the limit 100000 (use 1..100000)`, exit 2, where typer
    would draw a box of several lines; a command's own errors print themselves (cli.options.fail)."""
    try:
        code = command.main(args=args, prog_name="feedtax", standalone_mode=False)
    except click_errors.ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `feedtax` or `feedtax probe` alone: the help, as before
            if exc.format_message().strip():  # typer's rich help has printed itself already
                exc.show()
            return exc.exit_code
        typer.echo(f"feedtax: {usage_line(exc)}", err=True)
        return exc.exit_code
    except typer.Abort:
        typer.echo("feedtax: aborted", err=True)
        return 1
    return code if isinstance(code, int) else 0


def usage_line(exc) -> str:
    """A click usage error in one line: the option and what is wrong with its value, or the error and where the
    command's help is."""
    from feedtax.cli.options import one_line

    if isinstance(exc, click_errors.BadParameter) and not isinstance(exc, click_errors.MissingParameter):
        param = exc.param
        if param is None:
            return one_line(exc.message)
        name = max(param.opts, key=len) if param.param_type_name == "option" else param.human_readable_name
        return one_line(f"{name}: {exc.message}")
    message = exc.message if getattr(exc, "possibilities", None) else exc.format_message()
    message = message[:1].lower() + message[1:] if message[1:2].islower() else message
    if getattr(exc, "possibilities", None):  # an unknown option
        message += f"; did you mean {' or '.join(sorted(exc.possibilities))}?"
    where = f" (see {exc.ctx.command_path} --help)" if getattr(exc, "ctx", None) is not None else ""
    return one_line(message.rstrip(".") + where)


__all__ = ["app", "invoke", "main"]
