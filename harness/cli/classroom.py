"""`feedtax collect`, `feedtax class-report` and `feedtax compare`: the instructor's and the student's side.

Plain functions with typer parameters, registered in feedtax.cli with app.command(NAME)(FUNCTION).
Only typer is imported here; everything heavy is imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from feedtax.cli.options import Range, echo, echo_json, fail, make_console, make_table, shown


def collect_cmd(
    submissions: list[Path] = typer.Argument(None, help="Submission files, or folders searched for *.json (none: "
                                             "only --export)."),
    db: Path = typer.Option(Path("class.duckdb"), "--db", help="The class database (created if missing)."),
    json_out: bool = typer.Option(False, "--json", help="Print the collect report as JSON on stdout."),
    export: tuple[str, Path] | None = typer.Option(
        None, "--export", metavar="FORMAT DIR",
        help="Then write every table of the database into DIR (new or empty) as FORMAT: parquet, one "
             "<table>.parquet each, with schema.sql and load.sql for DuckDB's IMPORT DATABASE."),
    workers: int | None = typer.Option(None, "--workers", min=1, max=256,
                                       help="Processes validating the files (default: one per usable core; 1: this "
                                            "process alone)."),
) -> None:
    """Validate submissions and add the good ones to the class database; name every rejected file and why.
    With --export (and no submissions: only that), write the database's tables as Parquet.

    Exit status: 0 when every file was collected (or was already), 1 when any was rejected or
    conflicted with a run already collected, 2 when the database cannot be used or the export cannot be written.
    """
    from feedtax.classroom.collect import CollectError, collect
    from feedtax.classroom.export import FORMATS, check_target

    if export is not None:
        fmt, out = export
        if fmt.lower() not in FORMATS:
            raise fail(f"--export: unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
        try:
            check_target(out)  # before collecting: a folder that cannot take the export fails at once
        except CollectError as exc:
            raise fail(str(exc)) from None
    if not submissions:
        if export is None:
            raise fail("missing argument 'submissions': name files or folders to collect, or give --export FORMAT "
                       "DIR to export the database (see feedtax collect --help)")
        _export(db, out, json_out, None)
        return
    from feedtax.bench import interrupts
    from feedtax.cli.progress import for_console

    with interrupts.latched():  # Ctrl-C, SIGTERM and SIGHUP: the batch being written finishes, the pool stops
        try:
            with for_console(make_console(stderr=True)) as progress:  # a bar in a terminal, plain lines elsewhere
                report = collect(submissions, db, workers=workers, progress=progress)
        except Exception as exc:  # a signal can turn into another error on its way (an import it cut short)
            if (stop := interrupts.received()) is None:
                if isinstance(exc, CollectError):
                    raise fail(str(exc)) from None
                raise
        except KeyboardInterrupt as exc:
            stop = interrupts.interruption(exc)
        else:
            stop = None
    if stop is not None:
        raise fail(f"{db}: interrupted by {stop.name}: the runs stored before it are kept; collect again to add the "
                   "rest", stop.exit_code)
    total = (len(report.accepted) + len(report.duplicates) + len(report.conflicts) + len(report.rejected)
             + len(report.labs))
    if json_out and (export is None or total == 0):
        echo_json(report.model_dump_json(indent=2))
    elif not json_out:
        for r in report.rejected + report.conflicts:
            echo(f"rejected  {r.path}: {r.kind}: {r.reason}", err=True)
        for a in report.accepted:
            for w in a.warnings:
                echo(f"warning   {a.path}: {w}", err=True)
        echo(f"{db}: {len(report.accepted)} collected, {len(report.duplicates)} already there (unchanged), "
             f"{len(report.conflicts)} conflicting, {len(report.rejected)} rejected, "
             f"{report.table_rows.get('runs', 0)} runs in total ({report.elapsed_s:.1f} s)"
             + (f"; lab records: {sum(x.status != 'unchanged' for x in report.labs)} collected, "
                f"{sum(x.status == 'unchanged' for x in report.labs)} unchanged" if report.labs else ""))
    if total == 0:
        raise fail("no submissions found (folders are searched for *.json)")
    if export is not None:
        _export(db, out, json_out, report)
    if not report.ok:
        raise typer.Exit(1)


def _export(db: Path, out: Path, json_out: bool, collected) -> None:
    """`--export parquet DIR`: the database's tables written into DIR; one line saying so, or with --json the collect
    report (if any) with the export under "export"."""
    import json

    from feedtax.classroom.export import export_parquet
    from feedtax.classroom.store import CollectError

    try:
        done = export_parquet(db, out)
    except CollectError as exc:  # ExportError is one: the folder and why; nothing of the export is left
        if json_out and collected is not None:  # what was collected is still said
            echo_json(collected.model_dump_json(indent=2))
        raise fail(str(exc)) from None
    if json_out:
        doc = collected.model_dump(mode="json") if collected is not None else {}
        doc["export"] = done.model_dump(mode="json")
        echo_json(json.dumps(doc, indent=2))
        return
    echo(f"{out}: {len(done.tables)} tables of {db} as Parquet, {done.rows:,} rows, {done.bytes / 1e6:,.1f} MB "
         f"({done.elapsed_s:.1f} s); schema.sql and load.sql rebuild the database (IMPORT DATABASE '{out}')")


def class_report_cmd(
    db: Path = typer.Option(Path("class.duckdb"), "--db", help="A database built by `feedtax collect`."),
    out: Path = typer.Option(Path("class-report"), "--out", help="Folder for class_report.html."),
) -> None:
    """Render the class report (self-contained HTML) from the class database."""
    from feedtax.classroom.store import CollectError
    from feedtax.reports import class_report

    try:
        path = class_report.write(db, out)
    except CollectError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"{out}: cannot write the report: {exc.strerror or exc}") from None
    echo(path)


REGRESSION_PCT = Range(0, 1000, percent=True)
REGRESSION_FACTOR = Range(1, 1000, above=True)  # 1x would fail any change; 1000x is past any real slowdown
TERMINAL_ROWS = 12  # regressions and improvements the terminal lists: the gate's summary stays within one screen
GATE_HELP = ("The regression gate: exit 1 when any metric is significantly worse than the baseline's (Welch's "
             "t-test) by more than PCT percent (10 or 10%), or by more than a factor (2x: a rate below half, a time "
             "above double). Runs must be like with like: one profile, tracks, formats, host class, both complete, "
             f"both merges of runs (--repeat) or neither. Range: {REGRESSION_PCT}, or a factor {REGRESSION_FACTOR}x.")
METRICS_HELP = ("With --fail-on-regression: gate only the metrics whose names (as compare --all prints them) match a "
                "GLOB; repeat it or separate with commas; * and ? are wildcards, brackets are literal.")
MARKDOWN_HELP = ("With --fail-on-regression: write the gate's summary as Markdown to FILE (replaced whole), e.g. "
                 "\"$GITHUB_STEP_SUMMARY\" for a GitHub Actions job summary.")


def regression_threshold(text: object):
    """--fail-on-regression's value: `10`, `10%` (feedtax.classroom.gate.Threshold of a percentage) or `2x` (a
    factor), checked against its range as the command line is read."""
    from feedtax.classroom.gate import Threshold

    raw = str(text).strip()
    factor = raw[-1:] in ("x", "X")
    try:
        return Threshold(REGRESSION_FACTOR.one(raw[:-1]), factor=True) if factor else Threshold(REGRESSION_PCT.one(raw))
    except typer.BadParameter as exc:  # the range's message, said as a factor where one was given
        said = exc.message.replace(f"(use {REGRESSION_FACTOR})", f"(use a factor {REGRESSION_FACTOR}x, e.g. 2x)")
        raise typer.BadParameter(said.replace(f"(use {REGRESSION_PCT})", f"(use {REGRESSION_PCT}, e.g. 10%, or "
                                              f"a factor {REGRESSION_FACTOR}x, e.g. 2x)")) from None


def compare_cmd(
    a: Path = typer.Argument(..., help="The baseline results.json (A)."),
    b: Path = typer.Argument(..., help="The results.json to compare with it (B)."),
    json_out: bool = typer.Option(False, "--json", help="Print the rows as JSON (and the gate's result, if on)."),
    all_rows: bool = typer.Option(False, "--all",
                                  help="Show every metric, not only the significant and one-sided ones."),
    force: bool = typer.Option(False, "--force", help="Compare runs of different workloads (profile, sample "
                               "sizes, dataset size; with the gate also tracks, formats, host class and an "
                               "incomplete run) anyway."),
    fail_on: Any = typer.Option(None, "--fail-on-regression", metavar="PCT|FACTORx", parser=regression_threshold,
                                help=GATE_HELP),
    metric_globs: list[str] | None = typer.Option(None, "--metrics", metavar="GLOB", help=METRICS_HELP),
    markdown: Path | None = typer.Option(None, "--markdown", metavar="FILE", help=MARKDOWN_HELP),
) -> None:
    """Per metric: A, B, the change, and whether it is significant given both runs' spreads (Welch's t-test).

    Exit status: 0, or with --fail-on-regression 0 when no metric regressed beyond PCT; 1 when one did; 2 when a
    file cannot be used or the runs are not like with like (without --force).
    """
    from feedtax import results
    from feedtax.classroom import compare, gate

    if (metric_globs or markdown is not None) and fail_on is None:
        raise fail("--metrics and --markdown belong to the regression gate: give --fail-on-regression PCT too")
    try:
        ra, rb = results.load(a), results.load(b)
    except results.ResultsFileError as exc:
        raise refuse(str(exc), markdown) from None
    if fail_on is None and not json_out and ra.model_dump() == rb.model_dump():  # --json: a script reads the rows
        echo(f"{a} and {b} hold the same run ({ra.run_id}) with the same figures: nothing to compare")
        return
    if (unlike := compare.unlike(ra, rb, strict=fail_on is not None)) and not force:
        raise refuse(f"{a} and {b} are not like with like ({'; '.join(unlike)}): their changes would not be the "
                      "machine's or the code's; compare runs of one profile"
                      + (", tracks, formats and host class, both complete" if fail_on is not None else "")
                      + ", or pass --force", markdown)
    rows = compare.compare(ra, rb)
    notes = compare.context(ra, rb)
    verdict = None
    if fail_on is not None:
        try:
            verdict = gate.gate(rows, fail_on, gate.split_globs(metric_globs))
        except gate.GateError as exc:
            raise refuse(str(exc), markdown) from None
    if json_out:
        _compare_json(notes, rows, verdict)
    else:
        console = make_console()
        for n in notes:
            console.print(f"[yellow]note: {shown(n)}[/yellow]")
        if verdict is None or all_rows:
            _compare_table(console, rows, ra.run_id, rb.run_id, all_rows)
        if verdict is not None:
            gate_summary(console, verdict, ra.run_id, rb.run_id)
    if markdown is not None:
        write_markdown(markdown, gate.markdown(verdict, ra.run_id, rb.run_id))
    if verdict is not None and not verdict.passed:
        raise typer.Exit(1)


def _compare_json(notes, rows, verdict) -> None:
    """`--json`: the context notes and every row; the gate's result under "gate" when it is on."""
    import json

    doc = {"context": notes, "rows": [r.model_dump() for r in rows]}
    if verdict is not None:
        doc["gate"] = verdict.model_dump(mode="json")
    echo_json(json.dumps(doc, indent=2))


