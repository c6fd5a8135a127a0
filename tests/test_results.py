"""results.json: saved atomically, loaded back equal, older versions migrated, malformed files refused with the
file named."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from feedtax import results
from feedtax.bench.formatstage import measure_format
from feedtax.bench.profiles import get
from feedtax.cli import app
from feedtax.probes import host

DATA = Path(__file__).parent / "data"
STORED = sorted(DATA.glob("results-v*.json"))  # a file written by each earlier schema version


def make_results(tmp_path, track_samples) -> results.Results:
    p = get("ci")
    r = results.Results(
        run_id=results.new_run_id(), profile="ci", created_utc=results.now_utc(), host=host.collect(),
        config=results.RunConfig(profile="ci", seed=0, tracks=["tiny"], formats=["json"], samples_per_track=24,
                                 samples_per_shard=10, warmups=1, repeats=5, min_time_s=0.0,
                                 sizes={"audio_len": 160, "frame_hw": [24, 24]}, data_dir=str(tmp_path)),
    )
    fr, _ = measure_format("tiny", "json", track_samples["tiny"], tmp_path / "data", samples_per_shard=10,
                           warmups=p.warmups, repeats=5, min_time_s=0.0)
    r.formats.append(fr)
    return r


def test_save_load_round_trip_and_no_temp_left(tmp_path, track_samples):
    r = make_results(tmp_path, track_samples)
    path = tmp_path / "results.json"
    results.save(r, path)
    assert results.load(path) == r
    assert not (tmp_path / "results.json.tmp").exists()


def test_saved_file_validates_against_published_schema(tmp_path, track_samples):
    path = tmp_path / "results.json"
    results.save(make_results(tmp_path, track_samples), path)
    doc = json.loads(path.read_text())
    jsonschema.validate(doc, results.json_schema())
    fr = doc["formats"][0]
    for key in ("encode_samples_per_s", "decode_samples_per_s_cold", "decode_samples_per_s_warm"):
        assert {"median", "iqr", "n"} <= set(fr[key]) and fr[key]["n"] == 5
    assert isinstance(doc["schema_version"], int) and doc["profile"] == "ci" and doc["host"]["cpu_model"]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a valid feedtax results file"),
        (b"{not json", "not a valid feedtax results file"),
        (b"[]", "not a valid feedtax results file"),
        (b'{"schema_version": 99}', "schema_version"),
    ],
)
def test_malformed_results_are_refused_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(results.ResultsFileError, match=message) as info:
        results.load(path)
    assert str(path) in str(info.value)


def test_missing_results_file(tmp_path):
    with pytest.raises(results.ResultsFileError, match="cannot read"):
        results.load(tmp_path / "absent.json")


def test_run_ids_are_unique_and_sortable():
    ids = [results.new_run_id() for _ in range(50)]
    assert len(set(ids)) == 50


def test_a_stored_file_of_every_earlier_version_exists():
    assert [int(p.stem.removeprefix("results-v")) for p in STORED] == list(range(1, results.SCHEMA_VERSION))


@pytest.mark.parametrize("path", STORED, ids=lambda p: p.name)
def test_stored_files_of_earlier_versions_load_migrated(path, tmp_path):
    assert json.loads(path.read_text())["schema_version"] < results.SCHEMA_VERSION
    res = results.load(path)
    assert res.schema_version == results.SCHEMA_VERSION and res.formats and res.loader
    again = tmp_path / "results.json"
    results.save(res, again)  # written back at this version, and read back the same
    assert json.loads(again.read_text())["schema_version"] == results.SCHEMA_VERSION and results.load(again) == res


@pytest.mark.parametrize("version", [99, '"two"', "2.0"])
def test_an_unknown_version_is_one_line_naming_the_file(tmp_path, version):
    path = tmp_path / "results.json"
    text = DATA.joinpath("results-v1.json").read_text()
    path.write_text(text.replace('"schema_version": 1', f'"schema_version": {version}', 1))
    with pytest.raises(results.ResultsFileError) as info:
        results.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "schema_version" in message and "\n" not in message
    refused = CliRunner().invoke(app, ["report", str(path)])
    assert refused.exit_code == 2 and str(path) in refused.output and "schema_version" in refused.output


@pytest.mark.parametrize("path", STORED, ids=lambda p: p.name)
def test_report_project_and_compare_read_earlier_versions(path, tmp_path):
    runner = CliRunner()
    report = runner.invoke(app, ["report", str(path), "--out", str(tmp_path / "report.html")])
    assert report.exit_code == 0, report.output
    assert "<svg" in (tmp_path / "report.html").read_text()
    project = runner.invoke(app, ["project", str(path), "--out", str(tmp_path / "projected.json")])
    assert project.exit_code == 0, project.output
    assert json.loads((tmp_path / "projected.json").read_text())["schema_version"] == results.SCHEMA_VERSION
    compare = runner.invoke(app, ["compare", str(path), str(tmp_path / "projected.json"), "--json"])
    assert compare.exit_code == 0, compare.output
    rows = json.loads(compare.stdout)["rows"]
    assert rows and all(r["verdict"] in ("noise", "no_spread") for r in rows), "the same measurements, migrated"


# --- one validation for every reader: results.load applies collect's limits and checks ---------------------------

LAPTOP = DATA / "results-v4.json"  # a real run of every stage (laptop profile, schema 4)


def _laptop_with(tmp_path, change, name: str = "results.json") -> Path:
    doc = json.loads(LAPTOP.read_text())
    change(doc)
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_every_committed_results_file_validates_as_collect_validates_it():
    from feedtax.results.validate import read

    for path in sorted(DATA.glob("results-*.json")):
        got = read(path)
        assert got.results.formats and not got.unknown, path.name
        assert got.results == results.load(path)


@pytest.mark.parametrize("change, kind, named", [
    (lambda d: d["config"].update(min_time_s=1e308), "implausible", "config.min_time_s"),
    (lambda d: d["host"].update(load_average_1m=1e308), "implausible", "host.load_average_1m"),
    (lambda d: d["config"].update(samples_per_track=-5), "implausible", "config.samples_per_track"),
    (lambda d: d["config"].update(repeats=0), "implausible", "config.repeats"),
    (lambda d: d["config"].update(seed=-1), "implausible", "config.seed"),
    (lambda d: d["formats"][0].update(n_shards=0), "implausible", "formats.0.n_shards"),
    (lambda d: d["loader"][0].update(batch_size=0), "implausible", "loader.0.batch_size"),
    (lambda d: d["formats"][0]["decode_samples_per_s_cold"].update(iqr=-1.0), "implausible", "iqr"),
    (lambda d: d.update(run_id="run\n"), "bad_run_id", "run_id"),
    (lambda d: d.update(run_id="../run"), "bad_run_id", "run_id"),
    (lambda d: d.update(created_utc="yesterday"), "schema", "created_utc"),
    (lambda d: d["config"].update(repeats="5"), "schema", "config.repeats"),  # strict: no coercion
])
def test_load_refuses_what_collect_refuses_in_one_line(tmp_path, change, kind, named):
    path = _laptop_with(tmp_path, change)
    with pytest.raises(results.ResultsFileError) as info:
        results.load(path)
    message = str(info.value)
    assert info.value.kind == kind and named in message, message
    assert message.startswith(f"{path}: not a valid feedtax results file: ") and "\n" not in message


@pytest.mark.parametrize("raw, kind", [
    ("NaN", "non_finite"), ("Infinity", "non_finite"), ("-Infinity", "non_finite"), ("1e999", "non_finite"),
    ("1e308", "implausible"),
])
def test_load_refuses_numbers_json_cannot_mean(tmp_path, raw, kind):
    path = tmp_path / "results.json"
    path.write_text(LAPTOP.read_text().replace('"bytes_per_sample": ', f'"bytes_per_sample": {raw}, "_was": ', 1))
    with pytest.raises(results.ResultsFileError, match="formats") as info:
        results.load(path)
    assert info.value.kind == kind and str(path) in str(info.value)


def test_duplicate_keys_are_refused_naming_the_key(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(LAPTOP.read_text().replace('"profile": "laptop"', '"profile": "laptop", "profile": "ci"', 1))
    with pytest.raises(results.ResultsFileError, match="'profile' appears twice") as info:
        results.load(path)
    assert info.value.kind == "duplicate_key"
    text = LAPTOP.read_text().replace('"cpu_model": "', '"note": "a: {\\"x\\": 1, \\"x\\": 2}", "cpu_model": "', 1)
    path.write_text(text)  # keys and colons inside strings are text, not keys
    assert results.load(path).host.cpu_model


def test_a_utf8_bom_is_skipped(tmp_path):
    path = tmp_path / "results.json"
    path.write_bytes(b"\xef\xbb\xbf" + LAPTOP.read_bytes())
    assert results.load(path) == results.load(LAPTOP)


def test_a_pipe_a_device_and_an_oversized_file_are_refused_unread(tmp_path):
    import os

    from feedtax.results.validate import MAX_RESULTS_BYTES

    fifo, zero, big = tmp_path / "fifo.json", tmp_path / "zero.json", tmp_path / "big.json"
    os.mkfifo(fifo)  # no writer: a blocking open would wait forever
    zero.symlink_to("/dev/zero")  # a read would never end
    with open(big, "wb") as f:
        f.truncate(MAX_RESULTS_BYTES + 1)
    for path, kind in ((fifo, "not_a_file"), (zero, "not_a_file"), (tmp_path, "not_a_file"), (big, "too_large")):
        with pytest.raises(results.ResultsFileError) as info:
            results.load(path)
        assert info.value.kind == kind and str(info.value).startswith(f"{path}: ")


def _set(get, key: str, value):
    """A change to a results document: row `get(doc)` gets `key` = value(row)."""
    return lambda d: get(d).update({key: value(get(d))})


def _fmt(d):
    return d["formats"][0]


def _row(d):
    return d["loader"][0]


# each derived field of the schema (results.plausible.DERIVED) made to disagree with its sources
DERIVED_CASES = {
    "bytes_per_sample": _set(_fmt, "bytes_per_sample", lambda r: r["bytes_per_sample"] * 7),
    "compression_ratio": _set(_fmt, "compression_ratio", lambda r: r["compression_ratio"] * 3),
    "n_shards": _set(_fmt, "n_shards", lambda r: r["n_samples"] + 1),
    "samples_per_track": _set(lambda d: d["config"], "samples_per_track", lambda r: 1),
    "iqr": _set(lambda d: _fmt(d)["encode_samples_per_s"], "iqr", lambda r: 0.0),
    "feeding_tax": _set(_row, "feeding_tax", lambda r: 0.5 if r["au"] != 0.5 else 0.4),
    "feeding_tax_ci95": lambda d: _row(d).update(au_ci95=[_row(d)["au"] * 0.9, _row(d)["au"]],
                                                 feeding_tax_ci95=[1 - _row(d)["au"], 1 - _row(d)["au"] * 0.8]),
    "ipc_s_per_batch": _set(lambda d: d["feeding"]["summaries"][0]["transport"], "ipc_s_per_batch", lambda r: 1.0),
    "ratio": _set(lambda d: d["feeding"]["loader_overhead"][0], "ratio", lambda r: r["ratio"] * 2),
    "error_pp": _set(lambda d: d["model_validation"][0], "error_pp", lambda r: r["error_pp"] + 5),
    "sneakernet_s": _set(lambda d: d["gravity"]["tiers"][0], "sneakernet_s", lambda r: r["sneakernet_s"] * 2),
    "kept_samples": _set(lambda d: d["selection"]["rows"][0], "kept_samples", lambda r: r["pool_samples"] + 1),
    "cpu_physical_cores": _set(lambda d: d["host"], "cpu_physical_cores", lambda r: r["cpu_logical_cores"] + 1),
    "read_latency_p50_s": _set(lambda d: d["disk"], "read_latency_p50_s", lambda r: r["read_latency_p99_s"] * 2),
}


@pytest.mark.parametrize("name", sorted(DERIVED_CASES))
def test_a_derived_field_that_disagrees_with_its_sources_is_refused(tmp_path, name):
    from feedtax.results.plausible import DERIVED

    assert any(name in rule for rule in DERIVED)
    path = _laptop_with(tmp_path, DERIVED_CASES[name])
    with pytest.raises(results.ResultsFileError, match=name) as info:
        results.load(path)
    assert info.value.kind == "implausible"


def test_every_derived_rule_is_tested():
    from feedtax.results.plausible import DERIVED

    for rule in DERIVED:
        assert any(name in rule for name in DERIVED_CASES), rule


def _bounded_leaves(tp, bounded: bool):
    """For each int or float an annotation holds, whether a lower and an upper bound cover it."""
    import typing

    import annotated_types as at
    from pydantic import BaseModel

    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, *meta = typing.get_args(tp)
        yield from _bounded_leaves(base, bounded or _bounds_in(meta))
    elif tp in (int, float):
        yield bounded
    elif origin is typing.Literal or (isinstance(tp, type) and issubclass(tp, (BaseModel, str, bool))):
        return
    else:
        for arg in typing.get_args(tp):
            if not isinstance(arg, at.BaseMetadata):
                yield from _bounded_leaves(arg, bounded)


def _bounds_in(metadata) -> bool:
    """A bounded Metric, or pydantic constraints from below and from above."""
    import annotated_types as at
    from pydantic.fields import FieldInfo

    from feedtax.vocabulary import Metric

    flat = [m for x in metadata for m in (x.metadata if isinstance(x, FieldInfo) else [x])]
    if any(isinstance(m, Metric) and m.low is not None and m.high is not None for m in flat):
        return True
    return any(isinstance(m, (at.Ge, at.Gt)) for m in flat) and any(isinstance(m, (at.Le, at.Lt)) for m in flat)


# results/tiers.py (another part of the schema, not bounded here yet): open above
OPEN = {"StorageTier.bandwidth_bytes_per_s", "StorageTier.latency_s", "TierRow.read_bytes_per_s"}


def test_every_number_of_the_schema_is_bounded_where_it_is_declared():
    """Each int or float of the results models has a range on its own declaration (a Metric with low and high, or
    pydantic ge/le), so every reader refuses nonsense such as 1e308; a Distribution's statistics are bounded by the
    Metric of the field that holds it (results.plausible)."""
    from feedtax.results.metrics import _models_in
    from feedtax.stats import Distribution

    open_, seen, stack = [], set(), [results.Results]
    while stack:
        model = stack.pop()
        for name, info in model.model_fields.items():
            where = f"{model.__name__}.{name}"
            if not all(_bounded_leaves(info.annotation, _bounds_in(info.metadata))) and where not in OPEN:
                open_.append(where)
            stack += [m for m in _models_in(info.annotation) if m not in seen and m is not Distribution]
            seen.update(_models_in(info.annotation))
    assert not open_, "numbers without bounds: " + ", ".join(sorted(set(open_)))
