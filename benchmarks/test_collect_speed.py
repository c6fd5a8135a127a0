"""Collecting a class: 1,000 generated submissions into a fresh DuckDB (target: under 60 s on 2 cores).

Each submission is a varied copy of one real run of every stage measured here at full breadth
(4 tracks x 5 formats, probes, a small loader sweep, projections: ~130 kB, a ci results.json's size).
Run: python -m pytest benchmarks/test_collect_speed.py --benchmark-only
"""

from __future__ import annotations

import json
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
