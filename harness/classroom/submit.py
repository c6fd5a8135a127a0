"""`feedtax run --submit DIR`: drop a copy of the run's results into a class submission folder.

The file is named <run_id>.json, so submissions from a whole class never collide and the
instructor's `feedtax collect DIR` keys each by its run. Written atomically (temp file in the same
folder, fsync, rename): a crash or a full disk never leaves a half-written submission behind.
"""

from __future__ import annotations

import re
from pathlib import Path

from feedtax.results.io import save
from feedtax.results.schema import Results

# The one run-id rule of the classroom: a run_id names its submission file (<run_id>.json) and keys its rows,
# so submit refuses to write, and collect to ingest, any other.
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class SubmitError(RuntimeError):
    """The submission cannot be written: names the folder and why."""


def write_submission(results: Results, submit_dir: Path) -> Path:
    """Write submit_dir/<run_id>.json atomically and return its path (the run's latest state replaces an older copy)."""
    submit_dir = Path(submit_dir)
    if not RUN_ID_PATTERN.match(results.run_id):
        raise SubmitError(f"run_id {results.run_id!r} cannot name a file (letters, digits, '.', '_', '-' only)")
    target = submit_dir / f"{results.run_id}.json"
    try:
        submit_dir.mkdir(parents=True, exist_ok=True)
        save(results, target)
    except OSError as exc:
        raise SubmitError(f"{submit_dir}: cannot write the submission: {exc.strerror or exc}") from None
    return target
