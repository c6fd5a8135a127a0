"""The regression gate (feedtax.classroom.gate) and `feedtax compare --fail-on-regression`: exit codes 0, 1 and 2 on a
stored results file changed in a controlled way, the Markdown summary read back as a GFM table, and its escaping."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from feedtax import results
from feedtax.classroom import compare as cmp
from feedtax.classroom import gate
from feedtax.classroom.compare import CompareRow
from feedtax.results.schema import Results
from feedtax.stats import summarize

STORED = Path(__file__).parent / "data" / "results-v5.json"
# a decode rate's repeats with a tight spread (1%) and n = 7: a shift of 5% or more is significant
BASE = np.random.default_rng(0).normal(1000, 10, 7)


@pytest.fixture(scope="module")
def stored() -> Results:
    return results.load(STORED)


def _metric(run: Results, i: int) -> str:
    return f"formats[{run.formats[i].track}, {run.formats[i].format}].decode_samples_per_s_cold"


def _pair(tmp_path: Path, run: Results, factors: dict[int, float], change_b=None) -> tuple[Path, Path]:
    """A.json and B.json: the stored run with formats[i]'s cold decode rate set to BASE in A and BASE x factor in B
    (every other figure the same in both: noise or no spread); change_b(B) may change B further."""
    a, b = run.model_copy(deep=True), run.model_copy(deep=True)
    b.run_id = f"{run.run_id}-b"
    for i, factor in factors.items():
        a.formats[i].decode_samples_per_s_cold = summarize(BASE, "samples/s")
        b.formats[i].decode_samples_per_s_cold = summarize(BASE * factor, "samples/s")
    if change_b is not None:
        change_b(b)
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    pa.write_text(a.model_dump_json())
    pb.write_text(b.model_dump_json())
    return pa, pb


def _gate_json(ran) -> dict:
    return json.loads(ran.stdout)["gate"]


def _one_line_error(ran) -> str:
    assert ran.exit_code == 2 and ran.stdout == "" and ran.stderr.count("\n") == 1, ran.output
    assert ran.stderr.startswith("feedtax: ")
    return ran.stderr


# --- exit codes ------------------------------------------------------------------------------------------------

def test_a_significant_regression_beyond_the_threshold_fails(feedtax_cli, stored, tmp_path):
    a, b = _pair(tmp_path, stored, {0: 0.75})
    ran = feedtax_cli("compare", a, b, "--fail-on-regression", "10%")
    assert ran.exit_code == 1, ran.output
    assert "fail at 10%" in ran.stdout and _metric(stored, 0) in ran.stdout and "regression" in ran.stdout
    doc = feedtax_cli("compare", a, b, "--fail-on-regression", "10", "--json")
    assert doc.exit_code == 1
    result = _gate_json(doc)
    assert result["passed"] is False and result["threshold_pct"] == 10
    assert [r["metric"] for r in result["regressions"]] == [_metric(stored, 0)]
    assert result["regressions"][0]["verdict"] == "significant" and result["regressions"][0]["direction"] == "worse"


def test_a_significant_regression_within_the_threshold_passes(feedtax_cli, stored, tmp_path):
    a, b = _pair(tmp_path, stored, {0: 0.95})
    ran = feedtax_cli("compare", a, b, "--fail-on-regression", "10%", "--json")
    assert ran.exit_code == 0, ran.output
    result = _gate_json(ran)
    assert result["passed"] and not result["regressions"] and result["within_threshold"] == 1
    assert feedtax_cli("compare", a, b, "--fail-on-regression", "4%").exit_code == 1  # the same change past 4%


def test_improvements_alone_pass(feedtax_cli, stored, tmp_path):
    a, b = _pair(tmp_path, stored, {0: 1.3, 1: 1.5})
    ran = feedtax_cli("compare", a, b, "--fail-on-regression", "10%", "--json")
    assert ran.exit_code == 0, ran.output
    result = _gate_json(ran)
    assert result["passed"] and not result["regressions"]
    assert [r["metric"] for r in result["improvements"]] == [_metric(stored, 1), _metric(stored, 0)]  # largest first


def test_the_same_run_passes_and_says_so(feedtax_cli, tmp_path):
    ran = feedtax_cli("compare", STORED, STORED, "--fail-on-regression", "10%", "--markdown", tmp_path / "s.md")
    assert ran.exit_code == 0 and "pass at 10%" in ran.stdout, ran.output
    assert "pass at 10%" in (tmp_path / "s.md").read_text()


def _other_profile(b: Results) -> None:
    b.profile = "laptop"


def _other_cores(b: Results) -> None:
    b.host.cpu_logical_cores = b.host.cpu_affinity_cores = 64
    b.host.cpu_physical_cores = None


def _a_gpu(b: Results) -> None:
    b.host.gpus = [{"index": 0, "name": "NVIDIA H100 80GB HBM3"}]


def _fewer_tracks(b: Results) -> None:
    b.config.tracks = b.config.tracks[:-1]


def _interrupted(b: Results) -> None:
    b.status = "interrupted"


@pytest.mark.parametrize("change, named", [
    (_other_profile, "profile differs: ci vs laptop"), (_other_cores, "host usable cores differs: 2 vs 64"),
    (_a_gpu, "host accelerators differs: none vs NVIDIA H100 80GB HBM3"), (_fewer_tracks, "tracks differs:"),
    (_interrupted, "run B is interrupted, not complete"),
])
def test_runs_not_like_with_like_are_refused_unless_forced(feedtax_cli, stored, tmp_path, change, named):
    a, b = _pair(tmp_path, stored, {0: 0.75}, change)
    ran = feedtax_cli("compare", a, b, "--fail-on-regression", "10%")
    assert named in _one_line_error(ran) and "--force" in ran.stderr
    forced = feedtax_cli("compare", a, b, "--fail-on-regression", "10%", "--force")
    assert forced.exit_code == 1 and _metric(stored, 0) in forced.stdout, forced.output


def test_the_host_class_leaves_out_what_varies_within_a_runner_class(stored):
    other = stored.model_copy(deep=True)
    other.host.os = other.host.os.replace("6.18.44", "6.19.2")  # a kernel update
    other.host.cpu_model = "Intel Xeon Platinum 8370C"  # the pool's other CPU
    other.host.memory_total_bytes += 2**30
    assert cmp.host_class(other) == cmp.host_class(stored) and not cmp.unlike(stored, other, strict=True)
    assert any("CPU differs" in n for n in cmp.context(stored, other))  # still said, as a note


def test_another_stopping_rule_is_said_but_not_refused(stored):
    other = stored.model_copy(deep=True)
    other.config.sweep = {**(other.config.sweep or {}), "stop": {"au_ci_pp": 5.0, "max_steps": 40, "max_s": 1.0,
                                                                  "every": 8}}
    assert not cmp.unlike(stored, other, strict=True)  # the same metrics, each tested against its own spread
    said = [n for n in cmp.context(stored, other) if n.startswith("the sweep points' stopping rule differs")]
    assert said and "au_ci_pp 5, max_steps 40, max_s 1, every 8" in said[0], cmp.context(stored, other)
    assert not [n for n in cmp.context(stored, stored) if "stopping rule" in n]


def test_plain_compare_still_takes_other_tracks_and_hosts(stored):
    """Without the gate, compare lists metrics one run lacks (only_a) and notes another machine: not refused."""
    other = stored.model_copy(deep=True)
    _fewer_tracks(other)
    _other_cores(other)
    assert not cmp.unlike(stored, other)
    assert cmp.unlike(stored, other, strict=True)


@pytest.mark.parametrize("content", ["[]", "{\"schema_version\": 6", "", "not json"])
def test_an_unusable_results_file_is_one_line_exit_2(feedtax_cli, tmp_path, content):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    summary = tmp_path / "summary.md"
    ran = feedtax_cli("compare", STORED, bad, "--fail-on-regression", "10%", "--markdown", summary)
    assert "bad.json" in _one_line_error(ran)
    assert "error" in summary.read_text().splitlines()[0]  # the job summary says the gate could not judge
    assert "missing.json" in _one_line_error(feedtax_cli("compare", STORED, tmp_path / "missing.json",
                                                         "--fail-on-regression", "10"))


@pytest.mark.parametrize("value", ["-5", "1001%", "abc%", "10%%", "nan", ""])
def test_a_threshold_out_of_range_is_a_usage_error(feedtax_cli, value):
    assert "--fail-on-regression" in _one_line_error(feedtax_cli("compare", STORED, STORED,
                                                                 "--fail-on-regression", value))


def test_metrics_and_markdown_need_the_gate(feedtax_cli, tmp_path):
    assert "--fail-on-regression" in _one_line_error(feedtax_cli("compare", STORED, STORED, "--metrics", "disk.*"))
    assert "--fail-on-regression" in _one_line_error(feedtax_cli("compare", STORED, STORED, "--markdown",
                                                                 tmp_path / "s.md"))
    assert not (tmp_path / "s.md").exists()


def test_metrics_choose_what_is_gated(feedtax_cli, stored, tmp_path):
    a, b = _pair(tmp_path, stored, {0: 0.75})
    track = stored.formats[0].track
    elsewhere = feedtax_cli("compare", a, b, "--fail-on-regression", "10%", "--metrics", "disk.*",
                            "--metrics", "formats[*].encode*", "--json")
    assert elsewhere.exit_code == 0, elsewhere.output
    result = _gate_json(elsewhere)
    assert result["passed"] and result["metric_globs"] == ["disk.*", "formats[*].encode*"] and result["not_gated"] > 0
    named = feedtax_cli("compare", a, b, "--fail-on-regression", "10%", "--metrics",
                        f"disk.*,formats[{track}, *].decode_samples_per_s_*")  # a comma inside brackets is the glob's
    assert named.exit_code == 1 and _metric(stored, 0) in named.stdout, named.output
    typo = feedtax_cli("compare", a, b, "--fail-on-regression", "10%", "--metrics", "formats[*].decod_*")
    assert "matches no metric" in _one_line_error(typo)


def test_globs_split_on_commas_outside_brackets_and_match_brackets_literally():
    assert gate.split_globs(["a*,b", "formats[cloud, csv].*", " c , ,a*", "x[,y"]) == [
        "a*", "b", "formats[cloud, csv].*", "c", "x[,y"]
    assert gate.matches("formats[cloud, csv].decode_samples_per_s_cold", "formats[cloud, *].decode*")
    assert not gate.matches("formats[cloud, csv].x", "formats[c].x")  # not fnmatch's set of one character
    assert not gate.matches("disk.seq_read", "Disk.*")


def _dist(mean: float, n: int = 7) -> dict:
    return summarize(BASE / 1000 * mean, "s").model_dump() | {"n": n}


def test_the_worse_side_comes_from_the_metric_declaration():
    """A duration that rose regresses; a rate that rose improves; a change with no better side never fails."""
    slower = cmp._row("m1", "s", "k", "wait_s", _dist(1.0), _dist(1.25))
    faster = cmp._row("m2", "s", "k", "decode_samples_per_s_cold", _dist(1.0), _dist(1.25))
    drop_from_zero = CompareRow(metric="m3", section="s", key="k", field="wait_s", a=0.0, b=1.0,
                                verdict="significant", direction="worse")
    pp = CompareRow(metric="m4", section="s", key="k", field="error_pp", a=1.0, b=9.0, change_pct=800,
                    verdict="significant", direction="changed")
    result = gate.gate([slower, faster, drop_from_zero, pp], 10)
    assert [r.metric for r in result.regressions] == ["m3", "m1"]  # a change from 0 is past any threshold
    assert [r.metric for r in result.improvements] == ["m2"] and result.no_better_side == 1
    assert not result.passed and result.unchanged == 1


# --- the summaries ----------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\\.|\||[^\\|]+|\\$")  # an escaped character, a pipe, other text


def _cells(line: str) -> list[str]:
    """A GFM table row's cells: split at pipes that are not escaped (`\\|` is text, `\\\\|` a backslash and a split)."""
    cells, cell = [], ""
    for token in _TOKEN.findall(line):
        if token == "|":
            cells.append(cell.strip())
            cell = ""
        else:
            cell += token
    assert line.strip().startswith("|") and line.strip().endswith("|") and not cell.strip(), line
    return cells[1:]


