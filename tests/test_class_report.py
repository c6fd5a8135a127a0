"""The class report: figures from the class database, n per figure, outliers flagged, empty sections said, the
students' text shown as text."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pytest
import typer
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.colors import to_rgba
from test_collect import N_GOOD, write_good
from typer.testing import CliRunner

from feedtax.classroom import collect as c
from feedtax.cli.classroom import class_report_cmd
from feedtax.reports import class_figures, class_report


@pytest.fixture(scope="module")
def class_db(tmp_path_factory):
    """The generated class (real runs' sections, varied per machine), collected."""
    root = tmp_path_factory.mktemp("class")
    write_good(root / "subs", N_GOOD)
    db = root / "class.duckdb"
    assert c.collect([root / "subs"], db).ok
    return db


def test_report_has_every_figure_with_counts_and_outliers(class_db, tmp_path):
    path = class_report.write(class_db, tmp_path / "out")
    html = path.read_text()
    assert html.count("<svg") == 4
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html) and "<script" not in html  # self-contained
    assert f"({N_GOOD} submissions)" in html and f"n={N_GOOD}" in html
    # run 7 of the corpus measured its formats 20x faster than the rest: flagged in every decode group
    outlier_rows = re.findall(r"<tr><td class='l'><code>([^<]+)</code>", html.split("5. Outliers")[1])
    assert outlier_rows and all(r.endswith("000007") for r in outlier_rows[:6])
    assert "No data yet" not in html
    assert "loader" in html.split("What the database holds")[1]


def test_sections_without_data_say_so(tmp_path):
    sub = write_good(tmp_path / "subs", 2)
    db = tmp_path / "c.duckdb"
    c.collect(list(sub.values()), db)
    con = duckdb.connect(str(db))
    con.execute("DROP TABLE loader")  # as in a class whose runs predate the sweep
    con.execute("DELETE FROM model_validation")
    con.close()
    html = class_report.write(db, tmp_path).read_text()
    assert "no submission has a loader sweep" in html and "no model-validation rows" in html
    assert html.count("<svg") == 2  # decode and disk
    assert "None flagged" in html  # two submissions are too few to judge


def test_robust_z_flags_only_far_values():
    z = class_report.robust_z(np.array([100, 110, 95, 105, 102, 98, 5000.0]))
    assert abs(z[-1]) > class_report.Z_OUTLIER and (abs(z[:-1]) < class_report.Z_OUTLIER).all()
    assert not class_report.robust_z(np.array([1.0, 1000.0])).any()  # too few to judge


def test_cli_writes_report_and_refuses_a_missing_db(class_db, tmp_path):
    app = typer.Typer()
    app.command("class-report")(class_report_cmd)
    app.command("noop")(lambda: None)
    ok = CliRunner().invoke(app, ["class-report", "--db", str(class_db), "--out", str(tmp_path / "r")])
    assert ok.exit_code == 0 and (tmp_path / "r" / "class_report.html").exists()
    missing = CliRunner().invoke(app, ["class-report", "--db", str(tmp_path / "none.duckdb"), "--out", str(tmp_path)])
    assert missing.exit_code == 2 and "none.duckdb" in missing.output and not (tmp_path / "none.duckdb").exists()


# --- a class of thousands: a large group drawn as its distribution, a small one as every run ----------------------

def _points(ax, x: float) -> tuple[np.ndarray, np.ndarray]:
    """The y of every scatter mark drawn within 0.3 of x on ax, and which of them are red."""
    ys, red = [], []
    for coll in ax.collections:
        if isinstance(coll, PathCollection) and len(coll.get_offsets()):
            off = np.asarray(coll.get_offsets())
            near = np.abs(off[:, 0] - x) < 0.3
            ys.append(off[near, 1])
            is_red = len(coll.get_facecolors()) and np.allclose(coll.get_facecolors()[0], to_rgba("red"))
            red.append(np.full(near.sum(), bool(is_red)))
    return np.concatenate(ys), np.concatenate(red)


def _beyond_1_5_iqr(v: np.ndarray) -> np.ndarray:
    q1, q3 = np.percentile(v, [25, 75])
    return (v < q1 - 1.5 * (q3 - q1)) | (v > q3 + 1.5 * (q3 - q1))


