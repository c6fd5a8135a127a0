"""The assumptions file: every entry sourced; overrides apply, and bad ones fail naming the key or value."""

from __future__ import annotations

import json

import pytest

from feedtax.model import assumptions
from feedtax.results.projections import AssumptionError


def test_every_entry_has_value_unit_source_and_note():
    raw = json.loads(assumptions.DEFAULT_PATH.read_text())
    a = assumptions.load()
    assert set(a.entries) == {k for k in raw if not k.startswith("_")}
    for key, entry in a.entries.items():
        assert entry.source.strip() and entry.note.strip(), key
        assert isinstance(entry.value, float)


def test_estimates_say_so_in_their_source():
    for key, entry in assumptions.load().entries.items():
        if "estimate" in entry.source.lower():
            assert entry.source.lower().startswith("estimate:"), key


def test_sourced_names_the_key():
    s = assumptions.load().sourced("edge_streams")
    assert (s.value, s.unit, s.source) == (8.0, "", "assumption:edge_streams")


def test_override_applies_and_is_marked():
    a = assumptions.load(overrides=["edge_streams=12", " link_efficiency = 1 "])
    assert a.value("edge_streams") == 12.0 and a.entries["edge_streams"].overridden
    assert a.value("link_efficiency") == 1.0
    assert not a.entries["edge_fps"].overridden


def test_override_mapping():
    assert assumptions.load(overrides={"edge_fps": 60}).value("edge_fps") == 60.0


def test_unknown_key_is_named():
    with pytest.raises(AssumptionError, match="no_such_key"):
        assumptions.load(overrides=["no_such_key=1"])


def test_non_numeric_value_is_named():
    with pytest.raises(AssumptionError, match="edge_fps.*'fast'"):
        assumptions.load(overrides=["edge_fps=fast"])


def test_malformed_override():
    with pytest.raises(AssumptionError, match="key=value"):
        assumptions.parse_overrides(["edge_fps"])


def test_unknown_key_lookup_is_named():
    with pytest.raises(AssumptionError, match="nope"):
        assumptions.load().value("nope")


def test_bad_file_is_named(tmp_path):
    bad = tmp_path / "a.json"
    bad.write_text(json.dumps({"x": {"value": "many", "unit": "", "source": "s", "note": "n"}}))
    with pytest.raises(AssumptionError, match="'x'"):
        assumptions.load(bad)
