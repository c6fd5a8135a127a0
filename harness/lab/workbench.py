"""What the lab's three parts compute from a run's results: plain functions the notebook calls on every slider move.

Part 1 (Data Gravity Audit): network vs shipped drives at one size, distance and link, the drives written and read
at this machine's measured disk rates or a storage tier's. Part 2 (Feeding Tax Solver): the feeding tax at one
format x workers x disk, measured where the run (or this session) measured that point, else modelled by mlsysim
from the run's measured stage rates, and said so. Part 3 (Zero-Waste Audit): the selection experiment at one label
quality and filter ratio, run live, and its energy at the chosen processing location.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from feedtax.results.schema import Results
from feedtax.vocabulary import DATASET_TIERS_BYTES

MEASURED_DISK = "this machine's disk (measured)"
FIVE_MOVES = 5  # the lab's 5-Move Rule: tiers to examine before the crossover is shown
FIFTEEN_ITERATIONS = 15  # the lab's 15-Iteration Rule


def load_run(path: Path) -> Results:
    """The run's results (any schema version feedtax reads), or ResultsFileError naming the file."""
    from feedtax import results

    return results.load(Path(path))


# ---------------------------------------------------------------- Part 1


def drive_choices() -> list[str]:
    """The drive the shipped copy is written and read with: this machine's measured disk, or a storage tier."""
    from feedtax.model.gravity import STORAGE_TIERS

    return [MEASURED_DISK, *STORAGE_TIERS]


def gravity_tiers(res: Results, distance_km: float, link_gbps: float, drive: str, sizes=DATASET_TIERS_BYTES):
    """feedtax.model.gravity (the code behind `feedtax gravity`) over sizes at one distance and link, the drives
    written and read at this machine's measured disk rates or at a storage tier's (mlsysim)."""
    from feedtax.model.gravity import gravity

    if drive != MEASURED_DISK:
        return gravity(sizes, [link_gbps], distance_km=distance_km, tier=drive)
    if res.disk is None:
        raise ValueError("this run has no disk measurement: choose a storage tier")
    return gravity(sizes, [link_gbps], distance_km=distance_km, disk_write_mb_per_s=res.disk.seq_write_mb_per_s,
                   disk_read_mb_per_s=res.disk.seq_read_mb_per_s_first)


def nearest_tier(size_bytes: float) -> int:
    """The dataset-size tier (DATASET_TIERS_BYTES) a slider position falls in, for the 5-Move Rule."""
    return min(DATASET_TIERS_BYTES, key=lambda t: abs(_log10(t) - _log10(size_bytes)))


def _log10(x: float) -> float:
    import math

    return math.log10(max(x, 1.0))


# ---------------------------------------------------------------- Part 2


@dataclass
class FeedingPoint:
    """The feeding tax at one format x workers x disk, and where the figure comes from."""

    format: str
    num_workers: int
    disk: str
    feeding_tax: float
    au: float
    source: str  # "measured in this run", "measured here, live", or "modelled: ..."
    measured: bool
    au_ci95: tuple[float, float] | None = None  # the measured row's 95% interval; None: modelled, or a file before it
    au_ci_wide: bool | None = None  # wider than the run's target when a cap ended it

    @property
    def feeding_tax_ci95(self) -> tuple[float, float] | None:
        """The feeding tax's 95% interval: the AU's, mirrored."""
        return None if self.au_ci95 is None else (1 - self.au_ci95[1], 1 - self.au_ci95[0])


def disk_choices() -> list[str]:
    """Part 2's disk: this machine's own, or a storage tier emulated by throttling its reads (feedtax.model.tiers)."""
    from feedtax.model.tiers import TIER_NAMES

    return [MEASURED_DISK, *TIER_NAMES]


def swept_track(res: Results) -> str | None:
    """The track the run swept with feedtax's tuned loader (the lab's Part 2 works on it), or None."""
    rows = res.tuned_rows()
    return rows[0].track if rows else None


