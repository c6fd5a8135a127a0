"""results.metrics: every metric of the schema declared once, the same way wherever its name appears."""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path

import pytest

from feedtax.results.metrics import metric_fields, metrics_by_name
from feedtax.vocabulary import Metric

FIELDS = list(metric_fields())
V1_RUN = Path(__file__).parent / "data" / "results-v1.json"
# names that are measurements by their unit: each must carry a Metric
MUST_DECLARE = re.compile(r"(_per_s(_|$)|_s$|_mb_per_s|(^|_)feeding_tax$|^au$|^mfu$|_j$|_w$)")


def test_metrics_by_name_has_no_conflicting_declarations():
    by_name = metrics_by_name()
    assert by_name
    for path, name, metric in FIELDS:
        assert metric is None or by_name[name] == metric, f"{path}: declared unlike the other fields named {name}"


def test_a_name_declared_two_ways_is_refused(monkeypatch):
    from feedtax.results import metrics

    fields = [("a.wait_s", "wait_s", Metric("s", "lower")), ("b.wait_s", "wait_s", Metric("ms", "lower"))]
    monkeypatch.setattr(metrics, "metric_fields", lambda model=None: iter(fields))
    metrics.metrics_by_name.cache_clear()
    try:
        with pytest.raises(ValueError, match="'wait_s' is declared as two different metrics"):
            metrics.metrics_by_name()
    finally:
        monkeypatch.undo()
        metrics.metrics_by_name.cache_clear()


def test_every_rate_duration_share_energy_and_power_field_is_declared():
    missing = [path for path, name, _ in FIELDS if MUST_DECLARE.search(name) and name not in metrics_by_name()
               and not name.endswith("_ci95")]  # an interval is in the unit of the metric it bounds
    assert not missing, "fields without a Metric: " + ", ".join(missing)


def test_declarations_are_well_formed():
    for name, m in metrics_by_name().items():
        assert m.unit and m.better in ("higher", "lower", None), name
        if m.low is not None or m.high is not None:
            assert m.low is not None and m.high is not None and m.low < m.high and m.why, name


def _paths_named(doc, name: str, at: tuple = ()):
    """Every place in a results document where a number (or a Distribution) sits under `name`."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            number = isinstance(v, (int, float)) and not isinstance(v, bool)
            if k == name and (number or isinstance(v, dict) and "median" in v):
                yield at + (k,)
            yield from _paths_named(v, name, at + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths_named(v, name, at + (i,))


def test_collect_refuses_a_value_beyond_every_declared_bound():
    """Each bounded metric that a real run writes: a value past its high bound is refused by collect, naming the
    field and the declared reason; the run itself passes."""
    from feedtax.classroom.intake import implausible
    from feedtax.results import migrations

    doc, _ = migrations.migrate(json.loads(V1_RUN.read_text()))
    assert implausible(doc) == []
    checked = 0
    for name, metric in sorted(metrics_by_name().items()):
        if metric.high is None or name == "n":  # a Distribution's n is checked with the distribution
            continue
        for path in list(_paths_named(doc, name))[:1]:
            bad = copy.deepcopy(doc)
            *parent, leaf = path
            holder = functools.reduce(lambda d, k: d[k], parent, bad)
            value = metric.high * 10 + 1
            if isinstance(holder[leaf], dict):
                holder[leaf].update(min=value, q1=value, median=value, q3=value, max=value, mean=value)
            else:
                holder[leaf] = value
            problems = implausible(bad)
            assert any(name in p and metric.why in p for p in problems), (path, problems)
            checked += 1
    assert checked >= 15
