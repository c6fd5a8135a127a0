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
