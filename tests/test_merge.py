"""Merging runs (feedtax.classroom.merge, `feedtax run --repeat N`): known runs in, known distributions out; runs
that are not like with like refused; a merge read back, compared and gated as any results file."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedtax import results
from feedtax.classroom import compare, gate
from feedtax.classroom.merge import MergeError, merge
from feedtax.results.schema import Results
from feedtax.stats import summarize

STORED = Path(__file__).parent / "data" / "results-v5.json"
COLD = "formats[cloud, csv].decode_samples_per_s_cold"
ROW = "loader[edge, csv, loader=default, num_workers=0, batch_size=16].samples_per_s"


@pytest.fixture(scope="module")
def stored() -> Results:
    return results.load(STORED)


def runs_of(stored: Results, medians: list[float], *, scale: dict[int, float] | None = None) -> list[Results]:
    """Runs of the stored one: formats[0]'s cold decode rate with the given medians (each a tight distribution of 5
    repeats), loader[0]'s samples_per_s 100 x that median, and each run's every format's cold rate times scale[i]."""
    out = []
    for i, m in enumerate(medians):
        r = stored.model_copy(deep=True)
        r.run_id = f"{stored.run_id}-{i}"
        r.formats[0].decode_samples_per_s_cold = summarize([m * 0.99, m * 0.995, m, m * 1.005, m * 1.01], "samples/s")
        r.loader[0].samples_per_s = 100.0 * m
        for f in r.formats[1:] if scale else ():
            f.decode_samples_per_s_cold = summarize([x * scale[i] for x in (990, 995, 1000, 1005, 1010)], "samples/s")
        out.append(r)
    return out


def test_three_runs_merge_to_the_median_of_their_medians(stored):
    merged = merge(runs_of(stored, [10.0, 12.0, 11.0]))
    d = merged.formats[0].decode_samples_per_s_cold
    assert (d.median, d.n, d.min, d.max, d.mean, d.unit) == (11.0, 3, 10.0, 12.0, 11.0, "samples/s")
    assert d.stdev == pytest.approx(1.0) and d.q1 == 10.5 and d.q3 == 11.5 and d.iqr == 1.0
    assert merged.loader[0].samples_per_s == 1100.0  # a single value: the runs' median ...
    spread = merged.merged.spreads[ROW]  # ... and its spread over them, which compare tests
    assert (spread.median, spread.n, spread.min, spread.max) == (1100.0, 3, 1000.0, 1200.0)
    assert merged.merged.runs == 3 and merged.merged.run_ids == [f"{stored.run_id}-{i}" for i in range(3)]
    assert merged.run_id not in merged.merged.run_ids
    row = {m: v for m, (_, _, _, v) in compare.metrics(merged).items()}[ROW]
    assert isinstance(row, dict) and row["n"] == 3 and row["median"] == 1100.0


def test_an_even_number_of_runs_and_what_is_not_compared(stored):
    runs = runs_of(stored, [10.0, 14.0])
    runs[1].formats[0].n_shards = 1  # a count: not a metric, kept from the first run
    merged = merge(runs)
    assert merged.formats[0].decode_samples_per_s_cold.median == 12.0 and merged.formats[0].n_shards == 2
    assert merged.host == runs[0].host and merged.config == runs[0].config and merged.stages == runs[0].stages


def test_derived_fields_and_intervals_stay_consistent(stored, tmp_path):
    runs = runs_of(stored, [10.0, 11.0, 12.0])
    for r, (au, lo, hi) in zip(runs, [(0.5, 0.48, 0.52), (0.6, 0.57, 0.62), (0.4, 0.39, 0.45)], strict=True):
        row = r.loader[0]
        row.au, row.feeding_tax, row.au_ci95, row.feeding_tax_ci95 = au, 1 - au, (lo, hi), (1 - hi, 1 - lo)
    merged = merge(runs)
    row = merged.loader[0]
    assert row.au == 0.5 and row.feeding_tax == 0.5  # feeding_tax = 1 - au, as every row
    assert row.au_ci95 == (0.39, 0.62) and row.feeding_tax_ci95 == pytest.approx((0.38, 0.61))  # the runs' union
    results.save(merged, tmp_path / "merged.json")
    assert results.load(tmp_path / "merged.json") == merged  # a valid results file, derived fields and all
    from feedtax.reports import html

    page = html.write(merged, tmp_path / "report.html").read_text()
    assert "A merge of 3 runs of this profile" in page  # and the report says what it shows


