"""The run report (feedtax.reports.html): every section from a real run, self-contained, sections without data
left out, an unfinished run said so, model errors flagged past the limit, written atomically; text from the results
file shown as text."""

from __future__ import annotations

import re

import pytest
from test_collect import base_run
from test_figure_text import LAPTOP_RUN, hostile

from feedtax.reports import html
from feedtax.reports.common import Markup, kv, table
from feedtax.results.schema import Results
from feedtax.vocabulary import VALIDATION_LIMIT_PP

SECTIONS = ("The answers", "1. Format costs", "2. Feeding tax", "3. Missions", "Does the model match this machine?",
            "4. Data Gravity Audit", "5. Zero-Waste Audit", "Many noisy samples", "Disk under the data directory",
            "Memory bandwidth", "Energy counters", "Assumptions used", "Machine", "Configuration", "Stages", "Glossary")


@pytest.fixture(scope="module")
def run() -> Results:
    """A real small run of every stage on this machine (shared with the collect and class-report tests)."""
    return Results.model_validate_json(base_run())


def _text(page: str) -> str:
    return re.sub(r"<svg.*?</svg>", "<svg/>", page, flags=re.S)


def test_every_section_in_order_and_self_contained(run):
    page = html.render(run)
    where = [page.find(f">{title}") for title in SECTIONS]
    assert -1 not in where, [t for t, w in zip(SECTIONS, where, strict=True) if w == -1]
    assert where == sorted(where), "sections appear in the report's order"
    assert page.count("<svg") >= 8
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", _text(page)) and "<script" not in page
    assert page.startswith("<!doctype html>") and page.endswith("</dl></body></html>")
    for anchor in re.findall(r"href='#([\w-]+)'", page):  # every link inside the report lands on something
        assert f"id='{anchor}'" in page, anchor
    assert "did not complete" not in page


def test_sections_without_data_are_left_out(run):
    bare = run.model_copy(update={"formats": [], "loader": [], "feeding": None, "projections": {},
                                  "model_validation": [], "gravity": None, "energy_ledger": None, "selection": None,
                                  "assumptions": None, "disk": None, "memory": None, "energy": None})
    page = html.render(bare)
    assert "<svg" not in page
    for title in SECTIONS[:-4]:
        assert f">{title}" not in page, title
    for title in SECTIONS[-4:]:
        assert f">{title}" in page, title


def test_an_unfinished_run_says_so(run):
    page = html.render(run.model_copy(update={"status": "interrupted"}))
    assert "did not complete" in page and "status <span class='status'>interrupted</span>" in page


def test_model_errors_flagged_past_the_limit(run):
    assert run.model_validation
    rows = [v.model_copy(update={"error_pp": pp}) for v, pp in
            zip(run.model_validation[:2], (VALIDATION_LIMIT_PP, -(VALIDATION_LIMIT_PP + 0.5)), strict=True)]
    page = html.render(run.model_copy(update={"model_validation": rows}))
    section = page.split("Does the model match this machine?")[1].split("<h2>")[0]
    assert f"over {VALIDATION_LIMIT_PP:g} percentage points" in section
    assert f"<td>{VALIDATION_LIMIT_PP:+.1f}</td>" in section, "at the limit: not flagged"
    assert f"<span class='warn'>{-(VALIDATION_LIMIT_PP + 0.5):+.1f}</span>" in section


def test_write_replaces_the_file_whole(run, tmp_path):
    target = tmp_path / "report.html"
    target.write_text("old")
    assert html.write(run, target) == target
    assert _text(target.read_text()) == _text(html.render(run))
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_cells_escaped_unless_markup():
    t = table(["name", "value"], [["<b>", 1234.5], ["x", Markup("<i>ok</i>")]], text=(-1,))
    assert "<td class='l'>&lt;b&gt;</td><td class='l'>1.23e+03</td>" in t and "<td class='l'><i>ok</i></td>" in t
    assert table(["a", "n"], [["x", 2.0]]).endswith("<tr><td class='l'>x</td><td>2</td></tr></table>")
    assert kv([("a&b", "<c>")]) == "<table><tr><th class='l'>a&amp;b</th><td class='l'>&lt;c&gt;</td></tr></table>"


HIDDEN = ("\x00", "\x1b", "\u202e", "\x9b")  # NUL, ESC, RLO, CSI


def test_free_text_of_every_field_reaches_the_page_as_text(feedtax_cli, monkeypatch, tmp_path):
    """`feedtax report` of a run whose every free-text field holds mathtext, a bad TeX command, markup and hidden
    characters: the page renders (no mathtext error), escaped, with the hidden characters shown as escapes."""
    import json

    from feedtax import results

    run = Results.model_validate(hostile(json.loads(LAPTOP_RUN.read_text())))
    monkeypatch.setattr(results, "load", lambda path: run)  # the reader may refuse some of it; the page must not
    out = tmp_path / "report.html"
    done = feedtax_cli("report", "results.json", "--out", out)
    assert done.exit_code == 0, done.output
    page = out.read_text()
    assert not any(c in page for c in HIDDEN)
    assert "\\x1b[31m\\x00\\u202e\\x9b" in page and "$x$ $\\frac{$" in page and page.count("<svg") >= 8
    assert _text(page) == _text(html.render(run))


def test_the_page_shows_hidden_characters_as_escapes(run):
    page = html.render(run.model_copy(update={"run_id": "r\x00\x1b[2J\u202eevil<b>"}))
    assert not any(c in page for c in HIDDEN)
    assert "<code>r\\x00\\x1b[2J\\u202eevil&lt;b&gt;</code>" in page
