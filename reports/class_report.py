"""The class report: one self-contained HTML page (inline SVG) over a DuckDB built by `feedtax collect`.

It shows the spread across the class's machines, not one run: decode rate per format and track,
feeding tax vs DataLoader workers, disk bandwidth by device kind, model-validation error, the
submissions that stand out, and the lab's Locks: what the class predicted against what each student's
own machine measured (with their Reflect answers, escaped). Each figure says how many submissions are
behind it; a section with no data says so instead of drawing an empty plot. The figures are drawn by
reports.class_figures.

Outliers: robust z-score on log10 of the value within its group (same track, format and profile,
or same device kind), z = 0.6745 (x - median) / MAD, flagged at |z| > 3.5 (Iglewicz and Hoaglin).
Logs, because rates across machines spread multiplicatively; MAD, because the outliers themselves
must not widen the yardstick. Groups of fewer than 5 submissions are not judged.
"""

from __future__ import annotations

from collections import defaultdict
from html import escape
from pathlib import Path

import numpy as np

from feedtax.reports import class_figures
from feedtax.reports.class_figures import order
from feedtax.reports.common import CSS, figure, kv, table
from feedtax.reports.text import visible
from feedtax.results.io import write_atomic
from feedtax.results.lab import LOCKS
from feedtax.vocabulary import PROFILE_NAMES

Z_OUTLIER = 3.5
MIN_GROUP_FOR_OUTLIERS = 5

HOW_TO_READ = (
    "<p class='note'>Every figure is built from measured submissions only; <i>n</i> under each box is"
    " the number of submissions behind it. Runs of different profiles use different sample sizes, so"
    " their boxes are kept apart. A box marks the median and the IQR, its whiskers reach the furthest values within"
    " 1.5 IQR. A group of up to {dots} shows every run as a dot; a larger one is drawn as its distribution (the"
    " shaded shape: its density) with dots only for the runs beyond the whiskers. Outliers (red diamonds, in"
    " both): robust z-score of log10(value) within the group, |z| &gt; {z} (median and MAD; groups under"
    " {min_group} submissions are not judged).</p>"
)
DECODE = ("<p>Each run's median decode rate in one process, cold cache, per track and format: the spread is the"
          " class's hardware (and noise). Log scale.</p>")
FEEDING = "<p>Feeding tax = 1 - AU (MLPerf Storage): the share of wall time the consumer waited for data.</p>"
DISK = (
    "<p>Device kind from the run's host record: filesystem of the data directory, the block device's"
    " rotational flag (rot=1 spinning, rot=0 solid state, rot=? unreadable), and whether the CPU reports a"
    " hypervisor (VM). Inside a VM the flag describes the virtual disk, not the drive, and the hypervisor's"
    " cache can serve 'cold' reads.</p>"
)
DISK_FIRST = ("<p>Read: the first sequential read of each file right after writing it (O_DIRECT where allowed;"
              " the figure the projections use), not the re-reads of the same file.</p>")
VALIDATION = ("<p>The pipeline model's predicted feeding tax minus the measured one, in percentage points,"
              " over {runs} submissions.</p>")
OUTLIERS_HEAD = ("<table><tr><th class='l'>run</th><th class='l'>CPU</th><th class='l'>metric</th>"
                 "<th class='l'>group</th><th>value</th><th>group median</th><th>robust z</th><th>n</th></tr>")
NO_LABS = ("<p class='note'>No lab records in the database: a student's lab.json travels with their results as "
           "&lt;run_id&gt;.lab.json (<code>feedtax run --submit</code> or <code>feedtax lab --submit</code>).</p>")
OUTLIERS_NOTE = ("</table><p class='note'>An outlier is not an error: check the run's host (VM, tmpfs, a busy"
                 " machine) before discarding it.</p>")


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
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


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


def _outliers(groups: dict[tuple, list[dict]], describe) -> list[dict]:
    """Members of each group whose robust z passes Z_OUTLIER, with the group's median, name and size."""
    out = []
    for key, members in groups.items():
        z = robust_z(np.array([m["value"] for m in members]))
        med = float(np.median([m["value"] for m in members]))
        for m, zi in zip(members, z, strict=True):
            if abs(zi) > Z_OUTLIER:
                out.append({**m, "z": float(zi), "group_median": med, "group": describe(key), "n": len(members)})
    return out


