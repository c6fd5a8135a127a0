"""`feedtax probe disk|memory|host|energy`: run one probe, print a table or (--json) one JSON object.

Probe modules are imported inside the commands so the CLI starts fast. Every numeric option has a range, checked
before the probe starts; errors print one line to stderr naming the path, and exit with code 2.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from feedtax.cli.options import MAX_WORKERS, Range, echo_json, fail, make_table, ranged, shown

if TYPE_CHECKING:
    from pydantic import BaseModel

probe_app = typer.Typer(help="Measure this machine: disk, memory bandwidth, host metadata, energy counters.",
                        no_args_is_help=True)
_JSON_HELP = "print one JSON object"
# Each numeric option's range (cli.options.Range)
PROBE_SIZE = Range(1 << 20, 1 << 40, size=True)  # from a MiB (less is timer and cache noise) to a TiB
BLOCK_SIZE = Range(4096, 64 << 20, size=True)  # a page to 64 MiB; the disk probe wants a multiple of the page
SECONDS = Range(0, 3600, above=True)  # a time budget or a window: over 0, up to an hour
THREADS = Range(1, MAX_WORKERS, whole=True)  # as many as DataLoader workers may be (cli.options.MAX_WORKERS)


def _cell(value: Any) -> str:
    """A value for a table cell: a distribution as its median, IQR and count; floats to 6 significant digits."""
    if isinstance(value, dict) and "median" in value and "iqr" in value:  # a feedtax.stats.Distribution
        unstable = ", UNSTABLE" if value["unstable"] else ""
        return f"{value['median']:.6g} {shown(value['unit'])} (IQR {value['iqr']:.3g}, n={value['n']}{unstable})"
    if isinstance(value, float):
        return f"{value:.6g}"
    return shown(value)


def _emit(model: BaseModel, as_json: bool, title: str) -> None:
    """One JSON object on stdout, or rich tables: scalars, distributions, then lists of records."""
    if as_json:
        echo_json(model.model_dump_json(indent=2))
        return
    from rich.console import Console
    console, data = Console(), model.model_dump()
    main = make_table("field", "value", title=shown(title))
    lists: dict[str, list] = {}
    warnings = data.pop("warnings", [])
    for key, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            lists[key] = value
        elif isinstance(value, dict):
            for sub, v in value.items():
                main.add_row(f"{key}.{shown(sub)}", _cell(v))
        else:
            main.add_row(key, _cell(value))
    console.print(main)
    for key, rows in lists.items():
        table = make_table(*map(shown, rows[0].keys()), title=key)
        for row in rows:
            table.add_row(*(_cell(v) for v in row.values()))
        console.print(table)
    for w in warnings:
        console.print(f"[yellow]warning:[/] {shown(w)}")


@probe_app.command()
def disk(
    path: Path | None = typer.Option(
        None, "--path", help="directory on the disk to measure (default: a temp dir under the current directory)"),
    size: str = ranged("1G", "--size", help="test file size: bytes or 256M, 1G (binary) / 300MB (decimal); below "
                       "1G a drive's or hypervisor's cache may hold it.", within=PROBE_SIZE),  # bytes
    block_size: str = ranged("1M", "--block-size", help="sequential block size.", within=BLOCK_SIZE),  # bytes
    time_budget_s: float = ranged(60.0, "--time-budget-s", help="time the probe aims to stay within, seconds.",
                                  within=SECONDS),
    as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
) -> None:
    """Sequential write/read (cold and warm), random 4 KiB IOPS and latency; MB = 1e6 bytes."""
    from feedtax.probes.disk import ProbeError, measure_disk

    size_bytes, block_bytes = size, block_size
    made = None
    if path is None:
        try:
            made = path = Path(tempfile.mkdtemp(prefix=".feedtax-probe-", dir=Path.cwd()))
        except OSError as exc:
            raise fail(f"{Path.cwd()}: cannot make a temp directory: {exc.strerror or exc}") from None
    progress = None
    if not as_json:
        from rich.console import Console

        err = Console(stderr=True)
        progress = lambda msg: err.print(f"[dim]{shown(msg)}[/]")  # noqa: E731
    try:
        result = measure_disk(path, size_bytes, block_size_bytes=block_bytes, time_budget_s=time_budget_s,
                              progress=progress)
    except ProbeError as exc:
        raise fail(str(exc)) from None
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
    _emit(result, as_json, f"disk: {path}")


@probe_app.command()
def memory(
    size: str = ranged("512M", "--size", help="bytes per array (source and destination).", within=PROBE_SIZE),
    threads: int | None = ranged(None, "--threads", help="threads for the all-cores copy (default: the usable cores).",
                                 within=THREADS),
    as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
) -> None:
    """Memory copy bandwidth with numpy, one core and all cores (read + written bytes per second)."""
    from feedtax.probes.memory import measure_memory

    try:
        result = measure_memory(size, threads=threads)
    except ValueError as exc:
        raise fail(f"memory: {exc}") from None
    _emit(result, as_json, "memory copy bandwidth")


@probe_app.command()
def host(as_json: bool = typer.Option(False, "--json", help=_JSON_HELP)) -> None:
    """What machine and software this is (CPU, memory, OS, packages)."""
    from feedtax.probes.host import collect

    _emit(collect(), as_json, "host")


@probe_app.command()
def energy(
    window_s: float = ranged(1.0, "--window-s", help="idle window to measure over, seconds.", within=SECONDS),
    as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
) -> None:
    """Energy counters (RAPL, NVML) over an idle window; absent counters are listed with the reason."""
    from feedtax.probes.counters import measure_energy

    _emit(measure_energy(window_s), as_json, f"energy over {window_s:g} s")
