"""Merge N runs of one profile on one host into one results document (`feedtax run --repeat N`), so the regression
gate tests each metric against the spread BETWEEN runs, not only the spread within one.

Why each metric's Distribution over the N runs' medians, with n = N (the run as the unit of repetition, as asv and
pyperf measure in several processes because one process's repeats miss the variation between processes): a run's
repeats are seconds apart and share that run's machine state (its neighbours, page cache, clocks), so they vary less
than runs do; on this project's VM single runs of unchanged code failed a 10% gate in 97% of comparisons (docs/ci.md).
Pooling every repeat of every run (within + between variance, n = N x repeats) would still count repeats of one run
as independent and understate the standard error; the median of each run is one independent observation of the
metric, its spread over the runs the variation a CI gate must tolerate, and the median of medians resists one run on
a busy moment. A single value (a loader row's samples_per_s) gets the same treatment: the row holds the median over
the runs and `merged.spreads` its Distribution over them, which compare tests like any other (but not the totals,
TOTALS).

What is not compared (settings, counts, lists, the host, the projections) is the first run's; derived fields are
recomputed from what they derive from; every interval (`*_ci95`) becomes the union of the runs' intervals.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Sequence
from typing import Any

from feedtax.classroom.compare import SKIP_SECTIONS, _key, compared, metrics, unlike
from feedtax.results.io import new_run_id
from feedtax.results.metrics import metrics_by_name
from feedtax.results.plausible import inconsistent
from feedtax.results.schema import Merged, Results
from feedtax.stats import summarize

_DIST = frozenset(("median", "q1", "q3", "mean", "stdev", "n", "unit"))
# Totals over however long a run chose to measure (a sweep point's steps end when its AU's interval is narrow enough,
# or at a cap; the disk probe stops at its budget): their change between runs says how long each measured, not how fast
# it fed, so they get no spread and stay untested, as in a single run. Per-step and per-batch figures, rates and
# shares are tested.
TOTALS = frozenset(("wait_s", "compute_s", "wall_s", "elapsed_s"))


class MergeError(ValueError):
    """Runs that cannot be merged (not like with like, incomplete, already merged, one run twice): one line."""


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _median(values: list) -> int | float:
    """The median of one field over the runs; an integer field stays an integer (the lower median)."""
    if all(isinstance(v, int) for v in values):
        return statistics.median_low(values)
    return float(statistics.median(values))


def _interval(values: list) -> bool:
    return all(isinstance(v, list) and len(v) == 2 and all(map(_number, v)) for v in values)


def _node(values: list[Any], name: str) -> Any:
    """One field over the runs (values: the runs that hold it, first run first): a Distribution over their medians,
    a nested record field by field, a compared number's median, an interval's union; else the first run's."""
    first = values[0]
    if isinstance(first, dict) and all(isinstance(v, dict) for v in values):
        if _DIST <= first.keys() and all(_DIST <= v.keys() for v in values):
            return summarize([v["median"] for v in values], first["unit"]).model_dump(mode="json")
        out = dict(first)
        for key in first:
            held = [v[key] for v in values if key in v]
            out[key] = _node(held, key)
        return out
    if _number(first) and all(map(_number, values)) and compared(name) is not None:
        return _median(values)
    if name.endswith("_ci95") and _interval(values):
        return [min(v[0] for v in values), max(v[1] for v in values)]
    return copy.deepcopy(first)


def _keyed(rows: list[Any]) -> dict[str, dict]:
    """A list section's rows by the key compare gives them (track, format, loader, workers, ...; a key seen before
    gets its position, as compare.metrics names it)."""
    out: dict[str, dict] = {}
    for i, row in enumerate(rows):
        if isinstance(row, dict):
            key = _key(row, str(i))
            out[f"{key} #{i}" if key in out else key] = row
    return out


def _rows(sections: list[Any], section: str) -> list[dict]:
    """A list section merged row by row, rows matched by their keys; a row only some runs hold is merged over those
    runs; a row that is not a record is the first run's."""
    keyed = [_keyed(rows) for rows in sections]
    first = {id(row): key for key, row in keyed[0].items()}
    return [_node([k[first[id(row)]] for k in keyed if first[id(row)] in k], section) if id(row) in first
            else copy.deepcopy(row) for row in sections[0]]


def _derive(doc: dict) -> None:
    """Recompute the derived fields (results.plausible.DERIVED) of the merged rows from what they derive from."""
    for row in doc.get("loader") or []:
        row["feeding_tax"] = 1.0 - row["au"]
    for row in doc.get("formats") or []:
        row["bytes_per_sample"] = row["bytes_on_disk"] / row["n_samples"]
        row["compression_ratio"] = row["raw_bytes_per_sample"] / row["bytes_per_sample"]
    for row in doc.get("model_validation") or []:
        row["error_pp"] = 100.0 * (row["predicted_feeding_tax"] - row["measured_feeding_tax"])


def _spreads(runs: Sequence[Results]) -> dict[str, Any]:
    """Metric -> Distribution over the runs, for each compared metric with a better side that a run holds as one
    number (compare.metrics' names), totals (TOTALS) left out."""
    declared = metrics_by_name()
    values: dict[str, list[float]] = {}
    for run in runs:
        for name, (_, _, field, value) in metrics(run).items():
            metric = declared.get(field.rsplit(".", 1)[-1])
            if (_number(value) and metric is not None and metric.better is not None
                    and field.rsplit(".", 1)[-1] not in TOTALS):
                values.setdefault(name, []).append(float(value))
    declared_unit = {name: declared[name.rsplit(".", 1)[-1]].unit for name in values}
    return {name: summarize(v, declared_unit[name]) for name, v in values.items()}


def check(runs: Sequence[Results]) -> None:
    """MergeError unless the runs can be merged: at least one, each complete and not itself a merge, each once, and
    all like with like as the regression gate means it (compare.unlike(strict=True): profile, sizes, tracks,
    formats, host class)."""
    if not runs:
        raise MergeError("no runs to merge")
    for r in runs:
        if r.merged is not None:
            raise MergeError(f"run {r.run_id} already merges {r.merged.runs} runs: merge the runs themselves")
    if len({r.run_id for r in runs}) < len(runs):
        raise MergeError("a run is given twice: each run is one observation of every metric")
    for r in runs:
        if r.status != "complete":
            raise MergeError(f"run {r.run_id} is {r.status}, not complete")
    for r in runs[1:]:
        if why := unlike(runs[0], r, strict=True):
            raise MergeError(f"runs {runs[0].run_id} and {r.run_id} are not like with like: {'; '.join(why)}")


def merge(runs: Sequence[Results]) -> Results:
    """One results document for N runs of one workload (see the module's doc): MergeError where they cannot be."""
    check(runs)
    docs = [r.model_dump(mode="json") for r in runs]
    out = copy.deepcopy(docs[0])
    for section in Results.model_fields:
        if section in SKIP_SECTIONS or section == "merged" or docs[0].get(section) is None:
            continue
        held = [d[section] for d in docs if d.get(section) is not None]
        out[section] = _rows(held, section) if isinstance(held[0], list) else _node(held, section)
    _derive(out)
    out["run_id"] = new_run_id()
    out["merged"] = Merged(runs=len(runs), run_ids=[r.run_id for r in runs],
                           spreads=_spreads(runs)).model_dump(mode="json")
    merged = Results.model_validate(out)
    if problems := inconsistent(merged):
        raise MergeError(f"the merged runs disagree with themselves: {problems[0]}")
    return merged
