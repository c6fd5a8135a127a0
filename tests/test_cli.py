"""The CLI as a user runs it: `feedtax run --profile ci`, `report`, `schema`, bad input, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from conftest import terminal_signals

FEEDTAX = [shutil.which("feedtax") or "feedtax"] if shutil.which("feedtax") else [sys.executable, "-m", "feedtax"]


def feedtax(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*FEEDTAX, *args], capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    proc = feedtax("run", "--profile", "ci", "--out", str(out))  # output to pipes, as to a log: no terminal
    assert proc.returncode == 0, proc.stderr
    (out.parent / "log").write_text(proc.stderr)
    return out


def test_a_run_logged_to_a_file_says_how_far_it_is_at_least_every_15_s(ci_run):
    log = (ci_run.parent / "log").read_text()
    stamps = [int(s) for s in re.findall(r"^\[\s*(\d+)s\] ", log, flags=re.M)]
    assert stamps and stamps[0] <= 15, log[:500]
    assert max(b - a for a, b in zip(stamps, stamps[1:], strict=False)) <= 15, log
    assert re.search(r"^\[\s*\d+s\] DataLoader sweep: \d+/\d+, about \d+", log, flags=re.M), "with what is left"
    assert re.search(r"^\[\s*\d+s\] report: 1/1$", log, flags=re.M), "the report's rendering is a stage too"


def test_ci_run_writes_valid_results_and_report(ci_run):
    doc = json.loads((ci_run / "results.json").read_text())
    schema = json.loads(feedtax("schema").stdout)
    jsonschema.validate(doc, schema)
    assert doc["status"] == "complete" and doc["profile"] == "ci"
    pairs = {(r["track"], r["format"]) for r in doc["formats"]}
    assert pairs == {(t, f) for t in ("cloud", "edge", "mobile", "tiny")
                     for f in ("csv", "json", "parquet", "protobuf", "raw")}
    assert not (ci_run / "data").exists(), "data is removed unless --keep-data"
    # the later stages: sweep, selection, projections, all from this run's measurements
    assert [s["name"] for s in doc["stages"]] == ["probes", "formats", "sweep", "selection", "projections"]
    assert all(s["status"] == "complete" for s in doc["stages"])
    assert sorted((r["loader"], r["format"], r["num_workers"]) for r in doc["loader"]) == sorted(
        (kind, f, w) for kind in ("default", "tuned") for f in ("csv", "parquet", "raw") for w in (0, 1, 2))
    assert [s["loader"] for s in doc["feeding"]["summaries"]] == ["default", "tuned"]
    assert set(doc["feeding"]["flow_equilibrium"]["edge"]) == {"csv", "parquet", "raw"}
    assert doc["feeding"]["shards"]["edge"] >= 2 * 2, \
        "at least 2 shards per worker, or stream-only formats cannot scale"
    assert set(doc["projections"]) == {"cloud", "edge", "mobile", "tiny"}
    assert len(doc["model_validation"]) == len([r for r in doc["loader"] if r["loader"] == "tuned"])
    assert any(t["dataset_bytes"] == 10**15 and t["link_gbps"] == 100 for t in doc["gravity"]["tiers"])
    assert {t["track"] for t in doc["transforms"]} == {"cloud", "edge", "mobile", "tiny"}
    assert doc["disk"]["cache_evicted"] is True and doc["memory"]["copy_mb_per_s_one_core"] > 0
    assert doc["energy"]["absent"] or doc["energy"]["counters"]
    html = (ci_run / "report.html").read_text()
    assert html.count("<svg") >= 8 and "Format costs" in html
    first_screen = html[:html.index("1. Format costs")]  # before any section: the answers, and which loader
    assert "The answers" in first_screen and "tuned loader" in first_screen
    assert "default torch DataLoader" in first_screen
    for question in ("Which format", "four missions work", "Fiber or shipped drives", "JSON -&gt; Protobuf",
                     "noisy samples or ten thousand curated"):
        assert question in first_screen, question
    for title in ("Feeding tax", "Missions", "Data Gravity Audit", "Zero-Waste Audit", "Assumptions used"):
        assert title in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html), "report must load nothing from the network"


def test_report_rerenders_from_results_alone(ci_run, tmp_path):
    target = tmp_path / "again.html"
    proc = feedtax("report", str(ci_run / "results.json"), "--out", str(target))
    assert proc.returncode == 0, proc.stderr
    assert "<svg" in target.read_text()


def test_project_reprojects_with_an_assumption_changed(ci_run, tmp_path):
    target = tmp_path / "reprojected.json"
    proc = feedtax("project", str(ci_run / "results.json"), "--assume", "orin_cpu_cores=1000", "--out", str(target))
    assert proc.returncode == 0, proc.stderr
    before, after = (json.loads(p.read_text()) for p in (ci_run / "results.json", target))
    assert after["assumptions"]["entries"]["orin_cpu_cores"] == {**before["assumptions"]["entries"]["orin_cpu_cores"],
                                                                 "value": 1000.0, "overridden": True}
    assert after["formats"] == before["formats"] and after["loader"] == before["loader"], "nothing is measured again"
    was = before["assumptions"]["entries"]["orin_cpu_cores"]["value"]
    assert "assumed orin_cpu_cores = 1000" in proc.stdout and f"(the run had {was:g})" in proc.stdout
    bad = feedtax("project", str(ci_run / "results.json"), "--assume", "warp_drive=1")
    assert bad.returncode == 2 and "warp_drive" in bad.stderr


def test_version_names_the_installed_build():
    from importlib.metadata import version

    for flag in ("--version", "-V"):
        proc = feedtax(flag)
        assert proc.returncode == 0 and proc.stdout.strip() == f"feedtax {version('feedtax')}"


def test_report_of_a_malformed_file_fails_naming_it(tmp_path):
    bad = tmp_path / "results.json"
    bad.write_text('{"schema_version": 1, "run_id": 3}')
    proc = feedtax("report", str(bad))
    assert proc.returncode == 2 and str(bad) in proc.stderr and "not a valid feedtax results file" in proc.stderr


def test_subset_of_tracks_and_formats_and_keep_data(tmp_path):
    out = tmp_path / "o"
    proc = feedtax("run", "--profile", "ci", "--out", str(out), "--tracks", "tiny", "--formats", "raw,json",
                   "--keep-data", "--submit", str(tmp_path / "class"), "--max-steps", "24", "--au-ci-pp", "50")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    # the stopping rule given: recorded, and every point with the consumer stopped by it (16 steps at least, 24 at most)
    assert doc["config"]["sweep"]["stop"] == {"au_ci_pp": 50.0, "max_steps": 24, "max_s": 1.0, "every": 8}
    assert all(16 <= r["steps"] <= 24 and r["stopped_by"] in ("au_ci", "max_steps", "max_s") for r in doc["loader"])
    assert json.loads((tmp_path / "class" / f"{doc['run_id']}.json").read_text()) == doc
    assert [(r["track"], r["format"]) for r in doc["formats"]] == [("tiny", "raw"), ("tiny", "json")]
    assert sorted(p.name for p in (out / "data").iterdir()) == ["tiny-json", "tiny-raw"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--profile", "huge"], "unknown profile 'huge'"),
        (["--formats", "xml"], "unknown format xml"),
        (["--tracks", "space"], "unknown track space"),
        (["--max-steps", "15"], "--max-steps (15) is below the laptop profile's 16 measured steps, the minimum"),
        (["--au-ci-pp", "0"], "--au-ci-pp"),
        (["--max-s", "-1"], "--max-s"),
    ],
)
def test_bad_options_exit_nonzero_with_a_message(tmp_path, args, message):
    proc = feedtax("run", "--out", str(tmp_path / "o"), *args)
    assert proc.returncode == 2 and message in proc.stderr


def test_unwritable_out_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = feedtax("run", "--profile", "ci", "--out", str(blocker / "sub"))
    assert proc.returncode == 2 and str(blocker / "sub") in proc.stderr


def _interrupted_run(out: Path, section: str, at_least: int) -> tuple[int, str, int]:
    """A ci run stopped by SIGINT once results.json holds `at_least` entries of `section`:
    (exit code, stderr, entries seen before the signal)."""
    proc = subprocess.Popen([*FEEDTAX, "run", "--profile", "ci", "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=terminal_signals)
    deadline, seen = time.monotonic() + 150, 0
    while time.monotonic() < deadline and seen < at_least:
        try:
            seen = len(json.loads((out / "results.json").read_text())[section])
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    return proc.returncode, stderr, seen


def test_ctrl_c_leaves_valid_partial_results(tmp_path):
    out = tmp_path / "o"
    code, stderr, _ = _interrupted_run(out, "formats", 2)
    assert code == 130, stderr
    assert "interrupted" in stderr
    doc = json.loads((out / "results.json").read_text())
    jsonschema.validate(doc, json.loads(feedtax("schema").stdout))
    assert doc["status"] == "interrupted" and doc["stages"][-1]["status"] == "interrupted"
    assert 2 <= len(doc["formats"]) < 20
    assert (out / "report.html").exists() and "did not complete" in (out / "report.html").read_text()
    assert not list(out.glob("*.tmp"))


def test_ctrl_c_mid_sweep_keeps_every_measured_point(tmp_path):
    out = tmp_path / "o"
    code, stderr, rows = _interrupted_run(out, "loader", 2)
    assert code == 130, stderr
    doc = json.loads((out / "results.json").read_text())
    assert doc["status"] == "interrupted" and doc["stages"][-1]["name"] == "sweep"
    assert len(doc["loader"]) >= rows >= 2  # the points measured before the signal, saved as each completed


def test_help_starts_without_heavy_imports():
    code = ("import sys, feedtax.cli; "
            "print(sorted({'torch', 'mlsysim', 'matplotlib', 'pyarrow', 'numpy'} & set(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr
    assert feedtax("--help").returncode == 0


@pytest.mark.parametrize("args, line", [
    (["sweep", "--steps", "1000000000"], "feedtax: --steps: 1000000000 is over the limit 100000 (use 1..100000)"),
    (["probe", "disk", "--time-budget-s", "nan"], "feedtax: --time-budget-s: nan is not a finite number"),
    (["gravity", "--disk-mb-per-s", "100", "--assume", "truck_speed_km_per_h=0"],
     "feedtax: --assume truck_speed_km_per_h=0: outside its range"),
    (["sweep", "--bogus"], "feedtax: no such option: --bogus"),
    (["report"], "feedtax: missing argument"),
])
def test_the_console_script_says_a_usage_error_in_one_line(args, line):
    proc = feedtax(*args)
    assert proc.returncode == 2 and proc.stderr.startswith(line) and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stdout == ""


# --- text from files reaches the terminal as text: no rich markup applied, no escape sequence or bidi override ---

HOSTILE = ("[/]", "[link=https://x.example]click[/link]", "cpu\x1b[31m\x00\u202eevil")


def _hostile_runs(monkeypatch, **fields):
    """results.load giving the stored v3 run with these fields, as if a results file had held them (the reader
    refuses a bad run_id; the output must not depend on it)."""
    from feedtax import results

    base = results.load(Path(__file__).parent / "data" / "results-v3.json")

    def load(path):
        run = base.model_copy(deep=True, update={k: v for k, v in fields.items() if k != "cpu_model"})
        run.host.cpu_model = fields.get("cpu_model", run.host.cpu_model) + ("" if "a" in str(path) else " B")
        if "b" in str(path):
            run.formats[0].bytes_per_sample *= 2
            run.run_id += "-b"
        return run

    monkeypatch.setattr(results, "load", load)


def _clean(text: str) -> bool:
    return not any(c in text for c in ("\x1b", "\x00", "\u202e"))


@pytest.mark.parametrize("hostile", HOSTILE)
def test_compare_prints_a_hostile_run_id_and_cpu_as_text(feedtax_cli, monkeypatch, hostile):
    _hostile_runs(monkeypatch, run_id=hostile, cpu_model=hostile)
    out = feedtax_cli("compare", "a.json", "b.json", "--force", "--all")
    assert out.exit_code == 0 and _clean(out.output), out.output
    flat = "".join(out.stdout.split())
    shown = "".join(hostile.replace("\x1b", "\\x1b").replace("\x00", "\\x00").replace("\u202e", "\\u202e").split())
    assert f"{shown}(A)->{shown}-b(B)" in flat and f"CPUdiffers:{shown}vs{shown}B" in flat, out.stdout


@pytest.mark.parametrize("hostile", HOSTILE)
def test_project_and_report_print_hostile_text_as_text(feedtax_cli, monkeypatch, tmp_path, hostile):  # noqa: E501
    _hostile_runs(monkeypatch, run_id=hostile, cpu_model=hostile)
    projected = feedtax_cli("project", "a.json")
    assert projected.exit_code == 0 and _clean(projected.output), projected.output
    target = tmp_path / "[b]report.html"  # printed as it is too
    report = feedtax_cli("report", "a.json", "--out", target)
    assert report.exit_code == 0 and report.stdout == f"{target}\n", report.output
    assert _clean(target.read_text())
