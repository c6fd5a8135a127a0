"""Intake: every way a submission goes wrong is refused with a specific reason; limits hold without recursion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_collect import make_corpus

from feedtax.classroom import collect as c
from feedtax.classroom import intake
from feedtax.results import migrations, validate

DOCS = Path(__file__).resolve().parents[1] / "docs" / "instructors.md"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def test_reasons_are_specific(corpus, tmp_path):
    _, _, bad = corpus
    report = c.collect([p for p, _ in bad.values()], tmp_path / "db.duckdb")
    why = {Path(r.path).name: r.reason for r in report.rejected}
    assert "NaN" in why["bad_nan.json"]
    assert "host" in why["bad_no_host.json"]
    assert "99" in why["bad_future_version.json"] and "newer" in why["bad_future_version.json"]
    assert "bytes_per_sample" in why["bad_negative_bytes.json"]
    assert "decode_samples_per_s_cold" in why["bad_absurd_rate.json"] and "1e+09" in why["bad_absurd_rate.json"]
    assert "limit" in why["bad_oversized.json"] and "deep" in why["bad_deep.json"]
    assert "formats.0.n_samples" in why["bad_wrong_type.json"]
    assert "'profile' appears twice" in why["bad_duplicate_key.json"]
    assert "\\n" in why["bad_run_id_newline.json"]  # the run_id shown escaped, its newline named
    assert "config.min_time_s" in why["bad_unbounded_setting.json"] and "86400" in why["bad_unbounded_setting.json"]
    assert "config.samples_per_track" in why["bad_negative_count.json"]
    assert "config.repeats" in why["bad_no_repeats.json"]
    assert "host.load_average_1m" in why["bad_load_average.json"]
    assert "compression_ratio" in why["bad_inconsistent_ratio.json"]
    assert report.table_rows["runs"] == 0  # nothing of a rejected file is stored


def test_migration_hook_upgrades_an_older_version(corpus, tmp_path, monkeypatch):
    _, good, _ = corpus
    doc = json.loads(next(iter(good.values())).read_text())
    doc["schema_version"] = 0
    doc["profile_name"] = doc.pop("profile")  # pretend v0 called it profile_name
    p = tmp_path / "v0.json"
    p.write_text(json.dumps(doc))
    monkeypatch.setattr(migrations, "MIGRATIONS", {**migrations.MIGRATIONS,
        0: lambda d: {**{k: v for k, v in d.items() if k != "profile_name"}, "profile": d["profile_name"]}})
    report = c.collect([p], tmp_path / "c.duckdb")
    assert len(report.accepted) == 1 and "migrated from schema_version 0" in report.accepted[0].warnings[0]


def test_depth_is_measured_without_recursion_and_ignores_brackets_in_strings():
    assert intake.json_depth(b'{"a": [1, {"b": "[[[[{{{{"}]}') == (3, 0)
    assert intake.json_depth(b"[" * 200_000) == (200_000, 200_000)
    assert intake.json_depth(b'{"a": "\\"[["}') == (1, 0)


def test_plausibility_bounds_are_named():
    doc = {"formats": [{"bytes_per_sample": 0.0, "decode_samples_per_s": 2e9, "compression_ratio": 1.2}],
           "host": {"cpu_logical_cores": 0}, "loader": [{"au": -0.1, "step_s": -1.0}]}
    problems = " | ".join(intake.implausible(doc))
    for what in ("bytes_per_sample", "decode_samples_per_s", "cpu_logical_cores", "au", "step_s"):
        assert what in problems
    assert "compression_ratio" not in problems


def test_a_lab_record_is_read_with_its_own_limit_and_refused_with_a_reason(tmp_path):
    from test_lab_record import record

    from feedtax.results.lab import MAX_LAB_BYTES

    good = tmp_path / "r.lab.json"
    good.write_text(record(run_id="r").model_dump_json())
    lab, raw = intake.read_lab(good)
    assert lab == record(run_id="r") and raw == good.read_bytes()
    big = tmp_path / "big.lab.json"
    with open(big, "wb") as f:
        f.truncate(MAX_LAB_BYTES + 1)
    for path, said in ((big, "limit"), (tmp_path / "none.lab.json", "cannot read"), (tmp_path, "not a regular file")):
        with pytest.raises(intake.Reject) as err:
            intake.read_lab(path)
        assert err.value.kind == "lab_invalid" and said in err.value.reason
    good.write_text('{"run_id": "r", "locks": [{"lock": "gravity", "choice": "pigeon"}]}')
    with pytest.raises(intake.Reject, match="not a valid lab record") as err:
        intake.read_lab(good)
    assert not err.value.reason.startswith(str(good))  # the file is named once, by collect's report line


def test_duplicate_keys_are_found_at_any_depth_and_strings_are_not_keys():
    for text in (b'{"a": 1, "a": 2}', b'{"a": {"b": [1, {"c": 1, "c": 2}]}}', b'{"x": "q\\"", "x": 1}'):
        with pytest.raises(validate.Invalid) as err:
            validate.parse(text)
        assert err.value.kind == "duplicate_key"
    assert validate.parse(b'{"a": "b: c", "d": "{\\"a\\": 1, \\"a\\": 2}", "e": ["f:", {"g": ":"}]}')["e"]
    assert validate.parse(b"\xef\xbb\xbf" + b'{"a": 1}') == {"a": 1}  # a UTF-8 BOM is skipped
    with pytest.raises(validate.Invalid) as err:
        validate.parse(b"\xef\xbb\xbf  ")
    assert err.value.kind == "empty"


def test_a_duplicate_key_under_a_distribution_and_colons_opening_strings_are_told_apart():
    dist = '"median": 1, "q1": 1, "q3": 1, "min": 1, "max": 1, "mean": 1, "stdev": 0, "n": 1'
    with pytest.raises(validate.Invalid) as err:  # a Distribution's numbers are checked as one; its nesting is walked
        validate.parse(('{"d": {' + dist + ', "x": {"k": 1, "k": 2}}}').encode())
    assert err.value.kind == "duplicate_key" and "'k'" in err.value.reason
    assert validate.parse(b'{"a": ": x", "b": [":", " :"], "c": {"d": "\\": y"}}')["c"] == {"d": '": y'}


@pytest.mark.parametrize("levels", [65, 150, 201, 5000])
def test_nesting_past_the_limit_is_refused_whether_or_not_the_parser_takes_it(levels):
    """The parser takes about 200 levels itself: past MAX_JSON_DEPTH is refused either way, and the depth said."""
    for text in (b'{"a": ' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}", b"[" * levels + b"]" * levels):
        with pytest.raises(validate.Invalid) as err:
            validate.parse(text)
        assert err.value.kind == "too_deep" and f"nested {levels} levels" in err.value.reason
    assert validate.parse(b'{"a": ' + b"[" * 63 + b"]" * 63 + b"}")  # 64 levels: the limit itself


def test_a_count_out_of_the_64_bit_range_is_refused_inside_a_distribution_too():
    doc = {"d": {"median": 1, "q1": 1, "q3": 1, "min": 1, "max": 1, "mean": 1, "stdev": 0, "n": 1 << 70}}
    assert any("64-bit range" in p for p in intake.implausible(doc))


def test_run_ids_are_matched_whole_and_compared_without_case():
    assert validate.RUN_ID_PATTERN.fullmatch("20260101T000000Z-0a1b2c3d")
    for bad in ("run\n", "run\r\n", " run", "run ", "../run", "", "a" * 129):
        assert not validate.RUN_ID_PATTERN.fullmatch(bad) and not validate.RUN_ID_PATTERN.match(bad), repr(bad)
    assert validate.run_key(" Run-1\n") == validate.run_key("run-1")


def test_every_reject_kind_is_documented_and_no_other_is_raised(corpus, tmp_path):
    table = DOCS.read_text().split("| reject kind |")[1].split("\n\n")[0]
    for kind in intake.KINDS:
        assert f"`{kind}`" in table, f"{kind} is not in docs/instructors.md's table of reject kinds"
    report = c.collect([corpus[0]], tmp_path / "db.duckdb")
    assert {r.kind for r in report.rejected} <= set(intake.KINDS)
