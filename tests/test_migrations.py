"""results.migrations: every older schema version is brought up to this one, and unknown versions are refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from feedtax import results
from feedtax.results import migrations
from feedtax.results.migrations import MIGRATIONS, MigrationError, migrate
from feedtax.results.schema import SCHEMA_VERSION, Results

V1 = Path(__file__).parent / "data" / "results-v1.json"
V2 = Path(__file__).parent / "data" / "results-v2.json"
V3 = Path(__file__).parent / "data" / "results-v3.json"


@pytest.fixture()
def v1() -> dict:
    """A results.json written by the release before schema 2 (`feedtax run --profile ci`), as users have it."""
    return json.loads(V1.read_text())


def test_every_version_has_its_step():
    assert sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION))


def test_v2_rows_and_summaries_become_the_tuned_loaders():
    v2 = json.loads(V2.read_text())
    assert v2["schema_version"] == 2 and all("loader" not in r for r in v2["loader"])
    doc, original = migrate(v2)
    assert original == 2 and doc["schema_version"] == SCHEMA_VERSION
    res = Results.model_validate(doc)
    assert {r.loader for r in res.loader} == {"tuned"} and {s.loader for s in res.feeding.summaries} == {"tuned"}
    assert res.tuned_rows() == res.loader and res.feeding.loader_gaps == []
    assert [r.au for r in res.loader] == [r["au"] for r in v2["loader"]], "every figure is kept"


def test_v3_extrapolations_without_intervals_are_not_informative():
    v3 = json.loads(V3.read_text())
    doc, version = migrate(v3)
    res = Results.model_validate(doc)
    points = [p for s in res.feeding.summaries for f in s.fits for p in f.predicted]
    assert version == 3 and points and any(p.extrapolated for p in points)
    assert all(p.informative is not p.extrapolated and p.ci95 is None for p in points)


def test_v1_is_migrated_and_validates(v1):
    before = copy.deepcopy(v1)
    doc, original = migrate(v1)
    assert original == 1 and doc["schema_version"] == SCHEMA_VERSION
    assert v1 == before, "the caller's document is left as it was"
    res = Results.model_validate(doc)
    assert res.formats and res.loader and res.feeding and res.feeding.summaries
    # a transport measured at full speed (worker_s_per_batch present) keeps every figure
    assert doc["feeding"]["summaries"][0]["transport"] == before["feeding"]["summaries"][0]["transport"]
    equilibrium = {"edge": {"csv": 2, "parquet": 1, "raw": 1}}
    assert doc["feeding"]["flow_equilibrium"] == before["feeding"]["flow_equilibrium"] == equilibrium


def test_the_current_version_passes_through(v1):
    doc, _ = migrate(v1)
    again, original = migrate(doc)
    assert original == SCHEMA_VERSION and again == doc


def test_a_transport_from_before_the_full_speed_measurement_loses_only_its_wait_difference(v1):
    """Schema 1 files written before worker_s_per_batch held ipc = transport - in_process, two waits behind the
    consumer (and it could come out negative): schema 2's ipc is the full-speed handover, so it becomes null."""
    t = v1["feeding"]["summaries"][0]["transport"]
    del t["worker_s_per_batch"]
    t["ipc_s_per_batch"] = t["transport_s_per_batch"] - t["in_process_s_per_batch"] - 1.0  # negative, as it could be
    doc, _ = migrate(v1)
    t2 = doc["feeding"]["summaries"][0]["transport"]
    assert t2["worker_s_per_batch"] is None and t2["ipc_s_per_batch"] is None
    assert (t2["in_process_s_per_batch"], t2["transport_s_per_batch"]) == (t["in_process_s_per_batch"],
                                                                         t["transport_s_per_batch"])
    assert Results.model_validate(doc).feeding.summaries[0].transport.ipc_s_per_batch is None


def test_a_zero_worker_equilibrium_is_recomputed_from_the_files_own_rows(v1):
    """Before schema 2 a 0-worker loader fast enough counted as the flow equilibrium; the migration applies
    schema 2's rule (1 worker or more) to the file's own loader rows and consumer rate."""
    summary = v1["feeding"]["summaries"][0]
    track, expected = summary["track"], dict(summary["flow_equilibrium"])
    for fmt in expected:
        summary["flow_equilibrium"][fmt] = 0
        v1["feeding"]["flow_equilibrium"][track][fmt] = 0
    doc, _ = migrate(v1)
    assert doc["feeding"]["summaries"][0]["flow_equilibrium"] == expected
    assert doc["feeding"]["flow_equilibrium"][track] == expected
    # no count of 1 or more keeps up: never reached
    fast = copy.deepcopy(v1)
    fast["feeding"]["summaries"][0]["consumption_samples_per_s"] = 1e12
    doc, _ = migrate(fast)
    assert set(doc["feeding"]["summaries"][0]["flow_equilibrium"].values()) == {None}
    assert set(doc["feeding"]["flow_equilibrium"][track].values()) == {None}


def test_schema_2_refuses_a_zero_worker_equilibrium(v1):
    doc, _ = migrate(v1)
    doc["feeding"]["flow_equilibrium"]["edge"]["csv"] = 0
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        Results.model_validate(doc)


