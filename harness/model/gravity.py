"""The Data Gravity Audit: moving a dataset over a network link vs shipping it on drives (sneakernet).

network_s = dataset / (link rate x efficiency), mlsysim's transfer_time.
sneakernet_s = write + handling + distance / truck speed + read; drives hold drive_capacity_bytes each and
are written (and read) sneakernet_parallel_drives at a time at a disk bandwidth (measured, or a storage tier).
crossover_km = the longest shipping distance at which the drives still arrive no later than the network
transfer ends; beyond it the network wins. None: the network wins at every distance, even 0 km.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from feedtax.model.assumptions import load as load_assumptions
from feedtax.results.audits import GravityResult, GravityTier
from feedtax.results.projections import Assumptions, Sourced
from feedtax.vocabulary import BYTES_PER_GB, BYTES_PER_MB, DATASET_TIERS_BYTES, LINK_GBPS, SECONDS_PER_HOUR

STORAGE_TIERS = {  # --tier name -> mlsysim registry path of its bandwidth
    "hdd": "Systems.Storage.Hdd7200Rpm",
    "sata_ssd": "Systems.Storage.SataSsd",
    "nvme_gen4": "Systems.Storage.LocalNvmeGen4",
}
DEFAULT_TIER = "hdd"  # shipped drives are HDDs by default (drive_capacity_bytes is an HDD's)


def network_s(dataset_bytes: float, link_gbps: float, efficiency: float) -> float:
    """Seconds to send dataset_bytes over a link_gbps link at the given efficiency: bits over the effective rate,
    mlsysim's transfer_time, written out so the audit (and the lab's sliders) run without mlsysim's seconds-long
    import (tests/test_gravity.py holds the two equal)."""
    return dataset_bytes * 8 / (link_gbps * 1e9 * efficiency)


def drives_needed(dataset_bytes: float, capacity_bytes: float) -> int:
    return max(1, math.ceil(dataset_bytes / capacity_bytes))


def copy_s(dataset_bytes: float, drives: int, parallel: float, bytes_per_s: float) -> float:
    """Seconds to write (or read) the dataset spread over `drives`, `parallel` of them at a time."""
    return dataset_bytes / (min(drives, parallel) * bytes_per_s)


def ship_s(distance_km: float, speed_km_per_h: float, handling_h: float) -> float:
    return (handling_h + distance_km / speed_km_per_h) * SECONDS_PER_HOUR


def crossover_km(net_s: float, write_s: float, read_s: float, speed_km_per_h: float, handling_h: float) -> float | None:
    """Distance at which sneakernet time equals network time; None when sneakernet loses even at 0 km."""
    spare_h = (net_s - write_s - read_s) / SECONDS_PER_HOUR - handling_h
    return spare_h * speed_km_per_h if spare_h >= 0 else None


def _bandwidths(tier: str | None, write_mb_per_s: float | None, read_mb_per_s: float | None,
                source: str = "measured") -> tuple[Sourced, Sourced]:
    """Disk write/read bandwidth: the values given, labelled with their source (measured, or given by the user),
    unless a tier is chosen; else the tier's (mlsysim)."""
    from feedtax.model.sources import from_mlsysim

    if tier or not (write_mb_per_s and read_mb_per_s):  # mlsysim (seconds to import) only where a tier is used
        tier_bw = from_mlsysim(STORAGE_TIERS[tier or DEFAULT_TIER] + ".bandwidth", "MB/s")
        if tier:
            return tier_bw, tier_bw
    write = Sourced(value=write_mb_per_s, unit="MB/s", source=source) if write_mb_per_s else tier_bw
    read = Sourced(value=read_mb_per_s, unit="MB/s", source=source) if read_mb_per_s else tier_bw
    return write, read


def gravity(sizes_bytes: Iterable[float] = DATASET_TIERS_BYTES, links_gbps: Iterable[float] = LINK_GBPS, *,
            distance_km: float | None = None, disk_write_mb_per_s: float | None = None,
            disk_read_mb_per_s: float | None = None, tier: str | None = None,
            assumptions: Assumptions | None = None, disk_source: str = "measured") -> GravityResult:
    """Network vs sneakernet for every size x link; disk bandwidths measured (or as disk_source says where they
    came from), or a storage tier's (mlsysim)."""
    a = assumptions or load_assumptions()
    links_gbps = list(links_gbps)
    if any(not link > 0 for link in links_gbps):
        raise ValueError(f"a link rate must be > 0 Gbit/s, got {', '.join(f'{x:g}' for x in links_gbps)}")
    if distance_km is not None and not distance_km >= 0:
        raise ValueError(f"the shipping distance must be >= 0 km, got {distance_km:g}")
    for name, bw in (("write", disk_write_mb_per_s), ("read", disk_read_mb_per_s)):
        if bw is not None and not bw > 0:
            raise ValueError(f"the disk {name} bandwidth must be > 0 MB/s, got {bw:g}")
    if tier is not None and (disk_write_mb_per_s is not None or disk_read_mb_per_s is not None):
        raise ValueError("give a disk bandwidth or a storage tier, not both")
    if not a.value("link_efficiency") > 0:
        raise ValueError(f"link_efficiency must be > 0, got {a.value('link_efficiency'):g}")
    if tier is not None and tier not in STORAGE_TIERS:
        raise ValueError(f"unknown storage tier {tier!r}; choose from {', '.join(STORAGE_TIERS)}")
    write, read = _bandwidths(tier, disk_write_mb_per_s, disk_read_mb_per_s, disk_source)
    keys = ("link_efficiency", "drive_capacity_bytes", "sneakernet_parallel_drives", "truck_speed_km_per_h",
            "shipping_handling_h", "egress_usd_per_gb", "drive_price_usd")
    inputs = {k: a.sourced(k) for k in keys}
    dist = (Sourced(value=distance_km, unit="km", source="given", note="given on the command line")
            if distance_km is not None else a.sourced("sneakernet_distance_km"))
    inputs.update(disk_write_bandwidth=write, disk_read_bandwidth=read, distance=dist)
    v = {k: s.value for k, s in inputs.items()}
    tiers = []
    for size in sizes_bytes:
        drives = drives_needed(size, v["drive_capacity_bytes"])
        w = copy_s(size, drives, v["sneakernet_parallel_drives"], write.value * BYTES_PER_MB)
        r = copy_s(size, drives, v["sneakernet_parallel_drives"], read.value * BYTES_PER_MB)
        ship = ship_s(dist.value, v["truck_speed_km_per_h"], v["shipping_handling_h"])
        for link in links_gbps:
            net = network_s(size, link, v["link_efficiency"])
            sneak = w + ship + r
            tiers.append(GravityTier(
                dataset_bytes=int(size), link_gbps=float(link), network_s=net, sneakernet_s=sneak,
                crossover_km=crossover_km(net, w, r, v["truck_speed_km_per_h"], v["shipping_handling_h"]),
                distance_km=dist.value, winner="network" if net <= sneak else "sneakernet", drives=drives,
                write_s=w, ship_s=ship, read_s=r, egress_usd=size / BYTES_PER_GB * v["egress_usd_per_gb"],
                drives_usd=drives * v["drive_price_usd"]))
    return GravityResult(tiers=tiers, inputs=inputs)
