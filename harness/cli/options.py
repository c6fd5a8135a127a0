"""How every feedtax command reads its options (name lists, sizes), fails (one line on stderr, an exit code) and
prints (a console as wide as the terminal, or wide enough for its tables in a log or a pipe)."""

from __future__ import annotations

import typer

from feedtax.units import parse_size

LOG_WIDTH = 160  # columns of a console that is not a terminal: rich's default 80 cuts the tables' headers


def make_console(*, stderr: bool = False):
    """A rich Console on stdout (or stderr): the terminal's width there, LOG_WIDTH columns in a file or pipe."""
    from rich.console import Console

    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=LOG_WIDTH)


def make_table(*headers: str, title: str | None = None):
    """A rich Table in feedtax's console style: one rule under the header and no cell borders, so a table of
    nine numeric columns fits an 80-column terminal without cutting its headers."""
    from rich import box
    from rich.table import Table

    return Table(*headers, title=title, box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True,
                 show_edge=False)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `feedtax: message` to stderr; return the Exit to raise (2: bad input, 1: a failed run)."""
    typer.echo(f"feedtax: {message}", err=True)
    return typer.Exit(code)


def choices(values: list[str] | None, known: tuple[str, ...], what: str, default: list[str] | None = None) -> list[str]:
    """Names from repeated or comma-separated options, in order, once each; unknown names are refused clearly.

    No names given: `default`, or every known name."""
    if not values:
        return list(known) if default is None else default
    chosen = [v.strip() for item in values for v in item.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in known]
    if unknown:
        raise typer.BadParameter(f"unknown {what} {', '.join(unknown)}; choose from {', '.join(known)}")
    return list(dict.fromkeys(chosen))


def size_option(text: str, what: str) -> int:
    """Bytes from `256M`, `1G` or `300MB` (feedtax.units.parse_size); a bad size fails naming the option `what`."""
    try:
        return parse_size(text)
    except ValueError as exc:
        raise fail(f"{what}: {exc}") from None