def test_a_first_release_v1_file_loads(v1, tmp_path):
    """The first release's file: host, config, stages and formats only, none of the fields added later."""
    later = ("disk", "memory", "transforms", "loader", "feeding", "selection", "assumptions", "projections",
             "model_validation", "gravity", "energy_ledger", "energy")
    for key in later:
        del v1[key]
    for key in ("cpu_freq_mhz", "cpu_freq_max_mhz", "cpu_governor", "load_average_1m", "virtualization", "container",
                "data_dir", "gpus", "gpu_absent_reason"):
        v1["host"].pop(key, None)
    for key in ("disk_probe_bytes", "memory_probe_bytes", "format_budget_s", "sweep"):
        del v1["config"][key]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(v1))
    res = results.load(path)
    assert res.schema_version == SCHEMA_VERSION and len(res.formats) == 20 and res.feeding is None


MALFORMED = [
    {"schema_version": 1, "feeding": []},
    {"schema_version": 1, "feeding": {"summaries": "x"}},
    {"schema_version": 1, "loader": {}, "feeding": {"summaries": [1, {"transport": 3}],
                                                    "flow_equilibrium": {"edge": [0]}}},
    {"schema_version": 1, "loader": [None], "feeding": {"summaries": [
        {"track": "edge", "flow_equilibrium": {"csv": 0}, "consumption_samples_per_s": "x"}]}},
    {"schema_version": 1, "run_id": 3},
]


@pytest.mark.parametrize("doc", MALFORMED)
def test_a_malformed_document_migrates_without_error_and_fails_validation_instead(doc):
    migrated, original = migrate(doc)
    assert original == 1 and migrated["schema_version"] == SCHEMA_VERSION
    with pytest.raises(ValueError):
        Results.model_validate(migrated)


@pytest.mark.parametrize("version, message", [
    (99, f"schema_version 99 is newer than this feedtax reads ({SCHEMA_VERSION}): update feedtax"),
    ("two", 'schema_version is "two", expected an integer'),
    (2.0, "schema_version is 2.0, expected an integer"),
    (True, "schema_version is true, expected an integer"),
    (None, "schema_version is null, expected an integer"),
    (0, f"schema_version 0 is older than any this feedtax migrates (from: {', '.join(map(str, sorted(MIGRATIONS)))})"),
])
def test_unknown_versions_are_refused_in_one_line(version, message):
    with pytest.raises(MigrationError) as info:
        migrate({"schema_version": version, "run_id": "x"})
    assert message in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(MigrationError, match="no schema_version"):
        migrate({"run_id": "x"})


def test_a_missing_step_is_refused(monkeypatch):
    monkeypatch.setattr(migrations, "MIGRATIONS", {})
    with pytest.raises(MigrationError, match=r"schema_version 1 is older than any this feedtax migrates \(from: none"):
        migrate({"schema_version": 1})


def test_steps_chain_from_an_older_version(v1, monkeypatch):
    """A step per version, applied in order: a pretend version 0 that called `profile` `profile_name`."""
    v1["schema_version"] = 0
    v1["profile_name"] = v1.pop("profile")
    monkeypatch.setattr(migrations, "MIGRATIONS", {**MIGRATIONS, 0: lambda d: {
        **{k: v for k, v in d.items() if k != "profile_name"}, "profile": d["profile_name"]}})
    doc, original = migrate(v1)
    assert original == 0 and doc["schema_version"] == SCHEMA_VERSION and doc["profile"] == "ci"
    assert Results.model_validate(doc).profile == "ci"


def test_v4_disk_gets_its_cold_median_as_the_first_read_and_says_so():
    doc, original = migrate(json.loads((Path(__file__).parent / "data" / "results-v4.json").read_text()))
    disk = Results.model_validate(doc).disk
    assert original == 4 and disk.seq_read_mb_per_s_first == disk.seq_read_mb_per_s_cold
    assert disk.first_read_method == migrations.FIRST_READ_BEFORE_V5
    assert disk.repeat_read_speedup is None and disk.repeats_cached_below_os is None


def test_v5_rows_get_no_interval_and_say_it_was_not_measured():
    """A version 5 run (a real ci run) has no AU intervals: every one becomes null, never a guess."""
    stored = json.loads((Path(__file__).parent / "data" / "results-v5.json").read_text())
    doc, original = migrate(stored)
    res = Results.model_validate(doc)
    assert original == 5 and doc["schema_version"] == SCHEMA_VERSION and res.loader
    for row in res.loader:
        assert row.au_ci95 is None and row.feeding_tax_ci95 is None and row.au_ci_wide is None
        assert row.steps is None and row.stopped_by is None and row.au_ci_target_pp is None
        assert row.mlperf_au_ci95 is None
    for gap in res.feeding.loader_gaps:
        assert gap.default_au_ci95 is None and gap.tuned_au_ci95 is None
        assert all(f.au_ci95 is None and f.mlperf_au_ci95 is None for f in gap.fixes)
    assert all(v.measured_feeding_tax_ci95 is None for v in res.model_validation)
    assert "au_ci95" not in stored["loader"][0]  # the caller's document is left as it was
    assert "not measured" in migrations._v5_to_v6.__doc__


def test_v6_sweeps_read_profile_sized_shards_and_no_dataset():
    """A version 6 run (a real laptop run) swept the profile's shards: no dataset size and no datasets, its own
    intervals kept as measured."""
    stored = json.loads((Path(__file__).parent / "data" / "results-v6.json").read_text())
    doc, original = migrate(stored)
    res = Results.model_validate(doc)
    assert original == 6 and res.config.dataset_bytes is None and res.feeding.datasets == []
    assert [r.au_ci95 for r in res.loader] == [tuple(r["au_ci95"]) for r in stored["loader"]]
    assert "dataset_bytes" not in stored["config"]  # the caller's document is left as it was
