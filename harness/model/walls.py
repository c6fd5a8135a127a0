"""The data and transformation walls of a mission: mlsysim's DataModel (storage supply vs demand on the
mission's node) and TransformationModel (CPU transform time vs the accelerator's step)."""

from __future__ import annotations

import math
from typing import Any

from feedtax.model.sources import from_mlsysim_object, quantity
from feedtax.results.projections import DataWall, Sourced, TransformWall


def storage_node(node_path: str, storage_bw: Sourced, capacity: Sourced | None = None):
    """A copy of a registry node with a storage entry (DataModel returns inf without one).

    DataModel reads only the bandwidth; an unknown capacity is recorded as NaN bytes, not invented.
    """
    from mlsysim.core.units import Q_
    from mlsysim.hardware.types import StorageHierarchy

    node = from_mlsysim_object(node_path)
    cap = quantity(capacity) if capacity is not None else Q_(math.nan, "byte")
    return node.model_copy(update={"storage": StorageHierarchy(capacity=cap, bandwidth=quantity(storage_bw))})


def data_wall(node_path: str, node: Any, storage_source: str, demand_bytes_per_s: float) -> DataWall:
    from mlsysim.core.units import Q_
    from mlsysim.solvers import DataModel

    r = DataModel().solve(Q_(demand_bytes_per_s, "byte/s"), node)
    return DataWall(node=node_path, storage_source=storage_source, demand_mb_per_s=r.demand_bw.to("MB/s").magnitude,
                    supply_mb_per_s=r.supply_bw.to("MB/s").magnitude, utilization=r.utilization,
                    bottleneck=r.bottleneck, stalled=r.is_stalled)


def transform_wall(raw_bytes: float, transform_rate: float, required: float) -> TransformWall:
    from mlsysim.core.units import Q_
    from mlsysim.solvers import TransformationModel

    r = TransformationModel().solve(batch_size=1, sample_size_bytes=Q_(raw_bytes, "byte"),
                                    cpu_throughput=Q_(raw_bytes * transform_rate, "byte/s"),
                                    accelerator_step_time=Q_(1.0 / required, "s"))
    return TransformWall(transform_time_s=r.transform_time.to("s").magnitude,
                         accelerator_step_time_s=r.accelerator_step_time.to("s").magnitude,
                         accelerator_utilization=r.accelerator_utilization, is_bottleneck=r.is_bottleneck)
