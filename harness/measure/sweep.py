"""The worker sweep: formats x worker counts x one consumer, the flow equilibrium, a scaling fit and
where the wait comes from.

- rows: per format and worker count, the loader alone (ingestion rate) and the loader feeding the
  consumer (feeding tax, AU, samples/s).
- flow equilibrium: the smallest measured worker count whose ingestion rate >= the consumer's
  consumption rate (batch / step time); None when no measured count reaches it.
- scaling fit: Gunther's Universal Scalability Law X(N) = lam N / (1 + sigma (N-1) + kappa N (N-1))
  over the measured worker counts >= 1 (grid over sigma, kappa; lam by least squares), predicted
  up to 32 workers, every point outside the measured counts marked extrapolated.
- breakdown (DS-Analyzer's differential method, Mohan et al. VLDB 2021): medians over epochs of
  synthetic in-memory batches (max ingestion), warm page cache (prep only) and cold (prep + fetch,
  after feedtax.probes.pagecache.evict), warm and cold alternating -> prep rate, fetch rate and which stage
  binds; plus the DataLoader's own per-batch transport cost, measured with ready data.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from feedtax.results.feeding import (
    ConsumerSpec,
    FeedingSummary,
    LoaderOverhead,
    LoaderRow,
    ScalingFit,
    ScalingPoint,
    TransportCost,
    WaitBreakdown,
)

MAX_FIT_WORKERS = 32
MAX_FIT_REL_RMSE = 0.10  # a fit further than this from its own points predicts nothing


# ---------------------------------------------------------------------------------------------
# Pure parts


def flow_equilibrium(ingestion: dict[int, float], consumption_per_s: float) -> int | None:
    """Smallest worker count >= 1 whose ingestion rate >= the consumption rate, or None. With 0 workers
    the main process loads in series with the consumer, so it pays load / (load + step) whatever its rate."""
    ok = [w for w, rate in sorted(ingestion.items()) if w >= 1 and rate >= consumption_per_s]
    return ok[0] if ok else None


def usl(n: np.ndarray | float, lam: float, sigma: float, kappa: float) -> np.ndarray | float:
    n = np.asarray(n, dtype=np.float64)
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def fit_usl(workers: Sequence[int], rates: Sequence[float]) -> tuple[float, float, float, float]:
    """(lam, sigma, kappa, relative RMSE) minimizing relative squared error over a (sigma, kappa)
    grid with lam in closed form; with two points kappa is held at 0 (Amdahl)."""
    n = np.asarray(workers, dtype=np.float64)
    x = np.asarray(rates, dtype=np.float64)
    if n.size < 2 or np.any(n < 1) or np.any(x <= 0):
        raise ValueError("need >= 2 positive rates at worker counts >= 1")
    sigmas = np.concatenate([np.linspace(0, 0.2, 81), np.linspace(0.2, 1, 81)[1:]])
    kappas = np.concatenate([[0.0], np.geomspace(1e-5, 0.5, 80)]) if n.size >= 3 else np.array([0.0])
    s, k = np.meshgrid(sigmas, kappas, indexing="ij")
    f = n / (1 + s[..., None] * (n - 1) + k[..., None] * n * (n - 1))  # [S, K, points]
    g = f / x  # relative: minimize sum((lam f - x)/x)^2 -> lam = sum(g)/sum(g^2)
    lam = g.sum(-1) / (g * g).sum(-1)
    err = ((lam[..., None] * g - 1) ** 2).mean(-1)
    i, j = np.unravel_index(np.argmin(err), err.shape)
    return float(lam[i, j]), float(s[i, j]), float(k[i, j]), float(np.sqrt(err[i, j]))


def scaling_fit(track: str, fmt: str, ingestion: dict[int, float], consumption_per_s: float,
                max_workers: int = MAX_FIT_WORKERS) -> ScalingFit | None:
    """USL fit over worker counts >= 1; None with fewer than two such counts."""
    pts = {w: r for w, r in ingestion.items() if w >= 1 and r > 0}
    if len(pts) < 2:
        return None
    ws = sorted(pts)
    lam, sigma, kappa, rmse = fit_usl(ws, [pts[w] for w in ws])
    grid = range(1, max_workers + 1)
    predicted = [ScalingPoint(num_workers=w, samples_per_s=float(usl(w, lam, sigma, kappa)),
                              extrapolated=not min(ws) <= w <= max(ws)) for w in grid]
    # within the measured range the measurements themselves say where the equilibrium is: the fit
    # only predicts beyond it, and only when no measured count reached it
    measured_reach = any(r >= consumption_per_s for r in pts.values())
    poor = rmse > MAX_FIT_REL_RMSE  # e.g. a slowdown two points cannot follow with kappa held at 0
    reach = [p.num_workers for p in predicted
             if p.num_workers > max(ws) and p.samples_per_s >= consumption_per_s] if not (measured_reach or poor) else []
    notes = (["kappa held at 0 (two points)"] if len(ws) == 2 else []) + (
        [f"poor fit (relative RMSE {rmse:.0%}): no equilibrium predicted from it"] if poor else [])
    return ScalingFit(
        track=track, format=fmt, lam_per_s=lam, sigma=sigma, kappa=kappa, measured_workers=ws, rel_rmse=rmse,
        note="; ".join(notes) or None, predicted=predicted, flow_equilibrium_predicted=reach[0] if reach else None,
    )


def binding_stage(fetch: float | None, prep: float, transport: float, compute: float) -> str:
    """The slowest stage of the pipeline (lowest rate); fetch None means it never showed."""
    rates = {"prep": prep, "transport": transport, "compute": compute}
    if fetch is not None:
        rates["fetch"] = fetch
    return min(rates, key=rates.get)


# ---------------------------------------------------------------------------------------------
# Measurements


class _Drain:
    """A consumer that takes no time: the loader alone."""

    flops_per_sample = None

    def step(self, batch: dict) -> float:
        return 0.0


def _consumer(spec: ConsumerSpec, track: str):
    from feedtax.measure.consumers import EmulatedConsumer, ModelConsumer

    if spec.kind == "model":
        return ModelConsumer(track, device=spec.device)
    return EmulatedConsumer(spec.step_s or 0.0)


def transport_cost(batch: dict[str, np.ndarray], *, step_s: float = 0.01, steps: int = 20) -> TransportCost:
    """A ready batch's cost per batch at 0 and 1 workers with no consumer (full speed: a worker's copy
    and handover cannot hide behind a step), and the wait per step behind a consumer sleeping step_s
    at 1 worker (what the consumer sees: the main process's receive)."""
    from feedtax.loader import LoaderConfig, SyntheticBatches, make_loader
    from feedtax.measure.consumers import EmulatedConsumer
    from feedtax.measure.feeding import measure_feeding

    size = len(next(iter(batch.values())))

    def run(workers: int, consumer) -> float:
        loader = make_loader("raw", [], LoaderConfig(batch_size=size, num_workers=workers),
                             dataset=SyntheticBatches(batch, steps + 8))
        r = measure_feeding(loader, consumer, warmup_steps=4, steps=steps, keep_timeline=False)
        return (r.wall_s if isinstance(consumer, _Drain) else r.wait_s) / r.steps

    full_speed = {w: run(w, _Drain()) for w in (0, 1)}
    return TransportCost(batch_size=size, batch_bytes=int(sum(v.nbytes for v in batch.values())),
                         in_process_s_per_batch=full_speed[0], worker_s_per_batch=full_speed[1],
                         ipc_s_per_batch=full_speed[1] - full_speed[0],
                         transport_s_per_batch=run(1, EmulatedConsumer(step_s)))


def _epoch_rate(loader, stages: list | None = None) -> tuple[float, int, float]:
    """(seconds for one whole pass from iter(), samples, seconds to the first batch); each batch's
    STAGE_KEY is appended to stages when given."""
    from feedtax.loader import STAGE_KEY
    from feedtax.measure.feeding import samples_and_bytes

    t0 = time.perf_counter()
    n, first = 0, None
    for batch in loader:
        if first is None:
            first = time.perf_counter() - t0
        n += samples_and_bytes(batch)[0]
        if stages is not None:
            stages.append(batch[STAGE_KEY])
    return time.perf_counter() - t0, n, first or 0.0


def _sample_batch(fmt: str, paths: Sequence[Path], batch_size: int, transform) -> dict[str, np.ndarray]:
    """The first batch of a format's first shard as numpy (no worker): the ready data of
    SyntheticBatches, for the in-memory ceiling and the transport cost."""
    from feedtax.loader import LoaderConfig, make_loader

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
    from feedtax.loader import LoaderConfig, SyntheticBatches, make_loader
    from feedtax.probes import pagecache

    cfg = LoaderConfig(batch_size=batch_size, num_workers=num_workers, persistent_workers=num_workers > 0)
    loader = make_loader(fmt, paths, cfg, transform=transform)
    for p in paths:  # warm the page cache
        Path(p).read_bytes()
    _, n, _ = _epoch_rate(loader)  # warm-up: workers started, code and caches warm
    warm, cold, stages, evicted = [], [], [], True
    for _ in range(max(1, rounds)):
        warm.append(_epoch_rate(loader, stages)[0])
        evicted &= pagecache.evict(paths).evicted
        cold.append(_epoch_rate(loader)[0])
    if sample_batch is None:
        sample_batch = _sample_batch(fmt, paths, batch_size, transform)
    mem_loader = make_loader(fmt, [], cfg, dataset=SyntheticBatches(sample_batch, math.ceil(n / batch_size)))
    _, n_mem, _ = _epoch_rate(mem_loader)
    mem = [_epoch_rate(mem_loader)[0] for _ in range(max(1, rounds))]
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


def run_sweep(
    track: str,
    formats: Sequence[str],
    shards: dict[str, Sequence[Path]],
    worker_counts: Sequence[int],
    *,
    batch_size: int,
    consumer: ConsumerSpec = ConsumerSpec(),
    steps: int = 20,
    warmup_steps: int | None = None,
    transform: bool = True,
    breakdown: bool = True,
    breakdown_formats: Sequence[str] | None = None,
    peak_flop_per_s: float | None = None,
    sampler_factory: Callable[[], Any] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> tuple[list[LoaderRow], FeedingSummary]:
    """Sweep formats x worker counts for one track and one consumer; rows and the summary.

    A model consumer on a GPU gets, per run with the consumer, an NVML sampler (sampler_factory;
    by default feedtax.probes.nvml.NvmlSampler on the consumer's GPU) and MFU against peak_flop_per_s, or
    else the device's peak at the model's precision from mlsysim's registry (absent, with the
    reason, when unknown).
    Every format's flow equilibrium is judged against one consumer rate: the median step over all runs.
    on_step(label) is called after every measured run (for a progress bar): per format and worker
    count two runs (loader alone, with consumer), plus one per format for the breakdown and one
    for the transport cost.
    """
    from feedtax.loader import LoaderConfig, make_loader, transform_for
    from feedtax.measure.feeding import measure_feeding

    started = time.perf_counter()
    tf = transform_for(track) if transform else None
    rows: list[LoaderRow] = []
    cons = _consumer(consumer, track)
    device = str(getattr(cons, "device", "emulated"))
    peak_source = None
    if device.startswith("cuda"):
        peak_flop_per_s, peak_source = _gpu_peak(device, getattr(cons, "precision", "fp32"), peak_flop_per_s)
        sampler_factory = sampler_factory or _gpu_sampler(device)
    elif peak_flop_per_s and consumer.kind == "model":
        peak_source = "given by the user"
    nvml_note = None
    ingestion: dict[str, dict[int, float]] = {}
    for fmt in formats:
        paths = [Path(p) for p in shards[fmt]]
        ingestion[fmt] = {}
        for w in worker_counts:
            warm = warmup_steps if warmup_steps is not None else 2 + 2 * max(w, 1)
            n_samples = _count(fmt, paths)
            epochs = max(1, math.ceil((warm + steps + 2 * max(w, 1) + 2) * batch_size / max(n_samples, 1)) + 1)
            cfg = LoaderConfig(batch_size=batch_size, num_workers=w, epochs=epochs)
            alone = measure_feeding(make_loader(fmt, paths, cfg, transform=tf), _Drain(),
                                    warmup_steps=warm, steps=steps, keep_timeline=False)
            ingestion[fmt][w] = alone.samples_per_s
            _tick(on_step, f"{track}/{fmt} w={w} loader alone")
            with contextlib.ExitStack() as stack:
                sampler = stack.enter_context(sampler_factory()) if sampler_factory is not None else None
                fed = measure_feeding(make_loader(fmt, paths, cfg, transform=tf), cons, warmup_steps=warm, steps=steps,
                                      peak_flop_per_s=peak_flop_per_s, sampler=sampler, keep_timeline=False)
            nvml = fed.nvml or {}
            if nvml.get("reason"):  # NVML absent, a reader that failed, or a run too short for its utilization
                nvml_note = nvml["reason"]
            _tick(on_step, f"{track}/{fmt} w={w} with consumer")
            rows.append(LoaderRow(
                track=track, format=fmt, num_workers=w, batch_size=batch_size, samples_per_s=fed.samples_per_s,
                feeding_tax=fed.feeding_tax, au=fed.au, step_s=fed.compute_s / fed.steps,
                ingestion_samples_per_s=alone.samples_per_s, ingestion_mb_per_s=alone.mb_per_s,
                mb_per_s=fed.mb_per_s, wait_s=fed.wait_s, compute_s=fed.compute_s, wall_s=fed.wall_s,
                step_wall_s_iqr=fed.step_wall_s.iqr, unstable=fed.step_wall_s.unstable,
                consumer=consumer.kind, device=device, mfu=fed.mfu,
                decode_s_per_batch=alone.stages.decode_s_per_batch,
                transform_s_per_batch=alone.stages.transform_s_per_batch,
                collate_s_per_batch=alone.stages.collate_s_per_batch,
                nvml_util_gpu_pct=nvml.get("util_gpu_pct_mean"), nvml_idle_fraction=nvml.get("idle_fraction"),
                nvml_power_w=nvml.get("power_w_mean"), nvml_energy_j=nvml.get("energy_j"),
            ))
    step = float(np.median([r.step_s for r in rows])) if rows else math.nan
    consumption = batch_size / step if step > 0 else math.inf
    equilibrium = {fmt: flow_equilibrium(ingestion[fmt], consumption) for fmt in formats}
    fits = [f for fmt in formats if (f := scaling_fit(track, fmt, ingestion[fmt], consumption)) is not None]
    first = _sample_batch(formats[0], shards[formats[0]], batch_size, tf) if formats else None
    parts = []
    for fmt in formats:
        if breakdown and (breakdown_formats is None or fmt in breakdown_formats):
            parts.append(wait_breakdown(track, fmt, shards[fmt], num_workers=max(worker_counts), batch_size=batch_size,
                                        consumer_per_s=consumption, transform=tf,
                                        sample_batch=first if fmt == formats[0] else None))
            _tick(on_step, f"{track}/{fmt} breakdown")
    transport = transport_cost(first) if first is not None else None
    _tick(on_step, f"{track} transport")
    summary = FeedingSummary(
        track=track, consumer=consumer, batch_size=batch_size, consumption_samples_per_s=consumption,
        flow_equilibrium=equilibrium, fits=fits, breakdown=parts, transport=transport,
        peak_flop_per_s=peak_flop_per_s, peak_source=peak_source, nvml_absent_reason=nvml_note,
        elapsed_s=time.perf_counter() - started,
    )
    return rows, summary


def _gpu_peak(device: str, precision: str, given: float | None) -> tuple[float | None, str]:
    """The GPU's peak for MFU at the precision the model runs in (fp32, or tf32 where torch lets
    cuDNN use it): the user's, else mlsysim's registry."""
    import torch

    from feedtax.measure.feeding import peak_flops

    return peak_flops(torch.cuda.get_device_name(torch.device(device)), precision, user_peak=given)


def _gpu_sampler(device: str) -> Callable[[], Any]:
    """NVML samplers for the consumer's GPU, found by PCI bus id (else UUID): CUDA_VISIBLE_DEVICES
    renumbers CUDA's devices, so CUDA's index need not be NVML's."""
    import torch

    from feedtax.probes.nvml import NvmlSampler

    dev = torch.device(device)
    props = torch.cuda.get_device_properties(dev)
    if all(hasattr(props, a) for a in ("pci_domain_id", "pci_bus_id", "pci_device_id")):
        device_id = "%08x:%02x:%02x.0" % (props.pci_domain_id, props.pci_bus_id, props.pci_device_id)
    elif getattr(props, "uuid", None) is not None:
        device_id = f"GPU-{props.uuid}"
    else:
        device_id = None  # NVML's index, as CUDA's: right unless CUDA_VISIBLE_DEVICES reorders
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    return lambda: NvmlSampler(index=index, device_id=device_id)


_COUNTS: dict[tuple, int] = {}


def _count(fmt: str, paths: Sequence[Path]) -> int:
    from feedtax.loader import shard_lengths

    key = (fmt, tuple(str(p) for p in paths))
    if key not in _COUNTS:
        _COUNTS[key] = sum(shard_lengths(fmt, paths))
    return _COUNTS[key]


def _tick(on_step: Callable[[str], None] | None, label: str) -> None:
    if on_step is not None:
        on_step(label)


# What the ci profile should sweep: one track, three formats spanning text, columnar and the
# physical limit, workers 0,1,2, a short emulated step (measured: see the helper's report).
CI_SWEEP = {"track": "edge", "formats": ("csv", "parquet", "raw"), "batch_size": 16, "steps": 16,
            "consumer": ConsumerSpec(kind="emulated", step_s=0.005)}


# The check's batch: big enough that torch's fixed per-batch cost at 1 worker (worker->main message
# plus index round trip, ~0.3 ms of worker CPU and ~0.2 ms of main CPU per batch on a 2-core VM) is
# a few percent of the batch's decode time, so the ratio shows the harness's per-sample overhead;
# capped in bytes so the ring's slots fit in shared memory (max_batch_bytes). A 4 MiB cap held raw
# and protobuf frames to 2.5-8 ms of decode per batch: 0.71-0.75 there, 0.85-0.94 at 10-20 ms.
AMORTIZED_BATCH_DECODE_S = 0.01
AMORTIZED_BATCH_MAX_BYTES = 32 << 20
MIN_TIMED_BATCHES = 12


def max_batch_bytes(slots: int, shm: str = "/dev/shm") -> int:
    """The largest batch one worker's ring may hold: its slots within a quarter of shared memory's free
    space (a tmpfs slot past the space left faults on write, it does not fail to allocate), at most
    AMORTIZED_BATCH_MAX_BYTES, at least 1 MiB; 4 MiB where shared memory cannot be inspected."""
    import shutil

    try:
        free = shutil.disk_usage(shm).free
    except OSError:
        return 4 << 20
    return max(1 << 20, min(AMORTIZED_BATCH_MAX_BYTES, free // (4 * slots)))


def _rate(seconds: float, n: int) -> float:
    return n / seconds if seconds > 0 else 0.0


def loader_overhead(track: str, fmt: str, paths: Sequence[Path], *, decode_samples_per_s: float,
                    batch_size: int = 64, rounds: int = 5, transport: str = "ring") -> LoaderOverhead:
    """The loader at one worker against decode, at the sweep's batch and at an amortized batch (its
    decode takes AMORTIZED_BATCH_DECODE_S at decode_samples_per_s), in `rounds` paired rounds; the
    fixed per-batch cost from the two batch sizes."""
    from feedtax import formats as codecs
    from feedtax.loader import LoaderConfig, make_loader, ring_slots
    from feedtax.measure.feeding import samples_and_bytes

    codec = codecs.get(fmt)
    n_samples = _count(fmt, paths)
    first = next(iter(make_loader(fmt, paths[:1], LoaderConfig(batch_size=1))))
    sample_bytes = samples_and_bytes(first)[1]
    big = max(batch_size, min(math.ceil(decode_samples_per_s * AMORTIZED_BATCH_DECODE_S),
                              max_batch_bytes(ring_slots(LoaderConfig())) // max(sample_bytes, 1)))
    sizes = sorted({batch_size, big})
    epochs = {b: max(1, math.ceil(MIN_TIMED_BATCHES * b / max(n_samples, 1))) for b in sizes}
    passes = max(epochs.values())
    loaders = {(b, w): make_loader(fmt, paths, LoaderConfig(batch_size=b, num_workers=w, epochs=epochs[b],
                                                            persistent_workers=True, transport=transport))
               for b in sizes for w in (0, 1)}
    decode, ratios, in_process = [], {b: [] for b in sizes}, {b: [] for b in sizes}
    rate = {b: [] for b in sizes}
    stages: dict[int, list[np.ndarray]] = {b: [] for b in sizes}  # the worker's own clock, per batch

    for loader in loaders.values():  # warm-up: workers started (persistent), files opened once
        _epoch_rate(loader)
    for _ in range(max(1, rounds)):  # whole passes: a shard's decode is never left out of the window
        t0 = time.perf_counter()  # the format stage's way: every sample decoded and let go, as many as a loader pass
        n = sum(sum(1 for _ in codec.iter_samples(paths)) for _ in range(passes))
        d = _rate(time.perf_counter() - t0, n)
        decode.append(d)
        for b in sizes:
            secs, n, _ = _epoch_rate(loaders[b, 0])
            in_process[b].append(_rate(secs, n) / d)
            secs, n, _ = _epoch_rate(loaders[b, 1], stages[b])
            rate[b].append(_rate(secs, n))
            ratios[b].append(rate[b][-1] / d)
    loader_rate = {b: float(np.median(rate[b])) for b in sizes}
    per_batch = None
    if big >= 2 * batch_size and loader_rate[batch_size] > 0 and loader_rate[big] > 0:  # closer: too noisy a fit
        per_sample = (big / loader_rate[big] - batch_size / loader_rate[batch_size]) / (big - batch_size)
        per_batch = batch_size / loader_rate[batch_size] - batch_size * per_sample
        per_batch = per_batch if per_batch > 0 else None  # a negative intercept is noise, not a cost
    q1, q3 = np.percentile(ratios[big], [25, 75])
    decode_s, _, collate_s, rows = np.sum(stages[big], axis=0)
    per_batch_rows = rows / len(stages[big])
    return LoaderOverhead(
        track=track, format=fmt, batch_size=batch_size, loader_samples_per_s=loader_rate[batch_size],
        decode_samples_per_s=decode_samples_per_s, ratio=loader_rate[batch_size] / decode_samples_per_s,
        amortized_batch_size=big, amortized_loader_samples_per_s=loader_rate[big],
        amortized_ratio=loader_rate[big] / decode_samples_per_s, per_batch_s=per_batch, column_batches=codec.columnar,
        rounds=max(1, rounds), paired_decode_samples_per_s=float(np.median(decode)),
        paired_ratio=float(np.median(ratios[batch_size])), amortized_paired_ratio=float(np.median(ratios[big])),
        amortized_paired_ratio_iqr=(float(q1), float(q3)),
        in_process_ratio=float(np.median(in_process[batch_size])),
        amortized_in_process_ratio=float(np.median(in_process[big])),
        amortized_worker_decode_s_per_batch=float(decode_s / len(stages[big])),
        amortized_worker_collate_s_per_batch=float(collate_s / len(stages[big])),
        amortized_wall_s_per_batch=float(per_batch_rows / loader_rate[big]),
    )
