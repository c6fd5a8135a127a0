"""The project's vocabulary: tracks, formats, what a metric means, and the named constants every layer shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TRACKS: tuple[str, ...] = ("cloud", "edge", "mobile", "tiny")
FORMATS: tuple[str, ...] = ("csv", "json", "parquet", "protobuf", "raw")
# the sweep's loaders: torch's DataLoader as a student writes it, and feedtax's tuned one
LoaderKind = Literal["default", "tuned"]
LOADERS: tuple[LoaderKind, ...] = ("default", "tuned")
# no two places on Earth are further apart along its surface: a crossover beyond it means "anywhere"
HALF_EARTH_KM = 20_000
# the AU gap (tuned - default, percentage points) past which the report says why the default trails and fixes are tried
GAP_PP = 2.0
# A sweep point's stopping rule (StopRule below, applied by bench.feeding; docs/measurement.md, "How many steps").
AU_CI_PP = GAP_PP  # the AU's 95% interval must be narrower than this, percentage points: GAP_PP, the gap the
# loader comparison and the Locks call noise, so a point's own interval is no wider than the differences read from it
AU_CHECK_EVERY = 8  # steps between checks of the interval past the minimum: a check (ratio_ci, about 0.3-1 ms) every
# 8 steps of a 5 ms step costs about 1% of the wall, and the check's own time is left out of the steps' walls
AU_MAX_STEPS = 1000  # the cap in steps: still wider than 2 pp after 1,000 steps, the steps' AU spreads by more than
# about 16 pp (or comes in bursts longer than a block), and more steps narrow it only as 1 / sqrt(steps)
AU_MAX_S = 5.0  # the cap in measured seconds per run: hundreds of 5-10 ms steps; a laptop sweep's 40 points stay
# within about 3 minutes of measuring even if every point reaches it


@dataclass(frozen=True)
class StopRule:
    """When a measured run stops: after its minimum steps, once the AU's 95% interval is narrower than au_ci_pp
    (checked every `every` steps), or at max_steps measured steps or max_s measured seconds, whichever comes first
    (then the point is marked au_ci_wide when its interval is still wider)."""

    au_ci_pp: float = AU_CI_PP
    max_steps: int = AU_MAX_STEPS
    max_s: float = AU_MAX_S
    every: int = AU_CHECK_EVERY

    def __post_init__(self) -> None:
        if not (self.au_ci_pp > 0 and self.max_steps >= 1 and self.max_s > 0 and self.every >= 1):
            raise ValueError("a StopRule needs au_ci_pp > 0, max_steps >= 1, max_s > 0 and every >= 1")


Track = Literal["cloud", "edge", "mobile", "tiny"]
Format = Literal["csv", "json", "parquet", "protobuf", "raw"]
# run profiles, smallest first (bench.profiles defines each); a run without --profile uses the default
PROFILE_NAMES: tuple[str, ...] = ("ci", "laptop", "full")
DEFAULT_PROFILE = "laptop"

# the energy ledger's axes (EnergyRadar)
Axis = Literal["compute", "memory", "storage", "network", "radio"]
AXES: tuple[str, ...] = ("compute", "memory", "storage", "network", "radio")
CONVENTION = "bytes read + bytes written per second (a copy of N bytes counts 2N, as STREAM Copy); 1 MB = 1e6 bytes"

# the harness's own cost: at 1 worker, the loader should deliver at least this share of the format's decode rate
OVERHEAD_TARGET = 0.9
# model validation names a likely reason where predicted and measured feeding tax differ by more than this
VALIDATION_LIMIT_PP = 10.0

# the Data Gravity Audit's dataset tiers (10 GB -> 10 PB) and link speeds (the lab's slider ends)
DATASET_TIERS_BYTES: tuple[int, ...] = (10**10, 10**12, 10**14, 10**15, 10**16)
LINK_GBPS: tuple[float, ...] = (10.0, 100.0)
SECONDS_PER_HOUR = 3600.0
BYTES_PER_MB = 1e6  # MB means 10^6 bytes everywhere in feedtax
BYTES_PER_GB = 1e9

# one color per format in every figure
FORMAT_COLORS = {"csv": "#d62728", "json": "#ff7f0e", "parquet": "#2ca02c", "protobuf": "#1f77b4", "raw": "#7f7f7f"}


@dataclass(frozen=True)
class Metric:
    """What a results field measures, declared once on the field (``Annotated[float, Metric(...)]``).

    collect's plausibility checks, compare's better/worse and the report's labels all read it.
    better: "higher" (throughputs), "lower" (durations, costs) or None (a setting or a count: no direction).
    low..high: the range a real run on real hardware can produce, and why (shown when a value falls outside).
    """

    unit: str
    better: Literal["higher", "lower"] | None = None
    low: float | None = None
    high: float | None = None
    why: str = ""


# --- metrics shared by results fields: unit, direction and the bounds collect checks (with why) ----------------------
# A field that no plausibility bound covers gets a constant without bounds: declaring one would make collect stricter.
SAMPLES_PER_S = Metric("samples/s", "higher", 0, 1e9,
                       "1e9 samples/s of even a 100-byte sample is 100 GB/s, beyond one host's memory bandwidth")
MB_PER_S = Metric("MB/s", "higher", 0, 1e7,
                  "10 TB/s (1e7 MB/s) is above the HBM of the fastest accelerator (~5 TB/s) and any host's DRAM")
IOPS = Metric("IOPS", "higher", 0, 1e8, "1e8 IOPS is ~30 of today's fastest NVMe drives at once")
BYTES_PER_SAMPLE = Metric("B", "lower", 1e-9, 1e10, "a sample has bytes, and 10 GB is not one sample")
COMPRESSION_RATIO = Metric("x", "higher", 1e-9, 1e6,
                           "a ratio of sizes is positive; 1e6x is beyond any real codec on this data")
FEEDING_TAX = Metric("fraction", "lower", 0, 1, "a fraction of time or of peak")  # the consumer's share of time waiting
UTILIZATION = Metric("fraction", "higher", 0, 1, "a fraction of time or of peak")  # AU, MFU: busy share, share of peak
FRACTION = Metric("fraction", None, 0, 1, "a fraction")
PERCENT = Metric("%", None, 0, 100, "a percentage")
PERCENTAGE_POINTS = Metric("pp", None, -100, 100, "a difference of two fractions, in percentage points")
DURATION_S = Metric("s", "lower", 0, 1e9, "a duration is not negative (1e9 s is 30 years)")  # measured durations
SECONDS = Metric("s", "lower")  # modelled or fitted times, which collect does not bound
SETTING_S = Metric("s")  # a time the run was told to take: no better side
S_PER_BATCH = Metric("s/batch", "lower")
WATTS = Metric("W", "lower", 0, 1e5, "one host or accelerator draws well under 100 kW")
JOULES = Metric("J", "lower", 0, 1e13, "energy is not negative; 1e13 J is 100 kW for 3 years")
RATIO = Metric("x", "higher")  # a rate over the rate it should reach (loader / decode)
SPEEDUP = Metric("x", None, 0, 1e6, "a ratio of two rates is not negative")  # one read over another: no better side
COUNT = Metric("count", None, 0, 1e12, "a count is not negative")
BYTES = Metric("B", None, 0, 1e18, "a byte count is not negative (1e18 is an exabyte)")
MEMORY_BYTES = Metric("B", None, 1, 1e14, "100 TB of RAM is beyond any single host")
CORES = Metric("cores", None, 1, 1e5, "a host has at least one and fewer than 100k cores")
MHZ = Metric("MHz", None, 0, 1e5, "100 GHz is beyond any clock")