# --- the page -------------------------------------------------------------------------------------

def _empty(what: str) -> str:
    return f"<p class='note'>No data yet: {escape(what)}</p>"


def _decode(con, profiles: list[str]) -> tuple[list[str], list[dict]]:
    """Section 1 and its outliers: decode rate per track, format and profile."""
    parts = ["<h2>1. Decode rate per format and track</h2>"]
    if not _has(con, "formats", "track", "format", "decode_samples_per_s_cold_median"):
        return parts + [_empty("no formats table.")], []
    rows = _query(con, "SELECT f.run_id, f.track, f.format, r.profile, f.decode_samples_per_s_cold_median AS value "
                       "FROM formats f JOIN runs r USING (run_id) WHERE f.decode_samples_per_s_cold_median > 0")
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["track"], r["format"], r["profile"])].append(r)
    found = _outliers(groups, lambda k: f"{k[0]} / {k[1]} / {k[2]} profile")
    for o in found:
        o["metric"] = "decode samples/s, cold"
    if not rows:
        return parts + [_empty("no format rows.")], found
    flagged = {(o["run_id"], o["track"], o["format"]) for o in found}
    return parts + [DECODE, figure(class_figures.decode_figure(rows, flagged, profiles))], found


def _feeding(con) -> list[str]:
    """Section 2: feeding tax vs DataLoader workers, feedtax's tuned loader (the default loader's rows are the run
    report's)."""
    parts = ["<h2>2. Feeding tax vs DataLoader workers</h2>"]
    if not _has(con, "loader", "track", "format", "num_workers", "feeding_tax"):
        return parts + [_empty("no submission has a loader sweep (the `loader` section).")]
    tuned = " AND (loader IS NULL OR loader = 'tuned')" if _has(con, "loader", "loader") else ""
    rows = _query(con, "SELECT run_id, track, format, num_workers, feeding_tax FROM loader "
                       "WHERE feeding_tax IS NOT NULL AND num_workers IS NOT NULL" + tuned)
    if not rows:
        return parts + [_empty("no submission has loader rows.")]
    return parts + [FEEDING, figure(class_figures.feeding_figure(rows))]


def _disk(con) -> tuple[list[str], list[dict]]:
    """Section 3 and its outliers: sequential read and write bandwidth per device kind. The read is the first read
    after writing (schema 5's seq_read_mb_per_s_first, the figure the projections use); a row without one (a store from
    before the column, or a NULL in it) gives its cold re-read instead, and the figure and the text say how many."""
    parts = ["<h2>3. Disk bandwidth by device kind</h2>"]
    if not _has(con, "disk", "seq_read_mb_per_s_cold", "seq_write_mb_per_s"):
        return parts + [_empty("no disk probe results.")], []
    first = "d.seq_read_mb_per_s_first" if _has(con, "disk", "seq_read_mb_per_s_first") else "NULL"
    hcols = _columns(con, "hosts")
    extra = ", ".join(f"h.{c}" for c in ("data_dir_fs_type", "data_dir_rotational", "virtualization") if c in hcols)
    rows = _query(con, f"SELECT d.run_id, {first} AS seq_read_mb_per_s_first, d.seq_read_mb_per_s_cold, "
                       "d.seq_write_mb_per_s" + (f", {extra}" if extra else "")
                       + " FROM disk d LEFT JOIN hosts h USING (run_id)")
    for r in rows:
        r["kind"] = _device_kind(r)
        fell_back = r["seq_read_mb_per_s_first"] is None
        r["read_mb_per_s"] = r["seq_read_mb_per_s_cold"] if fell_back else r["seq_read_mb_per_s_first"]
        r["read_is_cold"] = fell_back and r["read_mb_per_s"] is not None
    cold = sum(r["read_is_cold"] for r in rows)
    read = sum(r["read_mb_per_s"] is not None for r in rows)
    if cold and cold == read:
        title, metric = "sequential read, cold cache (re-read: no first read after writing recorded)", "cold re-read"
    elif cold:
        title, metric = f"sequential read, first after writing ({cold} of {read}: cold re-read)", "first or cold read"
    else:
        title, metric = "sequential read, first after writing", "first read"
    found = []
    for col, label in (("read_mb_per_s", f"disk read MB/s, {metric}"), ("seq_write_mb_per_s", "disk write MB/s")):
        groups = defaultdict(list)
        for r in rows:
            if r[col] and r[col] > 0:
                groups[r["kind"]].append({"run_id": r["run_id"], "value": r[col], "col": col})
        for o in _outliers(groups, lambda k: k):
            o["metric"] = label
            found.append(o)
    if not rows:
        return parts + [_empty("no disk probe results.")], found
    fig = class_figures.disk_figure(rows, {(o["run_id"], o["col"]) for o in found}, read_title=title)
    return parts + [DISK + _disk_read_note(cold, read), figure(fig)], found


