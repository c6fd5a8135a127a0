"""Where the consumer's wait comes from: DS-Analyzer's differential wait breakdown and the transport cost.

- breakdown (DS-Analyzer's differential method, Mohan et al. VLDB 2021): medians over epochs of
  synthetic in-memory batches (max ingestion), warm page cache (prep only) and cold (prep + fetch,
  after feedtax.probes.pagecache.evict), warm and cold alternating -> prep rate, fetch rate and which stage
  binds.
- transport: the DataLoader's own per-batch cost, measured with ready data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from feedtax.bench.consumers import Consumer, Drain, EmulatedConsumer
from feedtax.bench.feeding import epoch_rate, measure_feeding
from feedtax.loader import LoaderConfig, SyntheticBatches, make_loader
from feedtax.probes import pagecache
from feedtax.results.feeding import TransportCost, WaitBreakdown


def binding_stage(fetch: float | None, prep: float, transport: float, compute: float) -> str:
    """The slowest stage of the pipeline (lowest rate); fetch None means it never showed."""
    rates = {"prep": prep, "transport": transport, "compute": compute}
    if fetch is not None:
        rates["fetch"] = fetch
    return min(rates, key=rates.get)


def transport_cost(batch: dict[str, np.ndarray], *, step_s: float = 0.01, steps: int = 20,
                   transport: Literal["ring", "tensor"] = "ring") -> TransportCost:
    """A ready batch's cost per batch at 0 and 1 workers with no consumer (full speed: a worker's copy
    and handover cannot hide behind a step), and the wait per step behind a consumer sleeping step_s
    at 1 worker (what the consumer sees: the main process's receive). transport: the tuned loader's reused ring
    slots, or torch's way (the batch's tensors moved to new shared memory per batch, as default_collate's are)."""
    size = len(next(iter(batch.values())))

    def run(workers: int, consumer: Consumer) -> float:
        loader = make_loader("raw", [], LoaderConfig(batch_size=size, num_workers=workers, transport=transport),
                             dataset=SyntheticBatches(batch, steps + 8))
        r = measure_feeding(loader, consumer, warmup_steps=4, steps=steps, keep_timeline=False)
        return (r.wall_s if isinstance(consumer, Drain) else r.wait_s) / r.steps

    full_speed = {w: run(w, Drain()) for w in (0, 1)}
    return TransportCost(batch_size=size, batch_bytes=int(sum(v.nbytes for v in batch.values())),
                         in_process_s_per_batch=full_speed[0], worker_s_per_batch=full_speed[1],
                         ipc_s_per_batch=full_speed[1] - full_speed[0],
                         transport_s_per_batch=run(1, EmulatedConsumer(step_s)))


def ready_batch(fmt: str, paths: Sequence[Path], batch_size: int, transform) -> dict[str, np.ndarray]:
    """The first batch of a format's first shard as numpy (no worker): the ready data of
    SyntheticBatches, for the in-memory ceiling and the transport cost."""
    first = next(iter(make_loader(fmt, [Path(p) for p in paths[:1]], LoaderConfig(batch_size=batch_size),
                                  transform=transform)))
    return {k: v.numpy() for k, v in first.items() if not k.startswith("_")}


def wait_breakdown(track: str, fmt: str, paths: Sequence[Path], *, num_workers: int, batch_size: int,
                   consumer_per_s: float, transform=None, sample_batch: dict | None = None,
                   rounds: int = 3) -> WaitBreakdown:
    """DS-Analyzer's differential rates: after a warm-up epoch, `rounds` warm epochs (page cache
    full) alternating with cold ones (evicted just before), and as many epochs of synthetic
    in-memory batches; persistent workers, so no epoch pays process start-up. Rates are medians.
    fetch = n / (cold - warm) only when every eviction worked and the median cold epoch is slower
    than the median warm one by more than either's spread (and 2%): otherwise it is not measured."""
    cfg = LoaderConfig(batch_size=batch_size, num_workers=num_workers, persistent_workers=num_workers > 0)
    loader = make_loader(fmt, paths, cfg, transform=transform)
    for p in paths:  # warm the page cache
        Path(p).read_bytes()
    _, n, _ = epoch_rate(loader)  # warm-up: workers started, code and caches warm
    warm, cold, stages, evicted = [], [], [], True
    for _ in range(max(1, rounds)):
        warm.append(epoch_rate(loader, stages)[0])
        evicted &= pagecache.evict(paths).evicted
        cold.append(epoch_rate(loader)[0])
    if sample_batch is None:
        sample_batch = ready_batch(fmt, paths, batch_size, transform)
    mem_loader = make_loader(fmt, [], cfg, dataset=SyntheticBatches(sample_batch, math.ceil(n / batch_size)))
    _, n_mem, _ = epoch_rate(mem_loader)
    mem = [epoch_rate(mem_loader)[0] for _ in range(max(1, rounds))]
    warm_s, cold_s = float(np.median(warm)), float(np.median(cold))
    spread_s = max(np.ptp(warm), np.ptp(cold), 0.02 * warm_s)
    fetch = n / (cold_s - warm_s) if evicted and cold_s - warm_s > spread_s else None
    prep, in_memory = n / warm_s, n_mem / float(np.median(mem))
    stage = np.sum(stages, axis=0) / max(1, len(stages))  # per batch actually delivered
    return WaitBreakdown(
        track=track, format=fmt, num_workers=num_workers, in_memory_samples_per_s=in_memory,
        warm_samples_per_s=prep, cold_samples_per_s=n / cold_s, prep_samples_per_s=prep,
        fetch_samples_per_s=fetch, consumer_samples_per_s=consumer_per_s,
        binding=binding_stage(fetch, prep, in_memory, consumer_per_s), cache_evicted=evicted, rounds=max(1, rounds),
        decode_s_per_batch=float(stage[0]), transform_s_per_batch=float(stage[1]), collate_s_per_batch=float(stage[2]),
    )