def _compare_table(console, rows, run_a: str, run_b: str, all_rows: bool) -> None:
    """compare's table: the significant and one-sided rows (every row with --all), then the count of each verdict."""
    listed = rows if all_rows else [r for r in rows if r.verdict in ("significant", "only_a", "only_b")]
    table = make_table(title=f"{shown(run_a)} (A) -> {shown(run_b)} (B): medians; p from Welch's t-test on "
                       "the repeats")
    table.add_column("metric", overflow="fold", ratio=3)
    for col in ("A", "B", "change", "p"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("verdict", ratio=1)
    style = {"better": "green", "worse": "red"}

    def num(x):
        return "" if x is None else f"{x:,.4g}"

    for r in listed:
        verdict = r.verdict + (f" ({r.direction})" if r.direction and r.verdict == "significant" else "")
        color = style.get(r.direction or "", "") if r.verdict == "significant" else "dim"
        table.add_row(shown(r.metric), num(r.a), num(r.b), "" if r.change_pct is None else f"{r.change_pct:+.1f}%",
                      "" if r.p_value is None else f"{r.p_value:.3g}",
                      f"[{color}]{verdict}[/{color}]" if color else verdict)
    console.print(table)
    count = {v: sum(r.verdict == v for r in rows) for v in ("significant", "noise", "no_spread", "only_a", "only_b")}
    console.print(f"{count['significant']} significant, {count['noise']} noise, {count['no_spread']} without spread"
                  f" (not tested), {count['only_a']} only in A, {count['only_b']} only in B"
                  + ("" if all_rows else "; --all shows every metric"))


def gate_summary(console, verdict, run_a: str, run_b: str) -> None:
    """The gate's summary in the terminal, as the Markdown one says it: the verdict, regressions then improvements
    (at most TERMINAL_ROWS, then how many more), and the count of unchanged metrics."""
    from feedtax.classroom import gate

    color = "green" if verdict.passed else "red"
    console.print(f"[bold {color}]regression gate: {shown(gate.verdict_line(verdict))}[/bold {color}] "
                  f"({shown(run_a)} (A) -> {shown(run_b)} (B))")
    if verdict.metric_globs:
        console.print(f"gated metrics: {shown(', '.join(verdict.metric_globs))}")
    rows, more = gate.listed(verdict, TERMINAL_ROWS)
    if rows:
        table = make_table()
        table.add_column("")
        table.add_column("metric", overflow="fold", ratio=3)
        for col in ("A", "B", "change", "p"):
            table.add_column(col, justify="right", no_wrap=True)
        for kind, r in rows:
            tone = "red" if kind == "regression" else "green"
            table.add_row(f"[{tone}]{kind}[/{tone}]", shown(r.metric), gate.number(r.a), gate.number(r.b),
                          gate.change(r), "" if r.p_value is None else f"{r.p_value:.3g}")
        console.print(table)
    if more:
        console.print(f"... and {more} more (--json lists every one)")
    console.print(shown(gate.counts_line(verdict)))


def refuse(message: str, markdown: Path | None) -> typer.Exit:
    """fail(message), exit 2; with --markdown the summary says the gate could not judge, and why (best effort: the
    error line is what counts)."""
    if markdown is not None:
        from feedtax.atomic import write_atomic
        from feedtax.classroom.gate import markdown_error

        try:
            write_atomic(markdown, markdown_error(message).encode(), durable=False)
        except OSError:
            pass
    return fail(message)


def write_markdown(path: Path, text: str) -> None:
    """Replace FILE with the Markdown summary, whole (feedtax.atomic.write_atomic); exit 2 where it cannot be."""
    from feedtax.atomic import write_atomic

    try:
        write_atomic(path, text.encode(), durable=False)
    except OSError as exc:
        raise fail(f"{path}: cannot write the Markdown summary: {exc.strerror or exc}") from None
