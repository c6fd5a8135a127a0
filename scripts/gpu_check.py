#!/usr/bin/env python
"""The prepared GPU check: everything feedtax measures on a GPU, in one go, with one JSON summary on stdout.

On a machine with an NVIDIA GPU (well under 8 minutes):
  1. sweep: `feedtax sweep --model --device cuda --steps 200 --loader tuned` (edge track): the timed feeding tax
     per worker count beside NVML's utilization and idle share, and MFU against the GPU's peak from mlsysim's registry;
  2. known answer: an emulated accelerator fed by a loader of known cost; the measured feeding tax against the
     analytic one (docs/measurement.md), which must agree within 3 points;
  3. api: `feedtax.measure` on a user-style DataLoader feeding a small model's train_step on the GPU;
  4. ranks: 2 ranks under torchrun (nccl across 2 GPUs, else gloo with both ranks sharing one GPU), when
     feedtax.measure gathers ranks.
Without a GPU it says so, checks its own plumbing on the CPU with small sizes, and exits 0.
Exit status: 0 when every check ran and the known answer held, 1 otherwise.

    python scripts/gpu_check.py [--steps 200] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SWEEP_FIELDS = ("format", "num_workers", "feeding_tax", "au", "mfu", "samples_per_s", "ingestion_samples_per_s",
                "nvml_util_gpu_pct", "nvml_idle_fraction", "nvml_power_w", "device")


def gpu_facts() -> tuple[dict | None, str | None]:
    """(name, count, driver of the GPUs torch sees, None) or (None, why there is none)."""
    import torch

    if not torch.cuda.is_available():
        built = torch.version.cuda
        return None, ("torch sees no CUDA device" + ("" if built else " (this torch build has no CUDA)"))
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {"count": len(names), "names": names, "torch_cuda": torch.version.cuda}, None


def check_sweep(device: str, steps: int, workers: str) -> dict:
    """The model-consumer sweep through the CLI, as a user runs it; per worker count the timed and NVML figures."""
    cmd = [sys.executable, "-m", "feedtax", "sweep", "--model", "--device", device, "--steps", str(steps),
           "--workers", workers, "--loader", "tuned", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=420)
    if out.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd[1:])}` exited {out.returncode}: {out.stderr.strip()[-500:]}")
    doc = json.loads(out.stdout)
    rows = [{k: r.get(k) for k in SWEEP_FIELDS} for r in doc["loader"]]
    (summary,) = doc["feeding"]["summaries"]  # the tuned loader's: what NVML is held against
    return {"command": " ".join(["feedtax", *cmd[3:]]), "rows": rows,
            "flow_equilibrium": summary.get("flow_equilibrium"),
            "peak_flop_per_s": summary.get("peak_flop_per_s"), "peak_source": summary.get("peak_source"),
            "nvml_absent_reason": summary.get("nvml_absent_reason"),
            "max_gap_tax_vs_nvml_idle_pp": _max_gap(rows)}


def _max_gap(rows: list[dict]) -> float | None:
    """The largest |timed feeding tax - NVML idle share| in points, where NVML measured (a coarse duty cycle)."""
    gaps = [abs(r["feeding_tax"] - r["nvml_idle_fraction"]) * 100 for r in rows if r["nvml_idle_fraction"] is not None]
    return max(gaps) if gaps else None


def check_known_answer(load_s: float = 0.040, step_s: float = 0.040, batch: int = 4) -> dict:
    """No workers: each step waits for a batch of known cost L, then the emulated accelerator is busy S, so the
    feeding tax is (L + t) / (L + t + S), t being the wait for a ready batch (measured alongside)."""
    import torch
    from torch.utils.data import DataLoader, Dataset

    import feedtax

    class Sleepy(Dataset):
        def __init__(self, sample_s: float):
            self.sample_s = sample_s

        def __len__(self) -> int:
            return 100_000

        def __getitem__(self, i: int):
            if self.sample_s:
                time.sleep(self.sample_s)
            return torch.full((16,), float(i))

    ready = feedtax.measure(DataLoader(Sleepy(0.0), batch_size=batch), step_s, warmup_steps=4, steps=16)
    t = ready.wait_s / ready.steps
    r = feedtax.measure(DataLoader(Sleepy(load_s / batch), batch_size=batch), step_s, warmup_steps=2, steps=16)
    expected = (load_s + t) / (load_s + t + step_s)
    return {"load_s": load_s, "step_s": step_s, "measured_feeding_tax": r.feeding_tax, "analytic_feeding_tax": expected,
            "error_pp": (r.feeding_tax - expected) * 100, "ok": abs(r.feeding_tax - expected) < 0.03}


def check_api(device: str, steps: int) -> dict:
    """feedtax.measure on a DataLoader a student would write, feeding a small CNN's train_step on `device`."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    import feedtax

    images = torch.randint(0, 255, (4096, 3, 64, 64), dtype=torch.uint8)
    labels = torch.randint(0, 10, (4096,))
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(32, 10)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def train_step(batch):
        x, y = batch
        x, y = x.to(device, non_blocking=True).float() / 255, y.to(device, non_blocking=True)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    out = {}
    for workers in (0, 2):
        loader = DataLoader(TensorDataset(images, labels), batch_size=64, num_workers=workers, shuffle=True,
                            pin_memory=device.startswith("cuda"))
        r = feedtax.measure(loader, train_step, warmup_steps=5, steps=steps, device=device)
        nvml = r.nvml or {}
        out[f"{workers}_workers"] = {"feeding_tax": r.feeding_tax, "samples_per_s": r.samples_per_s,
                                     "nvml_idle_fraction": nvml.get("idle_fraction"),
                                     "nvml_reason": nvml.get("reason")}
    return out


