"""compare: Welch's t-test and the significance rule, on real runs' metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import typer
from test_collect import base_run
from typer.testing import CliRunner

from feedtax import results
from feedtax.classroom import compare as cmp
from feedtax.cli.classroom import compare_cmd
from feedtax.results.metrics import metric_fields
from feedtax.results.schema import Results
from feedtax.stats import summarize


@pytest.mark.parametrize("t, df, p", [(2.228139, 10, 0.05), (2.0, 10, 0.07339), (12.7062, 1, 0.05),
                                      (1.959964, 1e7, 0.05), (0.0, 4, 1.0), (3.0, 2.5, 0.072576)])
def test_student_t_two_sided_p_matches_tables(t, df, p):
    assert cmp.t_two_sided_p(t, df) == pytest.approx(p, rel=2e-3)


def test_welch_matches_the_textbook_formula():
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 1, 8), rng.normal(11, 3, 5)
    t, df, p = cmp.welch(a.mean(), a.std(ddof=1), 8, b.mean(), b.std(ddof=1), 5)
    va, vb = a.var(ddof=1) / 8, b.var(ddof=1) / 5
    assert t == pytest.approx((b.mean() - a.mean()) / np.sqrt(va + vb))
    assert df == pytest.approx((va + vb) ** 2 / (va**2 / 7 + vb**2 / 4))
    assert 0 < p < 1
    assert cmp.welch(1, 0, 5, 2, 0, 5) is None and cmp.welch(1, 1, 1, 2, 1, 5) is None


def _with_decode(res: Results, i: int, values) -> Results:
    r = res.model_copy(deep=True)
    r.formats[i].decode_samples_per_s_cold = summarize(values, "samples/s")
    return r


@pytest.fixture(scope="module")
def real() -> Results:
    return Results.model_validate_json(base_run())


def test_verdicts_follow_the_rule(real):
    rng = np.random.default_rng(0)
    base = rng.normal(1000, 20, 10)
    a = _with_decode(real, 0, base)
    clear = _with_decode(real, 0, base * 1.2)  # +20%, spread 2%: significant
    tiny = _with_decode(real, 0, base * 1.005 + rng.normal(0, 0.01, 10))  # +0.5%: below the 1% rule
    noisy = _with_decode(real, 0, rng.normal(1030, 300, 10))  # +3% under 30% spread: noise
    metric = f"formats[{real.formats[0].track}, {real.formats[0].format}].decode_samples_per_s_cold"

    def verdict(b):
        return next(r for r in cmp.compare(a, b) if r.metric == metric)

    assert verdict(clear).verdict == "significant" and verdict(clear).direction == "better"
    assert verdict(clear).change_pct == pytest.approx(20, rel=0.05) and verdict(clear).p_value < 1e-6
    assert verdict(tiny).verdict == "noise"
    assert verdict(noisy).verdict == "noise" and verdict(noisy).p_value > 0.05
    assert _with_decode(real, 0, base * 0.7) and verdict(_with_decode(real, 0, base * 0.7)).direction == "worse"


def test_same_run_is_all_noise_or_unchanged(real):
    rows = cmp.compare(real, real)
    assert rows and all(r.verdict in ("noise", "no_spread") for r in rows)
    assert all(r.direction is None and r.change_pct == 0 for r in rows if r.a)
    names = {r.field for r in rows}
    assert {"decode_samples_per_s_cold", "encode_samples_per_s", "bytes_per_sample", "seq_read_mb_per_s_cold"} <= names


def test_metrics_in_one_run_only(real):
    b = real.model_copy(deep=True)
    dropped = b.formats.pop()
    b.disk = None
    rows = cmp.compare(real, b)
    only_a = {r.metric for r in rows if r.verdict == "only_a"}
    assert f"formats[{dropped.track}, {dropped.format}].decode_samples_per_s_warm" in only_a
    assert "disk.seq_write_mb_per_s" in only_a
    only_b = [r.metric for r in cmp.compare(b, real) if r.verdict == "only_b"]
    assert only_b == [r.metric for r in rows if r.verdict == "only_a"]


def test_cli_prints_json_and_table(real, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(real.model_dump_json())
    faster = _with_decode(real, 1, np.linspace(1e5, 1.02e5, 7))
    faster.profile = "laptop"
    b.write_text(faster.model_dump_json())
    app = typer.Typer()
    app.command("compare")(compare_cmd)
    app.command("noop")(lambda: None)
    refused = CliRunner().invoke(app, ["compare", str(a), str(b)])
    assert refused.exit_code == 2 and "profile differs: ci vs laptop" in refused.output and "--force" in refused.output
    same = CliRunner().invoke(app, ["compare", str(a), str(a)])
    assert same.exit_code == 0 and "nothing to compare" in same.output
    out = CliRunner().invoke(app, ["compare", str(a), str(b), "--json", "--force"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert any("profile differs" in n for n in doc["context"])
    assert sum(r["verdict"] == "significant" for r in doc["rows"]) >= 1
    table = CliRunner().invoke(app, ["compare", str(a), str(b), "--force"])
    assert table.exit_code == 0 and "(better)" in table.output and "1 significant" in table.output
    assert f"formats[{real.formats[1].track}," in table.output
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    refused = CliRunner().invoke(app, ["compare", str(a), str(bad)])
    assert refused.exit_code == 2 and "bad.json" in refused.output


# the unit a field's name ends in says which way is better; the declarations must agree with it
UNIT_RULES: list[tuple[str, str | None]] = [
    (r"(_per_s(_|$)|iops)", "higher"),  # throughputs
    (r"(_s|_s_per_batch|_s_per_byte)$", "lower"),  # durations, and costs per batch or per byte
    (r"(^|_)feeding_tax$", "lower"),
    (r"((^|_)au|^mfu|^accelerator_utilization|^accuracy)$", "higher"),  # AU by any definition, of any loader
    (r"(^|_)(wait|idle)_fraction$", "lower"),
    (r"_pct$", "higher"),  # NVML utilization
    (r"(^|_)bytes_per_(sample|frame)$", "lower"),
    (r"compression_ratio$", "higher"),
    (r"(^|_)ratio$", "higher"),  # loader / decode
    (r"_j$", "lower"),
    (r"_w$", "lower"),
]
# declared without a better side although their unit has one: settings, and what a mission needs
NO_SIDE = {"min_time_s": "a setting", "format_budget_s": "a setting", "demand_mb_per_s": "a requirement",
           "bandwidth_bytes_per_s": "a storage tier's rated bandwidth: a setting of the emulation",
           "latency_s": "a storage tier's rated latency per request: a setting of the emulation"}
THROUGHPUT, DURATION = re.compile(UNIT_RULES[0][0]), re.compile(UNIT_RULES[1][0])


def _unit_rule(name: str) -> str | None:
    return next((better for pattern, better in UNIT_RULES if re.search(pattern, name)), None)


def test_every_metric_gets_the_direction_of_its_unit():
    fields = [(path, name, m) for path, name, m in metric_fields() if m is not None]
    assert len(fields) > 100
    for path, name, metric in fields:
        expected = None if name in NO_SIDE else _unit_rule(name)
        assert metric.better == expected, f"{path}: declared {metric.better}, its unit says {expected}"
        if cmp.compared(name) is None:
            assert expected is None and metric.unit != "pp", f"{path}: has a better side but is not compared"
            continue
        rose = cmp._row("m", "s", "k", name, 100.0, 335.0)  # +235%
        fell = cmp._row("m", "s", "k", f"nested.{name}", 100.0, 50.0)
        if expected is None:
            assert rose.direction == fell.direction == "changed", path
        else:
            up, down = ("better", "worse") if expected == "higher" else ("worse", "better")
            assert (rose.direction, fell.direction) == (up, down), path


def test_a_throughput_that_rose_is_better_not_worse():
    """`_s$` once matched `_per_s` too: a loader rate up 235% was reported as significant (worse)."""
    row = cmp._row("loader[edge, raw].samples_per_s", "loader", "edge, raw", "samples_per_s", 1000.0, 3350.0)
    assert row.change_pct == pytest.approx(235) and row.direction == "better"
    assert cmp._row("m", "s", "k", "wait_s", 1.0, 3.35).direction == "worse"


def _doubled(obj: dict) -> None:
    """Every throughput of a model dump times two, in place: numbers, and a distribution's centre and range with its
    spread kept (a machine twice as fast with the same jitter), so each change is beyond the noise."""
    stack = [obj]
    while stack:
        node = stack.pop()
        for k, v in list(node.items()) if isinstance(node, dict) else list(enumerate(node)):
            rate = isinstance(k, str) and THROUGHPUT.search(k) is not None
            if rate and isinstance(v, (int, float)) and not isinstance(v, bool):
                node[k] = v * 2
            elif rate and isinstance(v, dict) and "median" in v:
                for stat in ("median", "q1", "q3", "mean", "min", "max"):
                    v[stat] *= 2
            elif isinstance(v, (dict, list)):
                stack.append(v)


def test_every_throughput_doubled_is_better_and_every_duration_unchanged():
    a = results.load(Path(__file__).parent / "data" / "results-v1.json")
    dump = a.model_dump()
    _doubled(dump)
    b = Results.model_validate(dump)
    rows = cmp.compare(a, b)
    names = [(r, r.field.rsplit(".", 1)[-1]) for r in rows]
    rates = [r for r, name in names if THROUGHPUT.search(name)]
    durations = [r for r, name in names if DURATION.search(name) and not THROUGHPUT.search(name)]
    assert len(rates) > 50 and len(durations) > 20
    assert {r.section for r in rates} >= {"disk", "memory", "formats", "transforms", "loader"}
    for r in rates:
        assert r.change_pct == pytest.approx(100) and r.direction == "better", r.metric
        assert r.verdict in ("significant", "no_spread"), r.metric
    for r in durations:
        assert r.change_pct == 0 and r.direction is None and r.verdict in ("noise", "no_spread"), r.metric


def test_a_change_to_or_from_a_number_that_is_not_finite_is_never_noise():
    """results.load refuses NaN and Infinity; compare itself still never calls such a change noise, nor tests it."""
    spread = {"median": 100.0, "mean": 100.0, "stdev": 1.0, "n": 5}
    for bad in (float("nan"), float("inf"), -float("inf")):
        odd = {"median": bad, "mean": bad, "stdev": 1.0, "n": 5}
        for a, b in ((spread, odd), (odd, spread)):
            row = cmp._row("m", "s", "k", "decode_samples_per_s_cold", a, b)
            assert row.verdict == "no_spread" and row.p_value is None and row.change_pct is None, (a, b)
            assert row.direction is None and "not a finite number" in row.note
        assert cmp._row("m", "s", "k", "bytes_per_sample", 100.0, bad).verdict == "no_spread"
        assert cmp.welch(100.0, 1.0, 5, bad, 1.0, 5) is None and cmp.welch(100.0, bad, 5, 100.0, 1.0, 5) is None
