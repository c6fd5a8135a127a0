"""The Data Gravity and Zero-Waste audits: network vs shipping, the energy ledger, the selection experiment."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from pydantic import BaseModel, Field

from feedtax.results.metrics import MODELLED_S, AtLeastOne, Seed, Share, modelled
from feedtax.results.projections import Sourced
from feedtax.vocabulary import BYTES, COUNT, DURATION_S, HALF_EARTH_KM, JOULES, Axis, Metric

ACCURACY = Metric("fraction", "higher", 0, 1, "an accuracy is a fraction of the test samples")
MODELLED_J, KM, USD, TIMES = modelled("J", low=0), modelled("km", low=0), modelled("USD", low=0), modelled("x", low=0)
COUNTED_J = replace(JOULES, better=None)  # what the energy counters saw of a ledger's unit of work: shown, not ranked


class LedgerRow(BaseModel):
    axis: Axis
    medium: str
    amount: Sourced = Field(description="bytes moved or FLOPs computed")
    energy_per_unit: Sourced = Field(description="J per byte or J per FLOP")
    joules: Annotated[float, MODELLED_J]


class TrackLedger(BaseModel):
    track: str
    unit_of_work: str
    format: str
    rows: list[LedgerRow]
    move_j: Annotated[float, JOULES]
    compute_j: Annotated[float, JOULES]
    move_over_compute: Annotated[float, TIMES]
    measured_joules: Annotated[float | None, COUNTED_J] = Field(
        None, description="from energy counters, where they exist")
    measured_source: str | None = None


class Ledger(BaseModel):
    tracks: list[TrackLedger]


class GravityTier(BaseModel):
    """One dataset size x link: both paths' times, the crossover distance and the costs."""

    dataset_bytes: Annotated[int, BYTES]
    link_gbps: Annotated[float, modelled("Gbit/s", low=0)]
    network_s: Annotated[float, MODELLED_S]
    sneakernet_s: Annotated[float, MODELLED_S] = Field(description="at distance_km")
    crossover_km: Annotated[float | None, KM] = Field(
        description="longest distance where sneakernet is no slower; None: never")
    distance_km: Annotated[float, KM]
    winner: str
    drives: Annotated[int, COUNT]
    write_s: Annotated[float, MODELLED_S]
    ship_s: Annotated[float, MODELLED_S]
    read_s: Annotated[float, MODELLED_S]
    egress_usd: Annotated[float, USD]
    drives_usd: Annotated[float, USD]

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

    seed: Seed = 0
    n_features: AtLeastOne = 32
    class_separation: Annotated[float, Field(ge=0, le=1e6)] = Field(
        2.5, description="distance between class means, in noise standard deviations")
    pool_samples: AtLeastOne = 20000
    curated_samples: AtLeastOne = 1000
    test_samples: AtLeastOne = 4000
    label_qualities: list[str] = ["low", "medium", "high", "expert"]
    filter_ratios: list[Share] = [0.0, 0.5, 0.9]
    target_accuracy: Share = 0.87
    max_epochs: AtLeastOne = 10
    batch_size: AtLeastOne = 256
    learning_rate: Annotated[float, Field(gt=0, le=1e6)] = 0.5


class SelectionRow(BaseModel):
    scenario: str
    label_quality: str
    flip_rate: Share
    filter_ratio: Share
    pool_samples: AtLeastOne
    kept_samples: Annotated[int, COUNT]
    epochs: Annotated[int, COUNT]
    samples_processed: Annotated[int, COUNT]
    bytes_processed: Annotated[int, BYTES]
    accuracy: Annotated[float, ACCURACY]
    reached_target: bool
    wall_s: Annotated[float, DURATION_S]
    energy_j: Annotated[float, JOULES]
    energy_source: str


class SelectionResult(BaseModel):
    config: SelectionConfig
    bayes_accuracy: Share = Field(description="best accuracy any classifier can reach on this data")
    rows: list[SelectionRow]
