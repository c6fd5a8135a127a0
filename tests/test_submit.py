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
