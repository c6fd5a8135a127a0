"""Collecting a class: 1,000 generated submissions into a fresh DuckDB, then the same files again (unchanged: known
by their bytes), each also in a process of its own for its peak RSS (`feedtax collect` as an instructor runs it).

Each submission is a varied copy of one real run of every stage measured here at full breadth
(4 tracks x 5 formats, probes, a small loader sweep, projections: ~130 kB, a ci results.json's size).
Run: python -m pytest benchmarks/test_collect_speed.py --benchmark-only -s
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from feedtax.vocabulary import FORMATS, TRACKS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import test_collect as corpus  # noqa: E402  (the tests' submission generator)

from feedtax.classroom import collect  # noqa: E402

N_SUBMISSIONS = 1000


@pytest.fixture(scope="module")
def submissions(tmp_path_factory) -> Path:
    base = json.loads(corpus.base_run(TRACKS, FORMATS))
    folder = tmp_path_factory.mktemp("class")
    for i in range(N_SUBMISSIONS):
        doc = corpus.variant(base, i, seed=1)
        (folder / f"{doc['run_id']}.json").write_text(json.dumps(doc, indent=2))
    return folder


def test_collect_1000_submissions(benchmark, submissions, tmp_path):
    dbs = iter(range(10**6))

    def fresh_db():
        return (submissions, tmp_path / f"class{next(dbs)}.duckdb"), {}

    benchmark.group = "collect"
    benchmark.extra_info["submissions"] = N_SUBMISSIONS
    benchmark.extra_info["bytes"] = sum(p.stat().st_size for p in submissions.iterdir())
    report = benchmark.pedantic(lambda folder, db: collect.collect([folder], db), setup=fresh_db, rounds=2,
                                iterations=1)
    assert len(report.accepted) == N_SUBMISSIONS and report.ok
    assert report.table_rows["formats"] == 20 * N_SUBMISSIONS


def test_recollect_1000_unchanged_submissions(benchmark, submissions, tmp_path):
    db = tmp_path / "class.duckdb"
    assert collect.collect([submissions], db).ok
    benchmark.group = "collect"
    benchmark.extra_info["submissions"] = N_SUBMISSIONS
    report = benchmark.pedantic(lambda: collect.collect([submissions], db), rounds=3, iterations=1)
    assert not report.accepted and len(report.duplicates) == N_SUBMISSIONS and report.ok


PEAK = """
import json, resource, sys, time
from feedtax.classroom import collect
t0 = time.perf_counter()
report = collect.collect([sys.argv[1]], sys.argv[2])
print(json.dumps({"accepted": len(report.accepted), "duplicates": len(report.duplicates), "ok": report.ok,
                  "elapsed_s": time.perf_counter() - t0,
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def test_collect_peak_rss(submissions, tmp_path):
    """Peak RSS of a collect process (interpreter and imports included), first and again: printed, kept as JSON."""
    db = tmp_path / "class.duckdb"
    runs = {}
    for name in ("first", "again"):
        done = subprocess.run([sys.executable, "-c", PEAK, str(submissions), str(db)], capture_output=True, text=True,
                              check=True)
        runs[name] = json.loads(done.stdout)
        print(f"collect {N_SUBMISSIONS} submissions, {name}: {runs[name]['elapsed_s']:.2f} s, peak RSS "
              f"{runs[name]['peak_rss_bytes'] / 1e6:.0f} MB")
    assert runs["first"]["accepted"] == N_SUBMISSIONS and runs["again"]["duplicates"] == N_SUBMISSIONS
