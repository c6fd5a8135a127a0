"""`feedtax gravity`: the Data Gravity Audit from the command line (register with app.command("gravity"))."""

from __future__ import annotations

import typer

from feedtax.cli.options import fail
from feedtax.vocabulary import DATASET_TIERS_BYTES, LINK_GBPS


def gravity_cmd(
    size: list[str] | None = typer.Option(
        None, help="Dataset sizes, e.g. 10GB, 1PB (repeat or comma-separate); default the lab's five tiers."),
    distance_km: float | None = typer.Option(
        None, help="Shipping distance in km; default assumption sneakernet_distance_km."),
    link_gbps: list[float] | None = typer.Option(None, help="Link rates in Gbit/s (repeat); default 10 and 100."),
    disk_mb_per_s: float | None = typer.Option(
        None, help="Drive write and read bandwidth in MB/s (e.g. this machine's measured disk)."),
    tier: str | None = typer.Option(None, help="Use a storage tier's bandwidth instead: hdd, sata_ssd, nvme_gen4."),
    assume: list[str] | None = typer.Option(None, help="Override an assumption: key=value (repeat)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Network transfer vs shipping drives: time per dataset size and link, and the crossover distance."""
    from feedtax.model import gravity as g
    from feedtax.model.assumptions import load
    from feedtax.results.projections import AssumptionError
    from feedtax.units import parse_size

    try:
        sizes = ([parse_size(s) for item in size for s in item.split(",") if s.strip()] if size
                 else list(DATASET_TIERS_BYTES))
        a = load(overrides=assume or [])
        result = g.gravity(sizes, link_gbps or LINK_GBPS, distance_km=distance_km, disk_write_mb_per_s=disk_mb_per_s,
                           disk_read_mb_per_s=disk_mb_per_s, tier=tier, assumptions=a)
    except (ValueError, AssumptionError) as exc:
        raise fail(str(exc)) from None
    if json_out:
        typer.echo(result.model_dump_json(indent=2))
        return
    from rich.console import Console

    Console().print(_table(result))
    typer.echo(result.definition)


def _table(result):
    """Per dataset size and link: network and sneakernet hours, the winner, the crossover and the costs."""
    from rich.table import Table

    def hours(s: float) -> str:
        return f"{s / 3600:,.1f} h"

    disk = result.inputs["disk_write_bandwidth"]
    t = Table(title=f"Data Gravity Audit at {result.tiers[0].distance_km:,.0f} km "
                    f"(disk {disk.value:,.0f} MB/s, {disk.source})")
    for col in ("dataset", "link", "network", "sneakernet", "winner", "crossover", "drives", "egress", "drives cost"):
        t.add_column(col, justify="right")
    for r in result.tiers:
        t.add_row(f"{r.dataset_bytes / 1e12:,.2f} TB", f"{r.link_gbps:g} Gbit/s", hours(r.network_s),
                  hours(r.sneakernet_s), r.winner, "never" if r.crossover_km is None else f"{r.crossover_km:,.0f} km",
                  str(r.drives), f"${r.egress_usd:,.0f}", f"${r.drives_usd:,.0f}")
    return t
