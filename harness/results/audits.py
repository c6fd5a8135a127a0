"""The Data Gravity and Zero-Waste audits: network vs shipping, the energy ledger, the selection experiment."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from feedtax.results.projections import Sourced
from feedtax.vocabulary import BYTES, COUNT, DURATION_S, HALF_EARTH_KM, JOULES, SECONDS, Axis, Metric


class LedgerRow(BaseModel):
    axis: Axis
    medium: str
    amount: Sourced = Field(description="bytes moved or FLOPs computed")
    energy_per_unit: Sourced = Field(description="J per byte or J per FLOP")
    joules: float


class TrackLedger(BaseModel):
    track: str
    unit_of_work: str
    format: str
    rows: list[LedgerRow]
    move_j: Annotated[float, JOULES]
    compute_j: Annotated[float, JOULES]
    move_over_compute: float
    measured_joules: float | None = Field(None, description="from energy counters, where they exist")
    measured_source: str | None = None


class Ledger(BaseModel):
    tracks: list[TrackLedger]


class GravityTier(BaseModel):
    """One dataset size x link: both paths' times, the crossover distance and the costs."""

    dataset_bytes: Annotated[int, BYTES]
    link_gbps: float
    network_s: Annotated[float, SECONDS]
    sneakernet_s: Annotated[float, SECONDS] = Field(description="at distance_km")
    crossover_km: float | None = Field(description="longest distance where sneakernet is no slower; None: never")
    distance_km: float
    winner: str
    drives: int
    write_s: Annotated[float, SECONDS]
    ship_s: Annotated[float, SECONDS]
    read_s: Annotated[float, SECONDS]
    egress_usd: float
    drives_usd: float

    def where_drives_win(self) -> str:
        """The crossover in words, the same wherever it is said: up to a distance, anywhere on Earth, or never."""
        if self.crossover_km is None:
            return "the network wins at any distance"
        if self.crossover_km > HALF_EARTH_KM:
            return "shipped drives win at any distance on Earth"
        return f"shipped drives win up to {self.crossover_km:,.0f} km"


class GravityResult(BaseModel):
    tiers: list[GravityTier]
    inputs: dict[str, Sourced]
    definition: str = ("crossover_km: the longest shipping distance at which the drives arrive no later than the "
                       "network transfer ends; beyond it the network wins; never (null in results.json): the "
                       "network wins at every distance")


class SelectionConfig(BaseModel):
    """Experiment size and knobs; `ci` finishes in a few seconds."""

    seed: int = 0
    n_features: int = 32
    class_separation: float = Field(2.5, description="distance between class means, in noise standard deviations")
    pool_samples: int = 20000
    curated_samples: int = 1000
    test_samples: int = 4000
    label_qualities: list[str] = ["low", "medium", "high", "expert"]
    filter_ratios: list[float] = [0.0, 0.5, 0.9]
    target_accuracy: float = 0.87
    max_epochs: int = 10
    batch_size: Annotated[int, COUNT] = 256
    learning_rate: float = 0.5


class SelectionRow(BaseModel):
    scenario: str
    label_quality: str
    flip_rate: float
    filter_ratio: float
    pool_samples: int
    kept_samples: int
    epochs: int
    samples_processed: int
    bytes_processed: Annotated[int, BYTES]
    accuracy: Annotated[float, Metric("fraction", "higher")]
    reached_target: bool
    wall_s: Annotated[float, DURATION_S]
    energy_j: Annotated[float, JOULES]
    energy_source: str


class SelectionResult(BaseModel):
    config: SelectionConfig
    bayes_accuracy: float = Field(description="best accuracy any classifier can reach on this data")
    rows: list[SelectionRow]