def _disk_read_note(cold: int, read: int) -> str:
    """What the read panel shows: the first read after writing, and which rows fall back to the cold re-read."""
    if not cold:
        return DISK_FIRST
    which = "any submission" if cold == read else f"{cold} of {read} submissions"
    note = (f"<p class='note'>No first read after writing is stored for {which}: the read panel shows"
            f" {'the' if cold == read else 'their'} cold re-read instead (buffered, after eviction), which a cache"
            " below the OS can speed up.</p>")
    return note if cold == read else DISK_FIRST + note


def _validation(con) -> list[str]:
    """Section 4: the pipeline model's error across the class."""
    parts = ["<h2>4. Model-validation error across the class</h2>"]
    if not _has(con, "model_validation", "track", "error_pp"):
        return parts + [_empty("no submission has model-validation rows (the `model_validation` section).")]
    rows = _query(con, "SELECT run_id, track, error_pp FROM model_validation WHERE error_pp IS NOT NULL")
    if not rows:
        return parts + [_empty("no model-validation rows.")]
    return parts + [VALIDATION.format(runs=len({r["run_id"] for r in rows})),
                    figure(class_figures.validation_figure(rows))]


def _outlier_table(outliers: list[dict], host_of: dict[str, dict]) -> list[str]:
    """Section 5: every flagged submission, the farthest first, with its CPU."""
    parts = ["<h2>5. Outliers</h2>"]
    if not outliers:
        return parts + ["<p class='note'>None flagged.</p>"]
    parts.append(OUTLIERS_HEAD)
    for o in sorted(outliers, key=lambda o: -abs(o["z"])):
        h = host_of.get(o["run_id"], {})
        parts.append(f"<tr><td class='l'><code>{escape(o['run_id'])}</code></td>"
                     f"<td class='l'>{escape(str(h.get('cpu_model')))}</td>"
                     f"<td class='l'>{escape(o['metric'])}</td><td class='l'>{escape(o['group'])}</td>"
                     f"<td>{o['value']:,.0f}</td><td>{o['group_median']:,.0f}</td><td>{o['z']:+.1f}</td>"
                     f"<td>{o['n']}</td></tr>")
    return parts + [OUTLIERS_NOTE]


def _lock_table(lock: str, picks: list[dict], measured: list[dict]) -> str:
    """One Lock: per choice, the students who predicted it (by confidence) and the machines that measured it."""
    rows = []
    for choice in LOCKS[lock][1]:
        mine = [p for p in picks if p["choice"] == choice]
        rows.append([choice, len(mine), *(sum(p["confidence"] == c for p in mine) for c in ("low", "medium", "high")),
                     sum(m["answer"] == choice for m in measured)])
    unanswered = [m for m in measured if m["answer"] not in LOCKS[lock][1]]
    if unanswered:
        rows.append(["(no measured answer)", "", "", "", "", len(unanswered)])
    header = ["choice", "students predicting it", "low confidence", "medium", "high", "machines measuring it"]
    return table(header, rows)


def _matched(lock: str, picks: list[dict], measured: list[dict]) -> str:
    """The share of students whose prediction is what their own machine measured."""
    answer_of = {m["run_id"]: m["answer"] for m in measured if m["answer"] in LOCKS[lock][1]}
    judged = [p for p in picks if p["run_id"] in answer_of]
    if not judged:
        return "<p class='note'>No student's own machine answered this Lock, so no prediction can be checked.</p>"
    hits = sum(p["choice"] == answer_of[p["run_id"]] for p in judged)
    unjudged = len(picks) - len(judged)
    return (f"<p>{hits} of {len(judged)} students ({hits / len(judged):.0%}) predicted what their own machine "
            f"measured" + (f"; {unjudged} more committed a Lock their machine could not answer" if unjudged else "")
            + ".</p>")


