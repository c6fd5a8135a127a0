"""`feedtax run --submit DIR` (and `feedtax lab --submit DIR`): drop a copy of the run's results, and its lab record
when there is one, into a class submission folder.

The files are named <run_id>.json and <run_id>.lab.json, so submissions from a whole class never collide and the
instructor's `feedtax collect DIR` keys each by its run. Written atomically (temp file in the same folder, fsync,
rename): a crash or a full disk never leaves a half-written submission behind.
"""

from __future__ import annotations

from pathlib import Path

from feedtax.results.io import save
from feedtax.results.lab import LabFileError, LabRecord, lab_path, load_lab, save_lab
from feedtax.results.schema import Results
from feedtax.results.validate import RUN_ID_PATTERN  # the one run-id rule: submit writes no other, nothing reads one

LAB_SUFFIX = ".lab.json"  # <run_id>.lab.json: a run's lab record, beside its <run_id>.json


class SubmitError(RuntimeError):
    """The submission cannot be written: names the folder and why."""


def write_submission(results: Results, submit_dir: Path, lab: LabRecord | None = None) -> Path:
    """Write submit_dir/<run_id>.json, and <run_id>.lab.json when a lab record is given, each atomically; return
    the results' path (the run's latest state replaces an older copy). Nothing is written when the run_id cannot
    name a file or the lab record is another run's."""
    submit_dir = Path(submit_dir)
    if not RUN_ID_PATTERN.fullmatch(results.run_id):
        raise SubmitError(f"run_id {results.run_id!r} cannot name a file (letters, digits, '.', '_', '-' only)")
    if lab is not None and lab.run_id != results.run_id:
        raise SubmitError(f"the lab record is of run {lab.run_id[:128]!r}, not of this run {results.run_id!r}: "
                          "nothing submitted")
    target = submit_dir / f"{results.run_id}.json"
    try:
        submit_dir.mkdir(parents=True, exist_ok=True)
        save(results, target)
        if lab is not None:
            save_lab(lab, submit_dir / f"{results.run_id}{LAB_SUFFIX}")
    except OSError as exc:
        raise SubmitError(f"{submit_dir}: cannot write the submission: {exc.strerror or exc}") from None
    except LabFileError as exc:
        raise SubmitError(f"{exc} (the results were submitted as {target})") from None
    return target


def lab_beside(results_path: Path, run_id: str) -> tuple[LabRecord | None, str | None]:
    """The lab record beside a run's results.json, if any, and the one-line reason it cannot go with this run
    (unreadable or invalid, or another run's lab record): (None, None) where there is none."""
    path = lab_path(results_path)
    if not path.exists() and not path.is_symlink():
        return None, None
    try:
        lab = load_lab(path)
    except LabFileError as exc:
        return None, str(exc)
    if lab.run_id != run_id:
        return None, f"{path}: the lab record of run {lab.run_id!r}, not of this run {run_id!r}"
    return lab, None
