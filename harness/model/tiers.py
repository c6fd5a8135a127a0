"""The storage tiers `feedtax sweep --disk-tier` emulates: bandwidth and per-request latency from mlsysim's
Systems.Storage registry, a latency mlsysim lacks from the assumptions file, each with its source."""

from __future__ import annotations

from feedtax.model.assumptions import load as load_assumptions
from feedtax.model.gravity import STORAGE_TIERS
from feedtax.results.projections import Assumptions
from feedtax.results.tiers import StorageTier

# --disk-tier name -> (mlsysim registry path, the assumption standing in for a latency mlsysim lacks); the entries of
# the Data Gravity Audit's tiers
TIER_PATHS: dict[str, tuple[str, str | None]] = {
    "hdd": (STORAGE_TIERS["hdd"], "hdd_request_latency_s"),
    "sata": (STORAGE_TIERS["sata_ssd"], "sata_ssd_request_latency_s"),
    "nvme": (STORAGE_TIERS["nvme_gen4"], None),
}
TIER_NAMES = tuple(TIER_PATHS)


def storage_tiers(assumptions: Assumptions | None = None) -> dict[str, StorageTier]:
    """Every tier by --disk-tier name, slowest first (mlsysim is imported here: seconds)."""
    from feedtax.model.sources import from_mlsysim, from_mlsysim_object

    assumed = assumptions or load_assumptions()
    tiers = {}
    for name, (path, key) in TIER_PATHS.items():
        entry = from_mlsysim_object(path)
        bandwidth = from_mlsysim(f"{path}.bandwidth", "B/s")
        if getattr(entry, "latency", None) is not None:
            latency = from_mlsysim(f"{path}.latency", "s")
        elif key is not None:
            latency = assumed.sourced(key)
        else:
            raise ValueError(f"mlsysim's {path} has no latency, and no assumption stands in for it")
        tiers[name] = StorageTier(name=name, label=str(getattr(entry, "name", "")), latency_s=latency.value,
                                  bandwidth_bytes_per_s=bandwidth.value, source=bandwidth.source,
                                  latency_source=latency.source)
    return dict(sorted(tiers.items(), key=lambda kv: kv[1].bandwidth_bytes_per_s))


__all__ = ["TIER_NAMES", "TIER_PATHS", "storage_tiers"]
