"""Plausibility of a results document: every number finite and within the bounds its field declares, every
distribution ordered, and every derived field equal to what it derives from.

`check_numbers` walks the parsed document (so it sees numbers in any section, known or not); a number's bounds are
those of the Metric declared on the results field of its name (results.metrics). `inconsistent` checks the derived
fields of a validated run (`DERIVED` lists them).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from feedtax.results.metrics import metrics_by_name

if TYPE_CHECKING:
    from feedtax.results.schema import Results

INT64 = (-(1 << 63), (1 << 63) - 1)  # DuckDB BIGINT: a larger integer cannot be stored
REL = 1e-6  # a derived field may differ from its sources by rounding in whatever wrote the file, no more
_DIST_KEYS = frozenset(("median", "q1", "q3", "min", "max", "mean", "stdev", "n"))
_NUMBER_TYPES = frozenset((int, float))


@functools.cache
def _rule(name: str) -> tuple[float, float, str] | None:
    """(low, high, why) bounding every number named `name`, or None: the bounds its results field declares
    (vocabulary.Metric), applied wherever the name appears in a document."""
    metric = metrics_by_name().get(name)
    if metric is None or metric.low is None or metric.high is None:
        return None
    return metric.low, metric.high, metric.why


def _path(node: tuple | None) -> str:
    parts = []
    while node is not None:
        node, key = node
        parts.append(f"[{key}]" if type(key) is int else f".{key}")
    return "".join(reversed(parts)).lstrip(".")


@functools.cache
def _rules() -> dict[str, tuple[float, float, str]]:
    """Every bounded name's rule (_rule), as one dict the walk looks names up in."""
    return {name: rule for name in metrics_by_name() if (rule := _rule(name)) is not None}


@dataclass
class Survey:
    """One walk over a parsed document: its number problems by path (non-finite; out of bounds, out of the 64-bit
    range or inconsistent distributions), and how many keys its objects hold and how deeply it nests (for the reader's
    duplicate-key and depth checks)."""

    non_finite: list[str]
    problems: list[str]
    keys: int
    depth: int


def survey(doc: dict | list) -> Survey:
    """Walk every value of the document once, iteratively (nesting cannot exhaust the stack); paths are only spelled
    out for problems."""
    bad: list[str] = []
    problems: list[str] = []
    lo64, hi64 = INT64
    rules = _rules()
    keys = deepest = 0

    def number(node: tuple, name: str, v: float | int) -> None:
        if type(v) is float and v - v != 0:  # NaN or +-inf
            spelled = "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
            bad.append(f"{_path(node)} is {spelled}: "
                       "not a finite number (a measurement that failed or divided by zero)")
        elif type(v) is int and not lo64 <= v <= hi64:
            problems.append(f"{_path(node)} = {str(v)[:20]}... "
                            "is out of the 64-bit range: no count or size is that large")
        else:
            rule = rules.get(name)
            if rule is not None and not rule[0] <= v <= rule[1]:
                problems.append(f"{_path(node)} = {v:g} is outside [{rule[0]:g}, {rule[1]:g}]: {rule[2]}")

    stack: list[tuple[tuple | None, str, Any, int]] = [(None, "", doc, 1)]
    while stack:
        node, name, value, depth = stack.pop()
        if depth > deepest:
            deepest = depth
        scalars = True  # a Distribution's own numbers are checked as one (_distribution_problems)
        if type(value) is dict:
            keys += len(value)
            if _DIST_KEYS <= value.keys():
                b, p = _distribution_problems(node, name, value)
                bad += b
                problems += p
                scalars = False
            items = value.items()
        else:
            items = enumerate(value)
        for k, v in items:
            t = type(v)
            if t is float or t is int:
                if scalars:
                    key = k if type(k) is str else name  # list items go by the list's name
                    rule = rules.get(key)
                    if rule is None:
                        if v - v != 0 if t is float else not lo64 <= v <= hi64:
                            number((node, k), key, v)
                    elif not rule[0] <= v <= rule[1] or (t is int and not lo64 <= v <= hi64):  # NaN fails the bounds
                        number((node, k), key, v)
                elif t is int and not lo64 <= v <= hi64:  # a Distribution's n, say: DuckDB could not store it
                    number((node, k), name, v)
            elif t is dict or t is list:
                stack.append(((node, k), k if type(k) is str else name, v, depth + 1))
    return Survey(sorted(bad), sorted(problems), keys, deepest)


def check_numbers(doc: dict) -> tuple[list[str], list[str]]:
    """(non-finite numbers, values outside their declared bounds or the 64-bit range or inconsistent
    distributions), by path."""
    found = survey(doc)
    return found.non_finite, found.problems


def implausible(doc: dict) -> list[str]:
    """Every number problem of a document (non-finite, out of bounds, inconsistent), by path."""
    bad, problems = check_numbers(doc)
    return bad + problems