def _other_profile(r: Results) -> None:
    r.profile = "laptop"


def _other_cores(r: Results) -> None:
    r.host.cpu_logical_cores = r.host.cpu_affinity_cores = 8
    r.host.cpu_physical_cores = None


def _interrupted(r: Results) -> None:
    r.status = "interrupted"


def _same_run(r: Results) -> None:
    r.run_id = r.run_id[:-2] + "-0"


@pytest.mark.parametrize("change, said", [
    (_other_profile, "profile differs: ci vs laptop"), (_other_cores, "host usable cores differs: 2 vs 8"),
    (_interrupted, "is interrupted, not complete"), (_same_run, "a run is given twice"),
])
def test_runs_that_are_not_repeats_of_one_measurement_are_refused(stored, change, said):
    runs = runs_of(stored, [10.0, 11.0, 12.0])
    change(runs[2])
    with pytest.raises(MergeError, match=said):
        merge(runs)


def test_a_merge_is_not_merged_again(stored):
    merged = merge(runs_of(stored, [10.0, 11.0]))
    with pytest.raises(MergeError, match="already merges 2 runs"):
        merge([merged, stored])
    with pytest.raises(MergeError, match="no runs"):
        merge([])


def test_the_gate_tests_merges_against_the_spread_between_runs(stored):
    """Runs that wander by +-5% between them: a merge of three against another passes at 10%; a 25% slower one
    fails; a merge against one run is not like with like."""
    wobble = [1.0, 1.05, 0.95]
    a = merge(runs_of(stored, [10.0, 11.0, 12.0], scale=dict(enumerate(wobble))))
    same = merge(runs_of(stored, [11.0, 10.5, 11.5], scale=dict(enumerate(reversed(wobble)))))
    slower = merge(runs_of(stored, [11.0, 10.5, 11.5], scale={i: w * 0.75 for i, w in enumerate(wobble)}))
    assert gate.gate(compare.compare(a, same), 10).passed
    failed = gate.gate(compare.compare(a, slower), 10)
    assert not failed.passed and {r.metric for r in failed.regressions} >= {
        f"formats[{f.track}, {f.format}].decode_samples_per_s_cold" for f in stored.formats[1:]}
    assert any("merged runs differs: a merge of 3 runs vs one run" in w for w in compare.unlike(a, stored, strict=True))
    assert not compare.unlike(a, same, strict=True) and not compare.unlike(a, stored)  # plain compare still takes it


def test_totals_over_however_long_a_run_measured_get_no_spread(stored):
    merged = merge(runs_of(stored, [10.0, 11.0, 12.0]))
    row = "loader[edge, csv, loader=default, num_workers=0, batch_size=16]"
    assert f"{row}.samples_per_s" in merged.merged.spreads and f"{row}.au" in merged.merged.spreads
    assert not {f"{row}.{t}" for t in ("wait_s", "compute_s", "wall_s")} & merged.merged.spreads.keys()
    assert "disk.elapsed_s" not in merged.merged.spreads


def test_rows_are_matched_by_their_keys_and_a_repeated_key_by_its_place(stored):
    runs = runs_of(stored, [10.0, 11.0, 12.0])
    runs[2].loader = [runs[2].loader[i] for i in (2, 0, 1, *range(3, len(runs[2].loader)))]  # another order
    assert merge(runs).loader[0].samples_per_s == 1100.0
    runs = runs_of(stored, [10.0, 11.0, 12.0])
    for r in runs:
        r.loader[1].num_workers = r.loader[0].num_workers  # two rows with one key
        r.loader[1].samples_per_s = 7.0 * r.loader[0].samples_per_s
    merged = merge(runs)
    assert merged.loader[0].samples_per_s == 1100.0 and merged.loader[1].samples_per_s == 7700.0