def sweep_rows(res: Results, live: list | None = None) -> list:
    """The tuned loader's measured rows of the swept track, plus the points measured live in this session."""
    track = swept_track(res)
    return [r for r in res.tuned_rows() if r.track == track] + [r for r in live or [] if r.track == track]


def feeding_point(res: Results, fmt: str, workers: int, disk: str, live: list | None = None) -> FeedingPoint:
    """The feeding tax at one point: measured where this session, the run's sweep or its disk-tier sweep measured it,
    else modelled by mlsysim from the run's measured stage rates (a tier's bandwidth as the read stage)."""
    tier = None if disk == MEASURED_DISK else disk
    swept = [] if res.disk_tiers is None else [r for t in res.disk_tiers.tiers for r in t.rows]
    for rows, source in ((list(live or []), "measured here, live"), (res.tuned_rows(), "measured in this run"),
                         (swept, "measured in this run's disk-tier sweep")):
        hit = next((r for r in reversed(rows) if r.format == fmt and r.num_workers == workers
                    and getattr(r, "disk_tier", None) == tier), None)
        if hit is not None:
            return FeedingPoint(fmt, workers, disk, hit.feeding_tax, hit.au, source, True, hit.au_ci95, hit.au_ci_wide)
    return _modelled(res, fmt, workers, disk)


def _modelled(res: Results, fmt: str, workers: int, disk: str) -> FeedingPoint:
    from feedtax.model.project import stage_rates
    from feedtax.model.validation import predicted_tax

    track = swept_track(res)
    rates = next((r for r in stage_rates(res) if r.track == track and r.format == fmt), None)
    rows = [r for r in res.tuned_rows() if r.track == track]
    basis = "this run's measured stage rates"
    if rates is None:  # a format the sweep left out: its format-stage decode and the track's transform, one process
        rates, basis = _format_stage_rates(res, track, fmt), "this run's format-stage decode and transform rates"
    if rates is None or not rows:
        raise ValueError(f"no measured rates for {track} / {fmt} in this run: nothing to model from")
    if disk != MEASURED_DISK:
        rates = rates.model_copy(update={"read_mb_per_s": tier_read_mb_per_s(disk)})
    step_s = statistics.median(r.step_s for r in rows)
    tax, model = predicted_tax(rates, workers, rows[0].batch_size, step_s)
    return FeedingPoint(fmt, workers, disk, tax, 1 - tax, f"modelled: {model}, from {basis}", False)


def _format_stage_rates(res: Results, track: str, fmt: str):
    """Stage rates from the format stage (warm decode, one process) and the track's transform, where the sweep did
    not run the format; None where those were not measured either."""
    from feedtax.model.validation import StageRates

    f = next((f for f in res.formats if f.track == track and f.format == fmt), None)
    t = next((t for t in res.transforms if t.track == track), None)
    if f is None or t is None or res.disk is None:
        return None
    return StageRates(track=track, format=fmt, bytes_per_sample=f.bytes_per_sample,
                      raw_bytes_per_sample=f.raw_bytes_per_sample,
                      decode_samples_per_s_per_worker=f.decode_samples_per_s_warm.median,
                      transform_samples_per_s_per_worker=t.samples_per_s.median,
                      read_mb_per_s=res.disk.seq_read_mb_per_s_warm)


def formats_of(res: Results) -> list[str]:
    """Part 2's formats: every format the run measured for the swept track (those it did not sweep are modelled)."""
    track = swept_track(res)
    return sorted({f.format for f in res.formats if f.track == track} | {r.format for r in sweep_rows(res)})


def tier_read_mb_per_s(tier: str) -> float:
    """A storage tier's rated bandwidth (mlsysim's registry), MB/s."""
    from feedtax.model.tiers import storage_tiers

    return storage_tiers()[tier].bandwidth_bytes_per_s / 1e6


