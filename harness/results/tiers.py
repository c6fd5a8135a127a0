"""Measured disk tiers (`feedtax sweep --disk-tier`): the storage tiers emulated, each tier's sweep rows with the
throttle's rate measured at the reader, and the Lock's answer: a format switch against a disk upgrade, both measured."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from feedtax.results.feeding import ConsumerSpec, LoaderRow
from feedtax.results.metrics import Share
from feedtax.vocabulary import (
    BYTES,
    COUNT,
    DURATION_S,
    GAP_PP,
    MB_PER_S,
    PERCENTAGE_POINTS,
    SETTING_S,
    UTILIZATION,
    Metric,
)

TIER_BYTES_PER_S = Metric("B/s")  # a tier's rated bandwidth: a setting of the emulation, not a measurement
READ_BYTES_PER_S = Metric("B/s", "higher")  # measured at the reader through the throttle


class StorageTier(BaseModel):
    """A storage tier to emulate: its bandwidth and per-request latency, each with where it came from."""

    name: str = Field(description="the name `feedtax sweep --disk-tier` takes: hdd, sata, nvme")
    label: str = Field("", description="the tier's name where it came from (mlsysim's registry)")
    bandwidth_bytes_per_s: Annotated[float, TIER_BYTES_PER_S] = Field(gt=0)
    latency_s: Annotated[float, SETTING_S] = Field(ge=0, description="per read request, occupying the device")
    source: str = Field(description="where the bandwidth came from: mlsysim:<registry path>")
    latency_source: str = Field("", description="where the latency came from: mlsysim:<path> or assumption:<key>")


class TierRow(LoaderRow):
    """One sweep point (a LoaderRow, tuned loader) with every shard read at a disk tier's pace, and what the reads
    got through the throttle over both runs of the point (loader alone, then feeding the consumer)."""

    disk_tier: str | None = Field(description="the tier's name; None: not throttled (this machine's own reads)")
    read_bytes: Annotated[int, BYTES] = Field(0, description="shard bytes read through the throttle")
    read_requests: Annotated[int, COUNT] = 0
    read_bytes_per_s: Annotated[float | None, READ_BYTES_PER_S] = Field(
        None, description="read_bytes over the time at least one read was outstanding: the tier as the reader saw it")


class TierSweep(BaseModel):
    """One tier: swept, or not reachable on this machine and why."""

    tier: StorageTier
    reachable: bool
    reason: str | None = Field(None, description="why it was not swept")
    rows: list[TierRow] = []

    def row(self, fmt: str, num_workers: int) -> TierRow | None:
        return next((r for r in self.rows if r.format == fmt and r.num_workers == num_workers), None)


class Lock2Answer(BaseModel):
    """At one worker count: the AU at the slowest tier with JSON, after switching to Protobuf there, and after
    upgrading the disk to the fastest tier swept with JSON kept; the gains, which is larger, and whether the difference
    beats a rerun's noise (more than GAP_PP, the rule of results.loaders.LoaderGap). reason: why it was not measured."""

    num_workers: Annotated[int | None, COUNT] = None
    slow_tier: str | None = None
    fast_tier: str | None = None
    json_au: Annotated[float | None, UTILIZATION] = Field(None, description="slow tier, JSON")
    protobuf_au: Annotated[float | None, UTILIZATION] = Field(None, description="slow tier, Protobuf")
    upgraded_au: Annotated[float | None, UTILIZATION] = Field(None, description="fast tier, JSON")
    json_au_ci95: tuple[Share, Share] | None = Field(None, description="json_au's row's au_ci95; None before schema 6")
    protobuf_au_ci95: tuple[Share, Share] | None = Field(None, description="protobuf_au's row's au_ci95; None before "
                                                         "schema 6")
    upgraded_au_ci95: tuple[Share, Share] | None = Field(None, description="upgraded_au's row's au_ci95; None before "
                                                         "schema 6")
    format_gain_pp: Annotated[float | None, PERCENTAGE_POINTS] = None
    disk_gain_pp: Annotated[float | None, PERCENTAGE_POINTS] = None
    winner: Literal["format", "disk"] | None = Field(None, description="the larger gain; None: equal or not measured")
    beats_noise: bool | None = Field(None, description=f"the gains differ by more than {GAP_PP:g} pp")
    reason: str | None = None

    @classmethod
    def of(cls, num_workers: int, slow: TierRow, protobuf: TierRow, upgraded: TierRow) -> Lock2Answer:
        """The answer from three measured points: (slow tier, json), (slow tier, protobuf), (fast tier, json)."""
        fmt, disk = (protobuf.au - slow.au) * 100, (upgraded.au - slow.au) * 100
        return cls(num_workers=num_workers, slow_tier=slow.disk_tier, fast_tier=upgraded.disk_tier, json_au=slow.au,
                   protobuf_au=protobuf.au, upgraded_au=upgraded.au, format_gain_pp=fmt, disk_gain_pp=disk,
                   json_au_ci95=slow.au_ci95, protobuf_au_ci95=protobuf.au_ci95, upgraded_au_ci95=upgraded.au_ci95,
                   winner=None if fmt == disk else "format" if fmt > disk else "disk",
                   beats_noise=abs(fmt - disk) > GAP_PP)

    @property
    def measured(self) -> bool:
        return self.reason is None

    def sentence(self) -> str:
        """The answer in plain words."""
        if not self.measured:
            return f"The format-or-disk question could not be measured: {self.reason}."
        head = (f"At {self.num_workers} worker{'s' if self.num_workers != 1 else ''}, on {self.slow_tier} with JSON "
                f"(AU {self.json_au:.0%}): switching to Protobuf gives {self.protobuf_au:.0%} "
                f"({self.format_gain_pp:+.1f} pp), upgrading to {self.fast_tier} gives {self.upgraded_au:.0%} "
                f"({self.disk_gain_pp:+.1f} pp).")
        if not self.beats_noise:
            return head + f" The two differ by no more than a rerun's noise ({GAP_PP:g} pp): neither wins here."
        what = "switching the format" if self.winner == "format" else "the faster disk"
        return head + f" {what[0].upper() + what[1:]} wins, by more than a rerun's noise."


class DiskTierResult(BaseModel):
    """`feedtax sweep --disk-tier`: feedtax's tuned loader swept at each reachable tier; the Lock's answers."""

    track: str
    batch_size: Annotated[int, COUNT]
    consumer: ConsumerSpec
    disk_seq_read_mb_per_s: Annotated[float | None, MB_PER_S] = Field(
        None, description="this machine's own sequential read, above which a tier cannot be emulated")
    disk_source: str = Field("", description="where that figure came from (a probe now, a run's disk result, given)")
    tiers: list[TierSweep] = []
    lock2: list[Lock2Answer] = Field(default_factory=list, description="one per worker count, or one saying why not")
    elapsed_s: Annotated[float, DURATION_S] = 0.0

    def reachable(self) -> list[TierSweep]:
        return [t for t in self.tiers if t.reachable]

    def unreachable(self) -> list[TierSweep]:
        return [t for t in self.tiers if not t.reachable]


__all__ = ["DiskTierResult", "Lock2Answer", "StorageTier", "TierRow", "TierSweep"]