def _distribution_problems(node: tuple | None, name: str, d: dict) -> tuple[list[str], list[str]]:
    """(non-finite, inconsistent or out of bounds) for one Distribution: its statistics must be ordered and finite,
    its iqr q3 - q1, and its whole min..max range within the bounds of the field it measures."""
    stats = [d["min"], d["q1"], d["median"], d["q3"], d["max"], d["mean"], d["stdev"]]
    if not set(map(type, stats)) <= _NUMBER_TYPES:
        return [], [f"{_path(node)}: a statistic is not a number"]
    iqr = d.get("iqr", 0.0)
    if not all(map(math.isfinite, stats)) or (type(iqr) in _NUMBER_TYPES and not math.isfinite(iqr)):
        return [f"{_path(node)}: a statistic is NaN or infinite: not a finite number"], []
    lo_, q1, med, q3, hi_, mean, sd = stats
    out = []
    tol = 1e-9 * max(abs(lo_), abs(hi_), 1e-300)
    if not (lo_ - tol <= q1 <= med + tol and med - tol <= q3 <= hi_ + tol and q1 <= q3 + tol):
        out.append(f"{_path(node)}: min <= q1 <= median <= q3 <= max does not hold")
    if sd < 0 or type(d["n"]) is not int or d["n"] < 1 or not lo_ - tol <= mean <= hi_ + tol:
        out.append(f"{_path(node)}: negative stdev, n < 1 or mean outside min..max")
    if type(d.get("iqr")) in (int, float) and abs(d["iqr"] - (q3 - q1)) > tol + 1e-9 * abs(q3 - q1):
        out.append(f"{_path(node)}: iqr = {d['iqr']:g} is not q3 - q1 = {q3 - q1:g}")
    rule = _rule(name)
    if rule and not (rule[0] <= lo_ and hi_ <= rule[1]):
        out.append(f"{_path(node)} spans {lo_:g}..{hi_:g}, outside [{rule[0]:g}, {rule[1]:g}]: {rule[2]}")
    return [], out


# --- derived fields ----------------------------------------------------------------------------------------------
# Each derived field of the schema and what it derives from (docs/results-schema.md repeats the list).
DERIVED = (
    "formats[].bytes_per_sample = bytes_on_disk / n_samples",
    "formats[].compression_ratio = raw_bytes_per_sample / bytes_per_sample",
    "formats[]: n_shards <= n_samples <= config.samples_per_track",
    "config: repeats, samples_per_track and samples_per_shard >= 1 where formats were measured",
    "every Distribution: iqr = q3 - q1",
    "loader rows (loader[], pipeline.rows[], disk_tiers rows) and ranks: feeding_tax = 1 - au",
    "the same rows: au_ci95 low <= high, feeding_tax_ci95 = (1 - au_ci95 high, 1 - au_ci95 low)",
    "feeding.summaries[].transport: ipc_s_per_batch = worker_s_per_batch - in_process_s_per_batch",
    "feeding.loader_overhead[]: ratio = loader / decode, amortized_ratio = amortized loader / decode",
    "model_validation[].error_pp = 100 x (predicted_feeding_tax - measured_feeding_tax)",
    "gravity.tiers[].sneakernet_s = write_s + ship_s + read_s",
    "selection.rows[]: kept_samples <= pool_samples",
    "host: cpu_physical_cores and cpu_affinity_cores <= cpu_logical_cores",
    "disk: read_latency_p50_s <= read_latency_p99_s",
)


def _differs(value: float, source: float) -> bool:
    return abs(value - source) > REL * max(abs(value), abs(source)) + 1e-12


def _rows(res: Results) -> list[tuple[str, Any]]:
    """(path, row) of every feeding measurement of a run: sweep rows, pipeline rows and ranks, disk-tier rows."""
    out: list[tuple[str, Any]] = [(f"loader[{i}]", r) for i, r in enumerate(res.loader)]
    if res.pipeline is not None:
        out += [(f"pipeline.rows[{i}]", r) for i, r in enumerate(res.pipeline.rows)]
        out += [(f"pipeline.ranks[{i}].ranks[{j}]", r) for i, p in enumerate(res.pipeline.ranks)
                for j, r in enumerate(p.ranks)]
    if res.disk_tiers is not None:
        out += [(f"disk_tiers.tiers[{i}].rows[{j}]", r) for i, t in enumerate(res.disk_tiers.tiers)
                for j, r in enumerate(t.rows)]
    return out


