"""reports.sections_loaders: both loaders' AUs per point, and one block per track and format where the default
trails, each gap's worker count, costs and fixes in it."""

from __future__ import annotations

import re
from pathlib import Path

from feedtax import results
from feedtax.reports import sections_loaders
from feedtax.vocabulary import GAP_PP

LAPTOP_RUN = Path(__file__).parent / "data" / "results-v4.json"


def test_one_block_per_track_and_format_holding_every_gap():
    run = results.load(LAPTOP_RUN)
    page = "".join(sections_loaders.loaders(run))
    gaps = run.feeding.loader_gaps
    keys = list(dict.fromkeys((g.track, g.format) for g in gaps))
    heads = re.findall(r"<h4>(\w+) (\w+): the default loader trails at (\d+) worker count", page)
    assert [(t, f) for t, f, _ in heads] == keys
    for (track, fmt, n), block in zip(heads, page.split("<h4>")[1:], strict=True):
        mine = [g for g in gaps if (g.track, g.format) == (track, fmt)]
        assert int(n) == len(mine)
        for g in mine:
            assert f"<td class='l'>{g.num_workers}</td><td>{g.default_au:.0%}</td><td>{g.tuned_au:.0%}</td>" in block
            for f in g.fixes:
                beats = "yes" if (f.au - g.default_au) * 100 > GAP_PP else "no"
                assert f"{(f.au - g.default_au) * 100:+.1f}</td><td>{beats}</td>" in block


def test_nothing_when_one_loader_was_swept():
    run = results.load(LAPTOP_RUN)
    tuned_only = run.model_copy(update={"loader": run.tuned_rows()})
    assert sections_loaders.loaders(tuned_only) == []
