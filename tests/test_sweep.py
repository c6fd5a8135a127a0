"""One small real sweep end to end, its GPU wiring with CUDA and NVML stood in for, and the figures drawn from it."""

from __future__ import annotations

import pytest

from feedtax import formats
from feedtax.bench.scaling import scaling_fit
from feedtax.bench.sweep import run_sweep
from feedtax.results.feeding import ConsumerSpec, FeedingSummary, LoaderRow


def test_small_real_sweep(tmp_path, track_samples):
    from feedtax.probes.nvml import NvmlSampler

    samples = track_samples["tiny"]
    shards = {f: formats.get(f).write(samples, tmp_path / f, samples_per_shard=8) for f in ("json", "raw")}
    labels, samplers = [], []

    def recorded_gpu():  # a GPU busy 70% of the time, by NVML's duty cycle
        samplers.append(NvmlSampler(period_s=0.002, reader=lambda: {"util_gpu_pct": 70.0, "power_w": 300.0},
                                    device_name="Recorded GPU", settle_s=0.0))
        return samplers[-1]

    rows, summary = run_sweep("tiny", ["json", "raw"], shards, [0, 1], batch_size=4,
                              consumer=ConsumerSpec(kind="emulated", step_s=0.002), steps=6,
                              breakdown_formats=["raw"], sampler_factory=recorded_gpu, on_step=labels.append)
    assert [(r.format, r.num_workers) for r in rows] == [("json", 0), ("json", 1), ("raw", 0), ("raw", 1)]
    assert len(samplers) == 4 and not any(s._thread for s in samplers)  # one per run with the consumer, stopped
    for r in rows:
        assert isinstance(r, LoaderRow) and r.wait_s < r.wall_s
        assert r.feeding_tax == pytest.approx(1 - r.compute_s / r.wall_s)
        assert r.samples_per_s > 0 and r.ingestion_samples_per_s > 0 and r.step_s >= 0.002
        assert r.nvml_util_gpu_pct == 70.0 and r.nvml_idle_fraction == pytest.approx(0.3) and r.nvml_power_w == 300.0
        assert set(LoaderRow.model_fields) >= {"track", "format", "num_workers", "batch_size", "samples_per_s",
                                               "feeding_tax", "au", "step_s"}
    assert isinstance(summary, FeedingSummary) and set(summary.flow_equilibrium) == {"json", "raw"}
    assert summary.consumption_samples_per_s == pytest.approx(4 / 0.002, rel=0.2)
    [b] = summary.breakdown
    assert b.format == "raw" and b.rounds == 3 and b.prep_samples_per_s > 0 and b.in_memory_samples_per_s > 0
    assert b.cache_evicted or b.fetch_samples_per_s is None  # no fetch rate from a cache that stayed full
    t = summary.transport
    assert t is not None and t.transport_s_per_batch > 0 and t.in_process_s_per_batch > 0
    assert t.ipc_s_per_batch == pytest.approx(t.worker_s_per_batch - t.in_process_s_per_batch)
    assert len(labels) == 4 * 2 + 1 + 1
    FeedingSummary.model_validate_json(summary.model_dump_json())  # round-trips for results.json


def test_figures_render(tmp_path):
    from feedtax.reports.feeding_figures import feeding_tax_gauge, mfu_vs_ingestion, scaling, wait_breakdown
    from feedtax.results.feeding import TransportCost, WaitBreakdown

    rows = [LoaderRow(track="edge", format=f, num_workers=w, batch_size=16, samples_per_s=1000 * (w + 1),
                      feeding_tax=0.5 / (w + 1), au=1 - 0.5 / (w + 1), step_s=0.005,
                      ingestion_samples_per_s=1500 * (w + 1), ingestion_mb_per_s=1.0, mb_per_s=1.0, wait_s=0.1,
                      compute_s=0.1, wall_s=0.2, step_wall_s_iqr=0.0,
                      unstable=w == 2, consumer="emulated", device="emulated")
            for f in ("csv", "raw") for w in (0, 1, 2)]
    summary = FeedingSummary(
        track="edge", consumer=ConsumerSpec(), batch_size=16, consumption_samples_per_s=3200,
        flow_equilibrium={"csv": 2, "raw": None},
        breakdown=[WaitBreakdown(track="edge", format="raw", num_workers=2, in_memory_samples_per_s=9000,
                                 warm_samples_per_s=5000, cold_samples_per_s=4000, prep_samples_per_s=5000,
                                 fetch_samples_per_s=None, consumer_samples_per_s=3200, binding="compute",
                                 cache_evicted=True)],
        transport=TransportCost(batch_size=16, batch_bytes=1000, in_process_s_per_batch=2e-4,
                                transport_s_per_batch=1.2e-3, ipc_s_per_batch=1e-3),
        fits=[scaling_fit("edge", f, {w: 1500.0 * (w + 1) for w in (0, 1, 2)}, 3200) for f in ("csv", "raw")],
    )
    breakdown = wait_breakdown(summary)
    ax = breakdown.axes[0]
    breakdown.canvas.draw()
    [hidden] = [t.get_window_extent(breakdown.canvas.get_renderer()) for t in ax.texts if t.get_text() == "hidden"]
    assert ax.bbox.contains((hidden.x0 + hidden.x1) / 2, (hidden.y0 + hidden.y1) / 2)  # the missing fetch bar says why
    assert scaling(rows, FeedingSummary(**{**summary.model_dump(), "fits": []})) is None
    fit_fig = scaling(rows, summary, cores=2)
    labels = fit_fig.axes[0].get_legend_handles_labels()[1]
    assert "csv USL, extrapolated" in labels and "2 cores on this machine" in labels
    for fig in (feeding_tax_gauge(rows), mfu_vs_ingestion(rows, summary), breakdown, fit_fig,
                feeding_tax_gauge([r.model_dump() for r in rows])):
        fig.savefig(tmp_path / "f.png")


