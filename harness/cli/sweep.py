"""`feedtax sweep`: the DataLoader worker sweep on freshly generated data, printed as a table or JSON.

Register with `app.command()(sweep)`. Imports stay cheap here: torch loads inside the command.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import typer

from feedtax.cli.options import choices, fail
from feedtax.vocabulary import FORMATS, TRACKS

_FORMAT_HELP = f"Formats (repeat or comma-separate): {', '.join(FORMATS)}."
_TRACK_HELP = f"Track whose samples to load: {', '.join(TRACKS)}."


def _workers(text: str) -> list[int]:
    try:
        counts = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise typer.BadParameter(f"--workers takes comma-separated integers, got {text!r}") from None
    if not counts or counts[0] < 0:
        raise typer.BadParameter("--workers needs at least one count >= 0")
    return counts


def sweep(
    format: list[str] | None = typer.Option(None, "--format", help=_FORMAT_HELP),
    workers: str = typer.Option("0,1,2,4", help="Worker counts, comma-separated."),
    track: str = typer.Option("edge", help=_TRACK_HELP),
    step_ms: float | None = typer.Option(None, "--step-ms", min=0.0,
                                         help="Emulated accelerator: sleep this long per batch (default 5)."),
    model: bool = typer.Option(False, "--model", help="Feed the track's real small model instead of an emulated step."),
    device: str | None = typer.Option(None, help="Model device: cpu or cuda (default: cuda when present)."),
    peak_tflops: float | None = typer.Option(None, "--peak-tflops", help="The device's peak TFLOP/s for MFU "
                                                "(default on a GPU: its peak at the model's precision, fp32 or tf32, "
                                                "from mlsysim's registry)."),
    profile: str = typer.Option("ci", help="Sample sizes and dataset size from this profile."),
    batch_size: int = typer.Option(16, min=1, help="Samples per batch."),
    steps: int = typer.Option(20, min=1, help="Measured steps per run (warm-up steps come on top)."),
    seed: int = typer.Option(0, help="Seed of the synthetic data."),
    as_json: bool = typer.Option(False, "--json", help="Print rows and summary as JSON."),
) -> None:
    """Sweep formats x DataLoader worker counts: feeding tax, flow equilibrium, where the wait comes from."""
    if model and step_ms is not None:
        raise typer.BadParameter("give --step-ms or --model, not both")
    if peak_tflops is not None and not peak_tflops > 0:
        raise typer.BadParameter("--peak-tflops must be > 0")
    if device not in (None, "cpu", "cuda"):
        raise typer.BadParameter("--device is cpu or cuda")
    if track not in TRACKS:
        raise typer.BadParameter(f"unknown track {track!r}; choose from {', '.join(TRACKS)}")
    from feedtax.bench import profiles

    fmts = choices(format, FORMATS, "format", list(profiles.CI_SWEEP.formats))
    counts = _workers(workers)
    try:
        prof = profiles.get(profile)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None

    from feedtax import datasets
    from feedtax import formats as codecs
    from feedtax.bench.sweep import run_sweep
    from feedtax.results.feeding import ConsumerSpec

    if device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise fail("--device cuda asked for, but torch sees no CUDA device (absent)")
    spec = ConsumerSpec(kind="model", step_s=None, device=device) if model else \
        ConsumerSpec(kind="emulated", step_s=(step_ms if step_ms is not None else 5.0) / 1000.0)
    work = Path(tempfile.mkdtemp(prefix="feedtax-sweep-"))
    try:
        samples = list(datasets.generate(track, prof.samples_per_track, seed, prof.sizes))
        shards = {f: codecs.get(f).write(samples, work / f, samples_per_shard=prof.samples_per_shard) for f in fmts}
        from rich.console import Console
        console = Console(stderr=True)
        with console.status("sweeping...") as status:
            rows, summary = run_sweep(track, fmts, shards, counts, batch_size=batch_size, consumer=spec, steps=steps,
                                      peak_flop_per_s=peak_tflops * 1e12 if peak_tflops is not None else None,
                                      on_step=lambda label: status.update(f"sweeping: {label}"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if as_json:
        typer.echo(json.dumps({"loader": [r.model_dump() for r in rows], "feeding": summary.model_dump()}, indent=2))
        return
    _print(rows, summary)


def _print(rows, summary) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{summary.track}: feeding tax per format x workers "
                        f"({summary.consumer.kind} consumer, batch {summary.batch_size}, "
                        f"needs {summary.consumption_samples_per_s:,.0f} samples/s)")
    mfu = any(r.mfu is not None for r in rows)
    nvml = any(r.nvml_idle_fraction is not None for r in rows)
    for col in ("format", "workers", "loader alone/s", "fed/s", "feeding tax", "AU", "step ms", "wait s") + \
            (("MFU",) if mfu else ()) + (("NVML idle",) if nvml else ()):
        table.add_column(col, justify="left" if col == "format" else "right")
    for r in rows:
        eq = summary.flow_equilibrium.get(r.format)
        mark = " *" if eq == r.num_workers else ""
        table.add_row(r.format, f"{r.num_workers}{mark}", f"{r.ingestion_samples_per_s:,.0f}",
                      f"{r.samples_per_s:,.0f}",
                      f"{r.feeding_tax:.1%}" + (" [red]![/red]" if r.unstable else ""), f"{r.au:.2f}",
                      f"{r.step_s * 1e3:.2f}", f"{r.wait_s:.3f}",
                      *([f"{r.mfu:.2%}" if r.mfu is not None else "-"] if mfu else []),
                      *([f"{r.nvml_idle_fraction:.1%}" if r.nvml_idle_fraction is not None else "-"] if nvml else []))
    console.print(table)
    if summary.peak_source:
        console.print(f"MFU against {summary.peak_source} ({summary.peak_flop_per_s / 1e12:,.1f} TFLOP/s)"
                      if summary.peak_flop_per_s else f"no MFU: the device's peak is {summary.peak_source}")
    if nvml:
        console.print("NVML idle = 1 - utilization.gpu, a coarse duty cycle (share of time any kernel ran), "
                      "to set against the feeding tax measured by timing")
    if summary.nvml_absent_reason:
        console.print(f"NVML: {summary.nvml_absent_reason}")
    for fmt, eq in summary.flow_equilibrium.items():
        fit = next((f for f in summary.fits if f.format == fmt), None)
        predicted = fit.flow_equilibrium_predicted if fit and eq is None else None
        pred = f"; USL fit predicts {predicted} (extrapolated)" if predicted else ""
        console.print(f"flow equilibrium {fmt}: {eq if eq is not None else 'not reached'} workers (*){pred}")
    for f in summary.fits:
        console.print(f"USL fit {f.format} over workers {', '.join(map(str, f.measured_workers))}: lambda "
                      f"{f.lam_per_s:,.0f}/s, sigma {f.sigma:.3f}, kappa {f.kappa:.4f}, rel. RMSE {f.rel_rmse:.1%}; "
                      f"{f.predicted[-1].samples_per_s:,.0f}/s at {f.predicted[-1].num_workers} workers"
                      + (" (extrapolated)" if f.predicted[-1].extrapolated else "")
                      + (f" [{f.note}]" if f.note else ""))
    for b in summary.breakdown:
        fetch = (f"{b.fetch_samples_per_s:,.0f}/s" if b.fetch_samples_per_s else
                 "hidden (cold no slower than warm)" if b.cache_evicted else "not measured (cache not evicted)")
        console.print(f"wait breakdown {b.format} @ {b.num_workers} workers: "
                      f"in-memory {b.in_memory_samples_per_s:,.0f}/s, "
                      f"prep {b.prep_samples_per_s:,.0f}/s, fetch {fetch}, consumer {b.consumer_samples_per_s:,.0f}/s "
                      f"-> binds: [bold]{b.binding}[/bold]")
    if summary.transport:
        t = summary.transport
        handover = (f"1 worker at full speed {t.worker_s_per_batch * 1e3:.2f} ms (the handover adds "
                    f"{t.ipc_s_per_batch * 1e3:.2f} ms), " if t.worker_s_per_batch is not None else "")
        console.print(f"transport per batch ({t.batch_bytes:,} B, ready data): "
                      f"in-process {t.in_process_s_per_batch * 1e3:.2f} ms, "
                      f"{handover}wait per step behind the consumer {t.transport_s_per_batch * 1e3:.2f} ms")
