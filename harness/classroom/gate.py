"""A regression gate on compare's rows: pass or fail, for a CI job (`feedtax compare --fail-on-regression PCT`).

A metric fails the gate only when compare judged its change significant (Welch's t-test on both runs' repeats,
feedtax.classroom.compare) *and* it stays significant when every gated metric is tested at once *and* it is in the
direction its declaration says is worse *and* by more than the threshold: a gate that fails on noise, or on a 2% drift
nobody will act on, is soon ignored. Significant changes the other way beyond the threshold are listed as
improvements; everything else is counted as unchanged (noise, no spread to test, within the threshold, or a change
with no better side). Metrics in A only are listed, not failed: the strict like-with-like check
(compare.unlike(strict=True)) refuses runs of other tracks, formats or an incomplete run first.

Why tested at once: the gate asks one question (did anything regress?) of hundreds of metrics, and at p < 0.05 each,
runs of unchanged code fail on some metric or other nearly every time (docs/ci.md: 15 of 20 comparisons of merged
runs). So a change counts only if it survives Benjamini-Hochberg over the gated metrics' p-values at a false discovery
rate of ALPHA: when nothing changed this bounds the chance of any failure at ALPHA (for independent or positively
dependent tests), while a regression that moves many metrics together (a slower decoder: every format's decode rates)
lowers the bar for all of them, which Bonferroni or Holm (p < 0.05 / m, with m in the hundreds) would not.

Plain functions, no CLI: `feedtax compare` uses them, and `feedtax run --baseline` can too. `markdown` is the
summary GitHub's job summary ($GITHUB_STEP_SUMMARY) shows.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from pydantic import BaseModel

from feedtax.classroom.compare import ALPHA, CompareRow

MARKDOWN_ROWS = 100  # regressions and improvements listed in the Markdown summary; the rest counted


class GateError(ValueError):
    """The gate cannot judge as asked (a --metrics glob that names no metric): one line saying why."""


@dataclass(frozen=True)
class Threshold:
    """How much worse fails: a percentage (`10%`: the medians' change is more than 10%) or a factor (`2x`: worse by
    more than a factor of 2 in the metric's worse direction: a rate below half, a time above double)."""

    value: float
    factor: bool = False

    def __str__(self) -> str:
        return f"{self.value:g}{'x' if self.factor else '%'}"


class GateResult(BaseModel):
    """The gate's verdict: what regressed and improved beyond the threshold (worst first), what did not, and why."""

    threshold_pct: float | None = None  # --fail-on-regression 10%
    threshold_factor: float | None = None  # --fail-on-regression 2x
    metric_globs: list[str] = []
    passed: bool
    regressions: list[CompareRow] = []
    improvements: list[CompareRow] = []
    unchanged: int = 0  # noise + not_together + no_spread + within_threshold + no_better_side
    tested: int = 0  # gated metrics with a p-value: the family tested at once
    noise: int = 0
    not_together: int = 0  # significant alone, not among every gated metric tested at once (Benjamini-Hochberg)
    no_spread: int = 0
    within_threshold: int = 0
    no_better_side: int = 0
    only_a: list[str] = []  # gated metrics B lacks: listed, not failed
    only_b: int = 0
    not_gated: int = 0  # metrics no --metrics glob matched


def split_globs(values: Iterable[str] | None) -> list[str]:
    """Globs from repeated or comma-separated options, in order, once each. A comma inside brackets is part of the
    glob: metric names hold them (`formats[cloud, csv].decode_samples_per_s_cold`)."""
    out: list[str] = []
    for value in values or ():
        depth, start = 0, 0
        for i, c in enumerate(value):
            if c == "[":
                depth += 1
            elif c == "]" and depth:
                depth -= 1
            elif c == "," and not depth:
                out.append(value[start:i].strip())
                start = i + 1
        out.append(value[start:].strip())  # the last glob, or one with a bracket left open
    return list(dict.fromkeys(g for g in out if g))


def matches(metric: str, glob: str) -> bool:
    """fnmatch (case-sensitive) of a metric name as compare prints it: `*` and `?` are wildcards; `[` and `]` are
    themselves, as in the names (fnmatch would read `[cloud, csv]` as one character of a set)."""
    return fnmatchcase(metric, glob.replace("[", "[[]"))


def factor(row: CompareRow) -> float:
    """How many times larger or smaller B is than A (at least 1): 2 for a rate halved or a time doubled; infinite
    from or to 0, or across a change of sign."""
    a, b = row.a, row.b
    if a is None or b is None or a == 0 or b == 0 or (a > 0) != (b > 0):
        return math.inf
    return max(b / a, a / b)


def _beyond(row: CompareRow, threshold: Threshold) -> bool:
    """A significant change larger than the threshold; a change from 0 (no percentage) is larger than any."""
    if threshold.factor:
        return factor(row) > threshold.value
    return row.change_pct is None or abs(row.change_pct) > threshold.value


def together(rows: list[CompareRow], alpha: float = ALPHA) -> set[int]:
    """The ids of the rows whose changes are significant when all of them are tested at once: Benjamini-Hochberg's
    step-up over their p-values (the k smallest, for the largest k with p_(k) <= alpha * k / m). A row compare judged
    significant without a p-value counts as p = 0."""
    tested = sorted((r for r in rows if r.p_value is not None or r.verdict == "significant"),
                    key=lambda r: r.p_value or 0.0)
    m = len(tested)
    k = max((k for k, r in enumerate(tested, 1) if (r.p_value or 0.0) <= alpha * k / m), default=0)
    return {id(r) for r in tested[:k]}


def _severity(row: CompareRow) -> float:
    return math.inf if row.change_pct is None else abs(row.change_pct)


def gate(rows: list[CompareRow], threshold: float | Threshold, metric_globs: Iterable[str] | None = None) -> GateResult:
    """Judge compare's rows: fail when any gated metric is significantly worse by more than the threshold (a number:
    percent). metric_globs (see `matches`) limits the gate to the metrics they match; GateError when one matches
    none (a typo would otherwise gate nothing and pass)."""
    threshold = threshold if isinstance(threshold, Threshold) else Threshold(float(threshold))
    globs = list(metric_globs or ())
    unmatched = [g for g in globs if not any(matches(r.metric, g) for r in rows)]
    if unmatched:
        raise GateError(f"--metrics {', '.join(unmatched)}: matches no metric of either run (names as `feedtax "
                        "compare --all` prints them; * and ? are wildcards)")
    result = GateResult(threshold_pct=None if threshold.factor else threshold.value,
                        threshold_factor=threshold.value if threshold.factor else None, metric_globs=globs, passed=True)
    gated = [r for r in rows if not globs or any(matches(r.metric, g) for g in globs)]
    family = [r for r in gated if r.verdict in ("significant", "noise")]
    kept = together(family)
    result.tested, result.not_gated = len(family), len(rows) - len(gated)
    for r in gated:
        if r.verdict == "only_a":
            result.only_a.append(r.metric)
        elif r.verdict == "only_b":
            result.only_b += 1
        elif r.verdict in ("noise", "no_spread"):
            setattr(result, r.verdict, getattr(result, r.verdict) + 1)
        elif id(r) not in kept:
            result.not_together += 1
        elif r.direction not in ("better", "worse"):
            result.no_better_side += 1
        elif not _beyond(r, threshold):
            result.within_threshold += 1
        else:
            (result.regressions if r.direction == "worse" else result.improvements).append(r)
    worst = factor if threshold.factor else _severity  # in the threshold's own terms
    result.regressions.sort(key=worst, reverse=True)
    result.improvements.sort(key=worst, reverse=True)
    result.unchanged = (result.noise + result.not_together + result.no_spread + result.within_threshold
                        + result.no_better_side)
    result.passed = not result.regressions
    return result


# --- the Markdown summary --------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md_text(text: object) -> str:
    """Text from a results file (a metric name, a run_id) as Markdown that shows it as it is, in a table cell or a
    heading: one line (control and format characters, newlines, escape sequences and bidi overrides alike, written as
    their Python escapes: `\\n`), HTML's `&<>` as entities, and what Markdown or a GFM table reads (backslash,
    backtick, `*_[]~`, the pipe) escaped with a backslash."""
    one = "".join(ascii(c)[1:-1] if unicodedata.category(c) in ("Cc", "Cf") else c for c in str(text))
    one = one.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", one)


def pct(x: float) -> str:
    """A threshold or change as people write it: 10%, 2.5%."""
    return f"{x:g}%"


def threshold_of(result: GateResult) -> Threshold:
    if result.threshold_factor is not None:
        return Threshold(result.threshold_factor, factor=True)
    return Threshold(result.threshold_pct or 0.0)


def change(row: CompareRow) -> str:
    """A row's change for a summary: +12.3%, or `from 0` where A was 0 (no percentage)."""
    return "from 0" if row.change_pct is None else f"{row.change_pct:+.1f}%"


def number(x: float | None) -> str:
    return "" if x is None else f"{x:,.4g}"


def finding(result: GateResult) -> str:
    """What the gate found, in words: `2 metrics are significantly worse in B than in A by more than 10%`."""
    n = len(result.regressions)
    what = "no metric is" if not n else "1 metric is" if n == 1 else f"{n} metrics are"
    return f"{what} significantly worse in B than in A by more than {threshold_of(result)}"


def verdict_line(result: GateResult) -> str:
    """The verdict and what it rests on, without run ids: `fail at 10%: 2 metrics are significantly worse ...`."""
    return f"{'pass' if result.passed else 'fail'} at {threshold_of(result)}: {finding(result)}"


def counts_line(result: GateResult) -> str:
    """The unchanged count and its parts, then what was not gated (plain text: no file text in it)."""
    line = (f"{result.unchanged} unchanged: {result.noise} noise, {result.not_together} significant alone but not "
            f"among the {result.tested} tested together, {result.no_spread} without spread (not tested), "
            f"{result.within_threshold} within {threshold_of(result)}, {result.no_better_side} with no better side")
    extra = [f"{len(result.only_a)} only in A (not gated)" if result.only_a else "",
             f"{result.only_b} only in B" if result.only_b else "",
             f"{result.not_gated} not matched by --metrics" if result.not_gated else ""]
    return "; ".join([line, *filter(None, extra)]) + "."


def listed(result: GateResult, limit: int) -> tuple[list[tuple[str, CompareRow]], int]:
    """Regressions first, then improvements, as (kind, row), at most limit of them; and how many more there are."""
    both = [("regression", r) for r in result.regressions] + [("improvement", r) for r in result.improvements]
    return both[:limit], max(0, len(both) - limit)


def markdown(result: GateResult, run_a: str, run_b: str, *, limit: int = MARKDOWN_ROWS) -> str:
    """The gate as a short Markdown summary: a heading with the verdict, the threshold and both run ids; a GFM table
    of regressions, then improvements; one line counting the unchanged metrics."""
    mark, word = ("✅", "pass") if result.passed else ("❌", "fail")
    lines = [f"### {mark} feedtax regression gate: {word} at {threshold_of(result)}, {md_text(run_a)} (A) -> "
             f"{md_text(run_b)} (B)", "",
             f"{finding(result)[0].upper()}{finding(result)[1:]}. Medians; p from Welch's t-test on the repeats (in a "
             f"merge of runs, on the runs' medians), significant at a false discovery rate of {pct(100 * ALPHA)} over "
             f"the {result.tested} metrics tested together (Benjamini-Hochberg).", ""]
    if result.metric_globs:
        lines += [f"Gated metrics: {', '.join(md_text(g) for g in result.metric_globs)}", ""]
    rows, more = listed(result, limit)
    if rows:
        lines += ["| | metric | A | B | unit | change | p |", "|---|---|---:|---:|---|---:|---:|"]
        lines += [f"| {kind} | {md_text(r.metric)} | {number(r.a)} | {number(r.b)} | {md_text(r.unit or '')} | "
                  f"{change(r)} | {'' if r.p_value is None else f'{r.p_value:.3g}'} |" for kind, r in rows]
        lines += ["", f"... and {more} more (`feedtax compare --json` lists every one)", ""] if more else [""]
    else:
        lines += [f"No metric changed significantly by more than {threshold_of(result)}.", ""]
    lines.append(counts_line(result))
    return "\n".join(lines) + "\n"


def markdown_error(message: str) -> str:
    """The Markdown summary of a gate that could not judge (unusable input, unlike runs): the reason, escaped."""
    return f"### ⚠️ feedtax regression gate: error\n\n{md_text(message)}\n"
