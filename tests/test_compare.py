"""compare: Welch's t-test and the significance rule, on real runs' metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from test_collect import base_run
from typer.testing import CliRunner

from feedtax.classroom import compare as cmp
from feedtax.cli.classroom import compare_cmd
from feedtax.results.schema import Results
from feedtax.stats import summarize


@pytest.mark.parametrize("t, df, p", [(2.228139, 10, 0.05), (2.0, 10, 0.07339), (12.7062, 1, 0.05), (1.959964, 1e7, 0.05),
                                      (0.0, 4, 1.0), (3.0, 2.5, 0.072576)])
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
    assert [r.metric for r in cmp.compare(b, real) if r.verdict == "only_b"] == [r.metric for r in rows if r.verdict == "only_a"]


def test_cli_prints_json_and_table(real, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(real.model_dump_json())
    faster = _with_decode(real, 1, np.linspace(1e5, 1.02e5, 7))
    faster.profile = "laptop"
    b.write_text(faster.model_dump_json())
    app = typer.Typer()
    app.command("compare")(compare_cmd)
    app.command("noop")(lambda: None)
    out = CliRunner().invoke(app, ["compare", str(a), str(b), "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert any("profile differs" in n for n in doc["context"])
    assert sum(r["verdict"] == "significant" for r in doc["rows"]) >= 1
    table = CliRunner().invoke(app, ["compare", str(a), str(b)])
    assert table.exit_code == 0 and "(better)" in table.output and "1 significant" in table.output
    assert f"formats[{real.formats[1].track}," in table.output
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    refused = CliRunner().invoke(app, ["compare", str(a), str(bad)])
    assert refused.exit_code == 2 and "bad.json" in refused.output