def _reflections(part: int, rows: list[dict], answer_of: dict[str, dict]) -> str:
    """The part's Reflect answers, each with the student's run, prediction and measured answer, all escaped."""
    mine = [r for r in rows if r["part"] == part]
    if not mine:
        return ""
    items = []
    for prompt in dict.fromkeys(r["prompt"] for r in mine):
        said = "".join(f"<li><code>{escape(r['run_id'])}</code> (predicted {escape(str(r.get('choice') or '-'))}, "
                       f"measured {escape(str(answer_of.get(r['run_id'], {}).get('answer') or '-'))}): "
                       f"{escape(r['answer'])}</li>" for r in mine if r["prompt"] == prompt)
        items.append(f"<p><i>{escape(prompt)}</i></p><ul>{said}</ul>")
    return f"<details><summary>Reflect answers ({len(mine)})</summary>{''.join(items)}</details>"


def _locks(con) -> list[str]:
    """Section 6: per Lock, the class's predictions against what their machines measured, and their reflections."""
    parts = ["<h2>6. What the class predicted, and what their machines measured</h2>"]
    labs = _query(con, "SELECT count(*) AS n FROM lab_records")[0]["n"] if _has(con, "lab_records", "run_id") else 0
    if not labs:
        return parts + [NO_LABS]
    locks = _query(con, "SELECT run_id, lock, choice, confidence FROM lab_locks")
    answers = _query(con, "SELECT run_id, lock, answer, reason, evidence FROM measured_answers")
    reflections = (_query(con, "SELECT run_id, part, prompt, answer FROM lab_reflections ORDER BY run_id, row_idx")
                   if _has(con, "lab_reflections", "part", "prompt", "answer") else [])
    parts.append(f"<p class='note'>{labs} lab record(s). Each Lock is a prediction committed before any number was "
                 "shown; a machine's answer is computed from its own run's results as that run's report gives it "
                 "(Part 2 measured at disk tiers where the run has them).</p>")
    for part, (lock, (question, _)) in enumerate(LOCKS.items(), start=1):
        picks = [r for r in locks if r["lock"] == lock]
        measured = [a for a in answers if a["lock"] == lock]
        choice_of = {p["run_id"]: p for p in picks}
        answer_of = {a["run_id"]: a for a in measured}
        mine = [{**r, "choice": choice_of.get(r["run_id"], {}).get("choice")} for r in reflections]
        parts += [f"<h3>Part {part}: {escape(question)}</h3>", _lock_table(lock, picks, measured),
                  _matched(lock, picks, measured), _reflections(part, mine, answer_of)]
    return parts


def render(con) -> str:
    """The class report as an HTML string, from an open DuckDB connection; every hidden character of the students'
    text shown (text.visible)."""
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
    profiles = order((r["profile"] for r in runs), PROFILE_NAMES)
    status = defaultdict(int)
    for r in runs:
        status[r["status"]] += 1
    parts.append(kv([("submissions", n_runs), ("distinct CPU models", len({r["cpu_model"] for r in runs})),
                     ("profiles", ", ".join(f"{p} ({sum(r['profile'] == p for r in runs)})" for p in profiles)),
                     ("status", ", ".join(f"{k}: {v}" for k, v in sorted(status.items())))]))
    parts.append(HOW_TO_READ.format(z=Z_OUTLIER, min_group=MIN_GROUP_FOR_OUTLIERS, dots=class_figures.MAX_DOTS))
    decode, decode_outliers = _decode(con, profiles)
    parts += decode + _feeding(con)
    disk, disk_outliers = _disk(con)
    parts += disk + _validation(con)
    parts += _outlier_table(decode_outliers + disk_outliers, {r["run_id"]: r for r in runs})
    parts += _locks(con)
    parts += ["<h2>What the database holds</h2>",
              "<p class='note'>Rows per table (one table per results section; query them with DuckDB).</p>",
              kv(list(counts.items())), "</body></html>"]
    return visible("\n".join(parts))


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
