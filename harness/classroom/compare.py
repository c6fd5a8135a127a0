"""Compare two runs metric by metric, and say which changes are real given both runs' spreads.

pyperf's approach (`pyperf compare_to`): a two-sample t-test on the repeats, and a change is only
reported as significant when the test says so. We keep each distribution's summary rather than
its values, so the test is Welch's t-test (unequal variances) from mean, stdev and n, with the
Student t distribution computed here (no scipy). The rule, applied per metric:

  significant  both runs have n >= 2 repeats, two-sided p < ALPHA (0.05) and the means differ by
               at least MIN_CHANGE (1%): with many repeats a sub-1% shift (clock, thermals,
               background load) can pass the test and still mean nothing (pyperf's --min-speed).
  noise        tested and not significant by that rule.
  no_spread    no distribution to test (a single value such as bytes per sample, or n < 2):
               the change is shown, no verdict on it.
  only_a/only_b  the metric exists in one run only (another format, track or section).

What is a metric, and which way is better, is read from the results schema's declarations
(feedtax.results.metrics): a field with a direction, or a difference in percentage points (no better side).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel

from feedtax.results.metrics import metrics_by_name
from feedtax.results.schema import Results
from feedtax.vocabulary import PERCENTAGE_POINTS, Metric

ALPHA = 0.05
MIN_CHANGE = 0.01
# Sections that are settings, provenance or model outputs computed from the measured ones.
SKIP_SECTIONS = {"host", "config", "stages", "energy", "energy_ledger", "projections", "gravity", "assumptions",
                 "schema_version", "run_id", "profile", "created_utc", "status", "merged"}
KEY_FIELDS = ("track", "format", "loader", "num_workers", "batch_size", "scenario", "label_quality", "filter_ratio",
              "model", "name")
_DIST = frozenset(("median", "mean", "stdev", "n"))


class CompareRow(BaseModel):
    """One metric in run A and run B: medians, the change, and the verdict."""

    metric: str
    section: str
    key: str
    field: str
    unit: str | None = None
    a: float | None = None
    b: float | None = None
    change_pct: float | None = None
    t: float | None = None
    df: float | None = None
    p_value: float | None = None
    verdict: Literal["significant", "noise", "no_spread", "only_a", "only_b"]
    direction: Literal["better", "worse", "changed"] | None = None
    note: str | None = None


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes 6.4)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with df degrees of freedom."""
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def welch(mean_a: float, sd_a: float, n_a: int, mean_b: float, sd_b: float,
          n_b: int) -> tuple[float, float, float] | None:
    """Welch's t statistic (B - A), Welch-Satterthwaite degrees of freedom and two-sided p; None when untestable
    (fewer than 2 repeats, no spread, or a statistic that is not a finite number)."""
    if n_a < 2 or n_b < 2 or not all(map(math.isfinite, (mean_a, sd_a, mean_b, sd_b))):
        return None
    va, vb = sd_a * sd_a / n_a, sd_b * sd_b / n_b
    se2 = va + vb
    if se2 <= 0.0:
        return None
    t = (mean_b - mean_a) / math.sqrt(se2)
    df = se2 * se2 / (va * va / (n_a - 1) + vb * vb / (n_b - 1))
    return t, df, t_two_sided_p(t, df)


def compared(field: str) -> Metric | None:
    """The declared metric of a field name when compare compares it: one with a better side, or a difference
    in percentage points (shown as "changed"); counts, sizes and settings are not compared."""
    metric = metrics_by_name().get(field)
    if metric is None or (metric.better is None and metric.unit != PERCENTAGE_POINTS.unit):
        return None
    return metric


def _key(row: dict, fallback: str) -> str:
    parts = [f"{row[k]}" if k in ("track", "format") else f"{k}={row[k]}"
             for k in KEY_FIELDS if isinstance(row.get(k), (str, int, float)) and not isinstance(row.get(k), bool)]
    return ", ".join(parts) or fallback


