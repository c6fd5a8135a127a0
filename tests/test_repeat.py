"""`feedtax run --repeat N` and `feedtax run --baseline FILE --fail-on-regression PCT` (feedtax.cli.repeat), on stored
results: the runner is replaced by one that "measures" a stored run in no time, so what is tested is what the command
does around the measuring (the baseline checked first, each repeat kept, their merge, the gate's exit codes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from feedtax import results
from feedtax.bench import runner
from feedtax.probes import host
from feedtax.reports import html
from feedtax.results.schema import Results
from feedtax.stats import summarize

STORED = Path(__file__).parent / "data" / "results-v5.json"
COLD = "formats[cloud, csv].decode_samples_per_s_cold"


@pytest.fixture(scope="module")
def here(tmp_path_factory) -> Results:
    """The stored ci run as if measured on this host (the baseline must be of this host class)."""
    run = results.load(STORED)
    run.host = host.collect(tmp_path_factory.mktemp("host"))
    return run


def run_with(here: Results, medians: list[float], tag: str = "new") -> list[Results]:
    """Runs of `here`: every format's cold decode rate a tight distribution around 1000 x factor, one run per
    factor."""
    out = []
    for i, factor in enumerate(medians):
        r = here.model_copy(deep=True)
        r.run_id = f"{here.run_id}-{tag}{i}"
        for f in r.formats:
            f.decode_samples_per_s_cold = summarize([x * factor for x in (990, 995, 1000, 1005, 1010)], "samples/s")
        out.append(r)
    return out


@pytest.fixture
def measured(monkeypatch):
    """runner.run replaced: each call "measures" the next of the runs queued, saved where the runner saves; the
    report written as one line (its rendering is tested elsewhere). The list of calls made is returned."""
    queue: list[Results] = []
    calls: list[Path] = []

    def fake_run(profile, out_dir, **_):
        calls.append(Path(out_dir))
        res = queue.pop(0)
        if isinstance(res, BaseException):  # a repeat that fails
            raise res
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        results.save(res, Path(out_dir) / "results.json")
        return res

    def fake_report(res, path):
        Path(path).write_text(f"report of {res.run_id}\n")
        return Path(path)

    monkeypatch.setattr(runner, "run", fake_run)
    monkeypatch.setattr(html, "write", fake_report)
    return queue, calls


def baseline_file(tmp_path: Path, run: Results) -> Path:
    path = tmp_path / "baseline.json"
    results.save(run, path)
    return path


def one_line_error(ran) -> str:
    assert ran.exit_code == 2 and ran.stderr.count("\n") == 1 and ran.stderr.startswith("feedtax: "), ran.output
    return ran.stderr


def _laptop(tmp_path: Path, here: Results) -> Path:
    other = here.model_copy(deep=True)
    other.profile = other.config.profile = "laptop"
    return baseline_file(tmp_path, other)


@pytest.mark.parametrize("make, said", [
    (lambda tmp, here: tmp / "missing.json", "missing.json: cannot read"),
    (lambda tmp, here: (tmp / "bad.json").write_text("{") and tmp / "bad.json", "bad.json: not a valid feedtax"),
    (_laptop, "profile differs: laptop vs ci"),
])
def test_a_baseline_that_cannot_be_used_is_refused_before_measuring(feedtax_cli, measured, here, tmp_path, make,
                                                                   said):
    _, calls = measured
    summary, out = tmp_path / "summary.md", tmp_path / "out"
    ran = feedtax_cli("run", "--profile", "ci", "--out", out, "--baseline", make(tmp_path, here),
                      "--fail-on-regression", "10%", "--markdown", summary)
    assert said in one_line_error(ran) and "--baseline" in ran.stderr
    assert not calls and not (out / "results.json").exists(), "nothing is measured"
    assert "error" in summary.read_text().splitlines()[0]


def test_a_glob_or_a_repeat_the_baseline_cannot_match_is_refused_before_measuring(feedtax_cli, measured, here,
                                                                                  tmp_path):
    _, calls = measured
    base = baseline_file(tmp_path, here)
    typo = feedtax_cli("run", "--profile", "ci", "--out", tmp_path / "out", "--baseline", base,
                       "--fail-on-regression", "10%", "--metrics", "formats[*].decod_*")
    assert "matches no metric" in one_line_error(typo)
    merged = feedtax_cli("run", "--profile", "ci", "--out", tmp_path / "out", "--baseline", base,
                         "--fail-on-regression", "10%", "--repeat", "3")
    assert "merged runs differs: one run vs a merge of 3 runs" in one_line_error(merged)
    assert not calls


@pytest.mark.parametrize("args", [["--baseline", STORED], ["--fail-on-regression", "10%"], ["--metrics", "disk.*"],
                                  ["--repeat", "0"], ["--repeat", "101"]])
def test_gate_options_out_of_place_are_usage_errors(feedtax_cli, measured, tmp_path, args):
    one_line_error(feedtax_cli("run", "--profile", "ci", "--out", tmp_path / "out", *args))
    assert not measured[1]


@pytest.mark.parametrize("factor, threshold, code, verdict", [
    (1.0, "10%", 0, "pass at 10%"), (0.75, "10%", 1, "fail at 10%"), (0.75, "2x", 0, "pass at 2x"),
    (0.4, "2x", 1, "fail at 2x"),
])
def test_the_run_is_gated_after_its_report(feedtax_cli, measured, here, tmp_path, factor, threshold, code, verdict):
    queue, _ = measured
    queue += run_with(here, [factor])
    base, out, summary = baseline_file(tmp_path, run_with(here, [1.0], "base")[0]), tmp_path / "out", tmp_path / "s.md"
    ran = feedtax_cli("run", "--profile", "ci", "--out", out, "--baseline", base, "--fail-on-regression", threshold,
                      "--markdown", summary)
    assert ran.exit_code == code, ran.output
    assert f"regression gate: {verdict}" in ran.stderr and verdict in summary.read_text().splitlines()[0]
    assert (out / "results.json").exists() and (out / "report.html").exists()
    if code:
        assert COLD in ran.stderr and "regression" in summary.read_text()


def test_repeats_are_kept_and_their_merge_is_the_results(feedtax_cli, measured, here, tmp_path):
    queue, calls = measured
    queue += run_with(here, [1.0, 1.2, 1.1])
    out = tmp_path / "out"
    ran = feedtax_cli("run", "--profile", "ci", "--out", out, "--repeat", "3")
    assert ran.exit_code == 0, ran.output
    assert calls == [out / "repeats" / f"run-{k}" for k in (1, 2, 3)]
    kept = [json.loads((out / "repeats" / f"run-{k}.json").read_text())["run_id"] for k in (1, 2, 3)]
    assert kept == [f"{here.run_id}-new{i}" for i in range(3)]
    assert not (out / "repeats" / "run-1").exists(), "each repeat's own folder goes once its results are kept"
    merged = results.load(out / "results.json")
    d = merged.formats[0].decode_samples_per_s_cold
    assert (d.median, d.n, d.min, d.max) == (1100.0, 3, 1000.0, 1200.0)
    assert merged.merged.runs == 3 and merged.merged.run_ids == kept
    assert (out / "report.html").read_text() == f"report of {merged.run_id}\n"
    queue += run_with(here, [1.0, 1.0], "again")
    assert feedtax_cli("run", "--profile", "ci", "--out", out, "--repeat", "2").exit_code == 0
    assert sorted(p.name for p in (out / "repeats.prev").iterdir()) == ["run-1.json", "run-2.json", "run-3.json"]
    assert sorted(p.name for p in (out / "repeats").iterdir()) == ["run-1.json", "run-2.json"]


def test_a_merged_run_gates_against_a_merged_baseline(feedtax_cli, measured, here, tmp_path):
    queue, _ = measured
    queue += run_with(here, [1.0, 1.05, 0.95], "base")
    assert feedtax_cli("run", "--profile", "ci", "--out", tmp_path / "base", "--repeat", "3").exit_code == 0
    base = tmp_path / "base" / "results.json"
    queue += run_with(here, [0.76, 0.74, 0.75])
    ran = feedtax_cli("run", "--profile", "ci", "--out", tmp_path / "out", "--repeat", "3", "--baseline", base,
                      "--fail-on-regression", "10%")
    assert ran.exit_code == 1 and "fail at 10%" in ran.stderr, ran.output
    queue += run_with(here, [1.02, 0.97, 1.0], "same")
    same = feedtax_cli("run", "--profile", "ci", "--out", tmp_path / "out", "--repeat", "3", "--baseline", base,
                       "--fail-on-regression", "10%")
    assert same.exit_code == 0 and "pass at 10%" in same.stderr, same.output


def test_a_repeat_that_fails_leaves_the_merge_of_those_before_it(feedtax_cli, measured, here, tmp_path):
    queue, _ = measured
    queue += [*run_with(here, [1.0, 1.1]), RuntimeError("the disk went away")]
    out = tmp_path / "out"
    ran = feedtax_cli("run", "--profile", "ci", "--out", out, "--repeat", "3")
    assert ran.exit_code == 1 and "run failed: RuntimeError: the disk went away" in ran.stderr, ran.output
    said = " ".join(ran.stderr.split())  # the console wraps long lines
    assert f"repeat 3/3 stopped: what it measured is in {out / 'repeats' / 'run-3' / 'results.json'}; " \
           f"{out / 'results.json'} merges the 2 before it" in said
    merged = results.load(out / "results.json")
    assert merged.merged.runs == 2 and merged.formats[0].decode_samples_per_s_cold.median == pytest.approx(1050.0)
    assert (out / "report.html").read_text() == f"report of {merged.run_id}\n", "the report of what was merged"
