"""Every figure of the run report, drawn from a laptop-profile run: no two drawn text labels overlap, and no font is
under 8 pt (matplotlib's own renderer measures each label's box)."""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib
import pytest

from feedtax import results
from feedtax.reports import feeding_figures, figures, mission_figures, sections_missions

matplotlib.use("Agg")
LAPTOP_RUN = Path(__file__).parent / "data" / "results-v4.json"  # `feedtax run`, laptop profile, schema 4


def _figures(run: results.Results) -> dict[str, object]:
    tuned = run.tuned_rows()
    out = {"format costs": figures.format_costs(run), "feeding tax gauge": feeding_figures.feeding_tax_gauge(tuned),
           "transfer time radar": mission_figures.transfer_time_radar(run.gravity),
           "sneakernet crossover": mission_figures.sneakernet_crossover(run.gravity),
           "energy radar": mission_figures.energy_radar(run.energy_ledger),
           "ingestion waterfall": mission_figures.ingestion_waterfall(run.projections,
                                                                      *sections_missions.waterfall_links(run))}
    for s in run.tuned_summaries():
        rows = [r for r in tuned if r.track == s.track]
        out[f"{s.track} AU vs ingestion"] = feeding_figures.mfu_vs_ingestion(rows, s)
        out[f"{s.track} scaling"] = feeding_figures.scaling(rows, s, run.host.usable_cores)
        out[f"{s.track} wait breakdown"] = feeding_figures.wait_breakdown(s)
    return {k: v for k, v in out.items() if v is not None}


def _drawn_texts(fig) -> list:
    """(text, its box in pixels) for every label the renderer draws: tick labels outside the axis's view are made
    but never drawn, so they are left out."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    undrawn = set()
    for ax in fig.axes:
        for axis, k in ((ax.xaxis, 0), (ax.yaxis, 1)):
            lo, hi = sorted(axis.get_view_interval())
            for t in axis.get_ticklabels(minor=False) + axis.get_ticklabels(minor=True):
                if not lo - 1e-9 * abs(lo) <= t.get_position()[k] <= hi + 1e-9 * abs(hi):
                    undrawn.add(id(t))
    boxes = []
    for t in fig.findobj(matplotlib.text.Text):
        if id(t) not in undrawn and t.get_visible() and t.get_text().strip():
            box = t.get_window_extent(renderer)
            if box.width > 1 and box.height > 1:
                boxes.append((t, box))
    return boxes


@pytest.fixture(scope="module")
def drawn() -> dict[str, list]:
    import matplotlib.pyplot as plt

    figs = _figures(results.load(LAPTOP_RUN))
    try:
        return {name: _drawn_texts(fig) for name, fig in figs.items()}
    finally:
        for fig in figs.values():
            plt.close(fig)


def test_every_figure_is_drawn(drawn):
    assert len(drawn) >= 9 and all(len(texts) > 5 for texts in drawn.values())


def test_no_two_labels_overlap(drawn):
    clashes = {}
    for name, texts in drawn.items():
        for (a, box_a), (b, box_b) in itertools.combinations(texts, 2):
            inter = matplotlib.transforms.Bbox.intersection(box_a, box_b)
            if inter is not None and inter.width > 1 and inter.height > 1:
                clashes.setdefault(name, []).append((a.get_text()[:30], b.get_text()[:30]))
    assert not clashes, clashes


def test_no_font_under_8_pt(drawn):
    small = {name: [(t.get_text()[:30], t.get_fontsize()) for t, _ in texts if t.get_fontsize() < 8]
             for name, texts in drawn.items()}
    assert not any(small.values()), small


# --- text from a results file is drawn as it is: never as mathtext, its hidden characters visible ---------------------

HOSTILE = " $x$ $\\frac{$ \x1b[31m\x00\u202e\x9b"  # mathtext markup, a bad TeX command, ESC, NUL, RLO, CSI


def hostile(doc: dict, suffix: str = HOSTILE) -> dict:
    """The results document with `suffix` appended to every free-text string (every one the schema lets be any
    text: a run_id, a CPU model, a note, a loader row's format), as a hand-edited results file could hold them."""
    from pydantic import ValidationError

    from feedtax.results.migrations import migrate

    doc = migrate(doc)[0]  # a stored file of an earlier version, as every reader sees it

    def mark(node):
        if isinstance(node, dict):
            return {k: mark(v) for k, v in node.items()}
        if isinstance(node, list):
            return [mark(v) for v in node]
        return node + suffix if isinstance(node, str) else node

    out = mark(doc)
    for _ in range(100):  # put back each string the schema constrains (a Literal, a pattern), where it says so
        try:
            results.Results.model_validate(out)
            return out
        except ValidationError as exc:
            for error in exc.errors():
                *where, last = error["loc"]
                parent = out
                for key in where:
                    parent = parent[key]
                assert isinstance(parent[last], str) and parent[last].endswith(suffix), error
                parent[last] = parent[last][: -len(suffix)]
    raise AssertionError("the schema kept refusing the marked document")


@pytest.fixture(scope="module")
def hostile_run() -> results.Results:
    import json

    return results.Results.model_validate(hostile(json.loads(LAPTOP_RUN.read_text())))


def test_free_text_in_every_field_is_drawn_as_it_is(hostile_run):
    import matplotlib.pyplot as plt
    from matplotlib import cbook

    marked = 0
    for name, fig in _figures(hostile_run).items():
        fig.canvas.draw()  # mathtext would fail here on '$\frac{$'
        for t in fig.findobj(matplotlib.text.Text):
            text = t.get_text()
            if text.startswith("$\\mathdefault{"):  # matplotlib's own tick labels (2^-1 on a log2 axis)
                continue
            assert not cbook.is_math_text(text), (name, text)
            assert not any(c in text for c in "\x1b\x00\u202e\x9b"), (name, text)
            marked += "\\$x\\$" in text
        plt.close(fig)
    assert marked >= 10, "the figures draw the run's free text (formats of the loader rows, consumer, verdicts)"