def _table(text: str) -> list[list[str]]:
    """The one GFM table of a Markdown text as rows of cells, checked: a header row, a separator row, and the same
    number of cells in every row (a pipe escaped with a backslash is the cell's text)."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert len(lines) >= 3, text
    block_start = text.splitlines().index(lines[0])
    assert text.splitlines()[block_start:block_start + len(lines)] == lines, "the table is one block"
    rows = [_cells(line) for line in lines]
    assert all(re.fullmatch(r":?-+:?", c) for c in rows[1]), lines[1]
    assert len({len(r) for r in rows}) == 1, lines
    return rows


def test_the_markdown_summary_is_a_table_of_regressions_then_improvements(feedtax_cli, stored, tmp_path):
    a, b = _pair(tmp_path, stored, {0: 1.4, 1: 0.7, 2: 0.6, 3: 1.2, 4: 0.95})
    summary = tmp_path / "summary.md"
    ran = feedtax_cli("compare", a, b, "--fail-on-regression", "10%", "--markdown", summary, "--json")
    assert ran.exit_code == 1, ran.output
    result, text = _gate_json(ran), summary.read_text()
    heading = text.splitlines()[0]
    assert heading.startswith("### ") and "fail" in heading and "10%" in heading
    assert stored.run_id in heading and f"{stored.run_id}-b" in heading
    rows = _table(text)
    kinds = [r[0] for r in rows[2:]]
    assert kinds == ["regression"] * 2 + ["improvement"] * 2
    assert rows[2][1] == gate.md_text(_metric(stored, 2))  # the worst first
    unchanged = re.search(r"^(\d+) unchanged: ", text, re.M)
    assert unchanged and int(unchanged.group(1)) == result["unchanged"]
    every = json.loads(ran.stdout)["rows"]
    assert result["unchanged"] == len(every) - 4 and result["within_threshold"] == 1
    short = gate.markdown(gate.GateResult.model_validate(result), "a", "b", limit=3)
    assert [r[0] for r in _table(short)[2:]] == ["regression"] * 2 + ["improvement"] and "... and 1 more" in short


def test_the_terminal_summary_fits_a_screen(feedtax_cli, stored, tmp_path):
    n = len(stored.formats)
    a, b = _pair(tmp_path, stored, {i: 0.5 for i in range(n)})
    ran = feedtax_cli("compare", a, b, "--fail-on-regression", "10%")
    assert ran.exit_code == 1
    assert f"... and {n - 12} more" in ran.stdout and len(ran.stdout.splitlines()) <= 24, ran.stdout
    lines = ran.stdout.splitlines()
    assert "fail at 10%" in lines[0] and re.match(r"\d+ unchanged", lines[-1])


def test_markdown_escapes_text_from_a_results_file():
    hostile = "formats[edge | raw\nx`y`<b>&z]_*~.au\\"
    row = cmp._row(hostile, "formats", "k", "decode_samples_per_s_cold", _dist(1000), _dist(500))
    row.unit = "samples|s\n<i>"
    text = gate.markdown(gate.gate([row], 10), "run|a\nnew", "run`b<script>")
    heading = text.splitlines()[0]
    assert "run\\|a\\\\nnew" in heading and "run\\`b&lt;script&gt;" in heading and "<" not in text
    rows = _table(text)
    assert len(rows) == 3 and len(rows[0]) == 7
    cell = rows[2][1]
    assert "\n" not in cell and re.sub(r"\\(.)", r"\1", cell).replace("&lt;", "<").replace("&gt;", ">").replace(
        "&amp;", "&") == hostile.replace("\n", "\\n")


def test_a_markdown_file_that_cannot_be_written_is_one_line_exit_2(feedtax_cli, stored, tmp_path):
    ran = feedtax_cli("compare", STORED, STORED, "--fail-on-regression", "10%", "--markdown",
                      tmp_path / "no-such-dir" / "s.md")
    assert ran.exit_code == 2 and "cannot write the Markdown summary" in ran.stderr
    assert ran.stderr.count("\n") == 1


def test_json_has_the_gate_only_when_it_is_on(feedtax_cli):
    plain = feedtax_cli("compare", STORED, STORED, "--json")
    assert plain.exit_code == 0 and "gate" not in json.loads(plain.stdout)


# --- a factor threshold (--fail-on-regression 2x) ------------------------------------------------------------------

def test_a_factor_threshold_fails_only_beyond_that_factor_in_the_worse_direction():
    """2x: a rate below half or a time above double fails; a rate at 0.55x or a time at 1.8x is within; a rate
    doubled or a time halved is an improvement beyond 2x."""
    def row(name, field, factor):
        return cmp._row(name, "s", "k", field, _dist(1000), _dist(1000 * factor))

    rows = [row("rate/2.5", "decode_samples_per_s_cold", 0.4), row("rate/1.8", "decode_samples_per_s_cold", 0.55),
            row("time*2.5", "wait_s", 2.5), row("time*1.8", "wait_s", 1.8), row("rate*2.5", "samples_per_s", 2.5),
            row("time/3", "wait_s", 1 / 3)]
    result = gate.gate(rows, gate.Threshold(2, factor=True))
    assert not result.passed and result.threshold_factor == 2 and result.threshold_pct is None
    assert sorted(r.metric for r in result.regressions) == ["rate/2.5", "time*2.5"]
    assert [r.metric for r in result.improvements] == ["time/3", "rate*2.5"]  # the larger factor first
    assert result.within_threshold == 2
    assert gate.factor(rows[0]) == pytest.approx(2.5) and gate.factor(rows[3]) == pytest.approx(1.8)
    assert "fail at 2x" in gate.verdict_line(result) and "by more than 2x" in gate.markdown(result, "a", "b")


@pytest.mark.parametrize("factor, code", [(0.45, 1), (0.55, 0), (1.5, 0)])
def test_compare_takes_a_factor_threshold(feedtax_cli, stored, tmp_path, factor, code):
    a, b = _pair(tmp_path, stored, {0: factor})
    ran = feedtax_cli("compare", a, b, "--fail-on-regression", "2x", "--json")
    assert ran.exit_code == code, ran.output
    result = _gate_json(ran)
    assert result["threshold_factor"] == 2 and result["passed"] is (code == 0)
    assert feedtax_cli("compare", a, b, "--fail-on-regression", "2X").exit_code == code


@pytest.mark.parametrize("value", ["1x", "0.5x", "1001x", "x", "2xx", "-2x", "nanx"])
def test_a_factor_out_of_range_is_a_usage_error(feedtax_cli, value):
    error = _one_line_error(feedtax_cli("compare", STORED, STORED, "--fail-on-regression", value))
    assert "--fail-on-regression" in error and "factor" in error


# --- every gated metric tested at once (Benjamini-Hochberg) ----------------------------------------------------------

def _tested(i: int, p: float, change_pct: float) -> CompareRow:
    significant = p < cmp.ALPHA
    return CompareRow(metric=f"m{i:03d}", section="s", key="k", field="decode_samples_per_s_cold", a=100.0,
                      b=100.0 * (1 + change_pct / 100), change_pct=change_pct, p_value=p,
                      verdict="significant" if significant else "noise",
                      direction=("worse" if change_pct < 0 else "better") if significant else None)


def test_a_few_metrics_significant_alone_among_hundreds_do_not_fail_the_gate():
    """200 metrics of unchanged code: ten at p 0.01..0.04 (what chance gives 5% of them) are significant alone, not
    when the 200 are tested together, whatever their change; a regression that moves 40 metrics at p = 1e-4 fails."""
    rng = np.random.default_rng(1)
    noise = [_tested(i, float(p), -15.0) for i, p in enumerate(rng.uniform(0.06, 1.0, 190))]
    chance = [_tested(190 + i, p, -15.0) for i, p in enumerate(np.linspace(0.01, 0.04, 10))]
    result = gate.gate(noise + chance, 10)
    assert result.passed and result.tested == 200 and result.not_together == 10 and result.noise == 190
    assert "10 significant alone but not among the 200 tested together" in gate.counts_line(result)
    slower = [_tested(200 + i, 1e-4, -20.0) for i in range(40)]
    result = gate.gate(noise + chance + slower, 10)
    assert not result.passed and len(result.regressions) >= 40 and result.tested == 240
    assert gate.together(chance) == {id(r) for r in chance}  # ten alone, at p <= 0.05 x k / 10: all of them


def test_the_family_is_the_gated_metrics():
    """--metrics narrows what is tested together: one metric at p = 0.01 alone is significant."""
    rows = [_tested(i, 0.5, -1.0) for i in range(99)] + [_tested(99, 0.01, -30.0)]
    assert gate.gate(rows, 10).passed
    narrowed = gate.gate(rows, 10, ["m099"])
    assert not narrowed.passed and narrowed.tested == 1 and narrowed.not_gated == 99
