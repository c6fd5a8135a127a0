"""How every feedtax command reads its options (numbers and sizes within a declared range, name lists), fails (one line
on stderr, an exit code) and prints (text from files and users made safe for a terminal; a console as wide as the
terminal, or wide enough for its tables in a log or a pipe)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import typer

from feedtax.reports.text import HIDDEN, visible
from feedtax.units import parse_size

LOG_WIDTH = 160  # columns of a console that is not a terminal: rich's default 80 cuts the tables' headers

USABLE_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
# The most DataLoader workers (or memory-probe threads) a command starts: four per usable core, at least 8. Past a
# core each one only waits for a core (the profiles sweep up to two per core, the scaling figure marks the cores),
# and every worker is a process holding its own prefetched batches, so this count is what bounds memory and processes.
MAX_WORKERS = max(8, 4 * USABLE_CORES)


@dataclass(frozen=True)
class Range:
    """The numbers an option takes: lo..hi, finite (never NaN or infinite), lo itself excluded when `above` (a rate is
    over 0). Given as typer.Option's parser (see `ranged`), it checks the value as the command line is read, before
    the command starts any work, and an option error is one line (feedtax.cli.main)."""

    lo: float
    hi: float
    whole: bool = False  # an integer
    above: bool = False  # lo excluded
    listed: bool = False  # comma-separated values, each in range: a list, in the order given, each once
    size: bool = False  # a byte size, 256M, 1GiB or 300MB (feedtax.units.parse_size)
    percent: bool = False  # a percentage, 10 or 10%: one trailing % is allowed and dropped

    def __str__(self) -> str:
        lo, hi = _show(self.lo, self.size), _show(self.hi, self.size)
        if self.percent:
            lo, hi = f"{lo}%", f"{hi}%"
        return f"over {lo}, up to {hi}" if self.above else f"{lo}..{hi}"

    def __call__(self, text: object):
        if not self.listed:
            return self.one(text)
        values = [self.one(item) for item in str(text).split(",") if item.strip()]
        if not values:
            raise typer.BadParameter(f"{str(text)!r} holds no value (use {self}, comma-separated)")
        return list(dict.fromkeys(values))

    def one(self, text: object) -> int | float:
        """One value, checked: its type, finite, within lo..hi; else BadParameter saying what to use."""
        raw = str(text).strip()
        number = raw[:-1].rstrip() if self.percent and raw.endswith("%") else raw
        try:
            value = parse_size(number) if self.size else int(number) if self.whole else float(number)
        except ValueError:
            what = "size" if self.size else "whole number" if self.whole else "number"
            raise typer.BadParameter(f"{visible(repr(raw))} is not a {what} (use {self})") from None
        if not math.isfinite(value):
            raise typer.BadParameter(f"{raw} is not a finite number (use {self})")
        if value > self.hi:
            raise typer.BadParameter(f"{raw} is over the limit {_show(self.hi, self.size)} (use {self})")
        if value < self.lo or (self.above and value == self.lo):
            limit = _show(self.lo, self.size)
            raise typer.BadParameter(f"{raw} is {'not over' if self.above else 'under the limit'} {limit} "
                                     f"(use {self})")
        return value


def ranged(default, *decls: str, help: str, within: Range, **kw):
    """typer.Option for a number (or, `listed`, numbers) within a Range, which parses and checks it and which its help
    states ("Range: 1..100000.")."""
    each = ", each" if within.listed else ""
    return typer.Option(default, *decls, parser=within, help=f"{help} Range: {within}{each}.", **kw)


def _show(x: float, size: bool) -> str:
    """A limit for people: 100000, 4294967295, 0.001; a size in the unit it is a whole number of (1 MiB, 1 EB)."""
    if size:
        for scale, unit in ((10**18, "EB"), (10**15, "PB"), (10**12, "TB"), (10**9, "GB"), (10**6, "MB"),
                            (1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if x >= scale and x % scale == 0:
                return f"{int(x) // scale} {unit}"
        return f"{int(x)} B"
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


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


def shown(text: object) -> str:
    """Text from a file or a user (a run_id, a CPU model, a path, a note) for rich to print as it is: its markup
    escaped (`[/]` or `[link=...]` is text, not a style) and its hidden characters visible (reports.text.visible),
    so no escape sequence or bidi override reaches the terminal."""
    from rich.markup import escape

    return escape(visible(str(text)))


def echo(text: object, *, err: bool = False) -> None:
    """typer.echo of text that holds a file's or a user's text, its hidden characters visible."""
    typer.echo(visible(str(text)), err=err)


def echo_json(text: str) -> None:
    """A JSON document on stdout with every hidden character written as its \\u escape: the same data, and nothing
    from a file reaches the terminal raw (JSON escapes C0 already; C1 and bidi characters it may leave as they are)."""
    typer.echo(HIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


def one_line(text: object) -> str:
    """A message as one line: its hidden characters visible, its lines joined."""
    return " ".join(line.strip() for line in visible(str(text)).splitlines() if line.strip())


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `feedtax: message` to stderr, on one line; return the Exit to raise (2: bad input, 1: a failed run)."""
    typer.echo(f"feedtax: {one_line(message)}", err=True)
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