def _feeding_problems(res: Results) -> list[str]:
    out = []
    for where, r in _rows(res):
        if abs(r.feeding_tax - (1 - r.au)) > 1e-9:
            out.append(f"{where}: feeding_tax = {r.feeding_tax:g} is not 1 - au = {1 - r.au:g}")
        au_ci, tax_ci = getattr(r, "au_ci95", None), getattr(r, "feeding_tax_ci95", None)
        if au_ci is not None and au_ci[0] > au_ci[1]:
            out.append(f"{where}: au_ci95 = ({au_ci[0]:g}, {au_ci[1]:g}) has its low end above its high end")
        if au_ci is not None and tax_ci is not None and (abs(tax_ci[0] - (1 - au_ci[1])) > 1e-9
                                                         or abs(tax_ci[1] - (1 - au_ci[0])) > 1e-9):
            out.append(f"{where}: feeding_tax_ci95 = ({tax_ci[0]:g}, {tax_ci[1]:g}) is not 1 - au_ci95's ends "
                       f"({1 - au_ci[1]:g}, {1 - au_ci[0]:g})")
    for i, s in enumerate(res.feeding.summaries if res.feeding else []):
        t = s.transport
        if t is None or t.ipc_s_per_batch is None or t.worker_s_per_batch is None:
            continue
        handover = t.worker_s_per_batch - t.in_process_s_per_batch
        if abs(t.ipc_s_per_batch - handover) > 1e-9 + REL * t.worker_s_per_batch:
            out.append(f"feeding.summaries[{i}].transport: ipc_s_per_batch = {t.ipc_s_per_batch:g} is not "
                       f"worker_s_per_batch - in_process_s_per_batch")
    for i, o in enumerate(res.feeding.loader_overhead if res.feeding else []):
        for name, ratio, loader in (("ratio", o.ratio, o.loader_samples_per_s),
                                    ("amortized_ratio", o.amortized_ratio, o.amortized_loader_samples_per_s)):
            if o.decode_samples_per_s > 0 and _differs(ratio, loader / o.decode_samples_per_s):
                out.append(f"feeding.loader_overhead[{i}].{name} = {ratio:g} is not the loader's rate over the "
                           f"decode rate ({loader / o.decode_samples_per_s:g})")
    return out


def _format_problems(res: Results) -> list[str]:
    out = []
    c = res.config
    if res.formats:
        out += [f"config.{k} = {v}: a run that measured formats has at least 1" for k, v in (
            ("repeats", c.repeats), ("samples_per_track", c.samples_per_track),
            ("samples_per_shard", c.samples_per_shard)) if v < 1]
    for i, f in enumerate(res.formats):
        if f.n_samples > 0 and _differs(f.bytes_per_sample, f.bytes_on_disk / f.n_samples):
            out.append(f"formats[{i}].bytes_per_sample = {f.bytes_per_sample:g} is not bytes_on_disk / n_samples "
                       f"= {f.bytes_on_disk / f.n_samples:g}")
        if f.bytes_per_sample > 0 and _differs(f.compression_ratio, f.raw_bytes_per_sample / f.bytes_per_sample):
            out.append(f"formats[{i}].compression_ratio = {f.compression_ratio:g} is not raw_bytes_per_sample / "
                       f"bytes_per_sample = {f.raw_bytes_per_sample / f.bytes_per_sample:g}")
        if f.n_shards > f.n_samples or 0 < c.samples_per_track < f.n_samples:
            out.append(f"formats[{i}]: n_shards = {f.n_shards} <= n_samples = {f.n_samples} <= "
                       f"config.samples_per_track = {c.samples_per_track} does not hold")
    return out


def _other_problems(res: Results) -> list[str]:
    out = []
    for i, v in enumerate(res.model_validation):
        if abs(v.error_pp - 100 * (v.predicted_feeding_tax - v.measured_feeding_tax)) > 1e-6:
            out.append(f"model_validation[{i}].error_pp = {v.error_pp:g} is not 100 x (predicted - measured) = "
                       f"{100 * (v.predicted_feeding_tax - v.measured_feeding_tax):g}")
    for i, t in enumerate(res.gravity.tiers if res.gravity else []):
        if _differs(t.sneakernet_s, t.write_s + t.ship_s + t.read_s):
            out.append(f"gravity.tiers[{i}].sneakernet_s = {t.sneakernet_s:g} is not write_s + ship_s + read_s")
    for i, r in enumerate(res.selection.rows if res.selection else []):
        if r.kept_samples > r.pool_samples:
            out.append(f"selection.rows[{i}]: kept_samples = {r.kept_samples} exceeds pool_samples = {r.pool_samples}")
    h = res.host
    for name in ("cpu_physical_cores", "cpu_affinity_cores"):
        if (getattr(h, name) or 0) > h.cpu_logical_cores:
            out.append(f"host.{name} = {getattr(h, name)} exceeds cpu_logical_cores = {h.cpu_logical_cores}")
    if res.disk is not None and res.disk.read_latency_p50_s > res.disk.read_latency_p99_s:
        out.append(f"disk.read_latency_p50_s = {res.disk.read_latency_p50_s:g} exceeds read_latency_p99_s = "
                   f"{res.disk.read_latency_p99_s:g}")
    return out


def inconsistent(res: Results) -> list[str]:
    """Every derived field of a validated run that disagrees with what it derives from (DERIVED), by path."""
    return _format_problems(res) + _feeding_problems(res) + _other_problems(res)


__all__ = ["DERIVED", "INT64", "Survey", "check_numbers", "implausible", "inconsistent", "survey"]
