"""The lab session: Locks committed once, iterations and answers kept, everything saved as it happens."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from feedtax.lab.session import LabSession
from feedtax.results import lab as labfile
from feedtax.results import load

LAPTOP = Path(__file__).parent / "data" / "results-v4.json"


@pytest.fixture
def run(tmp_path):
    path = tmp_path / "results.json"
    shutil.copy(LAPTOP, path)
    return load(path), path


def test_a_session_is_saved_as_it_goes_and_carries_on(run):
    res, path = run
    lab = LabSession.open(res, path)
    assert lab.record.locks == [] and not lab.path.exists()
    assert lab.commit_lock("gravity", "drive", "high")
    lab.add_iteration(1, {"size_bytes": 10**15, "drive": "hdd"}, {"network_s": 1.0})
    assert lab.examine_tier("1 PB") == 1 and lab.examine_tier("1 PB") == 1 and lab.examine_tier("10 TB") == 2
    lab.reflect(1, "why?", "because <b>drives</b>")
    again = LabSession.open(res, path)  # a closed browser loses nothing
    assert again.record == lab.record == labfile.load_lab(labfile.lab_path(path))
    assert again.lock("gravity").choice == "drive" and again.record.reflections[0].answer == "because <b>drives</b>"


def test_a_lock_is_committed_once(run):
    lab = LabSession.open(*run)
    assert lab.commit_lock("format_vs_ssd", "ssd", "low")
    assert not lab.commit_lock("format_vs_ssd", "format", "high")
    assert [(lk.lock, lk.choice, lk.confidence) for lk in lab.record.locks] == [("format_vs_ssd", "ssd", "low")]


def test_a_rerender_is_not_an_iteration_and_empty_answers_keep_the_last(run):
    lab = LabSession.open(*run)
    for workers in (1, 1, 2, 2, 1):
        lab.add_iteration(2, {"workers": workers}, {"au": 0.5})
    assert lab.iterations(2) == 3 and lab.iterations(1) == 0
    lab.reflect(2, "q", "first")
    lab.reflect(2, "q", "   ")
    lab.reflect(2, "q", "second")
    assert [r.answer for r in lab.record.reflections] == ["second"]


def test_a_lab_record_of_another_run_is_refused(run):
    res, path = run
    LabSession.open(res, path).commit_lock("gravity", "fiber", "low")
    other = res.model_copy(update={"run_id": "another-run"})
    with pytest.raises(labfile.LabFileError, match="belongs to run"):
        LabSession.open(other, path)


def test_what_breaks_the_records_limits_is_not_saved(run):
    lab = LabSession.open(*run)
    lab.commit_lock("gravity", "drive", "high")
    with pytest.raises(ValueError):
        lab.reflect(3, "q", "x" * (labfile.MAX_ANSWER_CHARS + 1))
    assert labfile.load_lab(lab.path) == lab.record and lab.record.reflections == []
