"""The class report of a class of thousands: 1,000 generated submissions collected into a DuckDB, then
`feedtax class-report` rendered from it; prints the page's size (and each figure's) and the render time.

The submissions are the collect benchmark's (varied copies of one real run of every stage: 4 tracks x 5 formats, so
1,000 runs per decode group). The one check is the issue's goal: the page under 2 MB (figures inline as SVG).
Run: python -m pytest benchmarks/test_class_report_size.py --benchmark-only -s
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
from pathlib import Path

import pytest

from feedtax.vocabulary import FORMATS, TRACKS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import test_collect as corpus  # noqa: E402  (the tests' submission generator)

from feedtax.classroom import collect  # noqa: E402
from feedtax.reports import class_report  # noqa: E402

N_SUBMISSIONS = 1000
PAGE_GOAL_BYTES = 2_000_000  # the goal for a class of 1,000


@pytest.fixture(scope="module")
def class_db(tmp_path_factory) -> Path:
    base = json.loads(corpus.base_run(TRACKS, FORMATS))
    folder = tmp_path_factory.mktemp("class")
    for i in range(N_SUBMISSIONS):
        doc = corpus.variant(base, i, seed=1)
        (folder / f"{doc['run_id']}.json").write_text(json.dumps(doc))
    db = folder.parent / "class.duckdb"
    report = collect.collect([folder], db)
    assert report.ok and len(report.accepted) == N_SUBMISSIONS
    return db


def test_class_report_of_1000_submissions(benchmark, class_db, tmp_path):
    took: list[float] = []

    def render() -> Path:
        t0 = time.perf_counter()
        path = class_report.write(class_db, tmp_path)
        took.append(time.perf_counter() - t0)
        return path

    benchmark.group = "class-report"
    benchmark.extra_info["submissions"] = N_SUBMISSIONS
    path = benchmark.pedantic(render, rounds=3, iterations=1)
    page = path.read_text()
    size = path.stat().st_size
    figures = [m.end() - m.start() for m in re.finditer(r"<svg.*?</svg>", page, re.S)]
    benchmark.extra_info.update(page_bytes=size, figure_bytes=figures)
    print(f"\nclass report of {N_SUBMISSIONS} submissions: {size:,} bytes; render {statistics.median(took):.2f} s "
          f"(median of {len(took)}); figures (SVG bytes): " + ", ".join(f"{b:,}" for b in figures))
    assert len(figures) == 4, "every figure drawn"
    assert size < PAGE_GOAL_BYTES, f"the page is {size:,} bytes, over the goal of {PAGE_GOAL_BYTES:,}"