def _leaves(row: dict) -> dict[str, Any]:
    """Metric name -> Distribution dict or number, from one row (nested models by dotted name; lists skipped)."""
    out: dict[str, Any] = {}
    stack: list[tuple[str, Any]] = [("", row)]
    while stack:
        prefix, obj = stack.pop()
        for k, v in obj.items():
            name = k if prefix in ("", "distributions") else f"{prefix}.{k}"
            if isinstance(v, dict) and _DIST <= v.keys():
                out[name] = v  # a distribution beats a bare median of the same name
            elif isinstance(v, dict):
                stack.append((name, v))
            elif isinstance(v, (int, float)) and not isinstance(v, bool) and compared(k) is not None:
                out.setdefault(name, v)
    return out


def metrics(results: Results) -> dict[str, tuple[str, str, str, Any]]:
    """Every comparable metric of a run: id -> (section, row key, field, Distribution dict or number). In a merge of
    runs (`feedtax run --repeat`) a single value is its Distribution over the runs (merged.spreads)."""
    out: dict[str, tuple[str, str, str, Any]] = {}
    for section in type(results).model_fields:
        if section in SKIP_SECTIONS:
            continue
        value = getattr(results, section)
        if isinstance(value, BaseModel):
            rows = [("", value.model_dump())]
        elif isinstance(value, list):
            rows = [(None, v.model_dump()) for v in value if isinstance(v, BaseModel)]
        elif isinstance(value, dict):
            rows = [(str(k), v.model_dump()) for k, v in value.items() if isinstance(v, BaseModel)]
        else:
            continue
        seen: set[str] = set()
        for i, (key, row) in enumerate(rows):
            key = _key(row, str(i)) if key is None else key
            if key in seen:
                key = f"{key} #{i}"
            seen.add(key)
            for name, v in _leaves(row).items():
                out[f"{section}[{key}].{name}" if key else f"{section}.{name}"] = (section, key, name, v)
    for name, spread in (results.merged.spreads if results.merged else {}).items():
        if name in out and not isinstance(out[name][3], dict):  # a merge's single value: its spread over the runs
            out[name] = (*out[name][:3], spread.model_dump())
    return out


def _center(v: Any) -> float:
    return float(v["median"]) if isinstance(v, dict) else float(v)


def _row(metric: str, section: str, key: str, name: str, va: Any, vb: Any) -> CompareRow:
    row = CompareRow(metric=metric, section=section, key=key, field=name, verdict="no_spread")
    row.unit = next((v.get("unit") for v in (va, vb) if isinstance(v, dict)), None)
    if va is None or vb is None:
        row.verdict = "only_b" if va is None else "only_a"
        row.a, row.b = (None if va is None else _center(va)), (None if vb is None else _center(vb))
        return row
    row.a, row.b = _center(va), _center(vb)
    if not (math.isfinite(row.a) and math.isfinite(row.b)):  # results.load refuses these; a caller's own may not
        row.note = "A or B is not a finite number: no change or verdict"
        return row
    if row.a:
        row.change_pct = (row.b - row.a) / abs(row.a) * 100.0
    notes = [f"{w}: unstable ({v.get('note')})" for w, v in (("A", va), ("B", vb))
             if isinstance(v, dict) and v.get("unstable")]
    row.note = "; ".join(notes) or None
    if isinstance(va, dict) and isinstance(vb, dict):
        test = welch(va["mean"], va["stdev"], va["n"], vb["mean"], vb["stdev"], vb["n"])
        if test is not None:
            row.t, row.df, row.p_value = test
            rel = abs(vb["mean"] - va["mean"]) / abs(va["mean"]) if va["mean"] else math.inf
            row.verdict = "significant" if row.p_value < ALPHA and rel >= MIN_CHANGE else "noise"
    if row.verdict == "significant" or (row.verdict == "no_spread" and row.b != row.a):
        metric = metrics_by_name().get(name.rsplit(".", 1)[-1])
        if metric is None or metric.better is None:
            row.direction = "changed"
        else:
            row.direction = "better" if (row.b > row.a) == (metric.better == "higher") else "worse"
    return row


