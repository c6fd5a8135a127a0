"""The class report: one self-contained HTML page (inline SVG) over a DuckDB built by `feedtax collect`.

It shows the spread across the class's machines, not one run: decode rate per format and track,
feeding tax vs DataLoader workers, disk bandwidth by device kind, model-validation error, and the
submissions that stand out. Each figure says how many submissions are behind it; a section with no
data says so instead of drawing an empty plot.

Outliers: robust z-score on log10 of the value within its group (same track, format and profile,
or same device kind), z = 0.6745 (x - median) / MAD, flagged at |z| > 3.5 (Iglewicz and Hoaglin).
Logs, because rates across machines spread multiplicatively; MAD, because the outliers themselves
must not widen the yardstick. Groups of fewer than 5 submissions are not judged.
"""

from __future__ import annotations

from collections import defaultdict
from html import escape
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

from feedtax.reports.html import CSS, _kv, _svg  # noqa: E402
from feedtax.results.io import write_atomic  # noqa: E402
from feedtax.vocabulary import FORMAT_COLORS, FORMATS, TRACKS  # noqa: E402

Z_OUTLIER = 3.5
MIN_GROUP_FOR_OUTLIERS = 5


# --- data -----------------------------------------------------------------------------------------

def _columns(con, table: str) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = ?", [table]).fetchall()}


def _has(con, table: str, *cols: str) -> bool:
    have = _columns(con, table)
    return bool(have) and set(cols) <= have


def _query(con, sql: str) -> list[dict]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def robust_z(values: np.ndarray) -> np.ndarray:
    """0.6745 (log10 x - median) / MAD per value; zeros where the group is too small or has no spread."""
    x = np.log10(np.maximum(np.asarray(values, dtype=float), 1e-300))
    if x.size < MIN_GROUP_FOR_OUTLIERS:
        return np.zeros_like(x)
    mad = np.median(np.abs(x - np.median(x)))
    return np.zeros_like(x) if mad == 0 else 0.6745 * (x - np.median(x)) / mad


def _device_kind(row: dict) -> str:
    """filesystem · rot=1 (kernel says spinning) / rot=0 / rot=? · VM (hypervisor reported)."""
    rot = row.get("data_dir_rotational")
    kind = "rot=1" if rot else ("rot=0" if rot is False else "rot=?")
    vm = " · VM" if row.get("virtualization") else ""
    return f"{row.get('data_dir_fs_type') or 'fs?'} · {kind}{vm}"


def _order(values, known) -> list:
    present = list(dict.fromkeys(values))
    return [v for v in known if v in present] + sorted(v for v in present if v not in known)


# --- figures --------------------------------------------------------------------------------------

def _box_strip(ax, groups: list[tuple[str, np.ndarray, np.ndarray, str]], log: bool = True) -> None:
    """Boxes (median, IQR, whiskers to 1.5 IQR) with every submission as a jittered dot; red dots are outliers."""
    rng = np.random.default_rng(0)
    data = [g[1] for g in groups]
    bp = ax.boxplot(data, positions=range(len(groups)), widths=0.6, showfliers=False, patch_artist=True,
                    medianprops={"color": "black"})
    for patch, g in zip(bp["boxes"], groups):
        patch.set_facecolor(g[3])
        patch.set_alpha(0.35)
    for i, (_, vals, flags, color) in enumerate(groups):
        xs = i + rng.uniform(-0.18, 0.18, vals.size)
        ax.scatter(xs[~flags], vals[~flags], s=10, color=color, edgecolor="black", linewidth=0.3, zorder=3)
        ax.scatter(xs[flags], vals[flags], s=30, color="red", marker="D", edgecolor="black", linewidth=0.5, zorder=4)
    ax.set_xticks(range(len(groups)), [f"{g[0]}\nn={g[1].size}" for g in groups], fontsize=8)
    if log:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
        lo, hi = ax.get_ylim()
        if hi / max(lo, 1e-300) < 30:  # under ~1.5 decades: label the 2s and 5s too
            ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if f"{v:.0e}"[0] in "25" else ""))
        else:
            ax.yaxis.set_minor_formatter(NullFormatter())
    ax.grid(axis="y", alpha=0.3)


