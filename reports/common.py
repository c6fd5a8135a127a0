"""What every report page shares: the stylesheet, a figure as inline SVG, text drawn in a figure as it is, and the HTML
cells and tables."""

from __future__ import annotations

import io
import math
from html import escape

from feedtax.reports.text import visible
from feedtax.results.metrics import metrics_by_name
from feedtax.stats import Distribution

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0;display:block;max-width:100%;overflow-x:auto}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.warn{color:#b00;font-weight:bold}.note{color:#555;font-size:.9em}
ul.warnings{background:#fff8e6;border-left:3px solid #e0a000;padding:.4em 1em .4em 2em;font-size:.85em;color:#6b4500}
figure{margin:1em 0;overflow-x:auto}figure svg{max-width:100%;min-width:720px;height:auto}
dl.glossary dt{font-weight:bold;margin-top:.5em}dl.glossary dd{margin-left:1.5em}.status{padding:.2em .5em;border-radius:4px;background:#eee}
"""  # noqa: E501  (one CSS rule per line reads better than wrapped rules)


class Markup:
    """A table cell that is HTML already (not escaped)."""

    def __init__(self, html: str):
        self.html = html


def svg(fig) -> str:
    """The figure as an inline <svg> element; the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def figure(fig) -> str:
    return f"<figure>{svg(fig)}</figure>"


def plain(text: object) -> str:
    """Text from a results file or the class database (a format, a profile, a filesystem, a note) for a figure's
    label, title, tick or legend, drawn as it is: its dollar signs escaped, so no '$...$' starts matplotlib's mathtext
    (which fails on '$\\frac{$' and sets '$x$' in italics), and its hidden characters visible (reports.text.visible)."""
    return visible(str(text)).replace("$", r"\$")


def dist(d: Distribution) -> str:
    """Median ± half the IQR, with a red ! (its note as the tooltip) when the measurement is unstable."""
    flag = f' <span class="warn" title="{escape(d.note or "")}">!</span>' if d.unstable else ""
    return f"{d.median:,.0f} <span class='note'>±{d.iqr / 2:,.0f}</span>{flag}"


def quantity(value: float, field: str, spec: str = ",.0f") -> str:
    """A measured value with the unit its results field declares (vocabulary.Metric), e.g. "1,234 MB/s"."""
    return f"{value:{spec}} {metrics_by_name()[field].unit}"


SI_UNITS = {"byte": "B", "B": "B", "s": "s", "W": "W", "J": "J", "flop": "FLOP", "FLOP": "FLOP", "Hz": "Hz",
            "bit": "bit", "B/s": "B/s", "flop/s": "FLOP/s", "FLOP/s": "FLOP/s", "J/byte": "J/B", "J/flop": "J/FLOP"}
_PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"),
             (1e-9, "n"), (1e-12, "p"))


def with_ci(value: float, ci: tuple[float, float] | None, spec: str = ",.0f") -> str:
    """A value with its 95% interval, '1,234 (1,100–1,400)'; the value alone where it has none."""
    return f"{value:{spec}}" + ("" if ci is None else f" ({ci[0]:{spec}}–{ci[1]:{spec}})")


def fit_reach(fit) -> str:
    """'at 8 workers: 3,189 (3,104–3,244), extrapolated': a scaling fit's furthest informative prediction."""
    p = fit.reach()
    if p is None:
        return "none: every interval is wider than half its value"
    return f"at {p.num_workers} workers: {with_ci(p.samples_per_s, p.ci95)}" + (", extrapolated" * p.extrapolated)


def human(value: float, unit: str = "") -> str:
    """A number for people: SI prefixes on SI units (7.06e10 byte -> "70.6 GB", 6e-4 s -> "600 µs"), thousands
    separators and three significant figures on the rest (1,969,556; 0.00000623 cores); never scientific notation."""
    if value == 0 or value != value or value in (float("inf"), float("-inf")):
        return f"{value:g} {unit}".strip()
    if unit in SI_UNITS:
        scale, prefix = next(((f, p) for f, p in _PREFIXES if abs(value) >= f), _PREFIXES[-1])
        return f"{value / scale:.3g} {prefix}{SI_UNITS[unit]}"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:,.{digits}f} {unit}".strip()


def log_axis(ax, which: str = "y") -> None:
    """A log axis for people: decades labelled 1, 10, 100, 1k, 10k ... (no 2x10^4 minor labels to collide)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis = ax.yaxis if which == "y" else ax.xaxis
    (ax.set_yscale if which == "y" else ax.set_xscale)("log")
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: compact(v)))
    axis.set_minor_formatter(NullFormatter())


def compact(v: float) -> str:
    """A tick value: 0.001, 1, 10k, 2.5M, 1G."""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:g}{prefix}"
    return f"{v:g}"


def duration(seconds: float) -> str:
    """Seconds as s, min, h or days, two or three significant figures (two below two minutes)."""
    for unit, scale in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * scale:
            return f"{seconds / scale:,.{1 if seconds < 10 * scale else 0}f} {unit}"
    if seconds >= 10:
        return f"{seconds:.0f} s"
    return f"{seconds:.2g} s" if seconds >= 0.01 else f"{seconds * 1e3:.2g} ms"


def ratio(x: float) -> str:
    """A headroom or speed-up: '1.22x', '34.2x', '> 1000x'."""
    return "> 1000x" if x > 1000 else f"{x:.3g}x"


def pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.0%}"


WIDE_MARK = "~"  # beside an AU or feeding tax whose 95% interval is wider than its target (a cap ended the run)
WIDE_LEGEND = (f"±: half the width of the 95% interval, in percentage points (a block bootstrap over the measured "
               f"steps); {WIDE_MARK}: still wider than its target when the run reached its cap of steps or seconds")


PM_LEGEND = (f"±: half the width of the 95% interval of the feeding tax, and of AU (its mirror), in percentage points, "
             f"from a block bootstrap over the measured steps; {WIDE_MARK}: still wider than its target when the run "
             f"reached its cap of steps or seconds")


def pm_pp(ci: tuple[float, float] | None, wide: bool | None = None) -> str:
    """'\n±1.4' (half the 95% interval's width, percentage points), WIDE_MARK after it where it is wider than its
    target: a second line under a console table's feeding tax; '' without an interval."""
    return "" if ci is None else f"\n±{(ci[1] - ci[0]) * 50:.1f}" + (f" {WIDE_MARK}" if wide else "")


def pct_ci(x: float | None, ci: tuple[float, float] | None, wide: bool | None = None, digits: int = 1) -> str:
    """'23.1% ±1.4 pp', with WIDE_MARK where the interval is wider than its target; the value alone without an
    interval (a file from before schema 6)."""
    if x is None:
        return "—"
    if ci is None:
        return f"{x:.{digits}%}"
    return f"{x:.{digits}%} ±{(ci[1] - ci[0]) * 50:.1f} pp" + (f" {WIDE_MARK}" if wide else "")


def kv(rows: list[tuple[str, object]]) -> str:
    """A two-column table of names and values, both escaped."""
    cells = "".join(f"<tr><th class='l'>{escape(k)}</th><td class='l'>{escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def table(header: list[str], rows: list[list[object]], left: int = 1, text: tuple[int, ...] = ()) -> str:
    """A table: the first `left` columns and the `text` ones left-aligned, numbers right; cells escaped
    unless Markup."""
    def is_left(i: int) -> bool:
        return i < left or i in text or i - len(header) in text

    def cell(i: int, v: object) -> str:
        html = v.html if isinstance(v, Markup) else escape(f"{v:,.3g}" if isinstance(v, float) else str(v))
        return f"<td class='l'>{html}</td>" if is_left(i) else f"<td>{html}</td>"

    head = "".join(f"<th class='l'>{escape(h)}</th>" if is_left(i) else f"<th>{escape(h)}</th>"
                   for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def warning_list(items: list[str]) -> str:
    """The probe's warnings as a highlighted list, or nothing."""
    return "<ul class='warnings'>" + "".join(f"<li>{escape(w)}</li>" for w in items) + "</ul>" if items else ""