def compare(a: Results, b: Results) -> list[CompareRow]:
    """Per metric of either run: A's and B's median, the change, Welch's t-test and the verdict (see module doc)."""
    ma, mb = metrics(a), metrics(b)
    order = list(ma) + [m for m in mb if m not in ma]
    rows = []
    for m in order:
        section, key, name, _ = ma.get(m) or mb[m]
        rows.append(_row(m, section, key, name, ma.get(m, (None,) * 4)[3], mb.get(m, (None,) * 4)[3]))
    return rows


def host_class(results: Results) -> dict[str, object]:
    """The kind of machine a run measured on, as a CI runner class fixes it: OS family (platform.system, the first
    word of host.os), CPU architecture, usable cores (affinity, else logical) and the accelerators NVML saw (their
    names; none without NVML). Left out on purpose: the kernel, CPU model, memory and filesystem, which change
    within one runner class (a hosted runner's kernel is updated, its pool mixes CPU models); `context` names those."""
    h = results.host
    gpus = sorted(str(g.get("name", "unknown")) for g in h.gpus)
    return {"OS": h.os.split("-", 1)[0], "architecture": h.machine, "usable cores": h.usable_cores,
            "accelerators": ", ".join(gpus) or "none"}


def unlike(a: Results, b: Results, *, strict: bool = False) -> list[str]:
    """Why two runs measured different workloads (another profile, sample sizes or dataset size): their figures are
    not comparable as repeats of one measurement; empty when they are like with like.

    strict (a regression gate) also needs the same tracks and formats (else a metric missing from B would pass
    unjudged), the same host class (host_class: else a slower runner would read as a regression), both runs
    complete (an interrupted run lacks what it did not reach) and both merges of runs or neither (a merge's spread is
    between runs, a run's within itself: one against the other is tested against too narrow a spread)."""
    pairs = [("profile", a.profile, b.profile), ("sample sizes", a.config.sizes, b.config.sizes),
             ("samples per track", a.config.samples_per_track, b.config.samples_per_track)]
    if strict:
        pairs += [("tracks", ",".join(sorted(a.config.tracks)), ",".join(sorted(b.config.tracks))),
                  ("formats", ",".join(sorted(a.config.formats)), ",".join(sorted(b.config.formats)))]
        ha, hb = host_class(a), host_class(b)
        pairs += [(f"host {what}", ha[what], hb[what]) for what in ha]
    out = [f"{what} differs: {x} vs {y}" for what, x, y in pairs if x != y]
    if strict:
        out += [f"run {w} is {r.status}, not complete" for w, r in (("A", a), ("B", b)) if r.status != "complete"]
        if (a.merged is None) != (b.merged is None):  # one tested against the spread between runs, one within a run
            out.append(f"merged runs differs: {_runs(a)} vs {_runs(b)} (gate a --repeat run against a --repeat "
                       "baseline)")
    return out


def _stop(r: Results) -> str | None:
    """The stopping rule a run's sweep points used (config.sweep.stop: --au-ci-pp, --max-steps, --max-s), in words."""
    stop = (r.config.sweep or {}).get("stop")
    if not isinstance(stop, dict):
        return None
    return ", ".join(f"{k} {v:g}" if isinstance(v, int | float) else f"{k} {v}" for k, v in stop.items())


def _runs(r: Results) -> str:
    return "one run" if r.merged is None else f"a merge of {r.merged.runs} runs"


def context(a: Results, b: Results) -> list[str]:
    """What differs between the runs besides the measurements (profile, sizes, machine): read changes with care."""
    notes = []
    pairs = [("profile", a.profile, b.profile), ("sample sizes", a.config.sizes, b.config.sizes),
             ("samples per track", a.config.samples_per_track, b.config.samples_per_track),
             ("CPU", a.host.cpu_model, b.host.cpu_model),
             ("logical cores", a.host.cpu_logical_cores, b.host.cpu_logical_cores),
             ("data filesystem", a.host.data_dir and a.host.data_dir.fs_type,
              b.host.data_dir and b.host.data_dir.fs_type),
             ("feedtax git sha", a.host.git_sha, b.host.git_sha),
             ("the sweep points' stopping rule", _stop(a), _stop(b))]
    for what, x, y in pairs:
        if x != y:
            notes.append(f"{what} differs: {x} vs {y}")
    return notes