def decode_figure(rows: list[dict], flagged: set, profiles: list[str]) -> plt.Figure:
    """Per track: decode samples/s (cold cache, each run's median) per format across submissions."""
    tracks = _order((r["track"] for r in rows), TRACKS)
    ncols = 2 if len(tracks) > 1 else 1
    nrows = (len(tracks) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(11, 3.6 * nrows + 0.6), squeeze=False)
    for ax, track in zip(axes.flat, tracks):
        groups = []
        mine = [r for r in rows if r["track"] == track]
        for fmt in _order((r["format"] for r in mine), FORMATS):
            for prof in profiles:
                sel = [r for r in mine if r["format"] == fmt and r["profile"] == prof]
                if sel:
                    label = fmt if len(profiles) == 1 else f"{fmt}\n({prof})"
                    groups.append((label, np.array([r["value"] for r in sel]),
                                   np.array([(r["run_id"], track, fmt) in flagged for r in sel]),
                                   FORMAT_COLORS.get(fmt, "#555555")))
        _box_strip(ax, groups)
        runs = len({r["run_id"] for r in mine})
        ax.set_title(f"{track}: decode, cold cache ({runs} submissions)", fontsize=10)
        ax.set_ylabel("samples/s per process (log)")
    for ax in list(axes.flat)[len(tracks):]:
        ax.set_visible(False)
    fig.suptitle("Decode rate per format across the class (dots: submissions; red diamonds: outliers)", fontsize=11)
    fig.tight_layout()
    return fig