def _decode_rows(sizes: dict[str, int]) -> tuple[list[dict], set]:
    """Decode rows of one track, a group per format of the given size, lognormal with one machine 20x faster in each;
    flagged as the report flags (robust z)."""
    rng = np.random.default_rng(1)
    rows, flagged = [], set()
    for fmt, n in sizes.items():
        values = rng.lognormal(np.log(1e4), 0.3, n)
        values[n // 2] *= 20
        z = class_report.robust_z(values)
        for i, v in enumerate(values):
            rows.append({"run_id": f"r{i}", "track": "tiny", "format": fmt, "profile": "ci", "value": float(v)})
            if abs(z[i]) > class_report.Z_OUTLIER:
                flagged.add((f"r{i}", "tiny", fmt))
    return rows, flagged


def test_a_group_over_the_threshold_is_its_distribution_with_only_outliers_as_dots():
    big, small = class_figures.MAX_DOTS + 1, class_figures.MAX_DOTS
    rows, flagged = _decode_rows({"json": big, "raw": small})
    fig = class_figures.decode_figure(rows, flagged, ["ci"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"json\nn={big}", f"raw\nn={small}"]
    for x, fmt, n in ((0, "json", big), (1, "raw", small)):
        values = np.array([r["value"] for r in rows if r["format"] == fmt])
        marked = np.array([(r["run_id"], "tiny", fmt) in flagged for r in rows if r["format"] == fmt])
        assert marked.any(), "the planted machine is flagged"
        ys, red = _points(ax, x)
        assert np.allclose(np.sort(ys[red]), np.sort(values[marked])), "every flagged outlier, in red"
        if n > class_figures.MAX_DOTS:  # only the runs beyond the whiskers, and the flagged ones
            expected = values[_beyond_1_5_iqr(values) | marked]
            assert len(ys) == len(expected) < n and np.allclose(np.sort(ys), np.sort(expected))
        else:  # every run a dot
            assert len(ys) == n and np.allclose(np.sort(ys), np.sort(values))
    shapes = [c for c in ax.collections if isinstance(c, PolyCollection) and not isinstance(c, PathCollection)]
    assert len(shapes) == 1 and np.all(np.abs(shapes[0].get_paths()[0].vertices[:, 0]) < 0.5), "json's density only"
    assert f"n > {class_figures.MAX_DOTS}: distribution" in fig.get_suptitle()
    assert "dots are the submissions beyond the whiskers only" in fig.get_suptitle()

    rows, flagged = _decode_rows({"json": small})
    fig = class_figures.decode_figure(rows, flagged, ["ci"])
    assert "each dot: a submission" in fig.get_suptitle() and "distribution" not in fig.get_suptitle()
    assert not any(isinstance(c, PolyCollection) and not isinstance(c, PathCollection) for c in fig.axes[0].collections)


def test_feeding_figure_draws_a_large_worker_group_as_whiskers_and_outliers():
    rng = np.random.default_rng(2)
    big, small = class_figures.MAX_DOTS + 1, class_figures.MAX_DOTS
    taxes = {0: np.clip(rng.normal(0.5, 0.1, big), 0, 1), 1: np.clip(rng.normal(0.2, 0.05, small), 0, 1)}
    taxes[0][0] = 0.99  # far above the rest
    rows = [{"run_id": f"r{i}", "track": "tiny", "format": "raw", "num_workers": w, "feeding_tax": float(t)}
            for w, ts in taxes.items() for i, t in enumerate(ts)]
    fig = class_figures.feeding_figure(rows)
    ax = fig.axes[0]
    beyond = taxes[0][_beyond_1_5_iqr(taxes[0])] * 100
    ys0, _ = _points(ax, 0)
    assert 0 < len(ys0) < big and np.allclose(np.sort(ys0), np.sort(beyond)) and np.isclose(ys0.max(), 99)
    ys1, _ = _points(ax, 1)
    assert np.allclose(np.sort(ys1), np.sort(taxes[1] * 100))
    assert f"n > {class_figures.MAX_DOTS}" in fig.get_suptitle()


def _disk_figure_of(db: Path, tmp_path: Path, monkeypatch) -> tuple[object, str]:
    """The report's disk figure (closed once drawn, its artists still there) and its page."""
    drawn = []
    real = class_figures.disk_figure

    def keep(*args, **kwargs):
        fig = real(*args, **kwargs)
        drawn.append(fig)
        return fig

    monkeypatch.setattr(class_figures, "disk_figure", keep)
    html = class_report.write(db, tmp_path / "out").read_text()
    assert len(drawn) == 1
    return drawn[0], html


def _read_axis_values(fig) -> np.ndarray:
    ax = fig.axes[0]
    return np.sort(np.concatenate([c.get_offsets()[:, 1] for c in ax.collections
                                   if isinstance(c, PathCollection) and len(c.get_offsets())]))


def test_disk_chart_reads_the_first_read_after_writing_and_says_where_it_falls_back(class_db, tmp_path, monkeypatch):
    db = tmp_path / "class.duckdb"
    shutil.copy(class_db, db)
    con = duckdb.connect(str(db))
    con.execute("UPDATE disk SET seq_read_mb_per_s_first = seq_read_mb_per_s_cold / 7")  # apart from the re-reads
    runs = [r[0] for r in con.execute("SELECT run_id FROM disk ORDER BY run_id").fetchall()]
    con.close()

    def column(name: str, where: str = "TRUE") -> np.ndarray:
        with duckdb.connect(str(db), read_only=True) as con:
            return np.array([r[0] for r in con.execute(f"SELECT {name} FROM disk WHERE {where}").fetchall()])

    fig, html = _disk_figure_of(db, tmp_path / "first", monkeypatch)
    assert np.allclose(_read_axis_values(fig), np.sort(column("seq_read_mb_per_s_first")))
    assert fig.axes[0].get_title() == "sequential read, first after writing"
    assert class_report.DISK_FIRST in html and "No first read after writing" not in html

    with duckdb.connect(str(db)) as con:  # three runs stored without a first read
        con.execute("UPDATE disk SET seq_read_mb_per_s_first = NULL WHERE run_id IN (?, ?, ?)", runs[:3])
    fig, html = _disk_figure_of(db, tmp_path / "some", monkeypatch)
    expected = np.concatenate([column("seq_read_mb_per_s_first", "seq_read_mb_per_s_first IS NOT NULL"),
                               column("seq_read_mb_per_s_cold", "seq_read_mb_per_s_first IS NULL")])
    assert np.allclose(_read_axis_values(fig), np.sort(expected))
    assert f"3 of {len(runs)}: cold re-read" in fig.axes[0].get_title()
    assert f"No first read after writing is stored for 3 of {len(runs)} submissions" in html
    assert class_report.DISK_FIRST in html

    with duckdb.connect(str(db)) as con:  # a store from before schema 5: no such column
        con.execute("ALTER TABLE disk DROP COLUMN seq_read_mb_per_s_first")
    fig, html = _disk_figure_of(db, tmp_path / "none", monkeypatch)
    assert np.allclose(_read_axis_values(fig), np.sort(column("seq_read_mb_per_s_cold")))
    assert "cold" in fig.axes[0].get_title() and "no first read after writing" in fig.axes[0].get_title()
    assert "No first read after writing is stored for any submission" in html and class_report.DISK_FIRST not in html


# --- the Locks: what the class predicted against what their own machines measured ----------------------

V3 = Path(__file__).parent / "data" / "results-v3.json"


def _class_with_labs(inbox: Path) -> None:
    """Three submissions from a stored run, each its own machine: one measures fiber winning, one a slow disk; two
    students did the lab (one answering a Reflect question with markup), the third did not."""
    from feedtax import results
    from feedtax.classroom.submit import write_submission
    from feedtax.results.lab import LabRecord, Lock, Reflection

    base = results.load(V3)
    fast_net = base.model_copy(update={"run_id": "class-0"}, deep=True)
    for t in fast_net.gravity.tiers:
        if t.dataset_bytes == 10**15:
            t.winner, t.crossover_km = "network", None
    slow_disk = base.model_copy(update={"run_id": "class-1"}, deep=True)
    slow_disk.disk.seq_read_mb_per_s_first = 1.0
    plain = base.model_copy(update={"run_id": "class-2"}, deep=True)
    plain.memory.copy_mb_per_s_all_cores *= 1.01  # its own machine: the same measurements would be one run

    def lab(run_id, picks, answer):
        return LabRecord(run_id=run_id, locks=[Lock(lock=k, choice=v, confidence=conf, committed_utc=T)
                                               for k, (v, conf) in picks.items()],
                         reflections=[Reflection(part=1, prompt="Why <b>that</b>?", answer=answer)])

    write_submission(fast_net, inbox, lab("class-0", {"gravity": ("fiber", "high"), "format_vs_ssd": ("format", "low"),
                                                      "curated_vs_noisy": ("curated", "medium")},
                                          "<script>alert(1)</script> & fiber"))
    write_submission(slow_disk, inbox, lab("class-1", {"gravity": ("drive", "low"), "format_vs_ssd": ("ssd", "high"),
                                                       "curated_vs_noisy": ("noisy", "high")}, "trucks"))
    write_submission(plain, inbox)


T = "2026-03-01T10:00:00Z"


def _row(choice: str, *counts) -> str:
    return f"<tr><td class='l'>{choice}</td>" + "".join(f"<td>{n}</td>" for n in counts) + "</tr>"


def test_submit_collect_report_shows_predictions_against_machines(tmp_path):
    _class_with_labs(tmp_path / "inbox")
    db = tmp_path / "class.duckdb"
    report = c.collect([tmp_path / "inbox"], db)
    assert report.ok and len(report.accepted) == 3 and len(report.labs) == 2
    html = class_report.write(db, tmp_path / "out").read_text()
    section = html.split("6. What the class predicted, and what their machines measured")[1].split("<h2>")[0]
    part1, part2, part3 = section.split("<h3>Part ")[1:]
    # choice: students (low, medium, high confidence), machines measuring it
    assert _row("fiber", 1, 0, 0, 1, 1) in part1 and _row("drive", 1, 1, 0, 0, 2) in part1
    assert "2 of 2 students (100%) predicted what their own machine measured" in part1
    assert _row("format", 1, 1, 0, 0, 2) in part2 and _row("ssd", 1, 0, 0, 1, 1) in part2
    assert _row("noisy", 1, 0, 0, 1, 0) in part3 and _row("curated", 1, 0, 1, 0, 3) in part3
    assert "1 of 2 students (50%)" in part3
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; fiber" in part1 and "Why &lt;b&gt;that&lt;/b&gt;?" in part1
    assert "<script" not in html and "<b>that" not in html


def test_without_lab_records_the_section_says_so_in_one_line(class_db, tmp_path):
    html = class_report.write(class_db, tmp_path).read_text()
    section = html.split("6. What the class predicted, and what their machines measured</h2>")[1].split("<h2>")[0]
    assert section.strip() == class_report.NO_LABS


def test_free_text_of_every_column_reaches_the_page_as_text(feedtax_cli, tmp_path):
    """`feedtax class-report` over a class whose every text column (run_id, profile, track, format, filesystem, CPU,
    Reflect answers...) holds mathtext, a bad TeX command, markup and hidden characters: it renders, each figure's
    labels as text (no mathtext error), the hidden characters shown as escapes."""
    from test_figure_text import HOSTILE

    _class_with_labs(tmp_path / "inbox")
    db = tmp_path / "class.duckdb"
    assert len(c.collect([tmp_path / "inbox"], db).labs) == 2
    figures = class_report.write(db, tmp_path / "before").read_text().count("<svg")
    con = duckdb.connect(str(db))
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()}
    columns = con.execute("SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'main' AND "
                          "data_type = 'VARCHAR'").fetchall()
    for table, column in columns:
        if table in tables and (table, column) != ("loader", "loader"):  # the report selects the tuned loader's rows
            con.execute(f'UPDATE "{table}" SET "{column}" = "{column}" || ?', [HOSTILE])
    con.close()
    done = feedtax_cli("class-report", "--db", db, "--out", tmp_path / "out")
    assert done.exit_code == 0, done.output
    page = (tmp_path / "out" / "class_report.html").read_text()
    assert page.count("<svg") == figures >= 3, "every figure is drawn"
    assert not any(ch in page for ch in ("\x00", "\x1b", "\u202e", "\x9b"))
    assert "$x$ $\\frac{$ \\x1b[31m\\x00\\u202e\\x9b" in page