def test_gpu_sampler_names_nvmls_gpu_by_bus_id_and_peak_follows_the_precision(monkeypatch):
    """The CUDA-only wiring, with torch.cuda and NVML stood in for: CUDA_VISIBLE_DEVICES renumbers CUDA's
    GPUs, so NVML's is named by PCI bus id (else UUID); the MFU peak is the model's precision's."""
    from types import SimpleNamespace as NS

    import torch

    import feedtax.model.peaks as peaks
    from feedtax.bench.consumers import ModelConsumer
    from feedtax.bench.sweep import _gpu_peak
    from feedtax.probes import nvml
    from feedtax.probes.nvml import cuda_sampler

    made = []
    monkeypatch.setattr(nvml, "NvmlSampler", lambda **kw: made.append(kw))
    props = NS(pci_domain_id=0, pci_bus_id=0x3B, pci_device_id=0, uuid="1234-abcd")
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda dev: props)
    cuda_sampler("cuda:1")()
    assert made[-1] == {"index": 1, "device_id": "00000000:3b:00.0"}
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda dev: NS(uuid="1234-abcd"))
    cuda_sampler("cuda:0")()
    assert made[-1] == {"index": 0, "device_id": "GPU-1234-abcd"}

    class Q(float):
        def to(self, unit):
            return NS(magnitude=float(self))

    registry = [NS(name="NVIDIA H200", compute=NS(precision_flops={"fp32": Q(67e12), "tf32": Q(494e12)}))]
    monkeypatch.setattr(peaks, "_mlsysim_nodes", lambda: registry)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda dev: "NVIDIA H200")
    frames, tokens = ModelConsumer("edge", device="cpu"), ModelConsumer("cloud", device="cpu")
    frames.device = tokens.device = "cuda:0"  # the precision logic only; no CUDA here
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32  # torch's flags: no monkeypatch undo
    try:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = True, False  # torch's defaults
        assert (frames.precision, tokens.precision) == ("tf32", "fp32")  # convs in TF32, matmuls in fp32
        torch.backends.cudnn.allow_tf32 = False
        assert frames.precision == "fp32"
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
    assert _gpu_peak("cuda:0", frames.precision, None) == (494e12, "mlsysim registry: NVIDIA H200 tf32")
    assert _gpu_peak("cuda:0", tokens.precision, None)[0] == 67e12
    assert _gpu_peak("cuda:0", "fp32", 1e15) == (1e15, "given by the user")


def test_breakdown_figure_of_an_older_results_file():
    """results.json from before worker_s_per_batch: the figure shows the bars it has."""
    from feedtax.reports.feeding_figures import wait_breakdown

    part = {"track": "edge", "format": "raw", "num_workers": 2, "in_memory_samples_per_s": 9000.0,
            "warm_samples_per_s": 5000.0, "cold_samples_per_s": 4000.0, "prep_samples_per_s": 5000.0,
            "fetch_samples_per_s": None, "consumer_samples_per_s": 3200.0, "binding": "compute", "cache_evicted": False}
    summary = {"track": "edge", "breakdown": [part], "transport": {
        "batch_size": 16, "batch_bytes": 1000, "in_process_s_per_batch": 2e-4, "transport_s_per_batch": 1.2e-3,
        "ipc_s_per_batch": 1e-3}}
    fig = wait_breakdown(summary)
    ticks = [t.get_text() for t in fig.axes[1].get_xticklabels()]
    assert ticks == ["0 workers:\nmake batch", "1 worker: wait\nper step"]
    assert "not evicted" in [t.get_text() for t in fig.axes[0].texts]


def test_every_au_and_feeding_tax_in_a_sweep_has_an_interval(tmp_path, track_samples):
    """A small sweep with the stopping rule, both loaders (the gaps and their fixes too), as results.json holds it:
    every AU and feeding tax has its interval, within [0, 1] and holding the value, wide points marked by the rule."""
    import json

    from feedtax.bench.loadergap import sweep_loaders
    from feedtax.vocabulary import StopRule

    shards = {"raw": formats.get("raw").write(track_samples["tiny"], tmp_path / "raw", samples_per_shard=8)}
    rule = StopRule(au_ci_pp=2.0, max_steps=40, max_s=0.5)
    rows, summaries, gaps = sweep_loaders("tiny", ["raw"], shards, [0, 1], batch_size=4,
                                          consumer=ConsumerSpec(kind="emulated", step_s=0.002), steps=8,
                                          breakdown=False, stop=rule)
    doc = json.loads(json.dumps({"loader": [r.model_dump() for r in rows],
                                 "loader_gaps": [g.model_dump() for g in gaps]}))

    def walk(node, path=""):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("au", "feeding_tax", "default_au", "tuned_au", "mlperf_au") and value is not None:
                    ci = node.get(f"{key}_ci95")
                    assert ci is not None and 0 <= ci[0] <= ci[1] <= 1, (path, key, ci)
                    assert ci[0] - 1e-9 <= value <= ci[1] + 1e-9, (path, key, value, ci)
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    walk(doc)
    for r in rows:
        assert 8 <= r.steps <= 40 and r.au_ci_target_pp == 2.0 and r.stopped_by in ("au_ci", "max_steps", "max_s")
        assert r.feeding_tax_ci95 == pytest.approx((1 - r.au_ci95[1], 1 - r.au_ci95[0]))
        assert r.au_ci_wide == ((r.au_ci95[1] - r.au_ci95[0]) * 100 >= 2.0)
        assert r.au_ci_wide or r.stopped_by == "au_ci"