def lock2_sentences(res: Results) -> list[str]:
    """The format-or-disk answer the run's disk-tier sweep measured (`feedtax sweep --disk-tier`), per worker count."""
    return [] if res.disk_tiers is None else [a.sentence() for a in res.disk_tiers.lock2]


def measured_equilibrium(res: Results, fmt: str) -> int | None:
    """The flow equilibrium the run measured for the swept track and this format."""
    summary = next((s for s in res.tuned_summaries() if s.track == swept_track(res)), None)
    return None if summary is None else summary.flow_equilibrium.get(fmt)


# ---------------------------------------------------------------- Part 3


def zero_waste(res: Results, filter_ratio: float, quality: str, location: str):
    """The selection experiment re-run at one label quality and filter ratio (the run's own configuration
    otherwise), and its Zero-Waste Audit at the processing location: (SelectionRow, ZeroWasteAudit)."""
    from feedtax.bench import selection
    from feedtax.model.assumptions import load
    from feedtax.model.zerowaste import audit

    base = res.selection.config if res.selection is not None else selection.CONFIGS["ci"]
    cfg = base.model_copy(update={"label_qualities": [quality], "filter_ratios": [round(filter_ratio, 2)]})
    row = selection.run(cfg).rows[0]
    return row, audit(row, cfg.n_features, location, load())


def measure_live(res: Results, fmt: str, workers: int, disk: str, data_dir: Path):
    """One sweep point measured now on this machine as the run's sweep measures it (the tuned loader; the run's batch,
    step and steps; shards written for its sample sizes and seed), its reads held to a storage tier's pace where one
    is chosen: its row. A tier faster than this machine's disk is refused (ValueError with the reason)."""
    from feedtax import datasets
    from feedtax.bench.ondisk import write_sweep_shards
    from feedtax.bench.profiles import SweepPlan
    from feedtax.bench.tiers import measure_point

    track = swept_track(res)
    if track is None:
        raise ValueError("this run has no sweep to add a point to")
    tier = None
    if disk != MEASURED_DISK:
        from feedtax.model.tiers import storage_tiers

        tier = storage_tiers()[disk]
    plan = SweepPlan(**{k: v for k, v in res.config.sweep.items()
                        if k in SweepPlan.__dataclass_fields__ and k != "stop"})  # a live point: its fixed steps
    shards = write_sweep_shards(track, [fmt], Path(data_dir) / f"w{workers}", plan, max(workers, 1),
                                res.config.seed, datasets.Sizes.from_json(res.config.sizes))
    return measure_point(track, fmt, workers, tier, shards, batch_size=plan.batch_size, step_s=plan.step_s,
                         steps=plan.steps,
                         disk_seq_read_mb_per_s=res.disk.seq_read_mb_per_s_first if res.disk is not None else None)


def lock2_live(res: Results, workers: int, data_dir: Path, slow: str = "hdd", fast: str = "sata"):
    """The Lock measured now at one worker count: JSON and Protobuf with reads at the slow tier's pace, JSON at the
    fast tier's; (Lock2Answer, its three rows). A tier this machine's disk cannot emulate raises ValueError."""
    from feedtax.results.tiers import Lock2Answer

    rows = [measure_live(res, fmt, workers, tier, Path(data_dir) / f"{fmt}-{tier}")
            for fmt, tier in (("json", slow), ("protobuf", slow), ("json", fast))]
    return Lock2Answer.of(workers, *rows), rows


def lock2_live_sentences(live: list) -> list[str]:
    """The Lock's answers measured live in this session: one per worker count where its three points exist."""
    from feedtax.results.tiers import Lock2Answer

    def point(fmt, tier, w):
        return next((r for r in reversed(live) if r.format == fmt and getattr(r, "disk_tier", None) == tier
                     and r.num_workers == w), None)

    out = []
    for w in sorted({r.num_workers for r in live}):
        rows = point("json", "hdd", w), point("protobuf", "hdd", w), point("json", "sata", w)
        if all(rows):
            out.append(Lock2Answer.of(w, *rows).sentence() + " (measured now)")
    return out