RANK_SCRIPT = textwrap.dedent("""
    import datetime, json, sys
    import torch, torch.distributed as dist
    from torch.utils.data import DataLoader, Dataset, DistributedSampler
    import feedtax

    class Data(Dataset):
        def __len__(self):
            return 4096
        def __getitem__(self, i):
            return torch.full((256,), float(i))

    dist.init_process_group(sys.argv[1], timeout=datetime.timedelta(seconds=120))
    rank = dist.get_rank()
    device = f"cuda:{rank % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu"
    model = torch.nn.Linear(256, 256).to(device)
    def step(batch):
        model(batch.to(device)).sum().backward()
    loader = DataLoader(Data(), batch_size=32, sampler=DistributedSampler(Data()), num_workers=1)
    r = feedtax.measure(loader, step, warmup_steps=3, steps=int(sys.argv[2]), device=device)
    if rank == 0:
        print(json.dumps({"slowest_rank": getattr(r, "slowest_rank", None),
                          "ranks": [x.model_dump() for x in (getattr(r, "ranks", None) or [])]}))
    dist.destroy_process_group()
""")


def check_ranks(gpus: int, steps: int) -> dict:
    """2 ranks under torchrun, each feeding its own model; the per-rank figures gathered to rank 0."""
    import feedtax.bench.feeding as feeding

    if "ranks" not in feeding.FeedingResult.model_fields:
        return {"skipped": "this feedtax does not gather ranks yet"}
    backend = "nccl" if gpus >= 2 else "gloo"
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "ranks.py"
        script.write_text(RANK_SCRIPT)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
               "--master-port", str(29500 + os.getpid() % 1000), str(script), backend, str(steps)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    if out.returncode != 0:
        raise RuntimeError(f"torchrun exited {out.returncode}: {out.stderr.strip()[-500:]}")
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    return {"backend": backend, "shared_gpu": gpus == 1, **doc}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200, help="measured steps of the GPU sweep (default 200)")
    ap.add_argument("--quick", action="store_true", help="small sizes everywhere (the plumbing check)")
    args = ap.parse_args()
    if args.steps < 1:
        print("gpu_check: --steps must be >= 1", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    gpu, why = gpu_facts()
    quick = args.quick or gpu is None
    device = "cpu" if gpu is None else "cuda"
    summary: dict = {"gpu": gpu, "no_gpu": why, "mode": "plumbing on the CPU" if gpu is None else "GPU check",
                     "checks": {}, "errors": {}}
    if gpu is None:
        print(f"gpu_check: no GPU ({why}): checking the plumbing on the CPU with small sizes", file=sys.stderr)
    checks = {
        "sweep": lambda: check_sweep(device, 10 if quick else args.steps, "0,1" if quick else "0,1,2,4"),
        "known_answer": check_known_answer,
        "api": lambda: check_api(device, 10 if quick else 100),
        "ranks": lambda: check_ranks(gpu["count"] if gpu else 0, 10 if quick else 100),
    }
    for name, run in checks.items():
        print(f"gpu_check: {name} ...", file=sys.stderr)
        try:
            summary["checks"][name] = run()
        except Exception as exc:  # one check failing must not hide the others' figures
            summary["errors"][name] = f"{type(exc).__name__}: {exc}"
    summary["elapsed_s"] = time.perf_counter() - t0
    known = summary["checks"].get("known_answer", {})
    summary["ok"] = not summary["errors"] and bool(known.get("ok"))
    print(json.dumps(summary, indent=2, default=str))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
