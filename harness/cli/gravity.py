"""`feedtax gravity`: the Data Gravity Audit from the command line (register with app.command("gravity"))."""

from __future__ import annotations

from pathlib import Path

import typer

from feedtax.cli.options import Range, echo_json, fail, make_console, make_table, ranged, shown
from feedtax.vocabulary import DATASET_TIERS_BYTES, LINK_GBPS

PROBE_BYTES = 64 << 20  # the default disk probe: enough to pass a drive's small write cache, a few seconds
PROBE_BUDGET_S = 5.0
# Each numeric option's range (cli.options.Range): a dataset, a distance and rates the audit's arithmetic holds for
SIZES = Range(1, 10**18, size=True, listed=True)  # up to an exabyte
DISTANCE_KM = Range(0, 40_075)  # up to once round the Earth
LINK = Range(0, 1e6, above=True)  # up to 1 Pbit/s
DISK_MB_PER_S = Range(0, 1e6, above=True)  # up to 1 TB/s
_SIZE_OPTION = ranged(None, "--size", help="Dataset sizes, e.g. 10GB, 1PB (repeat or comma-separate); default the "
                      "lab's five tiers.", within=SIZES)
_LINK_OPTION = ranged(None, "--link-gbps", help="Link rates in Gbit/s (repeat); default 10 and 100.", within=LINK)


def gravity_cmd(
    size: list[str] | None = _SIZE_OPTION,  # each a list of bytes
    distance_km: float | None = ranged(
        None, "--distance-km", help="Shipping distance in km; default assumption sneakernet_distance_km.",
        within=DISTANCE_KM),
    link_gbps: list[float] | None = _LINK_OPTION,
    disk_mb_per_s: float | None = ranged(
        None, "--disk-mb-per-s", help="Drive write and read bandwidth in MB/s, as you give it (default: this machine's "
        "disk, measured now with a 64 MB probe in the temp directory, as the report uses the run's measured disk).",
        within=DISK_MB_PER_S),
    tier: str | None = typer.Option(None, help="Use a storage tier's bandwidth instead: hdd, sata_ssd, nvme_gen4."),
    results_file: Path | None = typer.Option(None, "--results", help="Use the disk a run measured (its results.json)."),
    assume: list[str] | None = typer.Option(None, help="Override an assumption: key=value (repeat)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Network transfer vs shipping drives: time per dataset size and link, and the crossover distance."""
    from feedtax.model import gravity as g
    from feedtax.model.assumptions import load
    from feedtax.results.projections import AssumptionError

    try:
        sizes = list(dict.fromkeys(b for item in size for b in item)) if size else list(DATASET_TIERS_BYTES)
        a = load(overrides=assume or [])
        write, read, source = _disk(disk_mb_per_s, tier, results_file)
        result = g.gravity(sizes, link_gbps or LINK_GBPS, distance_km=distance_km, disk_write_mb_per_s=write,
                           disk_read_mb_per_s=read, tier=tier, assumptions=a, disk_source=source)
    except (ValueError, AssumptionError, OSError) as exc:  # a results file's error names the file already
        raise fail(str(exc)) from None
    if json_out:
        echo_json(result.model_dump_json(indent=2))
        return

    make_console().print(_table(result))
    typer.echo(result.definition)


def _disk(given: float | None, tier: str | None, results_file: Path | None) -> tuple:
    """(write MB/s, read MB/s, their source): given, a run's measured disk, none (a tier), or measured now."""
    if sum(x is not None for x in (given, tier, results_file)) > 1:
        raise ValueError("give one of --disk-mb-per-s, --tier and --results, not both")
    if given is not None:
        return given, given, "given (--disk-mb-per-s)"
    if tier is not None:
        return None, None, "mlsysim"
    if results_file is not None:
        from feedtax import results

        res = results.load(results_file)
        if res.disk is None:
            raise ValueError(f"{results_file}: the run has no disk probe to take the drives' rates from")
        return res.disk.seq_write_mb_per_s, res.disk.seq_read_mb_per_s_first, f"measured by run {res.run_id}"
    import tempfile

    from feedtax.probes.disk import measure_disk

    where = Path(tempfile.gettempdir())
    d = measure_disk(where, PROBE_BYTES, time_budget_s=PROBE_BUDGET_S)
    return d.seq_write_mb_per_s, d.seq_read_mb_per_s_first, f"measured now ({PROBE_BYTES >> 20} MiB probe in {where})"


def _table(result):
    """Per dataset size and link: network and sneakernet hours, the winner, the crossover and the costs."""
    def hours(s: float) -> str:
        return f"{s / 3600:,.1f} h"

    disk = result.inputs["disk_write_bandwidth"]
    t = make_table(title=f"Data Gravity Audit at {result.tiers[0].distance_km:,.0f} km "
                    f"(disk {disk.value:,.0f} MB/s, {shown(disk.source)})")
    for col in ("dataset", "link", "network", "sneakernet", "winner", "crossover", "drives", "egress", "drives cost"):
        t.add_column(col, justify="right")
    for r in result.tiers:
        t.add_row(f"{r.dataset_bytes / 1e12:,.2f} TB", f"{r.link_gbps:g} Gbit/s", hours(r.network_s),
                  hours(r.sneakernet_s), r.winner, "never" if r.crossover_km is None else f"{r.crossover_km:,.0f} km",
                  str(r.drives), f"${r.egress_usd:,.0f}", f"${r.drives_usd:,.0f}")
    return t
