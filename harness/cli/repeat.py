"""What `feedtax run` adds for CI: `--repeat N` (the profile measured N times, each run kept as OUT/repeats/run-K.json
and OUT/results.json their merge, rewritten as each one completes) and `--baseline FILE --fail-on-regression PCT`
(the regression gate of `feedtax compare`, on the run just measured; the baseline is read and checked before anything
is measured, so a typo costs no run).

Only typer is imported here; the runner, the merge and the gate load inside the functions.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import typer

from feedtax.cli.classroom import gate_summary, refuse, write_markdown

REPEATS = "repeats"  # OUT/repeats/run-K.json: each repeat's own results
KEPT_REPEATS = "repeats.prev"  # the previous run's, as results.prev.json keeps its results


def set_aside(out: Path, say) -> None:
    """The previous run's OUT/repeats, kept as OUT/repeats.prev (replacing an older one) beside results.prev.json, so
    a new run's repeats are never mixed with an older run's; the shards a killed repeat left are removed first."""
    from feedtax.bench import outdir

    repeats, kept = out / REPEATS, out / KEPT_REPEATS
    if not repeats.exists():
        return
    for folder in sorted(p for p in repeats.glob("run-*") if p.is_dir()):
        outdir.remove_stale(folder, say)
    shutil.rmtree(kept, ignore_errors=True)
    os.replace(repeats, kept)
    say(f"kept the previous run's repeats as {kept}")


class _Prefixed:
    """The runner's progress, each stage named with the repeat it belongs to: `repeat 2/3: format costs`."""

    def __init__(self, inner, prefix: str) -> None:
        self.inner, self.prefix = inner, prefix

    def start(self, description: str, total: int) -> None:
        self.inner.start(self.prefix + description, total)

    def advance(self) -> None:
        self.inner.advance()


def measure_repeats(prof, out: Path, progress, repeat: int, say, **options):
    """Run the profile `repeat` times, each in OUT/repeats/run-K/ (its own shards, lock and results), keep each
    repeat's results as OUT/repeats/run-K.json and, after each, write the merge of those done so far
    (feedtax.classroom.merge) as OUT/results.json. A repeat that stops leaves its partial results where it ran and
    says so; the merge of the repeats before it stays in OUT/results.json."""
    from feedtax import results
    from feedtax.bench import runner
    from feedtax.classroom.merge import merge

    repeats = out / REPEATS
    done = []
    for k in range(1, repeat + 1):
        where = repeats / f"run-{k}"
        try:
            done.append(runner.run(prof, where, progress=_Prefixed(progress, f"repeat {k}/{repeat}: "), say=say,
                                   **options))
        except BaseException:
            merged = f"; {out / 'results.json'} merges the {k - 1} before it" if k > 1 else ""
            try:  # the terminal may be gone (SIGHUP): the exit code still says what happened
                say(f"repeat {k}/{repeat} stopped: what it measured is in {where / 'results.json'}{merged}")
            except OSError:
                pass
            raise
        os.replace(where / "results.json", repeats / f"run-{k}.json")
        try:
            where.rmdir()  # empty unless --keep-data kept its shards
        except OSError:
            pass
        res = merge(done)
        results.save(res, out / "results.json")
    return res


def planned(prof, out: Path, tracks: list[str], formats: list[str], seed: int, repeat: int):
    """The run about to be measured, as far as it is known before measuring (profile, sizes, tracks, formats, this
    host, merged or not), for the like-with-like check against a baseline."""
    from feedtax.bench import runner
    from feedtax.results import Merged

    res = runner._new_results(prof, out, out / "data", tracks, formats, seed)
    res.status = "complete"
    res.merged = Merged(runs=repeat, run_ids=[]) if repeat > 1 else None
    return res


def check_baseline(path: Path, markdown: Path | None, upcoming, metric_globs: list[str] | None):
    """The baseline, read and checked before measuring: readable and valid, like with like the run about to be
    measured (`upcoming`), and every --metrics glob naming one of its metrics; else one line, exit 2 (and the Markdown
    summary says why)."""
    from feedtax import results
    from feedtax.classroom import compare, gate

    try:
        base = results.load(path)
    except results.ResultsFileError as exc:
        raise refuse(f"--baseline {exc}", markdown) from None
    if why := compare.unlike(base, upcoming, strict=True):
        raise refuse(f"--baseline {path} is not like with like this run ({'; '.join(why)}): measure the baseline with "
                     "the same profile, tracks, formats and --repeat on this host class (docs/ci.md)", markdown)
    try:
        gate.gate(compare.compare(base, base), 0, gate.split_globs(metric_globs))
    except gate.GateError as exc:
        raise refuse(str(exc), markdown) from None
    return base


def gate_run(base, path: Path, res, threshold, metric_globs: list[str] | None, markdown: Path | None,
             console) -> None:
    """The gate on the run just measured against the baseline, as `feedtax compare --fail-on-regression` judges:
    its summary on the console (and as Markdown), exit 1 on a regression, 2 when it cannot judge."""
    from feedtax.classroom import compare, gate

    if why := compare.unlike(base, res, strict=True):
        raise refuse(f"--baseline {path} and this run are not like with like ({'; '.join(why)}): the gate cannot "
                     "judge them", markdown)
    try:
        verdict = gate.gate(compare.compare(base, res), threshold, gate.split_globs(metric_globs))
    except gate.GateError as exc:
        raise refuse(str(exc), markdown) from None
    gate_summary(console, verdict, base.run_id, res.run_id)
    if markdown is not None:
        write_markdown(markdown, gate.markdown(verdict, base.run_id, res.run_id))
    if not verdict.passed:
        raise typer.Exit(1)
