"""reports.answers: the opening answers, each from the run's own numbers, each linked to evidence that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from feedtax import results
from feedtax.reports import answers, html
from feedtax.reports.common import human, ratio

V2 = Path(__file__).parent / "data" / "results-v2.json"


@pytest.fixture()
def run() -> results.Results:
    return results.load(V2)


def test_every_question_is_answered_and_its_evidence_is_in_the_report(run):
    found = answers.answers(run)
    assert [a.evidence for a in found] == ["feeding", "missions", "gravity", "formats", "selection"]
    page = html.render(run)
    for a in found:
        assert a.lines and f"id='{a.evidence}'" in page, a.evidence
    assert page.index("The answers") < page.index("1. Format costs")


def test_the_format_answer_is_the_best_measured_point(run):
    line, unswept = answers.answers(run)[0].lines
    assert unswept.startswith("Not swept in this run: cloud, mobile, tiny (the ci profile sweeps edge")
    fmt, workers = re.match(r"edge: (\w+) at (\d+) workers?", line).groups()
    rows = run.tuned_rows()
    top = max(r.au for r in rows)
    chosen = next(r for r in rows if r.format == fmt and r.num_workers == int(workers))
    assert chosen.au >= top - 0.01 and f"AU {chosen.au:.0%}" in line  # within 1 pp of the best AU ...
    assert not any(r.au >= top - 0.01 and r.num_workers < chosen.num_workers for r in rows)  # ... on fewest workers
    assert "default torch DataLoader" not in line  # a schema 2 file swept feedtax's loader only


def test_a_crossover_beyond_half_the_earth_is_said_in_words(run):
    for t in run.gravity.tiers:
        t.crossover_km = 142_635.0
    lines = answers.answers(run)[2].lines
    assert any("at any distance on Earth" in line for line in lines) and not any("142,635" in x for x in lines)


def test_json_or_ssd_follows_which_rate_binds(run):
    assert all("switch formats" in line for line in answers.answers(run)[3].lines)  # a fast disk: decode binds
    run.disk.seq_read_mb_per_s_first = 0.001  # a disk slower than any decode
    assert all("a faster SSD helps" in line and "not measured" in line for line in answers.answers(run)[3].lines)


@pytest.mark.parametrize("seconds, text", [(5.0, "5 s"), (0.35, "0.35 s"), (0.004, "4 ms"), (119.0, "119 s"),
                                           (150.0, "2.5 min"), (7200.0, "2.0 h"),
                                           (36_000.0, "10 h"), (846_720.0, "9.8 days")])
def test_durations_read_for_people(seconds, text):
    assert answers.duration(seconds) == text


def test_ratios_read_for_people():
    assert ratio(1.2249) == "1.22x" and ratio(34.16) == "34.2x"
    assert ratio(1969555.0) == "> 1000x"


@pytest.mark.parametrize("value, unit, text", [(7.06e10, "byte", "70.6 GB"), (6e-4, "s", "600 µs"),
                                               (6.23e-06, "cores", "0.00000623 cores"), (1969555.58, "", "1,969,556"),
                                               (1234.5, "MB/s", "1,234 MB/s"), (0.0, "W", "0 W")])
def test_numbers_read_for_people(value, unit, text):
    assert human(value, unit) == text


def test_each_mission_says_its_verdict_and_how_far_the_binding_check_is(run):
    lines = answers.answers(run)[1].lines
    assert len(lines) == len(run.projections)
    for line, p in zip(lines, run.projections.values(), strict=True):
        binding = next(c for c in p.checks if c.name == p.binding_constraint)
        said = f"headroom {ratio(binding.headroom)}" if binding.ok else f"missed by {ratio(1 / binding.headroom)}"
        assert f": {p.verdict}; binding: {p.binding_constraint} ({said})" in line
