"""feedtax beside MLPerf Storage's engine (DLIO) and a plain torch script, on one configuration, alternately.

The same N samples of K KiB (DLIO's npz files, one sample per file, page-cached after generation), batch B, per
point R reader workers and an emulated compute of C per batch, E epochs:

- DLIO: `dlio_benchmark` on that workload; its train AU (summary.json, mean over epochs);
- plain torch: a Dataset loading one npz file per sample, DataLoader(batch_size=B, num_workers=R,
  prefetch_factor=2), a loop sleeping C per batch, AU by DLIO's rule from the loop's own clock;
- feedtax.measure on that same DataLoader: its AU and its MLPerf AU;
- feedtax's sweep, default and tuned loaders, over feedtax raw shards of samples of the same size.

Each process runs alone; rounds alternate the four. Not part of CI. Setup and reading: docs/dlio.md.
Run: python scripts/dlio_compare.py --dlio /path/to/dlio-venv/bin/dlio_benchmark
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKLOAD = """model: feedtax_compare
framework: pytorch
workflow: {{generate_data: {generate}, train: {train}, evaluation: False, checkpoint: False}}
dataset:
  data_folder: {data}
  format: npz
  num_files_train: {samples}
  num_files_eval: 0
  num_samples_per_file: 1
  record_length: {record_bytes}
  num_subfolders_train: 0
reader:
  data_loader: pytorch
  batch_size: {batch}
  read_threads: {workers}
  prefetch_size: 2
  file_shuffle: "off"
  sample_shuffle: "off"
train:
  epochs: {epochs}
  computation_time: {compute_s}
output:
  folder: {out}
