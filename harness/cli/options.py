"""How every feedtax command fails: one line on stderr naming what is wrong, and an exit code."""

from __future__ import annotations

import typer


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `feedtax: message` to stderr; return the Exit to raise (2: bad input, 1: a failed run)."""
    typer.echo(f"feedtax: {message}", err=True)
    return typer.Exit(code)
