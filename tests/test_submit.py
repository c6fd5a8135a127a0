"""write_submission: <run_id>.json, atomic, collectable as is."""

from __future__ import annotations

import os

import pytest
from test_collect import base_run

from feedtax.classroom import collect, intake
from feedtax.classroom.submit import RUN_ID_PATTERN, SubmitError, write_submission
from feedtax.results.schema import Results


@pytest.fixture(scope="module")
def real() -> Results:
    return Results.model_validate_json(base_run())


def test_named_by_run_id_and_round_trips(real, tmp_path):
    path = write_submission(real, tmp_path / "class" / "inbox")
    assert path == tmp_path / "class" / "inbox" / f"{real.run_id}.json"
    assert Results.model_validate_json(path.read_bytes()) == real
    assert os.listdir(path.parent) == [path.name]  # no temp file left behind


def test_resubmitting_replaces_and_a_submission_collects(real, tmp_path):
    write_submission(real, tmp_path)
    newer = real.model_copy(update={"status": "complete"})
    path = write_submission(newer, tmp_path)
    assert Results.model_validate_json(path.read_bytes()).status == "complete"
    report = collect.collect([tmp_path], tmp_path / "class.duckdb")
    assert [a.run_id for a in report.accepted] == [real.run_id] and report.ok


def test_unsafe_run_id_and_unwritable_folder_are_refused(real, tmp_path):
    with pytest.raises(SubmitError, match="cannot name a file"):
        write_submission(real.model_copy(update={"run_id": "../escape"}), tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SubmitError, match="file"):
        write_submission(real, blocker / "sub")
    assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*"))


def test_submit_and_collect_apply_one_run_id_rule():
    assert intake.RUN_ID_PATTERN is RUN_ID_PATTERN
    assert RUN_ID_PATTERN.match("20260101T000000Z-0a1b2c3d") and RUN_ID_PATTERN.match("a" * 128)
    for bad in ("../escape", ".hidden", "", "a" * 129, "a b", "a/b"):
        assert not RUN_ID_PATTERN.match(bad), bad


# --- the lab record travels with the results ----------------------------------------------------------

def _lab(run_id: str):
    from test_lab_record import record

    return record(run_id=run_id)


def test_a_lab_record_is_submitted_beside_the_results(real, tmp_path):
    from feedtax.results.lab import load_lab

    lab = _lab(real.run_id)
    path = write_submission(real, tmp_path / "inbox", lab)
    assert path == tmp_path / "inbox" / f"{real.run_id}.json"
    assert load_lab(tmp_path / "inbox" / f"{real.run_id}.lab.json") == lab
    assert sorted(os.listdir(path.parent)) == [f"{real.run_id}.json", f"{real.run_id}.lab.json"]


def test_another_runs_lab_record_is_refused_and_nothing_written(real, tmp_path):
    with pytest.raises(SubmitError, match="not of this run"):
        write_submission(real, tmp_path / "inbox", _lab("20260101T000000Z-someone"))
    assert not (tmp_path / "inbox").exists()


def test_lab_beside_finds_the_runs_lab_record_or_says_why_not(real, tmp_path):
    from feedtax.classroom.submit import lab_beside
    from feedtax.results.lab import save_lab

    results_json = tmp_path / "results.json"
    assert lab_beside(results_json, real.run_id) == (None, None)
    save_lab(_lab(real.run_id), tmp_path / "lab.json")
    assert lab_beside(results_json, real.run_id) == (_lab(real.run_id), None)
    lab, why = lab_beside(results_json, "another-run")
    assert lab is None and "lab.json" in why and "not of this run 'another-run'" in why
    (tmp_path / "lab.json").write_text('{"run_id": "x", "locks": [{"lock": "moon"}]}')
    lab, why = lab_beside(results_json, real.run_id)
    assert lab is None and why.startswith(f"{tmp_path / 'lab.json'}: ") and "\n" not in why


def _fake_run(monkeypatch, real):
    """`feedtax run` with the measuring replaced by a stored run: the --submit path is what is tested."""
    from feedtax.bench import runner
    from feedtax.reports import html
    from feedtax.results.io import save

    def run(profile, out, **kw):
        out.mkdir(parents=True, exist_ok=True)
        save(real, out / "results.json")
        return real

    monkeypatch.setattr(runner, "run", run)
    monkeypatch.setattr(html, "write", lambda res, path: path)


def _cli(args):
    import typer
    from typer.testing import CliRunner

    from feedtax.cli.run import run

    app = typer.Typer()
    app.command("run")(run)
    app.command("noop")(lambda: None)
    return CliRunner().invoke(app, ["run", *args])


def test_run_submit_sends_the_new_run_and_keeps_the_earlier_runs_lab_record_aside(real, tmp_path, monkeypatch):
    """A lab record names its run; a new run (a new run_id) sets the old one aside and submits its results alone."""
    from feedtax.results.lab import load_lab, save_lab

    _fake_run(monkeypatch, real)
    out, inbox = tmp_path / "out", tmp_path / "inbox"
    out.mkdir()
    save_lab(_lab("an-earlier-run"), out / "lab.json")
    ok = _cli(["--out", str(out), "--submit", str(inbox)])
    assert ok.exit_code == 0, ok.output
    assert Results.model_validate_json((inbox / f"{real.run_id}.json").read_bytes()) == real
    assert not (inbox / f"{real.run_id}.lab.json").exists() and not (out / "lab.json").exists()
    assert load_lab(out / "lab-an-earlier-run.json") == _lab("an-earlier-run")
