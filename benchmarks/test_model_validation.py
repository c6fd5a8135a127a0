"""The pipeline model against this machine: a laptop-profile run (`feedtax run --profile laptop`, about 7 minutes on 2
cores), then per sweep point the feeding tax mlsysim predicts from the measured stage rates beside the one measured,
and the error in points, printed. The goal: every point within VALIDATION_LIMIT_PP (10 points), including more workers
than cores.

Run: python -m pytest benchmarks/test_model_validation.py -s
(FEEDTAX_RESULTS=path/to/results.json re-projects a saved run instead of measuring one.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from feedtax import results
from feedtax.model.project import project_results
from feedtax.vocabulary import VALIDATION_LIMIT_PP


def test_every_sweep_point_of_a_laptop_run_is_predicted_within_the_limit(tmp_path):
    path = os.environ.get("FEEDTAX_RESULTS")
    if path is None:
        out = tmp_path / "run"
        subprocess.run([sys.executable, "-m", "feedtax", "run", "--profile", "laptop", "--out", str(out)], check=True,
                       stdout=subprocess.DEVNULL)
        path = out / "results.json"
    res = results.load(Path(path))
    project_results(res)  # this feedtax's model on the run's measurements
    rows = res.model_validation
    print(f"\n{path}: {res.profile} profile, {res.host.cpu_affinity_cores} CPUs")
    print(f"{'track':6} {'format':9} {'workers':>7} {'predicted':>9} {'measured':>9} {'error pp':>8}  reason")
    for v in rows:
        print(f"{v.track:6} {v.format:9} {v.num_workers:7d} {v.predicted_feeding_tax:9.3f} "
              f"{v.measured_feeding_tax:9.3f} {v.error_pp:+8.1f}  {v.likely_reason or ''}")
    worst = max(rows, key=lambda v: abs(v.error_pp))
    print(f"worst: {worst.track} {worst.format} at {worst.num_workers} workers, {worst.error_pp:+.1f} pp")
    assert rows and abs(worst.error_pp) <= VALIDATION_LIMIT_PP