def feeding_figure(rows: list[dict]) -> plt.Figure:
    """Per track: feeding tax vs DataLoader workers, median across submissions per format, IQR band, dots per run."""
    tracks = _order((r["track"] for r in rows), TRACKS)
    ncols = 2 if len(tracks) > 1 else 1
    nrows = (len(tracks) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(11, 3.4 * nrows + 0.6), squeeze=False)
    for ax, track in zip(axes.flat, tracks):
        mine = [r for r in rows if r["track"] == track]
        for fmt in _order((r["format"] for r in mine), FORMATS):
            by_w: dict[int, list[float]] = defaultdict(list)
            for r in mine:
                if r["format"] == fmt:
                    by_w[int(r["num_workers"])].append(float(r["feeding_tax"]))
            ws = sorted(by_w)
            color = FORMAT_COLORS.get(fmt, "#555555")
            q = np.array([np.percentile(by_w[w], [25, 50, 75]) for w in ws])
            ax.plot(ws, q[:, 1] * 100, "-o", color=color, label=f"{fmt}", ms=4)
            ax.fill_between(ws, q[:, 0] * 100, q[:, 2] * 100, color=color, alpha=0.15)
            for w in ws:
                ax.scatter([w] * len(by_w[w]), np.array(by_w[w]) * 100, s=6, color=color, alpha=0.5)
        ax.set_ylim(-2, 102)
        ax.set_xticks(sorted({int(r["num_workers"]) for r in mine}))
        ax.set_xlabel("DataLoader workers")
        ax.set_ylabel("feeding tax (% of time waiting)")
        ax.set_title(f"{track} ({len({r['run_id'] for r in mine})} submissions)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(tracks):]:
        ax.set_visible(False)
    fig.suptitle("Feeding tax vs workers (line: median across submissions; band: IQR)", fontsize=11)
    fig.tight_layout()
    return fig


def disk_figure(rows: list[dict], flagged: set) -> plt.Figure:
    """Sequential read (cold) and write bandwidth per device kind across submissions."""
    kinds = sorted({r["kind"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2 + 0.25 * max(len(kinds) - 3, 0)))
    palette = plt.get_cmap("tab10")
    for ax, (col, title) in zip(axes, (("seq_read_mb_per_s_cold", "sequential read, cold cache"),
                                       ("seq_write_mb_per_s", "sequential write (fsync included)"))):
        groups = []
        for i, kind in enumerate(kinds):
            sel = [r for r in rows if r["kind"] == kind and r[col] is not None]
            if sel:
                groups.append((kind.replace(" · ", "\n"), np.array([r[col] for r in sel]),
                               np.array([(r["run_id"], col) in flagged for r in sel]), palette(i % 10)))
        _box_strip(ax, groups)
        ax.set_ylabel("MB/s (1e6 B/s, log)")
        ax.set_title(title, fontsize=10)
    fig.suptitle("Disk bandwidth by device kind (filesystem · rot=1: the kernel reports a rotational disk · VM)", fontsize=11)
    fig.tight_layout()
    return fig


def validation_figure(rows: list[dict]) -> plt.Figure:
    """Predicted minus measured feeding tax (percentage points) per track across the class."""
    tracks = _order((r["track"] for r in rows), TRACKS)
    fig, ax = plt.subplots(figsize=(11, 3.2))
    groups = [(f"{t}\n{len({r['run_id'] for r in rows if r['track'] == t})} submissions, rows:",
               np.array([r["error_pp"] for r in rows if r["track"] == t], dtype=float),
               np.zeros(sum(r["track"] == t for r in rows), dtype=bool), "#1f77b4") for t in tracks]
    _box_strip(ax, groups, log=False)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("model - measured (pp)")
    ax.set_title("Model-validation error across the class (each dot: one track x format x workers row)", fontsize=10)
    fig.tight_layout()
    return fig


# --- the page -------------------------------------------------------------------------------------

def _empty(what: str) -> str:
    return f"<p class='note'>No data yet: {escape(what)}</p>"


def _outliers(groups: dict[tuple, list[dict]], describe) -> list[dict]:
    out = []
    for key, members in groups.items():
        z = robust_z(np.array([m["value"] for m in members]))
        med = float(np.median([m["value"] for m in members]))
        for m, zi in zip(members, z):
            if abs(zi) > Z_OUTLIER:
                out.append({**m, "z": float(zi), "group_median": med, "group": describe(key), "n": len(members)})
    return out


def render(con) -> str:
    """The class report as an HTML string, from an open DuckDB connection."""
    from feedtax.classroom.collect import table_rows

    counts = table_rows(con)
    n_runs = counts.get("runs", 0)
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>feedtax class report</title>"
             f"<style>{CSS}</style></head><body><h1>feedtax class report</h1>"]
    if not n_runs:
        parts.append(_empty("the database holds no submissions; run `feedtax collect SUBMISSIONS... --db DB`."))
        return "\n".join(parts + ["</body></html>"])

    runs = _query(con, "SELECT r.run_id, r.profile, r.status, h.cpu_model, h.cpu_logical_cores FROM runs r "
                       "LEFT JOIN hosts h USING (run_id)")
    profiles = _order((r["profile"] for r in runs), ("ci", "laptop", "full"))
    host_of = {r["run_id"]: r for r in runs}
    status = defaultdict(int)
    for r in runs:
        status[r["status"]] += 1
    parts.append(_kv([("submissions", n_runs), ("distinct CPU models", len({r["cpu_model"] for r in runs})),
                      ("profiles", ", ".join(f"{p} ({sum(r['profile'] == p for r in runs)})" for p in profiles)),
                      ("status", ", ".join(f"{k}: {v}" for k, v in sorted(status.items())))]))
    parts.append("<p class='note'>Every figure is built from measured submissions only; <i>n</i> under each box is"
                 " the number of submissions behind it. Runs of different profiles use different sample sizes, so"
                 " their boxes are kept apart. Outliers (red diamonds): robust z-score of log10(value) within the"
                 f" group, |z| &gt; {Z_OUTLIER} (median and MAD; groups under {MIN_GROUP_FOR_OUTLIERS} submissions are not judged).</p>")
    outliers: list[dict] = []

    # 1. decode rate per format and track
    parts.append("<h2>1. Decode rate per format and track</h2>")
    if _has(con, "formats", "track", "format", "decode_samples_per_s_cold_median"):
        rows = _query(con, "SELECT f.run_id, f.track, f.format, r.profile, f.decode_samples_per_s_cold_median AS value "
                           "FROM formats f JOIN runs r USING (run_id) WHERE f.decode_samples_per_s_cold_median > 0")
        groups: dict[tuple, list[dict]] = defaultdict(list)
        for r in rows:
            groups[(r["track"], r["format"], r["profile"])].append(r)
        found = _outliers(groups, lambda k: f"{k[0]} / {k[1]} / {k[2]} profile")
        for o in found:
            o["metric"] = "decode samples/s, cold"
        outliers += found
        flagged = {(o["run_id"], o["track"], o["format"]) for o in found}
        parts += ["<p>Each run's median decode rate in one process, cold cache, per track and format: the spread is the"
                  " class's hardware (and noise). Log scale.</p>",
                  f"<figure>{_svg(decode_figure(rows, flagged, profiles))}</figure>"] if rows else [_empty("no format rows.")]
    else:
        parts.append(_empty("no formats table."))

    # 2. feeding tax vs workers
    parts.append("<h2>2. Feeding tax vs DataLoader workers</h2>")
    if _has(con, "loader", "track", "format", "num_workers", "feeding_tax"):
        rows = _query(con, "SELECT run_id, track, format, num_workers, feeding_tax FROM loader "
                           "WHERE feeding_tax IS NOT NULL AND num_workers IS NOT NULL")
        parts += ["<p>Feeding tax = 1 - AU (MLPerf Storage): the share of wall time the consumer waited for data.</p>",
                  f"<figure>{_svg(feeding_figure(rows))}</figure>"] if rows else [_empty("no submission has loader rows.")]
    else:
        parts.append(_empty("no submission has a loader sweep (the `loader` section)."))

    # 3. disk by device kind
    parts.append("<h2>3. Disk bandwidth by device kind</h2>")
    if _has(con, "disk", "seq_read_mb_per_s_cold", "seq_write_mb_per_s"):
        hcols = _columns(con, "hosts")
        extra = ", ".join(f"h.{c}" for c in ("data_dir_fs_type", "data_dir_rotational", "virtualization") if c in hcols)
        rows = _query(con, "SELECT d.run_id, d.seq_read_mb_per_s_cold, d.seq_write_mb_per_s"
                           + (f", {extra}" if extra else "") + " FROM disk d LEFT JOIN hosts h USING (run_id)")
        for r in rows:
            r["kind"] = _device_kind(r)
        found = []
        for col, label in (("seq_read_mb_per_s_cold", "disk read MB/s, cold"), ("seq_write_mb_per_s", "disk write MB/s")):
            groups = defaultdict(list)
            for r in rows:
                if r[col] and r[col] > 0:
                    groups[r["kind"]].append({"run_id": r["run_id"], "value": r[col], "col": col})
            for o in _outliers(groups, lambda k: k):
                o["metric"] = label
                found.append(o)
        outliers += found
        if rows:
            parts += ["<p>Device kind from the run's host record: filesystem of the data directory, the block device's"
                      " rotational flag (rot=1 spinning, rot=0 solid state, rot=? unreadable), and whether the CPU reports a hypervisor (VM). Inside a VM the flag describes the"
                      " virtual disk, not the drive, and the hypervisor's cache can serve 'cold' reads.</p>",
                      f"<figure>{_svg(disk_figure(rows, {(o['run_id'], o['col']) for o in found}))}</figure>"]
        else:
            parts.append(_empty("no disk probe results."))
    else:
        parts.append(_empty("no disk probe results."))

    # 4. model validation
    parts.append("<h2>4. Model-validation error across the class</h2>")
    if _has(con, "model_validation", "track", "error_pp"):
        rows = _query(con, "SELECT run_id, track, error_pp FROM model_validation WHERE error_pp IS NOT NULL")
        if rows:
            parts += [f"<p>The pipeline model's predicted feeding tax minus the measured one, in percentage points,"
                      f" over {len({r['run_id'] for r in rows})} submissions.</p>",
                      f"<figure>{_svg(validation_figure(rows))}</figure>"]
        else:
            parts.append(_empty("no model-validation rows."))
    else:
        parts.append(_empty("no submission has model-validation rows (the `model_validation` section)."))

    # 5. outliers
    parts.append("<h2>5. Outliers</h2>")
    if outliers:
        parts.append("<table><tr><th class='l'>run</th><th class='l'>CPU</th><th class='l'>metric</th><th class='l'>group</th>"
                     "<th>value</th><th>group median</th><th>robust z</th><th>n</th></tr>")
        for o in sorted(outliers, key=lambda o: -abs(o["z"])):
            h = host_of.get(o["run_id"], {})
            parts.append(f"<tr><td class='l'><code>{escape(o['run_id'])}</code></td><td class='l'>{escape(str(h.get('cpu_model')))}</td>"
                         f"<td class='l'>{escape(o['metric'])}</td><td class='l'>{escape(o['group'])}</td>"
                         f"<td>{o['value']:,.0f}</td><td>{o['group_median']:,.0f}</td><td>{o['z']:+.1f}</td><td>{o['n']}</td></tr>")
        parts.append("</table><p class='note'>An outlier is not an error: check the run's host (VM, tmpfs, a busy"
                     " machine) before discarding it.</p>")
    else:
        parts.append("<p class='note'>None flagged.</p>")

    parts += ["<h2>What the database holds</h2>",
              "<p class='note'>Rows per table (one table per results section; query them with DuckDB).</p>",
              _kv(list(counts.items())), "</body></html>"]
    return "\n".join(parts)


def write(db_path: Path, out_dir: Path) -> Path:
    """Render the class report of db_path into out_dir/class_report.html (atomically) and return its path."""
    from feedtax.classroom.collect import connect

    con = connect(Path(db_path), read_only=True)
    try:
        html = render(con)
    finally:
        con.close()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "class_report.html"
    write_atomic(path, html.encode("utf-8"), durable=False)
    return path
