"""results.json: saved atomically, loaded back equal, and malformed files refused with the file named."""

from __future__ import annotations

import json

import jsonschema
import pytest

from feedtax import results
from feedtax.measure.formatstage import measure_format
from feedtax.measure.profiles import get
from feedtax.probes import host


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
