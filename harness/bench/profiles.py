"""Run profiles: how much data and how many repeats, sized for a machine and a time budget."""

from __future__ import annotations

from dataclasses import dataclass

from feedtax.datasets import Sizes
from feedtax.vocabulary import FORMATS, LOADERS, TRACKS, LoaderKind, StopRule


@dataclass(frozen=True)
class SweepPlan:
    """What the DataLoader sweep covers: tracks x formats x worker counts, feeding an emulated accelerator
    (DLIO/MLPerf Storage style: it sleeps step_s per batch) unless a real model is asked for."""

    tracks: tuple[str, ...]
    formats: tuple[str, ...]
    batch_size: int
    steps: int  # measured steps per run; with the consumer, the minimum (stop decides how many more)
    step_s: float
    max_workers: int | None = None  # None: up to 2x the usable cores
    worker_counts: tuple[int, ...] = (0, 1, 2, 4, 8, 16, 32)
    loaders: tuple[LoaderKind, ...] = LOADERS  # the default torch DataLoader and feedtax's tuned one
    stop: StopRule | None = None  # each point's run with the consumer: until its AU interval is narrower than
    # stop.au_ci_pp, or a cap (every profile sets one); None: `steps` exactly
    dataset_bytes: int | None = None  # --dataset-size: each format's dataset on disk (feedtax.bench.ondisk)

    def workers(self, cores: int) -> list[int]:
        limit = self.max_workers if self.max_workers is not None else 2 * cores
        return [w for w in self.worker_counts if w <= limit]


CI_MAX_S = 1.0  # the ci profile's cap per point: its 18 points (2 loaders x 3 formats x 3 worker counts) add at most
# 18 s, so a ci run stays about a minute on 2 cores; a point still wide at 1 s is marked so
# The ci sweep (and every profile's default): one track, a text, a columnar and the raw format, 0-2 workers,
# a short emulated step; `feedtax sweep` defaults to its formats too.
CI_SWEEP = SweepPlan(tracks=("edge",), formats=("csv", "parquet", "raw"), batch_size=16, steps=16, step_s=0.005,
                     max_workers=2, stop=StopRule(max_s=CI_MAX_S))


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    samples_per_track: int
    samples_per_shard: int
    sizes: Sizes
    warmups: int = 1
    repeats: int = 5
    min_time_s: float = 0.01  # a repeat runs enough loops to last at least this long
    format_budget_s: float = 10.0  # per track x format: slow formats are measured on fewer shards
    disk_probe_bytes: int = 1 << 30
    disk_probe_budget_s: float = 30.0
    memory_probe_bytes: int = 256 << 20
    sweep: SweepPlan = CI_SWEEP
    selection: str = "ci"  # feedtax.bench.selection.CONFIGS key


PROFILES = {
    "ci": Profile(
        name="ci",
        description="CI and end-to-end tests: under 60 s on 2 cores",
        samples_per_track=200,
        samples_per_shard=100,
        sizes=Sizes(seq_len=256, frame_hw=(24, 24), crop_hw=(16, 16), text_len=16, audio_len=160),
        min_time_s=0.01,
        format_budget_s=1.5,
        disk_probe_bytes=32 << 20,
        disk_probe_budget_s=4.0,
        memory_probe_bytes=128 << 20,
        sweep=CI_SWEEP,
    ),
    "laptop": Profile(
        name="laptop",
        description="default: about 7 minutes on 2 cores",
        samples_per_track=2000,
        samples_per_shard=500,
        sizes=Sizes(seq_len=2048, frame_hw=(64, 64), crop_hw=(32, 32), text_len=32, audio_len=160),
        min_time_s=0.05,
        format_budget_s=5.0,
        disk_probe_bytes=1 << 30,  # disk.SMALL_FILE_BYTES: below it a drive's or hypervisor's cache may hold the file
        disk_probe_budget_s=20.0,
        sweep=SweepPlan(tracks=("edge",), formats=FORMATS,
                        batch_size=32, steps=16, step_s=0.01, stop=StopRule()),
    ),
    "full": Profile(
        name="full",
        description="a workstation: larger samples and datasets, more repeats",
        samples_per_track=10000,
        samples_per_shard=1000,
        sizes=Sizes(seq_len=4096, frame_hw=(128, 128), crop_hw=(64, 64), text_len=64, audio_len=1600),
        repeats=7,
        min_time_s=0.1,
        format_budget_s=60.0,
        disk_probe_bytes=4 << 30,
        disk_probe_budget_s=90.0,
        memory_probe_bytes=1 << 30,
        sweep=SweepPlan(tracks=TRACKS, formats=FORMATS,
                        batch_size=64, steps=40, step_s=0.01, stop=StopRule()),
        selection="full",
    ),
}


def get(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; known profiles: {', '.join(PROFILES)}")
    return PROFILES[name]