"""


def dlio(exe: str, work: Path, args, workers: int, compute_s: float, generate: bool = False) -> float | None:
    """DLIO's mean train AU over the epochs (a fraction), or None when only generating."""
    out = Path(tempfile.mkdtemp(dir=work, prefix="dlio-out-"))
    conf = work / "conf" / "workload"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "feedtax_compare.yaml").write_text(WORKLOAD.format(
        generate=generate, train=not generate, data=work / "data", samples=args.samples,
        record_bytes=args.record_kib * 1024, batch=args.batch, workers=workers, epochs=args.epochs,
        compute_s=compute_s, out=out))
    cmd = [exe, "--config-dir", str(work / "conf"), "workload=feedtax_compare"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
    if done.returncode != 0:
        raise SystemExit(f"dlio_compare: {' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()[-800:]}")
    if generate:
        return None
    summary = json.loads((out / "summary.json").read_text())
    return summary["metric"]["train_au_mean_percentage"] / 100.0


def plain(data: Path, batch: int, workers: int, compute_s: float, epochs: int) -> dict:
    """The plain script's AU by DLIO's rule (first step of each epoch out), then feedtax.measure on its loader."""
    import numpy as np
    import torch
    from torch.utils.data import DataLoader, Dataset

    import feedtax

    class Files(Dataset):
        def __init__(self):
            self.paths = sorted(data.rglob("*.npz"))

        def __len__(self):
            return len(self.paths)

        def __getitem__(self, i):
            with np.load(self.paths[i]) as f:
                return torch.from_numpy(f["x"])

    def loader():
        return DataLoader(Files(), batch_size=batch, num_workers=workers,
                          prefetch_factor=2 if workers else None)

    compute, wall = 0.0, 0.0
    dl = loader()
    for _ in range(epochs):
        first, t_prev = True, time.perf_counter()
        for _batch in dl:
            t0 = time.perf_counter()
            time.sleep(compute_s)
            t1 = time.perf_counter()
            if not first:
                compute, wall = compute + (t1 - t0), wall + (t1 - t_prev)
            first, t_prev = False, t1
    steps = len(dl) * epochs - 2 * epochs
    r = feedtax.measure(loader(), lambda b: time.sleep(compute_s), warmup_steps=epochs, steps=steps)
    return {"plain": compute / wall, "measure": r.au, "measure_mlperf": r.mlperf_au}


def sweep(samples: int, record_kib: int, batch: int, workers: int, compute_s: float, steps: int) -> dict:
    """feedtax's default and tuned loaders over raw shards of samples of record_kib KiB (no transform)."""
    import numpy as np

    from feedtax import formats
    from feedtax.bench.loadergap import sweep_loaders
    from feedtax.results.feeding import ConsumerSpec

    side = int((record_kib * 1024 / 3) ** 0.5)
    rng = np.random.default_rng(0)
    rows = [{"frame": rng.integers(0, 256, (side, side, 3), dtype=np.uint8), "label": np.array(i % 10, dtype=np.int64)}
            for i in range(samples)]
    with tempfile.TemporaryDirectory() as tmp:
        shards = {"raw": formats.get("raw").write(rows, Path(tmp), samples_per_shard=max(1, samples // 8))}
        got, _, _ = sweep_loaders("edge", ["raw"], shards, [workers], batch_size=batch,
                                  consumer=ConsumerSpec(step_s=compute_s), steps=steps, transform=False,
                                  breakdown=False)
    return {f"feedtax_{r.loader}": r.au for r in got}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dlio", required=True, help="the dlio_benchmark executable of DLIO's own venv")
    ap.add_argument("--samples", type=int, default=1024)
    ap.add_argument("--record-kib", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--points", default="0:10,1:10,2:10,0:50,1:50", help="workers:compute_ms, comma-separated")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; the median is printed")
    ap.add_argument("--work", type=Path, default=None, help="where DLIO's data and outputs go (default: a temp dir)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:  # one measurement in its own process: plain|sweep:workers:compute_s:data
        kind, workers, compute_s, data = args.child.split(":", 3)
        if kind == "plain":
            out = plain(Path(data), args.batch, int(workers), float(compute_s), args.epochs)
        else:
            steps = args.samples // args.batch * args.epochs - 2 * args.epochs
            out = sweep(args.samples, args.record_kib, args.batch, int(workers), float(compute_s), steps)
        print(json.dumps(out))
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="dlio-compare-"))
    work.mkdir(parents=True, exist_ok=True)
    dlio(args.dlio, work, args, 1, 0.0, generate=True)
    points = [(int(w), float(c) / 1000) for w, c in (p.split(":") for p in args.points.split(","))]
    table: dict[tuple, dict[str, list[float]]] = {p: {} for p in points}

    def child(spec: str) -> dict:
        cmd = [sys.executable, __file__, "--dlio", args.dlio, "--samples", str(args.samples), "--record-kib",
               str(args.record_kib), "--batch", str(args.batch), "--epochs", str(args.epochs), "--child", spec]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"dlio_compare: {spec} failed: {done.stderr.strip()[-800:]}")
        return json.loads(done.stdout)

    for _ in range(args.rounds):
        for w, c in points:
            got = {"dlio": dlio(args.dlio, work, args, w, c)}
            got |= child(f"plain:{w}:{c}:{work / 'data'}") | child(f"sweep:{w}:{c}:-")
            for k, v in got.items():
                table[w, c].setdefault(k, []).append(v)
            print(f"round done: {w} workers, {c * 1e3:g} ms: " + ", ".join(f"{k} {v:.2f}" for k, v in got.items()),
                  file=sys.stderr, flush=True)
    cols = ["dlio", "plain", "measure", "measure_mlperf", "feedtax_default", "feedtax_tuned"]
    print("| workers R | compute C | DLIO AU | plain torch AU | feedtax.measure on it (AU / MLPerf AU) | "
          "`feedtax sweep` default AU | `feedtax sweep` tuned AU |")
    print("|---|---|---|---|---|---|---|")
    for (w, c), got in table.items():
        med = {k: statistics.median(got[k]) for k in cols if k in got}
        print(f"| {w} | {c * 1e3:g} ms | {med['dlio']:.2f} | {med['plain']:.2f} | {med['measure']:.2f} / "
              f"{med['measure_mlperf']:.2f} | {med['feedtax_default']:.2f} | {med['feedtax_tuned']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
