"""Every command of the `feedtax` CLI: one module per command group, options parsed by cli.options."""

from feedtax.cli.main import app, main

__all__ = ["app", "main"]
